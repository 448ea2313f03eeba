//! How a [`JobRecord`] is kept as SQL columns, the same in every SQL store (SQLite, PostgreSQL):
//! times as milliseconds since the epoch, lists and params as JSON text, statuses as their wire
//! strings; and the merge of an update into a row, which both stores run inside the transaction
//! that holds the row.

use chrono::{DateTime, Utc};

use super::{spend::Counted, sql::Row, JobKey, JobRecord, JobUpdate, Owner, RecordedStatus, StoreError, SubmitOutcome};
use crate::runcomfy::JobStatus;

/// Every column of a row, in the order the stores select them and [`read_row`] reads them.
pub(super) const COLUMNS: &str = "key, request_id, model, prompt, size, params, status, queue_position, images, \
videos, saved_paths, error, submitted_at, updated_at, finished_at, cost_usd, estimate_usd, owner";

/// The rows the spend and rate limits count: every submit but those RunComfy refused.
pub(super) const COUNTED: &str = "status <> 'rejected'";

/// A row of [`COLUMNS`] as a job.
pub(super) fn read_row(row: Row) -> Result<JobRecord, StoreError> {
    let mut c = row.cells();
    Ok(JobRecord {
        key: JobKey(c.int()?),
        request_id: c.opt_text()?,
        model: c.text()?,
        prompt: c.text()?,
        size: c.text()?,
        params: parse_params(&c.text()?),
        status: RecordedStatus::from_stored(&c.text()?),
        queue_position: c.opt_int()?.and_then(|p| u32::try_from(p).ok()),
        images: parse_list(&c.text()?),
        videos: parse_list(&c.text()?),
        saved_paths: parse_list(&c.text()?),
        error: c.opt_text()?,
        submitted_at: from_millis(c.int()?),
        updated_at: from_millis(c.int()?),
        finished_at: c.opt_int()?.map(from_millis),
        cost_usd: c.opt_real()?,
        estimate_usd: c.opt_real()?,
        owner: Owner::from_stored(c.text()?),
    })
}

/// Merges what was learnt into the stored row.
pub(super) fn apply(job: &mut JobRecord, update: &JobUpdate, now: DateTime<Utc>) {
    if let Some(new) = &update.status {
        // Polls from two servers can arrive out of order: a finished job stays finished.
        if !job.is_final() || new.is_terminal() {
            job.status = RecordedStatus::Job(new.clone());
            job.queue_position = update.queue_position;
        }
    }
    if !update.images.is_empty() {
        job.images = update.images.clone();
    }
    if !update.videos.is_empty() {
        job.videos = update.videos.clone();
    }
    for path in &update.saved_paths {
        if !job.saved_paths.contains(path) {
            job.saved_paths.push(path.clone());
        }
    }
    if update.error.is_some() {
        job.error = update.error.clone();
    }
    if update.cost_usd.is_some() {
        job.cost_usd = update.cost_usd;
    }
    if job.is_final() && job.finished_at.is_none() {
        job.finished_at = Some(now);
    }
}

/// What a submit's outcome sets: the request id, the status and the error.
pub(super) fn submit_columns(outcome: &SubmitOutcome) -> (Option<&str>, RecordedStatus, Option<&str>) {
    match outcome {
        SubmitOutcome::Accepted { request_id } => {
            (Some(request_id.as_str()), RecordedStatus::Job(JobStatus::InQueue), None)
        }
        SubmitOutcome::FateUnknown { error } => (None, RecordedStatus::FateUnknown, Some(error.as_str())),
        SubmitOutcome::Rejected { error } => (None, RecordedStatus::Rejected, Some(error.as_str())),
    }
}

/// A counted row (`submitted_at, cost_usd, estimate_usd`) as the limits see it.
pub(super) fn counted(submitted_at: i64, cost: Option<f64>, estimate: Option<f64>) -> Counted {
    Counted {
        submitted_at: from_millis(submitted_at),
        usd: cost.or(estimate).unwrap_or(0.0),
        estimated: cost.is_none() && estimate.is_some(),
    }
}

/// Lenient: a row another version wrote oddly must not hide every other job.
pub(super) fn parse_list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

pub(super) fn parse_params(raw: &str) -> serde_json::Value {
    serde_json::from_str(raw).unwrap_or_default()
}

pub(super) fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(super) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
