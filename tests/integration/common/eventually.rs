//! `eventually`: the one way a test waits for something that happens on its own (a job to finish,
//! a session to expire, a line on a server's stderr). It asks again every [`INTERVAL`] until the
//! answer is there, so a test takes as long as the thing it waits for and no longer, and gives up
//! after [`LIMIT`] with a message saying what never happened and what it saw last.

use std::{fmt::Debug, future::Future, time::Duration};

use tokio::time::Instant;

/// How often the condition is checked.
pub const INTERVAL: Duration = Duration::from_millis(10);
/// The longest a test waits for anything: far beyond what any wait takes on a loaded machine,
/// short enough that a hang fails with a message rather than a CI timeout.
pub const LIMIT: Duration = Duration::from_secs(30);

/// What a check returns: done with a value, or not yet (with what it saw, for the message).
pub trait Check {
    type Value;
    fn done(self) -> Result<Self::Value, String>;
}

impl<T> Check for Option<T> {
    type Value = T;
    fn done(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".to_owned())
    }
}

impl<T, D: Debug> Check for Result<T, D> {
    type Value = T;
    fn done(self) -> Result<T, String> {
        self.map_err(|seen| format!("{seen:?}"))
    }
}

/// Runs `check` until it returns `Some(value)` / `Ok(value)` and returns the value; panics after
/// [`LIMIT`] with `what` (the thing that should have happened) and the last `Err` seen.
pub async fn eventually<C: Check>(mut check: impl AsyncFnMut() -> C, what: &str) -> C::Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let last = match check().await.done() {
            Ok(value) => return value,
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            panic!("gave up after {LIMIT:?} waiting for {what}; last saw: {last}");
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// `future`, bounded by [`LIMIT`]: for a wait that is a single await (a child's exit, the next
/// line on a pipe) rather than a condition to check again.
pub async fn within<T>(future: impl Future<Output = T>, what: &str) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("gave up after {LIMIT:?} waiting for {what}"))
}
