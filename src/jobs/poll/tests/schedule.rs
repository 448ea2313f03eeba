//! The schedule made from history, and the bound on many waits together.

use super::*;

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
    let window = history().unwrap().window();
    let secs = |s| Duration::from_secs(s);
    assert_eq!(
        (window.open, window.median, window.close),
        (secs(9), secs(12), secs(20))
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_that_finishes_when_its_history_says_is_noticed_within_the_dense_interval() {
    // It ends when half the past runs had (12 s): there, polls are `dense` (300 ms) apart.
    let source = Timed::new(1_500, 12_000);
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
        (12_000..=12_000 + 300).contains(&seen),
        "the end at 12 s was seen at {seen} ms: {polls:?}"
    );
    // Sparse before the window (queue polls, then steps that shrink toward its opening), one
    // at its opening (within the least interval), dense inside it.
    let before_window = polls.iter().filter(|(at, _)| *at < 9_000).count();
    assert!(before_window <= 8, "{polls:?}");
    assert!(
        polls
            .iter()
            .any(|&(at, kind)| (9_000..9_250).contains(&at) && kind == "result"),
        "{polls:?}"
    );
    assert!(polls.windows(2).all(|w| w[1].0 - w[0].0 >= 250), "{polls:?}");
    assert!(polls.len() <= 22, "{} polls: {polls:?}", polls.len());
}

#[tokio::test(start_paused = true)]
async fn with_history_the_first_poll_waits_a_second_and_none_before_the_median_is_denser_than_dense() {
    // The window opens at 9 s, half the past runs ended by 12 s; this job ends at 15 s.
    let source = Timed::new(1_500, 15_000);
    wait(&source, &id(), &with_history(), &CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let polls: Vec<u64> = source.polls.lock().unwrap().iter().map(|(at, _)| *at).collect();
    assert_eq!(polls[0], 1_000, "no poll at submit, where no past run ended: {polls:?}");
    let gaps: Vec<(u64, u64)> = polls.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
    assert!(
        gaps.iter()
            .filter(|(at, _)| (9_000..12_000).contains(at))
            .all(|(_, gap)| *gap == 300),
        "dense (300 ms) from the window's opening to its median, not 250 ms: {gaps:?}"
    );
    assert!(
        gaps.iter().filter(|(at, _)| *at >= 12_000).all(|(_, gap)| *gap >= 300),
        "{gaps:?}"
    );
    let seen = *polls.last().unwrap();
    assert!((15_000..15_400).contains(&seen), "seen at {seen} ms: {polls:?}");
}

#[tokio::test(start_paused = true)]
async fn a_job_that_ends_just_before_its_window_opens_is_seen_before_the_opening() {
    // The window opens at 9 s; this job ends at 8 s. One jump from 7.5 s to the opening saw it
    // at 9 s; steps that shrink toward the opening see it at 8.55 s.
    let source = Timed::new(1_500, 8_000);
    wait(&source, &id(), &with_history(), &CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let polls: Vec<u64> = source.polls.lock().unwrap().iter().map(|(at, _)| *at).collect();
    let seen = *polls.last().unwrap();
    assert!((8_000..8_600).contains(&seen), "seen at {seen} ms: {polls:?}");
    assert!(
        polls.windows(2).all(|w| (250..=2_000).contains(&(w[1] - w[0]))),
        "between a quarter second and two seconds apart: {polls:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_that_starts_late_moves_the_window_with_it() {
    // Queued for 15 s: the window's opening (9 s) came while it was still queued. Its window
    // moves by 6 s: it ends at its moved median (18 s).
    let source = Timed::new(15_000, 18_000);
    wait(&source, &id(), &with_history(), &CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let polls = source.polls.lock().unwrap().clone();
    let (seen, _) = *polls.last().unwrap();
    assert!((18_000..=18_300).contains(&seen), "seen at {seen} ms: {polls:?}");
    let queued = polls.iter().filter(|(at, _)| *at < 15_000).count();
    assert!(
        queued <= 15 * 2 + 1,
        "a queued job is polled at its queue's pace: {polls:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_that_outruns_its_history_is_still_polled_at_a_pace_that_grows_with_its_length() {
    // The window closes at 20 s (the longest run but one); this job ends at 30 s.
    let source = Timed::new(1_500, 30_000);
    let options = WaitOptions {
        backoff: Backoff::default(),
        ..with_history()
    };
    wait(&source, &id(), &options, &CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let polls: Vec<u64> = source.polls.lock().unwrap().iter().map(|(at, _)| *at).collect();
    let seen = *polls.last().unwrap();
    // At the window's close polls are 300 ms × √(20/12) ≈ 387 ms apart, and at 30 s half as much
    // again (≈ 581 ms); backing off from the close by half each time would have made it 3.4 s.
    assert!((30_000..=30_600).contains(&seen), "seen at {seen} ms: {polls:?}");
    let gaps: Vec<u64> = polls.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|gap| *gap >= 250), "{gaps:?}");
    assert!(
        gaps.windows(2).skip_while(|w| w[0] > 300).all(|w| w[1] + 1 >= w[0]),
        "once dense, the delays only grow: {gaps:?}"
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
        history: History::new([0, 60, 60, 60, 60].map(Duration::from_secs).to_vec()),
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
async fn a_thousand_waits_whose_first_poll_waits_for_the_window_take_their_slots_too() {
    // The window opens at 9 s: every wait's first poll is due together a second after submit,
    // and goes through the pacer with all the others.
    let rate = 100;
    let source = Timed::new(0, u64::MAX);
    let options = WaitOptions {
        pacer: Some(std::sync::Arc::new(Pacer::per_second(rate))),
        deadline: Instant::now() + Duration::from_secs(20),
        ..with_history()
    };
    let (job, never) = (id(), CancellationToken::new());
    let waits = (0..1000).map(|_| wait(&source, &job, &options, &never, |_| {}));
    futures::future::join_all(waits).await;
    let polls: Vec<u64> = source.polls.lock().unwrap().iter().map(|(at, _)| *at).collect();
    let burst = (rate / 4) as usize;
    assert!(polls.iter().all(|at| *at >= 1_000), "none at submit");
    for second in 0..20u64 {
        let in_it = polls
            .iter()
            .filter(|at| (second * 1000..(second + 1) * 1000).contains(*at))
            .count();
        assert!(in_it <= rate as usize + burst, "{in_it} polls in second {second}");
    }
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
