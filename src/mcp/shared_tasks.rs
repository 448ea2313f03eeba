//! Tasks across replicas. rmcp's task manager keeps tasks in this process's memory and takes no
//! other store, so the live task stays there, where it runs; with a shared journal (PostgreSQL)
//! each task's state is also saved there as it moves (at its start, at each submit, every few
//! seconds while it polls, and when it settles), and a replica asked about a task it does not
//! run answers from that record:
//!
//! - `tasks/get`: the running replica's last state; a settled task's result, as it settled.
//! - A task whose replica stopped (not settled, not saved for [`ORPHANED_AFTER`]) is answered as
//!   failed with its jobs' request ids: the jobs go on at RunComfy (and are in the journal), so
//!   `get_result` on any replica finishes them. Resuming the task's own flow elsewhere would
//!   need its arguments and delivery options kept too, and a second follower racing the first
//!   while that one is only slow; the ids are what the model needs, at no risk.
//! - `tasks/cancel`: the task's queued jobs are cancelled at RunComfy; the running replica's
//!   flow then sees them cancelled and settles the task as it would after its own cancel.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use rmcp::{
    model::{DetailedTask, ErrorCode, JsonObject, TaskPayload, TaskStatus},
    service::RequestContext,
    ErrorData, RoleServer,
};
use tokio_util::task::AbortOnDropHandle;

use super::RunComfyServer;
use crate::{
    journal::{Owner, TaskRecord},
    runcomfy::RequestId,
};

/// How often a running task's state is saved while it polls, at most.
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// A task not settled and not saved for this long lost the replica that ran it.
const ORPHANED_AFTER: Duration = Duration::from_secs(60);

/// What a running task has saved, to save again as it moves.
#[derive(Clone)]
pub(super) struct SharedTask {
    server: RunComfyServer,
    task_id: String,
    /// Whose task it is: another replica shows it to this owner only.
    owner: Owner,
    state: Arc<Mutex<Saved>>,
}

struct Saved {
    request_ids: Vec<String>,
    last: Option<Instant>,
}

impl SharedTask {
    pub(super) fn new(server: &RunComfyServer, task_id: &str, owner: &Owner) -> Option<Self> {
        server.jobs.journal().shares_tasks().then(|| Self {
            server: server.clone(),
            task_id: task_id.to_owned(),
            owner: owner.clone(),
            state: Arc::new(Mutex::new(Saved {
                request_ids: Vec::new(),
                last: None,
            })),
        })
    }

    /// The task as it starts, saved before it submits anything.
    pub(super) async fn started(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).last = Some(Instant::now());
        if let Ok(detail) = self.server.tasks.get_task(&self.task_id) {
            self.save(detail, Vec::new()).await;
        }
    }

    /// Saves the task every [`SAVE_EVERY`] until aborted, however slowly its jobs are polled
    /// (`--poll-max-ms` may exceed [`ORPHANED_AFTER`]): a silent record means a lost replica.
    /// Stops when the handle is dropped, also when rmcp drops the task's future (its TTL).
    pub(super) fn heartbeat(&self) -> AbortOnDropHandle<()> {
        let this = self.clone();
        AbortOnDropHandle::new(tokio::spawn(async move {
            let mut every = tokio::time::interval(SAVE_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                this.progressed(None);
            }
        }))
    }

    /// The task as it is now, saved in the background; `submitted`: a job it just started (always
    /// saved), else saved only if the last save is [`SAVE_EVERY`] old.
    pub(super) fn progressed(&self, submitted: Option<&RequestId>) {
        let request_ids = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(id) = submitted {
                state.request_ids.push(id.to_string());
            } else if state.last.is_some_and(|at| at.elapsed() < SAVE_EVERY) {
                return;
            }
            state.last = Some(Instant::now());
            state.request_ids.clone()
        };
        let Ok(detail) = self.server.tasks.get_task(&self.task_id) else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move { this.save(detail, request_ids).await });
    }

    /// The task settled with `payload`: saved before the caller returns it.
    pub(super) async fn settled(&self, payload: TaskPayload) {
        let Ok(current) = self.server.tasks.get_task(&self.task_id) else {
            return;
        };
        let mut task = current.task;
        task.last_updated_at = rmcp::task_manager::current_timestamp();
        let request_ids = self.state.lock().unwrap_or_else(|e| e.into_inner()).request_ids.clone();
        self.save(DetailedTask::new(task, payload), request_ids).await;
    }

    async fn save(&self, detail: DetailedTask, request_ids: Vec<String>) {
        let finished = !matches!(detail.status(), TaskStatus::Working | TaskStatus::InputRequired);
        let Ok(detail) = serde_json::to_value(&detail) else {
            return;
        };
        let record = TaskRecord {
            task_id: self.task_id.clone(),
            owner: self.owner.clone(),
            detail,
            request_ids,
            finished,
            updated_at: Utc::now(),
        };
        self.server.jobs.journal().save_task(record).await;
    }
}

impl RunComfyServer {
    /// `tasks/get`: this process's task, else the shared record of another replica's; either
    /// only when it is the caller's own (another's is as unknown as one that does not exist).
    pub(super) async fn find_task(
        &self,
        task_id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<DetailedTask, ErrorData> {
        let local = self.tasks.get_task(task_id);
        if local.is_ok() {
            self.own_task(task_id, context)?;
            return local;
        }
        let caller = self.caller(&context.extensions)?;
        let Some(record) = self.jobs.journal().task(caller.owner(), task_id).await else {
            return local;
        };
        let stored: DetailedTask = serde_json::from_value(record.detail.clone())
            .map_err(|e| ErrorData::internal_error(format!("the stored task {task_id} cannot be read: {e}"), None))?;
        let silent = (Utc::now() - record.updated_at).to_std().unwrap_or_default();
        if record.finished || silent < ORPHANED_AFTER {
            return Ok(stored);
        }
        let ids = record.request_ids.join(", ");
        let message = if ids.is_empty() {
            "the server running this task stopped before it submitted a job; nothing was charged for it. Run the tool again.".to_owned()
        } else {
            format!(
                "the server running this task stopped; its jobs go on at RunComfy and are in the job journal. \
                 Call get_result with each request_id to finish them (do not run the tool again, which pays for new jobs): {ids}"
            )
        };
        let mut error = JsonObject::new();
        error.insert("code".into(), ErrorCode::INTERNAL_ERROR.0.into());
        error.insert("message".into(), message.into());
        error.insert("data".into(), serde_json::json!({ "request_ids": record.request_ids }));
        Ok(DetailedTask::new(stored.task, TaskPayload::Failed { error }))
    }

    /// `tasks/cancel`: this process's task, else another replica's, by cancelling its jobs at
    /// RunComfy (its replica's flow then settles it as cancelled).
    pub(super) async fn cancel_any_task(
        &self,
        task_id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if self.tasks.get_task(task_id).is_ok() {
            self.own_task(task_id, context)?;
            return self.tasks.cancel_task(task_id);
        }
        let caller = self.caller(&context.extensions)?;
        let Some(record) = self.jobs.journal().task(caller.owner(), task_id).await else {
            return self.tasks.cancel_task(task_id);
        };
        if record.finished {
            return Ok(());
        }
        for id in &record.request_ids {
            let Ok(id) = RequestId::parse(id) else { continue };
            if let Err(e) = self.jobs.cancel(&caller, &id).await {
                tracing::warn!(task_id, %id, error = %e, "cancelling another replica's task: a job could not be cancelled");
            }
        }
        Ok(())
    }
}
