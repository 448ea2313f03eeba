//! `get_result`: a job's outcome. Once it succeeded: every output with its facts, inline
//! previews, a link per output and the saved files; while it runs, its status; if it failed,
//! RunComfy's error. [`JobResult`] is also what `generate_image_and_wait` and a task settle with.

use std::time::Duration;

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router, Peer, RoleServer,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::{
    answer::{success, ToolError},
    args::{self, InvalidArgument, Validate},
    media::{facts, image_block, label, numbers, resource_link},
    schema::{output_schema_for, schema_for},
    RunComfyServer,
};
use crate::jobs::Caller;
use crate::{
    jobs::{price::usd, CostEstimate, Recipe},
    media::{self, Collected, InlineForm, InlineImage, OutputReport, OutputUrls},
    runcomfy::{JobStatus, RequestId, ResultResponse, StatusResponse},
};

/// How long result URLs live: RunComfy publishes no figure for its Model API (the 7 days it
/// states are its Serverless product's), so none is promised. A job reference (`request_id#n`)
/// asks RunComfy for fresh URLs before it reuses one.
pub(super) const URLS_EXPIRE: &str =
    "Result URLs are hosted by RunComfy for a limited time: download anything worth keeping.";

/// How a result's images come back; flattened into the arguments of the tools that return them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct DeliveryArgs {
    /// false (default): images come back as small previews, with their URLs (and saved files when the server saves them). true: the full-size image files instead, up to the server's cap per result; they cost a lot of context, so ask only when full detail is needed inline.
    #[serde(default)]
    pub inline_full_size: bool,
}

impl Validate for DeliveryArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        Ok(())
    }
}

/// `get_result`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResultArgs {
    /// The request_id that generate_image returned.
    pub request_id: RequestId,
    #[serde(flatten)]
    pub delivery: DeliveryArgs,
}

impl Validate for ResultArgs {
    fn validate(&self) -> Result<(), InvalidArgument> {
        Ok(()) // RequestId checks itself while deserialising.
    }

    fn locate(args: &JsonObject) -> Option<InvalidArgument> {
        args::part::<DeliveryArgs>(args)
    }
}

/// `get_result`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobResult {
    #[schemars(with = "String")]
    pub request_id: RequestId,
    /// succeeded, in_queue, in_progress or cancelled (a failed job is an error result).
    #[schemars(with = "String")]
    pub status: JobStatus,
    /// True when the status will not change any more.
    pub finished: bool,
    /// Jobs ahead of this one, while it is queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Image URLs, in RunComfy's order. Empty until the job succeeds.
    pub images: Vec<String>,
    /// Video URLs, if the model produced any.
    pub videos: Vec<String>,
    /// Audio URLs, if the model produced any.
    pub audios: Vec<String>,
    /// URLs of any other files the model returned (under keys of its own), listed as they came.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Outputs RunComfy listed beyond those above, which are not listed (an answer is capped).
    #[serde(skip_serializing_if = "is_zero")]
    pub unlisted_outputs: u32,
    /// When RunComfy accepted the job, as RunComfy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the job finished, as RunComfy wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// What to do next, or how long the URLs live.
    pub next_step: String,
    /// One entry per output (images, then videos, then audio): size, type, saved path, inline copy (images only), problems. Empty until the job succeeds.
    pub outputs: Vec<OutputReport>,
    /// Remarks about the result as a whole (previews left out, limits applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The prompt and settings the job was made with, as the generate tools take them, to run it again, vary it or edit its output. Missing for a job this machine did not submit.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Recipe")]
    pub made_with: Option<Recipe>,
    /// Every job the call started, in order (generate_image_and_wait; more than one with count).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub request_ids: Vec<RequestId>,
    /// Each job of a batch (count above 1), in order; the fields above then sum them up: images and outputs of every job, status succeeded once any has images.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<BatchJob>,
    /// What the job cost in US dollars, as RunComfy reported it (a batch: the jobs whose cost is known, added up). Missing until RunComfy reports it, usually once the job has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// What the call's jobs were expected to cost before they were submitted (generate_image_and_wait), from RunComfy's price list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<CostEstimate>,
}

