//! A tool call's JSON arguments: checked against the tool's published input schema before any
//! work ([`ArgumentRules::check`], called by the server for every `tools/call`), then read into
//! the tool's typed arguments ([`parse`]). Each single-field rule is stated once, in the schema the
//! client sees (schemars attributes on the argument types), and checked by `jsonschema`; a tool's
//! [`Validate`] keeps only what a schema cannot say (rules that span fields, ids safe in a URL).
//! rmcp's `Parameters<T>` only runs serde: it would silently drop an argument the tool does not
//! know, and its message names no field.

use std::sync::{Arc, OnceLock};

use rmcp::model::JsonObject;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::schema::property_names;
use crate::{
    dreamina::{InputError, Size},
    schema_check::{Broken, Rules, REQUEST_ID},
};

/// The spellings of a size read beyond the documented ones the schema lists.
const SIZE_FORMS: &str = "WIDTHxHEIGHT such as 2560x1440, or a ratio such as 16:9";

/// An argument that broke a rule: which one, and what would be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Invalid argument `{field}`: {message}")]
pub struct InvalidArgument {
    pub field: String,
    pub message: String,
}

impl InvalidArgument {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<InputError> for InvalidArgument {
    fn from(e: InputError) -> Self {
        Self::new(e.field, e.message)
    }
}

impl From<Broken> for InvalidArgument {
    fn from(e: Broken) -> Self {
        let field = if e.field.is_empty() {
            "arguments".to_owned()
        } else {
            e.field
        };
        Self::new(field, e.message)
    }
}

/// The rules a schema cannot say, checked once the arguments are read: those that span fields.
pub trait Validate {
    fn validate(&self) -> Result<(), InvalidArgument> {
        Ok(())
    }
}

/// One tool's published input schema (exactly what `tools/list` gives the client), compiled on
/// the tool's first call and kept.
pub(crate) struct ArgumentRules {
    schema: Arc<JsonObject>,
    compiled: OnceLock<Option<Rules>>,
}

impl ArgumentRules {
    pub(crate) fn new(schema: Arc<JsonObject>) -> Self {
        Self {
            schema,
            compiled: OnceLock::new(),
        }
    }

    /// The compiled schema; `None` (logged) if it does not compile, which a unit test rules out.
    fn compiled(&self) -> Option<&Rules> {
        self.compiled
            .get_or_init(|| match Rules::compile(Value::Object((*self.schema).clone())) {
                Ok(rules) => Some(rules),
                Err(e) => {
                    tracing::error!(
                        "a tool's input schema does not compile, so its arguments are read by serde alone: {e}"
                    );
                    None
                }
            })
            .as_ref()
    }

