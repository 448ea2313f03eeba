//! `list_jobs`: the jobs this machine's journal holds, newest first — how a model (or a person)
//! finds a request id it lost to a timeout, a new conversation or a restart.

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    super::{
        answer::{success, ToolError},
        args::{self, Validate},
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    Audience, ToolUnit,
};
use crate::jobs::Caller;
use crate::{
    jobs::price::usd,
    journal::{JobQuery, JobRecord, RecordedStatus, SpendTotals, Tally},
    media::{ListingRoom, OutputUrls},
    runcomfy::{Balance, JobStatus},
    text::{ellipsis, thousands},
};

const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 100;
/// Prompts are shortened in the list: it is for finding a job, not for reading it.
const PROMPT_CHARS: usize = 120;
/// So are errors, which are the upstream's free-form text.
const ERROR_CHARS: usize = 300;

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
    fn as_status(self) -> Option<RecordedStatus> {
        Some(match self {
            Self::All => return None,
            Self::InQueue => RecordedStatus::Job(JobStatus::InQueue),
            Self::InProgress => RecordedStatus::Job(JobStatus::InProgress),
            Self::Succeeded => RecordedStatus::Job(JobStatus::Succeeded),
            Self::Failed => RecordedStatus::Job(JobStatus::Failed),
            Self::Cancelled => RecordedStatus::Job(JobStatus::Cancelled),
            Self::Submitting => RecordedStatus::Submitting,
            Self::Unknown => RecordedStatus::FateUnknown,
            Self::Rejected => RecordedStatus::Rejected,
        })
    }
}

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

/// The arguments of list_jobs.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListJobsArgs {
    /// Only jobs in this status (default all). unknown: the submit was sent but its outcome is not known (its answer was lost, or was an error that does not rule a job out), so a job may exist and be charged without a request_id; submitting: the submit was being sent; rejected: RunComfy refused the submit and no job was created.
    #[serde(default)]
    pub status: StatusFilter,

    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = MAX_LIMIT), description = limit_description())]
    pub limit: u32,
}

fn limit_description() -> String {
    format!("How many jobs to return, newest first (1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}).")
}

impl Validate for ListJobsArgs {}