/// One job of a batch.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchJob {
    /// Missing when the submit's answer never came (a job may exist: see error).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub request_id: Option<RequestId>,
    /// in_queue, in_progress, succeeded, failed, cancelled as RunComfy last said; not_submitted: RunComfy or a spending limit refused the submit (no job, no charge); unknown: the submit's answer or the job's status was lost (see error).
    pub status: String,
    /// True when the status will not change any more.
    pub finished: bool,
    /// Jobs ahead of this one, while it is queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Its image URLs, once it has succeeded.
    pub images: Vec<String>,
    /// Its outputs RunComfy listed beyond those above, which are not listed (an answer is capped).
    #[serde(skip_serializing_if = "is_zero")]
    pub unlisted_outputs: u32,
    /// What went wrong, and what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it cost in US dollars, once RunComfy reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// A job's result with its media collected, and the images to put inline.
pub(super) struct Delivered {
    pub result: JobResult,
    pub inline: Vec<InlineImage>,
}

impl JobResult {
    /// RunComfy's answer, with what was made of its outputs when the job succeeded. `Err` is
    /// the failed job's error answer.
    fn new(id: RequestId, answer: ResultResponse, media: Option<&Collected>) -> Result<Self, ToolError> {
        let status = answer.status.clone();
        let urls = answer.output.as_deref().map(OutputUrls::of).unwrap_or_default();
        let listed = media::listing(&urls);
        let (images, videos, audios, files) = (
            listed.images.to_vec(),
            listed.videos.to_vec(),
            listed.audios.to_vec(),
            listed.files.to_vec(),
        );
        let next_step = match &status {
            JobStatus::Succeeded if urls.is_empty() => {
                "The job succeeded but RunComfy returned no output URLs. Try get_result again in a few seconds.".to_owned()
            }
            // A video or audio result: there is no image to edit.
            JobStatus::Succeeded if images.is_empty() => URLS_EXPIRE.to_owned(),
            JobStatus::Succeeded => format!("{URLS_EXPIRE} {}", how_to_go_on(&format!("{id}#1"))),
            JobStatus::Failed => return Err(job_failed(&id, &answer)),
            JobStatus::Cancelled => "The job was cancelled and produced no image. Call generate_image again if the image is still wanted.".to_owned(),
            other => format!("Not finished yet ({other}). Call get_result again in a few seconds, or check_status to follow the queue."),
        };
        Ok(Self {
            request_id: id,
            finished: status.is_terminal(),
            status,
            queue_position: None,
            images,
            videos,
            audios,
            files,
            unlisted_outputs: count_u32(listed.unlisted),
            created_at: answer.created_at.map(plain),
            finished_at: answer.finished_at.map(plain),
            cost_usd: answer.cost,
            estimated_cost_usd: None,
            next_step,
            outputs: media.map(|m| m.outputs.clone()).unwrap_or_default(),
            notes: media
                .map(|m| super::super::media::note_texts(&m.notes))
                .unwrap_or_default(),
            made_with: None,
            request_ids: Vec::new(),
            jobs: Vec::new(),
        })
    }

    /// The wait ended before the job did: not an error, a handle to come back with.
    pub(super) fn pending(id: RequestId, last: Option<StatusResponse>, waited: Duration) -> Self {
        let status = last.as_ref().map_or(JobStatus::InQueue, |s| s.status.clone());
        let queue_position = last.and_then(|s| s.queue_position);
        let position = queue_position
            .map(|p| format!(" at queue position {p}"))
            .unwrap_or_default();
        Self {
            next_step: format!(
                "Still {status}{position} after waiting {} s; the job goes on at RunComfy. Call get_result with request_id \"{id}\" in a few seconds to collect its outputs. Do not call the tool that started it again for this job: that would start a new paid one.",
                waited.as_secs()
            ),
            request_id: id,
            status,
            finished: false,
            queue_position,
            images: Vec::new(),
            videos: Vec::new(),
            audios: Vec::new(),
            files: Vec::new(),
            unlisted_outputs: 0,
            created_at: None,
            finished_at: None,
            outputs: Vec::new(),
            notes: Vec::new(),
            made_with: None,
            request_ids: Vec::new(),
            jobs: Vec::new(),
            cost_usd: None,
            estimated_cost_usd: None,
        }
    }

