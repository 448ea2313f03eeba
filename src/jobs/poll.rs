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

use std::{future::Future, sync::Mutex, time::Duration};

use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::settings::{POLL_DENSE_MS, POLL_FIRST_MS, POLL_MAX_MS};
use crate::runcomfy::{ApiError, CancelResponse, Client, JobStatus, RequestId, ResultResponse, StatusResponse};

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

/// How often to poll without history: fast at first (most images are done in seconds), then
/// slower, so that a thousand waiting calls cost the upstream a bounded, falling request rate.
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

/// Never more than one request per job in this time, on a schedule made from history.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// The fewest past runs worth polling by: fewer say little about where the next one ends.
pub const MIN_HISTORY: usize = 5;
/// The share of past runs that ended before the dense window opens, and before it closes.
const WINDOW: (f64, f64) = (0.10, 0.95);
/// The longest wait for the window to open, and between polls of a queued job.
const SPARSE: Duration = Duration::from_secs(2);
/// A queued job is polled this often per place ahead of it (at most [`SPARSE`]).
const PER_QUEUE_PLACE: Duration = Duration::from_millis(500);

/// How long past jobs of one model and size took from submit to done, as the journal saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    sorted: Vec<Duration>,
}

impl History {
    /// `None` with fewer than [`MIN_HISTORY`] runs.
    pub fn new(mut lengths: Vec<Duration>) -> Option<Self> {
        (lengths.len() >= MIN_HISTORY).then(|| {
            lengths.sort_unstable();
            Self { sorted: lengths }
        })
    }

    /// The length that a share `p` of past runs did not exceed (nearest rank).
    pub fn quantile(&self, p: f64) -> Duration {
        let last = self.sorted.len() - 1;
        self.sorted[((last as f64) * p.clamp(0.0, 1.0)).round() as usize]
    }

    /// Where the next run likely ends, in time since its submit.
    fn window(&self) -> (Duration, Duration) {
        (self.quantile(WINDOW.0), self.quantile(WINDOW.1))
    }
}

/// A process-wide bound on the polls every wait sends together: at most `rate` per second over
/// time, with a burst of a quarter second's worth (a generic cell rate algorithm). A poll that
/// would pass it waits for its slot; after a 429 no poll goes before RunComfy's `Retry-After`.
#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    burst: Duration,
    state: Mutex<PacerState>,
}

#[derive(Debug, Default)]
struct PacerState {
    /// When the next poll would go if every earlier one had taken its slot.
    theoretical: Option<Instant>,
    /// No poll before this (a `Retry-After`).
    held_until: Option<Instant>,
}

impl Pacer {
    /// At most `rate` polls per second (at least one).
    pub fn per_second(rate: u32) -> Self {
        let spacing = Duration::from_secs(1) / rate.max(1);
        Self {
            spacing,
            burst: spacing * (rate / 4).max(1),
            state: Mutex::default(),
        }
    }

    /// When a poll due at `now` may go, taking that slot.
    pub fn slot(&self, now: Instant) -> Instant {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let base = state.theoretical.map_or(now, |t| t.max(now));
        state.theoretical = Some(base + self.spacing);
        let slot = base.checked_sub(self.burst).map_or(now, |s| s.max(now));
        state.held_until.map_or(slot, |held| slot.max(held))
    }

    /// Holds every poll until `until` (RunComfy asked us to slow down).
    pub fn hold(&self, until: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.held_until = Some(state.held_until.map_or(until, |h| h.max(until)));
    }
}

#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The schedule without history, and after the likely window.
    pub backoff: Backoff,
    /// Between polls where the job is likely to finish (at least [`MIN_INTERVAL`]).
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

/// The delay before each next poll, from the schedule and what the polls saw.
struct Planner {
    backoff: Backoff,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    dense: Duration,
    window: Option<(Duration, Duration)>,
    /// Since submit, when the job was first seen running.
    running_since: Option<Duration>,
    /// The delay past the window, growing as `backoff` does.
    late: Option<Duration>,
}

impl Planner {
    fn new(options: &WaitOptions) -> Self {
        Self {
            backoff: options.backoff,
            delays: Box::new(options.backoff.delays()),
            dense: options.dense.max(MIN_INTERVAL),
            window: options.history.as_ref().map(History::window),
            running_since: None,
            late: None,
        }
    }

