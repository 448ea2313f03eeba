//! The simulator's model catalogue: eight models in the shape RunComfy publishes them
//! (`GET /v1/models`, `/v1/models/categories`, `/v1/models/{model_id}`), their input schemas
//! modelled on RunComfy's own `runcomfy/models.json` and the Dreamina page (media inputs marked by
//! `format`, Dreamina's `width×height` key and `"type": "float"`, Seedream 5.0 Pro's non-standard
//! `validations` list, a video model priced per second). Every entry's `kind` is `"model"`, as
//! RunComfy's are (its partner nodes refuse any other); what a model makes is in its
//! `categories`. Dreamina's two endpoints are priced from the config, as their jobs are charged.
//!
//! RunComfy publishes no page size and no bound on its catalogue, so [`CatalogueShape`] lets a
//! test serve short pages, pages that ignore `limit`, extra entries (a schema with recursive
//! references) and any number of filler entries.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::input::{SIZES, SIZE_KEY};
use super::{wire, Shared};

/// Every model's entry, with its schema; the Dreamina prices are filled in per request.
pub(crate) fn entries() -> &'static [Value] {
    static ENTRIES: OnceLock<Vec<Value>> = OnceLock::new();
    ENTRIES.get_or_init(build)
}

fn build() -> Vec<Value> {
    let aspect = json!({"type": "string", "default": "auto",
        "enum": ["auto", "21:9", "16:9", "3:2", "4:3", "1:1", "3:4", "2:3", "9:16"]});
    let dreamina_props = json!({
        "prompt": {"type": "string", "default": "", "maxLength": 800,
                   "description": "What the image should show."},
        SIZE_KEY: {"type": "string", "enum": SIZES, "default": "2048x2048(1:1)",
                   "description": "Output size with its aspect ratio."},
        // RunComfy's own spelling, from the model's page.
        "scale": {"type": "float", "minimum": 0, "maximum": 1, "default": 0.5},
        "force_single": {"type": "boolean", "default": false},
    });
    let mut dreamina_edit = dreamina_props.clone();
    dreamina_edit["image_urls"] = json!({"type": "array", "format": "image_uris", "minItems": 1, "maxItems": 10});
    vec![
        entry(
            "bytedance/dreamina-4-0/text-to-image",
            "Dreamina 4.0 Text to Image",
            "ByteDance Dreamina 4.0 (Seedream 4.0): images from a prompt, strong at text in images.",
            &["text-to-image"],
            0.0,
            "output",
            json!({"type": "object", "properties": dreamina_props, "required": ["prompt"]}),
        ),
        entry(
            "bytedance/dreamina-4-0/edit",
            "Dreamina 4.0 Edit",
            "ByteDance Dreamina 4.0 edit: change, restyle or combine 1 to 10 reference images.",
            &["image-to-image", "edit"],
            0.0,
            "output",
            json!({"type": "object", "properties": dreamina_edit, "required": ["prompt", "image_urls"]}),
        ),
        entry(
            "bytedance/seedream-4-0/edit",
            "Seedream 4.0 Edit",
            "ByteDance Seedream 4.0 edit of up to 10 images, given as images.",
            &["image-to-image", "edit"],
            0.03,
            "output",
            json!({"type": "object", "properties": {
                "prompt": {"type": "string", "default": ""},
                "images": {"type": "array", "format": "image_uris", "minItems": 1, "maxItems": 10},
                "aspect_ratio": aspect,
            }, "required": ["prompt", "images"]}),
        ),
        entry(
            "google/nano-banana-2-lite/text-to-image",
            "Nano Banana 2 Lite Text to Image",
            "Google Nano Banana 2 Lite: fast, inexpensive images from a prompt.",
            &["text-to-image"],
            0.02,
            "output",
            json!({"type": "object", "properties": {
                "prompt": {"type": "string", "default": ""},
                "aspect_ratio": aspect,
            }, "required": ["prompt"]}),
        ),
        entry(
            "google/nano-banana-2-lite/edit",
            "Nano Banana 2 Lite Edit",
            "Google Nano Banana 2 Lite edit of 1 to 10 images.",
            &["image-to-image", "edit"],
            0.02,
            "output",
            json!({"type": "object", "properties": {
                "prompt": {"type": "string", "default": ""},
                "aspect_ratio": aspect,
                "image_urls": {"type": "array", "format": "image_uris", "minItems": 1, "maxItems": 10},
            }, "required": ["prompt", "image_urls"]}),
        ),
        entry(
            "bytedance/seedream-5.0-pro/image-to-image",
            "Seedream 5.0 Pro Image to Image",
            "ByteDance Seedream 5.0 Pro: edits at 1K or 2K.",
            &["image-to-image", "edit"],
            0.04,
            "output",
            json!({"type": "object", "properties": {
                "prompt": {"type": "string", "default": ""},
                "resolution": {"type": "string", "enum": ["1K", "2K"], "default": "2K"},
                "image": {"type": "array", "format": "image_uris", "minItems": 1, "maxItems": 10,
                    "validations": [
                        {"validation_error": "File size must be less than 30 MB.",
                         "validation_rule": "file_size_mb<", "validation_value": 30},
                        {"validation_error": "The aspect ratio range should be 1:16 to 16:1.",
                         "validation_rule": "width/height>", "validation_value": 0.0625},
                        {"validation_error": "The aspect ratio range should be 1:16 to 16:1.",
                         "validation_rule": "width/height<", "validation_value": 16},
                        {"validation_error": "The uploaded image width and height must exceed 14 pixels.",
                         "validation_rule": "width_pixels>", "validation_value": 14},
                        {"validation_error": "The uploaded image width and height must exceed 14 pixels.",
                         "validation_rule": "height_pixels>", "validation_value": 14},
                    ]},
            }, "required": ["prompt", "image"]}),
        ),
        entry(
            "bytedance/seedance-2.5/text-to-video/1080p",
            "Seedance 2.5 Text to Video 1080p",
            "ByteDance Seedance 2.5: 4 to 30 second 1080p videos from a prompt, optionally guided by images.",
            &["text-to-video"],
            0.1,
            "second",
            json!({"type": "object", "properties": {
                "prompt": {"type": "string", "default": ""},
                "aspect_ratio": {"type": "string", "default": "16:9", "enum": ["16:9", "9:16", "1:1", "adaptive"]},
                "duration": {"type": "integer", "default": 5, "minimum": 4, "maximum": 30},
                "generate_audio": {"type": "boolean", "default": true},
                "images": {"type": "array", "format": "image_uris", "maxItems": 9},
            }, "required": ["prompt"]}),
        ),
        entry(
            "minimax/speech-2.6/text-to-audio",
            "MiniMax Speech 2.6",
            "MiniMax Speech 2.6: spoken audio from text.",
            &["text-to-audio"],
            0.01,
            "output",
            json!({"type": "object", "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 5000},
                "voice": {"type": "string", "enum": ["calm", "bright"], "default": "calm"},
            }, "required": ["text"]}),
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn entry(id: &str, name: &str, description: &str, categories: &[&str], price: f64, unit: &str, schema: Value) -> Value {
    json!({
        "model_id": id,
        "display_name": name,
        "description": description,
        "categories": categories,
        "kind": "model",
        "base_price_usd": price,
        "price_unit": unit,
        "pricing_note": format!("Simulated price per {unit}; nothing is billed."),
        "input_schema": schema,
        "model_url": format!("https://www.runcomfy.com/models/{id}"),
    })
}

/// How the catalogue is served beyond its eight built-in entries. The default is RunComfy's
/// catalogue as its clients see it: pages of up to 100, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatalogueShape {
    /// The most entries a page holds, whatever its `limit` asks: RunComfy publishes no page
    /// size, so a client must page to `total`, not stop at the first short page.
    pub page_size: usize,
    /// Pages hold every entry from `offset` on, ignoring `limit` (a broken upstream).
    pub ignore_limit: bool,
    /// Entries served after the built-in ones, as given (listed and described; a submit to
    /// one is answered as to an unknown model).
    pub extra_models: Vec<Value>,
    /// Each extra entry's `description` padded to at least this many bytes (an entry larger
    /// than a client reads in one answer, without posting one that large here).
    pub extra_model_bytes: usize,
    /// Synthetic entries `filler/model-N` served after those, made as each page is served.
    pub filler_models: u64,
    /// The price and unit of the built-in entries other than Dreamina's, when set: a price of
    /// 0 or a unit such as `"megapixel"`, as no public source rules out.
    pub price_usd: Option<f64>,
    pub price_unit: Option<String>,
}

impl Default for CatalogueShape {
    fn default() -> Self {
        Self {
            page_size: 100,
            ignore_limit: false,
            extra_models: Vec::new(),
            extra_model_bytes: 0,
            filler_models: 0,
            price_usd: None,
            price_unit: None,
        }
    }
}

/// The `n`th filler entry.
fn filler(n: u64) -> Value {
    json!({
        "model_id": format!("filler/model-{n}"),
        "display_name": format!("Filler {n}"),
        "categories": ["text-to-image"],
        "kind": "model",
        "base_price_usd": 0.01,
        "price_unit": "output",
        "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]},
    })
}

/// `model`'s entry as built (Dreamina's price is the config's: see [`get`]).
pub(crate) fn find(model: &str) -> Option<&'static Value> {
    entries().iter().find(|e| e["model_id"] == model)
}

