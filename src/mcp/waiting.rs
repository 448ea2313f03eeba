//! The waiting tools' one flow (`generate_image_and_wait`, `run_model`; a task runs it too):
//! submit one job or a batch, wait with progress notifications, and answer as `get_result` does,
//! or with the request_ids to come back with when the wait ends first. A waiting tool parses its
//! arguments, prepares its request and hands both here; what a call needs for it comes as one
//! parameter, [`Waiting`].

use std::time::Duration;

use rmcp::{
    handler::server::{common::FromContextPart, tool::ToolCallContext},
    model::{CallToolResponse, CallToolResult, ContentBlock, RequestMetaObject},
    ErrorData, Peer, RoleServer,
};
use tokio_util::sync::CancellationToken;

use super::{
    answer::ToolError,
    confirm::Consent,
    job_result::{Answer, Delivered},
    progress::ProgressReporter,
    tools::get_result::DeliveryArgs,
    RunComfyServer,
};
use crate::{
    jobs::{Caller, CostEstimate, Origin, Prepared, Run, RunError, Step},
    media::{OutputKind, OutputReport},
    text::capitalised,
};

/// A waiting tool's call: whose it is, where to report progress, and its cancellation.
pub(super) struct Waiting {
    pub caller: Caller,
    meta: RequestMetaObject,
    pub peer: Peer<RoleServer>,
    cancel: CancellationToken,
    /// How to ask the person before a spend above `--confirm-above-usd`.
    pub consent: Consent,
    /// The client renders the app view (see [`super::app`]): it may be answered early.
    renders: bool,
}

impl FromContextPart<ToolCallContext<'_, RunComfyServer>> for Waiting {
    fn from_context_part(context: &mut ToolCallContext<'_, RunComfyServer>) -> Result<Self, ErrorData> {
        Ok(Self {
            caller: Caller::from_context_part(context)?,
            meta: RequestMetaObject::from_context_part(context)?,
            peer: Peer::from_context_part(context)?,
            cancel: CancellationToken::from_context_part(context)?,
            consent: Consent::from_context_part(context)?,
            renders: super::app::client_renders(context.request_context.client_capabilities().as_ref()),
        })
    }
}

/// What a person waiting is told at each step of job `index` (from 0) of `count`.
pub(super) fn progress_message(index: usize, count: u32, step: Step<'_>, elapsed: Duration) -> String {
    let message = match step {
        Step::Submitted(id) => format!("Submitted as request_id {id}"),
        Step::Polled(id, event) => format!(
            "{} ({} s) — request_id {id}",
            capitalised(&event.phase()),
            elapsed.as_secs()
        ),
    };
    if count == 1 {
        message
    } else {
        format!("Job {} of {count}: {message}", index + 1)
    }
}

impl RunComfyServer {
    /// Runs `count` jobs of `prepared` for a waiting call, for at most `max_wait_seconds` (the
    /// server's default and cap apply), reporting each step as a progress notification when the
    /// client asked for them, and answers with their outcome.
    pub(super) async fn wait_for_jobs(
        &self,
        call: &Waiting,
        prepared: &Prepared,
        count: u32,
        max_wait_seconds: Option<u32>,
        delivery: &DeliveryArgs,
    ) -> Result<CallToolResponse, ToolError> {
        let estimate = self.jobs.estimate(&call.caller, prepared, count).await;
        if let Some(question) = self
            .confirm(&call.caller, &call.consent, prepared, count, &estimate)
            .await?
        {
            return Ok(question);
        }
        let max_wait = self.jobs.policy().wait_for(max_wait_seconds);
        let mut progress = call
            .meta
            .get_progress_token()
            .map(|token| ProgressReporter::new(call.peer.clone(), token));
        let runs = self
            .jobs
            .run_batch(
                &call.caller,
                prepared,
                count,
                max_wait,
                &call.cancel,
                |index, elapsed, step| {
                    if let Some(progress) = progress.as_mut() {
                        progress.report(elapsed, progress_message(index, count, step, elapsed));
                    }
                },
            )
            .await;
        if let Some(progress) = progress {
            progress.finish().await;
        }
        let early = call.renders && !delivery.inline_full_size && !self.jobs.saves_outputs();
        let answer = Answered {
            origin: prepared.origin(),
            estimate,
            early,
        };
        self.answer_runs(&call.caller, runs, answer, delivery, &call.peer)
            .await
            .map(Into::into)
    }

    /// The answer for the runs of one call (one job, or a batch), for the waiting tools and the
    /// tasks path alike.
    ///
    /// Early ([`Answered::early`]: a client that shows the app view, when the server saves
    /// nothing and the call did not ask for full-size images): the answer goes as soon as the
    /// output URLs are known, without waiting for downloads and previews (a second or more for
    /// a large image over a real network). The view shows the pictures: it reads each preview as
    /// a resource, whose making started with the answer (a read that comes first waits for it,
    /// never downloads twice). The model gets every fact in text and structure (URLs,
    /// references, the recipe), a link to each image's preview resource, and a note that the
    /// view shows the images and how to look at one itself (that resource, or get_result), but
    /// no inline preview: it would hold the answer back by exactly the time saved.
    pub(super) async fn answer_runs(
        &self,
        caller: &Caller,
        runs: Vec<Result<Run, RunError>>,
        answered: Answered,
        delivery: &DeliveryArgs,
        peer: &Peer<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let Answered {
            origin,
            estimate,
            early,
        } = answered;
        let jobs = if early {
            self.jobs.outcomes_listed(caller, runs).await
        } else {
            self.jobs.outcomes(caller, runs, delivery.inline_full_size).await
        };
        let mut delivered = Delivered::new(Answer {
            jobs,
            started: true,
            origin: Some(origin),
            estimate: Some(estimate),
        })?;
        if !early {
            return Ok(self.shaped(&delivered, peer));
        }
        let previews = preview_links(&delivered.result.outputs);
        if !previews.is_empty() {
            delivered.result.notes.push(VIEW_SHOWS_IMAGES.to_owned());
        }
        let mut result = self.shaped(&delivered, peer);
        result.content.extend(previews);
        Ok(result)
    }
}

/// How a call's jobs came to be, and how to answer for them.
pub(super) struct Answered {
    pub origin: Origin,
    /// What the jobs were expected to cost.
    pub estimate: Result<CostEstimate, String>,
    /// Answer as soon as the output URLs are known (see [`RunComfyServer::answer_runs`]).
    pub early: bool,
}

/// The note of an early answer, for the model.
const VIEW_SHOWS_IMAGES: &str = "The app view shows these images to the person; no preview is attached to this answer. To look at an image yourself, read its preview resource (linked: runcomfy://jobs/<request_id>/previews/<n>) or call get_result with its request_id.";

/// A link to each image's preview resource, which the app view reads too.
fn preview_links(outputs: &[OutputReport]) -> Vec<ContentBlock> {
    outputs
        .iter()
        .filter(|o| o.kind == OutputKind::Image)
        .filter_map(|o| {
            let (id, index) = o.reference.as_deref()?.split_once('#')?;
            Some(super::resources::preview_link(id, index))
        })
        .collect()
}
