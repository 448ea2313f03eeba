//! Dreamina 4.0 input, for both of its endpoints: the Rust types the tool schema is derived from,
//! the rules they must meet, which endpoint a request goes to, and the mapping to RunComfy's wire
//! form. It knows nothing of MCP: a broken rule is an [`InputError`], which the tools and the CLI
//! each phrase for their audience.
//!
//! Dreamina 4.0 is one model served as two endpoints: text-to-image, and edit (the same model
//! given reference images). A request with `images` goes to edit, one without to text-to-image.
//! The body holds only keys the model's catalogue `input_schema` declares
//! ([`ImageRequest::to_wire`], from the schema's [`Shape`]), so `--model` / `--edit-model` may
//! name any model whose schema has a prompt (and, for edits, an image input). A size is sent only
//! when the user chose one. [`builtin_entry`] holds RunComfy's two Dreamina entries for when the
//! catalogue cannot be read: the text-to-image schema as the vendor page publishes it, and the
//! edit one as its page documents the body (`prompt` and `image_urls`, nothing else).
//!
//! The upstream names the size field `width×height` (with U+00D7). Anthropic's API rejects a tool
//! whose property keys are not `[a-zA-Z0-9_.-]`, so the tool exposes it as `size` and the
//! mapping to the wire restores the upstream name.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::models::shape::{Shape, SizeField, PROMPT_KEY, RATIO_KEY};
use crate::runcomfy::ModelInfo;

pub const MAX_PROMPT_CHARS: usize = 800;
/// The most reference images one edit takes.
pub const MAX_IMAGES: usize = 10;
/// RunComfy's model id of the text-to-image endpoint (`--model` may name another).
pub const TEXT_TO_IMAGE_MODEL: &str = "bytedance/dreamina-4-0/text-to-image";
/// RunComfy's model id of the edit endpoint (`--edit-model` may name another).
pub const EDIT_MODEL: &str = "bytedance/dreamina-4-0/edit";
/// The upstream's name for the reference images of an edit.
pub const WIRE_IMAGES_KEY: &str = "image_urls";
pub const DEFAULT_SCALE: f64 = 0.5;
/// The upstream's name for the size field.
pub const WIRE_SIZE_KEY: &str = "width\u{d7}height";

/// The 11 documented output sizes, in the vendor's order.
const SIZES: [(&str, u32, u32); 11] = [
    ("1024x1024(1:1)", 1024, 1024),
    ("2048x2048(1:1)", 2048, 2048),
    ("2304x1728(4:3)", 2304, 1728),
    ("2496x1664(3:2)", 2496, 1664),
    ("2560x1440(16:9)", 2560, 1440),
    ("3024x1296(21:9)", 3024, 1296),
    ("4096x4096(1:1)", 4096, 4096),
    ("4694x3520(4:3)", 4694, 3520),
    ("4992x3328(3:2)", 4992, 3328),
    ("5404x3040(16:9)", 5404, 3040),
    ("6198x2656(21:9)", 6198, 2656),
];
const DEFAULT_SIZE: usize = 1;
/// The sizes at the default resolution (2K), one for each ratio.
const DEFAULT_RESOLUTION: std::ops::Range<usize> = 1..6;

/// One of the documented sizes. Accepts the documented spelling (`2560x1440(16:9)`), the bare
/// `WIDTHxHEIGHT` form (`2560x1440`, `2560×1440`, `2560 X 1440`) and a ratio alone (`16:9`), which
/// means the size of that ratio at the default resolution (2K: one size per ratio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(usize);

impl Size {
    pub fn parse(raw: &str) -> Option<Self> {
        let compact: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let compact = compact.replace('\u{d7}', "x");
        if let Some(index) = Self::of_ratio(&compact) {
            return Some(Self(index));
        }
        let dims = compact.split('(').next().unwrap_or_default();
        let (w, h) = dims.split_once('x')?;
        let (w, h): (u32, u32) = (w.parse().ok()?, h.parse().ok()?);
        let index = SIZES.iter().position(|&(_, sw, sh)| sw == w && sh == h)?;
        // A ratio that contradicts the dimensions ("1024x1024(16:9)") is a mistake, not a size.
        if compact.contains('(') && compact != SIZES[index].0 {
            return None;
        }
        Some(Self(index))
    }

