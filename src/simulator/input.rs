//! Validation of the Dreamina 4.0 text-to-image input, as the real API would judge it.
//!
//! The simulator keeps its own copy of the rules (it shares no code with the client) so that a
//! client bug that lets bad input through is caught here with the upstream's 422 shape:
//! pydantic-style `detail` entries with `loc`, `msg` and `type`, all problems reported at once.

use serde::Serialize;
use serde_json::{Map, Value};

/// The only model this simulator serves.
pub(crate) const MODEL_ID: &str = "bytedance/dreamina-4-0/text-to-image";

/// The size key of the upstream schema; the `×` is U+00D7, not the letter x.
pub(crate) const SIZE_KEY: &str = "width\u{00D7}height";

/// The documented size values, in the vendor's order.
pub(crate) const SIZES: [&str; 11] = [
    "1024x1024(1:1)",
    "2048x2048(1:1)",
    "2304x1728(4:3)",
    "2496x1664(3:2)",
    "2560x1440(16:9)",
    "3024x1296(21:9)",
    "4096x4096(1:1)",
    "4694x3520(4:3)",
    "4992x3328(3:2)",
    "5404x3040(16:9)",
    "6198x2656(21:9)",
];

const DEFAULT_SIZE: &str = "2048x2048(1:1)";
const PROMPT_MAX_CHARS: usize = 800;

/// One entry of a 422 `detail` array.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Violation {
    pub(crate) loc: Vec<String>,
    pub(crate) msg: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

impl Violation {
    fn new(field: Option<&str>, msg: impl Into<String>, kind: &str) -> Violation {
        let mut loc = vec!["body".to_string()];
        loc.extend(field.map(str::to_string));
        Violation {
            loc,
            msg: msg.into(),
            kind: kind.to_string(),
        }
    }
}

/// What the job needs from a valid input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidInput {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) force_single: bool,
}

/// Parses and validates a submit body; unknown extra fields are ignored, as upstream does.
pub(crate) fn validate(body: &[u8]) -> Result<(Value, ValidInput), Vec<Violation>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![Violation::new(None, format!("JSON decode error: {e}"), "json_invalid")])?;
    let Some(object) = value.as_object() else {
        return Err(vec![Violation::new(
            None,
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        )]);
    };
    let mut violations = Vec::new();
    check_prompt(object, &mut violations);
    let size = check_size(object, &mut violations);
    check_scale(object, &mut violations);
    let force_single = check_force_single(object, &mut violations);
    if !violations.is_empty() {
        return Err(violations);
    }
    let (width, height) = size.map(parse_size).unwrap_or((2048, 2048));
    Ok((
        value,
        ValidInput {
            width,
            height,
            force_single,
        },
    ))
}

fn check_prompt(object: &Map<String, Value>, out: &mut Vec<Violation>) {
    let field = Some("prompt");
    match object.get("prompt") {
        None => out.push(Violation::new(field, "Field required", "missing")),
        Some(Value::String(s)) => {
            // The limit is in characters, not bytes: a multi-byte prompt of 800 chars is fine.
            let chars = s.chars().count();
            if chars == 0 {
                out.push(Violation::new(
                    field,
                    "String should have at least 1 character",
                    "string_too_short",
                ));
            } else if chars > PROMPT_MAX_CHARS {
                out.push(Violation::new(
                    field,
                    format!("String should have at most {PROMPT_MAX_CHARS} characters"),
                    "string_too_long",
                ));
            }
        }
        Some(_) => out.push(Violation::new(field, "Input should be a valid string", "string_type")),
    }
}

fn check_size<'a>(object: &'a Map<String, Value>, out: &mut Vec<Violation>) -> Option<&'a str> {
    match object.get(SIZE_KEY) {
        None => Some(DEFAULT_SIZE),
        Some(Value::String(s)) if SIZES.contains(&s.as_str()) => Some(s.as_str()),
        Some(_) => {
            let expected = SIZES.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
            out.push(Violation::new(
                Some(SIZE_KEY),
                format!("Input should be {expected}"),
                "enum",
            ));
            None
        }
    }
}

fn check_scale(object: &Map<String, Value>, out: &mut Vec<Violation>) {
    let field = Some("scale");
    match object.get("scale") {
        None => {}
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x < 0.0 => out.push(Violation::new(
                field,
                "Input should be greater than or equal to 0",
                "greater_than_equal",
            )),
            Some(x) if x > 1.0 => out.push(Violation::new(
                field,
                "Input should be less than or equal to 1",
                "less_than_equal",
            )),
            Some(_) => {}
            None => out.push(Violation::new(field, "Input should be a valid number", "float_type")),
        },
        Some(_) => out.push(Violation::new(field, "Input should be a valid number", "float_type")),
    }
}

fn check_force_single(object: &Map<String, Value>, out: &mut Vec<Violation>) -> bool {
    match object.get("force_single") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            out.push(Violation::new(
                Some("force_single"),
                "Input should be a valid boolean",
                "bool_type",
            ));
            false
        }
    }
}

/// `"2304x1728(4:3)"` → `(2304, 1728)`; only called on one of [`SIZES`].
fn parse_size(size: &str) -> (u32, u32) {
    let dims = size.split('(').next().unwrap_or(size);
    let mut parts = dims.split('x').map(|p| p.parse::<u32>().unwrap_or(1024));
    (parts.next().unwrap_or(1024), parts.next().unwrap_or(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_size_parses() {
        for size in SIZES {
            let (w, h) = parse_size(size);
            assert!(size.starts_with(&format!("{w}x{h}(")), "{size}");
        }
    }

    #[test]
    fn reports_all_violations() {
        let body = br#"{"scale": 2, "force_single": "yes", "width\u00d7height": "1x1"}"#;
        let errors = validate(body).unwrap_err();
        let kinds: Vec<_> = errors.iter().map(|v| v.kind.as_str()).collect();
        assert_eq!(kinds, ["missing", "enum", "less_than_equal", "bool_type"]);
    }

    #[test]
    fn defaults_apply() {
        let (_, input) = validate(br#"{"prompt":"a cat"}"#).unwrap();
        assert_eq!(
            input,
            ValidInput {
                width: 2048,
                height: 2048,
                force_single: false
            }
        );
    }
}
