//! MCP over stdin/stdout, the transport desktop clients start us with. stdout carries JSON-RPC
//! and nothing else (logs go to stderr); the server exits cleanly when stdin closes.

use rmcp::ServiceExt;

use crate::mcp::RunComfyServer;

pub async fn serve(server: RunComfyServer) -> anyhow::Result<()> {
    let running = server.serve(rmcp::transport::stdio()).await?;
    let reason = running.waiting().await?;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}