impl ListJobsArgs {
    fn query(&self, caller: &Caller) -> JobQuery {
        JobQuery {
            owner: caller.owner().clone(),
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
    /// Spending of every job recorded on this machine (not only those listed): today (UTC), over the last 7 days and over all recorded time. Jobs whose cost is not known yet are counted in estimated_usd, at the top of their estimate.
    pub spend: SpendTotals,
    /// What is left on the RunComfy account, in US dollars, as RunComfy reported it a moment ago. Missing when it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_usd: Option<f64>,
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
    #[schemars(with = "String")]
    pub status: RecordedStatus,
    /// True when the status will not change any more.
    pub finished: bool,
    /// The model it ran on, e.g. bytedance/dreamina-4-0/text-to-image.
    pub model: String,
    /// The prompt (or text), shortened.
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
    /// Video and audio URLs, if the model produced any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub videos: Vec<String>,
    /// Files saved on this machine.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub saved_paths: Vec<String>,
    /// URLs and saved files not listed, to keep the answer small (get_result lists a job's outputs).
    #[serde(skip_serializing_if = "is_zero")]
    pub unlisted: u32,
    /// What went wrong, for a failed, rejected or unknown submit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it cost in US dollars, as RunComfy reported it (once get_result or a waiting tool fetched its result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The most it was expected to cost when submitted (the top of its estimate), in US dollars: what the spending limit counts until cost_usd is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate_usd: Option<f64>,
}

impl JobEntry {
    /// The job, its URLs and files out of what is left of the answer's `room`.
    fn new(mut job: JobRecord, room: &mut ListingRoom) -> Self {
        let timestamp = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        // Saved files first: they outlive the URLs.
        let saved = room.take(&job.saved_paths);
        // The journal keeps audio URLs with the videos (see `JobUpdate::from_result`).
        let urls = OutputUrls {
            images: std::mem::take(&mut job.images),
            videos: std::mem::take(&mut job.videos),
            audios: Vec::new(),
            files: Vec::new(),
        };
        let listed = room.listing(&urls);
        let unlisted = listed.unlisted + job.saved_paths.len() - saved.len();
        Self {
            finished: job.is_final(),
            request_id: job.request_id,
            status: job.status,
            prompt: shorten(&job.prompt),
            model: job.model,
            size: job.size,
            submitted_at: timestamp(job.submitted_at),
            finished_at: job.finished_at.map(timestamp),
            queue_position: job.queue_position,
            images: listed.images.to_vec(),
            videos: listed.videos.to_vec(),
            saved_paths: saved.to_vec(),
            unlisted: u32::try_from(unlisted).unwrap_or(u32::MAX),
            error: job.error.map(|e| ellipsis(&e, ERROR_CHARS)),
            // Rows written before amounts were rounded may carry float noise.
            cost_usd: job.cost_usd.map(crate::money::round_usd),
            estimate_usd: job.estimate_usd.map(crate::money::round_usd),
        }
    }

    fn line(&self, n: usize) -> String {
        let id = self.request_id.as_deref().unwrap_or("(no request_id)");
        let cost = match (self.cost_usd, self.estimate_usd) {
            (Some(cost), _) => format!(" · {}", usd(cost)),
            (None, Some(estimate)) => format!(" · up to {} (estimate)", usd(estimate)),
            (None, None) => String::new(),
        };
        let mut line = format!(
            "{n}. {id} · {} · {} · {} · {}{cost} · \"{}\"",
            self.model, self.status, self.size, self.submitted_at, self.prompt
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
        if self.unlisted > 0 {
            line.push_str(&format!(
                "\n   and {} more URLs or files (get_result with its request_id lists them)",
                thousands(self.unlisted as usize)
            ));
        }
        if let Some(error) = &self.error {
            line.push_str(&format!("\n   error: {error}"));
        }
        line
    }
}

impl JobList {
    pub fn new(jobs: Vec<JobRecord>, spend: SpendTotals, balance: Option<Balance>) -> Self {
        // One listing bound for the whole answer: the newest jobs' URLs first.
        let mut room = ListingRoom::new();
        let jobs: Vec<JobEntry> = jobs.into_iter().map(|job| JobEntry::new(job, &mut room)).collect();
        let fate_unknown = jobs.iter().any(|j| j.status.fate_unknown());
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
        Self {
            jobs,
            spend,
            balance_usd: balance.map(|b| b.usd),
            next_step,
        }
    }

    fn render(&self) -> CallToolResult {
        let mut text = format!("{} job(s), newest first:", self.jobs.len());
        for (i, job) in self.jobs.iter().enumerate() {
            text.push('\n');
            text.push_str(&job.line(i + 1));
        }
        text.push_str(&format!(
            "\nSpent today (UTC): {}; last 7 days: {}; all recorded: {}.",
            tally_text(&self.spend.today),
            tally_text(&self.spend.last_7_days),
            tally_text(&self.spend.all_recorded)
        ));
        if let Some(usd) = self.balance_usd {
            text.push_str(&format!(" RunComfy balance: {}.", Balance { usd }.text()));
        }
        text.push_str(&format!("\n{}", self.next_step));
        success(self, text)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `$0.09 over 3 jobs (+ up to $0.45 estimated for 1 job not yet costed)`.
pub fn tally_text(tally: &Tally) -> String {
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let mut text = format!("{} over {} job{}", usd(tally.cost_usd), tally.jobs, plural(tally.jobs));
    if tally.estimated_usd > 0.0 {
        text.push_str(&format!(
            " (+ up to {} estimated for jobs not yet costed)",
            usd(tally.estimated_usd)
        ));
    }
    if tally.unpriced_jobs > 0 {
        text.push_str(&format!(
            " ({} job{} of unknown price)",
            tally.unpriced_jobs,
            plural(tally.unpriced_jobs)
        ));
    }
    text
}

/// On one line, and at most [`PROMPT_CHARS`] long.
fn shorten(prompt: &str) -> String {
    ellipsis(&prompt.split_whitespace().collect::<Vec<_>>().join(" "), PROMPT_CHARS)
}

/// The journal is off or unreadable: say so, and how to turn it on.
fn unavailable(reason: &str) -> ToolError {
    ToolError::new(format!(
        "{reason} Past jobs cannot be listed. Jobs still run; keep the request_id that generate_image returns. \
         The journal is on unless the server is started with --no-journal (RUNCOMFY_NO_JOURNAL)."
    ))
}

/// What the router, the app view and the tasks path know of `list_jobs`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::list_jobs_router,
    audience: Audience::ModelAndView,
    images: false,
    task: None,
};

#[tool_router(router = list_jobs_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "list_jobs",
        title = "List recent jobs",
        description = format!("List the image jobs recorded on this machine, newest first, with status, shortened prompt, size, submission time, cost (or its estimate until known), and image URLs or saved files once known, plus the spending of today, the last 7 days and all recorded time, and the RunComfy balance left (read from RunComfy, briefly cached; left out when it cannot be read). Use it to find a request_id that was lost (a timeout, a new conversation, a restart) instead of submitting a new paid job; then call check_status or get_result with it, or pass request_id#n in a generate tool's images to edit its n-th image. Statuses are as last seen here. Filter by status; limit defaults to {DEFAULT_LIMIT}. The jobs come from this machine's journal, not from RunComfy."),
        input_schema = schema_for::<ListJobsArgs>(),
        output_schema = output_schema_for::<JobList>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn list_jobs(&self, arguments: JsonObject, caller: Caller) -> Result<CallToolResult, ToolError> {
        let query = args::parse::<ListJobsArgs>(arguments)?.query(&caller);
        let jobs = self
            .jobs
            .list(&caller, query)
            .await
            .map_err(|reason| unavailable(&reason))?;
        let (spend, balance) = tokio::join!(self.jobs.spend(&caller), self.jobs.balance(&caller));
        let spend = spend.map_err(|reason| unavailable(&reason))?;
        Ok(JobList::new(jobs, spend, balance).render())
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
        // Every filter value is the stored status of the same name.
        for filter in [
            StatusFilter::InQueue,
            StatusFilter::InProgress,
            StatusFilter::Succeeded,
            StatusFilter::Failed,
            StatusFilter::Cancelled,
            StatusFilter::Submitting,
            StatusFilter::Unknown,
            StatusFilter::Rejected,
        ] {
            let name = serde_json::to_value(filter).unwrap();
            assert_eq!(
                Some(name.as_str().unwrap()),
                filter.as_status().as_ref().map(RecordedStatus::as_str)
            );
        }
    }
}
