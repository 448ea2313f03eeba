//! `generate_image_and_wait`: submit (one job or `count` of them), wait with progress
//! notifications, and return the result as `get_result` does, or the request_ids to come back
//! with when the wait ends first. A task runs the same flow and settles with the same answer
//! ([`RunComfyServer::answer_runs`]).

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
    generate_image::GenerateArgs,
    get_result::{count_u32, how_to_go_on, job_failed, BatchJob, DeliveryArgs, JobResult, URLS_EXPIRE},
};
use crate::jobs::Caller;
use crate::{
    dreamina::MAX_IMAGES,
    jobs::{
        settings::{DEFAULT_WAIT_SECS, MAX_WAIT_SECS},
        CostEstimate, Outputs, Prepared, Recipe, Run, RunError, RunOutcome, Step, MAX_COUNT,
    },
    media::{OutputKind, OutputUrls},
    runcomfy::{ApiError, CancelOutcome, CancelResponse, JobStatus, RequestId, ResultResponse},
    text::capitalised,
};

/// The arguments of `generate_image_and_wait`: the images, and how long to wait for them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct WaitArgs {
    #[serde(flatten)]
    pub generate: GenerateArgs,

    #[serde(flatten)]
    pub delivery: DeliveryArgs,

    // Described as a plain integer: some clients (Gemini) reject the `["integer", "null"]` type
    // an Option would get; leaving the field out is how a call asks for the default.
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 3600), description = max_wait_description())]
    pub max_wait_seconds: Option<u32>,
}

fn max_wait_description() -> String {
    format!("Seconds to wait for the image before returning the request_id to poll with instead. Leave it out to use the server's default ({DEFAULT_WAIT_SECS} s, inside the ~60 s after which some clients abandon a call); the server caps it ({MAX_WAIT_SECS} s by default).")
}

fn description() -> String {
    format!("Make images with ByteDance Dreamina 4.0 (Seedream 4.0) on RunComfy and wait for them, reporting progress, then return the image URLs as get_result does: text-to-image from a prompt, or, with images (1 to {MAX_IMAGES} reference images: an earlier result's request_id#n, an https URL, an allowed local file), an edit, a restyle or a combination of them. count (1 to {MAX_COUNT}) makes that many alternatives side by side. If the images are not ready within max_wait_seconds (default {DEFAULT_WAIT_SECS} s), it returns the request_ids and status instead, not an error: then call get_result with each request_id a few seconds later. Every job is paid for: do not call this tool again for the same image. The answer gives the actual cost_usd and the estimate made before submitting; a server spending or job limit may refuse the submit, with an error that says when the next job fits. Cancelling the call cancels the jobs still queued. Only Dreamina 4.0: for video, audio or another image model, find it with list_models and run it with run_model.")
}

impl Validate for WaitArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        if self.max_wait_seconds == Some(0) {
            return Err(InvalidArgument::new("max_wait_seconds", "must be at least 1 second"));
        }
        self.generate.validate()
    }

    fn locate(args: &JsonObject) -> Option<InvalidArgument> {
        args::part::<GenerateArgs>(args).or_else(|| args::part::<DeliveryArgs>(args))
    }
}

/// The arguments as the tasks path reads them: a task follows its jobs for as long as it takes.
pub(in crate::mcp) fn task_arguments(arguments: JsonObject) -> Result<(GenerateArgs, DeliveryArgs), InvalidArgument> {
    args::parse::<WaitArgs>(arguments).map(|a| (a.generate, a.delivery))
}

