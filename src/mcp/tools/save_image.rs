//! `save_image` (app-only: the view's Save button): saves one image of a finished job to the
//! server's output directory, under the same name a saved result gets. Nothing is paid for; the
//! download has the result downloads' bounds, and the file name is made by the server, never
//! taken from the caller.

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    super::{
        answer::{success, ToolError},
        args::{self, Validate},
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    Audience, ToolUnit,
};
use crate::jobs::Caller;
use crate::runcomfy::RequestId;

/// `save_image`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SaveArgs {
    /// The job whose image to save.
    pub request_id: RequestId,
    /// Which of its images, from 1.
    #[schemars(range(min = 1))]
    pub index: usize,
}

impl Validate for SaveArgs {}

/// `save_image`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Saved {
    #[schemars(with = "String")]
    pub request_id: RequestId,
    pub index: usize,
    /// Where the file is now, on the server's machine.
    pub saved_path: String,
}

/// What the router, the app view and the tasks path know of `save_image`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::save_image_router,
    audience: Audience::ViewOnly,
    images: false,
    task: None,
};

#[tool_router(router = save_image_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "save_image",
        title = "Save image to the output directory",
        description = "Save image `index` (from 1) of a finished job to this server's output directory (--output-dir) and return its path. For the viewer's Save button; costs nothing.",
        input_schema = schema_for::<SaveArgs>(),
        output_schema = output_schema_for::<Saved>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn save_image(&self, arguments: JsonObject, caller: Caller) -> Result<CallToolResult, ToolError> {
        let SaveArgs { request_id, index } = args::parse(arguments)?;
        let saved_path = self
            .jobs
            .save_output(&caller, &request_id, index)
            .await
            .map_err(|why| ToolError::new(format!("Image {request_id}#{index} was not saved: {why}")))?;
        let text = format!("Saved image {request_id}#{index} to {saved_path}");
        Ok(success(
            &Saved {
                request_id,
                index,
                saved_path,
            },
            text,
        ))
    }
}
