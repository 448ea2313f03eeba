//! Jobs: the one flow the MCP tools, the tasks path and the CLI all call. [`JobService`] owns the
//! RunComfy client, the journal and the media options, and offers prepare (reference images
//! resolved, nothing sent), submit, status, result, cancel, wait and run (submit → wait →
//! result), each also for a batch of jobs, returning domain types; callers only render what it
//! returns. [`poll`] is the wait loop, behind a seam so that it is tested under a paused clock;
//! `follow` keeps the journal current during a wait; `prepare` resolves a request's inputs;
//! [`settings`] holds the wait flags and their defaults.

mod follow;
pub mod poll;
mod prepare;
mod service;
pub mod settings;

pub use poll::{Backoff, Event, StatusSource, WaitOptions, WaitOutcome};
pub use prepare::{PrepareError, Prepared, Recipe};
pub use service::{JobService, Outputs, Run, RunError, RunOutcome, Step, MAX_COUNT};
pub use settings::{WaitArgs, WaitPolicy};