    /// Text first (every fact, for clients and models that read only text), then the inline
    /// images, then a link per output. `structuredContent` goes along unless `keep_structured`
    /// says this client would then drop the images.
    pub(super) fn render(&self, inline: &[InlineImage], keep_structured: bool) -> CallToolResult {
        let mut result = success(self, self.text());
        if !keep_structured && !inline.is_empty() {
            tracing::debug!("leaving structuredContent out so that the client shows the images");
            result.structured_content = None;
        }
        result.content.extend(inline.iter().map(image_block));
        let numbers = numbers(&self.outputs);
        result.content.extend(
            self.outputs
                .iter()
                .zip(numbers)
                .filter_map(|(o, n)| resource_link(o, n)),
        );
        result
    }

    fn text(&self) -> String {
        let mut text = if self.jobs.is_empty() {
            format!("Job {}: {}.", self.request_id, self.status)
        } else {
            let mut counts: Vec<(String, usize)> = Vec::new();
            for job in &self.jobs {
                match counts.iter_mut().find(|(s, _)| *s == job.status) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((job.status.clone(), 1)),
                }
            }
            let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            let mut text = format!("{} jobs: {}.", self.jobs.len(), counts.join(", "));
            for (i, job) in self.jobs.iter().enumerate() {
                let id = job
                    .request_id
                    .as_ref()
                    .map_or("(no request_id)".to_owned(), RequestId::to_string);
                text.push_str(&format!("\nJob {} {id}: {}", i + 1, job.status));
                if let Some(p) = job.queue_position {
                    text.push_str(&format!(", queue position {p}"));
                }
                if let Some(cost) = job.cost_usd {
                    text.push_str(&format!(", cost {}", usd(cost)));
                }
                if let Some(error) = &job.error {
                    text.push_str(&format!("\n  {}", error.replace('\n', " ")));
                }
            }
            text
        };
        if !self.outputs.is_empty() {
            let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            let mut kinds = Vec::new();
            if !self.images.is_empty() || (self.videos.is_empty() && self.audios.is_empty() && self.files.is_empty()) {
                kinds.push(count(self.images.len(), "image"));
            }
            if !self.videos.is_empty() {
                kinds.push(count(self.videos.len(), "video"));
            }
            if !self.audios.is_empty() {
                kinds.push(count(self.audios.len(), "audio file"));
            }
            if !self.files.is_empty() {
                kinds.push(count(self.files.len(), "other file"));
            }
            if self.unlisted_outputs > 0 {
                kinds.push(format!(
                    "and {} more not listed",
                    media::thousands(self.unlisted_outputs as usize)
                ));
            }
            // A batch's list of jobs ends in a line of its own: the count is the answer's, not the
            // last job's.
            let gap = if self.jobs.is_empty() { " " } else { "\nIn all: " };
            text.push_str(&format!("{gap}{}.", kinds.join(", ")));
        }
        for (output, number) in self.outputs.iter().zip(numbers(&self.outputs)) {
            text.push_str(&format!("\n{}: {}", label(output, number), output.url));
            let facts = facts(output);
            if !facts.is_empty() {
                text.push_str(&format!("\n  {facts}"));
            }
            if let Some(reference) = &output.reference {
                text.push_str(&format!("\n  reference {reference}"));
            }
            if let Some(path) = &output.saved_path {
                text.push_str(&format!("\n  saved to {path}"));
            }
            if let Some(inline) = &output.inline {
                let form = match inline.form {
                    InlineForm::Preview => "preview",
                    InlineForm::FullSize => "full-size image",
                };
                text.push_str(&format!("\n  {form} attached ({}×{})", inline.width, inline.height));
            }
            if let Some(problem) = &output.problem {
                text.push_str(&format!("\n  note: {problem}"));
            }
            if let Some(why) = &output.not_a_link {
                text.push_str(&format!("\n  not linked: {why}"));
            }
        }
        for note in &self.notes {
            text.push_str(&format!("\nNote: {note}"));
        }
        if let Some(cost) = self.cost_usd {
            text.push_str(&format!("\nCost: {} (as RunComfy reported it).", usd(cost)));
        }
        if let Some(estimate) = &self.estimated_cost_usd {
            text.push_str(&format!("\n{}.", estimate.text()));
        }
        if let Some(recipe) = &self.made_with {
            text.push_str(&format!(
                "\nMade with: {} (call again with these to vary it)",
                recipe_line(recipe)
            ));
        }
        text.push_str(&format!("\n{}", self.next_step));
        text
    }
}

