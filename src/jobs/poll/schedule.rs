//! Where to poll: the bounded [`Backoff`] without history, and the [`Planner`] that polls
//! densely where a model's [`History`] says a job is likely to finish.

use std::time::Duration;

use super::WaitOptions;
use crate::jobs::settings::{POLL_FIRST_MS, POLL_MAX_MS};
use crate::runcomfy::{JobStatus, StatusResponse};

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
/// Before the window opens, each poll goes this share of the way to its opening (at most
/// [`SPARSE`], at least [`MIN_INTERVAL`]): the steps shrink as it nears. One job in ten ends
/// before the opening by its definition, and more where a short history's tenth percentile is
/// its shortest run; a single jump to the opening kept such a job waiting up to two seconds, and
/// made these jobs the slowest tenth. `python3 benches/poll_replay.py` (the bench's seeded mix,
/// 30 seeds; `--toward-open 1.0` is the single jump): the 90th percentile of the time to notice
/// the end falls from 0.67 to 0.50 s for 1.5 more requests a job (33.9 to 35.4); the median
/// stays at 0.20 s, which only a denser `dense` moves (0.25 s: 0.17 s, at about 40 requests).
const TOWARD_OPEN: f64 = 0.7;
/// The first poll of a wait with history, at most this long after submit (a request saved per
/// job: the first answer would only say "queued").
const FIRST_WITH_HISTORY: Duration = Duration::from_secs(1);
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
    pub(super) fn window(&self) -> Window {
        Window {
            open: self.quantile(WINDOW.0),
            median: self.quantile(0.5),
            close: self.quantile(WINDOW.1),
        }
    }
}

/// Where a job likely ends, in time since its submit: most past runs ended between `open` and
/// `close`, half of them by `median`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Window {
    pub(super) open: Duration,
    pub(super) median: Duration,
    pub(super) close: Duration,
}

impl Window {
    /// The window of a job that started running `late` after the window opened: it ends later too.
    fn shifted(self, late: Duration) -> Self {
        Self {
            open: self.open + late,
            median: self.median + late,
            close: self.close + late,
        }
    }

    /// The delay after a poll at `at`, inside the window or past it. `dense` up to the median,
    /// then growing as the square root of the time since submit, since past the middle of a
    /// long-tailed spread of lengths a job's chance to end in the next moment falls, and a poll
    /// there buys less. Not denser before the median: that chance is lower there than at the
    /// median too, and every job that runs on pays for those polls (replaying the bench's
    /// seeded mix, 250 ms polls at the window's opening cost ~2.5 requests a job for 0.01 s of
    /// median wait). Past the window the delay grows in proportion to the time (a job that ran
    /// twice as long as nearly every earlier one is polled half as often as at the window's
    /// end), up to `max`, instead of backing off at once: in a short history the window's end
    /// is only the longest run seen, and many jobs still end past it.
    fn delay(self, at: Duration, dense: Duration, max: Duration) -> Duration {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-3);
        let inside = |t: Duration| dense.mul_f64(ratio(t.max(self.median), self.median).sqrt());
        let delay = if at < self.close {
            inside(at)
        } else {
            inside(self.close).mul_f64(ratio(at, self.close))
        };
        delay.clamp(MIN_INTERVAL, max.max(dense))
    }
}

/// The delay before each next poll, from the schedule and what the polls saw.
pub(super) struct Planner {
    backoff: Backoff,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    dense: Duration,
    window: Option<Window>,
    /// Since submit, when the job was first seen running.
    running_since: Option<Duration>,
}

impl Planner {
    pub(super) fn new(options: &WaitOptions) -> Self {
        Self {
            backoff: options.backoff,
            delays: Box::new(options.backoff.delays()),
            dense: options.dense.max(MIN_INTERVAL),
            window: options.history.as_ref().map(History::window),
            running_since: None,
        }
    }

    /// The delay before the first poll of a wait that begins `at` after submit: with history,
    /// up to [`FIRST_WITH_HISTORY`] while the window is still far, since no past run ended
    /// that soon and the submit's answer already said the job was queued; else none.
    pub(super) fn first(&self, at: Duration) -> Duration {
        self.window
            .map_or(Duration::ZERO, |w| w.open.saturating_sub(at).min(FIRST_WITH_HISTORY))
    }

    /// The delay after a poll at `at` (since submit) that saw `last`.
    pub(super) fn next(&mut self, at: Duration, last: Option<&StatusResponse>) -> Duration {
        let status = last.map(|l| &l.status);
        if status == Some(&JobStatus::InProgress) && self.running_since.is_none() {
            self.running_since = Some(at);
        }
        let Some(window) = self.window else {
            return self.delays.next().unwrap_or(self.backoff.max);
        };
        if status == Some(&JobStatus::InQueue) {
            let places = last.and_then(|l| l.queue_position).unwrap_or(1).max(1);
            return PER_QUEUE_PLACE.saturating_mul(places).clamp(MIN_INTERVAL, SPARSE);
        }
        // A job that started late (a long queue) ends late: the window moves with it.
        let late = self
            .running_since
            .map_or(Duration::ZERO, |r| r.saturating_sub(window.open));
        let window = window.shifted(late);
        if at < window.open {
            (window.open - at).mul_f64(TOWARD_OPEN).clamp(MIN_INTERVAL, SPARSE)
        } else {
            window.delay(at, self.dense, self.backoff.max)
        }
    }
}
