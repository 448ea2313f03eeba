//! Transports: how MCP messages reach the server. They know MCP framing, not RunComfy.
//!
//! `stdio` for clients that start the server; `http` for everything over the network (Streamable
//! HTTP and, in `legacy_sse`, the 2024-11-05 HTTP+SSE transport), behind `guards` and a
//! `session_budget`, over `connections` bounded in number and time, with `shutdown` handling;
//! `settings` holds `serve`'s transport flags; `per_user_keys` reads each request's RunComfy key
//! with `--per-user-keys`, and `session_owners` keeps each session to the key that opened it;
//! `jsonrpc_errors` answers what rmcp cannot read as JSON-RPC says; `apps_challenge` serves
//! ChatGPT's domain-verification token.

mod apps_challenge;
pub mod connections;
pub(crate) mod guards;
pub mod http;
pub(crate) mod jsonrpc_errors;
pub(crate) mod legacy_sse;
pub(crate) mod per_user_keys;
pub(crate) mod session_budget;
mod session_owners;
pub mod settings;
pub(crate) mod shutdown;
pub mod stdio;
