//! `list_jobs`: the jobs this machine's journal holds, newest first — how a model (or a person)
//! finds a request id it lost to a timeout, a new conversation or a restart. Its arguments, its
//! output type (the tool's output schema) and the readable text copy.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::Validate;
use crate::{
    dreamina::InvalidArgument,
    journal::{status, JobQuery, JobRecord},
};

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 100;
/// Prompts are shortened in the list: it is for finding a job, not for reading it.
const PROMPT_CHARS: usize = 120;

/// The status filter. Plain variants (no doc comments): schemars would turn documented variants
/// into a `oneOf` that some clients render poorly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    #[default]
    All,
    InQueue,
    InProgress,
    Succeeded,
    Failed,
    Cancelled,
    Submitting,
    Unknown,
    Rejected,
}

impl StatusFilter {
    fn as_status(self) -> Option<String> {
        match self {
            Self::All => None,
            other => serde_json::to_value(other).ok()?.as_str().map(str::to_owned),
        }
    }
}

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// The arguments of list_jobs.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListJobsArgs {
    /// Only jobs in this status (default all). unknown: the submit was sent but its answer was lost, so a job may exist without a request_id; submitting: the submit was being sent; rejected: RunComfy refused the submit and no job was created.
    #[serde(default)]
    pub status: StatusFilter,

    /// How many jobs to return, newest first (1 to 100, default 10).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

impl Validate for ListJobsArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(InvalidArgument::new(
                "limit",
                format!(
                    "is {}; it must be from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
                    self.limit
                ),
            ));
        }
        Ok(())
    }
}

impl ListJobsArgs {
    pub fn query(&self) -> JobQuery {
        JobQuery {
            status: self.status.as_status(),
            limit: self.limit,
        }
    }
}

/// `list_jobs`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobEntry>,
    /// How to use what was found.
    pub next_step: String,
}

/// One job as this machine last saw it: check_status or get_result tells where it stands now.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobEntry {
    /// The job's id, for check_status, get_result and cancel_request. Missing when the submit's answer never arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// in_queue, in_progress, succeeded, failed, cancelled (as last seen), or submitting, unknown, rejected.
    pub status: String,
    /// True when the status will not change any more.
    pub finished: bool,
    /// The prompt, shortened.
    pub prompt: String,
    /// The requested size, e.g. 2048x2048(1:1).
    pub size: String,
    /// When it was submitted (UTC, RFC 3339).
    pub submitted_at: String,
    /// When this machine saw it finish (UTC, RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Jobs ahead of it when last seen in the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Image URLs, once get_result has fetched them. RunComfy hosts them for a limited time.
    pub images: Vec<String>,
    /// Video URLs, if the model produced any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub videos: Vec<String>,
    /// Files saved on this machine.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub saved_paths: Vec<String>,
    /// What went wrong, for a failed, rejected or unknown submit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobEntry {
    fn new(job: JobRecord) -> Self {
        let timestamp = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Self {
            finished: job.is_final(),
            request_id: job.request_id,
            status: job.status,
            prompt: shorten(&job.prompt),
            size: job.size,
            submitted_at: timestamp(job.submitted_at),
            finished_at: job.finished_at.map(timestamp),
            queue_position: job.queue_position,
            images: job.images,
            videos: job.videos,
            saved_paths: job.saved_paths,
            error: job.error,
        }
    }

    fn line(&self, n: usize) -> String {
        let id = self.request_id.as_deref().unwrap_or("(no request_id)");
        let mut line = format!(
            "{n}. {id} · {} · {} · {} · \"{}\"",
            self.status, self.size, self.submitted_at, self.prompt
        );
        if let Some(p) = self.queue_position {
            line.push_str(&format!("\n   queue position {p}"));
        }
        for url in self.images.iter().chain(&self.videos) {
            line.push_str(&format!("\n   {url}"));
        }
        for path in &self.saved_paths {
            line.push_str(&format!("\n   saved: {path}"));
        }
        if let Some(error) = &self.error {
            line.push_str(&format!("\n   error: {error}"));
        }
        line
    }
}

impl JobList {
    pub fn new(jobs: Vec<JobRecord>) -> Self {
        let jobs: Vec<JobEntry> = jobs.into_iter().map(JobEntry::new).collect();
        let fate_unknown = jobs
            .iter()
            .any(|j| j.status == status::UNKNOWN || j.status == status::SUBMITTING);
        let mut next_step = if jobs.is_empty() {
            "No jobs recorded on this machine match. Jobs submitted elsewhere or with the journal off are not listed."
                .to_owned()
        } else {
            "Statuses are as last seen here: call check_status or get_result with a request_id for the current state and the image URLs."
                .to_owned()
        };
        if fate_unknown {
            next_step.push_str(
                " A job in status unknown or submitting may exist and be charged without a request_id: check the RunComfy dashboard (Generations) before submitting it again.",
            );
        }
        Self { jobs, next_step }
    }

    pub fn render(&self) -> CallToolResult {
        let mut text = format!("{} job(s), newest first:", self.jobs.len());
        for (i, job) in self.jobs.iter().enumerate() {
            text.push('\n');
            text.push_str(&job.line(i + 1));
        }
        text.push_str(&format!("\n{}", self.next_step));
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = serde_json::to_value(self).ok();
        result
    }
}

/// The journal is off or unreadable: say so, and how to turn it on.
pub fn unavailable(reason: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!(
        "{reason} Past jobs cannot be listed. Jobs still run; keep the request_id that generate_image returns. \
         The journal is on unless the server is started with --no-journal (RUNCOMFY_NO_JOURNAL)."
    ))])
}

fn shorten(prompt: &str) -> String {
    let prompt = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if prompt.chars().count() <= PROMPT_CHARS {
        prompt
    } else {
        format!("{}…", prompt.chars().take(PROMPT_CHARS - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_prompts_are_shortened_on_one_line() {
        assert_eq!(shorten("a  red\nfox"), "a red fox");
        let long = shorten(&"word ".repeat(100));
        assert_eq!(long.chars().count(), PROMPT_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn the_filter_names_the_stored_statuses() {
        assert_eq!(StatusFilter::All.as_status(), None);
        assert_eq!(StatusFilter::InProgress.as_status().as_deref(), Some("in_progress"));
        assert_eq!(StatusFilter::Unknown.as_status().as_deref(), Some(status::UNKNOWN));
    }
}
