//! `get_result`: a job's outcome. Once it succeeded: every output with its facts, inline
//! previews, a link per output and the saved files; while it runs, its status; if it failed,
//! RunComfy's error. Its [`JobResult`] is also what the waiting tools and a task settle with.

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router, Peer, RoleServer,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    super::{
        answer::ToolError,
        args::{self, Validate},
        job_result::{Answer, Delivered, JobResult},
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    Audience, ToolUnit,
};
use crate::{
    jobs::{Batch, Caller},
    runcomfy::RequestId,
};

/// How a result's images come back; flattened into the arguments of the tools that return them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct DeliveryArgs {
    /// false (default): images come back as small previews, with their URLs (and saved files when the server saves them). true: the full-size image files instead, up to the server's cap per result; they cost a lot of context, so ask only when full detail is needed inline.
    #[serde(default)]
    pub inline_full_size: bool,
}

impl Validate for DeliveryArgs {}

/// `get_result`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResultArgs {
    /// The request_id that generate_image returned.
    pub request_id: RequestId,
    #[serde(flatten)]
    pub delivery: DeliveryArgs,
}

impl Validate for ResultArgs {}

impl RunComfyServer {
    /// The result as this client should get it (see [`crate::mcp::settings::StructuredMode`]).
    pub(in crate::mcp) fn shaped(&self, delivered: &Delivered, peer: &Peer<RoleServer>) -> CallToolResult {
        let client = peer.peer_info().map(|info| info.client_info.name.clone());
        let keep = self.structured.keep_with_images(client.as_deref());
        delivered.result.render(&delivered.inline, keep)
    }
}

/// What the router, the app view and the tasks path know of `get_result`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::get_result_router,
    audience: Audience::ModelAndView,
    images: true,
    task: None,
};

#[tool_router(router = get_result_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "get_result",
        title = "Get job result",
        description = "Get the outcome of a job started with generate_image or run_model: once it has succeeded, the image (or video and audio) URLs with their size and type, small inline previews, a link per image, the saved file paths when the server saves images, each image's reference (request_id#n, to edit it) and the prompt and settings it was made with; the current status while it is still queued or running (call again later); or RunComfy's error if it failed. Does not change the job.",
        input_schema = schema_for::<ResultArgs>(),
        output_schema = output_schema_for::<JobResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_result(
        &self,
        arguments: JsonObject,
        peer: Peer<RoleServer>,
        caller: Caller,
    ) -> Result<CallToolResult, ToolError> {
        let ResultArgs { request_id, delivery } = args::parse(arguments)?;
        let result = self
            .jobs
            .result(&caller, &request_id)
            .await
            .map_err(|e| ToolError::api(&request_id, &e))?;
        let origin = self.jobs.origin(&caller, &request_id).await;
        let job = self
            .jobs
            .answered(&caller, request_id, result, delivery.inline_full_size)
            .await;
        let delivered = Delivered::new(Answer {
            jobs: Batch { jobs: vec![job] },
            started: false,
            origin,
            estimate: None,
        })?;
        Ok(self.shaped(&delivered, &peer))
    }
}
