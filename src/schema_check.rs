//! Values checked against a JSON Schema with the `jsonschema` crate, and the first rule one breaks
//! said as one short sentence that names the value's path: "is 9; it must be from 1 to 8
//! (default 1)". Rules are stated once, in the schema (schemars attributes on the Rust types); the
//! tools check a call against the very schema `tools/list` gives the client, and the CLI and the
//! job service check a Dreamina request against its type's own schema.
//!
//! The crate is built without its network resolvers (a `$ref` is never fetched) and formats are
//! annotations. A message never echoes a long or nested value: only short scalars are shown,
//! so what a hostile call sends is never copied into the answer.

use jsonschema::{error::ValidationErrorKind, paths::LocationSegment, ValidationError, Validator};
use schemars::{generate::SchemaSettings, JsonSchema};
use serde_json::Value;

/// Not blank: at least one character that is not white space.
pub(crate) const NOT_BLANK: &str = r"\S";
/// A RunComfy request id: safe as one segment of a URL path.
pub(crate) const REQUEST_ID: &str = "^[A-Za-z0-9_-]+$";
/// A data URI (of an image: what follows is checked when it is decoded).
pub(crate) const DATA_URI: &str = r"^\s*[Dd][Aa][Tt][Aa]:";

/// What the patterns our schemas use mean, for the messages: a regex says nothing to a model.
pub(crate) const PATTERNS: [(&str, &str); 3] = [
    (NOT_BLANK, "is blank; it must hold some text"),
    (
        REQUEST_ID,
        "is not a request_id: one holds only letters, digits, '-' and '_', as generate_image returned it (e.g. 3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a2b)",
    ),
    (DATA_URI, "must be a data:image/...;base64, URI of the image"),
];

/// A string shown in a message at most this long; a longer one is described by its length.
const SHOWN_CHARS: usize = 60;

/// A rule a value broke: where (`count`, `images[2]`, `input.size`), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Broken {
    /// The value's path; empty for the whole value.
    pub field: String,
    /// A sentence about the value, without its name: "is 9; it must be from 1 to 8 (default 1)".
    pub message: String,
}

/// A schema compiled once, with the schema kept to phrase what a failure means.
pub(crate) struct Rules {
    schema: Value,
    validator: Validator,
}

impl Rules {
    /// Compiles `schema`; `Err` says why it does not compile.
    pub(crate) fn compile(schema: Value) -> Result<Self, String> {
        let validator = jsonschema::options()
            .should_validate_formats(false)
            .should_ignore_unknown_formats(true)
            .build(&schema)
            .map_err(|e| e.to_string())?;
        Ok(Self { schema, validator })
    }

    /// The rules of `T`'s own schema (as schemars derives it, subschemas inlined).
    pub(crate) fn of<T: JsonSchema>() -> Self {
        let schema = SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator()
            .into_root_schema_for::<T>();
        // Our own derived schemas: a unit test compiles each one.
        Self::compile(schema.to_value()).expect("a derived schema compiles")
    }

    /// The first rule `value` breaks, said in a sentence.
    pub(crate) fn check(&self, value: &Value) -> Result<(), Broken> {
        match self.validator.iter_errors(value).next() {
            None => Ok(()),
            Some(error) => Err(self.broken(&error)),
        }
    }

