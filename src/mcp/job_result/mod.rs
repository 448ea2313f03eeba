//! The answer of every tool that gives a job's outcome (`get_result`, the waiting tools, a
//! task): [`JobResult`], made in one place ([`Delivered::new`]) from the job service's typed
//! outcomes ([`JobOutcome`], [`Batch`]), one job's or a batch's, and rendered in [`text`].

mod batch;
mod text;

use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{
    advice::{how_to_go_on, job_cancelled, job_failed, maker_tool, URLS_EXPIRE},
    answer::ToolError,
    media::note_texts,
    tools::cancel_request::Cancellation,
};
use crate::{
    jobs::{Batch, CostEstimate, JobOutcome, JobState, Origin, Recipe},
    media::{self, Collected, InlineImage, OutputReport, OutputUrls},
    runcomfy::{ApiError, CancelResponse, JobStatus, RequestId, StatusResponse},
};

/// `get_result`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobResult {
    #[schemars(with = "String")]
    pub request_id: RequestId,
    /// succeeded, in_queue, in_progress or cancelled (a failed job is an error result).
    #[schemars(with = "String")]
    pub status: JobStatus,
    /// True when the status will not change any more.
    pub finished: bool,
    /// Jobs ahead of this one, while it is queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Image URLs, in RunComfy's order. Empty until the job succeeds.
    pub images: Vec<String>,
    /// Video URLs, if the model produced any.
    pub videos: Vec<String>,
    /// Audio URLs, if the model produced any.
    pub audios: Vec<String>,
    /// URLs of any other files the model returned (under keys of its own), listed as they came.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Outputs RunComfy listed beyond those above, which are not listed (an answer is capped).
    #[serde(skip_serializing_if = "is_zero")]
    pub unlisted_outputs: u32,
    /// When RunComfy accepted the job, as RunComfy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the job finished, as RunComfy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// What to do next, or how long the URLs live.
    pub next_step: String,
    /// One entry per output (images, then videos, then audio): size, type, saved path, inline copy (images only), problems. Empty until the job succeeds.
    pub outputs: Vec<OutputReport>,
    /// Remarks about the result as a whole (previews left out, limits applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The prompt and settings the job was made with, as the generate tools take them, to run it again, vary it or edit its output. Missing for a job this machine did not submit.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Recipe")]
    pub made_with: Option<Recipe>,
    /// Every job the call started, in order (generate_image_and_wait; more than one with count).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub request_ids: Vec<RequestId>,
    /// Each job of a batch (count above 1), in order; the fields above then sum them up: images and outputs of every job, status succeeded once any has images.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<BatchJob>,
    /// What the job cost in US dollars, as RunComfy reported it (a batch: the jobs whose cost is known, added up). Missing until RunComfy reports it, usually once the job has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// What the call's jobs were expected to cost before they were submitted (generate_image_and_wait), from RunComfy's price list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<CostEstimate>,
}

/// One job of a batch.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchJob {
    /// Missing when the submit's answer never came (a job may exist: see error).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub request_id: Option<RequestId>,
    /// in_queue, in_progress, succeeded, failed, cancelled as RunComfy last said; not_submitted: RunComfy or a spending limit refused the submit (no job, no charge); unknown: the submit's answer or the job's status was lost (see error).
    #[schemars(with = "String")]
    pub status: JobState,
    /// True when the status will not change any more.
    pub finished: bool,
    /// Jobs ahead of this one, while it is queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Its image URLs, once it has succeeded.
    pub images: Vec<String>,
    /// Its outputs RunComfy listed beyond those above, which are not listed (an answer is capped).
    #[serde(skip_serializing_if = "is_zero")]
    pub unlisted_outputs: u32,
    /// What went wrong, and what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it cost in US dollars, once RunComfy reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// A job's result with its media collected, and the images to put inline.
pub(super) struct Delivered {
    pub result: JobResult,
    pub inline: Vec<InlineImage>,
}

/// What a result answers for.
pub(super) struct Answer {
    /// One job, or the jobs of a batch, in order.
    pub jobs: Batch,
    /// The call started them (their request_ids are listed), rather than looked one up.
    pub started: bool,
    /// What made them, when this machine knows.
    pub origin: Option<Origin>,
    /// What the call expected them to cost before submitting (`Err`: why it could not say);
    /// `None` for a call that submitted nothing.
    pub estimate: Option<Result<CostEstimate, String>>,
}

/// The facts of a result: one job's, or a batch's summed up.
struct Summary {
    request_id: RequestId,
    status: JobStatus,
    finished: bool,
    queue_position: Option<u32>,
    /// The listed output URLs by kind.
    urls: OutputUrls,
    /// What was made of the outputs; its `unlisted` counts the outputs past the listing.
    media: Collected,
    created_at: Option<String>,
    finished_at: Option<String>,
    next_step: String,
    jobs: Vec<BatchJob>,
    cost_usd: Option<f64>,
}

