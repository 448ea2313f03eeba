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

mod builtin;
mod size;
mod wire;

pub use builtin::builtin_entry;
pub use size::Size;

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema_check::Rules;

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
    #[schemars(
        length(min = 1, max = MAX_PROMPT_CHARS),
        regex(pattern = crate::schema_check::NOT_BLANK),
        description = prompt_description()
    )]
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
    /// Checks the request against its own schema, where its rules are stated (the schemars
    /// attributes above: the tools' schemas carry the same ones). Called before any HTTP call,
    /// for the CLI's requests and the variations' as for the tools'.
    pub fn validate(&self) -> Result<(), InputError> {
        static RULES: LazyLock<Rules> = LazyLock::new(Rules::of::<ImageRequest>);
        // A plain struct of strings and numbers: only a non-finite scale (null here) is not JSON,
        // and the schema refuses that.
        let value = serde_json::to_value(self).unwrap_or_default();
        RULES
            .check(&value)
            .map_err(|broken| InputError::new(broken.field, broken.message))
    }

    /// Text-to-image without reference images, edit with them.
    pub fn endpoint(&self) -> Endpoint {
        if self.images.is_empty() {
            Endpoint::TextToImage
        } else {
            Endpoint::Edit
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    pub(super) fn request(prompt: &str) -> ImageRequest {
        serde_json::from_value(json!({ "prompt": prompt })).unwrap()
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