/// What to do with a finished image: edit it by its reference, or run the request again.
pub(super) fn how_to_go_on(first_reference: &str) -> String {
    format!("To edit or build on an image, call generate_image_and_wait with images: [\"{first_reference}\"] (each image's reference is listed) and a prompt saying what to change. Each call is a new paid job.")
}

/// `prompt "…", size 2048x2048(1:1), scale 0.5, force_single false, images ["a#1"]`.
fn recipe_line(recipe: &Recipe) -> String {
    let mut line = format!(
        "prompt {:?}, size {}, scale {}, force_single {}",
        recipe.prompt,
        recipe.size.as_deref().unwrap_or("(the model's default)"),
        recipe.scale,
        recipe.force_single
    );
    if !recipe.images.is_empty() {
        let images: Vec<String> = recipe.images.iter().map(|i| format!("{i:?}")).collect();
        line.push_str(&format!(", images [{}]", images.join(", ")));
    }
    line
}

/// A timestamp as text, whether RunComfy sent a string or a number (shortened: it is the
/// upstream's, and a timestamp is short).
fn plain(value: Value) -> String {
    let text = match value {
        Value::String(s) => s,
        other => other.to_string(),
    };
    crate::text::ellipsis(&text, 64)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A count for the answer's schema (an upstream could list more than `u32::MAX` only in theory).
pub(super) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(super) fn job_failed(id: &RequestId, answer: &ResultResponse) -> ToolError {
    let detail = answer
        .error_message()
        .unwrap_or_else(|| "RunComfy gave no reason".to_owned());
    ToolError::new(format!(
        "Job {id} failed on RunComfy: {detail}\nThe prompt may have been refused by the model's content rules, or the service failed. Adjust the prompt if that seems likely and call generate_image again."
    ))
}

impl RunComfyServer {
    /// A job's result as RunComfy gave it, with its media collected when it succeeded.
    pub(super) async fn delivered(
        &self,
        caller: &Caller,
        id: RequestId,
        answer: ResultResponse,
        delivery: &DeliveryArgs,
    ) -> Result<Delivered, ToolError> {
        let urls = answer.output.as_deref().map(OutputUrls::of).unwrap_or_default();
        let media = if answer.status == JobStatus::Succeeded && !urls.is_empty() {
            Some(self.jobs.collect(caller, &id, &urls, delivery.inline_full_size).await)
        } else {
            None
        };
        let result = JobResult::new(id, answer, media.as_ref())?;
        let inline = media.map(|m| m.inline).unwrap_or_default();
        Ok(Delivered { result, inline })
    }

    /// The result as this client should get it (see [`crate::mcp::settings::StructuredMode`]).
    pub(super) fn shaped(&self, delivered: &Delivered, peer: &Peer<RoleServer>) -> CallToolResult {
        let client = peer.peer_info().map(|info| info.client_info.name.clone());
        let keep = self.structured.keep_with_images(client.as_deref());
        delivered.result.render(&delivered.inline, keep)
    }
}

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
        let answer = self
            .jobs
            .result(&caller, &request_id)
            .await
            .map_err(|e| ToolError::api(&request_id, &e))?;
        let recipe = self.jobs.recipe(&caller, &request_id).await;
        let mut delivered = self.delivered(&caller, request_id, answer, &delivery).await?;
        delivered.result.made_with = recipe;
        Ok(self.shaped(&delivered, &peer))
    }
}
