//! What the journal remembers about one job, and the changes the server reports as it learns
//! more. Plain data, free of any storage engine, so that another store can hold the same rows.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::runcomfy::{CancelOutcome, CancelResponse, JobStatus, ResultResponse, StatusResponse};

/// A job's status as the journal stores it: the upstream's, or one of the journal's own for a
/// submit whose answer this machine did not (yet) see. Stored as its wire string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedStatus {
    /// The body is being sent. A row left in this state by a server that died means the same as
    /// [`RecordedStatus::FateUnknown`]: a job may exist.
    Submitting,
    /// The request was sent and no answer settled it: the connection died, the deadline passed,
    /// or RunComfy answered with an error that does not rule a job out (429, 5xx, an unreadable
    /// answer). A job may exist and be charged, but there is no request id to follow it with.
    FateUnknown,
    /// RunComfy refused the submit (bad input, no balance, bad token): no job, no charge.
    Rejected,
    /// What RunComfy last said about the job.
    Job(JobStatus),
}

impl RecordedStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Submitting => "submitting",
            Self::FateUnknown => "unknown",
            Self::Rejected => "rejected",
            Self::Job(status) => status.as_str(),
        }
    }

    pub fn from_stored(raw: &str) -> Self {
        match raw {
            "submitting" => Self::Submitting,
            "unknown" => Self::FateUnknown,
            "rejected" => Self::Rejected,
            other => Self::Job(JobStatus::from_wire(other)),
        }
    }

    /// Whether the status will not change any more.
    pub fn is_final(&self) -> bool {
        match self {
            Self::Rejected => true,
            Self::Submitting | Self::FateUnknown => false,
            Self::Job(status) => status.is_terminal(),
        }
    }

    /// A job may exist and be charged without a request id to follow it with.
    pub fn fate_unknown(&self) -> bool {
        matches!(self, Self::Submitting | Self::FateUnknown)
    }
}

impl serde::Serialize for RecordedStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for RecordedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose a job is: the person whose RunComfy key paid for it. Every query is asked on behalf of
/// one owner and sees only that owner's jobs; spend and rate limits count each owner's jobs
/// apart (each person's own money).
///
/// With one server-wide key (the default) every job has the [`Owner::single`] owner, as have the
/// rows of journals older than owners. With per-user keys it is a keyed hash of the caller's
/// RunComfy key (HMAC-SHA256 under the server's secret, in hex): stable for one key, the same on
/// every replica that shares the secret, and useless for recovering the key. The key itself is
/// never stored. Stored as its string (`""` for the single owner), compared for equality only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Owner(String);

impl Owner {
    /// The owner of every job of a server with one RunComfy key (and of rows older than owners).
    pub fn single() -> Self {
        Self(String::new())
    }

    /// An owner as stored, e.g. read back from a row.
    pub fn from_stored(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// As stored: `""` for [`Owner::single`], else the keyed hash in lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_single(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Owner {
    /// For logs: the single owner by name, a hashed one by its first 12 hex digits (enough to
    /// tell people apart, and a hash, never the key).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_single() {
            f.write_str("single-user")
        } else {
            f.write_str(&self.0[..self.0.len().min(12)])
        }
    }
}

/// A submit about to be sent.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Whose job it is; the limits count this owner's jobs only.
    pub owner: Owner,
    pub model: String,
    pub prompt: String,
    /// The size as sent, e.g. `2048x2048(1:1)`.
    pub size: String,
    /// The model input as sent (prompt, size, scale, force_single), except that an edit's
    /// `image_urls` are replaced by `inputs`, a description of each reference image (what it
    /// was: URL, job reference, file path and size), never their bytes.
    pub params: Value,
    pub submitted_at: DateTime<Utc>,
    /// The most this job is expected to cost, in US dollars (`None`: the price is not known).
    /// Until its actual cost is known, spend totals and limits count the job at this.
    pub estimate_usd: Option<f64>,
}

/// How a submit ended, as far as this server saw.
#[derive(Debug, Clone)]
pub enum SubmitOutcome {
    Accepted {
        request_id: String,
    },
    /// Sent, then the answer was lost or was an error that does not rule a job out: the job may
    /// exist.
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
    pub status: Option<JobStatus>,
    /// Set together with `status`: a job that left the queue has no position any more.
    pub queue_position: Option<u32>,
    /// Replaces the stored URLs when not empty.
    pub images: Vec<String>,
    /// Video and audio URLs (audio has no column of its own).
    pub videos: Vec<String>,
    /// Added to the stored paths (files saved on this machine).
    pub saved_paths: Vec<String>,
    pub error: Option<String>,
    /// What RunComfy says the job cost, in US dollars.
    pub cost_usd: Option<f64>,
}

