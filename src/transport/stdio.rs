//! MCP over stdin/stdout, the transport desktop clients start us with. stdout carries JSON-RPC
//! and nothing else (logs go to stderr); the server exits cleanly when stdin closes.

use rmcp::{service::ServerInitializeError, ServiceExt};

use crate::mcp::RunComfyServer;

pub async fn serve(server: RunComfyServer) -> anyhow::Result<()> {
    // `stdio_pipes` drives the pipes a client launches us with on the IO reactor instead of
    // tokio's blocking pool: no thread hand-off per message (it falls back to plain stdio when
    // stdin/stdout are not pipes, e.g. a terminal).
    let running = match server.serve(rmcp::transport::stdio_pipes()).await {
        Ok(running) => running,
        // A client that probes (`server/discover`) or gives up before `initialize` and then
        // closes stdin has simply left: that is a normal end, not a failure.
        Err(ServerInitializeError::ConnectionClosed(during)) => {
            tracing::info!(%during, "stdin closed before the session was initialized");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let reason = running.waiting().await?;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}
