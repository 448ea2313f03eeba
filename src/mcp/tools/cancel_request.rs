//! `cancel_request`: cancel a job while it is still queued.

use rmcp::{
    model::{CallToolResult, JsonObject},
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::{
    super::{
        answer::{success, ToolError},
        args::{self, JobArgs},
        schema::{output_schema_for, schema_for},
        RunComfyServer,
    },
    Audience, ToolUnit,
};
use crate::jobs::Caller;
use crate::runcomfy::{CancelOutcome, CancelResponse, JobStatus, RequestId};

/// `cancel_request`'s answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Cancellation {
    #[schemars(with = "String")]
    pub request_id: RequestId,
    /// `cancelled`, `not_cancellable`, or what RunComfy said if it was neither.
    pub outcome: String,
    /// The job's status after the attempt, when RunComfy gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub status: Option<JobStatus>,
    /// What happened, in words.
    pub message: String,
}

impl Cancellation {
    pub(in crate::mcp) fn new(id: &RequestId, answer: &CancelResponse) -> Self {
        let status = answer.status.clone();
        let (outcome, message) = match &answer.outcome {
            Some(CancelOutcome::Cancelled) => ("cancelled".to_owned(), "Cancelled: the job was still queued and will not run.".to_owned()),
            Some(CancelOutcome::NotCancellable) => (
                "not_cancellable".to_owned(),
                format!(
                    "Not cancellable: the job is {} and only queued jobs can be cancelled. It will run to the end; call get_result later for its images.",
                    status.as_ref().map_or("no longer queued", JobStatus::as_str)
                ),
            ),
            Some(CancelOutcome::Unknown(raw)) => (raw.trim_matches('"').to_owned(), format!("RunComfy answered the cancel with an unrecognised outcome {raw}. Call check_status to see where the job stands.")),
            None if status == Some(JobStatus::Cancelled) => ("cancelled".to_owned(), "Cancelled.".to_owned()),
            None => ("unknown".to_owned(), "RunComfy did not say whether the job was cancelled. Call check_status to see where the job stands.".to_owned()),
        };
        Self {
            request_id: id.clone(),
            outcome,
            status,
            message,
        }
    }

    fn render(&self) -> CallToolResult {
        success(self, format!("Job {}: {}", self.request_id, self.message))
    }
}

/// What the router, the app view and the tasks path know of `cancel_request`.
pub(super) const UNIT: ToolUnit = ToolUnit {
    router: RunComfyServer::cancel_request_router,
    audience: Audience::Model,
    images: false,
    task: None,
};

#[tool_router(router = cancel_request_router, vis = "pub(super)")]
impl RunComfyServer {
    #[tool(
        name = "cancel_request",
        title = "Cancel job",
        description = "Cancel a job started with generate_image. Only a job that is still in_queue can be cancelled; a job already in_progress runs to the end and the answer says not_cancellable. Use it when the user no longer wants the image.",
        input_schema = schema_for::<JobArgs>(),
        output_schema = output_schema_for::<Cancellation>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn cancel_request(&self, arguments: JsonObject, caller: Caller) -> Result<CallToolResult, ToolError> {
        let JobArgs { request_id } = args::parse(arguments)?;
        let answer = self
            .jobs
            .cancel(&caller, &request_id)
            .await
            .map_err(|e| ToolError::api(&request_id, &e))?;
        Ok(Cancellation::new(&request_id, &answer).render())
    }
}
