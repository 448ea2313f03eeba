//! A job made again from its own recipe, as this machine's journal recorded it: a Dreamina job
//! from its prompt, size, scale, force_single and reference images (as given, resolved afresh);
//! any other model's job from the input it was sent (media as given, never a file's bytes). An
//! optional nudge is added to the prompt. The result is a [`Prepared`] like any other, so each
//! job made of it is checked, limited, journaled and paid as any other.

use serde_json::{Map, Value};

use super::{Caller, JobService, PrepareError, Prepared, Recipe};
use crate::{
    dreamina::{ImageRequest, InputError},
    runcomfy::RequestId,
};

/// The input keys a catalogue model's prompt is found under, in this order.
const PROMPT_KEYS: [&str; 2] = ["prompt", "text"];

/// `prompt` with `nudge` (if any) added after it.
fn nudged(prompt: &str, nudge: Option<&str>) -> String {
    match nudge.map(str::trim).filter(|n| !n.is_empty()) {
        Some(nudge) => format!("{}. {nudge}", prompt.trim_end().trim_end_matches('.')),
        None => prompt.to_owned(),
    }
}

impl JobService {
    /// `caller`'s job `id` prepared again from its recipe, its prompt nudged by `nudge`. Nothing
    /// is submitted; a job the journal does not hold (or holds for someone else) is an error
    /// naming `field`.
    pub async fn prepare_again(
        &self,
        caller: &Caller,
        field: &str,
        id: &RequestId,
        nudge: Option<&str>,
    ) -> Result<Prepared, PrepareError> {
        let Some(job) = self.journal.get(caller.owner(), id).await else {
            return Err(PrepareError::Input(InputError::new(
                field,
                format!("names job {id}, which is not recorded on this machine, so its recipe is unknown (list_jobs lists the jobs that are)"),
            )));
        };
        if self.models.is_dreamina(&job.model) {
            let mut recipe = Recipe::from_record(&job);
            recipe.prompt = nudged(&recipe.prompt, nudge);
            let request: ImageRequest =
                serde_json::to_value(&recipe)
                    .and_then(serde_json::from_value)
                    .map_err(|e| {
                        PrepareError::Input(InputError::new(
                            field,
                            format!("names job {id}, whose recorded settings cannot be read again ({e})"),
                        ))
                    })?;
            return self.prepare(caller, &request).await;
        }
        let mut input: Map<String, Value> = match job.params {
            Value::Object(params) => params,
            _ => Map::new(),
        };
        // The journal's own record of the media inputs, not a model's field.
        input.remove("inputs");
        if let Some(nudge) = nudge.filter(|n| !n.trim().is_empty()) {
            let key = PROMPT_KEYS
                .iter()
                .find(|key| input.get(**key).is_some_and(Value::is_string));
            let Some(prompt) = key.and_then(|key| input.get_mut(*key)) else {
                return Err(PrepareError::Input(InputError::new(
                    "nudge",
                    format!("cannot be added: job {id} ({}) was made without a prompt. Leave nudge out to make it again as it was", job.model),
                )));
            };
            *prompt = Value::String(nudged(prompt.as_str().unwrap_or_default(), Some(nudge)));
        }
        self.prepare_model(caller, &job.model, &input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nudge_follows_the_prompt() {
        assert_eq!(
            nudged("a red fox in snow.", Some(" at dusk ")),
            "a red fox in snow. at dusk"
        );
        assert_eq!(nudged("a red fox", None), "a red fox");
        assert_eq!(nudged("a red fox", Some("  ")), "a red fox");
    }
}