    /// Checks a call's `args` against the schema, after rewriting the spellings the tools accept
    /// beyond it (see [`spell`]); the first broken rule is the error.
    pub(crate) fn check(&self, args: &mut JsonObject) -> Result<(), InvalidArgument> {
        spell(&self.schema, args);
        reject_unknown(&self.schema, args)?;
        let Some(rules) = self.compiled() else {
            return Ok(());
        };
        // The validator reads a `Value`: the map is moved in and back out, not copied.
        let value = Value::Object(std::mem::take(args));
        let checked = rules.check(&value);
        if let Value::Object(map) = value {
            *args = map;
        }
        checked.map_err(|broken| {
            let mut invalid = InvalidArgument::from(broken);
            // The schema lists the documented spellings; the others are read too.
            if invalid.field == "size" {
                invalid.message.push_str(&format!(". {SIZE_FORMS}, is accepted too"));
            }
            invalid
        })
    }
}

/// Reads checked arguments into the tool's type, then its cross-field rules.
pub fn parse<T: DeserializeOwned + Validate>(args: JsonObject) -> Result<T, InvalidArgument> {
    // Read in place: serde_json deserializes from a borrowed map as from an owned one. After the
    // schema check this fails only where the schema is wider than the type (a number past u32).
    let parsed: T = serde_path_to_error::deserialize(&args).map_err(|e| {
        let field = match e.path().to_string() {
            // Inside flattened arguments serde loses the path.
            path if path == "." => "arguments".to_owned(),
            path => path,
        };
        InvalidArgument::new(field, e.into_inner().to_string())
    })?;
    parsed.validate()?;
    Ok(parsed)
}

/// The spellings the tools accept beyond their schema, rewritten to the schema's before the
/// check, because refusing them would only cost the model a second call:
/// - `null` for an optional argument means it was left out;
/// - one string for a list argument (`"images": "a.png"`) is the list of that one;
/// - a whole number written as `3.0` is `3`;
/// - a `size` in any spelling [`Size`] reads (`2560x1440`, `16:9`) is its documented spelling;
/// - a request_id with spaces around it is the id (as [`crate::runcomfy::RequestId`] reads it).
fn spell(schema: &JsonObject, args: &mut JsonObject) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required = |name: &str| {
        schema
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|n| n == name))
    };
    args.retain(|name, value| !(value.is_null() && properties.contains_key(name) && !required(name)));
    for (name, value) in args.iter_mut() {
        let Some(property) = properties.get(name) else {
            continue;
        };
        let takes = |t: &str| {
            property
                .get("type")
                .is_some_and(|ty| ty == t || ty.as_array().is_some_and(|ts| ts.iter().any(|x| x == t)))
        };
        match value {
            Value::String(_) if takes("array") => *value = Value::Array(vec![value.take()]),
            Value::String(s) if name == "size" => {
                if let Some(size) = Size::parse(s) {
                    *s = size.as_str().to_owned();
                }
            }
            Value::String(s) if property.get("pattern").is_some_and(|p| p == REQUEST_ID) => {
                *s = s.trim().to_owned();
            }
            Value::Number(n) if takes("integer") => {
                if let Some(whole) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(53)) {
                    *value = Value::from(whole as i64);
                }
            }
            _ => {}
        }
    }
}

/// An argument the tool does not know is an error, not something to drop silently: the user
/// asked for something (`seed`, `negative_prompt`, a misspelt `scale`) and would not get it.
/// The published schemas do not say `additionalProperties: false` (Gemini rejects it), so the
/// names come from their `properties`.
fn reject_unknown(schema: &JsonObject, args: &JsonObject) -> Result<(), InvalidArgument> {
    let known = property_names(schema);
    match args.keys().find(|k| !known.contains(k)) {
        None => Ok(()),
        Some(unknown) => Err(InvalidArgument::new(
            if unknown.is_empty() {
                "(an empty name)".to_owned()
            } else {
                unknown.clone()
            },
            format!(
                "is not an argument of this tool.{} Accepted arguments: {}",
                hint(unknown, &known),
                known.join(", ")
            ),
        )),
    }
}

/// Where the tool takes what an unknown argument seems to mean: a size given as `width` and
/// `height` (or an `aspect_ratio`, a `resolution`) goes in `size`.
fn hint(unknown: &str, known: &[String]) -> String {
    let sizeish = [
        "width",
        "height",
        "aspect_ratio",
        "ratio",
        "resolution",
        "dimensions",
        "width×height",
    ];
    if known.iter().any(|k| k == "size") && sizeish.contains(&unknown.to_ascii_lowercase().as_str()) {
        format!(" Give the output size as `size` instead: {SIZE_FORMS}.")
    } else {
        String::new()
    }
}

/// The argument of the tools that act on an existing job.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct JobArgs {
    /// The request_id that generate_image returned.
    pub request_id: crate::runcomfy::RequestId,
}

impl Validate for JobArgs {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::{
        dreamina::{Size, MAX_PROMPT_CHARS},
        mcp::tools::{generate_image::GenerateArgs, generate_image_and_wait::WaitArgs, TOOLS},
    };

    const CASES: u32 = 2000;

    /// A call of `tool` as the server makes it: checked against the tool's listed schema, then read.
    fn called<T: DeserializeOwned + Validate>(tool: &str, args: Value) -> Result<T, InvalidArgument> {
        let Value::Object(mut args) = args else {
            panic!("arguments are an object")
        };
        TOOLS.check(tool, &mut args)?;
        parse(args)
    }

