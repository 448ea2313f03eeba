//! Submit and wait: what `generate_image_and_wait` and the tasks path share. The waiting itself
//! is `jobs::wait` (through `Journal::wait`, which records what it sees); this turns its outcome
//! into what the model sees.

use std::time::Duration;

use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{
    args::Validate,
    delivery::DeliveryArgs,
    render::{self, JobResult},
};
use crate::{
    dreamina::{ImageRequest, InvalidArgument},
    jobs::{Backoff, WaitOptions, WaitOutcome},
    journal::{JobUpdate, Journal},
    runcomfy::{Client, JobStatus},
};

/// The arguments of `generate_image_and_wait`: the image, and how long to wait for it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct WaitArgs {
    #[serde(flatten)]
    pub request: ImageRequest,

    #[serde(flatten)]
    pub delivery: DeliveryArgs,

    /// Seconds to wait for the image before returning the request_id to poll with instead. Leave it out to use the server's default (40 s, inside the ~60 s after which some clients abandon a call); the server caps it (300 s by default).
    // Described as a plain integer: some clients (Gemini) reject the `["integer", "null"]` type
    // an Option would get; leaving the field out is how a call asks for the default.
    #[schemars(with = "u32", range(min = 1, max = 3600))]
    pub max_wait_seconds: Option<u32>,
}

impl Validate for WaitArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        if self.max_wait_seconds == Some(0) {
            return Err(InvalidArgument::new("max_wait_seconds", "must be at least 1 second"));
        }
        self.request.validate()
    }
}

/// Submits `request` and waits up to `max_wait`: `Ok` with the finished job (or the handle to
/// poll with when the deadline came first), `Err` with the error result to return. `on_progress` hears about every
/// phase change and heartbeat. The journal records the submit and every change the wait sees.
pub async fn submit_and_wait(
    client: &Client,
    journal: &Journal,
    request: &ImageRequest,
    max_wait: Duration,
    backoff: Backoff,
    cancel: &CancellationToken,
    mut on_progress: impl FnMut(Duration, String),
) -> Result<JobResult, CallToolResult> {
    let started = tokio::time::Instant::now();
    // The submit is never abandoned half-way, even if the call is cancelled meanwhile: its fate
    // would be unknown. A cancellation is acted on right after, by cancelling the job.
    let wire = request.to_wire();
    let id = match journal
        .track_submit(request, client.model(), client.submit(&wire))
        .await
    {
        Ok(id) => id,
        Err(e) => return Err(render::submit_error(&e)),
    };
    on_progress(started.elapsed(), format!("Submitted as request_id {id}"));
    let options = WaitOptions {
        backoff,
        ..WaitOptions::for_duration(max_wait.saturating_sub(started.elapsed()))
    };
    let outcome = journal
        .wait(client, &id, &options, cancel, |event| {
            let message = format!(
                "{} ({} s) — request_id {id}",
                capital(&event.phase()),
                started.elapsed().as_secs()
            );
            on_progress(started.elapsed(), message);
        })
        .await;
    match outcome {
        Ok(WaitOutcome::Finished(_)) => match journal.track(&id, client.result(&id), JobUpdate::from_result).await {
            Ok(answer) => JobResult::new(&id, answer),
            Err(e) => Err(render::api_error(&id, &e)),
        },
        Ok(WaitOutcome::DeadlinePassed { last }) => {
            let status = last.as_ref().map(|s| s.status.clone()).unwrap_or(JobStatus::InQueue);
            let position = last.and_then(|s| s.queue_position);
            Ok(JobResult::pending(&id, &status, position, started.elapsed()))
        }
        Ok(WaitOutcome::Cancelled { cancel, .. }) => {
            if let Ok(answer) = &cancel {
                journal.record(&id, JobUpdate::from_cancel(answer)).await;
            }
            Err(render::wait_cancelled(&id, &cancel))
        }
        Err(e) => Err(render::api_error(&id, &e)),
    }
}

fn capital(phrase: &str) -> String {
    let mut chars = phrase.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
