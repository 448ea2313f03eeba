//! The client for the four RunComfy calls: their URLs, keys and retries, one shared HTTP stack
//! (connection pool, rustls, a timeout on every call: [`super::http`]), and every answer
//! classified into [`ApiError`] in one place.
//!
//! Every call goes with a key: `None` is the server's own (its `Authorization` header built once,
//! the default and fast path), `Some` a caller's (with `--per-user-keys`: the header is built for
//! that call and dropped after it; the key is never logged).

use std::{sync::Arc, time::Duration};

use reqwest::{header, Method};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::{
    http::{Call, Failure, Http, Settings},
    ApiError, ApiToken, CallKind, CancelResponse, ModelInfo, ModelPage, RequestId, ResultResponse, RetryPolicy,
    StatusResponse, SubmitResponse,
};

/// The most API requests in flight at once, over all tool calls of the process. Each one holds an
/// HTTP/1.1 connection (~40 KB with its buffers and task): without a bound, a thousand waiting
/// calls polling at the same instant open a thousand connections (measured: 1,500 sockets and
/// +40 MB). Past the bound, a request waits its turn for a few milliseconds, which also spreads a
/// burst of polls out for the upstream.
const MAX_IN_FLIGHT: usize = 64;

/// API answers are small JSON documents; anything larger is not an answer we can use.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The largest submit body RunComfy takes (its own client's figure): reference images sent as
/// data URIs count towards it.
pub const MAX_SUBMIT_BYTES: usize = 64 * 1024 * 1024;

/// The upload speed a submit's deadline allows for its body: 1 MiB/s (8 Mbit/s), a modest home
/// uplink. A 64 MiB submit then gets the timeout plus 64 s, about the 100 s RunComfy's own
/// client allows a POST; a small one keeps the timeout. A submit cut off by its deadline has an
/// unknown fate, so the deadline must not be the reason a large one fails.
const UPLOAD_BYTES_PER_SEC: u64 = 1024 * 1024;

