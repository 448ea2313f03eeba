//! The simulator's own wire types: response bodies, error bodies, request ids and timestamps.
//!
//! Deliberately separate from the client's types (the simulator shares no code with it) so that
//! a misread field name in one shows up as a failing test instead of cancelling out.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::input::Violation;

#[derive(Debug, Serialize)]
pub(crate) struct SubmitResponse {
    pub(crate) request_id: String,
    pub(crate) status_url: String,
    pub(crate) result_url: String,
    pub(crate) cancel_url: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct StatusResponse {
    pub(crate) request_id: String,
    pub(crate) status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) queue_position: Option<u32>,
    /// As documented for the status answer (docs.runcomfy.com, "Monitor Request Status").
    pub(crate) status_url: String,
    pub(crate) result_url: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ResultResponse {
    pub(crate) request_id: String,
    pub(crate) status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output: Option<Output>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) finished_at: Option<String>,
    /// Only with `include_cost=true`, once the job has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cost: Option<f64>,
}

/// A result's `output`, by the model's kind: `{"images": [...]}`, `{"video": url}` or
/// `{"audio": url}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Output {
    Images { images: Vec<String> },
    Video { video: String },
    Audio { audio: String },
}

#[derive(Debug, Serialize)]
pub(crate) struct CancelResponse {
    pub(crate) request_id: String,
    pub(crate) status: &'static str,
    pub(crate) outcome: &'static str,
}

/// An upstream-shaped error: `{"error_code", "error_message"}` with the given HTTP status.
pub(crate) fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "error_code": code, "error_message": message }))).into_response()
}

pub(crate) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, 404001, "Request not found or expired")
}

pub(crate) fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, 400004, "Invalid or missing API token")
}

pub(crate) fn validation_failed(detail: Vec<Violation>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({
            "error_code": 422001,
            "error_message": "Validation failed",
            "detail": detail,
        })),
    )
        .into_response()
}

/// A random UUID v4 string, like upstream request ids.
pub(crate) fn new_request_id() -> String {
    let mut bits: u128 = rand::random();
    bits = (bits & !(0xF << 76)) | (0x4 << 76); // version 4
    bits = (bits & !(0x3 << 62)) | (0x2 << 62); // RFC 4122 variant
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// RFC 3339 in UTC with milliseconds, e.g. `2025-09-01T12:00:00.250Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // a leap day
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
    }
}
