//! The poll loop: status polls on a schedule, an event on every change and a heartbeat in
//! between, a deadline, and cancellation that cancels the upstream job while it is still queued.
//! It reads the upstream through [`StatusSource`], so that it runs under tokio's paused clock in
//! its tests, without processes or sockets.
//!
//! Where to poll: a person feels the time between RunComfy finishing their image and the answer,
//! so the loop polls densely where the job is likely to finish and sparsely elsewhere. The
//! journal's [`History`] of the model's past runs (submit to done) says where that is: between
//! the 10th and 95th percentile of their lengths. A queued job is polled at a pace its queue
//! position sets (it cannot finish before it has run). Without history the schedule is the
//! bounded [`Backoff`]. Once a job runs, the loop polls `/result`, which answers the current
//! status until the job has ended (RunComfy's docs; its own ComfyUI nodes poll nothing else), so
//! the answer that says "done" already carries the outputs. A [`Pacer`] shared by every wait of
//! the process bounds the rate at which all of them together poll RunComfy.

mod pacer;
mod schedule;

use std::{future::Future, time::Duration};

use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::settings::POLL_DENSE_MS;
use crate::runcomfy::{ApiError, CancelResponse, Client, JobStatus, RequestId, ResultResponse, StatusResponse};
pub use pacer::Pacer;
use schedule::Planner;
#[cfg(test)]
use schedule::MIN_HISTORY;
pub use schedule::{Backoff, History};

/// What the poll loop needs of the upstream: a job's status, its result, and a cancel.
pub trait StatusSource: Sync {
    fn status(&self, id: &RequestId) -> impl Future<Output = Result<StatusResponse, ApiError>> + Send;
    /// The result: the job's current status until it has ended, then its outputs too.
    fn result(&self, id: &RequestId) -> impl Future<Output = Result<ResultResponse, ApiError>> + Send;
    fn cancel(&self, id: &RequestId) -> impl Future<Output = Result<CancelResponse, ApiError>> + Send;
}

/// The client with the server's own key; a caller's key polls through the job service's
/// `CallerClient`.
impl StatusSource for Client {
    fn status(&self, id: &RequestId) -> impl Future<Output = Result<StatusResponse, ApiError>> + Send {
        Client::status(self, None, id)
    }

    fn result(&self, id: &RequestId) -> impl Future<Output = Result<ResultResponse, ApiError>> + Send {
        Client::result(self, None, id)
    }

    fn cancel(&self, id: &RequestId) -> impl Future<Output = Result<CancelResponse, ApiError>> + Send {
        Client::cancel(self, None, id)
    }
}

#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The schedule without history, and after the likely window.
    pub backoff: Backoff,
    /// Between polls where the job is likely to finish (at least [`schedule::MIN_INTERVAL`]).
    pub dense: Duration,
    /// The model's past runs; `None`: too few known, poll by `backoff`.
    pub history: Option<History>,
    /// How long ago the job was submitted when the wait began.
    pub submitted_ago: Duration,
    /// Shared by every wait of the process; `None`: no bound across waits.
    pub pacer: Option<std::sync::Arc<Pacer>>,
    /// When to stop waiting and hand back the request id instead.
    pub deadline: Instant,
    /// The longest silence between two events.
    pub heartbeat: Duration,
    /// Consecutive poll failures tolerated before giving up. Each poll is already retried by
    /// the client's policy, so this is one more round of patience, not the main defence.
    pub max_poll_failures: u32,
    /// Stretch the first delay at random (see [`spread`]); off only where a test needs the exact
    /// schedule.
    pub spread_first_delay: bool,
}

