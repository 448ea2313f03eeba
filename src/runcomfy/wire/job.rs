//! The answers of the job endpoints: submit, status, result and cancel.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{
    lenient::{lenient_cost, lenient_u32},
    JobStatus, Output,
};

#[derive(Debug, Clone, Deserialize)]
pub struct SubmitResponse {
    pub request_id: String,
    // The URLs are informative only: we always build them from the request id, so a missing or
    // odd URL in an answer cannot send our next call somewhere else.
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusResponse {
    #[serde(default)]
    pub request_id: Option<String>,
    pub status: JobStatus,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub queue_position: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResultResponse {
    #[serde(default)]
    pub request_id: Option<String>,
    pub status: JobStatus,
    /// Boxed: a result travels in enums beside small statuses.
    #[serde(default)]
    pub output: Option<Box<Output>>,
    /// Free-form: whatever the upstream said went wrong.
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub created_at: Option<Value>,
    #[serde(default)]
    pub finished_at: Option<Value>,
    /// What the job cost, in US dollars, when asked for with `include_cost=true`. Only a finite,
    /// non-negative number counts: anything else is "not known", never a cost of 0.
    #[serde(default, deserialize_with = "lenient_cost")]
    pub cost: Option<f64>,
}

impl ResultResponse {
    /// What RunComfy said went wrong, as text, when it said anything.
    pub fn error_message(&self) -> Option<String> {
        self.error
            .as_ref()
            .filter(|e| !e.is_null())
            .map(crate::runcomfy::error::free_form_message)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CancelResponse {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub status: Option<JobStatus>,
    #[serde(default)]
    pub outcome: Option<CancelOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    NotCancellable,
    Unknown(String),
}

impl<'de> Deserialize<'de> for CancelOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(match value.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("cancelled" | "canceled") => Self::Cancelled,
            Some("not_cancellable" | "not_cancelable") => Self::NotCancellable,
            _ => Self::Unknown(value.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cost_counts_only_when_it_is_a_real_amount() {
        for (raw, want) in [
            (json!(0.03), Some(0.03)),
            (json!("0.5"), Some(0.5)),
            (json!(0), Some(0.0)),
            (json!(-1), None),
            (json!(true), None),
            (json!(null), None),
        ] {
            let r: ResultResponse = serde_json::from_value(json!({"status": "succeeded", "cost": raw})).unwrap();
            assert_eq!(r.cost, want, "{raw}");
        }
    }
}