/// `model`'s entry as the catalogue serves it, its price current.
pub(crate) fn get(sim: &Shared, model: &str) -> Option<Value> {
    let (price, shape) = sim.with_config(|c| (c.price_usd_per_image, c.catalogue.clone()));
    let Some(built) = find(model) else {
        if let Some(extra) = shape.extra_models.iter().find(|e| e["model_id"] == model) {
            let mut extra = extra.clone();
            let said = extra["description"].as_str().unwrap_or_default();
            if said.len() < shape.extra_model_bytes {
                extra["description"] = json!(format!("{said}{}", " ".repeat(shape.extra_model_bytes - said.len())));
            }
            return Some(extra);
        }
        return model
            .strip_prefix("filler/model-")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n < shape.filler_models)
            .map(filler);
    };
    let mut entry = built.clone();
    if model.starts_with("bytedance/dreamina-4-0/") {
        entry["base_price_usd"] = json!(price);
    } else {
        if let Some(price) = shape.price_usd {
            entry["base_price_usd"] = json!(price);
        }
        if let Some(unit) = shape.price_unit {
            entry["price_unit"] = json!(unit);
        }
    }
    Some(entry)
}

/// `GET /v1/models/{model_id}`.
pub(crate) fn describe(sim: &Shared, model: &str) -> Response {
    match get(sim, model) {
        Some(entry) => Json(entry).into_response(),
        None => wire::error(StatusCode::NOT_FOUND, 400001, &format!("Model '{model}' not found")),
    }
}

