//! `generate_image_and_wait`: submit, wait with progress notifications, and return the result as
//! `get_result` does, or the request_id to come back with when the wait ends first. A task runs
//! the same flow and settles with the same answer ([`RunComfyServer::answer_run`]).

use std::time::Duration;

use rmcp::{
    model::{CallToolResult, JsonObject, RequestMetaObject},
    tool, tool_router, Peer, RoleServer,
};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{
    super::{
        answer::ToolError,
        args::{self, InvalidArgument, Validate},
        progress::ProgressReporter,
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    cancel_request::Cancellation,
    get_result::{DeliveryArgs, JobResult},
};
use crate::{
    dreamina::ImageRequest,
    jobs::{
        settings::{DEFAULT_WAIT_SECS, MAX_WAIT_SECS},
        Run, RunError, RunOutcome, Step,
    },
    runcomfy::{ApiError, CancelResponse, RequestId},
    text::capitalised,
};

/// The arguments of `generate_image_and_wait`: the image, and how long to wait for it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct WaitArgs {
    #[serde(flatten)]
    pub request: ImageRequest,

    #[serde(flatten)]
    pub delivery: DeliveryArgs,

    // Described as a plain integer: some clients (Gemini) reject the `["integer", "null"]` type
    // an Option would get; leaving the field out is how a call asks for the default.
    #[schemars(with = "u32", range(min = 1, max = 3600), description = max_wait_description())]
    pub max_wait_seconds: Option<u32>,
}

fn max_wait_description() -> String {
    format!("Seconds to wait for the image before returning the request_id to poll with instead. Leave it out to use the server's default ({DEFAULT_WAIT_SECS} s, inside the ~60 s after which some clients abandon a call); the server caps it ({MAX_WAIT_SECS} s by default).")
}

fn description() -> String {
    format!("Start a Dreamina 4.0 text-to-image job on RunComfy and wait for it, reporting progress, then return the image URLs as get_result does. If the image is not ready within max_wait_seconds (default {DEFAULT_WAIT_SECS} s), it returns the request_id and status instead, not an error: then call get_result with that request_id a few seconds later. Do not call this tool again for the same image; that starts a new paid job. Cancelling the call cancels the job if it is still queued.")
}

impl Validate for WaitArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        if self.max_wait_seconds == Some(0) {
            return Err(InvalidArgument::new("max_wait_seconds", "must be at least 1 second"));
        }
        Ok(self.request.validate()?)
    }
}

/// The arguments as the tasks path reads them: a task follows its job for as long as it takes.
pub(in crate::mcp) fn task_arguments(arguments: JsonObject) -> Result<(ImageRequest, DeliveryArgs), InvalidArgument> {
    args::parse::<WaitArgs>(arguments).map(|a| (a.request, a.delivery))
}

/// What a person waiting is told at each step.
pub(in crate::mcp) fn progress_message(step: Step<'_>, elapsed: Duration) -> String {
    match step {
        Step::Submitted(id) => format!("Submitted as request_id {id}"),
        Step::Polled(id, event) => format!(
            "{} ({} s) — request_id {id}",
            capitalised(&event.phase()),
            elapsed.as_secs()
        ),
    }
}

/// The client cancelled a waiting call: say what became of the job.
fn wait_cancelled(id: &RequestId, cancel: &Result<CancelResponse, ApiError>) -> ToolError {
    let what = match cancel {
        Ok(answer) => Cancellation::new(id, answer).message,
        Err(e) => format!("Cancelling the job at RunComfy failed: {e} It may still run; check it with check_status."),
    };
    ToolError::new(format!("The wait for job {id} was cancelled. {what}"))
}

impl RunComfyServer {
    /// The answer for a run of the job flow, for the waiting tool and the tasks path alike.
    pub(in crate::mcp) async fn answer_run(
        &self,
        run: Result<Run, RunError>,
        delivery: &DeliveryArgs,
        peer: &Peer<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let Run { id, waited, outcome } = match run {
            Ok(run) => run,
            Err(RunError::Submit(e)) => return Err(ToolError::submit(&e)),
            Err(RunError::Follow { id, error }) => return Err(ToolError::api(&id, &error)),
        };
        match outcome {
            RunOutcome::Done(answer) => self.deliver(id, answer, delivery, peer).await,
            RunOutcome::StillRunning(last) => Ok(JobResult::pending(id, last, waited).render(&[], true)),
            RunOutcome::Cancelled(cancel) => Err(wait_cancelled(&id, &cancel)),
        }
    }
}

#[tool_router(router = generate_image_and_wait_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "generate_image_and_wait",
        title = "Generate image and wait (Dreamina 4.0)",
        description = description(),
        input_schema = schema_for::<WaitArgs>(),
        output_schema = output_schema_for::<JobResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn generate_image_and_wait(
        &self,
        arguments: JsonObject,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> Result<CallToolResult, ToolError> {
        let args: WaitArgs = args::parse(arguments)?;
        let mut progress = meta
            .get_progress_token()
            .map(|token| ProgressReporter::new(peer.clone(), token));
        let max_wait = self.jobs.policy().wait_for(args.max_wait_seconds);
        let run = self
            .jobs
            .run(&args.request, max_wait, &cancel, |elapsed, step| {
                if let Some(progress) = progress.as_mut() {
                    progress.report(elapsed, progress_message(step, elapsed));
                }
            })
            .await;
        if let Some(progress) = progress {
            progress.finish().await;
        }
        self.answer_run(run, &args.delivery, &peer).await
    }
}
