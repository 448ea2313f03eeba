//! A model's input checked against the model's own input schema before anything is sent, with the
//! `jsonschema` crate (built without its network resolvers: a schema's remote `$ref` is never
//! fetched). The schema's own messages come back, each with the path of the value it is about.
//!
//! RunComfy's schemas are a dialect of JSON Schema, read as RunComfy's own clients read them
//! (partner nodes' `update_model_catalog.py` and `inputs.py`): `"type": "float"` is a number
//! ([`normalize`]); item counts given as `"10"` or `10.0` are counts; unknown formats (`image_uri`,
//! `video_uris`, …) are annotations, not asserted (a job reference such as `abc#1` is a valid
//! "image_uri" here: it becomes a URL before the submit); and a media field's `validations` list
//! (`file_size_mb<`, `width/height>`, `width/height<`, `width_pixels>`, `height_pixels>`) is
//! checked on each image this server reads ([`check_media`]), refused in the rule's own
//! `validation_error`. A schema that still does not compile is not a reason to refuse a paid
//! user's job: the input then goes to RunComfy unchecked, which validates it itself.

use base64::Engine as _;
use serde_json::{Map, Value};

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

/// A `type` in RunComfy's dialect as JSON Schema spells it: `float` (Dreamina's `scale`) and
/// `double` are `number`, `int` is `integer`, `bool` is `boolean`, `str` is `string`.
pub(crate) fn standard_type(given: &Value) -> Value {
    let one = |t: &Value| match t.as_str().map(str::trim) {
        Some("float" | "double" | "decimal") => Value::from("number"),
        Some("int") => Value::from("integer"),
        Some("bool") => Value::from("boolean"),
        Some("str" | "text") => Value::from("string"),
        _ => t.clone(),
    };
    match given {
        Value::Array(types) => Value::Array(types.iter().map(one).collect()),
        other => one(other),
    }
}

/// Keywords whose value is a count: RunComfy's schemas may give one as a string or a float.
const COUNTS: [&str; 6] = [
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
];

