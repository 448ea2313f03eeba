//! Judging a submit to a catalogue model (any but Dreamina's two, which [`super::input`] judges
//! by hand) against the `input_schema` its entry publishes, as upstream does.
//!
//! The schemas are RunComfy's dialect of JSON Schema: `"type": "float"` for a number (Dreamina's
//! `scale`), media inputs carry formats no standard knows (`image_uris`) and some carry a
//! `validations` list of their own. A float is a number, as RunComfy's own clients read it; a
//! format is an annotation; a `validations` rule (`file_size_mb<`, `width/height>`,
//! `width_pixels>`, …) is applied to each image given as a data URI, refused with the rule's own
//! `validation_error` (a URL's file is not fetched here). Problems come back all at once in the same 422 `detail` shape as Dreamina's,
//! `loc` naming the field.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

use super::catalogue;
use super::input::{self, Violation};

/// An offending value shown in a message at most this long; longer ones (a data URI, a long
/// text) are named, not echoed.
const SHOWN_VALUE_CHARS: usize = 120;

/// Parses `body` and checks it against `model`'s schema; the parsed body when it passes.
pub(crate) fn validate(model: &str, body: &[u8]) -> Result<Value, Vec<Violation>> {
    let value = Value::Object(input::parse_object(body)?);
    let Some(validator) = validators().get(model) else {
        // Not a catalogue model: the caller checked, so this is a bug, not bad input.
        return Err(vec![Violation::new(None, format!("no schema for {model}"), "missing")]);
    };
    let mut violations: Vec<Violation> = validator.iter_errors(&value).map(violation).collect();
    if violations.is_empty() {
        if let Some(entry) = catalogue::find(model) {
            violations.extend(media_rules(&entry["input_schema"], &value));
        }
    }
    if violations.is_empty() {
        Ok(value)
    } else {
        Err(violations)
    }
}

fn violation(error: jsonschema::ValidationError<'_>) -> Violation {
    let shown = error.instance().to_string().chars().count() <= SHOWN_VALUE_CHARS;
    let msg = if shown {
        error.to_string()
    } else {
        error.masked_with("the value").to_string()
    };
    let loc: Vec<String> = error
        .instance_path()
        .as_str()
        .split('/')
        .skip(1)
        .map(|part| part.replace("~1", "/").replace("~0", "~"))
        .collect();
    Violation::at(&loc, msg, error.kind().keyword())
}

/// Each broken `validations` rule of a media field, for the images given as data URIs.
fn media_rules(schema: &Value, body: &Value) -> Vec<Violation> {
    let mut found = Vec::new();
    let Some(properties) = schema["properties"].as_object() else {
        return found;
    };
    for (key, property) in properties {
        let Some(rules) = property["validations"].as_array() else {
            continue;
        };
        let given: Vec<&str> = match &body[key] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        for value in given {
            let Some((bytes, size)) = measured(value) else {
                continue;
            };
            let broken = rules.iter().find(|rule| {
                let (Some(name), Some(limit)) = (rule["validation_rule"].as_str(), rule["validation_value"].as_f64())
                else {
                    return false;
                };
                let (measure, above) = match (name.strip_suffix('>'), name.strip_suffix('<')) {
                    (Some(m), _) => (m, true),
                    (_, Some(m)) => (m, false),
                    _ => return false,
                };
                let actual = match (measure, size) {
                    ("file_size_mb", _) => bytes as f64 / (1024.0 * 1024.0),
                    ("width_pixels", Some((w, _))) => f64::from(w),
                    ("height_pixels", Some((_, h))) => f64::from(h),
                    ("width/height", Some((w, h))) if h > 0 => f64::from(w) / f64::from(h),
                    _ => return false,
                };
                if above {
                    actual <= limit
                } else {
                    actual >= limit
                }
            });
            if let Some(rule) = broken {
                let said = rule["validation_error"].as_str().unwrap_or("invalid media");
                found.push(Violation::at(&[key.as_str()], said, "value_error"));
            }
        }
    }
    found
}

/// A data URI's decoded size and, for an image, its width and height.
fn measured(value: &str) -> Option<(usize, Option<(u32, u32)>)> {
    use base64::Engine as _;
    let (_, payload) = value.strip_prefix("data:")?.split_once(";base64,")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(payload).ok()?;
    let size = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok());
    Some((bytes.len(), size))
}

/// One compiled validator per catalogue model, built on first use.
fn validators() -> &'static HashMap<&'static str, Validator> {
    static VALIDATORS: OnceLock<HashMap<&'static str, Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        catalogue::entries()
            .iter()
            .filter_map(|entry| {
                let id = entry["model_id"].as_str()?;
                match compile(&entry["input_schema"]) {
                    Ok(validator) => Some((id, validator)),
                    Err(error) => {
                        tracing::error!(model = id, %error, "simulator: catalogue schema does not compile");
                        None
                    }
                }
            })
            .collect()
    })
}

