//! runcomfy-mcp: an MCP server for ByteDance Dreamina 4.0 (Seedream 4.0) text-to-image on
//! RunComfy's async model API.
//!
//! The flow runs one way:
//!
//! ```text
//! MCP client ─▶ transport (stdio) ─▶ mcp (tools) ─▶ runcomfy (HTTP client) ─▶ RunComfy API
//!                                        │                                      or simulator
//!                                        ▼
//!                                    dreamina (input types and rules)
//! ```
//!
//! Transports know MCP framing, not RunComfy; tools know MCP content, not HTTP; the RunComfy
//! client knows HTTP and the API, not MCP. The simulator is a separate fake of the RunComfy API
//! that shares nothing with the client. The journal (SQLite on this machine) records every
//! submit and what the tools learn after it, so that a lost request id can be listed again.

pub mod config;
pub mod dreamina;
pub mod generate;
pub mod jobs;
pub mod journal;
pub mod mcp;
pub mod media;
pub mod runcomfy;
pub mod runtime;
pub mod simulator;
pub mod transport;
