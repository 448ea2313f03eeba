//! The upstream client for RunComfy's async model API: submit a job, read its status and result,
//! cancel it. It knows HTTP and the RunComfy wire format, and nothing of MCP.

pub mod balance;
pub mod catalogue;
mod client;
mod error;
mod http;
mod request_id;
mod retry;
pub mod settings;
mod token;
mod wire;

pub use balance::{Balance, BalanceReader, BalanceResponse};
pub use catalogue::{Catalogue, CatalogueError, Found, ModelQuery, Snapshot, MAX_ID_CHARS};
pub use client::{Client, ClientConfig, MAX_SUBMIT_BYTES};
pub use error::ApiError;
pub use request_id::{InvalidRequestId, RequestId};
pub use retry::{CallKind, RetryPolicy};
pub use settings::UpstreamArgs;
pub use token::ApiToken;

pub use wire::{
    CancelOutcome, CancelResponse, JobStatus, ModelInfo, ModelPage, Output, ResultResponse, StatusResponse,
    SubmitResponse,
};
