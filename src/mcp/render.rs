//! What the tools return: the structured output types (their schemas are the tools' output
//! schemas), a readable text copy of each for clients and models that ignore
//! `structuredContent`, and errors as `isError` results that say what to do next.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::dreamina::{ImageRequest, InvalidArgument};
use crate::runcomfy::{ApiError, CancelOutcome, CancelResponse, JobStatus, RequestId, ResultResponse, StatusResponse};

/// RunComfy's figure for how long result files stay hosted.
pub const URL_LIFETIME_NOTE: &str =
    "Result URLs are hosted by RunComfy for a limited time (about 7 days): download anything worth keeping.";

/// `generate_image`'s answer: the handle to everything that follows.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Submitted {
    /// The job's id: pass it to check_status, get_result and cancel_request.
    pub request_id: String,
    /// Always `in_queue` right after submitting.
    pub status: String,
    /// The size that was requested, e.g. `2048x2048(1:1)`.
    pub size: String,
    /// What to call next.
    pub next_step: String,
}

impl Submitted {
    pub fn new(id: &RequestId, request: &ImageRequest) -> Self {
        Self {
            request_id: id.to_string(),
            status: JobStatus::InQueue.as_str().to_owned(),
            size: request.size.as_str().to_owned(),
            next_step: format!(
                "Call check_status with request_id \"{id}\" every few seconds until status is succeeded, then call get_result for the image URLs. cancel_request can stop it while it is still queued."
            ),
        }
    }

    pub fn render(&self) -> CallToolResult {
        let text = format!(
            "Submitted Dreamina 4.0 job {} ({}). Status: {}.\nNext: {}",
            self.request_id, self.size, self.status, self.next_step
        );
        success(self, text)
    }
}

/// `check_status`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobState {
    pub request_id: String,
    /// One of in_queue, in_progress, succeeded, failed, cancelled (or another string RunComfy sent).
    pub status: String,
    /// Jobs ahead of this one, while it is queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// True when the status will not change any more.
    pub finished: bool,
    /// What to call next.
    pub next_step: String,
}

impl JobState {
    pub fn new(id: &RequestId, answer: &StatusResponse) -> Self {
        let status = &answer.status;
        let next_step = match status {
            JobStatus::InQueue => format!(
                "Queued{}. Call check_status again in a few seconds; cancel_request can still cancel it.",
                answer
                    .queue_position
                    .map(|p| format!(" at position {p}"))
                    .unwrap_or_default()
            ),
            JobStatus::InProgress => {
                "Generating. Call check_status again in a few seconds (a running job can no longer be cancelled)."
                    .to_owned()
            }
            JobStatus::Succeeded => format!("Done. Call get_result with request_id \"{id}\" for the image URLs."),
            JobStatus::Failed => {
                format!("The job failed. Call get_result with request_id \"{id}\" to see RunComfy's error.")
            }
            JobStatus::Cancelled => {
                "The job was cancelled. Call generate_image again if the image is still wanted.".to_owned()
            }
            JobStatus::Unknown(raw) => {
                format!("RunComfy reported an unrecognised status {raw:?}. Call check_status again in a few seconds.")
            }
        };
        Self {
            request_id: id.to_string(),
            status: status.as_str().to_owned(),
            queue_position: answer.queue_position.filter(|_| *status == JobStatus::InQueue),
            finished: status.is_terminal(),
            next_step,
        }
    }

    pub fn render(&self) -> CallToolResult {
        let position = self
            .queue_position
            .map(|p| format!(", queue position {p}"))
            .unwrap_or_default();
        let text = format!(
            "Job {}: {}{position}.\nNext: {}",
            self.request_id, self.status, self.next_step
        );
        success(self, text)
    }
}

/// `get_result`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobResult {
    pub request_id: String,
    /// succeeded, in_queue, in_progress or cancelled (a failed job is an error result).
    pub status: String,
    /// True when the status will not change any more.
    pub finished: bool,
    /// Jobs ahead of this one, while it is queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Image URLs, in RunComfy's order. Empty until the job succeeds.
    pub images: Vec<String>,
    /// Video URLs, if the model produced any.
    pub videos: Vec<String>,
    /// When RunComfy accepted the job, as RunComfy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the job finished, as RunComfy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// What to do next, or how long the URLs live.
    pub next_step: String,
    /// One entry per output (images, then videos): size, type, saved path, inline copy, problems. Empty until the job succeeds.
    pub outputs: Vec<crate::media::OutputReport>,
    /// How long RunComfy is expected to keep the URLs, in hours (its own figure: about 7 days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_lifetime_hours: Option<u32>,
    /// Remarks about the result as a whole (previews left out, limits applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl JobResult {
    /// `Err` carries the failed job's error result.
    pub fn new(id: &RequestId, answer: ResultResponse) -> Result<Self, CallToolResult> {
        let status = answer.status;
        let output = answer.output.unwrap_or_default();
        let (images, videos) = (output.image_urls(), output.video_urls());
        let next_step = match &status {
            JobStatus::Succeeded if images.is_empty() && videos.is_empty() => {
                "The job succeeded but RunComfy returned no output URLs. Try get_result again in a few seconds.".to_owned()
            }
            JobStatus::Succeeded => URL_LIFETIME_NOTE.to_owned(),
            JobStatus::Failed => return Err(job_failed(id, answer.error.as_ref())),
            JobStatus::Cancelled => "The job was cancelled and produced no image. Call generate_image again if the image is still wanted.".to_owned(),
            other => format!("Not finished yet ({other}). Call get_result again in a few seconds, or check_status to follow the queue."),
        };
        Ok(Self {
            request_id: id.to_string(),
            queue_position: None,
            finished: status.is_terminal(),
            status: status.as_str().to_owned(),
            images,
            videos,
            created_at: answer.created_at.map(plain),
            finished_at: answer.finished_at.map(plain),
            next_step,
            outputs: Vec::new(),
            url_lifetime_hours: None,
            notes: Vec::new(),
        })
    }

    /// The wait ended before the job did: not an error, a handle to come back with.
    pub fn pending(
        id: &RequestId,
        status: &JobStatus,
        queue_position: Option<u32>,
        waited: std::time::Duration,
    ) -> Self {
        let position = queue_position
            .map(|p| format!(" at queue position {p}"))
            .unwrap_or_default();
        Self {
            request_id: id.to_string(),
            status: status.as_str().to_owned(),
            finished: false,
            queue_position,
            images: Vec::new(),
            videos: Vec::new(),
            created_at: None,
            finished_at: None,
            outputs: Vec::new(),
            url_lifetime_hours: None,
            notes: Vec::new(),
            next_step: format!(
                "Still {status}{position} after waiting {} s; the job goes on at RunComfy. Call get_result with request_id \"{id}\" in a few seconds to collect the images. Do not call generate_image_and_wait again for this image: that would start a new paid job.",
                waited.as_secs()
            ),
        }
    }

    pub fn render(&self) -> CallToolResult {
        let mut text = format!("Job {}: {}.", self.request_id, self.status);
        for (i, url) in self.images.iter().enumerate() {
            text.push_str(&format!("\nImage {}: {url}", i + 1));
        }
        for (i, url) in self.videos.iter().enumerate() {
            text.push_str(&format!("\nVideo {}: {url}", i + 1));
        }
        text.push_str(&format!("\n{}", self.next_step));
        success(self, text)
    }
}

