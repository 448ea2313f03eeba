//! `generate_image`: submit a job (or `count` of them) and hand back the request_ids at once.

use rmcp::{
    model::{CallToolResponse, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    super::{
        answer::ToolError,
        args::{self, InvalidArgument, Validate},
        confirm::Consent,
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    get_result::DeliveryArgs,
    started::{About, Started},
    Audience, TaskJob, TaskRun, ToolUnit,
};
use crate::jobs::Caller;
use crate::{
    dreamina::{Endpoint, ImageRequest, MAX_IMAGES},
    jobs::{Prepared, MAX_COUNT},
};

fn one() -> u32 {
    1
}

/// The arguments of both generate tools: the image, and how many jobs to make of it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GenerateArgs {
    #[serde(flatten)]
    pub request: ImageRequest,

    #[serde(default = "one")]
    #[schemars(range(min = 1, max = MAX_COUNT), description = count_description())]
    pub count: u32,
}

fn count_description() -> String {
    format!("How many images to make of this request, 1 to {MAX_COUNT} (default 1): that many separate jobs run side by side, for alternatives to choose from ('give me four options'). Each job is paid for separately: ask for more than 1 only when the user wants options.")
}

impl Validate for GenerateArgs {}

/// `generate_image`'s answer: the handles to everything that follows.
pub type Submitted = Started<DreaminaJobs>;

/// What `generate_image` says of the jobs it started.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DreaminaJobs {
    /// The size that was requested, e.g. `2048x2048(1:1)`.
    pub size: String,
    /// `text-to-image`, or `edit` when reference images were given.
    pub endpoint: String,
    /// Reference images given, for the answer's text.
    #[serde(skip)]
    references: usize,
}

impl DreaminaJobs {
    fn of(prepared: &Prepared, references: usize) -> Self {
        Self {
            size: prepared.size.clone(),
            // A Dreamina request is an edit exactly when it has reference images.
            endpoint: match prepared.recipe.as_ref().is_some_and(|r| !r.images.is_empty()) {
                true => Endpoint::Edit,
                false => Endpoint::TextToImage,
            }
            .as_str()
            .to_owned(),
            references,
        }
    }
}

impl About for DreaminaJobs {
    const REQUEST_ID: &'static str = "The (first) job's id: pass it to check_status, get_result and cancel_request.";
    const REQUEST_IDS: &'static str =
        "Every job this call started, in order: one, or `count` of them. Follow each one with its own request_id.";
    const ESTIMATED_COST: &'static str = "What the jobs submitted are expected to cost, from RunComfy's price list: exact with force_single, a range otherwise (a set may hold several images). get_result reports the actual cost. Missing when the price is not known (see cost_note).";

    fn what(&self, jobs: usize) -> String {
        let from = match self.references {
            0 => String::new(),
            1 => ", editing 1 reference image".to_owned(),
            n => format!(", from {n} reference images"),
        };
        format!(
            "{jobs} Dreamina 4.0 {} job{} ({}{from})",
            self.endpoint,
            if jobs == 1 { "" } else { "s" },
            self.size
        )
    }
}

/// A task of `generate_image`: the images to make; results come as the defaults say.
fn task_run(arguments: JsonObject) -> Result<TaskRun, InvalidArgument> {
    args::parse(arguments).map(|images| (TaskJob::Images(images), DeliveryArgs::default()))
}

fn description() -> String {
    format!("Start ByteDance Dreamina 4.0 (Seedream 4.0) jobs on RunComfy and return their request_ids at once: text-to-image from a prompt, or, with images (1 to {MAX_IMAGES} reference images), an edit or combination of them. An image takes from several seconds to a few minutes. Then call check_status with a request_id every few seconds until status is succeeded, and call get_result for the image URLs. count (1 to {MAX_COUNT}) starts that many jobs side by side for alternatives. Each job is paid for: do not call this again for the same image just because it is still running. The answer gives estimated_cost_usd; the server may have a spending or job limit, and a submit past it is refused with an error that says when the next job fits. Only Dreamina 4.0: for video, audio or another image model, find it with list_models and run it with run_model.")
}

/// What the router, the app view and the tasks path know of `generate_image`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::generate_image_router,
    audience: Audience::ModelAndView,
    images: false,
    task: Some(task_run),
};

#[tool_router(router = generate_image_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "generate_image",
        title = "Generate or edit image (Dreamina 4.0)",
        description = description(),
        input_schema = schema_for::<GenerateArgs>(),
        output_schema = output_schema_for::<Submitted>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        meta = crate::media::host_files::file_params_meta()
    )]
    async fn generate_image(
        &self,
        arguments: JsonObject,
        caller: Caller,
        consent: Consent,
    ) -> Result<CallToolResponse, ToolError> {
        let GenerateArgs { request, count } = args::parse(arguments)?;
        let prepared = self.jobs.prepare(&caller, &request).await?;
        let estimate = self.jobs.estimate(&caller, &prepared, 1).await;
        if let Some(question) = self.confirm(&caller, &consent, &prepared, count, &estimate).await? {
            return Ok(question);
        }
        let outcomes = self.jobs.submit_batch(&caller, &prepared, count).await;
        let about = DreaminaJobs::of(&prepared, request.images.len());
        Ok(Submitted::new(outcomes, estimate, about)?.render().into())
    }
}
