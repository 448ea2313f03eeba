//! The poll loop: status polls on a backoff schedule, an event on every change and a heartbeat in
//! between, a deadline, and cancellation that cancels the upstream job while it is still queued.
//! It reads the upstream through [`StatusSource`], so that it runs under tokio's paused clock in
//! its tests, without processes or sockets.

use std::{future::Future, time::Duration};

use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::settings::{POLL_FIRST_MS, POLL_MAX_MS};
use crate::runcomfy::{ApiError, CancelResponse, Client, JobStatus, RequestId, StatusResponse};

/// What the poll loop needs of the upstream: a job's status, and a cancel.
pub trait StatusSource: Sync {
    fn status(&self, id: &RequestId) -> impl Future<Output = Result<StatusResponse, ApiError>> + Send;
    fn cancel(&self, id: &RequestId) -> impl Future<Output = Result<CancelResponse, ApiError>> + Send;
}

/// The client with the server's own key; a caller's key polls through the job service's
/// `CallerClient`.
impl StatusSource for Client {
    fn status(&self, id: &RequestId) -> impl Future<Output = Result<StatusResponse, ApiError>> + Send {
        Client::status(self, None, id)
    }

    fn cancel(&self, id: &RequestId) -> impl Future<Output = Result<CancelResponse, ApiError>> + Send {
        Client::cancel(self, None, id)
    }
}

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
            first: Duration::from_millis(POLL_FIRST_MS),
            factor: 1.5,
            max: Duration::from_millis(POLL_MAX_MS),
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
    /// Stretch the first delay at random (see [`spread`]); off only where a test needs the exact
    /// schedule.
    pub spread_first_delay: bool,
}

