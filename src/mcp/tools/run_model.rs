//! `run_model`: any model of RunComfy's catalogue, by its id and an input that meets its schema
//! (describe_model shows it). The input is checked against the model's own schema and its media
//! inputs resolved before anything is paid for; then the job runs as `generate_image_and_wait`'s
//! do (progress, cancellation, tasks, the same answer), or, with `wait: false`, is only submitted.

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
        job_result::{Answer, Delivered, JobResult},
        schema::{output_schema_for, schema_for},
        waiting::Waiting,
        RunComfyServer,
    },
    get_result::DeliveryArgs,
    Audience, TaskJob, TaskRun, ToolUnit,
};
use crate::jobs::{
    settings::{DEFAULT_WAIT_SECS, MAX_WAIT_SECS},
    Batch, JobOutcome, Prepared, MAX_COUNT,
};
use crate::runcomfy::MAX_ID_CHARS;

/// The arguments of `run_model`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct RunModelArgs {
    /// The model's id, as list_models gives it, e.g. bytedance/seedance-2.5/text-to-video/1080p.
    #[schemars(length(max = MAX_ID_CHARS), regex(pattern = crate::schema_check::NOT_BLANK))]
    pub model_id: String,

    /// The model's input: an object that meets the input_schema describe_model gives for it. Media inputs (an image, video or audio field) take https:// URLs; image inputs also take an earlier result's request_id#n, an allowed local file or a data URI.
    pub input: JsonObject,

    /// true (default): wait for the result, reporting progress, and answer as get_result does. false: submit and return the request_id at once, to follow with check_status and get_result.
    #[serde(default = "yes")]
    pub wait: bool,

    #[serde(default = "one")]
    #[schemars(range(min = 1, max = MAX_COUNT), description = count_description())]
    pub count: u32,

    // A plain integer for the schema, as in generate_image_and_wait (some clients reject null).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 3600), description = max_wait_description())]
    pub max_wait_seconds: Option<u32>,

    #[serde(flatten)]
    pub delivery: DeliveryArgs,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn count_description() -> String {
    format!("How many jobs to run of this same input, 1 to {MAX_COUNT} (default 1), side by side, for alternatives to choose from. Each job is paid for separately and checked against the server's limits on its own: ask for more than 1 only when the user wants options.")
}

fn max_wait_description() -> String {
    format!("With wait: seconds to wait for the result before returning the request_id to poll with instead. Leave it out for the server's default ({DEFAULT_WAIT_SECS} s); the server caps it ({MAX_WAIT_SECS} s by default). A video can take minutes: the job goes on after the wait ends.")
}

impl Validate for RunModelArgs {}

/// A task of `run_model`: its job, waited for as long as it takes.
fn task_run(arguments: JsonObject) -> Result<TaskRun, InvalidArgument> {
    args::parse::<RunModelArgs>(arguments).map(|a| {
        let delivery = a.delivery.clone();
        (TaskJob::Model(a), delivery)
    })
}

fn description() -> String {
    format!("Run any model of RunComfy's catalogue (image, edit, video, audio) by its model_id, with an input that meets the input_schema describe_model gives for it (list_models finds ids). For Dreamina 4.0 images prefer generate_image_and_wait. The input is checked against the model's schema before anything is paid for, and a bad input is refused with the schema's own message. By default it waits for the result, reporting progress (up to max_wait_seconds, default {DEFAULT_WAIT_SECS} s), and answers as get_result does: image previews, video and audio links, saved files; if the job is still going when the wait ends, it returns the request_id: then call get_result later, not run_model again. Every job is paid for (a video by its seconds). Cancelling the call cancels the job while it is queued.")
}

/// What the router, the app view and the tasks path know of `run_model`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::run_model_router,
    audience: Audience::Model,
    images: true,
    task: Some(task_run),
};

#[tool_router(router = run_model_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "run_model",
        title = "Run a RunComfy model",
        description = description(),
        input_schema = schema_for::<RunModelArgs>(),
        output_schema = output_schema_for::<JobResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn run_model(&self, arguments: JsonObject, call: Waiting) -> Result<CallToolResponse, ToolError> {
        let args: RunModelArgs = args::parse(arguments)?;
        let prepared = self
            .jobs
            .prepare_model(&call.caller, &args.model_id, &args.input)
            .await?;
        if !args.wait {
            return self.submit_model(&call, &prepared, args.count).await;
        }
        self.wait_for_jobs(&call, &prepared, args.count, args.max_wait_seconds, &args.delivery)
            .await
    }
}

impl RunComfyServer {
    /// Only the submits (one, or `count` through the generate tools' batch): the jobs as pending
    /// results (the same shape as a wait that ended first), each refused one with its reason,
    /// with the estimate.
    async fn submit_model(
        &self,
        call: &Waiting,
        prepared: &Prepared,
        count: u32,
    ) -> Result<CallToolResponse, ToolError> {
        let estimate = self.jobs.estimate(&call.caller, prepared, count).await;
        if let Some(question) = self
            .confirm(&call.caller, &call.consent, prepared, count, &estimate)
            .await?
        {
            return Ok(question);
        }
        let outcomes = self.jobs.submit_batch(&call.caller, prepared, count).await;
        let jobs = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(id) => JobOutcome::Submitted { id },
                Err(e) => JobOutcome::NotSubmitted(e),
            })
            .collect();
        let delivered = Delivered::new(Answer {
            jobs: Batch { jobs },
            started: true,
            origin: Some(prepared.origin()),
            estimate: Some(estimate),
        })?;
        Ok(self.shaped(&delivered, &call.peer).into())
    }
}