/// What a person waiting is told at each step of job `index` (from 0) of `count`.
pub(in crate::mcp) fn progress_message(index: usize, count: u32, step: Step<'_>, elapsed: Duration) -> String {
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

/// What became of a job whose wait the client cancelled.
fn cancelled_job(id: &RequestId, cancel: &Result<CancelResponse, ApiError>) -> String {
    match cancel {
        Ok(answer) => Cancellation::new(id, answer).message,
        Err(e) => format!("Cancelling the job at RunComfy failed: {e} It may still run; check it with check_status."),
    }
}

/// The client cancelled a waiting call: say what became of the job.
fn wait_cancelled(id: &RequestId, cancel: &Result<CancelResponse, ApiError>) -> ToolError {
    ToolError::new(format!(
        "The wait for job {id} was cancelled. {}",
        cancelled_job(id, cancel)
    ))
}

/// One job of a batch, as far as the answer goes.
enum Part {
    /// Succeeded: its result, to collect.
    Done(RequestId, ResultResponse),
    /// Still going, or ended without images.
    Other(BatchJob, Option<ToolError>),
}

impl RunComfyServer {
    /// Runs `count` jobs of `prepared` for a waiting call, reporting each step as a progress
    /// notification when the client asked for them (the waiting tools' flow).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::mcp) async fn run_reporting(
        &self,
        caller: &Caller,
        prepared: &Prepared,
        count: u32,
        max_wait: Duration,
        meta: &RequestMetaObject,
        peer: &Peer<RoleServer>,
        cancel: &CancellationToken,
    ) -> Vec<Result<Run, RunError>> {
        let mut progress = meta
            .get_progress_token()
            .map(|token| ProgressReporter::new(peer.clone(), token));
        let runs = self
            .jobs
            .run_batch(caller, prepared, count, max_wait, cancel, |index, elapsed, step| {
                if let Some(progress) = progress.as_mut() {
                    progress.report(elapsed, progress_message(index, count, step, elapsed));
                }
            })
            .await;
        if let Some(progress) = progress {
            progress.finish().await;
        }
        runs
    }

    /// The answer for the runs of one call (one job, or a batch), for the waiting tool and the
    /// tasks path alike.
    /// `estimate`: what the jobs were expected to cost, when known.
    pub(in crate::mcp) async fn answer_runs(
        &self,
        caller: &Caller,
        mut runs: Vec<Result<Run, RunError>>,
        recipe: Option<&Recipe>,
        estimate: Option<&CostEstimate>,
        delivery: &DeliveryArgs,
        peer: &Peer<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        if runs.len() == 1 {
            let run = runs.remove(0);
            return self.answer_run(caller, run, recipe, estimate, delivery, peer).await;
        }
        self.answer_batch(caller, runs, recipe, estimate, delivery, peer).await
    }

    async fn answer_run(
        &self,
        caller: &Caller,
        run: Result<Run, RunError>,
        recipe: Option<&Recipe>,
        estimate: Option<&CostEstimate>,
        delivery: &DeliveryArgs,
        peer: &Peer<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let Run { id, waited, outcome } = match run {
            Ok(run) => run,
            Err(RunError::Submit(e)) => return Err(ToolError::submit(&e)),
            Err(RunError::Follow { id, error }) => return Err(ToolError::api(&id, &error)),
        };
        match outcome {
            RunOutcome::Done(answer) => {
                let mut delivered = self.delivered(caller, id.clone(), answer, delivery).await?;
                delivered.result.made_with = recipe.cloned();
                delivered.result.request_ids = vec![id];
                delivered.result.estimated_cost_usd = estimate.cloned();
                Ok(self.shaped(&delivered, peer))
            }
            RunOutcome::StillRunning(last) => {
                let mut result = JobResult::pending(id.clone(), last, waited);
                result.made_with = recipe.cloned();
                result.request_ids = vec![id];
                result.estimated_cost_usd = estimate.cloned();
                Ok(result.render(&[], true))
            }
            RunOutcome::Cancelled(cancel) => Err(wait_cancelled(&id, &cancel)),
        }
    }

    /// A batch: every job's outcome, the images of those that succeeded (collected together,
    /// within one result's inline budget), and the request_ids of those still going. An error
    /// only when no job has or will have an image.
    async fn answer_batch(
        &self,
        caller: &Caller,
        runs: Vec<Result<Run, RunError>>,
        recipe: Option<&Recipe>,
        estimate: Option<&CostEstimate>,
        delivery: &DeliveryArgs,
        peer: &Peer<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let parts: Vec<Part> = runs.into_iter().map(part).collect();
        let done: Vec<(RequestId, OutputUrls)> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Done(id, answer) => Some((
                    id.clone(),
                    answer.output.as_deref().map(OutputUrls::of).unwrap_or_default(),
                )),
                Part::Other(..) => None,
            })
            .collect();
        let outputs: Vec<Outputs<'_>> = done.iter().map(|(id, urls)| Outputs { id, urls }).collect();
        let mut collected = self
            .jobs
            .collect_all(caller, &outputs, delivery.inline_full_size)
            .await
            .into_iter();

        let mut jobs = Vec::new();
        let mut errors = Vec::new();
        let (mut images, mut videos, mut audios, mut files) = (vec![], vec![], vec![], vec![]);
        let (mut reports, mut notes, mut inline) = (vec![], vec![], vec![]);
        let mut pending = Vec::new();
        let mut unlisted = 0;
        for part in parts {
            match part {
                Part::Done(id, answer) => {
                    let media = collected.next().unwrap_or_default();
                    // What collect_all listed, within each job's bounds; the rest is counted.
                    let listed = |kind| {
                        media
                            .outputs
                            .iter()
                            .filter(move |o| o.kind == kind)
                            .map(|o| o.url.clone())
                    };
                    let job_images: Vec<String> = listed(OutputKind::Image).collect();
                    videos.extend(listed(OutputKind::Video));
                    audios.extend(listed(OutputKind::Audio));
                    files.extend(listed(OutputKind::File));
                    images.extend_from_slice(&job_images);
                    unlisted += media.unlisted;
                    jobs.push(BatchJob {
                        request_id: Some(id),
                        status: JobStatus::Succeeded.as_str().to_owned(),
                        finished: true,
                        queue_position: None,
                        images: job_images,
                        unlisted_outputs: count_u32(media.unlisted),
                        error: None,
                        cost_usd: answer.cost,
                    });
                    reports.extend(media.outputs);
                    notes.extend(super::super::media::note_texts(&media.notes));
                    inline.extend(media.inline);
                }
                Part::Other(job, error) => {
                    if !job.finished {
                        pending.extend(job.request_id.clone());
                    }
                    errors.extend(error);
                    jobs.push(job);
                }
            }
        }
        let request_ids: Vec<RequestId> = jobs.iter().filter_map(|j| j.request_id.clone()).collect();
        let costs: Vec<f64> = jobs.iter().filter_map(|j| j.cost_usd).collect();
        let succeeded = jobs.iter().any(|j| j.status == JobStatus::Succeeded.as_str());
        let (Some(first_id), true) = (request_ids.first().cloned(), succeeded || !pending.is_empty()) else {
            let texts: Vec<&str> = errors.iter().map(ToolError::text).collect();
            return Err(ToolError::new(format!(
                "None of the {} jobs made an image.\n{}",
                jobs.len(),
                texts.join("\n")
            )));
        };

        let mut next = Vec::new();
        if !pending.is_empty() {
            let ids: Vec<String> = pending.iter().map(|id| format!("\"{id}\"")).collect();
            next.push(format!(
                "Still going at RunComfy: call get_result with request_id {} in a few seconds to collect {}. Do not call generate_image_and_wait again for them: that would start new paid jobs.",
                ids.join(", "),
                if pending.len() == 1 { "its images" } else { "their images" }
            ));
        }
        if let Some(first) = reports.iter().find_map(|o| o.reference.clone()) {
            next.push(format!("{URLS_EXPIRE} {}", how_to_go_on(&first)));
        }
        let result = JobResult {
            request_id: first_id,
            status: batch_status(&jobs),
            finished: jobs.iter().all(|j| j.finished),
            queue_position: None,
            images,
            videos,
            audios,
            files,
            unlisted_outputs: count_u32(unlisted),
            created_at: None,
            finished_at: None,
            next_step: next.join(" "),
            outputs: reports,
            notes,
            made_with: recipe.cloned(),
            request_ids,
            jobs,
            cost_usd: (!costs.is_empty()).then(|| crate::money::round_usd(costs.iter().sum())),
            estimated_cost_usd: estimate.cloned(),
        };
        let client = peer.peer_info().map(|info| info.client_info.name.clone());
        let keep = self.structured.keep_with_images(client.as_deref());
        Ok(result.render(&inline, keep))
    }
}

