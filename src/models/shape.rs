//! What a model's input schema offers the image tools (`generate_image` and its kin, the CLI's
//! `generate`): which key takes the prompt, which takes the reference images, and how a size
//! can be asked for. Read from the schema RunComfy publishes, never from the model's family, so
//! that `--model` / `--edit-model` work for any model whose schema has what the tools need and
//! are refused, by name, when it has not.

use serde_json::Value;

use super::media_inputs::{media_inputs, MediaKind};
use crate::dreamina::WIRE_SIZE_KEY;

/// The key every RunComfy image model takes its prompt under.
pub(crate) const PROMPT_KEY: &str = "prompt";
/// The key models other than Dreamina take a size under, as a ratio (`16:9`).
pub(crate) const RATIO_KEY: &str = "aspect_ratio";
const SCALE_KEY: &str = "scale";
const FORCE_SINGLE_KEY: &str = "force_single";

/// Where a model's reference images go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageField {
    /// The property, under RunComfy's own name (`image_urls`, `images`, `image`, …).
    pub(crate) key: String,
    /// A list (`image_uris`), or a single image (`image_uri`).
    pub(crate) many: bool,
}

/// How a model takes a size, if it takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SizeField {
    /// Dreamina's `width×height`, with its spelling of each size.
    Exact { default: Option<String> },
    /// An `aspect_ratio` with the ratios it accepts (empty: any).
    Ratio { values: Vec<String> },
}

/// What one model's schema offers the image tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) prompt: bool,
    pub(crate) images: Option<ImageField>,
    pub(crate) size: Option<SizeField>,
    pub(crate) scale: bool,
    pub(crate) force_single: bool,
    /// The keys the schema requires.
    required: Vec<String>,
}

impl Shape {
    pub(crate) fn of(schema: &Value) -> Self {
        let properties = schema.get("properties").and_then(Value::as_object);
        let declared = |key: &str| properties.is_some_and(|p| p.contains_key(key));
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        // Of several image inputs (Wan's `image_url` and `end_image_url`), a required one, else
        // the first list, else the first.
        let images: Vec<ImageField> = media_inputs(schema)
            .into_iter()
            .filter(|m| m.kind == MediaKind::Image && m.nested.is_empty())
            .map(|m| ImageField {
                many: m.many,
                key: m.key,
            })
            .collect();
        let images = images
            .iter()
            .find(|f| required.contains(&f.key.as_str()))
            .or_else(|| images.iter().find(|f| f.many))
            .or_else(|| images.first())
            .cloned();
        let size = if declared(WIRE_SIZE_KEY) {
            Some(SizeField::Exact {
                default: schema
                    .pointer(&format!("/properties/{WIRE_SIZE_KEY}/default"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        } else if declared(RATIO_KEY) {
            Some(SizeField::Ratio {
                values: schema
                    .pointer(&format!("/properties/{RATIO_KEY}/enum"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            })
        } else {
            None
        };
        Self {
            prompt: declared(PROMPT_KEY),
            images,
            size,
            scale: declared(SCALE_KEY),
            force_single: declared(FORCE_SINGLE_KEY),
            required: required.into_iter().map(str::to_owned).collect(),
        }
    }

    /// What the tools need that `model`'s schema lacks, in words; `None` when it has it all.
    /// `edit`: the model is to take reference images.
    pub(crate) fn lacks(&self, model: &str, edit: bool) -> Option<String> {
        let mut problems = Vec::new();
        if !self.prompt {
            problems.push(format!("no `{PROMPT_KEY}` field"));
        }
        if edit && self.images.is_none() {
            problems.push("no image input (a field whose format is image_uri or image_uris)".to_owned());
        }
        // Required keys the tools cannot fill (a mask, a video; reference images in a
        // text-to-image request).
        let fillable = [PROMPT_KEY, WIRE_SIZE_KEY, RATIO_KEY, SCALE_KEY, FORCE_SINGLE_KEY];
        let unfillable: Vec<String> = self
            .required
            .iter()
            .filter(|k| !fillable.contains(&k.as_str()))
            .filter(|k| !edit || self.images.as_ref().is_none_or(|f| &f.key != *k))
            .map(|k| format!("`{k}`"))
            .collect();
        if !unfillable.is_empty() {
            problems.push(format!(
                "required fields these tools cannot fill: {}",
                unfillable.join(", ")
            ));
        }
        if problems.is_empty() {
            return None;
        }
        Some(format!(
            "{model} cannot take {}: its input schema has {}",
            if edit { "edits" } else { "text-to-image requests" },
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dreaminas_seedreams_and_nano_bananas_fields_are_found_by_the_schema() {
        let dreamina = Shape::of(&json!({"type": "object", "required": ["prompt"], "properties": {
            "prompt": {"type": "string"}, "width×height": {"type": "string", "default": "2048x2048(1:1)"},
            "scale": {"type": "float"}, "force_single": {"type": "boolean"}}}));
        assert_eq!(
            dreamina.size,
            Some(SizeField::Exact {
                default: Some("2048x2048(1:1)".into())
            })
        );
        assert!(dreamina.scale && dreamina.force_single && dreamina.images.is_none());
        assert_eq!(dreamina.lacks("d", false), None);
        assert!(dreamina.lacks("d", true).unwrap().contains("no image input"));

        let seedream = Shape::of(
            &json!({"type": "object", "required": ["prompt", "images"], "properties": {
            "prompt": {"type": "string"}, "images": {"type": "array", "format": "image_uris"}}}),
        );
        assert_eq!(
            seedream.images,
            Some(ImageField {
                key: "images".into(),
                many: true
            })
        );
        assert_eq!(seedream.size, None);
        assert_eq!(seedream.lacks("s", true), None);
        // It requires images, which text-to-image has none of.
        assert!(seedream.lacks("s", false).unwrap().contains("`images`"));

        let wan = Shape::of(
            &json!({"type": "object", "required": ["prompt", "image_url"], "properties": {
            "prompt": {"type": "string"}, "aspect_ratio": {"enum": ["16:9", "1:1"]},
            "end_image_url": {"type": "string", "format": "image_uri"},
            "image_url": {"type": "string", "format": "image_uri"}}}),
        );
        assert_eq!(
            wan.images,
            Some(ImageField {
                key: "image_url".into(),
                many: false
            })
        );
        assert_eq!(
            wan.size,
            Some(SizeField::Ratio {
                values: vec!["16:9".into(), "1:1".into()]
            })
        );
    }

    #[test]
    fn a_schema_without_a_prompt_is_named_with_what_it_lacks() {
        let speech =
            Shape::of(&json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}));
        let why = speech.lacks("minimax/speech-2.6/text-to-audio", false).unwrap();
        assert!(
            why.starts_with("minimax/speech-2.6/text-to-audio cannot take text-to-image requests"),
            "{why}"
        );
        assert!(why.contains("no `prompt` field") && why.contains("`text`"), "{why}");
    }
}
