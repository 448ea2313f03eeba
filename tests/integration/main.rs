//! The integration tests: the real `runcomfy-mcp` binary and its simulator, driven the way
//! clients drive them. One test binary with a module per topic, rather than one binary per file:
//! each binary links every dependency and compiles the shared helpers again, and one binary
//! builds in about a quarter of the CPU time of thirteen (measured: 43 s against 174 s).
//! `tools_schema.rs` stays a binary of its own, beside the snapshot it is checked against.

mod common;

mod any_model_results;
mod app;
mod argument_schema;
mod balance;
mod batches;
mod bounded_results;
mod catalogue;
mod cli_edit;
mod cli_generate;
mod company_mode;
mod confirm;
mod contract;
mod download_policy;
mod fault_matrix;
mod host_files;
mod http_connections;
mod http_guards;
mod http_hostile;
mod http_serving;
mod journal;
mod load;
mod media;
mod memory;
mod money;
mod oauth;
mod oauth_confirm;
mod per_user_keys;
mod replicas;
mod requests_from_schema;
mod run_model;
mod simulator;
mod simulator_edit;
mod simulator_models;
mod stdio_bounds;
mod stdio_protocol;
mod stdio_tools;
mod tasks_edit;
mod variations;
mod waiting;
