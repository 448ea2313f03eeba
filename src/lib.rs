//! runcomfy-mcp: an MCP server for ByteDance Dreamina 4.0 text-to-image on RunComfy's async model API.
pub mod simulator;
