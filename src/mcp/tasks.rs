//! The tasks extension (SEP-2663): a client that declares it runs the image tools as tasks it
//! polls instead of calls it holds open. A task runs the job flow (one job, or a batch) and
//! settles with the same answer as the waiting tool; its status message mirrors the jobs'
//! phases, and `tasks/cancel` cancels the upstream jobs still queued. Arguments and reference
//! images are checked before a task is made: bad input is answered at once, and costs nothing.

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
    pub(super) async fn start_task(
        &self,
        request: &CallToolRequestParams,
        peer: Peer<RoleServer>,
    ) -> Option<CallToolResponse> {
        let arguments = request.arguments.clone().unwrap_or_default();
        let (generate, delivery) = match tools::task_arguments(&request.name, arguments)? {
            Ok(parsed) => parsed,
            Err(e) => return Some(CallToolResponse::Complete(ToolError::from(e).into_result())),
        };
        let prepared = match self.jobs.prepare(&generate.request).await {
            Ok(prepared) => prepared,
            Err(e) => return Some(CallToolResponse::Complete(ToolError::from(e).into_result())),
        };
        let count = generate.count;
        let estimate = self.jobs.estimate(&prepared, count).await.ok();
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
                let runs = server
                    .jobs
                    .run_batch(&prepared, count, TASK_WAIT, &cancel, |index, elapsed, step| {
                        ctx.set_status_message(progress_message(index, count, step, elapsed))
                    })
                    .await;
                watcher.abort();
                if cancel.is_cancelled() {
                    return Err(TaskExit::Cancelled);
                }
                let answer = server
                    .answer_runs(runs, &prepared.recipe, estimate.as_ref(), &delivery, &peer)
                    .await;
                Ok(settle(answer))
            })
        });
        tracing::info!(task_id = %task.task_id, tool = %request.name, "started a task");
        Some(CallToolResponse::Task(CreateTaskResult::new(task)))
    }
}
