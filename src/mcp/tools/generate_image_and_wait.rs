//! `generate_image_and_wait`: submit (one job or `count` of them), wait with progress
//! notifications, and return the result as `get_result` does, or the request_ids to come back
//! with when the wait ends first: the waiting flow of [`super::super::waiting`], which a task
//! runs too.

use rmcp::{
    model::{CallToolResponse, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    super::{
        answer::ToolError,
        args::{self, InvalidArgument, Validate},
        job_result::JobResult,
        schema::{output_schema_for, schema_for},
        waiting::Waiting,
        RunComfyServer,
    },
    generate_image::GenerateArgs,
    get_result::DeliveryArgs,
    Audience, TaskJob, TaskRun, ToolUnit,
};
use crate::{
    dreamina::MAX_IMAGES,
    jobs::{
        settings::{DEFAULT_WAIT_SECS, MAX_WAIT_SECS},
        MAX_COUNT,
    },
};

/// The arguments of `generate_image_and_wait`: the images, and how long to wait for them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct WaitArgs {
    #[serde(flatten)]
    pub generate: GenerateArgs,

    #[serde(flatten)]
    pub delivery: DeliveryArgs,

    // Described as a plain integer: some clients (Gemini) reject the `["integer", "null"]` type
    // an Option would get; leaving the field out is how a call asks for the default.
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 3600), description = max_wait_description())]
    pub max_wait_seconds: Option<u32>,
}

fn max_wait_description() -> String {
    format!("Seconds to wait for the image before returning the request_id to poll with instead. Leave it out to use the server's default ({DEFAULT_WAIT_SECS} s, inside the ~60 s after which some clients abandon a call); the server caps it ({MAX_WAIT_SECS} s by default).")
}

fn description() -> String {
    format!("Make images with ByteDance Dreamina 4.0 (Seedream 4.0) on RunComfy and wait for them, reporting progress, then return the image URLs as get_result does: text-to-image from a prompt, or, with images (1 to {MAX_IMAGES} reference images: an earlier result's request_id#n, an https URL, an allowed local file), an edit, a restyle or a combination of them. count (1 to {MAX_COUNT}) makes that many alternatives side by side. If the images are not ready within max_wait_seconds (default {DEFAULT_WAIT_SECS} s), it returns the request_ids and status instead, not an error: then call get_result with each request_id a few seconds later. Every job is paid for: do not call this tool again for the same image. The answer gives the actual cost_usd and the estimate made before submitting; a server spending or job limit may refuse the submit, with an error that says when the next job fits. Cancelling the call cancels the jobs still queued. Only Dreamina 4.0: for video, audio or another image model, find it with list_models and run it with run_model.")
}

impl Validate for WaitArgs {}

/// A task of `generate_image_and_wait`: its jobs, followed for as long as they take.
fn task_run(arguments: JsonObject) -> Result<TaskRun, InvalidArgument> {
    args::parse::<WaitArgs>(arguments).map(|a| (TaskJob::Images(a.generate), a.delivery))
}

/// What the router, the app view and the tasks path know of `generate_image_and_wait`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::generate_image_and_wait_router,
    audience: Audience::ModelAndView,
    images: true,
    task: Some(task_run),
};

#[tool_router(router = generate_image_and_wait_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "generate_image_and_wait",
        title = "Generate or edit image and wait (Dreamina 4.0)",
        description = description(),
        input_schema = schema_for::<WaitArgs>(),
        output_schema = output_schema_for::<JobResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        meta = crate::media::host_files::file_params_meta()
    )]
    async fn generate_image_and_wait(
        &self,
        arguments: JsonObject,
        call: Waiting,
    ) -> Result<CallToolResponse, ToolError> {
        let args: WaitArgs = args::parse(arguments)?;
        let GenerateArgs { request, count } = &args.generate;
        let prepared = self.jobs.prepare(&call.caller, request).await?;
        self.wait_for_jobs(&call, &prepared, *count, args.max_wait_seconds, &args.delivery)
            .await
    }
}
