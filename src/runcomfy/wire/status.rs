//! A job's state, folded from the many spellings the API and RunComfy's own clients use; any
//! other string becomes [`JobStatus::Unknown`], kept as sent.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The state of a job, folded from the spellings the API and RunComfy's own clients use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    InQueue,
    InProgress,
    /// `completed` on the status endpoint, `succeeded` on the result endpoint.
    Succeeded,
    Failed,
    /// `cancelled` or `canceled`.
    Cancelled,
    /// Any other string, kept as sent.
    Unknown(String),
}

impl JobStatus {
    pub fn from_wire(raw: &str) -> Self {
        match raw.trim().to_ascii_lowercase().as_str() {
            // RunComfy's own clients treat `pending`, `waiting`, `starting` and `processing` as
            // "still going": a job not yet running is queued, one being set up is in progress.
            "in_queue" | "queued" | "pending" | "waiting" => Self::InQueue,
            "in_progress" | "running" | "processing" | "starting" => Self::InProgress,
            "completed" | "succeeded" | "success" => Self::Succeeded,
            "failed" | "error" => Self::Failed,
            "cancelled" | "canceled" => Self::Cancelled,
            // Kept as sent, within reason: it is shown in answers.
            _ => Self::Unknown(crate::text::ellipsis(raw, 64)),
        }
    }

    /// The name we show to models and people: one spelling per state.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InQueue => "in_queue",
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown(raw) => raw,
        }
    }

    /// True when the job will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Accept any JSON value: a number or null for a status must not fail the whole answer.
        let value = Value::deserialize(deserializer)?;
        Ok(match value {
            Value::String(s) => Self::from_wire(&s),
            other => Self::Unknown(crate::text::ellipsis(&other.to_string(), 64)),
        })
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runcomfy::wire::StatusResponse;
    use serde_json::json;

    #[test]
    fn status_spellings_fold_and_unknown_is_kept() {
        for (raw, want) in [
            ("completed", JobStatus::Succeeded),
            ("succeeded", JobStatus::Succeeded),
            ("cancelled", JobStatus::Cancelled),
            ("canceled", JobStatus::Cancelled),
            ("failed", JobStatus::Failed),
            ("in_queue", JobStatus::InQueue),
            ("in_progress", JobStatus::InProgress),
            ("warming_up", JobStatus::Unknown("warming_up".into())),
        ] {
            let parsed: StatusResponse = serde_json::from_value(json!({"status": raw})).unwrap();
            assert_eq!(parsed.status, want, "{raw}");
        }
        let odd: StatusResponse = serde_json::from_value(json!({"status": 7, "queue_position": "3", "x": 1})).unwrap();
        assert_eq!(odd.status, JobStatus::Unknown("7".into()));
        assert_eq!(odd.queue_position, Some(3));
    }

    /// Issue 40 finding 11: the states RunComfy's own clients read as "still going".
    #[test]
    fn statuses_runcomfys_clients_treat_as_in_progress_are_not_unknown() {
        for (raw, want) in [
            ("pending", JobStatus::InQueue),
            ("waiting", JobStatus::InQueue),
            ("starting", JobStatus::InProgress),
            ("processing", JobStatus::InProgress),
        ] {
            let parsed: StatusResponse = serde_json::from_value(json!({"status": raw})).unwrap();
            assert_eq!(parsed.status, want, "{raw}");
            assert!(!parsed.status.is_terminal(), "{raw}");
        }
    }
}