impl WaitOptions {
    pub fn new(backoff: Backoff, max_wait: Duration) -> Self {
        Self {
            backoff,
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
    source: &impl StatusSource,
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
            _ = cancel.cancelled() => return Ok(cancel_upstream(source, id, last).await),
            polled = source.status(id) => polled,
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
        let stretched = first_delay && options.spread_first_delay;
        let next_poll = Instant::now() + if stretched { spread(delay) } else { delay };
        first_delay = false;
        // Sleep until the next poll, with heartbeats in between; stop early at the deadline or
        // on cancellation.
        loop {
            let heartbeat_at = last_event + options.heartbeat;
            let wake = next_poll.min(heartbeat_at).min(options.deadline);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(cancel_upstream(source, id, last).await),
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
mod tests {
    //! The loop under tokio's paused clock: time only moves when every task sleeps, so each
    //! instant below is exact, and a test of minutes of waiting runs in microseconds.
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::runcomfy::CancelOutcome;

    /// A scripted upstream: answers status polls from a list (the last answer repeats) and
    /// records when each call came, in milliseconds since the test began.
    struct Script {
        started: Instant,
        answers: Mutex<Vec<Result<StatusResponse, ApiError>>>,
        cancel_outcome: &'static str,
        polls: Mutex<Vec<u64>>,
        cancels: Mutex<Vec<u64>>,
    }

    impl Script {
        fn new(statuses: &[(&str, Option<u32>)]) -> Self {
            Self::with(statuses.iter().map(|&(s, p)| Ok(status(s, p))).collect())
        }

        fn with(answers: Vec<Result<StatusResponse, ApiError>>) -> Self {
            Self {
                started: Instant::now(),
                answers: Mutex::new(answers),
                cancel_outcome: "cancelled",
                polls: Mutex::default(),
                cancels: Mutex::default(),
            }
        }

        fn at(&self) -> u64 {
            self.started.elapsed().as_millis() as u64
        }

        fn polls(&self) -> Vec<u64> {
            self.polls.lock().unwrap().clone()
        }
    }

    impl StatusSource for Script {
        async fn status(&self, _: &RequestId) -> Result<StatusResponse, ApiError> {
            self.polls.lock().unwrap().push(self.at());
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            }
        }

        async fn cancel(&self, _: &RequestId) -> Result<CancelResponse, ApiError> {
            self.cancels.lock().unwrap().push(self.at());
            Ok(serde_json::from_value(json!({"outcome": self.cancel_outcome})).unwrap())
        }
    }

    fn status(status: &str, queue_position: Option<u32>) -> StatusResponse {
        serde_json::from_value(json!({"status": status, "queue_position": queue_position})).unwrap()
    }

    fn id() -> RequestId {
        RequestId::parse("job-1").unwrap()
    }

    /// 100 ms, doubling to 400 ms; heartbeats every second; the deadline 10 s away.
    fn options() -> WaitOptions {
        let backoff = Backoff {
            first: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_millis(400),
        };
        WaitOptions {
            heartbeat: Duration::from_secs(1),
            spread_first_delay: false,
            ..WaitOptions::new(backoff, Duration::from_secs(10))
        }
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let b = options().backoff;
        let d: Vec<u128> = b.delays().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 400, 400, 400]);
        // Polls at 0, 100, 300, 700 ms within 1 s.
        assert_eq!(b.polls_within(Duration::from_millis(1000)), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_follow_the_backoff_and_events_mark_each_change() {
        let source = Script::new(&[
            ("in_queue", Some(2)),
            ("in_queue", Some(2)),
            ("in_queue", Some(1)),
            ("in_progress", None),
            ("in_progress", None),
            ("completed", None),
        ]);
        let mut events = Vec::new();
        let outcome = wait(&source, &id(), &options(), &CancellationToken::new(), |e| {
            events.push((e.phase(), e.changed, e.elapsed.as_millis() as u64))
        })
        .await
        .unwrap();
        assert!(matches!(outcome, WaitOutcome::Finished(s) if s.status == JobStatus::Succeeded));
        assert_eq!(source.polls(), [0, 100, 300, 700, 1100, 1500]);
        assert_eq!(
            events,
            [
                ("queued at position 2".to_owned(), true, 0),
                ("queued at position 1".to_owned(), true, 300),
                ("generating".to_owned(), true, 700),
                ("finished".to_owned(), true, 1500),
            ]
        );
        // However long a job runs, it never costs more polls than the schedule allows.
        assert!(source.polls().len() <= options().backoff.polls_within(Duration::from_millis(1500)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_wait_sends_heartbeats_and_ends_at_the_deadline() {
        let source = Script::new(&[("in_progress", None)]);
        let options = WaitOptions {
            deadline: Instant::now() + Duration::from_millis(3500),
            ..options()
        };
        let mut events = Vec::new();
        let outcome = wait(&source, &id(), &options, &CancellationToken::new(), |e| {
            events.push((e.changed, e.elapsed.as_millis() as u64))
        })
        .await
        .unwrap();
        let WaitOutcome::DeadlinePassed { last } = outcome else {
            panic!("expected the deadline, got {outcome:?}");
        };
        assert_eq!(last.unwrap().status, JobStatus::InProgress);
        assert_eq!(source.at(), 3500, "returned exactly at the deadline");
        assert_eq!(events, [(true, 0), (false, 1000), (false, 2000), (false, 3000)]);
        assert_eq!(source.polls(), [0, 100, 300, 700, 1100, 1500, 1900, 2300, 2700, 3100]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_delay_is_stretched_by_at_most_as_much_again() {
        let source = Script::new(&[("in_queue", Some(1)), ("completed", None)]);
        let options = WaitOptions {
            spread_first_delay: true,
            ..options()
        };
        wait(&source, &id(), &options, &CancellationToken::new(), |_| {})
            .await
            .unwrap();
        let second = source.polls()[1];
        // The stretch is below 2×, but tokio's timer rounds a deadline up to the next millisecond:
        // a stretch past 1.99× sleeps the full 200 ms (about one run in a hundred).
        assert!((100..=200).contains(&second), "second poll at {second} ms");
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_a_queued_wait_cancels_the_job_at_once() {
        let source = Script::new(&[("in_queue", Some(5))]);
        let cancel = CancellationToken::new();
        let canceller = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(250)).await;
                cancel.cancel();
            })
        };
        let outcome = wait(&source, &id(), &options(), &cancel, |_| {}).await.unwrap();
        canceller.await.unwrap();
        let WaitOutcome::Cancelled { last, cancel } = outcome else {
            panic!("expected a cancellation, got {outcome:?}");
        };
        assert_eq!(last.unwrap().queue_position, Some(5));
        assert_eq!(cancel.unwrap().outcome, Some(CancelOutcome::Cancelled));
        assert_eq!(
            *source.cancels.lock().unwrap(),
            [250],
            "cancelled mid-sleep, not at the next poll"
        );
        assert_eq!(source.polls(), [0, 100]);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_a_running_wait_reports_what_the_upstream_said() {
        let mut source = Script::new(&[("in_progress", None)]);
        source.cancel_outcome = "not_cancellable";
        let cancel = CancellationToken::new();
        cancel.cancel();
        let outcome = wait(&source, &id(), &options(), &cancel, |_| {}).await.unwrap();
        let WaitOutcome::Cancelled { cancel, .. } = outcome else {
            panic!("expected a cancellation, got {outcome:?}");
        };
        assert_eq!(cancel.unwrap().outcome, Some(CancelOutcome::NotCancellable));
        assert!(source.polls().is_empty(), "an already-cancelled wait does not poll");
    }

    #[tokio::test(start_paused = true)]
    async fn one_transient_failure_is_tolerated_and_a_lasting_one_ends_the_wait() {
        let transient = || ApiError::Timeout(Duration::from_secs(30));
        let source = Script::with(vec![Err(transient()), Ok(status("completed", None))]);
        let outcome = wait(&source, &id(), &options(), &CancellationToken::new(), |_| {}).await;
        assert!(matches!(outcome, Ok(WaitOutcome::Finished(_))));

        let source = Script::with(vec![Err(transient()), Err(transient())]);
        let outcome = wait(&source, &id(), &options(), &CancellationToken::new(), |_| {}).await;
        assert!(matches!(outcome, Err(ApiError::Timeout(_))));
        assert_eq!(source.polls(), [0, 100]);

        let not_found = ApiError::NotFound { message: "gone".into() };
        let source = Script::with(vec![Err(not_found)]);
        let outcome = wait(&source, &id(), &options(), &CancellationToken::new(), |_| {}).await;
        assert!(
            matches!(outcome, Err(ApiError::NotFound { .. })),
            "not retryable: no second poll"
        );
        assert_eq!(source.polls(), [0]);
    }
}
