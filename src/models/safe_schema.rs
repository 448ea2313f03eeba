//! A model's input schema made provider-safe (REFERENCE.md §2): property keys that are not
//! `[a-zA-Z0-9_.-]{1,64}` (Dreamina's `width×height`) get a safe name, mapped back on submit;
//! `$ref`s into `$defs` / `definitions` are inlined and `$schema`, `$defs`, `definitions`,
//! `$id`, `additionalProperties`, `propertyNames` dropped; `exclusiveMinimum` / `exclusiveMaximum`
//! and RunComfy's non-standard `validations` become words in the description, where any client
//! can read them and none rejects them; RunComfy's `"type": "float"` reads as `number`.
//!
//! Inlining has a budget, because a schema comes from the upstream and inlining can multiply it:
//! one definition whose three properties refer back to it grows as 3^depth. A reference is never
//! expanded again inside its own expansion (it stays an open `{}`, described as recursive), and
//! the nodes produced are counted: past [`MAX_NODES`] or [`MAX_BYTES`] the schema is given with
//! its references kept (`$ref` into the kept `$defs`), which is no larger than what RunComfy sent.

use serde::Serialize;
use serde_json::{Map, Value};

/// The most schema nodes (objects, arrays, values) inlining may produce.
const MAX_NODES: usize = 20_000;
/// The most bytes of keys and strings inlining may produce (about the schema's JSON size).
const MAX_BYTES: usize = 512 * 1024;
/// The most references expanded one inside another: deeper stays an open `{}` (a chain of
/// distinct definitions is not a cycle, and each level is a few stack frames).
const MAX_DEPTH: usize = 32;

/// A schema every client takes, and the keys it renamed.
#[derive(Debug, Clone, Serialize)]
pub struct SafeSchema {
    pub schema: Value,
    /// `(safe, original)` for every top-level property renamed.
    pub renamed: Vec<(String, String)>,
    /// True when inlining the references would have passed the budget: `schema` keeps its
    /// `$ref`s and the `$defs` / `definitions` they point into.
    pub references_kept: bool,
}

pub fn is_safe_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `width×height` → `width_x_height`: each other character a `_`, `×` read as `x`.
fn safe_key(key: &str, taken: &[String]) -> String {
    let mut safe: String = key
        .chars()
        .map(|c| match c {
            '\u{d7}' => "_x_".to_owned(),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') => c.to_string(),
            _ => "_".to_owned(),
        })
        .collect();
    if safe.is_empty() {
        safe.push_str("field");
    }
    safe.truncate(60);
    let base = safe.clone();
    let mut n = 2;
    while taken.contains(&safe) {
        safe = format!("{base}_{n}");
        n += 1;
    }
    safe
}

pub fn provider_safe(schema: &Value) -> SafeSchema {
    let defs = [schema.get("$defs"), schema.get("definitions")];
    let mut inliner = Tidy {
        defs,
        inline: true,
        nodes: 0,
        bytes: 0,
        path: Vec::new(),
    };
    let (mut clean, references_kept) = match inliner.tidy(schema) {
        Some(inlined) => (inlined, false),
        None => {
            tracing::warn!("a model's input schema is too large with its references inlined: they are kept");
            let mut kept = Tidy {
                inline: false,
                ..inliner
            };
            (kept.tidy(schema).unwrap_or_default(), true)
        }
    };
    let mut renamed = Vec::new();
    if let Some(props) = clean.get_mut("properties").and_then(Value::as_object_mut) {
        let keys: Vec<String> = props.keys().cloned().collect();
        let mut taken: Vec<String> = keys.iter().filter(|k| is_safe_key(k)).cloned().collect();
        let mut fresh = Map::new();
        for key in keys {
            let value = props.remove(&key).unwrap_or_default();
            if is_safe_key(&key) {
                fresh.insert(key, value);
            } else {
                let safe = safe_key(&key, &taken);
                taken.push(safe.clone());
                renamed.push((safe.clone(), key));
                fresh.insert(safe, value);
            }
        }
        *props = fresh;
    }
    if let Some(required) = clean.get_mut("required").and_then(Value::as_array_mut) {
        for entry in required.iter_mut() {
            if let Some((safe, _)) = renamed.iter().find(|(_, original)| entry == original) {
                *entry = Value::String(safe.clone());
            }
        }
    }
    SafeSchema {
        schema: clean,
        renamed,
        references_kept,
    }
}

