//! The MCP face of the server: the handler, the tools (one file each, in [`tools`]), the tasks
//! path, argument checking and the shape of answers. It knows MCP content, not HTTP: every job
//! goes through [`crate::jobs::JobService`].

mod advice;
mod answer;
mod app;
mod args;
mod caller;
mod confirm;
mod job_result;
mod media;
mod progress;
mod prompts;
mod resources;
mod schema;
mod server;
pub mod settings;
mod shared_tasks;
mod tasks;
mod tools;
mod waiting;

pub use server::RunComfyServer;
pub use settings::McpArgs;
