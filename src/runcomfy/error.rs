//! One error type for everything the upstream can do wrong, built from the HTTP status and the
//! body's `error_code` (which may also arrive with HTTP 200). Each variant's message says what a
//! person or a model can do about it.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("RunComfy rejected the API token ({message}). Check RUNCOMFY_API_KEY: it may be missing, expired or revoked; create a new key in the RunComfy dashboard under API Keys.")]
    Unauthorized { message: String },

    /// RunComfy refused the caller's own key (with per-user keys): the caller's client must
    /// send another, not the server's operator change anything.
    #[error("RunComfy rejected your RunComfy API key ({message}). It may be mistyped, expired or revoked: set a valid key from the RunComfy dashboard (API Keys) in your MCP client's configuration for this server, then try again.")]
    KeyRejected { message: String },

    #[error("Your RunComfy balance is too low for this job ({message}): top up your RunComfy balance (RunComfy dashboard, Billing), then submit again.")]
    InsufficientBalance { message: String },

    #[error(
        "This API key has no permission for the request ({message}). Check the key's scope in the RunComfy dashboard."
    )]
    Forbidden { message: String },

    #[error("RunComfy does not know the model ({message}). Check RUNCOMFY_MODEL / --model (default bytedance/dreamina-4-0/text-to-image).")]
    ModelNotFound { message: String },

    #[error("RunComfy has no such request ({message}). The request_id may be mistyped, or RunComfy no longer keeps the job: call list_jobs for the request_ids of the jobs recorded here.")]
    NotFound { message: String },

    #[error("RunComfy rejected the input: {message}{}", detail_suffix(.detail))]
    Validation { message: String, detail: Option<Value> },

    #[error("RunComfy is rate limiting requests{}. Wait a little and try again.", retry_after_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },

    #[error("RunComfy had a server error (HTTP {status}{}): {message}. This is usually temporary; try again shortly.", code_suffix(.code))]
    Upstream {
        status: u16,
        code: Option<i64>,
        message: String,
    },

    #[error("RunComfy did not answer within {0:?}.")]
    Timeout(Duration),

    /// The request never reached RunComfy (connection refused, DNS failure): safe to send again.
    #[error("Could not reach RunComfy ({detail}). Check the network connection and RUNCOMFY_BASE_URL.")]
    Unreachable { detail: String },

    /// The connection failed after the request may have been sent: its effect is unknown.
    #[error("The connection to RunComfy failed before an answer arrived ({detail}).")]
    ConnectionLost { detail: String },

    #[error("RunComfy sent an answer this server could not read (HTTP {status}): {detail}.")]
    InvalidResponse { status: u16, detail: String },
}

fn detail_suffix(detail: &Option<Value>) -> String {
    match detail {
        Some(Value::Array(items)) if !items.is_empty() => {
            let parts: Vec<String> = items.iter().map(describe_detail_item).collect();
            format!(" ({})", parts.join("; "))
        }
        Some(Value::String(s)) if !s.is_empty() => format!(" ({s})"),
        Some(v @ Value::Object(_)) => format!(" ({v})"),
        _ => String::new(),
    }
}

/// FastAPI-style `{"loc": ["body", "prompt"], "msg": "..."}` becomes `prompt: ...`.
fn describe_detail_item(item: &Value) -> String {
    let msg = item.get("msg").and_then(Value::as_str);
    let loc = item.get("loc").and_then(Value::as_array).map(|loc| {
        loc.iter()
            .filter(|p| p.as_str() != Some("body"))
            .map(|p| p.as_str().map(str::to_owned).unwrap_or_else(|| p.to_string()))
            .collect::<Vec<_>>()
            .join(".")
    });
    match (loc, msg) {
        (Some(loc), Some(msg)) if !loc.is_empty() => format!("{loc}: {msg}"),
        (_, Some(msg)) => msg.to_owned(),
        _ => item.to_string(),
    }
}

fn retry_after_suffix(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (retry after {} s)", d.as_secs()))
        .unwrap_or_default()
}

fn code_suffix(code: &Option<i64>) -> String {
    code.map(|c| format!(", error_code {c}")).unwrap_or_default()
}

