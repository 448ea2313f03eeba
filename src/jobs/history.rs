//! The model's past run lengths, from the journal, for the poll schedule ([`History`]): read once
//! per model and size and kept for a few seconds, so that a burst of waits costs one query, not
//! one each, and every run that ended counts for the next wait; a model with too few runs is read
//! again each time.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::poll::History;
use crate::journal::Journal;

/// How long a model's history is kept before it is read again. Short: the runs that ended
/// meanwhile are the ones that tell most (a history of a few runs ends at the longest of them,
/// and a minute of waits that keep it polls every job longer than those past the window).
/// One indexed query of at most [`RUNS`] rows every few seconds costs nothing.
const KEEP: Duration = Duration::from_secs(5);
/// The newest runs a history is made of: enough for its percentiles, recent enough to follow
/// RunComfy's load.
const RUNS: usize = 100;
/// Models remembered at most; past it the memory starts again.
const CAPACITY: usize = 256;

/// By model and size: when it was read, and what.
type Read = HashMap<(String, String), (Instant, Option<History>)>;

#[derive(Debug, Default)]
pub(super) struct Histories {
    by_model: Mutex<Read>,
}

impl Histories {
    /// `model`'s history at `size`; `None` while the journal knows too few of its runs.
    pub(super) async fn get(&self, journal: &Journal, model: &str, size: &str) -> Option<History> {
        let key = (model.to_owned(), size.to_owned());
        // Too few runs is read again at every wait (one indexed query): the next run may be the
        // one that makes a history, and a minute of waits without it costs seconds each.
        if let Some((read, Some(history))) = self.lock().get(&key) {
            if read.elapsed() < KEEP {
                return Some(history.clone());
            }
        }
        let history = History::new(journal.run_lengths(model, size, RUNS).await);
        let mut by_model = self.lock();
        if by_model.len() >= CAPACITY {
            by_model.clear();
        }
        by_model.insert(key, (Instant::now(), history.clone()));
        history
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Read> {
        self.by_model.lock().unwrap_or_else(|e| e.into_inner())
    }
}
