//! A Dreamina request as RunComfy's wire form, for whichever model's schema it goes to.

use serde_json::{json, Map, Value};

use super::{Endpoint, ImageRequest, InputError, DEFAULT_SCALE, WIRE_SIZE_KEY};
use crate::models::shape::{Shape, SizeField, PROMPT_KEY, RATIO_KEY};

impl ImageRequest {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dreamina::{builtin_entry, tests::request, Models, Size, EDIT_MODEL, TEXT_TO_IMAGE_MODEL};

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
}