/// `schema` in standard JSON Schema: every `type` through [`standard_type`], every count a
/// non-negative integer (one that is not a number is dropped: it constrains nothing we can read).
pub(crate) fn normalize(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => {
            let mut out = Map::with_capacity(object.len());
            for (key, value) in object {
                let value = match key.as_str() {
                    "type" => standard_type(value),
                    k if COUNTS.contains(&k) => {
                        let n = value
                            .as_f64()
                            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                            .filter(|n: &f64| n.is_finite() && *n >= 0.0);
                        match n {
                            Some(n) => Value::from(n.floor() as u64),
                            None => continue,
                        }
                    }
                    // `enum`, `const`, `default` and `examples` are values, not schemas.
                    "enum" | "const" | "default" | "examples" => value.clone(),
                    _ => normalize(value),
                };
                out.insert(key.clone(), value);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

pub fn check(schema: &Value, input: &Value) -> Checked {
    let schema = normalize(schema);
    let validator = match jsonschema::options()
        .should_validate_formats(false)
        .should_ignore_unknown_formats(true)
        .build(&schema)
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

/// What can be known of one media value before it is sent: its bytes and pixels when it is
/// a data URI this server made or was given (a URL is RunComfy's to fetch and judge).
#[derive(Debug, Clone, Copy, PartialEq)]
struct MediaFacts {
    bytes: usize,
    /// `(width, height)` when the bytes are an image whose header says.
    pixels: Option<(u32, u32)>,
}

impl MediaFacts {
    fn of(value: &str) -> Option<Self> {
        let rest = value.strip_prefix("data:")?;
        let (head, payload) = rest.split_once(',')?;
        if !head.ends_with(";base64") {
            return Some(Self {
                bytes: payload.len(),
                pixels: None,
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(payload.trim()).ok()?;
        let pixels = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .ok()
            .and_then(|reader| reader.into_dimensions().ok());
        Some(Self {
            bytes: bytes.len(),
            pixels,
        })
    }

    /// The measure a rule is about (`file_size_mb`, `width_pixels`, …), when known.
    fn measure(&self, name: &str) -> Option<f64> {
        let (w, h) = self.pixels.map(|(w, h)| (f64::from(w), f64::from(h))).unzip();
        match name {
            "file_size_mb" => Some(self.bytes as f64 / (1024.0 * 1024.0)),
            "width_pixels" => w,
            "height_pixels" => h,
            "width/height" => w.zip(h).filter(|(_, h)| *h > 0.0).map(|(w, h)| w / h),
            _ => None,
        }
    }
}

/// Checks one media `value` (a URL or a data URI, as it will be sent) against the `validations`
/// list of its `property` in the schema, as RunComfy's own client does: a rule `name>` wants
/// the measure above its value, `name<` below. The first broken rule's own `validation_error`
/// is the answer. Rules about what cannot be known here (a URL's file) are RunComfy's to check.
pub(crate) fn check_media(property: &Value, value: &str) -> Result<(), String> {
    let Some(rules) = property.get("validations").and_then(Value::as_array) else {
        return Ok(());
    };
    let mut facts = None;
    for rule in rules {
        let (Some(name), Some(limit)) = (
            rule.get("validation_rule").and_then(Value::as_str),
            rule.get("validation_value")
                .and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))),
        ) else {
            continue;
        };
        let (measure, above) = match name.trim() {
            n if n.ends_with('>') => (&n[..n.len() - 1], true),
            n if n.ends_with('<') => (&n[..n.len() - 1], false),
            _ => continue,
        };
        let facts = match &facts {
            Some(known) => known,
            None => match MediaFacts::of(value) {
                Some(known) => facts.insert(known),
                None => return Ok(()),
            },
        };
        let Some(actual) = facts.measure(measure.trim()) else {
            continue;
        };
        let broken = if above { actual <= limit } else { actual >= limit };
        if broken {
            let said = rule
                .get("validation_error")
                .and_then(Value::as_str)
                .map(|s| crate::text::ellipsis(s, 300))
                .unwrap_or_else(|| format!("must have {measure} {} {limit}", if above { ">" } else { "<" }));
            return Err(said);
        }
    }
    Ok(())
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

    /// Issue 40, finding 7: Dreamina's published schema says `"type": "float"`; the crate does not
    /// know it, and the whole input went out unchecked.
    #[test]
    fn runcomfys_float_type_and_item_counts_are_read_and_enforced() {
        let schema = json!({"type": "object", "properties": {
            "scale": {"type": "float", "minimum": 0, "maximum": 1},
            "images": {"type": "array", "maxItems": "2", "minItems": 1.0},
        }});
        assert_eq!(check(&schema, &json!({"scale": 0.5, "images": ["a"]})), Checked::Valid);
        let Checked::Invalid(v) = check(&schema, &json!({"scale": "high", "images": ["a", "b", "c"]})) else {
            panic!("not refused")
        };
        let text = v.to_string();
        assert!(
            text.contains("input.scale: \"high\" is not of type \"number\""),
            "{text}"
        );
        assert!(text.contains("input.images"), "{text}");
        let Checked::Invalid(v) = check(&schema, &json!({"scale": 2})) else {
            panic!("not refused")
        };
        assert!(v.to_string().contains("greater than the maximum of 1"), "{v}");
    }

    fn png_uri(width: u32, height: u32) -> String {
        let mut bytes = Vec::new();
        image::RgbImage::new(width, height)
            .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// RunComfy's `validations` list, as Seedream 5.0 Pro publishes it: each rule is checked on
    /// the image as sent and refused in its own words; a URL is left to RunComfy.
    #[test]
    fn a_media_fields_validations_are_enforced_in_their_own_words() {
        let property = json!({"type": "array", "format": "image_uris", "validations": [
            {"validation_error": "File size must be less than 30 MB.", "validation_rule": "file_size_mb<", "validation_value": 30},
            {"validation_error": "The aspect ratio range should be 1:16 to 16:1.", "validation_rule": "width/height>", "validation_value": 0.0625},
            {"validation_error": "The aspect ratio range should be 1:16 to 16:1.", "validation_rule": "width/height<", "validation_value": 16},
            {"validation_error": "The uploaded image width and height must exceed 14 pixels.", "validation_rule": "width_pixels>", "validation_value": 14},
            {"validation_error": "The uploaded image width and height must exceed 14 pixels.", "validation_rule": "height_pixels>", "validation_value": 14},
        ]});
        assert_eq!(check_media(&property, &png_uri(64, 48)), Ok(()));
        assert_eq!(
            check_media(&property, &png_uri(64, 10)),
            Err("The uploaded image width and height must exceed 14 pixels.".to_owned())
        );
        assert_eq!(
            check_media(&property, &png_uri(340, 20)),
            Err("The aspect ratio range should be 1:16 to 16:1.".to_owned())
        );
        assert_eq!(check_media(&property, "https://example.com/tiny.png"), Ok(()));
        let small = json!({"validations": [
            {"validation_error": "File size must be less than 0.0001 MB.", "validation_rule": "file_size_mb<", "validation_value": 0.0001}
        ]});
        assert_eq!(
            check_media(&small, &png_uri(64, 48)),
            Err("File size must be less than 0.0001 MB.".to_owned())
        );
    }

    #[test]
    fn a_schema_that_does_not_compile_leaves_the_input_unchecked() {
        let schema = json!({"type": "object", "properties": {"x": {"type": "no-such-type"}}});
        assert!(matches!(check(&schema, &json!({"x": 1})), Checked::Unchecked(_)));
    }
}
