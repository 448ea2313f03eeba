//! Dreamina 4.0 input, for both of its endpoints: the Rust types the tool schema is derived from,
//! the rules they must meet, which endpoint a request goes to, and the mapping to RunComfy's wire
//! form. It knows nothing of MCP: a broken rule is an [`InputError`], which the tools and the CLI
//! each phrase for their audience.
//!
//! Dreamina 4.0 is one model served as two endpoints: text-to-image, and edit (the same model
//! given reference images). A request with `images` goes to edit, one without to text-to-image.
//! The edit page documents only `prompt` and `image_urls`; the other fields are assumed to apply
//! as for text-to-image, and [`ImageRequest::to_wire`] is the one place that decides the fields.
//!
//! The upstream names the size field `width×height` (with U+00D7). Anthropic's API rejects a tool
//! whose property keys are not `[a-zA-Z0-9_.-]`, so the tool exposes it as `size` and the
//! mapping to the wire restores the upstream name.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

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

/// One of the documented sizes. Accepts the documented spelling (`2560x1440(16:9)`) and the bare
/// `WIDTHxHEIGHT` form (`2560x1440`, `2560×1440`, `2560 X 1440`).
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
                "{raw:?} is not a supported size. Use one of: {} (the bare form WIDTHxHEIGHT, e.g. 2560x1440, is accepted too)",
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
    /// What the image should show, in plain language (1 to 800 characters). Dreamina 4.0 renders text in images well: put any words that must appear in quotes. Describe subject, setting, style, lighting and composition.
    #[schemars(length(min = 1, max = 800))]
    pub prompt: String,

    /// Output size in pixels with its aspect ratio, WIDTHxHEIGHT(ratio). Pick the aspect ratio the user wants; larger sizes take longer. The bare form (e.g. 2560x1440) is accepted too.
    #[serde(default)]
    pub size: Size,

    /// How strongly the prompt steers the result, from 0 to 1. Higher follows the text more literally; lower gives the model more freedom.
    #[serde(default = "default_scale")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub scale: f64,

    /// Set true to get exactly one image. When false the model may return a set of several related images, which takes longer.
    #[serde(default)]
    pub force_single: bool,

    #[serde(default)]
    #[schemars(length(max = MAX_IMAGES), description = images_description())]
    pub images: Vec<String>,
}

fn images_description() -> String {
    format!("Reference images, 1 to {MAX_IMAGES}; leave it out to make an image from text alone. Pass images when the user wants an existing image changed ('edit this', 'make it winter', 'replace the text on the sign'), an image made in the style or with the subject of another ('in the style of', 'this person as'), or several combined ('put the cat from the first into the second'). The prompt then says what to change or how to combine them. Each entry is one of: an earlier result of this server by its request_id (its first image) or request_id#n (its n-th image, from 1), so 'edit the last one' needs no URL; a public https:// URL; an absolute path of a local file (PNG, JPEG or WebP) in a directory the server allows (--input-dir); or a data:image/...;base64, URI.")
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
                "must not be empty: describe the image to generate (1 to 800 characters)",
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

    /// The model input exactly as RunComfy expects it. `image_urls` are the reference images as
    /// RunComfy is to receive them (URLs or data URIs), resolved from `images`; empty for
    /// text-to-image. The one place that decides which fields each endpoint gets: the edit
    /// endpoint is assumed to take the text-to-image fields besides its `image_urls`.
    pub fn to_wire(&self, image_urls: &[String]) -> Value {
        let mut wire = json!({
            "prompt": self.prompt,
            WIRE_SIZE_KEY: self.size.as_str(),
            "scale": self.scale,
            "force_single": self.force_single,
        });
        if self.endpoint() == Endpoint::Edit {
            wire[WIRE_IMAGES_KEY] = json!(image_urls);
        }
        wire
    }
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
    }

    #[test]
    fn prompt_limit_counts_characters_not_bytes() {
        assert!(request(&"é".repeat(800)).validate().is_ok());
        let err = request(&"a".repeat(801)).validate().unwrap_err();
        assert_eq!(err.field, "prompt");
        assert!(err.message.contains("801 characters"));
        assert!(request("   ").validate().is_err());
    }

    #[test]
    fn wire_form_uses_the_upstream_key_and_defaults() {
        let wire = request("a cat").to_wire(&[]);
        assert_eq!(
            wire,
            json!({"prompt": "a cat", "width×height": "2048x2048(1:1)", "scale": 0.5, "force_single": false})
        );
    }

    #[test]
    fn images_pick_the_edit_endpoint_and_its_wire_field() {
        let plain = request("a cat");
        assert_eq!(plain.endpoint(), Endpoint::TextToImage);
        let edit: ImageRequest =
            serde_json::from_value(json!({"prompt": "make it winter", "images": ["abc#2"]})).unwrap();
        assert_eq!(edit.endpoint(), Endpoint::Edit);
        let wire = edit.to_wire(&["https://x.invalid/a.png".to_owned()]);
        assert_eq!(wire["image_urls"], json!(["https://x.invalid/a.png"]));
        assert_eq!(wire["width×height"], "2048x2048(1:1)");
        assert_eq!(Models::default().of(Endpoint::Edit), "bytedance/dreamina-4-0/edit");
        assert_eq!(Models::default().of(Endpoint::TextToImage), TEXT_TO_IMAGE_MODEL);
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