/// The deadline of a call that sends `body_bytes`: the timeout, plus the body's upload time.
fn deadline_for(timeout: Duration, body_bytes: usize) -> Duration {
    timeout + Duration::from_millis(body_bytes as u64 * 1000 / UPLOAD_BYTES_PER_SEC)
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// e.g. `https://model-api.runcomfy.net`, without a trailing slash.
    pub base_url: String,
    /// The server's own key; `None` with per-user keys, where every call carries the caller's.
    pub token: Option<ApiToken>,
    /// e.g. `bytedance/dreamina-4-0/text-to-image`.
    pub model: String,
    /// Bound on each HTTP call, connect to last byte.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone)]
pub struct Client {
    http: Http,
    config: ClientConfig,
    /// `config.base_url` parsed once: each call's URL is this plus path segments, instead of a
    /// string parsed again (host, IDNA and all: about 8k instructions a call).
    base: reqwest::Url,
    /// `{base}/v1/requests/`, the start of every per-job URL: a request id is letters, digits,
    /// `-` and `_` (checked when it is read), so appending it needs no encoding, and a status
    /// call does not pay `Url`'s path parser (3.6k instructions).
    requests: String,
    /// The `Authorization` header of the server's own key, built once; `None` without one, or
    /// if the token cannot be a header value (then each call fails with `Unauthorized`, saying so).
    authorization: Option<header::HeaderValue>,
    /// Bounds the requests in flight, and so the connections open, to the upstream.
    in_flight: Arc<Semaphore>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, String> {
        let mut config = config;
        config.base_url = config.base_url.trim_end_matches('/').to_owned();
        let base = reqwest::Url::parse(&config.base_url)
            .ok()
            .filter(|url| !url.cannot_be_a_base())
            .ok_or_else(|| format!("the base URL {:?} is not an http(s) URL", config.base_url))?;
        if base.query().is_some() || base.fragment().is_some() {
            return Err(format!(
                "the base URL {:?} has a query or fragment: give the API's root, e.g. https://model-api.runcomfy.net",
                config.base_url
            ));
        }
        let settings = Settings {
            timeout: config.timeout,
            connect_timeout: config.timeout.min(Duration::from_secs(10)),
            user_agent: concat!("runcomfy-mcp/", env!("CARGO_PKG_VERSION")),
            max_answer_bytes: MAX_ANSWER_BYTES,
        };
        let http = Http::for_base(&base, settings)?;
        let authorization = config.token.as_ref().and_then(bearer);
        let requests = format!("{}/", url_with(&base, ["v1", "requests"]));
        Ok(Self {
            http,
            config,
            base,
            requests,
            authorization,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// The API's root, as configured (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Submits a job to the configured model with the server's key.
    pub async fn submit(&self, input: &Value) -> Result<RequestId, ApiError> {
        self.submit_to(None, &self.config.model, input).await
    }

    /// Submits a job to `model` (a model id such as `bytedance/dreamina-4-0/edit`, checked at
    /// start like `--model`), with `key` (`None`: the server's). The body is the model input
    /// exactly as RunComfy expects it.
    ///
    /// There is no idempotency key, so the retry policy sends a submit again only when the
    /// failure proves the job was not created ([`ApiError::provably_not_sent`]).
    pub async fn submit_to(&self, key: Option<&ApiToken>, model: &str, input: &Value) -> Result<RequestId, ApiError> {
        let url = self.url(["v1", "models"].into_iter().chain(model.split('/')));
        let answer: SubmitResponse = self
            .config
            .retry
            .run(CallKind::Submit, "submit", || {
                self.call(key, Method::POST, &url, Some(input))
            })
            .await?;
        RequestId::parse(&answer.request_id).map_err(|e| ApiError::InvalidResponse {
            status: 200,
            detail: format!("the submit answer carried an unusable request_id: {e}"),
        })
    }

    pub async fn status(&self, key: Option<&ApiToken>, id: &RequestId) -> Result<StatusResponse, ApiError> {
        let url = self.request_url(id, "status");
        self.config
            .retry
            .run(CallKind::Idempotent, "status", || {
                self.call(key, Method::GET, &url, None)
            })
            .await
    }

    /// The result with its cost (`include_cost=true`, as RunComfy's own clients ask for it).
    pub async fn result(&self, key: Option<&ApiToken>, id: &RequestId) -> Result<ResultResponse, ApiError> {
        let mut url = self.request_url(id, "result");
        url.push_str("?include_cost=true");
        self.config
            .retry
            .run(CallKind::Idempotent, "result", || {
                self.call(key, Method::GET, &url, None)
            })
            .await
    }

    /// `model`'s catalogue entry, with its price (a model id checked at start like `--model`).
    pub async fn model_info(&self, key: Option<&ApiToken>, model: &str) -> Result<ModelInfo, ApiError> {
        let url = self.url(["v1", "models"].into_iter().chain(model.split('/')));
        self.config
            .retry
            .run(CallKind::Idempotent, "model", || {
                self.call(key, Method::GET, &url, None)
            })
            .await
    }

    /// One page of the model catalogue, every entry with its input schema, read with `key`
    /// (`None`: the server's): RunComfy authenticates catalogue reads like any other.
    pub async fn model_page(&self, key: Option<&ApiToken>, offset: u64, limit: u32) -> Result<ModelPage, ApiError> {
        let mut url = url_with(&self.base, ["v1", "models"]);
        url.query_pairs_mut()
            .append_pair("include_schema", "true")
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string());
        let url = String::from(url);
        // An answer too large to read would be as large again: it comes back at once (the
        // catalogue then asks for a smaller page) instead of through the retries.
        self.config
            .retry
            .run(CallKind::Idempotent, "models", || async {
                match self.call::<ModelPage>(key, Method::GET, &url, None).await {
                    Err(e) if answer_too_large(&e) => Ok(Err(e)),
                    answer => answer.map(Ok),
                }
            })
            .await?
    }

    /// The catalogue's categories (`GET /v1/models/categories`), in whatever shape RunComfy sends.
    pub async fn model_categories(&self, key: Option<&ApiToken>) -> Result<Value, ApiError> {
        let url = self.url(["v1", "models", "categories"]);
        self.config
            .retry
            .run(CallKind::Idempotent, "categories", || {
                self.call(key, Method::GET, &url, None)
            })
            .await
    }

    /// Cancelling twice has the effect of cancelling once, so it is retried like a read.
    pub async fn cancel(&self, key: Option<&ApiToken>, id: &RequestId) -> Result<CancelResponse, ApiError> {
        let url = self.request_url(id, "cancel");
        self.config
            .retry
            .run(CallKind::Idempotent, "cancel", || {
                self.call(key, Method::POST, &url, None)
            })
            .await
    }

    /// URLs are always built from our base URL and a checked id, never taken from an answer.
    fn request_url(&self, id: &RequestId, action: &str) -> String {
        [self.requests.as_str(), id.as_str(), "/", action].concat()
    }

    /// The base URL with these path segments after its own.
    fn url<'a>(&self, segments: impl IntoIterator<Item = &'a str>) -> String {
        url_with(&self.base, segments).into()
    }

    async fn call<T: DeserializeOwned>(
        &self,
        key: Option<&ApiToken>,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let authorization = match (key, &self.authorization) {
            (Some(key), _) => bearer(key).ok_or_else(|| ApiError::KeyRejected {
                message: "the key is not a valid HTTP header value".to_owned(),
            })?,
            (None, Some(value)) => value.clone(),
            (None, None) => {
                return Err(match &self.config.token {
                    Some(_) => ApiError::Unauthorized {
                        message: "the server's RunComfy key is not a valid HTTP header value".to_owned(),
                    },
                    None => ApiError::Unauthorized {
                        message: "this server has no RunComfy key of its own, and the call carried none".to_owned(),
                    },
                })
            }
        };
        let body = match body.map(serde_json::to_vec).transpose() {
            Ok(body) => body,
            Err(e) => {
                return Err(ApiError::InvalidResponse {
                    status: 0,
                    detail: format!("cannot write the request body: {e}"),
                })
            }
        };
        // Held until the answer is read: the connection is busy until then. The semaphore is
        // never closed, so acquiring cannot fail; without a permit the call would go ahead anyway.
        let _permit = self.in_flight.acquire().await.ok();
        let deadline = deadline_for(self.config.timeout, body.as_ref().map_or(0, Vec::len));
        let started = std::time::Instant::now();
        let answer = self
            .http
            .send(Call {
                method: method.clone(),
                url,
                authorization,
                body,
                timeout: Some(deadline),
            })
            .await
            .map_err(|failure| match failure {
                // A connect error means nothing was sent; anything later (timeout, reset) is ambiguous.
                Failure::Connect(detail) => ApiError::Unreachable { detail },
                Failure::Timeout => ApiError::Timeout(deadline),
                Failure::Lost(detail) => ApiError::ConnectionLost { detail },
                Failure::TooLarge(status) => ApiError::InvalidResponse {
                    status,
                    detail: format!("{TOO_LARGE} {MAX_ANSWER_BYTES} bytes"),
                },
            })?;
        let (status, bytes) = (answer.status, answer.body);
        tracing::debug!(%method, %url, status, elapsed_ms = started.elapsed().as_millis() as u64, "runcomfy call");
        if let Some(error) = ApiError::from_answer(status, answer.retry_after, &bytes) {
            // A caller's own key refused: the caller must fix it, not the server's operator.
            let error = match (key, error) {
                (Some(_), ApiError::Unauthorized { message } | ApiError::Forbidden { message }) => {
                    ApiError::KeyRejected { message }
                }
                (_, error) => error,
            };
            tracing::debug!(kind = error.kind(), %error, "runcomfy error answer");
            return Err(error);
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidResponse {
            status,
            detail: if bytes.is_empty() {
                "empty body".to_owned()
            } else {
                format!("not the expected JSON ({e})")
            },
        })
    }
}

/// True when `error` says the answer was larger than this client reads: the catalogue then asks
/// for smaller pages, so that one oversized entry costs that entry, not the whole catalogue.
pub(crate) fn answer_too_large(error: &ApiError) -> bool {
    matches!(error, ApiError::InvalidResponse { detail, .. } if detail.starts_with(TOO_LARGE))
}

const TOO_LARGE: &str = "the answer is larger than";

/// `base` with these path segments after its own, each percent-encoded as one segment.
fn url_with<'a>(base: &reqwest::Url, segments: impl IntoIterator<Item = &'a str>) -> reqwest::Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("checked in new: the base URL can be a base")
        .pop_if_empty()
        .extend(segments);
    url
}

