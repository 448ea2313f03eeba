//! RunComfy's two Dreamina catalogue entries, built in for when the catalogue cannot be read.

use serde_json::json;

use super::{
    size::{DEFAULT_SIZE, SIZES},
    DEFAULT_SCALE, EDIT_MODEL, MAX_IMAGES, MAX_PROMPT_CHARS, TEXT_TO_IMAGE_MODEL, WIRE_IMAGES_KEY, WIRE_SIZE_KEY,
};
use crate::runcomfy::ModelInfo;

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
}
