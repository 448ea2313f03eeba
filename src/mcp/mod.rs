//! The MCP face of the server: tools, their schemas, argument checking and result rendering.
//! It knows MCP content, not HTTP: every upstream call goes through [`crate::runcomfy::Client`].

mod args;
mod delivery;
mod progress;
mod render;
mod schema;
mod server;
mod tools;
mod wait;

pub use server::{RunComfyServer, ServerOptions};