impl ApiError {
    /// Whether the same call may succeed if made again later. Used by the retry policy for reads
    /// (an unreadable answer to a read is worth another look); a submit is retried only on
    /// [`ApiError::provably_not_sent`].
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Timeout(_)
            | Self::Unreachable { .. }
            | Self::ConnectionLost { .. }
            | Self::InvalidResponse { .. } => true,
            Self::Upstream { status, .. } => *status >= 500 || *status == 0,
            _ => false,
        }
    }

    /// True when RunComfy certainly did not act on the request, so a submit can be sent again
    /// without risking a second paid job: only when no connection was made. Any answer, 429 and
    /// 503 included, proves the request arrived; nothing RunComfy publishes says such an answer
    /// means no job was made, and none of its own clients sends a paid submit again after one.
    pub fn provably_not_sent(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// True when a submit failed in a way that leaves its fate unknown: the job may exist and be
    /// charged. Only a definite refusal (HTTP 400, 401, 402, 403, 404, 422, or their error codes)
    /// or a connection never made means that no job exists.
    pub fn submit_fate_unknown(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Upstream { .. } | Self::Timeout(_) | Self::ConnectionLost { .. } => true,
            // Status 0: the body could not even be written, so nothing was sent.
            Self::InvalidResponse { status, .. } => *status != 0,
            _ => false,
        }
    }

    /// What happened to a submit, said without the "try again" of the same error on a read: a
    /// submit whose fate is unknown may have made a job, and sending it again may pay twice.
    pub fn submit_failure_text(&self) -> String {
        match self {
            // Its Retry-After is left out: it invites a retry, which for this submit may pay twice.
            Self::RateLimited { .. } => "RunComfy answered the submit with HTTP 429 (rate limiting)".to_owned(),
            Self::Upstream { status, code, message } => {
                format!(
                    "RunComfy answered the submit with HTTP {status}{}: {message}",
                    code_suffix(code)
                )
            }
            Self::Timeout(after) => format!("RunComfy did not answer the submit within {} s", after.as_secs()),
            other => other.to_string().trim_end_matches('.').to_owned(),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// A short stable name for the class of error, for structured output and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "unauthorized",
            Self::KeyRejected { .. } => "key_rejected",
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::Forbidden { .. } => "forbidden",
            Self::ModelNotFound { .. } => "model_not_found",
            Self::NotFound { .. } => "not_found",
            Self::Validation { .. } => "validation",
            Self::RateLimited { .. } => "rate_limited",
            Self::Upstream { .. } => "upstream_error",
            Self::Timeout(_) => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::ConnectionLost { .. } => "connection_lost",
            Self::InvalidResponse { .. } => "invalid_response",
        }
    }

    /// Builds the error for an answer that carries one: a non-2xx status, or any status with a
    /// top-level `error_code`. Returns `None` for a 2xx answer without `error_code`.
    pub fn from_answer(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Option<Self> {
        if (200..300).contains(&status) && success_code(body).is_none() {
            return None;
        }
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let code = json.as_ref().and_then(|j| j.get("error_code")).and_then(as_code);
        if (200..300).contains(&status) && code.is_none() {
            return None;
        }
        let message = json
            .as_ref()
            .and_then(error_message)
            .unwrap_or_else(|| fallback_message(status, body));
        let detail = json
            .as_ref()
            .and_then(|j| j.get("detail"))
            .filter(|d| !d.is_string())
            .cloned();
        Some(Self::classify(status, code, message, detail, retry_after))
    }

    fn classify(
        status: u16,
        code: Option<i64>,
        message: String,
        detail: Option<Value>,
        retry_after: Option<Duration>,
    ) -> Self {
        match code {
            Some(400001) => return Self::ModelNotFound { message },
            Some(400002) => return Self::InsufficientBalance { message },
            Some(400004 | 401001) => return Self::Unauthorized { message },
            Some(403001) => return Self::Forbidden { message },
            Some(404001) => return Self::NotFound { message },
            Some(422001) => return Self::Validation { message, detail },
            Some(429001) => return Self::RateLimited { retry_after },
            Some(500001) => {
                return Self::Upstream {
                    status: status.max(500),
                    code,
                    message,
                }
            }
            _ => {}
        }
        match status {
            401 => Self::Unauthorized { message },
            402 => Self::InsufficientBalance { message },
            403 => Self::Forbidden { message },
            404 => Self::NotFound { message },
            400 | 422 => Self::Validation { message, detail },
            429 => Self::RateLimited { retry_after },
            _ => Self::Upstream { status, code, message },
        }
    }
}

/// The error code of a success answer (RunComfy sends a few errors with a 2xx status), read
/// without building the whole answer as a tree: every status poll comes through here.
fn success_code(body: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Code {
        error_code: Option<Value>,
    }
    serde_json::from_slice::<Code>(body)
        .ok()?
        .error_code
        .as_ref()
        .and_then(as_code)
}