/// `cancel_request`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Cancellation {
    pub request_id: String,
    /// `cancelled`, `not_cancellable`, or what RunComfy said if it was neither.
    pub outcome: String,
    /// The job's status after the attempt, when RunComfy gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What happened, in words.
    pub message: String,
}

impl Cancellation {
    pub fn new(id: &RequestId, answer: &CancelResponse) -> Self {
        let status = answer.status.as_ref().map(|s| s.as_str().to_owned());
        let (outcome, message) = match &answer.outcome {
            Some(CancelOutcome::Cancelled) => ("cancelled".to_owned(), "Cancelled: the job was still queued and will not run.".to_owned()),
            Some(CancelOutcome::NotCancellable) => (
                "not_cancellable".to_owned(),
                format!(
                    "Not cancellable: the job is {} and only queued jobs can be cancelled. It will run to the end; call get_result later for its images.",
                    status.as_deref().unwrap_or("no longer queued")
                ),
            ),
            Some(CancelOutcome::Unknown(raw)) => (raw.trim_matches('"').to_owned(), format!("RunComfy answered the cancel with an unrecognised outcome {raw}. Call check_status to see where the job stands.")),
            None if answer.status == Some(JobStatus::Cancelled) => ("cancelled".to_owned(), "Cancelled.".to_owned()),
            None => ("unknown".to_owned(), "RunComfy did not say whether the job was cancelled. Call check_status to see where the job stands.".to_owned()),
        };
        Self {
            request_id: id.to_string(),
            outcome,
            status,
            message,
        }
    }

    pub fn render(&self) -> CallToolResult {
        success(self, format!("Job {}: {}", self.request_id, self.message))
    }
}

/// A timestamp as text, whether RunComfy sent a string or a number.
fn plain(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn success<T: Serialize>(value: &T, text: String) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    // Serialising our own plain structs cannot fail; if it ever did, the text still carries it all.
    result.structured_content = serde_json::to_value(value).ok();
    result
}

fn error(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

pub fn invalid_argument(e: &InvalidArgument) -> CallToolResult {
    error(format!(
        "{e}\nNothing was sent to RunComfy; fix the argument and call again."
    ))
}

/// An upstream failure on a call about an existing job.
pub fn api_error(id: &RequestId, e: &ApiError) -> CallToolResult {
    let retry = if e.is_retryable() {
        format!(" The job itself is unaffected: call again with request_id \"{id}\".")
    } else {
        String::new()
    };
    error(format!("{e}{retry}"))
}

/// An upstream failure on submit: says plainly whether a job may exist, because a second
/// submit is a second payment.
pub fn submit_error(e: &ApiError) -> CallToolResult {
    let consequence = if e.submit_fate_unknown() {
        "The request may have reached RunComfy, so a job may exist and be charged. It was NOT sent again automatically. Check the RunComfy dashboard (Generations) before submitting again."
    } else {
        "No job was created."
    };
    error(format!("{e}\n{consequence}"))
}

/// The client cancelled a waiting call: say what became of the job.
pub fn wait_cancelled(id: &RequestId, cancel: &Result<CancelResponse, ApiError>) -> CallToolResult {
    let what = match cancel {
        Ok(answer) => Cancellation::new(id, answer).message,
        Err(e) => format!("Cancelling the job at RunComfy failed: {e} It may still run; check it with check_status."),
    };
    error(format!("The wait for job {id} was cancelled. {what}"))
}

fn job_failed(id: &RequestId, upstream: Option<&Value>) -> CallToolResult {
    let detail = match upstream {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("message")
            .or_else(|| o.get("error_message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| Value::Object(o.clone()).to_string()),
        Some(other) => other.to_string(),
        None => "RunComfy gave no reason".to_owned(),
    };
    error(format!(
        "Job {id} failed on RunComfy: {detail}\nThe prompt may have been refused by the model's content rules, or the service failed. Adjust the prompt if that seems likely and call generate_image again."
    ))
}