    /// `16:9` → the 2K size of that ratio (`2560x1440(16:9)`); 1:1 is the default 2048x2048.
    fn of_ratio(compact: &str) -> Option<usize> {
        let (w, h) = compact.split_once(':')?;
        let (w, h): (u32, u32) = (w.parse().ok()?, h.parse().ok()?);
        let wanted = format!("({w}:{h})");
        DEFAULT_RESOLUTION.clone().find(|&i| SIZES[i].0.ends_with(&wanted))
    }

    /// The size's ratio, e.g. `16:9`.
    pub fn ratio(self) -> &'static str {
        let spelled = self.as_str();
        let open = spelled.find('(').map_or(0, |i| i + 1);
        spelled[open..].trim_end_matches(')')
    }

    pub fn all() -> impl Iterator<Item = Size> {
        (0..SIZES.len()).map(Size)
    }

    /// The documented spelling, as RunComfy expects it.
    pub fn as_str(self) -> &'static str {
        SIZES[self.0].0
    }

    pub fn width(self) -> u32 {
        SIZES[self.0].1
    }

    pub fn height(self) -> u32 {
        SIZES[self.0].2
    }

    fn valid_values() -> String {
        SIZES.map(|s| s.0).join(", ")
    }
}

impl Default for Size {
    fn default() -> Self {
        Self(DEFAULT_SIZE)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Size::parse(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{raw:?} is not a supported size. Use one of: {} (the bare form WIDTHxHEIGHT, e.g. 2560x1440, or a ratio alone, e.g. 16:9 for the 2K size of that ratio, is accepted too)",
                Size::valid_values()
            ))
        })
    }
}

impl JsonSchema for Size {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    // Inlined: several clients mishandle `$ref`.
    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let values: Vec<&str> = SIZES.iter().map(|s| s.0).collect();
        schemars::json_schema!({
            "type": "string",
            "enum": values,
        })
    }
}

fn default_scale() -> f64 {
    DEFAULT_SCALE
}

/// Which of Dreamina 4.0's two endpoints a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    TextToImage,
    Edit,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TextToImage => "text-to-image",
            Self::Edit => "edit",
        }
    }
}

/// The model ids of the two endpoints at RunComfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Models {
    pub text_to_image: String,
    pub edit: String,
}

impl Default for Models {
    fn default() -> Self {
        Self {
            text_to_image: TEXT_TO_IMAGE_MODEL.to_owned(),
            edit: EDIT_MODEL.to_owned(),
        }
    }
}

impl Models {
    /// The model id a request to `endpoint` is submitted to.
    pub fn of(&self, endpoint: Endpoint) -> &str {
        match endpoint {
            Endpoint::TextToImage => &self.text_to_image,
            Endpoint::Edit => &self.edit,
        }
    }

    /// Whether a job of `model` was made by one of these endpoints (or RunComfy's own Dreamina
    /// ids), so that its journal row is a Dreamina recipe.
    pub fn is_dreamina(&self, model: &str) -> bool {
        [&self.text_to_image, &self.edit].iter().any(|m| m.as_str() == model)
            || [TEXT_TO_IMAGE_MODEL, EDIT_MODEL].contains(&model)
    }
}

