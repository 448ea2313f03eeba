//! Jobs: the one flow the MCP tools, the tasks path and the CLI all call. [`JobService`] owns the
//! RunComfy client, the journal and the media options, and offers prepare (reference images
//! resolved, nothing sent), submit, status, result, cancel, wait and run (submit → wait →
//! result), each also for a batch of jobs, returning typed outcomes (`outcome`: a job's
//! [`JobOutcome`] and [`JobState`]; `batch`: a call's jobs together, their outputs collected);
//! callers only render what it returns. [`poll`] is the wait loop, behind a seam so that it is
//! tested under a paused clock; `follow` keeps the journal current during a wait; `history` reads the model's past run lengths
//! for the poll schedule; `prepare` resolves a request's inputs;
//! [`price`] estimates a job's cost before it is paid for; [`limits`] holds the spend and rate
//! limit flags (checked in the journal); [`settings`] holds the wait flags and their defaults.
//! Every call is made for a [`Caller`]: whose jobs it sees and whose RunComfy key it spends
//! ([`owners`] names a per-user key's owner). `uploads` keeps the images uploaded from the app view.

mod again;
mod answered;
mod batch;
mod caller;
mod follow;
mod history;
pub mod limits;
mod outcome;
mod outputs;
pub(crate) mod owners;
pub(crate) mod poll;
mod prepare;
mod prepare_model;
pub(crate) mod price;
mod service;
pub(crate) mod settings;
mod uploads;

pub(crate) use batch::Batch;
pub(crate) use caller::Caller;
pub(crate) use limits::LimitArgs;
pub(crate) use outcome::{JobOutcome, JobState};
pub(crate) use owners::Owners;
pub use poll::Backoff;
pub(crate) use poll::{Event, Pacer, StatusSource, WaitOptions, WaitOutcome};
pub(crate) use prepare::{Origin, PrepareError, Prepared, Recipe};
pub(crate) use prepare_model::check_models;
pub(crate) use price::CostEstimate;
pub(crate) use service::{JobService, Run, RunError, RunOutcome, Step, SubmitError, MAX_COUNT};
pub(crate) use settings::{WaitArgs, WaitPolicy};
