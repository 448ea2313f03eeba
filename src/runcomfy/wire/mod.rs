//! The RunComfy wire types. Lenient on purpose: unknown fields are ignored and an unknown status
//! string becomes [`JobStatus::Unknown`], because a new upstream field or state must never turn a
//! paid job into a parse failure.
//!
//! One file per part of the wire: a job's [`status`], the job endpoints' answers ([`job`]), a
//! job's [`output`], the catalogue's entries and pages ([`model`]), and the [`lenient`] field
//! readers they share.

mod job;
mod lenient;
mod model;
mod output;
mod status;

pub use job::{CancelOutcome, CancelResponse, ResultResponse, StatusResponse, SubmitResponse};
pub use model::{ModelInfo, ModelPage};
pub use output::Output;
pub use status::JobStatus;
