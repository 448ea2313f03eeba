//! The MCP server handler: what the server says about itself at `initialize`, the tool router,
//! and the tasks extension (SEP-2663), through which a client that declares it can run the
//! image tools as tasks it polls instead of calls it holds open.

use std::{sync::Arc, time::Duration};

use rmcp::{
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext},
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, CreateTaskResult, GetTaskParams, GetTaskResult,
        Implementation, ServerCapabilities, ServerConfig, UpdateTaskParams,
    },
    service::RequestContext,
    task_manager::{TaskExit, TaskManager, TaskOptions},
    tool_handler, ErrorData, Peer, RoleServer, ServerHandler,
};
use tokio_util::sync::CancellationToken;

use super::{
    args,
    delivery::DeliveryArgs,
    render,
    wait::{self, WaitArgs},
};
use crate::{dreamina::ImageRequest, jobs::Backoff, media::MediaOptions, runcomfy::Client};

const INSTRUCTIONS: &str = "Generates images with ByteDance Dreamina 4.0 (Seedream 4.0) text-to-image on RunComfy. \
The simplest way is generate_image_and_wait: it returns the image URLs, or, if the image takes longer than the wait, \
a request_id to pass to get_result later. For full control, generate_image returns a request_id at once; poll \
check_status every few seconds until it is succeeded, then get_result returns the image URLs. cancel_request stops a \
job that is still queued. Each generate_image or generate_image_and_wait call is a new paid job.";

/// The tools a tasks-capable client may run as tasks: both start a job worth following.
const TASK_TOOLS: [&str; 2] = ["generate_image", "generate_image_and_wait"];

/// Server-wide settings the tools need beyond the upstream client. Each capability adds its own
/// field here, with a default that suits a desktop client.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How long generate_image_and_wait waits when the call does not say: well inside the ~60 s
    /// after which Claude Desktop abandons a tool call.
    pub default_wait: Duration,
    /// The most a call may ask to wait.
    pub max_wait: Duration,
    /// How long a task follows its job; a task is polled, so no client cut-off applies.
    pub task_wait: Duration,
    /// How often a waiting call polls the upstream.
    pub backoff: Backoff,
    /// Previews, saved files and download bounds for finished results.
    pub media: MediaOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            default_wait: Duration::from_secs(40),
            max_wait: Duration::from_secs(300),
            task_wait: Duration::from_secs(30 * 60),
            backoff: Backoff::default(),
            media: MediaOptions::default(),
        }
    }
}

/// One instance per MCP session. Clones share the upstream client (and its connection pool) and
/// the task registry, so a task can be polled from any session of the process.
#[derive(Clone)]
pub struct RunComfyServer {
    pub(super) client: Arc<Client>,
    pub(super) options: Arc<ServerOptions>,
    tasks: TaskManager,
    tool_router: ToolRouter<Self>,
}

impl RunComfyServer {
    pub fn new(client: Arc<Client>, options: ServerOptions) -> Self {
        Self {
            client,
            options: Arc::new(options),
            tasks: TaskManager::new(),
            tool_router: Self::tool_router(),
        }
    }

    /// The wait a call asked for, within the server's bound.
    pub(super) fn wait_for(&self, asked_seconds: Option<u32>) -> Duration {
        asked_seconds
            .map(|s| Duration::from_secs(s.into()))
            .unwrap_or(self.options.default_wait)
            .min(self.options.max_wait)
    }

    /// Runs an image tool as a task: submit, follow the job (the task's status message mirrors
    /// its phase), and settle with the same result the waiting tool returns. `tasks/cancel`
    /// cancels the upstream job if it is still queued.
    fn start_task(&self, request: CallToolRequestParams, peer: Peer<RoleServer>) -> CallToolResponse {
        let arguments = request.arguments.unwrap_or_default();
        let parsed = if request.name == "generate_image" {
            args::parse::<ImageRequest>(arguments).map(|request| (request, DeliveryArgs::default()))
        } else {
            args::parse::<WaitArgs>(arguments).map(|a| (a.request, a.delivery))
        };
        let (image, delivery) = match parsed {
            Ok(p) => p,
            Err(e) => return CallToolResponse::Complete(render::invalid_argument(&e)),
        };
        let (server, max_wait, backoff) = (self.clone(), self.options.task_wait, self.options.backoff);
        let options = TaskOptions::new()
            .with_poll_interval_ms(1000)
            .with_status_message("Submitting");
        let task = self.tasks.spawn(options, move |ctx| {
            Box::pin(async move {
                let cancel = CancellationToken::new();
                let watcher = tokio::spawn({
                    let (ctx, cancel) = (ctx.clone(), cancel.clone());
                    async move {
                        ctx.cancelled().await;
                        cancel.cancel();
                    }
                });
                let outcome =
                    wait::submit_and_wait(&server.client, &image, max_wait, backoff, &cancel, |_, message| {
                        ctx.set_status_message(message)
                    })
                    .await;
                watcher.abort();
                if cancel.is_cancelled() {
                    return Err(TaskExit::Cancelled);
                }
                Ok(match outcome {
                    Ok(result) => server.deliver(result, &delivery, &peer).await,
                    Err(error) => error,
                })
            })
        });
        tracing::info!(task_id = %task.task_id, tool = %request.name, "started a task");
        CallToolResponse::Task(CreateTaskResult::new(task))
    }
}

// `tool_handler` fills in list_tools and get_tool from the router; call_tool is ours, for tasks.
#[tool_handler(router = self.tool_router)]
impl ServerHandler for RunComfyServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_tasks().build())
            .with_server_info(
                Implementation::new("runcomfy-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("RunComfy Dreamina 4.0 image generation"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let client_has_tasks = context.client_capabilities().is_some_and(|caps| caps.supports_tasks());
        if client_has_tasks && TASK_TOOLS.contains(&request.name.as_ref()) {
            return Ok(self.start_task(request, context.peer.clone()));
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