fn as_code(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The message an error body carries, under any of the keys RunComfy uses.
fn error_message(json: &Value) -> Option<String> {
    for key in ["error_message", "message", "error", "detail"] {
        match json.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.trim().to_owned()),
            Some(Value::Object(o)) => {
                if let Some(inner) = error_message(&Value::Object(o.clone())) {
                    return Some(inner);
                }
            }
            _ => {}
        }
    }
    None
}

/// A free-form error (a failed job's `error`) as text: its message when it has one, else the JSON.
pub(super) fn free_form_message(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        other => error_message(other).unwrap_or_else(|| other.to_string()),
    }
}

fn fallback_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        // Bodies can be whole HTML pages: keep the message short.
        let short: String = text.chars().take(200).collect();
        format!("HTTP {status}: {short}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> ApiError {
        ApiError::from_answer(status, None, body.as_bytes()).expect("an error")
    }

    #[test]
    fn codes_win_over_http_status_and_200_can_carry_an_error() {
        assert!(matches!(
            err(200, r#"{"error_code":400002,"error_message":"no money"}"#),
            ApiError::InsufficientBalance { .. }
        ));
        assert!(matches!(err(402, "{}"), ApiError::InsufficientBalance { .. }));
        assert!(matches!(
            err(401, r#"{"error_code":"400004"}"#),
            ApiError::Unauthorized { .. }
        ));
        assert!(matches!(
            err(404, r#"{"error_code":404001,"message":"gone"}"#),
            ApiError::NotFound { .. }
        ));
        assert!(matches!(
            err(503, "<html>bad gateway</html>"),
            ApiError::Upstream { status: 503, .. }
        ));
        assert!(ApiError::from_answer(200, None, br#"{"request_id":"x"}"#).is_none());
    }

    #[test]
    fn validation_detail_is_readable() {
        let e = err(
            422,
            r#"{"error_code":422001,"error_message":"Validation failed","detail":[{"loc":["body","prompt"],"msg":"too long"}]}"#,
        );
        assert_eq!(
            e.to_string(),
            "RunComfy rejected the input: Validation failed (prompt: too long)"
        );
    }

    #[test]
    fn rate_limit_keeps_retry_after() {
        let e = ApiError::from_answer(429, Some(Duration::from_secs(3)), b"").unwrap();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("retry after 3 s"));
    }

    /// Issue 40 finding 5: only a connection never made proves a submit made no job; every
    /// answer but a definite refusal leaves its fate unknown, and says so without "try again".
    #[test]
    fn only_a_connection_never_made_proves_a_submit_was_not_sent() {
        let unknown = [
            ApiError::from_answer(429, Some(Duration::from_secs(60)), b"").unwrap(),
            err(429, ""),
            err(429, r#"{"error_code":429001,"error_message":"slow down"}"#),
            err(503, ""),
            err(503, r#"{"error_message":"overloaded"}"#),
            err(500, r#"{"error_code":500001,"error_message":"boom"}"#),
            err(502, "<html>bad gateway</html>"),
            err(200, r#"{"error_code":500001}"#),
            ApiError::Timeout(Duration::from_secs(30)),
            ApiError::ConnectionLost { detail: "reset".into() },
            ApiError::InvalidResponse {
                status: 200,
                detail: "empty body".into(),
            },
        ];
        for e in &unknown {
            assert!(!e.provably_not_sent(), "{e:?}");
            assert!(e.submit_fate_unknown(), "{e:?}");
            let text = e.submit_failure_text().to_lowercase();
            assert!(!text.contains("try again") && !text.contains("retry"), "{text}");
        }
        for status in [400, 401, 402, 403, 404, 422] {
            let refused = err(status, "{}");
            assert!(!refused.submit_fate_unknown(), "{status}: {refused:?}");
            assert!(!refused.provably_not_sent(), "{status}");
        }
        let unreachable = ApiError::Unreachable {
            detail: "connection refused".into(),
        };
        assert!(unreachable.provably_not_sent() && !unreachable.submit_fate_unknown());
        assert_eq!(
            err(503, "").submit_failure_text(),
            "RunComfy answered the submit with HTTP 503: HTTP 503 with an empty body"
        );
    }

    /// Issue 35 finding 5: an unknown request id points to list_jobs, never to paying again.
    #[test]
    fn an_unknown_request_points_to_list_jobs_not_to_a_new_submit() {
        let text = err(404, r#"{"error_code":404001,"message":"not found"}"#).to_string();
        assert!(text.contains("list_jobs"), "{text}");
        assert!(!text.contains("submit a new"), "{text}");
    }
}
