//! The retry policy, in one place. Reads (status, result) and cancel are retried on transient
//! failures: 429, 5xx, timeouts, connection errors. A submit is retried only when RunComfy
//! provably did not act on it: no connection was made. There is no idempotency key, nothing
//! published says that a 429 or 503 made no job, and RunComfy's own clients never resend a paid
//! submit after any answer, so a second submit after any answer could pay twice.
//! Backoff is exponential with jitter, bounded in attempts and in total delay, and a
//! `Retry-After` from RunComfy replaces the computed delay.

use std::{future::Future, time::Duration};

use backon::{ExponentialBuilder, Retryable};

use super::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// The most time spent sleeping between attempts, all retries together.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_retries: 4,
            max_total_delay: Duration::from_secs(15),
        }
    }
}

/// What kind of call is being retried: it decides which failures are safe to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Submit,
    /// Status, result and cancel: repeating them changes nothing.
    Idempotent,
}

impl RetryPolicy {
    /// No retries: for tests and callers that handle failures themselves.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    pub async fn run<T, F, Fut>(&self, kind: CallKind, what: &'static str, call: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let backoff = ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_total_delay(Some(self.max_total_delay))
            .with_jitter();
        let max_total = self.max_total_delay;
        call.retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e: &ApiError| match kind {
                CallKind::Submit => e.provably_not_sent(),
                CallKind::Idempotent => e.is_retryable(),
            })
            // RunComfy's Retry-After wins over our schedule, unless it asks for longer than we are
            // willing to wait in all: then the error goes back to the caller at once.
            .adjust(move |e: &ApiError, planned: Option<Duration>| match (planned, e.retry_after()) {
                (None, _) => None,
                (Some(_), Some(asked)) if asked > max_total => None,
                (Some(_), Some(asked)) => Some(asked),
                (Some(planned), None) => Some(planned),
            })
            .notify(|e: &ApiError, delay: Duration| {
                tracing::warn!(call = what, kind = e.kind(), error = %e, retry_in_ms = delay.as_millis() as u64, "RunComfy call failed; retrying");
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_retries: 3,
            max_total_delay: Duration::from_secs(1),
        }
    }

    async fn attempts(kind: CallKind, error: ApiError) -> usize {
        let count = AtomicUsize::new(0);
        let _ = fast()
            .run(kind, "test", || {
                count.fetch_add(1, Ordering::SeqCst);
                let error = error.clone();
                async move { Err::<(), _>(error) }
            })
            .await;
        count.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn reads_retry_transient_failures_only() {
        let upstream = ApiError::Upstream {
            status: 502,
            code: None,
            message: "bad gateway".into(),
        };
        assert_eq!(attempts(CallKind::Idempotent, upstream).await, 4);
        assert_eq!(
            attempts(CallKind::Idempotent, ApiError::Timeout(Duration::from_secs(1))).await,
            4
        );
        assert_eq!(
            attempts(CallKind::Idempotent, ApiError::NotFound { message: "gone".into() }).await,
            1
        );
    }

    #[tokio::test]
    async fn a_submit_is_retried_only_when_it_provably_never_landed() {
        assert_eq!(
            attempts(
                CallKind::Submit,
                ApiError::Unreachable {
                    detail: "refused".into()
                }
            )
            .await,
            4
        );
        // Ambiguous: the job may exist. Issue 40 finding 5: 429 and 503 are answers, so the
        // request arrived, and nothing says that no job was made.
        assert_eq!(
            attempts(CallKind::Submit, ApiError::RateLimited { retry_after: None }).await,
            1
        );
        let unavailable = ApiError::Upstream {
            status: 503,
            code: None,
            message: "unavailable".into(),
        };
        assert_eq!(attempts(CallKind::Submit, unavailable.clone()).await, 1);
        // Reads and cancels keep their retries.
        assert_eq!(attempts(CallKind::Idempotent, unavailable).await, 4);
        assert_eq!(
            attempts(CallKind::Idempotent, ApiError::RateLimited { retry_after: None }).await,
            4
        );
        assert_eq!(
            attempts(CallKind::Submit, ApiError::Timeout(Duration::from_secs(1))).await,
            1
        );
        assert_eq!(
            attempts(CallKind::Submit, ApiError::ConnectionLost { detail: "reset".into() }).await,
            1
        );
        let internal = ApiError::Upstream {
            status: 500,
            code: None,
            message: "boom".into(),
        };
        assert_eq!(attempts(CallKind::Submit, internal).await, 1);
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_budget_is_not_waited_for() {
        let long = ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(attempts(CallKind::Idempotent, long).await, 1);
    }
}