fn compile(schema: &Value) -> Result<Validator, jsonschema::ValidationError<'static>> {
    jsonschema::options()
        // Formats annotate (`image_uris` is RunComfy's own); say so rather than rely on the draft.
        .should_validate_formats(false)
        .should_ignore_unknown_formats(true)
        .build(&floats_as_numbers(schema))
}

/// `schema` with every `"type": "float"` read as `"number"`.
fn floats_as_numbers(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| match (key.as_str(), value.as_str()) {
                    ("type", Some("float")) => (key.clone(), Value::from("number")),
                    _ => (key.clone(), floats_as_numbers(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(floats_as_numbers).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VIDEO: &str = "bytedance/seedance-2.5/text-to-video/1080p";
    const SPEECH: &str = "minimax/speech-2.6/text-to-audio";
    const SEEDREAM5: &str = "bytedance/seedream-5.0-pro/image-to-image";

    fn check(model: &str, body: Value) -> Result<Value, Vec<Violation>> {
        validate(model, body.to_string().as_bytes())
    }

    #[test]
    fn every_catalogue_schema_compiles() {
        assert_eq!(validators().len(), catalogue::entries().len());
    }

    #[test]
    fn a_valid_body_passes_and_comes_back_parsed() {
        let body = json!({"prompt": "x", "duration": 5, "unknown_extra": true});
        assert_eq!(check(VIDEO, body.clone()), Ok(body));
    }

    #[test]
    fn an_out_of_range_field_is_located_and_explained() {
        let errors = check(VIDEO, json!({"prompt": "x", "duration": 99})).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].loc, ["body", "duration"]);
        assert!(
            errors[0].msg.contains("99") && errors[0].msg.contains("30"),
            "{}",
            errors[0].msg
        );
        assert_eq!(errors[0].kind, "maximum");
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let errors = check(VIDEO, json!({"duration": "long", "aspect_ratio": "5:4"})).unwrap_err();
        let kinds: Vec<&str> = errors.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(errors.len(), 3, "{kinds:?}");
        for kind in ["required", "type", "enum"] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        let required = errors.iter().find(|e| e.kind == "required").unwrap();
        assert_eq!(required.loc, ["body"]);
        assert!(required.msg.contains("prompt"), "{}", required.msg);
    }

    #[test]
    fn unknown_formats_and_keywords_are_tolerated() {
        // `image` has format `image_uris` and a `validations` list; neither is a failure.
        let body = json!({"prompt": "x", "image": ["not even a url"]});
        assert!(check(SEEDREAM5, body).is_ok());
        let errors = check(SEEDREAM5, json!({"prompt": "x", "image": []})).unwrap_err();
        assert_eq!(errors[0].loc, ["body", "image"]);
        assert_eq!(errors[0].kind, "minItems");
    }

    /// RunComfy's `validations` on Seedream 5.0 Pro's images, applied to a data URI as upstream
    /// would: a 64×10 image is refused in the rule's own words.
    #[test]
    fn a_media_rule_is_applied_in_its_own_words() {
        use base64::Engine as _;
        let png = |w, h| {
            let mut bytes = Vec::new();
            image::RgbImage::new(w, h)
                .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
                .unwrap();
            format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )
        };
        let errors = check(SEEDREAM5, json!({"prompt": "x", "image": [png(64, 10)]})).unwrap_err();
        assert_eq!(errors[0].loc, ["body", "image"]);
        assert_eq!(
            errors[0].msg,
            "The uploaded image width and height must exceed 14 pixels."
        );
        let errors = check(SEEDREAM5, json!({"prompt": "x", "image": [png(400, 20)]})).unwrap_err();
        assert_eq!(errors[0].msg, "The aspect ratio range should be 1:16 to 16:1.");
        assert!(check(SEEDREAM5, json!({"prompt": "x", "image": [png(64, 48)]})).is_ok());
    }

    #[test]
    fn long_values_are_not_echoed() {
        let text = "a".repeat(6000);
        let errors = check(SPEECH, json!({ "text": text })).unwrap_err();
        assert_eq!(errors[0].loc, ["body", "text"]);
        assert!(errors[0].msg.len() < 200, "{}", errors[0].msg);
    }

    #[test]
    fn bodies_that_are_not_objects_fail_like_dreamina_ones() {
        assert_eq!(check(SPEECH, json!([1])).unwrap_err()[0].kind, "model_attributes_type");
        assert_eq!(validate(SPEECH, b"{").unwrap_err()[0].kind, "json_invalid");
    }
}