/// `Bearer <key>`, marked sensitive (never shown by the HTTP stack's own debug output).
pub(super) fn bearer(key: &ApiToken) -> Option<header::HeaderValue> {
    let mut value = header::HeaderValue::try_from(format!("Bearer {}", key.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str) -> ClientConfig {
        ClientConfig {
            base_url: base_url.to_owned(),
            token: None,
            model: "bytedance/dreamina-4-0/text-to-image".to_owned(),
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    fn client(base_url: &str) -> Client {
        Client::new(config(base_url)).expect("a valid base URL")
    }

    /// The per-job URLs are concatenated strings for speed; they must be exactly what the
    /// segment-encoding builder gives, whatever shape the base URL has.
    #[test]
    fn job_urls_are_the_base_plus_encoded_segments_for_every_base_shape() {
        let id = RequestId::parse("a1B2-c3_d4").unwrap();
        for base in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "https://model-api.runcomfy.net/prefix",
            "https://model-api.runcomfy.net/prefix/",
            "https://model-api.runcomfy.net/a%20b/c",
        ] {
            let client = client(base);
            for action in ["status", "result", "cancel"] {
                let built = url_with(&client.base, ["v1", "requests", id.as_str(), action]);
                assert_eq!(
                    client.request_url(&id, action),
                    built.as_str(),
                    "base {base:?}, {action}"
                );
            }
        }
        assert_eq!(
            client("https://model-api.runcomfy.net/").request_url(&id, "status"),
            "https://model-api.runcomfy.net/v1/requests/a1B2-c3_d4/status"
        );
    }

    /// Issue 40 finding 6: a submit's deadline grows with its body, so that a 64 MiB submit gets
    /// about the 100 s RunComfy's own client allows, and a call without a body keeps the timeout.
    #[test]
    fn a_submit_deadline_grows_with_its_body() {
        let timeout = Duration::from_secs(30);
        assert_eq!(deadline_for(timeout, 0), timeout);
        assert_eq!(deadline_for(timeout, 2_000), Duration::from_millis(30_001));
        assert_eq!(deadline_for(timeout, MAX_SUBMIT_BYTES), Duration::from_secs(94));
    }

    #[test]
    fn a_base_url_with_a_query_or_fragment_is_refused() {
        for base in [
            "https://model-api.runcomfy.net/?x=1",
            "https://model-api.runcomfy.net/#top",
        ] {
            let error = Client::new(config(base)).unwrap_err();
            assert!(error.contains("query or fragment"), "{error}");
        }
    }
}
