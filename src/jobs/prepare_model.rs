//! Any catalogue model's input turned into what is submitted, before anything is paid for: the
//! model looked up in the catalogue (an unknown id answered with the closest ones), provider-safe
//! keys mapped back to RunComfy's, the input checked against the model's own schema, and every
//! media input (found by the schema's `format`) resolved as the Dreamina tools' `images` are.
//! Anything wrong is a [`PrepareError`] and nothing has been sent.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{
    prepare::too_large,
    price::{basis, Basis},
    Caller, JobService, PrepareError, Prepared,
};
use crate::{
    dreamina::{self, InputError, Models},
    media::inputs::{InputRecord, Source},
    models::{
        media_inputs::{locate, media_inputs, MediaKind},
        safe_schema::provider_safe,
        shape::Shape,
        validate::{check, check_media, Checked},
    },
    runcomfy::{Catalogue, CatalogueError, Client, ModelInfo, MAX_SUBMIT_BYTES},
};

/// How a request's fields are named in its errors: run_model's `input.…`, or the generate
/// tools' own argument names (`images[0]` for whatever the model calls its image field).
pub(super) struct Naming {
    /// Put before a field's path (`input.`).
    prefix: &'static str,
    /// The whole request, in an error about it as a whole.
    whole: &'static str,
    /// The model's image field, shown as the tools' `images`.
    images: Option<String>,
}

impl Naming {
    pub(super) fn model_input() -> Self {
        Self {
            prefix: "input.",
            whole: "input",
            images: None,
        }
    }

    pub(super) fn image_tool(image_field: Option<String>) -> Self {
        Self {
            prefix: "",
            whole: "images",
            images: image_field,
        }
    }

    fn field(&self, path: &str) -> String {
        if let Some(key) = self.images.as_deref() {
            if let Some(rest) = path.strip_prefix(key) {
                // A single-image field is the tools' images[0].
                return if rest.is_empty() {
                    "images[0]".to_owned()
                } else {
                    format!("images{rest}")
                };
            }
        }
        format!("{}{path}", self.prefix)
    }
}

/// A body checked against its schema, with every media input resolved.
pub(super) struct Built {
    pub(super) wire: Value,
    /// What the journal keeps: the body as given (media as given, never a file's bytes) and,
    /// when there were media inputs, their records under `inputs`.
    pub(super) params: Value,
    pub(super) records: Vec<InputRecord>,
}

impl JobService {
    /// `model_id`'s catalogue entry; for Dreamina's two endpoints, when the catalogue cannot be
    /// read or does not list them, the built-in copy of RunComfy's entry.
    pub(super) async fn model_entry(&self, caller: &Caller, model_id: &str) -> Result<ModelInfo, PrepareError> {
        let id = model_id.trim();
        match (
            self.catalogue().describe(caller.key(), id).await,
            dreamina::builtin_entry(id),
        ) {
            (Ok(entry), None) => Ok(entry),
            (Ok(entry), Some(builtin)) => Ok(if entry.input_schema.is_some() { entry } else { builtin }),
            (Err(e), Some(builtin)) => {
                tracing::debug!(model = id, error = %e, "model catalogue: using the built-in entry");
                Ok(builtin)
            }
            (Err(e), None) => Err(PrepareError::Catalogue(e.to_string())),
        }
    }

