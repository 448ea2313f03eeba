//! The loop under tokio's paused clock: time only moves when every task sleeps, so each
//! instant below is exact, and a test of minutes of waiting runs in microseconds.
use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::runcomfy::CancelOutcome;

mod schedule;

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
    /// How long each status or result answer takes (a round trip to a distant upstream).
    latency: Duration,
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
            latency: Duration::ZERO,
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
        let answer = self.next("status");
        tokio::time::sleep(self.latency).await;
        answer
    }

    async fn result(&self, _: &RequestId) -> Result<ResultResponse, ApiError> {
        let answer = self.next("result").map(as_result);
        tokio::time::sleep(self.latency).await;
        answer
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

/// The same job as above behind a 40 ms round trip: its requests go when the schedule says, not
/// a round trip later each time, so the end is seen as soon as on loopback.
#[tokio::test(start_paused = true)]
async fn a_round_trip_does_not_stretch_the_schedule() {
    let source = Script {
        latency: Duration::from_millis(40),
        ..Script::new(&[
            ("in_queue", Some(1)),
            ("in_progress", None),
            ("in_progress", None),
            ("completed", None),
        ])
    };
    let outcome = wait(&source, &id(), &options(), &CancellationToken::new(), |_| {})
        .await
        .unwrap();
    assert!(matches!(outcome, WaitOutcome::Finished { .. }));
    assert_eq!(
        source.polls(),
        [0, 100, 300, 700],
        "as without the round trip, not [0, 140, 380, 820]"
    );
}

/// An upstream slower to answer than the schedule's delay is not polled back to back: half a
/// delay passes between an answer and the next request, and never less than the delay between
/// two requests.
#[tokio::test(start_paused = true)]
async fn an_answer_slower_than_the_delay_leaves_half_a_delay_before_the_next_request() {
    let source = Script {
        latency: Duration::from_millis(500),
        ..Script::new(&[
            ("in_progress", None),
            ("in_progress", None),
            ("in_progress", None),
            ("completed", None),
        ])
    };
    wait(&source, &id(), &options(), &CancellationToken::new(), |_| {})
        .await
        .unwrap();
    // Sent at 0, answered at 500: the next at max(0 + 100, 500 + 50); then max(550 + 200, 1050 +
    // 100); then max(1150 + 400, 1650 + 200).
    assert_eq!(source.polls(), [0, 550, 1150, 1850]);
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
