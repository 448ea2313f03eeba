//! `generate_image`: submit a job and hand back its request_id at once.

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::super::{
    answer::{success, ToolError},
    args::{self, InvalidArgument},
    schema::{output_schema_for, schema_for},
    RunComfyServer,
};
use crate::{
    dreamina::ImageRequest,
    runcomfy::{JobStatus, RequestId},
};

/// `generate_image`'s answer: the handle to everything that follows.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Submitted {
    /// The job's id: pass it to check_status, get_result and cancel_request.
    #[schemars(with = "String")]
    pub request_id: RequestId,
    /// Always `in_queue` right after submitting.
    #[schemars(with = "String")]
    pub status: JobStatus,
    /// The size that was requested, e.g. `2048x2048(1:1)`.
    pub size: String,
    /// What to call next.
    pub next_step: String,
}

impl Submitted {
    fn new(id: RequestId, request: &ImageRequest) -> Self {
        Self {
            next_step: format!(
                "Call check_status with request_id \"{id}\" every few seconds until status is succeeded, then call get_result for the image URLs. cancel_request can stop it while it is still queued."
            ),
            request_id: id,
            status: JobStatus::InQueue,
            size: request.size.as_str().to_owned(),
        }
    }

    fn render(&self) -> CallToolResult {
        let text = format!(
            "Submitted Dreamina 4.0 job {} ({}). Status: {}.\nNext: {}",
            self.request_id, self.size, self.status, self.next_step
        );
        success(self, text)
    }
}

/// The arguments as the tasks path reads them: the image; results come as the defaults say.
pub(in crate::mcp) fn task_arguments(arguments: JsonObject) -> Result<ImageRequest, InvalidArgument> {
    args::parse(arguments)
}

#[tool_router(router = generate_image_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "generate_image",
        title = "Generate image (Dreamina 4.0)",
        description = "Start a ByteDance Dreamina 4.0 (Seedream 4.0) text-to-image job on RunComfy and return its request_id at once; the image itself takes from several seconds to a few minutes. Then call check_status with the request_id every few seconds until status is succeeded, and call get_result for the image URLs. Each call starts a new paid job: do not call it again for the same image just because it is still running.",
        input_schema = schema_for::<ImageRequest>(),
        output_schema = output_schema_for::<Submitted>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn generate_image(&self, arguments: JsonObject) -> Result<CallToolResult, ToolError> {
        let request: ImageRequest = args::parse(arguments)?;
        let id = self.jobs.submit(&request).await.map_err(|e| ToolError::submit(&e))?;
        Ok(Submitted::new(id, &request).render())
    }
}
