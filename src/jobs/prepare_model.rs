//! Any catalogue model's input turned into what is submitted, before anything is paid for: the
//! model looked up in the catalogue (an unknown id answered with the closest ones), provider-safe
//! keys mapped back to RunComfy's, the input checked against the model's own schema, and every
//! media input (found by the schema's `format`) resolved as the Dreamina tools' `images` are.
//! Anything wrong is a [`PrepareError`] and nothing has been sent.

use serde_json::{Map, Value};

use super::{
    prepare::too_large,
    price::{basis, Basis},
    Caller, JobService, PrepareError, Prepared,
};
use crate::{
    dreamina::InputError,
    media::inputs::Source,
    models::{
        media_inputs::{media_inputs, MediaKind},
        safe_schema::provider_safe,
        validate::{check, check_media, Checked},
    },
    runcomfy::MAX_SUBMIT_BYTES,
};

impl JobService {
    /// Checks `input` for `model_id` and resolves its media inputs, in order; the first problem
    /// is the error. May read files and ask RunComfy for an earlier job's result, never submits.
    pub async fn prepare_model(
        &self,
        caller: &Caller,
        model_id: &str,
        input: &Map<String, Value>,
    ) -> Result<Prepared, PrepareError> {
        let model = self
            .catalogue()
            .describe(caller.key(), model_id)
            .await
            .map_err(|e| PrepareError::Catalogue(e.to_string()))?;
        let id = model.model_id.clone().unwrap_or_else(|| model_id.trim().to_owned());
        let schema = model
            .input_schema
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        let mut wire = provider_safe(&schema).to_wire(input);
        if let Checked::Invalid(violations) = check(&schema, &Value::Object(wire.clone())) {
            return Err(PrepareError::Input(InputError::new(
                "input",
                format!(
                    "does not meet {id}'s input schema: {violations}. Nothing was submitted; describe_model shows the schema."
                ),
            )));
        }
        let mut records = Vec::new();
        let mut params = wire.clone();
        let mut body_bytes = 0usize;
        for media in media_inputs(&schema) {
            let Some(given) = wire.get(&media.key).cloned() else {
                continue;
            };
            let (entries, many) = match &given {
                Value::String(one) => (vec![one.clone()], false),
                Value::Array(items) => (
                    items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                    true,
                ),
                _ => continue, // the schema check let it through: RunComfy judges it
            };
            let mut sent = Vec::with_capacity(entries.len());
            let mut kept = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let field = if many {
                    format!("input.{}[{i}]", media.key)
                } else {
                    format!("input.{}", media.key)
                };
                if media.kind != MediaKind::Image {
                    only_a_url(&field, media.kind, entry)?;
                }
                let resolved = self.resolve(caller, field.clone(), entry).await?;
                // The schema's own `validations` (file size, pixels, aspect ratio), on what is sent.
                if let Some(property) = schema.get("properties").and_then(|p| p.get(&media.key)) {
                    check_media(property, &resolved.wire).map_err(|said| {
                        PrepareError::Input(InputError::new(field, format!("{said} Nothing was submitted.")))
                    })?;
                }
                body_bytes += resolved.wire.len();
                if body_bytes > MAX_SUBMIT_BYTES {
                    return Err(too_large("input", body_bytes));
                }
                sent.push(Value::String(resolved.wire));
                kept.push(Value::String(resolved.record.given.clone()));
                records.push(resolved.record);
            }
            let (sent, kept) = if many {
                (Value::Array(sent), Value::Array(kept))
            } else {
                (sent.remove(0), kept.remove(0))
            };
            wire.insert(media.key.clone(), sent);
            // The journal keeps what was given, never a file's bytes.
            params.insert(media.key, kept);
        }
        if !records.is_empty() {
            params.insert("inputs".to_owned(), serde_json::to_value(&records).unwrap_or_default());
        }
        let wire = Value::Object(wire);
        let total = serde_json::to_vec(&wire).map_or(0, |b| b.len());
        if total > MAX_SUBMIT_BYTES {
            return Err(too_large("input", total));
        }
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| params.get(*k).and_then(Value::as_str))
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Prepared {
            prompt: text(&["prompt", "text"]),
            size: text(&["size", "resolution", "aspect_ratio"]),
            // Dreamina makes a set of images unless force_single: its own estimate, so that a
            // spend limit counts the set's top however the job was started.
            basis: if self.models.is_dreamina(&id) {
                let single = wire.get("force_single").and_then(Value::as_bool) == Some(true);
                Basis::image_set(single, records.len())
            } else {
                basis(&model, &schema, wire.as_object())
            },
            model: id,
            params: Value::Object(params),
            wire,
            recipe: None,
        })
    }
}

/// A video or audio input is passed on as the URL it is: files and data URIs of those kinds are
/// not read (they would be large, and this server only checks images' bytes).
fn only_a_url(field: &str, kind: MediaKind, entry: &str) -> Result<(), PrepareError> {
    match Source::parse(entry) {
        Ok(Source::Url(_)) => Ok(()),
        Ok(_) => Err(PrepareError::Input(InputError::new(
            field,
            format!(
                "is a {} input: give it as an https:// URL (a job's video or audio URL from get_result works); local files, data URIs and request_id#n references are only read for images",
                kind.as_str()
            ),
        ))),
        Err(message) => Err(PrepareError::Input(InputError::new(field, message))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_and_audio_inputs_must_be_urls() {
        assert!(only_a_url("input.clip", MediaKind::Video, "https://example.com/a.mp4").is_ok());
        let Err(PrepareError::Input(e)) = only_a_url("input.clip", MediaKind::Video, "/tmp/a.mp4") else {
            panic!("a file was taken")
        };
        assert!(e.message.contains("https:// URL"), "{}", e.message);
    }
}
