//! Which inputs of a model are media, read from its schema: RunComfy marks them with a `format`
//! (`image_uri`, `image_uris`, `video_uri(s)`, `audio_uri(s)`) whatever the field is called
//! (`image_urls` on Dreamina edit, `images` on Seedream 4.0 edit, `image` on Seedream 5): the
//! field name is never guessed from the model's family.

use serde_json::Value;

/// What a media input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }
}

/// One media input of a model's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInput {
    /// The property, under RunComfy's own name.
    pub key: String,
    pub kind: MediaKind,
}

/// The top-level properties of `schema` that take media, by name.
pub fn media_inputs(schema: &Value) -> Vec<MediaInput> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .filter_map(|(key, property)| {
            // The format may sit on the array's items instead of the array.
            let format = property
                .get("format")
                .or_else(|| property.get("items").and_then(|i| i.get("format")))
                .and_then(Value::as_str)?;
            let kind = match format.trim_end_matches('s') {
                "image_uri" => MediaKind::Image,
                "video_uri" => MediaKind::Video,
                "audio_uri" => MediaKind::Audio,
                _ => return None,
            };
            Some(MediaInput { key: key.clone(), kind })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_inputs_are_found_by_format_whatever_their_name() {
        let schema = json!({"type": "object", "properties": {
            "prompt": {"type": "string"},
            "image": {"type": "array", "format": "image_uris"},
            "first_frame": {"type": "string", "format": "image_uri"},
            "clips": {"type": "array", "items": {"type": "string", "format": "video_uri"}},
            "voice": {"type": "string", "format": "audio_uri"},
            "site": {"type": "string", "format": "uri"},
        }});
        let found: Vec<(String, MediaKind)> = media_inputs(&schema).into_iter().map(|m| (m.key, m.kind)).collect();
        assert_eq!(
            found,
            vec![
                ("clips".to_owned(), MediaKind::Video),
                ("first_frame".to_owned(), MediaKind::Image),
                ("image".to_owned(), MediaKind::Image),
                ("voice".to_owned(), MediaKind::Audio),
            ]
        );
    }
}
