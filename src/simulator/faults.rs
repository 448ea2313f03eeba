//! Fault injection: rules that make the next matching requests misbehave.
//!
//! Tests of the client need the failures the real API and the network produce — 429 with
//! Retry-After, 5xx, slow answers, dropped connections, garbage bodies, unknown statuses — on
//! demand and a known number of times. Rules are checked in order, first match wins, and each
//! is used up after `times` hits.
//!
//! Only a `respond` rule with a status or body *replaces* the endpoint: the request is never
//! handled, so a faulted submit creates no job. Every other kind lets the endpoint run and then
//! mangles or drops its answer — the server did the work, the client cannot know it — which is
//! exactly the "submit sent, fate unknown" case a client must never retry automatically.
//! `respond_after` is that case with an HTTP answer: RunComfy publishes nothing that says a 429,
//! a 503 or a 500 to a submit means that no job was made, so the simulator can make the job and
//! answer with the error all the same.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Which endpoint a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEndpoint {
    Submit,
    Status,
    Result,
    Cancel,
    Image,
    /// The catalogue entry (`GET /v1/models/{id}`), where prices come from.
    Model,
    /// Every API endpoint above (never the `/__sim/` control API).
    Any,
}

/// What a rule does to a matching request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with `status` and `body` instead of the endpoint (with neither: only `delay_ms`).
    #[default]
    Respond,
    /// Handle the request (a submit makes its job), then answer with `status` (500 if none)
    /// and `body` instead of the real answer; with no `body`, an empty one.
    RespondAfter,
    /// Handle the request, then drop the connection without an answer.
    Reset,
    /// Handle the request, then answer 200 with a body that is not JSON.
    Malformed,
    /// Handle the request, then answer 200 with the first half of the real body.
    Truncated,
    /// Handle the request, then answer 200 with an empty body.
    Empty,
    /// The real answer with its `status` string replaced by `"warming_up"`.
    UnknownStatus,
    /// The real answer, its body sent in four pieces `delay_ms` apart (headers at once): a
    /// slow upstream that answers, but slowly, mid-body.
    SlowBody,
    /// The real answer sent in small chunks without a `Content-Length`, so that a client learns
    /// the size only by reading (for download size caps).
    Chunked,
    /// The real answer with its `output.images` replaced by `count` URLs (the real ones over and
    /// over, each made distinct with a `?copy=N` query, so every one can be downloaded): an
    /// upstream that lists far more outputs than a job makes.
    ManyOutputs,
    /// The real answer with its `output` moved under keys RunComfy documents nowhere
    /// (`{"artifacts": [{"url": …}], "seed": 7}`): a model whose output is not named
    /// image(s), video(s) or audio(s). RunComfy's CLI collects every URL in `output`.
    UnexpectedOutputKey,
    /// The real answer with every output URL given an `expired=1` query: a signed URL that has
    /// expired since (RunComfy publishes no lifetime for result URLs). A client that reuses an
    /// old URL instead of asking `/result` again sends this one.
    ExpiredUrls,
}

/// Output URLs a `many_outputs` rule lists when it gives no `count`.
const MANY_OUTPUTS: u32 = 20_000;

/// One fault rule, as posted to `POST /__sim/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub endpoint: FaultEndpoint,
    /// How many matching requests this rule hits before it is used up.
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default)]
    pub delay_ms: Option<u64>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub body: Option<Value>,
    /// Seconds, sent as a `Retry-After` header.
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub kind: FaultKind,
    /// Replaces the answer's `Content-Type` (e.g. `text/html` on an image).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Sent as a `Location` header: with a 3xx `status`, a redirect.
    #[serde(default)]
    pub location: Option<String>,
    /// For `many_outputs`: how many output URLs the answer lists (default 20,000).
    #[serde(default)]
    pub count: Option<u32>,
}

fn one() -> u32 {
    1
}

