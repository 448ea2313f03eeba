//! Transports: how MCP messages reach the server. They know MCP framing, not RunComfy.

pub mod stdio;