/// The arguments of a Dreamina 4.0 generation: text-to-image, or an edit of reference images.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ImageRequest {
    #[schemars(length(min = 1, max = MAX_PROMPT_CHARS), description = prompt_description())]
    pub prompt: String,

    /// Output size in pixels with its aspect ratio, WIDTHxHEIGHT(ratio). Pick the aspect ratio the user wants; larger sizes take longer. The bare form (e.g. 2560x1440) or a ratio alone (e.g. 16:9) is accepted too. Leave it out for the model's default: 2048x2048(1:1) from text, and for an edit whatever the edit model makes of its references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Size")]
    pub size: Option<Size>,

    /// How strongly the prompt steers the result, from 0 to 1. Higher follows the text more literally; lower gives the model more freedom.
    #[serde(default = "default_scale")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub scale: f64,

    /// Set true to get exactly one image. When false the model may return a set of several related images, which takes longer.
    #[serde(default)]
    pub force_single: bool,

    // An entry may also be a file object ChatGPT fills in (see media::host_files).
    #[serde(default, deserialize_with = "crate::media::host_files::entries")]
    #[schemars(
        schema_with = "crate::media::host_files::entries_schema",
        length(max = MAX_IMAGES),
        description = images_description()
    )]
    pub images: Vec<String>,
}

fn prompt_description() -> String {
    format!("What the image should show, in plain language (1 to {MAX_PROMPT_CHARS} characters). Dreamina 4.0 renders text in images well: put any words that must appear in quotes. Describe subject, setting, style, lighting and composition.")
}

fn images_description() -> String {
    format!("Reference images, 1 to {MAX_IMAGES}; leave it out to make an image from text alone. Pass images when the user wants an existing image changed ('edit this', 'make it winter', 'replace the text on the sign'), an image made in the style or with the subject of another ('in the style of', 'this person as'), or several combined ('put the cat from the first into the second'). The prompt then says what to change or how to combine them. Each entry is one of: an earlier result of this server by its request_id (its first image) or request_id#n (its n-th image, from 1), so 'edit the last one' needs no URL; a public https:// URL; an absolute path of a local file (PNG, JPEG or WebP) in a directory the server allows (--input-dir); a data:image/...;base64, URI; upload:<id>, an image the person uploaded in the viewer; or, in ChatGPT, a file the person attached.")
}

/// A rule an input broke: which field, and what would be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} {message}")]
pub struct InputError {
    pub field: String,
    pub message: String,
}

impl InputError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl ImageRequest {
    /// The rules serde cannot express. Called after deserialising, before any HTTP call.
    pub fn validate(&self) -> Result<(), InputError> {
        let chars = self.prompt.chars().count();
        if self.prompt.trim().is_empty() {
            return Err(InputError::new(
                "prompt",
                format!("must not be empty: describe the image to generate (1 to {MAX_PROMPT_CHARS} characters)"),
            ));
        }
        if chars > MAX_PROMPT_CHARS {
            return Err(InputError::new(
                "prompt",
                format!("is {chars} characters long; the limit is {MAX_PROMPT_CHARS} characters. Shorten it and call again."),
            ));
        }
        if !(0.0..=1.0).contains(&self.scale) {
            return Err(InputError::new(
                "scale",
                format!("is {}; it must be a number from 0 to 1 (default 0.5)", self.scale),
            ));
        }
        if self.images.len() > MAX_IMAGES {
            return Err(InputError::new(
                "images",
                format!(
                    "has {} entries; an edit takes at most {MAX_IMAGES} reference images. Pass fewer.",
                    self.images.len()
                ),
            ));
        }
        if let Some(i) = self.images.iter().position(|entry| entry.trim().is_empty()) {
            return Err(InputError::new(
                format!("images[{i}]"),
                "is empty: give a request_id, an https:// URL, an absolute file path or a data URI, or leave the entry out",
            ));
        }
        Ok(())
    }

    /// Text-to-image without reference images, edit with them.
    pub fn endpoint(&self) -> Endpoint {
        if self.images.is_empty() {
            Endpoint::TextToImage
        } else {
            Endpoint::Edit
        }
    }

