//! The tasks extension (SEP-2663): a client that declares it runs the image tools as tasks it
//! polls instead of calls it holds open. A task runs the job flow (one job, or a batch) and
//! settles with the same answer as the waiting tool; its status message mirrors the jobs'
//! phases, and `tasks/cancel` cancels the upstream jobs still queued. Arguments and reference
//! images are checked before a task is made: bad input is answered at once, and costs nothing.
//!
//! With per-user keys a task is its caller's: [`TaskOwners`] remembers whose each task is, and
//! `tasks/get`, `tasks/update` and `tasks/cancel` of another person's task answer exactly as for
//! a task that does not exist.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    model::{CallToolRequestParams, CallToolResponse, CreateTaskResult, TaskPayload},
    service::RequestContext,
    task_manager::{TaskExit, TaskManager, TaskOptions},
    ErrorData, Peer, RoleServer,
};
use tokio_util::sync::CancellationToken;

use crate::jobs::Step;

use super::{
    answer::{settle, ToolError},
    confirm::Consent,
    shared_tasks::SharedTask,
    tools::TaskJob,
    waiting::{progress_message, Answered},
    RunComfyServer,
};
use crate::{jobs::Caller, journal::Owner};

/// Past this many remembered owners, those of tasks the manager has forgotten (expired) go.
const OWNERS_BEFORE_SWEEP: usize = 1024;

/// Whose each task is. Cheap to clone; clones share the map (every session sees every task).
#[derive(Debug, Clone, Default)]
pub(super) struct TaskOwners(Arc<Mutex<HashMap<String, Owner>>>);

impl TaskOwners {
    fn record(&self, tasks: &TaskManager, task_id: &str, owner: &Owner) {
        let mut owners = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if owners.len() >= OWNERS_BEFORE_SWEEP {
            owners.retain(|id, _| tasks.get_task(id).is_ok());
        }
        owners.insert(task_id.to_owned(), owner.clone());
    }

    fn is_of(&self, task_id: &str, owner: &Owner) -> bool {
        let owners = self.0.lock().unwrap_or_else(|e| e.into_inner());
        owners.get(task_id) == Some(owner)
    }
}

/// How long a task follows its job: a task is polled, so no client cut-off applies.
const TASK_WAIT: Duration = Duration::from_secs(30 * 60);

impl RunComfyServer {
    /// Starts `request` as a task if its tool runs as one (`None`: it does not).
    pub(super) async fn start_task(
        &self,
        caller: &Caller,
        request: &CallToolRequestParams,
        peer: Peer<RoleServer>,
        consent: &Consent,
    ) -> Option<CallToolResponse> {
        let arguments = request.arguments.clone().unwrap_or_default();
        let (job, delivery) = match self.tools.task(&request.name, arguments)? {
            Ok(parsed) => parsed,
            Err(e) => return Some(CallToolResponse::Complete(ToolError::from(e).into_result())),
        };
        let (prepared, count) = match &job {
            TaskJob::Images(generate) => (self.jobs.prepare(caller, &generate.request).await, generate.count),
            TaskJob::Model(run) => (
                self.jobs.prepare_model(caller, &run.model_id, &run.input).await,
                run.count,
            ),
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Some(CallToolResponse::Complete(ToolError::from(e).into_result())),
        };
        let estimate = self.jobs.estimate(caller, &prepared, count).await;
        match self.confirm(caller, consent, &prepared, count, &estimate).await {
            Ok(None) => {}
            Ok(Some(question)) => return Some(question),
            Err(refused) => return Some(CallToolResponse::Complete(refused.into_result())),
        }
        let (server, task_caller) = (self.clone(), caller.clone());
        let options = TaskOptions::new()
            .with_poll_interval_ms(1000)
            .with_status_message("Submitting");
        // The task is answered once it is recorded for the other replicas: a tasks/get there
        // right after must find it.
        let (recorded_tx, recorded) = tokio::sync::oneshot::channel::<()>();
        let task = self.tasks.spawn(options, move |ctx| {
            Box::pin(async move {
                // Saved for the other replicas, when they share a journal (see shared_tasks).
                let shared = SharedTask::new(&server, ctx.task_id(), task_caller.owner());
                if let Some(shared) = &shared {
                    shared.started().await;
                }
                let _ = recorded_tx.send(());
                let heartbeat = shared.as_ref().map(SharedTask::heartbeat);
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
                    .run_batch(
                        &task_caller,
                        &prepared,
                        count,
                        TASK_WAIT,
                        &cancel,
                        |index, elapsed, step| {
                            ctx.set_status_message(progress_message(index, count, step, elapsed));
                            if let Some(shared) = &shared {
                                shared.progressed(match step {
                                    Step::Submitted(id) => Some(id),
                                    Step::Polled(..) => None,
                                });
                            }
                        },
                    )
                    .await;
                watcher.abort();
                drop(heartbeat);
                if cancel.is_cancelled() {
                    if let Some(shared) = &shared {
                        shared.settled(TaskPayload::Cancelled).await;
                    }
                    return Err(TaskExit::Cancelled);
                }
                // A task's result is read later (tasks/result), when nothing is gained by
                // answering before the previews: the full answer.
                let answered = Answered {
                    origin: prepared.origin(),
                    estimate,
                    early: false,
                };
                let answer = server.answer_runs(&task_caller, runs, answered, &delivery, &peer).await;
                let result = settle(answer);
                if let Some(shared) = &shared {
                    let object = match serde_json::to_value(&result) {
                        Ok(serde_json::Value::Object(map)) => map,
                        _ => Default::default(),
                    };
                    shared.settled(TaskPayload::Completed { result: object }).await;
                }
                Ok(result)
            })
        });
        if self.per_user_keys {
            self.task_owners.record(&self.tasks, &task.task_id, caller.owner());
        }
        let _ = recorded.await;
        tracing::info!(task_id = %task.task_id, tool = %request.name, "started a task");
        Some(CallToolResponse::Task(CreateTaskResult::new(task)))
    }

    /// `Ok` when the task of `task_id` may be seen by this request's caller: always with one
    /// server-wide key; with per-user keys only their own, another's being "unknown task" as rmcp
    /// answers for one that does not exist.
    pub(super) fn own_task(&self, task_id: &str, context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
        if !self.per_user_keys {
            return Ok(());
        }
        let caller = self.caller(&context.extensions)?;
        if self.task_owners.is_of(task_id, caller.owner()) {
            Ok(())
        } else {
            Err(ErrorData::invalid_params(format!("unknown task: {task_id}"), None))
        }
    }
}
