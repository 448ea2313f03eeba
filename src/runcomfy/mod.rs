//! The upstream client for RunComfy's async model API: submit a job, read its status and result,
//! cancel it. It knows HTTP and the RunComfy wire format, and nothing of MCP.

mod client;
mod error;
mod request_id;
mod retry;
mod token;
mod wire;

pub use client::{Client, ClientConfig};
pub use error::ApiError;
pub use request_id::{InvalidRequestId, RequestId};
pub use retry::{CallKind, RetryPolicy};
pub use token::ApiToken;
pub use wire::{CancelOutcome, CancelResponse, JobStatus, Output, ResultResponse, StatusResponse, SubmitResponse};