impl Delivered {
    /// The one way a [`JobResult`] is made: from the outcome of one job (looked up, or the one a
    /// call started) or of a batch. `Err` is the answer of a single job that failed, was
    /// cancelled, was never submitted or was lost, and of a batch none of whose jobs made or will
    /// make anything.
    pub(super) fn new(answer: Answer) -> Result<Self, ToolError> {
        let Answer {
            jobs,
            started,
            origin,
            estimate,
        } = answer;
        let request_ids = if started { jobs.request_ids() } else { Vec::new() };
        // Said of the jobs that were submitted: one refused by a limit costs nothing.
        let submitted = jobs.jobs.iter().filter(|job| job.id().is_some()).count();
        let estimated_cost_usd = estimate
            .as_ref()
            .and_then(|e| e.as_ref().ok())
            .map(|e| e.for_jobs(u32::try_from(submitted).unwrap_or(u32::MAX)));
        let summary = match <[JobOutcome; 1]>::try_from(jobs.jobs) {
            Ok([job]) => Summary::one(job, origin.as_ref(), estimate.as_ref())?,
            Err(jobs) => Summary::batch(Batch { jobs }, origin.as_ref())?,
        };
        let Summary {
            request_id,
            status,
            finished,
            queue_position,
            urls,
            media,
            created_at,
            finished_at,
            next_step,
            jobs,
            cost_usd,
        } = summary;
        let result = JobResult {
            request_id,
            status,
            finished,
            queue_position,
            images: urls.images,
            videos: urls.videos,
            audios: urls.audios,
            files: urls.files,
            unlisted_outputs: count_u32(media.unlisted),
            created_at,
            finished_at,
            next_step,
            outputs: media.outputs,
            notes: note_texts(&media.notes),
            made_with: origin.and_then(|o| o.recipe),
            request_ids,
            jobs,
            cost_usd,
            estimated_cost_usd,
        };
        Ok(Self {
            result,
            inline: media.inline,
        })
    }
}

impl Summary {
    /// One job: its result, or the handle to come back with; an error when it has neither.
    fn one(
        job: JobOutcome,
        origin: Option<&Origin>,
        estimate: Option<&Result<CostEstimate, String>>,
    ) -> Result<Self, ToolError> {
        match job {
            JobOutcome::Answered { id, result, media } => {
                let all = result.output.as_deref().map(OutputUrls::of).unwrap_or_default();
                let listed = media::listing(&all);
                let urls = OutputUrls {
                    images: listed.images.to_vec(),
                    videos: listed.videos.to_vec(),
                    audios: listed.audios.to_vec(),
                    files: listed.files.to_vec(),
                };
                let media = Collected {
                    unlisted: listed.unlisted,
                    ..media.unwrap_or_default()
                };
                let next_step = match &result.status {
                    JobStatus::Succeeded if all.is_empty() => {
                        "The job succeeded but RunComfy returned no output URLs. Try get_result again in a few seconds.".to_owned()
                    }
                    // A video or audio result: there is no image to edit.
                    JobStatus::Succeeded if urls.images.is_empty() => URLS_EXPIRE.to_owned(),
                    JobStatus::Succeeded => format!("{URLS_EXPIRE} {}", how_to_go_on(&format!("{id}#1"))),
                    JobStatus::Failed => return Err(job_failed(&id, &result, origin)),
                    JobStatus::Cancelled => job_cancelled(origin, true),
                    other => format!("Not finished yet ({other}). Call get_result again in a few seconds, or check_status to follow the queue."),
                };
                Ok(Self {
                    request_id: id,
                    finished: result.status.is_terminal(),
                    status: result.status,
                    queue_position: None,
                    urls,
                    media,
                    created_at: result.created_at.map(plain),
                    finished_at: result.finished_at.map(plain),
                    next_step,
                    jobs: Vec::new(),
                    cost_usd: result.cost,
                })
            }
            JobOutcome::StillRunning { id, last, waited } => Ok(Self::pending(id, last, waited)),
            JobOutcome::Submitted { id } => {
                let model = origin.map_or("the job", |o| o.model.as_str());
                let cost = match estimate {
                    Some(Ok(e)) => format!(" {}; get_result reports the actual cost.", e.text()),
                    Some(Err(reason)) => format!(" No cost estimate: {reason}."),
                    None => String::new(),
                };
                let next_step = format!(
                    "Submitted {model} as job {id}. Call check_status with request_id \"{id}\" every few seconds until status is succeeded, then get_result for its outputs; cancel_request can stop it while it is still queued. Do not call {} again for this job: that starts a new paid one.{cost}",
                    maker_tool(origin)
                );
                Ok(Self {
                    next_step,
                    ..Self::pending(id, None, Duration::ZERO)
                })
            }
            JobOutcome::Cancelled { id, cancel } => Err(wait_cancelled(&id, &cancel)),
            JobOutcome::NotSubmitted(e) => Err(ToolError::submit(&e)),
            JobOutcome::Lost { id, error } => Err(ToolError::api(&id, &error)),
        }
    }

    /// The wait ended before the job did: not an error, a handle to come back with.
    fn pending(id: RequestId, last: Option<StatusResponse>, waited: Duration) -> Self {
        let status = last.as_ref().map_or(JobStatus::InQueue, |s| s.status.clone());
        let queue_position = last.and_then(|s| s.queue_position);
        let position = queue_position
            .map(|p| format!(" at queue position {p}"))
            .unwrap_or_default();
        Self {
            next_step: format!(
                "Still {status}{position} after waiting {} s; the job goes on at RunComfy. Call get_result with request_id \"{id}\" in a few seconds to collect its outputs. Do not call the tool that started it again for this job: that would start a new paid one.",
                waited.as_secs()
            ),
            request_id: id,
            status,
            finished: false,
            queue_position,
            urls: OutputUrls::default(),
            media: Collected::default(),
            created_at: None,
            finished_at: None,
            jobs: Vec::new(),
            cost_usd: None,
        }
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

/// A timestamp as text, whether RunComfy sent a string or a number (shortened: it is the
/// upstream's, and a timestamp is short).
fn plain(value: Value) -> String {
    let text = match value {
        Value::String(s) => s,
        other => other.to_string(),
    };
    crate::text::ellipsis(&text, 64)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A count for the answer's schema (an upstream could list more than `u32::MAX` only in theory).
fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