    /// The model input for `model`, holding only keys its schema declares (see [`Shape`]): the
    /// prompt; the size only when one was chosen (as Dreamina's `width×height`, or as the ratio
    /// of a model that takes an `aspect_ratio`); `scale` and `force_single` only when they differ
    /// from the tool's defaults; the reference images as given, under the model's image field
    /// (resolved to URLs or data URIs afterwards). A setting the user chose that the model
    /// cannot take is an error naming it, never silently dropped.
    pub(crate) fn to_wire(&self, shape: &Shape, model: &str) -> Result<Map<String, Value>, InputError> {
        let mut wire = Map::new();
        wire.insert(PROMPT_KEY.to_owned(), json!(self.prompt));
        let edit = self.endpoint() == Endpoint::Edit;
        if let Some(size) = self.size {
            match &shape.size {
                Some(SizeField::Exact { .. }) => {
                    wire.insert(WIRE_SIZE_KEY.to_owned(), json!(size.as_str()));
                }
                Some(SizeField::Ratio { values }) if values.is_empty() || values.iter().any(|v| v == size.ratio()) => {
                    wire.insert(RATIO_KEY.to_owned(), json!(size.ratio()));
                }
                Some(SizeField::Ratio { values }) => {
                    return Err(InputError::new(
                        "size",
                        format!(
                            "{} has the ratio {}, which {model} does not take; its aspect ratios are {}. Pick a size of one of those ratios, or leave size out.",
                            size.as_str(),
                            size.ratio(),
                            values.join(", ")
                        ),
                    ))
                }
                None => {
                    return Err(InputError::new(
                        "size",
                        format!(
                            "cannot be chosen for {model}: its input schema has no size field{}. Leave size out.",
                            if edit { " (the edit's size follows its references)" } else { "" }
                        ),
                    ))
                }
            }
        }
        if self.scale != DEFAULT_SCALE {
            if !shape.scale {
                return Err(InputError::new(
                    "scale",
                    format!("cannot be set for {model}: its input schema has no scale field. Leave scale out."),
                ));
            }
            wire.insert("scale".to_owned(), json!(self.scale));
        }
        if self.force_single {
            if !shape.force_single {
                return Err(InputError::new(
                    "force_single",
                    format!("cannot be set for {model}: its input schema has no force_single field. Leave it out."),
                ));
            }
            wire.insert("force_single".to_owned(), json!(true));
        }
        if edit {
            let Some(field) = &shape.images else {
                return Err(InputError::new(
                    "images",
                    format!("cannot be given to {model}: its input schema has no image input. Nothing was submitted."),
                ));
            };
            if field.many {
                wire.insert(field.key.clone(), json!(self.images));
            } else if let [one] = self.images.as_slice() {
                wire.insert(field.key.clone(), json!(one));
            } else {
                return Err(InputError::new(
                    "images",
                    format!(
                        "has {} entries; {model} takes one reference image (its {}). Pass one.",
                        self.images.len(),
                        field.key
                    ),
                ));
            }
        }
        Ok(wire)
    }

    /// The size to list the job by: the one chosen, else the model's default where its schema
    /// says, else the model's own choice.
    pub(crate) fn size_label(&self, shape: &Shape) -> String {
        match (self.size, &shape.size) {
            (Some(size), _) => size.as_str().to_owned(),
            (None, Some(SizeField::Exact { default: Some(default) })) => default.clone(),
            (None, _) if self.endpoint() == Endpoint::Edit => "as the references".to_owned(),
            (None, _) => "model default".to_owned(),
        }
    }
}

