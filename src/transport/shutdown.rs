//! Graceful shutdown of the HTTP server: the signal that starts it, and the count of tool calls
//! still running that it waits for.
//!
//! On SIGINT or SIGTERM the server stops accepting connections, lets the calls in flight finish
//! within a grace period, then closes every session (which ends the long-lived SSE streams that
//! would otherwise keep the process up forever).

use std::time::Duration;

use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM (what `docker stop` and Kubernetes send).
pub async fn signal() -> &'static str {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => "SIGINT",
        _ = term => "SIGTERM",
    }
}

/// Requests in flight: each holds a [`InFlightGuard`] until its answer has been handed over.
/// A thin name over tokio-util's `TaskTracker`, whose tokens are exactly such guards.
#[derive(Clone, Default)]
pub struct InFlight(TaskTracker);

pub type InFlightGuard = TaskTrackerToken;

impl InFlight {
    pub fn new() -> Self {
        Self(TaskTracker::new())
    }

    pub fn start(&self) -> InFlightGuard {
        self.0.token()
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// Waits until nothing is in flight or `grace` has passed; true if everything finished.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.0.close();
        tokio::time::timeout(grace, self.0.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_guards_and_gives_up_after_the_grace_period() {
        let in_flight = InFlight::new();
        assert!(in_flight.drain(Duration::from_millis(1)).await, "nothing in flight");

        let in_flight = InFlight::new();
        let guard = in_flight.start();
        assert_eq!(in_flight.count(), 1);
        assert!(
            !in_flight.drain(Duration::from_millis(10)).await,
            "a guard is still held"
        );
        // Polled by hand: the drain is seen waiting, then done as soon as the guard goes.
        let mut drain = std::pin::pin!(in_flight.drain(Duration::from_secs(10)));
        assert!(futures::poll!(drain.as_mut()).is_pending());
        drop(guard);
        assert_eq!(futures::poll!(drain.as_mut()), std::task::Poll::Ready(true));
    }
}