    fn broken(&self, error: &ValidationError<'_>) -> Broken {
        let mut field = path_of(error);
        let value = error.instance().as_ref();
        // The subschema whose keyword failed: its other keywords complete the sentence.
        let keyword_at = error.schema_path().as_str();
        let here = self
            .schema
            .pointer(keyword_at.rsplit_once('/').map_or("", |(parent, _)| parent))
            .unwrap_or(&Value::Null);
        let message = match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                field = join(&field, name);
                "is missing; it is required".to_owned()
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                field = join(&field, unexpected.first().map_or("", String::as_str));
                format!("is not accepted here. Accepted: {}", names(here).join(", "))
            }
            ValidationErrorKind::Type { .. } => {
                format!("is {}; it must be {}", shown(value), expected(&here["type"]))
            }
            ValidationErrorKind::Minimum { .. }
            | ValidationErrorKind::Maximum { .. }
            | ValidationErrorKind::ExclusiveMinimum { .. }
            | ValidationErrorKind::ExclusiveMaximum { .. } => {
                format!("is {}; it must be {}", plain(value), range(here))
            }
            ValidationErrorKind::MaxLength { limit } => format!(
                "has {}; at most {limit} are taken",
                of(chars(value), "character", "characters")
            ),
            ValidationErrorKind::MinLength { limit } if chars(value) == 0 => {
                format!(
                    "must not be empty (at least {})",
                    of(*limit as usize, "character", "characters")
                )
            }
            ValidationErrorKind::MinLength { limit } => {
                format!(
                    "has {}; at least {limit} are needed",
                    of(chars(value), "character", "characters")
                )
            }
            ValidationErrorKind::MaxItems { limit } => {
                format!(
                    "has {}; at most {limit} are taken",
                    of(entries(value), "entry", "entries")
                )
            }
            ValidationErrorKind::MinItems { limit } => {
                format!(
                    "has {}; at least {limit} are needed",
                    of(entries(value), "entry", "entries")
                )
            }
            ValidationErrorKind::Enum { options } => {
                let options: Vec<String> = options
                    .as_array()
                    .map(|o| o.iter().map(plain).collect())
                    .unwrap_or_default();
                format!("is {}; it must be one of: {}", shown(value), options.join(", "))
            }
            // An entry of a list may also go.
            ValidationErrorKind::Pattern { pattern } if pattern == NOT_BLANK && field.ends_with(']') => {
                "is blank: give a value, or leave the entry out".to_owned()
            }
            ValidationErrorKind::Pattern { pattern } => match PATTERNS.iter().find(|(p, _)| p == pattern) {
                Some((_, meaning)) => (*meaning).to_owned(),
                None => format!("does not have the expected form (the pattern {pattern})"),
            },
            ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
                // The alternative of the value's own type says what is wrong with it; when no
                // alternative has its type, the types are what to change.
                let same_place = |e: &ValidationError<'_>| e.instance_path() == error.instance_path();
                let fitting = context
                    .iter()
                    .find(|errors| !errors.iter().any(|e| same_place(e) && e.kind().keyword() == "type"));
                match fitting.and_then(|errors| errors.first()) {
                    Some(inner) => return self.broken(inner),
                    None => {
                        let choices = here["anyOf"].as_array().or(here["oneOf"].as_array());
                        let kinds: Vec<String> = choices
                            .into_iter()
                            .flatten()
                            .map(|choice| expected(&choice["type"]))
                            .collect();
                        format!("is {}; it must be {}", shown(value), kinds.join(" or "))
                    }
                }
            }
            // Kinds our schemas do not use: the crate's own words, without the value.
            _ => error.masked_with("the value").to_string(),
        };
        Broken { field, message }
    }
}

