//! `generate_image`: submit a job (or `count` of them) and hand back the request_ids at once.

use rmcp::{
    model::{CallToolResponse, CallToolResult, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    super::{
        answer::{success, ToolError},
        args::{self, InvalidArgument, Validate},
        confirm::Consent,
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    get_result::DeliveryArgs,
    Audience, TaskJob, TaskRun, ToolUnit,
};
use crate::jobs::Caller;
use crate::{
    dreamina::{Endpoint, ImageRequest, MAX_IMAGES},
    jobs::{CostEstimate, Prepared, SubmitError, MAX_COUNT},
    runcomfy::{JobStatus, RequestId},
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
#[derive(Debug, Serialize, JsonSchema)]
pub struct Submitted {
    /// The (first) job's id: pass it to check_status, get_result and cancel_request.
    #[schemars(with = "String")]
    pub request_id: RequestId,
    /// Every job this call started, in order: one, or `count` of them. Follow each one with its own request_id.
    #[schemars(with = "Vec<String>")]
    pub request_ids: Vec<RequestId>,
    /// Always `in_queue` right after submitting.
    #[schemars(with = "String")]
    pub status: JobStatus,
    /// The size that was requested, e.g. `2048x2048(1:1)`.
    pub size: String,
    /// `text-to-image`, or `edit` when reference images were given.
    pub endpoint: String,
    /// Submits of this call that failed, when others succeeded (when all fail the call is an error).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// What the jobs submitted are expected to cost, from RunComfy's price list: exact with force_single, a range otherwise (a set may hold several images). get_result reports the actual cost. Missing when the price is not known (see cost_note).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<CostEstimate>,
    /// Why there is no estimate, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_note: Option<String>,
    /// What to call next.
    pub next_step: String,
}

impl Submitted {
    /// The answer for a call's submits, in order. `Err` when none got a job.
    /// `estimate`: of one job of `prepared`.
    pub(super) fn new(
        outcomes: Vec<Result<RequestId, SubmitError>>,
        prepared: &Prepared,
        estimate: Result<CostEstimate, String>,
    ) -> Result<Self, ToolError> {
        let count = outcomes.len();
        let mut ids = Vec::new();
        let mut failures = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(id) => ids.push(id),
                Err(e) => failures.push(ToolError::submit(&e)),
            }
        }
        if ids.is_empty() {
            return Err(match failures.len() {
                1 => failures.remove(0),
                n => ToolError::new(format!(
                    "All {n} submits failed.\n{}",
                    failures.iter().map(ToolError::text).collect::<Vec<_>>().join("\n")
                )),
            });
        }
        let list = ids.iter().map(|id| format!("\"{id}\"")).collect::<Vec<_>>().join(", ");
        let mut next_step = if ids.len() == 1 {
            format!(
                "Call check_status with request_id {list} every few seconds until status is succeeded, then call get_result for the image URLs. cancel_request can stop it while it is still queued."
            )
        } else {
            format!(
                "Call check_status with each request_id ({list}) every few seconds until it is succeeded, then get_result for its image URLs. cancel_request can stop any of them while it is still queued."
            )
        };
        if !failures.is_empty() {
            next_step.push_str(&format!(
                " {} of the {count} submits failed (see failures); do not submit them again without checking that no job was made.",
                failures.len()
            ));
        }
        // The estimate of the jobs that were made, not of those refused.
        let jobs = ids.len() as u32;
        let (estimated_cost_usd, cost_note) = match estimate {
            Ok(one) => (Some(one.for_jobs(jobs)), None),
            Err(reason) => (None, Some(format!("No cost estimate: {reason}."))),
        };
        Ok(Self {
            request_id: ids[0].clone(),
            request_ids: ids,
            status: JobStatus::InQueue,
            size: prepared.size.clone(),
            // A Dreamina request is an edit exactly when it has reference images.
            endpoint: match prepared.recipe.as_ref().is_some_and(|r| !r.images.is_empty()) {
                true => Endpoint::Edit,
                false => Endpoint::TextToImage,
            }
            .as_str()
            .to_owned(),
            failures: failures.iter().map(|f| f.text().replace('\n', " ")).collect(),
            estimated_cost_usd,
            cost_note,
            next_step,
        })
    }

    pub(super) fn render(&self, references: usize) -> CallToolResult {
        let from = match references {
            0 => String::new(),
            1 => ", editing 1 reference image".to_owned(),
            n => format!(", from {n} reference images"),
        };
        let n = self.request_ids.len();
        let what = format!(
            "{n} Dreamina 4.0 {} job{} ({}{from})",
            self.endpoint,
            if n == 1 { "" } else { "s" },
            self.size
        );
        let mut text = first_line(&what, self.estimated_cost_usd.as_ref(), &self.request_ids, &self.status);
        for failure in &self.failures {
            text.push_str(&format!("\nFailed submit: {failure}"));
        }
        if let Some(estimate) = &self.estimated_cost_usd {
            text.push_str(&format!("\n{}; get_result reports the actual cost.", estimate.text()));
        }
        if let Some(note) = &self.cost_note {
            text.push_str(&format!("\n{note}"));
        }
        text.push_str(&format!("\nNext: {}", self.next_step));
        success(self, text)
    }
}

/// The first line of a submit's answer: what was started and its estimated range, before the
/// jobs' ids (a person or model reading only the first line knows what it costs).
pub(super) fn first_line(what: &str, estimate: Option<&CostEstimate>, ids: &[RequestId], status: &JobStatus) -> String {
    let cost = match estimate {
        Some(estimate) if ids.len() > 1 => format!("estimated {} in all", estimate.range_text()),
        Some(estimate) => format!("estimated {}", estimate.range_text()),
        None => "cost not estimated".to_owned(),
    };
    let list: Vec<String> = ids.iter().map(RequestId::to_string).collect();
    let jobs = if ids.len() == 1 { "job" } else { "jobs" };
    format!(
        "Submitted {what}, {cost}: {jobs} {}. Status: {status}.",
        list.join(", ")
    )
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
        Ok(Submitted::new(outcomes, &prepared, estimate)?
            .render(request.images.len())
            .into())
    }
}