/// The ordered list of live rules.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    pub(crate) fn add(&self, rule: FaultRule) -> usize {
        let mut rules = self.lock();
        rules.push(rule);
        rules.len()
    }

    pub(crate) fn list(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    pub(crate) fn clear(&self) -> usize {
        std::mem::take(&mut *self.lock()).len()
    }

    /// Takes one hit of the first rule matching `endpoint`, dropping the rule when used up.
    pub(crate) fn take(&self, endpoint: FaultEndpoint) -> Option<FaultRule> {
        let mut rules = self.lock();
        let index = rules
            .iter()
            .position(|r| r.times > 0 && (r.endpoint == endpoint || r.endpoint == FaultEndpoint::Any))?;
        rules[index].times -= 1;
        let hit = rules[index].clone();
        if rules[index].times == 0 {
            rules.remove(index);
        }
        Some(hit)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Answers a request through `rule` (if any); `handle` is the real endpoint and is only run
/// when the rule does not replace it.
pub(crate) async fn apply<F>(rule: Option<FaultRule>, handle: F) -> Response
where
    F: Future<Output = Response>,
{
    let Some(rule) = rule else {
        return handle.await;
    };
    tracing::warn!(?rule, "simulator: injecting fault");
    let delay = Duration::from_millis(rule.delay_ms.unwrap_or(0));
    if rule.kind != FaultKind::SlowBody {
        tokio::time::sleep(delay).await;
    }
    let mut response = match rule.kind {
        FaultKind::Respond if rule.status.is_none() && rule.body.is_none() => handle.await,
        FaultKind::Respond => respond(&rule),
        FaultKind::RespondAfter => {
            drop(handle.await);
            respond_after(&rule)
        }
        FaultKind::Reset => {
            drop(handle.await);
            Response::new(Body::new(ResetBody))
        }
        FaultKind::Malformed => {
            drop(handle.await);
            json_response(StatusCode::OK, Body::from("{not json"))
        }
        FaultKind::Truncated => {
            let full = match &rule.body {
                Some(body) => Bytes::from(body.to_string()),
                None => body_bytes(handle.await).await,
            };
            json_response(StatusCode::OK, Body::from(full.slice(..full.len() / 2)))
        }
        FaultKind::Empty => {
            drop(handle.await);
            json_response(StatusCode::OK, Body::empty())
        }
        FaultKind::UnknownStatus => unknown_status(handle.await).await,
        FaultKind::SlowBody => slow_body(handle.await, delay).await,
        FaultKind::Chunked => chunked(handle.await).await,
        FaultKind::ManyOutputs => many_outputs(handle.await, rule.count.unwrap_or(MANY_OUTPUTS)).await,
        FaultKind::UnexpectedOutputKey => unexpected_output_key(handle.await).await,
        FaultKind::ExpiredUrls => expired_urls(handle.await).await,
    };
    if let Some(value) = rule.content_type.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if let Some(value) = rule.location.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(seconds) = rule.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn respond(rule: &FaultRule) -> Response {
    let status = rule
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body = match &rule.body {
        Some(body) => body.clone(),
        // The upstream's error shape, so a rule can be as short as {"endpoint", "status"}.
        None if status.is_client_error() || status.is_server_error() => json!({
            "error_code": u32::from(status.as_u16()) * 1000 + 1,
            "error_message": format!(
                "simulated {}",
                status.canonical_reason().unwrap_or("error")
            ),
        }),
        None => json!({}),
    };
    (status, axum::Json(body)).into_response()
}

fn respond_after(rule: &FaultRule) -> Response {
    let status = rule
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match &rule.body {
        Some(body) => (status, axum::Json(body.clone())).into_response(),
        None => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status;
            response
        }
    }
}

async fn slow_body(response: Response, gap: Duration) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = body_bytes(Response::new(body)).await;
    let piece = bytes.len().div_ceil(4).max(1);
    let pieces: Vec<Bytes> = (0..bytes.len())
        .step_by(piece)
        .map(|i| bytes.slice(i..(i + piece).min(bytes.len())))
        .collect();
    let stream = futures::stream::unfold(pieces.into_iter(), move |mut rest| async move {
        let next = rest.next()?;
        tokio::time::sleep(gap).await;
        Some((Ok::<Bytes, std::convert::Infallible>(next), rest))
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

async fn unknown_status(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = body_bytes(Response::new(body)).await;
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let Some(status) = value.get_mut("status").filter(|s| s.is_string()) {
        *status = Value::from("warming_up");
    }
    json_response(parts.status, Body::from(value.to_string()))
}

async fn many_outputs(response: Response, count: u32) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = body_bytes(Response::new(body)).await;
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let real: Vec<String> = value
        .pointer("/output/images")
        .and_then(Value::as_array)
        .map(|urls| urls.iter().filter_map(|u| u.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    // Nothing to repeat while the job runs: the answer goes out as it was.
    if real.is_empty() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let many: Vec<Value> = (0..count as usize)
        .map(|n| Value::from(format!("{}?copy={n}", real[n % real.len()])))
        .collect();
    value["output"]["images"] = Value::Array(many);
    json_response(parts.status, Body::from(value.to_string()))
}

async fn unexpected_output_key(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = body_bytes(Response::new(body)).await;
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let Some(output) = value.get("output").and_then(Value::as_object) else {
        // Nothing to move while the job runs: the answer goes out as it was.
        return Response::from_parts(parts, Body::from(bytes));
    };
    let urls: Vec<Value> = output
        .values()
        .flat_map(|v| match v {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        })
        .filter(Value::is_string)
        .map(|url| json!({ "url": url }))
        .collect();
    value["output"] = json!({ "artifacts": urls, "seed": 7 });
    json_response(parts.status, Body::from(value.to_string()))
}

async fn expired_urls(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = body_bytes(Response::new(body)).await;
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let Some(output) = value.get_mut("output").and_then(Value::as_object_mut) {
        for entry in output.values_mut() {
            let urls: Vec<&mut Value> = match entry {
                Value::Array(items) => items.iter_mut().collect(),
                other => vec![other],
            };
            for url in urls {
                if let Some(text) = url.as_str() {
                    *url = Value::from(format!("{text}?expired=1"));
                }
            }
        }
    }
    json_response(parts.status, Body::from(value.to_string()))
}

async fn chunked(response: Response) -> Response {
    const CHUNK: usize = 64 * 1024;
    let (mut parts, body) = response.into_parts();
    let bytes = body_bytes(Response::new(body)).await;
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> = (0..bytes.len())
        .step_by(CHUNK)
        .map(|at| Ok(bytes.slice(at..(at + CHUNK).min(bytes.len()))))
        .collect();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
}

async fn body_bytes(response: Response) -> Bytes {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default()
}

fn json_response(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A body that fails at once. hyper aborts the connection on a body error, and since the head
/// is still in its write buffer at that point the client sees the connection close with no
/// answer at all — the closest an axum handler gets to a reset.
struct ResetBody;

impl HttpBody for ResetBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated connection reset",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(endpoint: FaultEndpoint, times: u32) -> FaultRule {
        FaultRule {
            endpoint,
            times,
            delay_ms: None,
            status: Some(500),
            body: None,
            retry_after: None,
            kind: FaultKind::Respond,
            content_type: None,
            location: None,
            count: None,
        }
    }

    #[test]
    fn first_match_wins_and_rules_get_used_up() {
        let faults = Faults::default();
        faults.add(rule(FaultEndpoint::Status, 2));
        faults.add(rule(FaultEndpoint::Any, 1));
        assert_eq!(
            faults.take(FaultEndpoint::Status).unwrap().endpoint,
            FaultEndpoint::Status
        );
        assert_eq!(faults.take(FaultEndpoint::Submit).unwrap().endpoint, FaultEndpoint::Any);
        assert_eq!(
            faults.take(FaultEndpoint::Status).unwrap().endpoint,
            FaultEndpoint::Status
        );
        assert!(faults.take(FaultEndpoint::Status).is_none());
    }

    /// The job is made, then the answer is the rule's, with its body or with none.
    #[tokio::test]
    async fn respond_after_runs_the_endpoint_then_answers_the_rules_status() {
        for (body, expected) in [
            (None, ""),
            (Some(json!({"error_code": 429001})), r#"{"error_code":429001}"#),
        ] {
            let mut rule = rule(FaultEndpoint::Submit, 1);
            rule.kind = FaultKind::RespondAfter;
            rule.status = Some(429);
            rule.body = body;
            let ran = std::sync::atomic::AtomicBool::new(false);
            let response = apply(Some(rule), async {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                axum::Json(json!({"request_id": "made"})).into_response()
            })
            .await;
            assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(body_bytes(response).await, expected.as_bytes());
        }
    }

    #[test]
    fn rule_defaults() {
        let rule: FaultRule = serde_json::from_str(r#"{"endpoint":"any"}"#).unwrap();
        assert_eq!(rule.times, 1);
        assert_eq!(rule.kind, FaultKind::Respond);
    }
}