/// `images[2]`, `input.size`: the path as the arguments spell it.
fn path_of(error: &ValidationError<'_>) -> String {
    let mut path = String::new();
    for segment in error.instance_path().segments() {
        match segment {
            LocationSegment::Property(name) => path = join(&path, &name),
            LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn names(schema: &Value) -> Vec<String> {
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The bounds a number must be within, with the default when there is one.
fn range(schema: &Value) -> String {
    let bound = |key: &str| schema.get(key).filter(|v| v.is_number());
    let bound = |key: &str| bound(key).map(plain);
    let mut said = match (bound("minimum"), bound("maximum")) {
        (Some(min), Some(max)) => format!("from {min} to {max}"),
        (Some(min), None) => format!("at least {min}"),
        (None, Some(max)) => format!("at most {max}"),
        (None, None) => String::new(),
    };
    for (key, words) in [("exclusiveMinimum", "greater than"), ("exclusiveMaximum", "less than")] {
        if let Some(limit) = bound(key) {
            if !said.is_empty() {
                said.push_str(" and ");
            }
            said.push_str(&format!("{words} {limit}"));
        }
    }
    match schema.get("default").filter(|d| !d.is_null()) {
        Some(default) => format!("{said} (default {})", plain(default)),
        None => said,
    }
}

/// What a `type` keyword asks for, in words.
fn expected(types: &Value) -> String {
    let one = |t: &Value| match t.as_str() {
        Some("string") => "a string",
        Some("integer") => "a whole number",
        Some("number") => "a number",
        Some("boolean") => "true or false",
        Some("array") => "a list",
        Some("object") => "an object",
        Some("null") => "null",
        _ => "a value of another type",
    };
    match types {
        // Null is how a call leaves an optional argument out, not a value to ask for.
        Value::Array(types) => types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        other => one(other).to_owned(),
    }
}

/// A value as a message may show it: short scalars themselves, the rest by what they are.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(_) => format!("the number {}", plain(value)),
        Value::String(s) if s.chars().count() <= SHOWN_CHARS => format!("the string {s:?}"),
        Value::String(s) => format!("a string of {} characters", s.chars().count()),
        Value::Array(items) => format!("a list of {}", of(items.len(), "entry", "entries")),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A value as written in a message: strings without quotes, whole numbers without a `.0`.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

fn entries(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

/// `n` and the noun: "1 entry", "3 entries".
fn of(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules() -> Rules {
        Rules::compile(json!({
            "type": "object",
            "properties": {
                "count": {"type": "integer", "minimum": 1, "maximum": 8, "default": 1},
                "wait": {"type": "integer", "minimum": 1},
                "prompt": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": NOT_BLANK},
                "status": {"type": "string", "enum": ["all", "done"]},
                "flag": {"type": "boolean"},
                "id": {"type": "string", "pattern": REQUEST_ID},
                "odd": {"type": "string", "pattern": "^x+$"},
                "search": {"type": ["string", "null"]},
                "images": {"type": "array", "maxItems": 2, "items": {"anyOf": [
                    {"type": "string", "pattern": NOT_BLANK},
                    {"type": "object", "properties": {"file_id": {"type": "string"}}, "required": ["file_id"]},
                ]}},
            },
            "required": ["prompt"],
        }))
        .unwrap()
    }

    fn said(value: Value) -> (String, String) {
        let broken = rules().check(&value).unwrap_err();
        (broken.field, broken.message)
    }

    fn case(value: Value, field: &str, message: &str) {
        assert_eq!(said(value.clone()), (field.to_owned(), message.to_owned()), "{value}");
    }

    #[test]
    fn each_kind_of_broken_rule_is_one_sentence_naming_its_path() {
        case(json!({}), "prompt", "is missing; it is required");
        case(
            json!({"prompt": "x", "count": 9}),
            "count",
            "is 9; it must be from 1 to 8 (default 1)",
        );
        case(json!({"prompt": "x", "wait": 0}), "wait", "is 0; it must be at least 1");
        case(
            json!({"prompt": "abcdef"}),
            "prompt",
            "has 6 characters; at most 5 are taken",
        );
        case(
            json!({"prompt": ""}),
            "prompt",
            "must not be empty (at least 1 character)",
        );
        case(json!({"prompt": "  "}), "prompt", "is blank; it must hold some text");
        case(
            json!({"prompt": "x", "status": "finished"}),
            "status",
            "is the string \"finished\"; it must be one of: all, done",
        );
        case(
            json!({"prompt": "x", "flag": "yes"}),
            "flag",
            "is the string \"yes\"; it must be true or false",
        );
        case(
            json!({"prompt": "x", "count": "three"}),
            "count",
            "is the string \"three\"; it must be a whole number",
        );
        case(
            json!({"prompt": "x", "search": 5}),
            "search",
            "is the number 5; it must be a string",
        );
        case(
            json!({"prompt": "x", "images": ["a", "b", "c"]}),
            "images",
            "has 3 entries; at most 2 are taken",
        );
        case(
            json!({"prompt": "x", "images": ["a", " "]}),
            "images[1]",
            "is blank: give a value, or leave the entry out",
        );
        case(
            json!({"prompt": "x", "images": [7]}),
            "images[0]",
            "is the number 7; it must be a string or an object",
        );
        case(
            json!({"prompt": "x", "images": [{"name": "a"}]}),
            "images[0].file_id",
            "is missing; it is required",
        );
        let (field, message) = said(json!({"prompt": "x", "id": "../x"}));
        assert_eq!(field, "id");
        assert!(message.starts_with("is not a request_id"), "{message}");
        let (_, message) = said(json!({"prompt": "x", "odd": "y"}));
        assert_eq!(message, "does not have the expected form (the pattern ^x+$)");
    }

    #[test]
    fn unknown_names_are_refused_where_the_schema_closes_an_object() {
        let closed = Rules::compile(json!({
            "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false,
        }))
        .unwrap();
        let broken = closed.check(&json!({"a": "x", "b": 1})).unwrap_err();
        assert_eq!(
            (broken.field.as_str(), broken.message.as_str()),
            ("b", "is not accepted here. Accepted: a")
        );
    }

    /// A hostile value is never copied into the answer: long strings and nested values are
    /// described, not shown.
    #[test]
    fn long_and_nested_values_are_described_not_echoed() {
        let long = "A".repeat(10_000);
        let (_, message) = said(json!({"prompt": "x", "flag": long}));
        assert_eq!(message, "is a string of 10000 characters; it must be true or false");
        let mut deep = json!("x");
        for _ in 0..100 {
            deep = json!([deep]);
        }
        let (_, message) = said(json!({"prompt": "x", "count": deep}));
        assert_eq!(message, "is a list of 1 entry; it must be a whole number");
    }
}