/// `GET /v1/models?search=&category=&kind=&include_schema=&limit=&offset=`.
pub(crate) fn list(sim: &Shared, query: Option<&str>) -> Response {
    let params: Vec<(String, String)> = query
        .map(|q| {
            reqwest::Url::parse(&format!("http://x/?{q}"))
                .map(|u| u.query_pairs().into_owned().collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let search = param("search").map(str::to_lowercase);
    let with_schema = param("include_schema") == Some("true");
    let shape = sim.with_config(|c| c.catalogue.clone());
    let limit = if shape.ignore_limit {
        usize::MAX
    } else {
        param("limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20)
            .min(shape.page_size)
    };
    let offset = param("offset").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let filtered = search.is_some() || param("category").is_some() || param("kind").is_some();
    let matching: Vec<Value> = entries()
        .iter()
        .chain(shape.extra_models.iter())
        .filter(|e| {
            search.as_ref().is_none_or(|s| {
                ["model_id", "display_name", "description"]
                    .iter()
                    .any(|f| e[f].as_str().is_some_and(|v| v.to_lowercase().contains(s)))
            })
        })
        .filter(|e| {
            param("category").is_none_or(|c| e["categories"].as_array().is_some_and(|a| a.iter().any(|x| x == c)))
        })
        .filter(|e| param("kind").is_none_or(|k| e["kind"] == k))
        .filter_map(|e| get(sim, e["model_id"].as_str().unwrap_or_default()))
        .collect();
    // Filler entries only in an unfiltered listing: they stand for "a very large catalogue".
    let fillers = if filtered { 0 } else { shape.filler_models };
    let total = matching.len() as u64 + fillers;
    let from_filler = (offset as u64).saturating_sub(matching.len() as u64);
    let wanted_fillers = fillers.saturating_sub(from_filler).min(limit as u64);
    let models: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .chain((from_filler..from_filler + wanted_fillers).map(filler))
        .take(limit)
        .map(|mut e| {
            if !with_schema {
                if let Some(o) = e.as_object_mut() {
                    o.remove("input_schema");
                }
            }
            e
        })
        .collect();
    Json(json!({ "models": models, "total": total })).into_response()
}

/// `GET /v1/models/categories`.
pub(crate) fn categories() -> Response {
    let all: BTreeSet<&str> = entries()
        .iter()
        .flat_map(|e| e["categories"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    Json(json!({ "categories": all })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_models_of_every_kind_with_object_schemas() {
        let all = entries();
        assert_eq!(all.len(), 8);
        for made in ["image", "video", "audio"] {
            assert!(
                all.iter().any(|e| e["categories"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c.as_str().unwrap().ends_with(made))),
                "{made}"
            );
        }
        assert!(
            all.iter().all(|e| e["kind"] == "model"),
            "RunComfy's kind is always model"
        );
        for e in all {
            assert_eq!(e["input_schema"]["type"], "object", "{}", e["model_id"]);
        }
    }
}
