//! A model's input schema made provider-safe (REFERENCE.md §2): property keys that are not
//! `[a-zA-Z0-9_.-]{1,64}` (Dreamina's `width×height`) get a safe name, mapped back on submit;
//! `$ref`s into `$defs` / `definitions` are inlined and `$schema`, `$defs`, `definitions`,
//! `$id`, `additionalProperties`, `propertyNames` dropped; `exclusiveMinimum` / `exclusiveMaximum`
//! and RunComfy's non-standard `validations` become words in the description, where any client
//! can read them and none rejects them.

use serde::Serialize;
use serde_json::{Map, Value};

/// How deep `$ref`s are followed: deeper (or a cycle) stays an open `{}`.
const MAX_DEPTH: usize = 16;

/// A schema every client takes, and the keys it renamed.
#[derive(Debug, Clone, Serialize)]
pub struct SafeSchema {
    pub schema: Value,
    /// `(safe, original)` for every top-level property renamed.
    pub renamed: Vec<(String, String)>,
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
    let mut clean = tidy(schema, &defs, 0);
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
    SafeSchema { schema: clean, renamed }
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

fn tidy(value: &Value, defs: &[Option<&Value>; 2], depth: usize) -> Value {
    let Value::Object(object) = value else {
        return match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| tidy(v, defs, depth)).collect()),
            other => other.clone(),
        };
    };
    if let Some(target) = object.get("$ref").and_then(Value::as_str) {
        let found = target
            .strip_prefix("#/$defs/")
            .and_then(|name| defs[0]?.get(name))
            .or_else(|| {
                target
                    .strip_prefix("#/definitions/")
                    .and_then(|name| defs[1]?.get(name))
            });
        let mut inlined = match (found, depth < MAX_DEPTH) {
            (Some(target), true) => tidy(target, defs, depth + 1),
            _ => Value::Object(Map::new()),
        };
        // Siblings of a `$ref` (a description, a default) still say something.
        if let Some(into) = inlined.as_object_mut() {
            for (key, v) in object.iter().filter(|(k, _)| k.as_str() != "$ref") {
                into.insert(key.clone(), tidy(v, defs, depth + 1));
            }
        }
        return inlined;
    }
    let mut out = Map::new();
    let mut notes = Vec::new();
    for (key, v) in object {
        match key.as_str() {
            "$schema" | "$defs" | "definitions" | "$id" | "additionalProperties" | "propertyNames" => {}
            "exclusiveMinimum" => notes.push(format!("must be greater than {v}")),
            "exclusiveMaximum" => notes.push(format!("must be less than {v}")),
            "validations" => notes.extend(
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|rule| rule.get("validation_error").and_then(Value::as_str))
                    .map(str::to_owned),
            ),
            // `properties` maps names to schemas: its keys are not keywords.
            "properties" => {
                let props = v
                    .as_object()
                    .map(|p| p.iter().map(|(k, s)| (k.clone(), tidy(s, defs, depth))).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            _ => {
                out.insert(key.clone(), tidy(v, defs, depth));
            }
        }
    }
    if !notes.is_empty() {
        let before = out.get("description").and_then(Value::as_str).unwrap_or_default();
        let joined = notes.join("; ");
        let text = if before.is_empty() {
            format!("Rules: {joined}.")
        } else {
            format!("{before} Rules: {joined}.")
        };
        out.insert("description".to_owned(), Value::String(text));
    }
    Value::Object(out)
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
    }
}