    /// Checks `wire` against `schema` and resolves its media inputs (top-level or nested, found
    /// by the schema's `format`), in order; the first problem is the error. May read files and
    /// ask RunComfy for an earlier job's result, never submits.
    pub(super) async fn build(
        &self,
        caller: &Caller,
        id: &str,
        schema: &Value,
        wire: Map<String, Value>,
        naming: &Naming,
    ) -> Result<Built, PrepareError> {
        if let Checked::Invalid(violations) = check(schema, &Value::Object(wire.clone())) {
            return Err(PrepareError::Input(InputError::new(
                naming.whole,
                format!(
                    "do not meet {id}'s input schema: {violations}. Nothing was submitted; describe_model shows the schema."
                ),
            )));
        }
        let mut records = Vec::new();
        let mut params = Value::Object(wire.clone());
        let mut body_bytes = 0usize;
        let mut resolved_wire = Value::Object(wire);
        for media in media_inputs(schema) {
            let found = match &resolved_wire {
                Value::Object(map) => locate(map, &media),
                _ => Vec::new(),
            };
            for located in found {
                let field = naming.field(&located.label);
                if media.kind != MediaKind::Image {
                    only_a_url(&field, media.kind, &located.entry)?;
                }
                let resolved = self.resolve(caller, field.clone(), &located.entry).await?;
                // The schema's own `validations` (file size, pixels, aspect ratio), on what is sent.
                check_media(&media.property, &resolved.wire).map_err(|said| {
                    PrepareError::Input(InputError::new(field, format!("{said} Nothing was submitted.")))
                })?;
                body_bytes += resolved.wire.len();
                if body_bytes > MAX_SUBMIT_BYTES {
                    return Err(too_large(naming.whole, body_bytes));
                }
                if let Some(slot) = resolved_wire.pointer_mut(&located.pointer) {
                    *slot = Value::String(resolved.wire);
                }
                // A host's file is kept as what it became (its upload), never its short-lived URL.
                if crate::media::host_files::parse(&located.entry).is_some() {
                    if let Some(slot) = params.pointer_mut(&located.pointer) {
                        *slot = Value::String(resolved.record.given.clone());
                    }
                }
                records.push(resolved.record);
            }
        }
        let total = serde_json::to_vec(&resolved_wire).map_or(0, |b| b.len());
        if total > MAX_SUBMIT_BYTES {
            return Err(too_large(naming.whole, total));
        }
        if let (false, Value::Object(map)) = (records.is_empty(), &mut params) {
            map.insert("inputs".to_owned(), serde_json::to_value(&records).unwrap_or_default());
        }
        Ok(Built {
            wire: resolved_wire,
            params,
            records,
        })
    }

    /// Checks `input` for `model_id` and resolves its media inputs, in order; the first problem
    /// is the error. May read files and ask RunComfy for an earlier job's result, never submits.
    pub async fn prepare_model(
        &self,
        caller: &Caller,
        model_id: &str,
        input: &Map<String, Value>,
    ) -> Result<Prepared, PrepareError> {
        let model = self.model_entry(caller, model_id).await?;
        let id = model.model_id.clone().unwrap_or_else(|| model_id.trim().to_owned());
        let schema = schema_of(&model);
        let wire = provider_safe(&schema).to_wire(input);
        let built = self.build(caller, &id, &schema, wire, &Naming::model_input()).await?;
        let params = built.params;
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
                let single = built.wire.get("force_single").and_then(Value::as_bool) == Some(true);
                Basis::image_set(single, built.records.len())
            } else {
                basis(&model, &schema, built.wire.as_object())
            },
            model: id,
            params,
            wire: built.wire,
            recipe: None,
        })
    }
}

/// Refuses, by name, a `--model` / `--edit-model` whose input schema lacks what the image tools
/// need (a prompt; for edits an image input), or that RunComfy's catalogue does not list, before
/// the server starts. Dreamina's own ids are judged by their built-in entries (no read). When the
/// catalogue cannot be read now the start goes on, with a warning: each request is checked again.
/// The catalogue read here is kept in memory only, so a refused start leaves nothing on disk.
pub async fn check_models(client: &Arc<Client>, models: &Models) -> Result<(), String> {
    let catalogue = Arc::new(Catalogue::new(Arc::clone(client), None));
    for (flag, id, edit) in [
        ("--model", &models.text_to_image, false),
        ("--edit-model", &models.edit, true),
    ] {
        let id = id.trim();
        let entry = match dreamina::builtin_entry(id) {
            Some(builtin) => builtin,
            None => match catalogue.describe(None, id).await {
                Ok(entry) => entry,
                Err(e @ CatalogueError::Unknown { .. }) => return Err(format!("{flag} {id}: {e}")),
                Err(e) => {
                    tracing::warn!(model = id, error = %e, "{flag} could not be checked against RunComfy's catalogue now; each request will be");
                    continue;
                }
            },
        };
        if let Some(why) = Shape::of(&schema_of(&entry)).lacks(id, edit) {
            return Err(format!(
                "{flag} {id}: {why}. Name a model that has it (list_models lists them; {} by default)",
                models_default(edit)
            ));
        }
    }
    Ok(())
}

fn models_default(edit: bool) -> &'static str {
    if edit {
        dreamina::EDIT_MODEL
    } else {
        dreamina::TEXT_TO_IMAGE_MODEL
    }
}

/// A model's input schema (an entry without one: any object).
pub(super) fn schema_of(model: &ModelInfo) -> Value {
    model
        .input_schema
        .clone()
        .unwrap_or_else(|| serde_json::json!({"type": "object"}))
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
