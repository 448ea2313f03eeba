//! `check_status`: where a job stands, and what to call next.

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::{
    super::{
        advice::job_cancelled,
        answer::{success, ToolError},
        args::{self, JobArgs},
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    Audience, ToolUnit,
};
use crate::jobs::{Caller, Origin};
use crate::runcomfy::{JobStatus, RequestId, StatusResponse};

/// `check_status`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobState {
    #[schemars(with = "String")]
    pub request_id: RequestId,
    /// One of in_queue, in_progress, succeeded, failed, cancelled (or another string RunComfy sent).
    #[schemars(with = "String")]
    pub status: JobStatus,
    /// Jobs ahead of this one, while it is queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// True when the status will not change any more.
    pub finished: bool,
    /// What to call next.
    pub next_step: String,
}

impl JobState {
    /// `origin`: what made the job, for what to suggest once it is cancelled.
    fn new(id: RequestId, answer: StatusResponse, origin: Option<&Origin>) -> Self {
        let status = answer.status;
        let next_step = match &status {
            JobStatus::InQueue => format!(
                "Queued{}. Call check_status again in a few seconds; cancel_request can still cancel it.",
                answer
                    .queue_position
                    .map(|p| format!(" at position {p}"))
                    .unwrap_or_default()
            ),
            JobStatus::InProgress => {
                "Generating. Call check_status again in a few seconds (a running job can no longer be cancelled)."
                    .to_owned()
            }
            JobStatus::Succeeded => {
                format!("Done. Call get_result with request_id \"{id}\" for its outputs (image, video or audio URLs).")
            }
            JobStatus::Failed => {
                format!("The job failed. Call get_result with request_id \"{id}\" to see RunComfy's error.")
            }
            JobStatus::Cancelled => job_cancelled(origin, false),
            JobStatus::Unknown(raw) => {
                format!("RunComfy reported an unrecognised status {raw:?}. Call check_status again in a few seconds.")
            }
        };
        Self {
            request_id: id,
            queue_position: answer.queue_position.filter(|_| status == JobStatus::InQueue),
            finished: status.is_terminal(),
            status,
            next_step,
        }
    }

    fn render(&self) -> CallToolResult {
        let position = self
            .queue_position
            .map(|p| format!(", queue position {p}"))
            .unwrap_or_default();
        let text = format!(
            "Job {}: {}{position}.\nNext: {}",
            self.request_id, self.status, self.next_step
        );
        success(self, text)
    }
}

/// What the router, the app view and the tasks path know of `check_status`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::check_status_router,
    audience: Audience::Model,
    images: false,
    task: None,
};

#[tool_router(router = check_status_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "check_status",
        title = "Check job status",
        description = "Read the status of a job started with generate_image: in_queue (with its queue position), in_progress, succeeded, failed or cancelled. Poll it every few seconds; once it says succeeded, call get_result. Does not change the job.",
        input_schema = schema_for::<JobArgs>(),
        output_schema = output_schema_for::<JobState>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn check_status(&self, arguments: JsonObject, caller: Caller) -> Result<CallToolResult, ToolError> {
        let JobArgs { request_id } = args::parse(arguments)?;
        let answer = self
            .jobs
            .status(&caller, &request_id)
            .await
            .map_err(|e| ToolError::api(&request_id, &e))?;
        // Only a cancelled job's advice depends on what made it: the journal is read for that alone.
        let origin = match answer.status {
            JobStatus::Cancelled => self.jobs.origin(&caller, &request_id).await,
            _ => None,
        };
        Ok(JobState::new(request_id, answer, origin.as_ref()).render())
    }
}
