//! What became of a job a call started or looked up, typed: the job service hands these to the
//! tools, the tasks path and the CLI, which only render them. A job's [`JobState`] is shaped like
//! the journal's `RecordedStatus`: RunComfy's own status for a job that exists, else what became
//! of the submit that was to make it.

use std::time::Duration;

use serde::{Serialize, Serializer};

use super::{Run, RunError, RunOutcome, SubmitError};
use crate::{
    media::{Collected, OutputUrls},
    runcomfy::{ApiError, CancelOutcome, CancelResponse, JobStatus, RequestId, ResultResponse, StatusResponse},
};

/// Where one job of a call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// RunComfy or a spending limit refused the submit: no job, no charge.
    NotSubmitted,
    /// The submit's answer or the job's status was lost: a job may exist (and be charged).
    Unknown,
    /// What RunComfy last said about the job.
    Job(JobStatus),
}

impl JobState {
    pub fn as_str(&self) -> &str {
        match self {
            Self::NotSubmitted => "not_submitted",
            Self::Unknown => "unknown",
            Self::Job(status) => status.as_str(),
        }
    }

    /// Whether RunComfy last said `status` of it.
    pub fn is(&self, status: &JobStatus) -> bool {
        matches!(self, Self::Job(s) if s == status)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What became of one job.
#[derive(Debug)]
pub enum JobOutcome {
    /// RunComfy's result for it, in whatever status it gave (succeeded, failed, cancelled, or
    /// still going when the result was asked for), with its outputs collected when it succeeded
    /// with any.
    Answered {
        id: RequestId,
        result: ResultResponse,
        media: Option<Collected>,
    },
    /// Submitted only: nobody waits for it.
    Submitted { id: RequestId },
    /// The wait ended first; the job goes on upstream. The last status seen, if any.
    StillRunning {
        id: RequestId,
        last: Option<StatusResponse>,
        waited: Duration,
    },
    /// The caller cancelled the wait; what RunComfy answered to cancelling the job.
    Cancelled {
        id: RequestId,
        cancel: Result<CancelResponse, ApiError>,
    },
    /// No job to follow: the submit was refused or failed (its fate may be unknown).
    NotSubmitted(SubmitError),
    /// The job exists, but following it failed: it may still make its outputs.
    Lost { id: RequestId, error: ApiError },
}

impl JobOutcome {
    /// A run as far as the answer goes; its outputs are not collected yet.
    pub(super) fn of_run(run: Result<Run, RunError>) -> Self {
        match run {
            Ok(Run { id, waited, outcome }) => match outcome {
                RunOutcome::Done(result) => Self::Answered {
                    id,
                    result,
                    media: None,
                },
                RunOutcome::StillRunning(last) => Self::StillRunning { id, last, waited },
                RunOutcome::Cancelled(cancel) => Self::Cancelled { id, cancel },
            },
            Err(RunError::Submit(e)) => Self::NotSubmitted(e),
            Err(RunError::Follow { id, error }) => Self::Lost { id, error },
        }
    }

    /// The job's id; `None` when no submit got one.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Self::Answered { id, .. }
            | Self::Submitted { id }
            | Self::StillRunning { id, .. }
            | Self::Cancelled { id, .. }
            | Self::Lost { id, .. } => Some(id),
            Self::NotSubmitted(_) => None,
        }
    }

    pub fn state(&self) -> JobState {
        match self {
            Self::Answered { result, .. } => JobState::Job(result.status.clone()),
            Self::Submitted { .. } => JobState::Job(JobStatus::InQueue),
            Self::StillRunning { last, .. } => {
                JobState::Job(last.as_ref().map_or(JobStatus::InQueue, |s| s.status.clone()))
            }
            Self::Cancelled { .. } if self.cancelled() => JobState::Job(JobStatus::Cancelled),
            Self::Cancelled { cancel, .. } => cancel
                .as_ref()
                .ok()
                .and_then(|answer| answer.status.clone())
                .map_or(JobState::Unknown, JobState::Job),
            Self::NotSubmitted(e) if e.submit_fate_unknown() => JobState::Unknown,
            Self::NotSubmitted(_) => JobState::NotSubmitted,
            Self::Lost { .. } => JobState::Unknown,
        }
    }

    /// True when its state will not change any more.
    pub fn finished(&self) -> bool {
        match self {
            Self::Answered { result, .. } => result.status.is_terminal(),
            Self::Submitted { .. } | Self::StillRunning { .. } | Self::Lost { .. } => false,
            Self::Cancelled { .. } => self.cancelled(),
            Self::NotSubmitted(e) => !e.submit_fate_unknown(),
        }
    }

    /// RunComfy said the cancel took: the job will not run.
    fn cancelled(&self) -> bool {
        matches!(self, Self::Cancelled { cancel: Ok(answer), .. } if answer.outcome == Some(CancelOutcome::Cancelled))
    }

    /// Jobs ahead of it, while it is queued.
    pub fn queue_position(&self) -> Option<u32> {
        match self {
            Self::StillRunning { last, .. } => last.as_ref().and_then(|s| s.queue_position),
            _ => None,
        }
    }

    /// What it cost in US dollars, once RunComfy reported it.
    pub fn cost_usd(&self) -> Option<f64> {
        match self {
            Self::Answered { result, .. } => result.cost,
            _ => None,
        }
    }

    /// A succeeded job's output URLs, to collect (`None` for any other).
    pub(super) fn to_collect(&self) -> Option<(&RequestId, OutputUrls)> {
        match self {
            Self::Answered {
                id,
                result,
                media: None,
            } if result.status == JobStatus::Succeeded => {
                let urls = result.output.as_deref().map(OutputUrls::of).unwrap_or_default();
                (!urls.is_empty()).then_some((id, urls))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runcomfy::ApiError;

    fn id() -> RequestId {
        RequestId::parse("job-1").unwrap()
    }

    fn cancel(outcome: Option<CancelOutcome>, status: Option<JobStatus>) -> JobOutcome {
        JobOutcome::Cancelled {
            id: id(),
            cancel: Ok(CancelResponse {
                request_id: None,
                status,
                outcome,
            }),
        }
    }

    /// The states a batch's jobs are shown in, typed where they were strings: a refused submit,
    /// a lost answer and each way a cancel can go.
    #[test]
    fn each_outcome_has_its_state() {
        let refused = JobOutcome::NotSubmitted(SubmitError::Limit("over the limit".into()));
        assert_eq!((refused.state(), refused.finished()), (JobState::NotSubmitted, true));
        assert_eq!(refused.state().to_string(), "not_submitted");
        let lost = JobOutcome::Lost {
            id: id(),
            error: ApiError::NotFound { message: "gone".into() },
        };
        assert_eq!((lost.state(), lost.finished()), (JobState::Unknown, false));
        let done = cancel(Some(CancelOutcome::Cancelled), None);
        assert_eq!(
            (done.state(), done.finished()),
            (JobState::Job(JobStatus::Cancelled), true)
        );
        let running = cancel(Some(CancelOutcome::NotCancellable), Some(JobStatus::InProgress));
        assert_eq!(
            (running.state(), running.finished()),
            (JobState::Job(JobStatus::InProgress), false)
        );
        let silent = cancel(None, None);
        assert_eq!(silent.state(), JobState::Unknown);
        let waiting = JobOutcome::StillRunning {
            id: id(),
            last: None,
            waited: Duration::ZERO,
        };
        assert_eq!(waiting.state().as_str(), "in_queue");
        assert_eq!(serde_json::to_value(JobState::Unknown).unwrap(), "unknown");
    }
}
