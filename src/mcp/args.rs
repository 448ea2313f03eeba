//! Turning a tool call's JSON arguments into a typed, validated request, or into an error that
//! names the field, the rule and what would be accepted. rmcp's `Parameters<T>` only runs serde:
//! it would silently drop an argument the tool does not know, and its message names no field.
//! So the tools take the raw object and parse it here: unknown names refused, the failing field
//! named, then the rules serde cannot express.

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::schema::{property_names, schema_for};
use crate::dreamina::InputError;

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

/// Rules beyond what serde checks (lengths, ranges).
pub trait Validate {
    fn validate(&self) -> Result<(), InvalidArgument>;

    /// For arguments made of flattened parts: serde reports a part's failure without the field's
    /// name, so this finds it by reading each part on its own (see [`part`]). `None`: no part
    /// failed on its own.
    fn locate(_args: &JsonObject) -> Option<InvalidArgument> {
        None
    }
}

pub fn parse<T: DeserializeOwned + JsonSchema + Validate + 'static>(args: JsonObject) -> Result<T, InvalidArgument> {
    reject_unknown::<T>(&args)?;
    let args = lists_of_one::<T>(args);
    let parsed: T = deserialize(&args)?;
    parsed.validate()?;
    Ok(parsed)
}

/// The failure of the flattened part `U` of some arguments, read from its own properties alone,
/// with the failing field named.
pub fn part<U: DeserializeOwned + JsonSchema + Validate + 'static>(args: &JsonObject) -> Option<InvalidArgument> {
    let own = property_names(&schema_for::<U>());
    let args: JsonObject = args
        .iter()
        .filter(|(k, _)| own.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    deserialize::<U>(&args).err()
}

fn deserialize<T: DeserializeOwned + Validate>(args: &JsonObject) -> Result<T, InvalidArgument> {
    // Read in place: serde_json deserializes from a borrowed map as from an owned one.
    serde_path_to_error::deserialize(args).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner().to_string();
        if field != "." {
            return InvalidArgument::new(field, inner);
        }
        if let Some(located) = T::locate(args) {
            return located;
        }
        // A missing field: serde names it in the message ("missing field `prompt`").
        let missing = inner.split('`').nth(1).unwrap_or("arguments").to_owned();
        InvalidArgument::new(missing, format!("{inner}; it is required"))
    })
}

/// A list argument given as one string (`"images": "a.png"`) is the list of that one: a model
/// often sends the single item it means that way, and refusing it only costs a second call.
fn lists_of_one<T: JsonSchema + 'static>(mut args: JsonObject) -> JsonObject {
    let schema = schema_for::<T>();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return args;
    };
    for (name, value) in args.iter_mut().filter(|(_, v)| v.is_string()) {
        let is_list = properties
            .get(name)
            .and_then(|p| p.get("type"))
            .is_some_and(|t| t == "array" || t.as_array().is_some_and(|ts| ts.iter().any(|t| t == "array")));
        if is_list {
            *value = Value::Array(vec![value.take()]);
        }
    }
    args
}

/// An argument the tool does not know is an error, not something to drop silently: the user
/// asked for something (`seed`, `negative_prompt`, a misspelt `scale`) and would not get it.
fn reject_unknown<T: JsonSchema + 'static>(args: &JsonObject) -> Result<(), InvalidArgument> {
    let known = property_names(&schema_for::<T>());
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
fn hint(unknown: &str, known: &[String]) -> &'static str {
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
        " Give the output size as `size` instead: WIDTHxHEIGHT such as 2560x1440, or a ratio such as 16:9."
    } else {
        ""
    }
}

impl Validate for crate::dreamina::ImageRequest {
    fn validate(&self) -> Result<(), InvalidArgument> {
        Ok(crate::dreamina::ImageRequest::validate(self)?)
    }
}

/// The argument of the tools that act on an existing job.
#[derive(Debug, serde::Deserialize, JsonSchema)]
pub struct JobArgs {
    /// The request_id that generate_image returned.
    pub request_id: crate::runcomfy::RequestId,
}

impl Validate for JobArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        Ok(()) // RequestId checks itself while deserialising.
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::{
        dreamina::{ImageRequest, Size, MAX_PROMPT_CHARS},
        mcp::tools::generate_image_and_wait::WaitArgs,
    };

    const CASES: u32 = 2000;

    #[test]
    fn a_failure_inside_flattened_arguments_names_its_field() {
        use crate::mcp::tools::generate_image::GenerateArgs;
        let field = |args: Value| parse::<WaitArgs>(args.as_object().unwrap().clone()).unwrap_err().field;
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
        let generate = parse::<GenerateArgs>(json!({"prompt": "x", "scale": "high"}).as_object().unwrap().clone());
        assert_eq!(generate.unwrap_err().field, "scale");
    }

    #[test]
    fn width_and_height_are_pointed_to_size() {
        for name in ["width", "height", "aspect_ratio"] {
            let args = json!({"prompt": "x", name: 1024});
            let err = parse::<ImageRequest>(args.as_object().unwrap().clone()).unwrap_err();
            assert_eq!(err.field, name);
            assert!(err.message.contains("as `size` instead"), "{}", err.message);
        }
        let err = parse::<ImageRequest>(json!({"prompt": "x", "seed": 1}).as_object().unwrap().clone()).unwrap_err();
        assert!(!err.message.contains("`size`"), "{}", err.message);
        let ratio = parse::<ImageRequest>(json!({"prompt": "x", "size": "16:9"}).as_object().unwrap().clone());
        assert_eq!(ratio.unwrap().size.map(Size::as_str), Some("2560x1440(16:9)"));
    }

    /// One reference image given as a string, not a list of one, is read as that list.
    #[test]
    fn a_single_string_for_a_list_is_a_list_of_one() {
        use crate::mcp::tools::generate_image::GenerateArgs;
        let args = json!({"prompt": "x", "images": "abc#1"});
        let parsed = parse::<GenerateArgs>(args.as_object().unwrap().clone()).unwrap();
        assert_eq!(parsed.request.images, ["abc#1"]);
        let waited = parse::<WaitArgs>(args.as_object().unwrap().clone()).unwrap();
        assert_eq!(waited.generate.request.images, ["abc#1"]);
        // Only where a list is expected: a string stays a string elsewhere.
        let prompt = parse::<ImageRequest>(json!({"prompt": "abc"}).as_object().unwrap().clone()).unwrap();
        assert_eq!(prompt.prompt, "abc");
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

    fn object_of(keys: &'static [&'static str]) -> impl Strategy<Value = JsonObject> {
        prop::collection::hash_map(prop::sample::select(keys), any_json(), 0..6)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        /// Whatever arrives, parsing answers Ok or a named-field error; it never panics, and
        /// what it accepts meets every rule.
        #[test]
        fn image_arguments_never_panic_and_accepted_ones_are_valid(
            args in object_of(&["prompt", "size", "scale", "force_single", "seed", "width×height", ""]),
        ) {
            match parse::<ImageRequest>(args) {
                Ok(request) => {
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
            match parse::<WaitArgs>(args) {
                Ok(parsed) => {
                    prop_assert!((1..=crate::jobs::MAX_COUNT).contains(&parsed.generate.count));
                    prop_assert!(parsed.generate.request.images.len() <= crate::dreamina::MAX_IMAGES);
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
            let parsed = parse::<ImageRequest>(args.as_object().unwrap().clone());
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
        }

        #[test]
        fn overlong_prompts_are_refused(prompt in "\\PC{801,1200}") {
            let err = parse::<ImageRequest>(json!({"prompt": prompt}).as_object().unwrap().clone()).unwrap_err();
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
