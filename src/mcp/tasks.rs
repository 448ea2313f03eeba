//! The tasks extension (SEP-2663): a client that declares it runs the image tools as tasks it
//! polls instead of calls it holds open. A task runs the job flow and settles with the same
//! answer as the waiting tool; its status message mirrors the job's phase, and `tasks/cancel`
//! cancels the upstream job if it is still queued.

use std::time::Duration;

use rmcp::{
    model::{CallToolRequestParams, CallToolResponse, CreateTaskResult},
    task_manager::{TaskExit, TaskOptions},
    Peer, RoleServer,
};
use tokio_util::sync::CancellationToken;

use super::{
    answer::{settle, ToolError},
    tools::{self, generate_image_and_wait::progress_message},
    RunComfyServer,
};

/// How long a task follows its job: a task is polled, so no client cut-off applies.
const TASK_WAIT: Duration = Duration::from_secs(30 * 60);

impl RunComfyServer {
    /// Starts `request` as a task if its tool runs as one (`None`: it does not).
    pub(super) fn start_task(
        &self,
        request: &CallToolRequestParams,
        peer: Peer<RoleServer>,
    ) -> Option<CallToolResponse> {
        let arguments = request.arguments.clone().unwrap_or_default();
        let (image, delivery) = match tools::task_arguments(&request.name, arguments)? {
            Ok(parsed) => parsed,
            Err(e) => return Some(CallToolResponse::Complete(ToolError::from(e).into_result())),
        };
        let server = self.clone();
        let options = TaskOptions::new()
            .with_poll_interval_ms(1000)
            .with_status_message("Submitting");
        let task = self.tasks.spawn(options, move |ctx| {
            Box::pin(async move {
                let cancel = CancellationToken::new();
                let watcher = tokio::spawn({
                    let (ctx, cancel) = (ctx.clone(), cancel.clone());
                    async move {
                        ctx.cancelled().await;
                        cancel.cancel();
                    }
                });
                let run = server
                    .jobs
                    .run(&image, TASK_WAIT, &cancel, |elapsed, step| {
                        ctx.set_status_message(progress_message(step, elapsed))
                    })
                    .await;
                watcher.abort();
                if cancel.is_cancelled() {
                    return Err(TaskExit::Cancelled);
                }
                Ok(settle(server.answer_run(run, &delivery, &peer).await))
            })
        });
        tracing::info!(task_id = %task.task_id, tool = %request.name, "started a task");
        Some(CallToolResponse::Task(CreateTaskResult::new(task)))
    }
}