impl JobUpdate {
    pub fn from_status(answer: &StatusResponse) -> Self {
        Self::status(&answer.status, answer.queue_position)
    }

    pub fn status(status: &JobStatus, queue_position: Option<u32>) -> Self {
        Self {
            status: Some(status.clone()),
            queue_position: queue_position.filter(|_| *status == JobStatus::InQueue),
            ..Self::default()
        }
    }

    pub fn from_result(answer: &ResultResponse) -> Self {
        let urls = answer
            .output
            .as_deref()
            .map(crate::media::OutputUrls::of)
            .unwrap_or_default();
        // What an answer can list is all a record keeps: an upstream listing thousands of
        // outputs must not grow every row it touches.
        let listed = crate::media::listing(&urls);
        Self {
            status: Some(answer.status.clone()),
            images: listed.images.to_vec(),
            // Audio and other files are kept with the videos: a column of their own would need a schema
            // migration of both stores, and these are the job's other media all the same.
            videos: [listed.videos, listed.audios, listed.files].concat(),
            error: answer.error_message(),
            cost_usd: answer.cost,
            ..Self::default()
        }
    }

    /// A cancel that worked makes the job cancelled; otherwise the status it reported, if any.
    ///
    /// A cancel works only on a queued job, which never ran and made nothing: it costs nothing
    /// from then on, so it stops counting against the spend limit and in spend totals at once
    /// (recorded as a cost of 0), not after the 24 hours its estimate would have counted. Should
    /// a result ever report a cost for it, that cost replaces the 0.
    pub fn from_cancel(answer: &CancelResponse) -> Self {
        match (&answer.outcome, &answer.status) {
            (Some(CancelOutcome::Cancelled), _) => Self {
                status: Some(JobStatus::Cancelled),
                cost_usd: Some(0.0),
                ..Self::default()
            },
            (_, status) => Self {
                status: status.clone(),
                ..Self::default()
            },
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

/// One job as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub key: JobKey,
    pub owner: Owner,
    /// None while submitting, and for a submit whose fate is unknown.
    pub request_id: Option<String>,
    pub model: String,
    pub prompt: String,
    pub size: String,
    pub params: Value,
    pub status: RecordedStatus,
    pub queue_position: Option<u32>,
    pub images: Vec<String>,
    /// Video and audio URLs.
    pub videos: Vec<String>,
    pub saved_paths: Vec<String>,
    pub error: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What RunComfy said the job cost, in US dollars, once a result said it.
    pub cost_usd: Option<f64>,
    /// The most it was expected to cost when it was submitted.
    pub estimate_usd: Option<f64>,
}

impl JobRecord {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }
}

/// Which jobs to list: newest first, at most `limit`.
#[derive(Debug, Clone)]
pub struct JobQuery {
    /// Only this owner's jobs (there is no query across owners).
    pub owner: Owner,
    /// Only jobs in this status.
    pub status: Option<RecordedStatus>,
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

/// An MCP task as replicas share it, so that `tasks/get` and `tasks/cancel` work on a replica
/// other than the one running it. The journal keeps the task's last state as the running
/// replica showed it (`detail`, a `DetailedTask` as JSON; the journal does not read it), and the
/// jobs it started, for whoever answers after that replica is gone.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub task_id: String,
    pub owner: Owner,
    pub detail: Value,
    pub request_ids: Vec<String>,
    /// Settled (completed, failed or cancelled): never overwritten by a later, older save.
    pub finished: bool,
    /// When the running replica last saved it: a task not finished and not saved for a while
    /// lost its replica.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_result_keeps_its_audio_with_its_videos() {
        let answer: ResultResponse = serde_json::from_value(json!({
            "status": "succeeded",
            "output": {"image": "i.png", "video": "v.mp4", "audios": ["a.wav", "b.mp3"]}
        }))
        .unwrap();
        let update = JobUpdate::from_result(&answer);
        assert_eq!(update.images, ["i.png"]);
        assert_eq!(update.videos, ["v.mp4", "a.wav", "b.mp3"]);
    }
}