/// What a run of a batch amounts to in the answer.
fn part(run: Result<Run, RunError>) -> Part {
    let (id, outcome) = match run {
        Ok(Run { id, outcome, .. }) => (id, outcome),
        Err(RunError::Submit(e)) => {
            let fate_unknown = e.submit_fate_unknown();
            let job = BatchJob {
                request_id: None,
                status: if fate_unknown { "unknown" } else { "not_submitted" }.to_owned(),
                finished: !fate_unknown,
                queue_position: None,
                images: Vec::new(),
                unlisted_outputs: 0,
                error: Some(ToolError::submit(&e).text().replace('\n', " ")),
                cost_usd: None,
            };
            return Part::Other(job, Some(ToolError::submit(&e)));
        }
        Err(RunError::Follow { id, error }) => {
            let failure = ToolError::api(&id, &error);
            let job = BatchJob {
                request_id: Some(id),
                status: "unknown".to_owned(),
                finished: false,
                queue_position: None,
                images: Vec::new(),
                unlisted_outputs: 0,
                error: Some(format!("Following this job failed: {}", failure.text())),
                cost_usd: None,
            };
            // It exists and may still make its image: something to come back for, not an error.
            return Part::Other(job, None);
        }
    };
    let job = |status: &str, finished: bool, queue_position: Option<u32>, error: Option<String>| BatchJob {
        request_id: Some(id.clone()),
        status: status.to_owned(),
        finished,
        queue_position,
        images: Vec::new(),
        unlisted_outputs: 0,
        error,
        cost_usd: None,
    };
    match outcome {
        RunOutcome::Done(answer) if answer.status == JobStatus::Succeeded => Part::Done(id, answer),
        RunOutcome::Done(answer) if answer.status == JobStatus::Failed => {
            let failure = job_failed(&id, &answer);
            let failed = BatchJob {
                cost_usd: answer.cost,
                ..job("failed", true, None, Some(failure.text().replace('\n', " ")))
            };
            Part::Other(failed, Some(failure))
        }
        RunOutcome::Done(answer) => {
            let finished = answer.status.is_terminal();
            let ended = BatchJob {
                cost_usd: answer.cost,
                ..job(answer.status.as_str(), finished, None, None)
            };
            Part::Other(ended, None)
        }
        RunOutcome::StillRunning(last) => {
            let status = last.as_ref().map_or(JobStatus::InQueue, |s| s.status.clone());
            let position = last.and_then(|s| s.queue_position);
            Part::Other(job(status.as_str(), false, position, None), None)
        }
        RunOutcome::Cancelled(cancel) => {
            let what = cancelled_job(&id, &cancel);
            let cancelled = matches!(&cancel, Ok(a) if a.outcome == Some(CancelOutcome::Cancelled));
            let status = if cancelled {
                "cancelled".to_owned()
            } else {
                cancel
                    .as_ref()
                    .ok()
                    .and_then(|a| a.status.as_ref())
                    .map_or("unknown".to_owned(), |s| s.as_str().to_owned())
            };
            let error = ToolError::new(format!("The wait for job {id} was cancelled. {what}"));
            Part::Other(job(&status, cancelled, None, Some(what)), Some(error))
        }
    }
}