/// RunComfy's catalogue entry for one of Dreamina 4.0's two endpoints, for when the catalogue
/// cannot be read (or does not list it). Text-to-image: the schema of its vendor page
/// (`shared/seed`, RunComfy's own dialect, `"type": "float"` included). Edit: the body its API
/// page documents, `prompt` and `image_urls`, and nothing it does not.
pub fn builtin_entry(model: &str) -> Option<ModelInfo> {
    let (name, categories, schema) = match model {
        TEXT_TO_IMAGE_MODEL => (
            "Dreamina 4.0 Text to Image",
            ["text-to-image"],
            json!({
                "type": "object",
                "title": "Input schema",
                "required": ["prompt"],
                "properties": {
                    "prompt": {"title": "Prompt", "description": "", "type": "string", "maxLength": MAX_PROMPT_CHARS,
                               "default": "A beautiful girl is walking on the street"},
                    WIRE_SIZE_KEY: {"title": "Aspect Ratio (W:H)", "description": "", "type": "string",
                                    "enum": SIZES.map(|s| s.0), "default": SIZES[DEFAULT_SIZE].0},
                    "scale": {"title": "Scale",
                              "description": "Controls how strongly the text prompt influences the result relative to input images. Higher values increase text influence.",
                              "type": "float", "minimum": 0, "maximum": 1, "default": DEFAULT_SCALE},
                    "force_single": {"title": "Force Single Image",
                                     "description": "Whether to force generation of a single image. More images per set increase latency; for stability, specify group count/resolution or pass width and height.",
                                     "type": "boolean", "default": false},
                },
            }),
        ),
        EDIT_MODEL => (
            "Dreamina 4.0 Edit",
            ["image-to-image"],
            json!({
                "type": "object",
                "title": "Input schema",
                "required": ["prompt", "image_urls"],
                "properties": {
                    "prompt": {"title": "Prompt", "description": "", "type": "string", "maxLength": MAX_PROMPT_CHARS},
                    WIRE_IMAGES_KEY: {"title": "Image URLs", "description": "", "type": "array", "format": "image_uris",
                                      "minItems": 1, "maxItems": MAX_IMAGES},
                },
            }),
        ),
        _ => return None,
    };
    serde_json::from_value(json!({
        "model_id": model,
        "display_name": name,
        "categories": categories,
        "kind": "model",
        "input_schema": schema,
        "model_url": format!("https://www.runcomfy.com/models/{model}"),
    }))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &str) -> ImageRequest {
        serde_json::from_value(json!({ "prompt": prompt })).unwrap()
    }

    #[test]
    fn sizes_parse_in_both_forms_and_reject_the_rest() {
        assert_eq!(Size::parse("2560x1440(16:9)").unwrap().as_str(), "2560x1440(16:9)");
        assert_eq!(Size::parse("2560x1440").unwrap().as_str(), "2560x1440(16:9)");
        assert_eq!(Size::parse(" 6198 × 2656 ").unwrap().height(), 2656);
        assert_eq!(Size::parse("1024X1024").unwrap().width(), 1024);
        for bad in ["3000x3000", "1024x1024(16:9)", "big", "", "2560x", "x1440"] {
            assert!(Size::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Size::all().count(), 11);
        assert_eq!(Size::default().as_str(), "2048x2048(1:1)");
        assert_eq!(Size::parse("16:9").unwrap().as_str(), "2560x1440(16:9)");
    }

    #[test]
    fn prompt_limit_counts_characters_not_bytes() {
        assert!(request(&"é".repeat(800)).validate().is_ok());
        let err = request(&"a".repeat(801)).validate().unwrap_err();
        assert_eq!(err.field, "prompt");
        assert!(err.message.contains("801 characters"));
        assert!(request("   ").validate().is_err());
    }

    fn shape(model: &str) -> Shape {
        Shape::of(builtin_entry(model).unwrap().input_schema.as_ref().unwrap())
    }

    #[test]
    fn the_wire_holds_the_prompt_and_only_what_was_chosen() {
        let t2i = shape(TEXT_TO_IMAGE_MODEL);
        assert_eq!(
            Value::Object(request("a cat").to_wire(&t2i, "m").unwrap()),
            json!({"prompt": "a cat"})
        );
        let chosen: ImageRequest =
            serde_json::from_value(json!({"prompt": "a cat", "size": "16:9", "scale": 0.8, "force_single": true}))
                .unwrap();
        assert_eq!(
            Value::Object(chosen.to_wire(&t2i, "m").unwrap()),
            json!({"prompt": "a cat", "width×height": "2560x1440(16:9)", "scale": 0.8, "force_single": true})
        );
        assert_eq!(request("a cat").size_label(&t2i), "2048x2048(1:1)");
    }

    #[test]
    fn an_edit_sends_prompt_and_image_urls_and_refuses_what_its_schema_lacks() {
        let edit_shape = shape(EDIT_MODEL);
        let edit: ImageRequest =
            serde_json::from_value(json!({"prompt": "make it winter", "images": ["abc#2"]})).unwrap();
        assert_eq!(edit.endpoint(), Endpoint::Edit);
        assert_eq!(
            Value::Object(edit.to_wire(&edit_shape, EDIT_MODEL).unwrap()),
            json!({"prompt": "make it winter", "image_urls": ["abc#2"]})
        );
        let mut sized = edit.clone();
        sized.size = Size::parse("1024x1024");
        let err = sized.to_wire(&edit_shape, EDIT_MODEL).unwrap_err();
        assert_eq!(err.field, "size");
        assert!(err.message.contains("Leave size out"), "{}", err.message);
        let mut scaled = edit.clone();
        scaled.scale = 0.9;
        assert_eq!(scaled.to_wire(&edit_shape, EDIT_MODEL).unwrap_err().field, "scale");
        assert_eq!(Models::default().of(Endpoint::Edit), "bytedance/dreamina-4-0/edit");
        assert_eq!(Models::default().of(Endpoint::TextToImage), TEXT_TO_IMAGE_MODEL);
    }

    #[test]
    fn other_models_get_their_own_image_field_and_ratio() {
        let nano = Shape::of(
            &json!({"type": "object", "required": ["prompt", "image_urls"], "properties": {
            "prompt": {"type": "string"}, "aspect_ratio": {"type": "string", "enum": ["auto", "16:9", "1:1"]},
            "image_urls": {"type": "array", "format": "image_uris"}}}),
        );
        let mut edit: ImageRequest =
            serde_json::from_value(json!({"prompt": "p", "images": ["a#1"], "size": "2560x1440"})).unwrap();
        assert_eq!(
            Value::Object(edit.to_wire(&nano, "nano").unwrap()),
            json!({"prompt": "p", "image_urls": ["a#1"], "aspect_ratio": "16:9"})
        );
        edit.size = Size::parse("4:3");
        assert!(edit.to_wire(&nano, "nano").unwrap_err().message.contains("16:9, 1:1"));
        let single = Shape::of(&json!({"type": "object", "properties": {
            "prompt": {"type": "string"}, "image": {"type": "string", "format": "image_uri"}}}));
        edit.size = None;
        assert_eq!(edit.to_wire(&single, "one").unwrap()["image"], "a#1");
        edit.images.push("b#1".into());
        assert_eq!(edit.to_wire(&single, "one").unwrap_err().field, "images");
    }

    #[test]
    fn a_ratio_alone_is_the_2k_size_of_that_ratio() {
        let cases = [
            ("16:9", "2560x1440(16:9)"),
            ("1:1", "2048x2048(1:1)"),
            ("4:3", "2304x1728(4:3)"),
            ("21:9", "3024x1296(21:9)"),
        ];
        for (ratio, size) in cases {
            assert_eq!(Size::parse(ratio).map(Size::as_str), Some(size), "{ratio}");
        }
        assert!(Size::parse("5:4").is_none());
        assert_eq!(Size::parse("5404x3040").unwrap().ratio(), "16:9");
    }

    #[test]
    fn the_builtin_entries_are_the_two_dreamina_endpoints() {
        let t2i = builtin_entry(TEXT_TO_IMAGE_MODEL).unwrap();
        let schema = t2i.input_schema.unwrap();
        assert_eq!(schema["properties"]["scale"]["type"], "float");
        assert_eq!(
            schema["properties"]["width×height"]["enum"].as_array().unwrap().len(),
            11
        );
        let edit = builtin_entry(EDIT_MODEL).unwrap().input_schema.unwrap();
        let keys: Vec<&String> = edit["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["image_urls", "prompt"]);
        assert!(builtin_entry("bytedance/seedream-4-0/edit").is_none());
    }

    #[test]
    fn too_many_or_empty_images_are_refused() {
        let mut edit = request("x");
        edit.images = vec!["a".into(); MAX_IMAGES + 1];
        assert_eq!(edit.validate().unwrap_err().field, "images");
        edit.images = vec!["a".into(), " ".into()];
        assert_eq!(edit.validate().unwrap_err().field, "images[1]");
        edit.images = vec!["a".into(); MAX_IMAGES];
        assert!(edit.validate().is_ok());
    }
}
