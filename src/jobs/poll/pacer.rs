//! The process-wide bound on every wait's polls together.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

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
