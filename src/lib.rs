//! runcomfy-mcp: an MCP server for ByteDance Dreamina 4.0 (Seedream 4.0) on RunComfy's async
//! model API: text-to-image, and edits of reference images (its second endpoint).
//!
//! The flow runs one way:
//!
//! ```text
//! MCP client ─stdio / Streamable HTTP / legacy SSE─▶ transport ─▶ mcp (handler, tasks,
//!                                                                    tools/ one file per tool)
//!                                                                      │
//!                                                                      ▼
//! CLI (main, generate) ─────────────────────────────────────────▶ jobs (the job service:
//!                                                                   prepare, submit, status,
//!                                                                   result, cancel, wait, run,
//!                                                                   batches)
//!                                                                 │        │          │
//!                                                                 ▼        ▼          ▼
//!                                                            journal    media     runcomfy ─▶ RunComfy API
//!                                                           (storage) (inputs in;  (client)    or simulator
//!                                                                      downloads,
//!                                                                      previews,
//!                                                                      saves)
//!             dreamina: Dreamina 4.0 input types, rules, its two endpoints and the mapping to the wire
//! ```
//!
//! Transports know MCP framing, not RunComfy; tools know MCP content, not HTTP wire types, and
//! call only the job service; the job service knows jobs, not MCP, and is what the tools, the
//! tasks path and the CLI all call; the journal stores and answers queries and calls nobody; the
//! RunComfy client knows HTTP and the API, not MCP. The simulator is a separate fake of the
//! RunComfy API that shares nothing with the client. `config` only gathers each module's flags
//! (`*/settings.rs`) into the commands' settings.

pub mod config;
pub mod dreamina;
pub mod generate;
pub mod jobs;
pub mod journal;
pub(crate) mod mcp;
pub mod media;
pub(crate) mod models;
pub(crate) mod money;
pub(crate) mod oauth;
pub mod runcomfy;
pub mod runtime;
pub(crate) mod schema_check;
pub mod simulator;
pub(crate) mod text;
pub mod transport;
pub mod usage;
