//! The account's balance: `GET {account API}/prod/v2/balance`, answered with `balance_usd`,
//! `currency` and `balance_microdollars` (RunComfy's CLI `balance.rs` and its MCP server's
//! `get_balance` read these). One wallet pays for every RunComfy product, so it lives on the
//! account API's host (`api.runcomfy.net`), not the model API's: a client of its own here, with
//! its own base URL setting ([`super::settings::BalanceArgs`]).
//!
//! The balance is a courtesy beside spending and estimates, never a gate: a failed read is logged
//! and the figure left out, and an answer is reused for [`TTL`] so that a burst of calls costs one
//! read. Each key has its own entry (per-user keys: each person's own wallet).

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Mutex,
    time::{Duration, Instant},
};

use reqwest::{header::HeaderValue, Method};
use serde::{Deserialize, Serialize};

use super::{
    client::bearer,
    http::{Call, Http, Settings},
    ApiError, ApiToken,
};

/// RunComfy's account API, which serves the balance (runcomfy-cli's `DEFAULT_API_BASE` host).
pub const DEFAULT_BALANCE_BASE_URL: &str = "https://api.runcomfy.net";
/// The balance's path under that base.
pub const BALANCE_PATH: &str = "/prod/v2/balance";
/// How long an answer (or a failure) is reused: long enough for a burst of calls, short enough
/// that the figure follows the jobs being paid for.
const TTL: Duration = Duration::from_secs(30);
/// A balance read waits at most this long: it only decorates an answer that is otherwise ready.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Distinct keys remembered at once (a team server's callers); past it the cache starts over.
const MAX_ENTRIES: usize = 1024;

/// `GET /prod/v2/balance`'s answer, as RunComfy's clients read it. Every field is optional and
/// unknown ones are ignored: a figure missing is a balance not shown, never an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BalanceResponse {
    /// Dollars, for reading (runcomfy-cli prints it with `currency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_usd: Option<f64>,
    /// Millionths of a dollar, for exact arithmetic (runcomfy-mcp's `get_balance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_microdollars: Option<i64>,
    /// e.g. `USD` (runcomfy-cli assumes USD when it is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl BalanceResponse {
    /// The figure in dollars: `balance_usd`, else the microdollars; `None` if neither is there.
    pub fn usd(&self) -> Option<f64> {
        self.balance_usd
            .or_else(|| self.balance_microdollars.map(|m| m as f64 / 1_000_000.0))
            .filter(|usd| usd.is_finite())
    }
}

/// A balance as shown beside spending and estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balance {
    pub usd: f64,
}

impl Balance {
    /// `$12.34`.
    pub fn text(&self) -> String {
        crate::jobs::price::usd(self.usd)
    }

    /// `your RunComfy balance ($12.34) covers about 411 such images`, for a job whose unit
    /// (`image`, `second`, …) costs `per_unit_usd`; `None` when the price says nothing (zero).
    pub fn covers(&self, per_unit_usd: f64, unit: &str) -> Option<String> {
        // NaN and zero alike say nothing.
        if per_unit_usd.is_nan() || per_unit_usd <= 0.0 {
            return None;
        }
        // The epsilon: $1.00 at $0.10 is 10 units, not the 9.999… of binary floating point.
        let units = (self.usd.max(0.0) / per_unit_usd + 1e-9).floor() as u64;
        let unit = match unit {
            "second" => "seconds of such output".to_owned(),
            unit if units == 1 => format!("such {unit}"),
            unit => format!("such {unit}s"),
        };
        Some(format!(
            "your RunComfy balance ({}) covers about {} {unit}",
            self.text(),
            crate::text::thousands(units as usize)
        ))
    }
}

/// Reads the balance for a key, through its own HTTP client, and remembers the answers briefly.
#[derive(Debug)]
pub struct BalanceReader {
    http: Http,
    url: String,
    /// The server's own key's header; `None` with per-user keys (each read brings its caller's).
    authorization: Option<HeaderValue>,
    cache: Mutex<HashMap<u64, (Instant, Option<Balance>)>>,
}

