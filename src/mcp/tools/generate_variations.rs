//! `generate_variations`: `count` new jobs made with an earlier job's own recipe (its model,
//! prompt, size, settings and reference images, as this machine's journal recorded them), the
//! prompt optionally nudged. Any model the journal holds a recipe for: Dreamina's, and any job
//! `run_model` started. The view's "Make a variation" button calls it too. Each job is checked,
//! limited, confirmed above `--confirm-above-usd` and paid as any other; the request_ids come
//! back at once, as generate_image's do.

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
    started::{About, Started},
    Audience, ToolUnit,
};
use crate::{
    jobs::{Caller, MAX_COUNT},
    runcomfy::RequestId,
    text::ellipsis,
};

/// What the router, the app view and the tasks path know of `generate_variations`: the model
/// calls it, and so does the view's "Make a variation" button, which shows its jobs.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::generate_variations_router,
    audience: Audience::ModelAndView,
    images: false,
    task: None,
};

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct VariationArgs {
    /// The job to vary: its request_id, or one of its images as request_id#n (the recipe is the job's either way).
    pub request_id: String,

    #[serde(default = "one")]
    #[schemars(range(min = 1, max = MAX_COUNT), description = count_description())]
    pub count: u32,

    /// Optional words added to the job's prompt for these variations, e.g. "at dusk" or "in watercolour". Leave it out to vary by chance alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub nudge: Option<String>,
}

fn count_description() -> String {
    format!("How many variations, 1 to {MAX_COUNT} (default 1): that many separate jobs, each paid for.")
}

impl VariationArgs {
    /// The job's id, without an image's `#n`.
    fn job(&self) -> Result<RequestId, InvalidArgument> {
        let id = self
            .request_id
            .split_once('#')
            .map_or(self.request_id.as_str(), |(id, _)| id);
        RequestId::parse(id).map_err(|e| InvalidArgument::new("request_id", e.to_string()))
    }
}

impl Validate for VariationArgs {
    /// The id is read as [`RequestId`] reads it (safe in a URL path), past an image's `#n`.
    fn validate(&self) -> Result<(), InvalidArgument> {
        self.job().map(|_| ())
    }
}

/// `generate_variations`' answer: the new jobs, and what they were made from.
pub type Variations = Started<Varied>;

/// What `generate_variations` says of the jobs it started: what they were made from.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Varied {
    /// The job whose recipe was used.
    #[schemars(with = "String")]
    pub varied: RequestId,
    /// The model the jobs run on (the varied job's).
    pub model: String,
    /// The prompt they were made with: the varied job's, with the nudge if one was given.
    pub prompt: String,
}

impl About for Varied {
    const REQUEST_ID: &'static str = "The first new job's id: pass it to check_status, get_result and cancel_request.";
    const REQUEST_IDS: &'static str = "Every job this call started, in order.";
    const ESTIMATED_COST: &'static str =
        "What the jobs submitted are expected to cost, from RunComfy's price list. get_result reports the actual cost.";

    fn what(&self, jobs: usize) -> String {
        format!(
            "{jobs} variation{} of job {} ({}, \"{}\")",
            if jobs == 1 { "" } else { "s" },
            self.varied,
            self.model,
            ellipsis(&self.prompt, 160),
        )
    }
}

fn description() -> String {
    format!("Make variations of an earlier job: count (1 to {MAX_COUNT}) new jobs with the same model, prompt, size, settings and reference images as that job, for alternatives of an image the user likes ('more like this one', 'another take on #2'). request_id names the job (request_id or request_id#n, as results list them); nudge adds words to its prompt ('at dusk', 'in watercolour'). Works for Dreamina jobs and for any job run_model started, as long as this machine recorded it (list_jobs lists them). Returns the new request_ids at once, as generate_image does: follow them with check_status and get_result. Each variation is a separate paid job, within the server's spending and job limits.")
}

#[tool_router(router = generate_variations_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "generate_variations",
        title = "Make variations of a job (starts paid jobs)",
        description = description(),
        input_schema = schema_for::<VariationArgs>(),
        output_schema = output_schema_for::<Variations>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn generate_variations(
        &self,
        arguments: JsonObject,
        caller: Caller,
        consent: Consent,
    ) -> Result<CallToolResponse, ToolError> {
        let args: VariationArgs = args::parse(arguments)?;
        let varied = args.job()?;
        let prepared = self
            .jobs
            .prepare_again(&caller, "request_id", &varied, args.nudge.as_deref())
            .await?;
        let estimate = self.jobs.estimate(&caller, &prepared, 1).await;
        if let Some(question) = self
            .confirm(&caller, &consent, &prepared, args.count, &estimate)
            .await?
        {
            return Ok(question);
        }
        let outcomes = self.jobs.submit_batch(&caller, &prepared, args.count).await;
        let about = Varied {
            varied,
            model: prepared.model,
            prompt: prepared.prompt,
        };
        let answer = Variations::new(outcomes, estimate, about)?;
        Ok(answer.render().into())
    }
}
