//! The MCP server handler: what the server says about itself at `initialize`, and where a call
//! goes: to the tasks path for a client that declares tasks, else to the tool router.

use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext},
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, GetTaskParams, GetTaskResult, Implementation,
        ServerCapabilities, ServerConfig, UpdateTaskParams,
    },
    service::RequestContext,
    task_manager::TaskManager,
    tool_handler, ErrorData, RoleServer, ServerHandler,
};

use super::{settings::StructuredMode, tools};
use crate::jobs::JobService;

const INSTRUCTIONS: &str = "Makes and edits images with ByteDance Dreamina 4.0 (Seedream 4.0) on RunComfy. \
The simplest way is generate_image_and_wait: it returns the image URLs, or, if the image takes longer than the wait, \
a request_id to pass to get_result later. For full control, generate_image returns a request_id at once; poll \
check_status every few seconds until it is succeeded, then get_result returns the image URLs. To edit, restyle or \
combine images, pass them in images: an earlier result as request_id#n (every result lists its images' references), \
an https URL, or a local file the server allows. count asks for up to 4 alternatives at once. cancel_request stops a \
job that is still queued. Every job is paid for: each generate call starts count new jobs. list_jobs lists \
the jobs recorded on this machine, to find a lost request_id again instead of paying for a new job.";

/// One instance per MCP session. Clones share the job service (and so the upstream client, its
/// connection pool and the journal) and the task registry, so a task can be polled from any
/// session of the process.
#[derive(Clone)]
pub struct RunComfyServer {
    pub(super) jobs: JobService,
    /// Whether image-carrying results keep `structuredContent` for the connected client.
    pub(super) structured: StructuredMode,
    pub(super) tasks: TaskManager,
    tool_router: ToolRouter<Self>,
}

impl RunComfyServer {
    pub fn new(jobs: JobService, structured: StructuredMode) -> Self {
        Self {
            jobs,
            structured,
            tasks: TaskManager::new(),
            tool_router: tools::router(),
        }
    }
}

// `tool_handler` fills in list_tools and get_tool from the router; call_tool is ours, for tasks.
#[tool_handler(router = self.tool_router)]
impl ServerHandler for RunComfyServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_tasks().build())
            .with_server_info(
                Implementation::new("runcomfy-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("RunComfy Dreamina 4.0 image generation and editing"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let client_has_tasks = context.client_capabilities().is_some_and(|caps| caps.supports_tasks());
        if client_has_tasks {
            if let Some(task) = self.start_task(&request, context.peer.clone()).await {
                return Ok(task);
            }
        }
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(self.tasks.get_task(&request.task_id)?))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.cancel_task(&request.task_id)
    }
}
