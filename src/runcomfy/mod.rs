//! The upstream client for RunComfy's async model API: submit a job, read its status and result,
//! cancel it. It knows HTTP and the RunComfy wire format, and nothing of MCP.

pub(crate) mod balance;
pub(crate) mod catalogue;
mod client;
mod error;
mod http;
mod request_id;
mod retry;
pub mod settings;
mod token;
mod wire;

pub use balance::BalanceResponse;
pub(crate) use balance::{Balance, BalanceReader};
pub(crate) use catalogue::{Catalogue, CatalogueError, ModelQuery, MAX_ID_CHARS};
pub(crate) use client::MAX_SUBMIT_BYTES;
pub use client::{Client, ClientConfig};
pub use error::ApiError;
pub(crate) use request_id::RequestId;
pub(crate) use retry::CallKind;
pub use retry::RetryPolicy;
pub(crate) use settings::UpstreamArgs;
pub use token::ApiToken;

pub use wire::{
    CancelOutcome, CancelResponse, JobStatus, ModelInfo, ModelPage, Output, ResultResponse, StatusResponse,
    SubmitResponse,
};