impl SafeSchema {
    /// `input` with the safe keys back to RunComfy's (an original key given as is is kept).
    pub fn to_wire(&self, input: &Map<String, Value>) -> Map<String, Value> {
        input
            .iter()
            .map(|(key, value)| {
                let original = self
                    .renamed
                    .iter()
                    .find(|(safe, _)| safe == key)
                    .map_or(key.clone(), |(_, original)| original.clone());
                (original, value.clone())
            })
            .collect()
    }
}

/// One pass over a schema, inlining references (`inline`) or keeping them.
struct Tidy<'a> {
    defs: [Option<&'a Value>; 2],
    inline: bool,
    /// What was produced so far, against [`MAX_NODES`] and [`MAX_BYTES`].
    nodes: usize,
    bytes: usize,
    /// The references being expanded, outermost first: one met again is a cycle.
    path: Vec<&'a str>,
}

impl<'a> Tidy<'a> {
    /// Counts one node of `bytes`; `None` once inlining passes the budget (never without it:
    /// a pass that keeps references produces no more than it reads).
    fn spend(&mut self, bytes: usize) -> Option<()> {
        self.nodes += 1;
        self.bytes += bytes;
        if self.inline && (self.nodes > MAX_NODES || self.bytes > MAX_BYTES) {
            return None;
        }
        Some(())
    }