    /// The delay after a poll at `at` (since submit) that saw `last`.
    fn next(&mut self, at: Duration, last: Option<&StatusResponse>) -> Duration {
        let status = last.map(|l| &l.status);
        if status == Some(&JobStatus::InProgress) && self.running_since.is_none() {
            self.running_since = Some(at);
        }
        let Some((open, close)) = self.window else {
            return self.delays.next().unwrap_or(self.backoff.max);
        };
        if status == Some(&JobStatus::InQueue) {
            let places = last.and_then(|l| l.queue_position).unwrap_or(1).max(1);
            return PER_QUEUE_PLACE.saturating_mul(places).clamp(MIN_INTERVAL, SPARSE);
        }
        // A job that started late (a long queue) ends late: the window moves with it.
        let shift = self.running_since.map_or(Duration::ZERO, |r| r.saturating_sub(open));
        let (open, close) = (open + shift, close + shift);
        if at < open {
            (open - at).clamp(MIN_INTERVAL, SPARSE)
        } else if at < close {
            self.dense
        } else {
            let late = self
                .late
                .map_or(self.dense, |d| d.mul_f64(self.backoff.factor))
                .min(self.backoff.max.max(self.dense));
            self.late = Some(late);
            late
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
    loop {
        let running = last.as_ref().is_some_and(|l| l.status == JobStatus::InProgress);
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
        let mut next_poll = Instant::now() + if stretched { spread(delay) } else { delay };
        next_poll = not_before.map_or(next_poll, |n| next_poll.max(n));
        first_delay = false;
        let mut paced = options.pacer.is_none();
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
        /// Which endpoint each poll asked, in order.
        kinds: Mutex<Vec<&'static str>>,
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
                kinds: Mutex::default(),
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

    impl Script {
        fn next(&self, kind: &'static str) -> Result<StatusResponse, ApiError> {
            self.polls.lock().unwrap().push(self.at());
            self.kinds.lock().unwrap().push(kind);
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            }
        }
    }

    /// The result as RunComfy answers it: the current status until the job has ended.
    fn as_result(state: StatusResponse) -> ResultResponse {
        let status = match state.status {
            JobStatus::Succeeded => "succeeded".to_owned(),
            other => other.as_str().to_owned(),
        };
        serde_json::from_value(json!({"status": status})).unwrap()
    }

    impl StatusSource for Script {
        async fn status(&self, _: &RequestId) -> Result<StatusResponse, ApiError> {
            self.next("status")
        }

        async fn result(&self, _: &RequestId) -> Result<ResultResponse, ApiError> {
            self.next("result").map(as_result)
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
        assert!(
            matches!(outcome, WaitOutcome::Finished { status, result: Some(_) } if status.status == JobStatus::Succeeded)
        );
        assert_eq!(source.polls(), [0, 100, 300, 700, 1100, 1500]);
        assert_eq!(
            *source.kinds.lock().unwrap(),
            ["status", "status", "status", "status", "result", "result"],
            "the result is polled once the job runs: the poll that sees the end carries the outputs"
        );
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
        assert!(matches!(outcome, Ok(WaitOutcome::Finished { .. })));

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

    /// An upstream whose one job is queued (at position 1) until `queued_ms`, runs until
    /// `done_ms`, then has succeeded; every poll is recorded with its endpoint.
    struct Timed {
        started: Instant,
        queued_ms: u64,
        done_ms: u64,
        polls: Mutex<Vec<(u64, &'static str)>>,
    }

    impl Timed {
        fn new(queued_ms: u64, done_ms: u64) -> Self {
            Self {
                started: Instant::now(),
                queued_ms,
                done_ms,
                polls: Mutex::default(),
            }
        }

        fn now(&self, kind: &'static str) -> StatusResponse {
            let at = self.started.elapsed().as_millis() as u64;
            self.polls.lock().unwrap().push((at, kind));
            if at < self.queued_ms {
                status("in_queue", Some(1))
            } else if at < self.done_ms {
                status("in_progress", None)
            } else {
                status("completed", None)
            }
        }
    }

    impl StatusSource for Timed {
        async fn status(&self, _: &RequestId) -> Result<StatusResponse, ApiError> {
            Ok(self.now("status"))
        }

        async fn result(&self, _: &RequestId) -> Result<ResultResponse, ApiError> {
            Ok(as_result(self.now("result")))
        }

        async fn cancel(&self, _: &RequestId) -> Result<CancelResponse, ApiError> {
            Ok(serde_json::from_value(json!({"outcome": "not_cancellable"})).unwrap())
        }
    }

    /// Past runs of 8 to 20 s (the window: 9 s to 20 s).
    fn history() -> Option<History> {
        History::new([8, 9, 10, 11, 12, 12, 13, 14, 15, 20].map(Duration::from_secs).to_vec())
    }

    fn with_history() -> WaitOptions {
        WaitOptions {
            history: history(),
            dense: Duration::from_millis(300),
            deadline: Instant::now() + Duration::from_secs(120),
            ..options()
        }
    }

    #[test]
    fn history_needs_a_few_runs_and_its_window_spans_the_likely_ends() {
        assert_eq!(History::new(vec![Duration::from_secs(9); MIN_HISTORY - 1]), None);
        let (open, close) = history().unwrap().window();
        assert_eq!((open, close), (Duration::from_secs(9), Duration::from_secs(20)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_finishes_when_its_history_says_is_noticed_within_the_dense_interval() {
        let source = Timed::new(1_500, 12_345);
        let outcome = wait(&source, &id(), &with_history(), &CancellationToken::new(), |_| {})
            .await
            .unwrap();
        let WaitOutcome::Finished { status, result } = outcome else {
            panic!("expected the end, got {outcome:?}");
        };
        assert_eq!(status.status, JobStatus::Succeeded);
        assert!(result.is_some(), "the poll that saw the end was a result poll");
        let polls = source.polls.lock().unwrap().clone();
        let (seen, kind) = *polls.last().unwrap();
        assert_eq!(kind, "result");
        assert!(
            (12_345..=12_345 + 300).contains(&seen),
            "the end at 12.345 s was seen at {seen} ms: {polls:?}"
        );
        // Sparse before the window (queue polls, then one at its opening), dense inside it.
        let before_window = polls.iter().filter(|(at, _)| *at < 9_000).count();
        assert!(before_window <= 8, "{polls:?}");
        assert!(
            polls.iter().any(|&(at, kind)| at == 9_000 && kind == "result"),
            "{polls:?}"
        );
        assert!(polls.windows(2).all(|w| w[1].0 - w[0].0 >= 250), "{polls:?}");
        assert!(polls.len() <= 22, "{} polls: {polls:?}", polls.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_starts_late_moves_the_window_with_it() {
        // Queued for 15 s: the window's opening (9 s) came while it was still queued.
        let source = Timed::new(15_000, 26_000);
        wait(&source, &id(), &with_history(), &CancellationToken::new(), |_| {})
            .await
            .unwrap();
        let polls = source.polls.lock().unwrap().clone();
        let (seen, _) = *polls.last().unwrap();
        assert!((26_000..=26_300).contains(&seen), "seen at {seen} ms: {polls:?}");
        let queued = polls.iter().filter(|(at, _)| *at < 15_000).count();
        assert!(
            queued <= 15 * 2 + 1,
            "a queued job is polled at its queue's pace: {polls:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_model_without_history_keeps_the_bounded_schedule() {
        let source = Timed::new(300, 5_000);
        let options = WaitOptions {
            history: History::new(vec![Duration::from_secs(9); MIN_HISTORY - 1]),
            ..options()
        };
        wait(&source, &id(), &options, &CancellationToken::new(), |_| {})
            .await
            .unwrap();
        let polls: Vec<u64> = source.polls.lock().unwrap().iter().map(|(at, _)| *at).collect();
        // 100 ms doubling to 400 ms, as without history at all.
        assert_eq!(
            polls,
            [0, 100, 300, 700, 1100, 1500, 1900, 2300, 2700, 3100, 3500, 3900, 4300, 4700, 5100]
        );
        assert!(polls.len() <= options.backoff.polls_within(Duration::from_millis(5_100)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_waits_poll_at_a_bounded_rate() {
        // Every job is still running at the deadline: the worst case, every wait in its window.
        let rate = 100;
        let pacer = std::sync::Arc::new(Pacer::per_second(rate));
        let source = Timed::new(0, u64::MAX);
        let options = WaitOptions {
            // The window: from submit to a minute.
            history: History::new([0, 0, 0, 0, 60].map(Duration::from_secs).to_vec()),
            pacer: Some(pacer),
            deadline: Instant::now() + Duration::from_secs(20),
            ..with_history()
        };
        let (job, never) = (id(), CancellationToken::new());
        let waits = (0..1000).map(|_| wait(&source, &job, &options, &never, |_| {}));
        for outcome in futures::future::join_all(waits).await {
            assert!(matches!(outcome, Ok(WaitOutcome::DeadlinePassed { .. })));
        }
        let polls: Vec<u64> = source.polls.lock().unwrap().iter().map(|(at, _)| *at).collect();
        // Each wait polls once at its start; after that the pacer holds all of them together to
        // its rate, plus one burst of a quarter second's worth.
        let paced: Vec<u64> = polls.iter().copied().filter(|at| *at > 0).collect();
        let burst = (rate / 4) as usize;
        for second in 0..20u64 {
            let in_it = paced
                .iter()
                .filter(|at| (second * 1000..(second + 1) * 1000).contains(*at))
                .count();
            assert!(in_it <= rate as usize + burst, "{in_it} polls in second {second}");
        }
        assert!(paced.len() <= 20 * rate as usize + burst, "{} polls", paced.len());
        assert!(
            paced.len() >= 19 * rate as usize,
            "the bound is used, not starved: {}",
            paced.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_poll_waits_for_retry_after_and_holds_every_wait() {
        let limited = ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        let source = Script::with(vec![Err(limited.clone()), Err(limited), Ok(status("completed", None))]);
        let pacer = std::sync::Arc::new(Pacer::per_second(100));
        let options = WaitOptions {
            pacer: Some(pacer.clone()),
            ..options()
        };
        let start = Instant::now();
        let outcome = wait(&source, &id(), &options, &CancellationToken::new(), |_| {}).await;
        assert!(matches!(outcome, Ok(WaitOutcome::Finished { .. })), "{outcome:?}");
        assert_eq!(
            source.polls(),
            [0, 2000, 4000],
            "429s slow the polls, never end the wait"
        );
        assert!(
            pacer.slot(start) >= start + Duration::from_secs(4),
            "every other wait's polls were held to the last Retry-After too"
        );
    }
}