impl BalanceReader {
    /// A reader of `{base_url}/prod/v2/balance` with `token` as the server's key.
    pub fn new(base_url: &str, token: Option<&ApiToken>, timeout: Duration) -> Result<Self, String> {
        let base = reqwest::Url::parse(base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| format!("the balance base URL {base_url:?} is not an http(s) URL"))?;
        let timeout = timeout.min(READ_TIMEOUT);
        let settings = Settings {
            timeout,
            connect_timeout: timeout,
            user_agent: concat!("runcomfy-mcp/", env!("CARGO_PKG_VERSION")),
            max_answer_bytes: 64 * 1024,
        };
        Ok(Self {
            http: Http::for_base(&base, settings)?,
            url: format!("{}{BALANCE_PATH}", base_url.trim_end_matches('/')),
            authorization: token.and_then(bearer),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The balance of `key`'s account (`None`: the server's key), or `None` when it cannot be
    /// read. Never an error: the callers show it when they have it.
    pub async fn read(&self, key: Option<&ApiToken>) -> Option<Balance> {
        let slot = key.map_or(0, |key| {
            let mut hasher = DefaultHasher::new();
            key.expose().hash(&mut hasher);
            hasher.finish() | 1
        });
        if let Some((at, balance)) = self.lock().get(&slot) {
            if at.elapsed() < TTL {
                return *balance;
            }
        }
        let balance = match self.fetch(key).await {
            Ok(balance) => balance,
            Err(error) => {
                tracing::info!(kind = error.kind(), %error, "the RunComfy balance could not be read; it is left out");
                None
            }
        };
        let mut cache = self.lock();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(slot, (Instant::now(), balance));
        balance
    }

    async fn fetch(&self, key: Option<&ApiToken>) -> Result<Option<Balance>, ApiError> {
        let authorization = match key {
            Some(key) => bearer(key),
            None => self.authorization.clone(),
        };
        let Some(authorization) = authorization else {
            return Ok(None);
        };
        let answer = self
            .http
            .send(Call {
                method: Method::GET,
                url: &self.url,
                authorization,
                body: None,
                timeout: None,
            })
            .await
            .map_err(|_| ApiError::Unreachable {
                detail: "no answer from the balance endpoint".to_owned(),
            })?;
        if let Some(error) = ApiError::from_answer(answer.status, answer.retry_after, &answer.body) {
            return Err(error);
        }
        let parsed: BalanceResponse = serde_json::from_slice(&answer.body).map_err(|e| ApiError::InvalidResponse {
            status: answer.status,
            detail: format!("not a balance ({e})"),
        })?;
        Ok(parsed.usd().map(|usd| Balance { usd }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Instant, Option<Balance>)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_read_in_dollars_or_microdollars() {
        let both: BalanceResponse =
            serde_json::from_str(r#"{"balance_usd": 12.5, "balance_microdollars": 12500000, "currency": "USD"}"#)
                .unwrap();
        assert_eq!(both.usd(), Some(12.5));
        let micro: BalanceResponse = serde_json::from_str(r#"{"balance_microdollars": 1250000}"#).unwrap();
        assert_eq!(micro.usd(), Some(1.25));
        let neither: BalanceResponse = serde_json::from_str(r#"{"currency": "USD", "other": 1}"#).unwrap();
        assert_eq!(neither.usd(), None);
    }

    #[test]
    fn the_balance_says_how_many_such_units_it_covers() {
        let balance = Balance { usd: 12.34 };
        assert_eq!(
            balance.covers(0.03, "image").as_deref(),
            Some("your RunComfy balance ($12.34) covers about 411 such images")
        );
        assert_eq!(
            Balance { usd: 0.05 }.covers(0.03, "image").as_deref(),
            Some("your RunComfy balance ($0.05) covers about 1 such image")
        );
        assert_eq!(
            Balance { usd: 1.0 }.covers(0.1, "second").as_deref(),
            Some("your RunComfy balance ($1.00) covers about 10 seconds of such output")
        );
        assert_eq!(balance.covers(0.0, "image"), None);
    }
}