    fn definition(&self, target: &str) -> Option<&'a Value> {
        target
            .strip_prefix("#/$defs/")
            .and_then(|name| self.defs[0]?.get(name))
            .or_else(|| {
                target
                    .strip_prefix("#/definitions/")
                    .and_then(|name| self.defs[1]?.get(name))
            })
    }

    fn tidy(&mut self, value: &'a Value) -> Option<Value> {
        let object = match value {
            Value::Object(object) => object,
            Value::Array(items) => {
                self.spend(2)?;
                return items
                    .iter()
                    .map(|v| self.tidy(v))
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array);
            }
            Value::String(s) => {
                self.spend(s.len() + 2)?;
                return Some(value.clone());
            }
            other => {
                self.spend(8)?;
                return Some(other.clone());
            }
        };
        self.spend(2)?;
        if self.inline {
            if let Some(target) = object.get("$ref").and_then(Value::as_str) {
                return self.inline_ref(object, target);
            }
        }
        let mut out = Map::new();
        let mut notes = Vec::new();
        for (key, v) in object {
            self.spend(key.len())?;
            match key.as_str() {
                "$schema" | "$id" | "additionalProperties" | "propertyNames" => {}
                // Kept only with their references; inlined, nothing points into them.
                "$defs" | "definitions" if self.inline => {}
                "exclusiveMinimum" => notes.push(format!("must be greater than {v}")),
                "exclusiveMaximum" => notes.push(format!("must be less than {v}")),
                "validations" => notes.extend(
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|rule| rule.get("validation_error").and_then(Value::as_str))
                        .map(str::to_owned),
                ),
                "type" => {
                    let read = super::validate::standard_type(v);
                    out.insert(key.clone(), self.tidy_owned(read)?);
                }
                // `properties` and `$defs` map names to schemas: their keys are not keywords.
                "properties" | "$defs" | "definitions" => {
                    let mut props = Map::new();
                    for (name, schema) in v.as_object().into_iter().flatten() {
                        self.spend(name.len())?;
                        props.insert(name.clone(), self.tidy(schema)?);
                    }
                    out.insert(key.clone(), Value::Object(props));
                }
                _ => {
                    out.insert(key.clone(), self.tidy(v)?);
                }
            }
        }
        if !notes.is_empty() {
            notes.dedup();
            let before = out.get("description").and_then(Value::as_str).unwrap_or_default();
            let joined = notes.join("; ");
            let text = if before.is_empty() {
                format!("Rules: {joined}.")
            } else {
                format!("{before} Rules: {joined}.")
            };
            self.spend(text.len())?;
            out.insert("description".to_owned(), Value::String(text));
        }
        Some(Value::Object(out))
    }

    /// A value made here (not borrowed from the schema), counted like one.
    fn tidy_owned(&mut self, value: Value) -> Option<Value> {
        self.spend(value.as_str().map_or(8, str::len))?;
        Some(value)
    }

    /// The definition `target` points to, tidied, with the `$ref`'s siblings over it; a cycle
    /// or a reference outside the schema's definitions is an open `{}`.
    fn inline_ref(&mut self, object: &'a Map<String, Value>, target: &'a str) -> Option<Value> {
        let cycle = self.path.contains(&target);
        let mut inlined = match self.definition(target) {
            Some(found) if !cycle && self.path.len() < MAX_DEPTH => {
                self.path.push(target);
                let inlined = self.tidy(found);
                self.path.pop();
                inlined?
            }
            Some(_) if cycle => {
                serde_json::json!({"description": "Recursive: the same shape as the enclosing value."})
            }
            Some(_) | None => Value::Object(Map::new()),
        };
        // Siblings of a `$ref` (a description, a default) still say something.
        if let Some(into) = inlined.as_object_mut() {
            for (key, v) in object.iter().filter(|(k, _)| k.as_str() != "$ref") {
                self.spend(key.len())?;
                into.insert(key.clone(), self.tidy(v)?);
            }
        }
        Some(inlined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsafe_keys_refs_and_unknown_keywords_are_made_safe() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "$defs": {"Size": {"type": "string", "enum": ["1024x1024(1:1)"]}},
            "properties": {
                "prompt": {"type": "string"},
                "width×height": {"$ref": "#/$defs/Size", "default": "1024x1024(1:1)"},
                "scale": {"type": "number", "exclusiveMinimum": 0},
                "image": {"type": "array", "validations": [{"validation_error": "File size must be less than 30 MB."}]}
            },
            "required": ["prompt", "width×height"]
        });
        let safe = provider_safe(&schema);
        let text = safe.schema.to_string();
        for banned in [
            "$schema",
            "$defs",
            "$ref",
            "additionalProperties",
            "exclusiveMinimum",
            "validations",
            "×",
        ] {
            assert!(!text.contains(banned), "{banned} in {text}");
        }
        assert_eq!(safe.renamed, [("width_x_height".to_owned(), "width×height".to_owned())]);
        assert_eq!(
            safe.schema["properties"]["width_x_height"]["enum"],
            json!(["1024x1024(1:1)"])
        );
        assert_eq!(safe.schema["required"], json!(["prompt", "width_x_height"]));
        assert!(text.contains("File size must be less than 30 MB."));
        assert!(safe.schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| is_safe_key(k)));
        let input = json!({"prompt": "p", "width_x_height": "1024x1024(1:1)"});
        let wire = safe.to_wire(input.as_object().unwrap());
        assert_eq!(
            Value::Object(wire),
            json!({"prompt": "p", "width×height": "1024x1024(1:1)"})
        );
    }

    #[test]
    fn a_cycle_of_refs_ends() {
        let schema = json!({"$defs": {"A": {"$ref": "#/$defs/A"}}, "properties": {"a": {"$ref": "#/$defs/A"}}});
        let safe = provider_safe(&schema);
        assert!(!safe.schema.to_string().contains("$ref"));
        assert!(!safe.references_kept);
    }

    /// Issue 34, finding 1: one definition whose three properties refer back to it grew as
    /// 3^16 (18 GB). Each reference is expanded once on its path, so this ends small.
    #[test]
    fn a_fanned_out_recursive_ref_is_expanded_once_on_its_path() {
        let schema = json!({
            "type": "object",
            "$defs": {"Node": {"type": "object", "properties": {
                "a": {"$ref": "#/$defs/Node"}, "b": {"$ref": "#/$defs/Node"}, "c": {"$ref": "#/$defs/Node"}
            }}},
            "properties": {"tree": {"$ref": "#/$defs/Node"}, "prompt": {"type": "string"}}
        });
        let safe = provider_safe(&schema);
        let text = safe.schema.to_string();
        assert!(text.len() < 2_000, "{text}");
        assert!(!safe.references_kept);
        assert!(text.contains("Recursive"), "{text}");
    }

    /// Definitions that fan out without a cycle (each level refers three times to the next)
    /// grow past the budget when inlined: the schema keeps its references instead.
    #[test]
    fn a_schema_too_large_to_inline_keeps_its_references() {
        let mut defs = Map::new();
        for level in 0..20 {
            let next = format!("#/$defs/L{}", level + 1);
            defs.insert(
                format!("L{level}"),
                json!({"type": "object", "properties": {"a": {"$ref": next}, "b": {"$ref": next}, "c": {"$ref": next}}}),
            );
        }
        defs.insert("L20".to_owned(), json!({"type": "float"}));
        let schema = json!({
            "type": "object", "$defs": defs,
            "properties": {"width×height": {"$ref": "#/$defs/L0"}}, "required": ["width×height"]
        });
        let safe = provider_safe(&schema);
        assert!(safe.references_kept);
        let text = safe.schema.to_string();
        assert!(text.len() < 10_000, "no larger than what was sent: {}", text.len());
        assert!(text.contains("#/$defs/L0") && text.contains("\"$defs\""), "{text}");
        assert_eq!(safe.renamed, [("width_x_height".to_owned(), "width×height".to_owned())]);
        assert_eq!(safe.schema["$defs"]["L20"]["type"], "number");
    }
}
