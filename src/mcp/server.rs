//! The MCP server handler: what the server says about itself at `initialize`, and the tool router.

use std::sync::Arc;

use rmcp::{
    handler::server::router::tool::ToolRouter,
    model::{Implementation, ServerCapabilities, ServerConfig},
    tool_handler, ServerHandler,
};

use crate::runcomfy::Client;

const INSTRUCTIONS: &str = "Generates images with ByteDance Dreamina 4.0 (Seedream 4.0) text-to-image on RunComfy. \
Jobs are asynchronous: generate_image returns a request_id at once; poll check_status every few seconds until it is \
succeeded, then get_result returns the image URLs. cancel_request stops a job that is still queued. Each generate_image \
call is a new paid job.";

/// One instance per MCP session; the upstream client (and its connection pool) is shared.
#[derive(Clone)]
pub struct RunComfyServer {
    pub(super) client: Arc<Client>,
    tool_router: ToolRouter<Self>,
}

impl RunComfyServer {
    pub fn new(client: Arc<Client>) -> Self {
        Self {
            client,
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
