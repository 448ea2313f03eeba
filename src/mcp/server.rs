//! The MCP server handler: what the server says about itself at `initialize`, and where a call
//! goes: to the tasks path for a client that declares tasks, else to the tool router.

use std::sync::LazyLock;

use rmcp::{
    handler::server::{prompt::PromptContext, tool::ToolCallContext},
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CancelTaskParams, CustomRequest, CustomResult,
        GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult, Implementation,
        InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
        ServerCapabilities, ServerConfig, UpdateTaskParams,
    },
    service::RequestContext,
    task_manager::TaskManager,
    tool_handler, ErrorData, RoleServer, ServerHandler,
};

use super::{
    answer::ToolError,
    app,
    caller::SessionOwner,
    confirm::{Consent, OpenApprovals},
    prompts::PROMPTS,
    resources,
    settings::StructuredMode,
    tasks::TaskOwners,
    tools::{self, Audience},
};
use crate::jobs::JobService;

const INSTRUCTIONS: &str = "Makes and edits images with ByteDance Dreamina 4.0 (Seedream 4.0) on RunComfy. \
The simplest way is generate_image_and_wait: it returns the image URLs, or, if the image takes longer than the wait, \
a request_id to pass to get_result later. For full control, generate_image returns a request_id at once; poll \
check_status every few seconds until it is succeeded, then get_result returns the image URLs. To edit, restyle or \
combine images, pass them in images: an earlier result as request_id#n (every result lists its images' references), \
an https URL, or a local file the server allows. count asks for up to 8 alternatives at once. generate_variations makes more of an earlier job with its own recipe. cancel_request stops a \
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
    /// Whose each task is, with per-user keys (shared by every session, like the tasks).
    pub(super) task_owners: TaskOwners,
    /// `--per-user-keys`: every request carries its caller's RunComfy key (see [`super::caller`]).
    pub(super) per_user_keys: bool,
    /// The owner this session's handler is bound to (per clone: each session's own).
    pub(super) session_owner: SessionOwner,
    /// `--confirm-above-usd`: a call that may cost more is started only once its person accepts
    /// (see [`super::confirm`]).
    pub(super) confirm_above_usd: Option<f64>,
    /// The approvals asked for and not answered yet (shared by every session).
    pub(super) approvals: OpenApprovals,
    /// Shared, not cloned: a stateless server clones the handler for every request, and a copy
    /// of the router (each tool's schema, a map of them) was about 4 k instructions to make and
    /// as many to drop. Made in the background at start (see [`tools::TOOLS`]).
    pub(super) tools: &'static LazyLock<tools::Tools>,
}

impl RunComfyServer {
    pub fn new(jobs: JobService, structured: StructuredMode) -> Self {
        tools::prepare();
        Self {
            jobs,
            structured,
            tasks: TaskManager::new(),
            task_owners: TaskOwners::default(),
            per_user_keys: false,
            session_owner: SessionOwner::default(),
            confirm_above_usd: None,
            approvals: OpenApprovals::default(),
            tools: &tools::TOOLS,
        }
    }

    /// The job journal the server records in (for `/healthz`).
    pub fn journal(&self) -> &crate::journal::Journal {
        self.jobs.journal()
    }

    /// Asks the person before starting jobs that may cost more than `usd` (see [`super::confirm`]).
    pub fn with_confirm_above_usd(mut self, usd: Option<f64>) -> Self {
        self.confirm_above_usd = usd;
        self
    }

    /// Each request carries its caller's RunComfy key, put in its extensions by the HTTP
    /// transport: each caller sees and spends only their own.
    pub fn with_per_user_keys(mut self, on: bool) -> Self {
        self.per_user_keys = on;
        self
    }
}

/// Whether the client of this request renders MCP Apps views (see [`app`]).
fn renders(context: &RequestContext<RoleServer>) -> bool {
    app::client_renders(context.client_capabilities().as_ref())
}

// `tool_handler` fills in get_tool from the router; call_tool is ours, for tasks and app-only
// tools, and list_tools, for the Apps metadata.
#[tool_handler(router = self.tools.router)]
impl ServerHandler for RunComfyServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_tasks()
            .build();
        capabilities
            .extensions
            .get_or_insert_with(Default::default)
            .insert(app::EXTENSION_ID.to_owned(), app::server_settings());
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("runcomfy-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("RunComfy Dreamina 4.0 image generation and editing"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        // Binds the session to the key that opened it (see `caller`).
        self.caller(&context.extensions)?;
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.tools.audience(&request.name) == Some(Audience::ViewOnly) && !renders(&context) {
            // Hidden from this client: as unknown to it as a tool that does not exist.
            return Err(ErrorData::invalid_params("tool not found", None));
        }
        // Resolved once here; every tool takes it as a parameter (see `caller`).
        let caller = self.caller(&context.extensions)?;
        // Every call, a task's too, meets the tool's listed schema before any work; bad
        // arguments are an `isError` result the model reads, not a JSON-RPC error.
        let arguments = request.arguments.get_or_insert_with(Default::default);
        if let Err(invalid) = self.tools.check(&request.name, arguments) {
            return Ok(ToolError::from(invalid).into_result().into());
        }
        // What the paid tools need to ask the person, only where a threshold applies.
        let consent = match self.confirm_threshold(&caller) {
            Some(_) => Consent::of(&request, &context, &caller),
            None => Consent::default(),
        };
        let client_has_tasks = context.client_capabilities().is_some_and(|caps| caps.supports_tasks());
        if client_has_tasks {
            if let Some(task) = self.start_task(&caller, &request, context.peer.clone(), &consent).await {
                return Ok(task);
            }
        }
        if self.per_user_keys {
            // Without per-user keys nothing is put there: the tools' parameter is then the
            // server's caller, at no cost on the default path.
            context.extensions.insert(caller);
        }
        if consent.is_asked() {
            context.extensions.insert(consent);
        }
        self.tools
            .router
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.caller(&context.extensions)?;
        let tools = app::tools_for(self.tools, renders(&context));
        let client = context.peer.peer_info().map(|info| info.client_info.name.clone());
        let tools = self
            .structured
            .declared(tools, client.as_deref(), |name| self.tools.carries_images(name));
        // As rmcp's generated list_tools answers: cache hints for the protocols that have them.
        let cache_hints = context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
        let mut result = ListToolsResult::with_all_items(tools);
        result.ttl_ms = cache_hints.then_some(0);
        result.cache_scope = cache_hints.then_some(CacheScope::Public);
        Ok(result)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(PROMPTS.list_all()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        PROMPTS
            .get_prompt(PromptContext::new(self, request.name, request.arguments, context))
            .await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self.caller(&context.extensions)?;
        Ok(self.list_resources_for(&caller, renders(&context)).await)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context.extensions)?;
        Ok(self
            .read_resource_at(&caller, &request.uri, renders(&context))
            .await?
            .into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(self.find_task(&request.task_id, &context).await?))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.own_task(&request.task_id, &context)?;
        self.tasks.update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.cancel_any_task(&request.task_id, &context).await
    }

    /// rmcp reads a request for a method it knows, whose params it cannot read, as a custom one.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(crate::transport::jsonrpc_errors::invalid_params(&request))
    }
}