/// The batch in one status: still going while any job is, else succeeded when any job made
/// images, else how the rest ended.
fn batch_status(jobs: &[BatchJob]) -> JobStatus {
    let any = |status: &str| jobs.iter().any(|j| j.status == status);
    if jobs.iter().any(|j| !j.finished) {
        if any("in_queue") && !any("in_progress") {
            JobStatus::InQueue
        } else {
            JobStatus::InProgress
        }
    } else if any("succeeded") {
        JobStatus::Succeeded
    } else if any("cancelled") {
        JobStatus::Cancelled
    } else {
        JobStatus::Failed
    }
}

#[tool_router(router = generate_image_and_wait_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "generate_image_and_wait",
        title = "Generate or edit image and wait (Dreamina 4.0)",
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
        caller: Caller,
    ) -> Result<CallToolResult, ToolError> {
        let args: WaitArgs = args::parse(arguments)?;
        let GenerateArgs { request, count } = &args.generate;
        let prepared = self.jobs.prepare(&caller, request).await?;
        let estimate = self.jobs.estimate(&caller, &prepared, *count).await.ok();
        let max_wait = self.jobs.policy().wait_for(args.max_wait_seconds);
        let runs = self
            .run_reporting(&caller, &prepared, *count, max_wait, &meta, &peer, &cancel)
            .await;
        self.answer_runs(
            &caller,
            runs,
            prepared.recipe.as_ref(),
            estimate.as_ref(),
            &args.delivery,
            &peer,
        )
        .await
    }
}
