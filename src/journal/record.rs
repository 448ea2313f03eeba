//! What the journal remembers about one job, and the changes the server reports as it learns
//! more. Plain data, free of any storage engine, so that another store can hold the same rows.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::runcomfy::{CancelOutcome, CancelResponse, JobStatus, ResultResponse, StatusResponse};

/// The journal's own states, besides the upstream's (`in_queue`, `in_progress`, `succeeded`,
/// `failed`, `cancelled`), for a submit whose answer this machine did not (yet) see.
pub mod status {
    /// The body is being sent. A row left in this state by a server that died means the same as
    /// [`UNKNOWN`]: a job may exist.
    pub const SUBMITTING: &str = "submitting";
    /// The request was sent and the connection died before the answer: a job may exist and be
    /// charged, but there is no request id to follow it with.
    pub const UNKNOWN: &str = "unknown";
    /// RunComfy refused the submit (bad input, no balance, bad token): no job, no charge.
    pub const REJECTED: &str = "rejected";
}

/// Whether a status will not change any more, for any status the journal stores.
pub fn is_final(status: &str) -> bool {
    JobStatus::from_wire(status).is_terminal() || status == status::REJECTED
}

/// A submit about to be sent.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub model: String,
    pub prompt: String,
    /// The size as sent, e.g. `2048x2048(1:1)`.
    pub size: String,
    /// The whole model input as sent (prompt, size, scale, force_single).
    pub params: Value,
    pub submitted_at: DateTime<Utc>,
}

/// How a submit ended, as far as this server saw.
#[derive(Debug, Clone)]
pub enum SubmitOutcome {
    Accepted {
        request_id: String,
    },
    /// Sent, then the answer was lost: the job may exist.
    FateUnknown {
        error: String,
    },
    /// RunComfy answered with an error: no job was created.
    Rejected {
        error: String,
    },
}

/// The journal's handle on a row, before the job has a request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobKey(pub i64);

/// What the server learnt about a job. Empty fields leave the row as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobUpdate {
    pub status: Option<String>,
    /// Set together with `status`: a job that left the queue has no position any more.
    pub queue_position: Option<u32>,
    /// Replaces the stored URLs when not empty.
    pub images: Vec<String>,
    pub videos: Vec<String>,
    /// Added to the stored paths (files saved on this machine).
    pub saved_paths: Vec<String>,
    pub error: Option<String>,
}

impl JobUpdate {
    pub fn from_status(answer: &StatusResponse) -> Self {
        Self::status(&answer.status, answer.queue_position)
    }

    pub fn status(status: &JobStatus, queue_position: Option<u32>) -> Self {
        Self {
            status: Some(status.as_str().to_owned()),
            queue_position: queue_position.filter(|_| *status == JobStatus::InQueue),
            ..Self::default()
        }
    }

    pub fn from_result(answer: &ResultResponse) -> Self {
        let output = answer.output.as_ref();
        Self {
            status: Some(answer.status.as_str().to_owned()),
            images: output.map(|o| o.image_urls()).unwrap_or_default(),
            videos: output.map(|o| o.video_urls()).unwrap_or_default(),
            error: answer.error.as_ref().filter(|e| !e.is_null()).map(describe_error),
            ..Self::default()
        }
    }

    /// A cancel that worked makes the job cancelled; otherwise the status it reported, if any.
    pub fn from_cancel(answer: &CancelResponse) -> Self {
        let status = match (&answer.outcome, &answer.status) {
            (Some(CancelOutcome::Cancelled), _) => Some(JobStatus::Cancelled),
            (_, status) => status.clone(),
        };
        Self {
            status: status.map(|s| s.as_str().to_owned()),
            ..Self::default()
        }
    }

    pub fn saved(paths: Vec<String>) -> Self {
        Self {
            saved_paths: paths,
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// RunComfy's error is free-form JSON: keep its message when it has one, else the JSON.
fn describe_error(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .or_else(|| o.get("error_message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string()),
        other => other.to_string(),
    }
}

/// One job as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub key: JobKey,
    /// None while submitting, and for a submit whose fate is unknown.
    pub request_id: Option<String>,
    pub model: String,
    pub prompt: String,
    pub size: String,
    pub params: Value,
    pub status: String,
    pub queue_position: Option<u32>,
    pub images: Vec<String>,
    pub videos: Vec<String>,
    pub saved_paths: Vec<String>,
    pub error: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobRecord {
    pub fn is_final(&self) -> bool {
        is_final(&self.status)
    }
}

/// Which jobs to list: newest first, at most `limit`.
#[derive(Debug, Clone)]
pub struct JobQuery {
    /// Only jobs in this status.
    pub status: Option<String>,
    pub limit: u32,
}

/// How much history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: chrono::Duration,
    pub max_jobs: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: chrono::Duration::days(90),
            max_jobs: 1000,
        }
    }
}