impl WaitOptions {
    pub fn new(backoff: Backoff, max_wait: Duration) -> Self {
        Self {
            backoff,
            dense: Duration::from_millis(POLL_DENSE_MS),
            history: None,
            submitted_ago: Duration::ZERO,
            pacer: None,
            deadline: Instant::now() + max_wait,
            heartbeat: Duration::from_secs(3),
            max_poll_failures: 1,
            spread_first_delay: true,
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
    /// The job reached a terminal status; `result` is RunComfy's result when the poll that saw
    /// the end was a result poll (then nothing more need be fetched).
    Finished {
        status: StatusResponse,
        result: Option<Box<ResultResponse>>,
    },
    /// The deadline came first; the job goes on upstream.
    DeadlinePassed { last: Option<StatusResponse> },
    /// The waiter was cancelled; the upstream job was asked to cancel too.
    Cancelled {
        last: Option<StatusResponse>,
        cancel: Result<CancelResponse, ApiError>,
    },
}

/// One poll: the status while the job is queued (it carries the queue position), the result
/// once it runs.
async fn poll_once(
    source: &impl StatusSource,
    id: &RequestId,
    running: bool,
) -> Result<(StatusResponse, Option<ResultResponse>), ApiError> {
    if !running {
        return source.status(id).await.map(|s| (s, None));
    }
    let result = source.result(id).await?;
    let status = StatusResponse {
        request_id: result.request_id.clone(),
        status: result.status.clone(),
        queue_position: None,
    };
    Ok((status, Some(result)))
}

/// Waits for `id` to finish. Calls `on_event` on every change of status or queue position and at
/// least every `heartbeat`. Returns `Err` only for a poll failure that will not go away (a bad
/// token, an unknown id) or too many transient ones in a row; RunComfy's rate limiting only
/// slows the polls down.
pub async fn wait(
    source: &impl StatusSource,
    id: &RequestId,
    options: &WaitOptions,
    cancel: &CancellationToken,
    mut on_event: impl FnMut(&Event),
) -> Result<WaitOutcome, ApiError> {
    let started = Instant::now();
    let mut planner = Planner::new(options);
    let mut last: Option<StatusResponse> = None;
    let mut failures = 0;
    let mut last_event = started;
    let mut first_delay = true;
    let mut next_poll = started + planner.first(options.submitted_ago);
    // A first poll right away goes outside the pacer (each wait's start, as without history);
    // any later one takes its slot.
    let mut paced = options.pacer.is_none() || next_poll == started;
    loop {
        // Sleep until the next poll, with heartbeats in between; stop early at the deadline or
        // on cancellation.
        loop {
            let heartbeat_at = last_event + options.heartbeat;
            let wake = next_poll.min(heartbeat_at).min(options.deadline);
            if wake > Instant::now() {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(cancel_upstream(source, id, last).await),
                    _ = sleep_until(wake) => {}
                }
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
                // The poll is due: take its slot among every wait's polls (once).
                if let (false, Some(pacer)) = (paced, &options.pacer) {
                    paced = true;
                    let slot = pacer.slot(now);
                    if slot > now {
                        next_poll = slot;
                        continue;
                    }
                }
                break;
            }
        }
        let running = last.as_ref().is_some_and(|l| l.status == JobStatus::InProgress);
        let sent = Instant::now();
        let polled = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(cancel_upstream(source, id, last).await),
            polled = poll_once(source, id, running) => polled,
        };
        let mut not_before = None;
        match polled {
            Ok((state, result)) => {
                failures = 0;
                let changed = last
                    .as_ref()
                    .is_none_or(|l| l.status != state.status || l.queue_position != state.queue_position);
                if changed {
                    on_event(&event(Some(&state), started, true));
                    last_event = Instant::now();
                }
                if state.status.is_terminal() {
                    return Ok(WaitOutcome::Finished {
                        status: state,
                        result: result.map(Box::new),
                    });
                }
                last = Some(state);
            }
            Err(ApiError::RateLimited { retry_after }) => {
                let until = Instant::now() + retry_after.unwrap_or(options.backoff.max);
                tracing::debug!(%id, "status poll rate limited; polling later");
                if let Some(pacer) = &options.pacer {
                    pacer.hold(until);
                }
                not_before = Some(until);
            }
            Err(e) if e.is_retryable() && failures < options.max_poll_failures => {
                failures += 1;
                tracing::debug!(%id, failures, error = %e, "status poll failed; will poll again");
            }
            Err(e) => return Err(e),
        }
        let at = options.submitted_ago + started.elapsed();
        let delay = planner.next(at, last.as_ref());
        let stretched = first_delay && options.spread_first_delay && options.history.is_none();
        let delay = if stretched { spread(delay) } else { delay };
        next_poll = after(sent, Instant::now(), delay);
        next_poll = not_before.map_or(next_poll, |n| next_poll.max(n));
        first_delay = false;
        paced = options.pacer.is_none();
    }
}

/// When the next poll goes, for a poll sent at `sent` and answered at `answered`: `delay` after
/// the last one went, as the schedule means it, not after its answer. Counting from the answer
/// would add every round trip to every interval, and on a distant link a finished job would be
/// seen that much later (50 ms of latency made the 300 ms dense interval 350 ms). The gap
/// between two of a job's requests is still at least `delay`. An answer slower than the delay
/// still leaves half a delay before the next request, so a struggling upstream is not polled
/// back to back.
fn after(sent: Instant, answered: Instant, delay: Duration) -> Instant {
    (sent + delay).max(answered + delay / 2)
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

async fn cancel_upstream(source: &impl StatusSource, id: &RequestId, last: Option<StatusResponse>) -> WaitOutcome {
    let cancel = source.cancel(id).await;
    match &cancel {
        Ok(answer) => {
            tracing::info!(%id, outcome = ?answer.outcome, "wait cancelled by the client; upstream cancel answered")
        }
        Err(e) => tracing::warn!(%id, error = %e, "wait cancelled by the client; upstream cancel failed"),
    }
    WaitOutcome::Cancelled { last, cancel }
}

#[cfg(test)]
mod tests;