    fn generate(args: Value) -> Result<GenerateArgs, InvalidArgument> {
        called("generate_image", args)
    }

    fn wait(args: Value) -> Result<WaitArgs, InvalidArgument> {
        called("generate_image_and_wait", args)
    }

    #[test]
    fn every_tools_listed_schema_compiles() {
        for tool in TOOLS.router.list_all() {
            let rules = ArgumentRules::new(tool.input_schema.clone());
            assert!(rules.compiled().is_some(), "{}", tool.name);
        }
    }

    /// A regex says nothing to a model: each pattern a tool's schema uses has its sentence.
    #[test]
    fn every_pattern_in_a_listed_schema_is_said_in_words() {
        fn patterns(value: &Value, found: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(p)) = map.get("pattern") {
                        found.push(p.clone());
                    }
                    map.values().for_each(|v| patterns(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| patterns(v, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        for tool in TOOLS.router.list_all() {
            patterns(&Value::Object((*tool.input_schema).clone()), &mut found);
        }
        assert!(found.len() >= 4, "{found:?}");
        for pattern in found {
            let said = crate::schema_check::PATTERNS.iter().any(|(p, _)| *p == pattern);
            assert!(said, "no sentence for the pattern {pattern}");
        }
    }

    #[test]
    fn a_failure_inside_flattened_arguments_names_its_field() {
        let field = |args: Value| wait(args).unwrap_err().field;
        assert_eq!(field(json!({"prompt": "x", "size": "3000x3000"})), "size");
        assert_eq!(field(json!({"prompt": "x", "images": 7})), "images");
        assert_eq!(field(json!({"prompt": "x", "count": "three"})), "count");
        assert_eq!(
            field(json!({"prompt": "x", "inline_full_size": "yes"})),
            "inline_full_size"
        );
        assert_eq!(field(json!({"size": "1024x1024"})), "prompt");
        assert_eq!(
            field(json!({"prompt": "x", "max_wait_seconds": -1})),
            "max_wait_seconds"
        );
        assert_eq!(
            generate(json!({"prompt": "x", "scale": "high"})).unwrap_err().field,
            "scale"
        );
    }

    #[test]
    fn width_and_height_are_pointed_to_size() {
        for name in ["width", "height", "aspect_ratio"] {
            let err = generate(json!({"prompt": "x", name: 1024})).unwrap_err();
            assert_eq!(err.field, name);
            assert!(err.message.contains("as `size` instead"), "{}", err.message);
        }
        let err = generate(json!({"prompt": "x", "seed": 1})).unwrap_err();
        assert!(!err.message.contains("`size`"), "{}", err.message);
    }

    /// The spellings a model sends beyond the schema's own are read as what they mean.
    #[test]
    fn other_spellings_are_read_before_the_check() {
        let size = |raw: &str| {
            generate(json!({"prompt": "x", "size": raw}))
                .unwrap()
                .request
                .size
                .map(Size::as_str)
        };
        assert_eq!(size("16:9"), Some("2560x1440(16:9)"));
        assert_eq!(size(" 2560 × 1440 "), Some("2560x1440(16:9)"));
        let counted = generate(json!({"prompt": "x", "count": 3.0, "scale": null})).unwrap();
        assert_eq!((counted.count, counted.request.scale), (3, 0.5));
        let id: JobArgs = called("check_status", json!({"request_id": " abc-1 "})).unwrap();
        assert_eq!(id.request_id.as_str(), "abc-1");
        // Null for a required argument is not a way to leave it out.
        assert_eq!(generate(json!({"prompt": null})).unwrap_err().field, "prompt");
    }

    /// One reference image given as a string, not a list of one, is read as that list.
    #[test]
    fn a_single_string_for_a_list_is_a_list_of_one() {
        let args = json!({"prompt": "x", "images": "abc#1"});
        assert_eq!(generate(args.clone()).unwrap().request.images, ["abc#1"]);
        assert_eq!(wait(args).unwrap().generate.request.images, ["abc#1"]);
        // Only where a list is expected: a string stays a string elsewhere.
        assert_eq!(generate(json!({"prompt": "abc"})).unwrap().request.prompt, "abc");
    }

    /// The CPU cost of the check per call, for the record (not an assertion):
    /// `cargo test --lib mcp::args::tests::check_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, run by hand"]
    fn check_cost() {
        let args = json!({"prompt": "a lighthouse at dusk, oil painting", "size": "16:9", "count": 2,
            "images": ["https://images.invalid/a.png", "abc#1"], "scale": 0.7, "max_wait_seconds": 40});
        let Value::Object(args) = args else { unreachable!() };
        let mut warm = args.clone();
        TOOLS.check("generate_image_and_wait", &mut warm).unwrap();
        let runs = 20_000u32;
        let copies: Vec<JsonObject> = (0..runs).map(|_| args.clone()).collect();
        let started = std::time::Instant::now();
        for mut copy in copies {
            TOOLS.check("generate_image_and_wait", &mut copy).unwrap();
        }
        eprintln!("check: {:?} per call", started.elapsed() / runs);
    }

    /// Any JSON at all: scalars, arrays and objects a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            ".{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                prop::collection::hash_map(".{0,12}", inner, 0..8).prop_map(|m| json!(m)),
            ]
        })
    }

    fn object_of(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
        prop::collection::hash_map(prop::sample::select(keys), any_json(), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        /// Whatever arrives, checking and parsing answer Ok or a named-field error; they never
        /// panic, and what they accept meets every rule.
        #[test]
        fn image_arguments_never_panic_and_accepted_ones_are_valid(
            args in object_of(&["prompt", "size", "scale", "force_single", "seed", "width×height", ""]),
        ) {
            match generate(args) {
                Ok(GenerateArgs { request, .. }) => {
                    prop_assert!(!request.prompt.trim().is_empty());
                    prop_assert!(request.prompt.chars().count() <= MAX_PROMPT_CHARS);
                    prop_assert!((0.0..=1.0).contains(&request.scale));
                    prop_assert!(request.size.is_none_or(|size| Size::parse(size.as_str()) == Some(size)));
                }
                Err(e) => prop_assert!(!e.field.is_empty() && !e.message.is_empty()),
            }
        }

        #[test]
        fn wait_arguments_never_panic(
            args in object_of(&["prompt", "size", "max_wait_seconds", "scale", "images", "count", "inline_full_size"]),
        ) {
            match wait(args) {
                Ok(parsed) => {
                    prop_assert!((1..=crate::jobs::MAX_COUNT).contains(&parsed.generate.count));
                    prop_assert!(parsed.generate.request.images.len() <= crate::dreamina::MAX_IMAGES);
                    prop_assert!(parsed.max_wait_seconds.is_none_or(|s| s >= 1));
                }
                Err(e) => prop_assert!(!e.field.is_empty() && e.field != "arguments" && !e.message.is_empty()),
            }
        }

        /// Every well-formed request is accepted, whatever its characters.
        #[test]
        fn valid_requests_are_accepted(
            prompt in "\\PC{1,800}".prop_filter("not blank", |p| !p.trim().is_empty()),
            size in prop::sample::select(Size::all().collect::<Vec<_>>()),
            scale in 0.0f64..=1.0,
            force_single in any::<bool>(),
        ) {
            let args = json!({"prompt": prompt, "size": size.as_str(), "scale": scale, "force_single": force_single});
            let parsed = generate(args);
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
        }

        #[test]
        fn overlong_prompts_are_refused(prompt in "\\PC{801,1200}") {
            let err = generate(json!({"prompt": prompt})).unwrap_err();
            prop_assert_eq!(err.field, "prompt");
        }

        /// Request ids: any string either fails or yields an id that is safe in a URL path.
        #[test]
        fn request_ids_are_safe_in_a_path(raw in prop_oneof![".{0,200}", "[A-Za-z0-9_./%?#-]{0,140}"]) {
            if let Ok(id) = crate::runcomfy::RequestId::parse(&raw) {
                let s = id.as_str();
                prop_assert!(!s.is_empty() && s.len() <= 128);
                prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            }
        }
    }
}
