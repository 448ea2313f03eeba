//! `vary_job` (app-only: the view's "Make a variation" button): one new job with the prompt and
//! settings an earlier job was made with, as this machine's journal recorded them. A paid job,
//! so the view calls it only on the person's click, on a button that says so. It goes through
//! the same checks and submit as `generate_image` with those arguments (one job, never more).

use rmcp::{
    model::{CallToolResponse, JsonObject},
    tool, tool_router,
};

use super::{
    super::{
        answer::ToolError,
        args::{self, JobArgs},
        confirm::Consent,
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    generate_image::{GenerateArgs, Submitted},
    Audience, ToolUnit,
};
use crate::jobs::Caller;

/// What the router, the app view and the tasks path know of `vary_job`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::vary_job_router,
    audience: Audience::ViewOnly,
    images: false,
    task: None,
};

#[tool_router(router = vary_job_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "vary_job",
        title = "Make a variation (starts a paid job)",
        description = "Start one new paid job with the same prompt, size, settings and reference images as an earlier job this machine recorded, for a variation of it; returns its request_id as generate_image does. For the viewer's variation button, on the person's click only.",
        input_schema = schema_for::<JobArgs>(),
        output_schema = output_schema_for::<Submitted>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn vary_job(
        &self,
        arguments: JsonObject,
        caller: Caller,
        consent: Consent,
    ) -> Result<CallToolResponse, ToolError> {
        let JobArgs { request_id } = args::parse(arguments)?;
        let Some(recipe) = self.jobs.recipe(&caller, &request_id).await else {
            return Err(ToolError::new(format!(
                "Job {request_id} is not recorded on this machine, so its prompt and settings are unknown. Nothing was submitted."
            )));
        };
        let arguments = match serde_json::to_value(&recipe) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(ToolError::new(
                    "The recorded settings could not be read. Nothing was submitted.",
                ))
            }
        };
        let GenerateArgs { request, .. } = args::parse(arguments)?;
        let prepared = self.jobs.prepare(&caller, &request).await?;
        let estimate = self.jobs.estimate(&caller, &prepared, 1).await;
        if let Some(question) = self.confirm(&caller, &consent, &prepared, 1, &estimate).await? {
            return Ok(question);
        }
        let outcomes = self.jobs.submit_batch(&caller, &prepared, 1).await;
        Ok(Submitted::new(outcomes, &prepared, estimate)?
            .render(request.images.len())
            .into())
    }
}
