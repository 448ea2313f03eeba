//! A model's input checked against the model's own input schema before anything is sent, with the
//! `jsonschema` crate (built without its network resolvers: a schema's remote `$ref` is never
//! fetched). The schema's own messages come back, each with the path of the value it is about.
//!
//! Tolerant where RunComfy's schemas go beyond the standard: unknown keywords (Seedream 5.0 Pro's
//! `validations`) and unknown formats (`image_uri`, `video_uris`, …) are ignored, and formats are
//! not asserted at all (a job reference such as `abc#1` is a valid "image_uri" here: it becomes a
//! URL before the submit). A schema the crate cannot compile is not a reason to refuse a paid
//! user's job: the input then goes to RunComfy unchecked, which validates it itself.

use serde_json::Value;

/// The most messages one answer lists; the rest are counted.
const MAX_MESSAGES: usize = 10;

/// Why an input does not meet its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations {
    /// `path: message`, in the schema's words (`path` is `input` for the whole object).
    pub messages: Vec<String>,
    /// Violations past [`MAX_MESSAGES`], not listed.
    pub more: usize,
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.messages.join("; "))?;
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

/// How an input fared against its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Valid,
    Invalid(Violations),
    /// The schema could not be compiled (the reason): nothing was checked.
    Unchecked(String),
}

pub fn check(schema: &Value, input: &Value) -> Checked {
    let validator = match jsonschema::options()
        .should_validate_formats(false)
        .should_ignore_unknown_formats(true)
        .build(schema)
    {
        Ok(validator) => validator,
        Err(e) => {
            tracing::warn!("a model's input schema does not compile, so input is sent unchecked: {e}");
            return Checked::Unchecked(e.to_string());
        }
    };
    let mut messages = Vec::new();
    let mut more = 0;
    for error in validator.iter_errors(input) {
        if messages.len() == MAX_MESSAGES {
            more += 1;
            continue;
        }
        let path = error.instance_path().to_string();
        let shown = if path.is_empty() {
            "input".to_owned()
        } else {
            format!("input{}", path.replace('/', "."))
        };
        messages.push(format!("{shown}: {error}"));
    }
    if messages.is_empty() {
        Checked::Valid
    } else {
        Checked::Invalid(Violations { messages, more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn video_schema() -> Value {
        json!({"type": "object", "properties": {
            "prompt": {"type": "string"},
            "duration": {"type": "integer", "minimum": 4, "maximum": 30},
            "images": {"type": "array", "format": "image_uris", "maxItems": 2,
                       "validations": [{"validation_rule": "file_size_mb<", "validation_value": 30}]},
        }, "required": ["prompt"]})
    }

    #[test]
    fn a_valid_input_passes_whatever_its_formats_and_extra_keywords() {
        let input = json!({"prompt": "a fox", "duration": 5, "images": ["abc#1", "/tmp/x.png"]});
        assert_eq!(check(&video_schema(), &input), Checked::Valid);
    }

    #[test]
    fn violations_come_back_in_the_schemas_words_with_their_path() {
        let input = json!({"duration": 99, "images": ["a", "b", "c"]});
        let Checked::Invalid(v) = check(&video_schema(), &input) else {
            panic!("not refused")
        };
        let text = v.to_string();
        assert!(text.contains("input: \"prompt\" is a required property"), "{text}");
        assert!(
            text.contains("input.duration: 99 is greater than the maximum of 30"),
            "{text}"
        );
        assert!(text.contains("input.images"), "{text}");
        assert_eq!(v.more, 0);
    }

    #[test]
    fn many_violations_are_counted_past_the_cap() {
        let props: serde_json::Map<String, Value> =
            (0..15).map(|i| (format!("f{i}"), json!({"type": "integer"}))).collect();
        let schema = json!({"type": "object", "properties": props});
        let input: serde_json::Map<String, Value> = (0..15).map(|i| (format!("f{i}"), json!("x"))).collect();
        let Checked::Invalid(v) = check(&schema, &Value::Object(input)) else {
            panic!("not refused")
        };
        assert_eq!((v.messages.len(), v.more), (MAX_MESSAGES, 5));
    }

    #[test]
    fn a_schema_that_does_not_compile_leaves_the_input_unchecked() {
        let schema = json!({"type": "object", "properties": {"x": {"type": "no-such-type"}}});
        assert!(matches!(check(&schema, &json!({"x": 1})), Checked::Unchecked(_)));
    }
}
