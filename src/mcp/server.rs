//! The MCP server handler: what the server says about itself at `initialize`, and the tool router.

use std::{sync::Arc, time::Duration};

use rmcp::{
    handler::server::router::tool::ToolRouter,
    model::{Implementation, ServerCapabilities, ServerConfig},
    tool_handler, ServerHandler,
};

use crate::{jobs::Backoff, journal::Journal, runcomfy::Client};

const INSTRUCTIONS: &str = "Generates images with ByteDance Dreamina 4.0 (Seedream 4.0) text-to-image on RunComfy. \
Jobs are asynchronous: generate_image returns a request_id at once; poll check_status every few seconds until it is \
succeeded, then get_result returns the image URLs. cancel_request stops a job that is still queued. Each generate_image \
call is a new paid job. list_jobs lists the jobs recorded on this machine, to find a lost request_id again instead \
of paying for a new job.";

/// Server-wide settings the tools need beyond the upstream client. Each capability adds its own
/// field here, with a default that suits a desktop client.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How long generate_image_and_wait waits when the call does not say: well inside the ~60 s
    /// after which Claude Desktop abandons a tool call.
    pub default_wait: Duration,
    /// The most a call may ask to wait.
    pub max_wait: Duration,
    /// How often a waiting call polls the upstream.
    pub backoff: Backoff,
    /// Where submitted jobs are recorded, so that a lost request id can be found again (off by
    /// default: the binary opens one from its flags).
    pub journal: Journal,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            default_wait: Duration::from_secs(40),
            max_wait: Duration::from_secs(300),
            backoff: Backoff::default(),
            journal: Journal::default(),
        }
    }
}

/// One instance per MCP session; the upstream client (and its connection pool) is shared.
#[derive(Clone)]
pub struct RunComfyServer {
    pub(super) client: Arc<Client>,
    pub(super) options: Arc<ServerOptions>,
    tool_router: ToolRouter<Self>,
}

impl RunComfyServer {
    pub fn new(client: Arc<Client>, options: ServerOptions) -> Self {
        Self {
            client,
            options: Arc::new(options),
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for RunComfyServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("runcomfy-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("RunComfy Dreamina 4.0 image generation"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}
