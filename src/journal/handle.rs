//! The journal as the job service sees it: async, cheap to clone, and unable to fail a tool call. Every
//! store call runs on tokio's blocking pool (SQLite blocks on the file and on other processes'
//! locks); a store error is logged as a warning and the call goes on, because a tool that paid for
//! an image must still hand it over when the safety net is torn.

use std::sync::Arc;

use chrono::Utc;
use futures::future::{BoxFuture, FutureExt, Shared};

use super::{
    Admission, DayUsage, JobKey, JobQuery, JobRecord, JobStore, JobUpdate, Limits, NewJob, Owner, Refusal, Retention,
    SpendTotals, StoreError, SubmitOutcome, TaskRecord,
};
use crate::runcomfy::RequestId;

/// Whether a submit may go: the answer of [`Journal::begin_submit`].
#[derive(Debug)]
pub enum Gate {
    /// Send it; the journal's key for it, when it was recorded.
    Go(Option<JobKey>),
    /// It would pass a limit: do not send it.
    Refused(Refusal),
    /// Limits are set but the journal cannot count (why): do not send it.
    Unchecked(String),
}

#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    state: State,
    retention: Retention,
}

/// The journal's file is opened while the client's `initialize` is answered (about 1 ms of a 4 ms
/// start, most of it disk syncs): every call waits for the opening, and only calls do.
enum State {
    Ready(Arc<Opened>),
    Opening(Shared<BoxFuture<'static, Arc<Opened>>>),
}

struct Opened {
    store: Option<Arc<dyn JobStore>>,
    /// Where the journal is, or why there is none, for list_jobs and the logs.
    whereabouts: Whereabouts,
}

enum Whereabouts {
    At(String),
    Off(String),
}

impl Opened {
    fn new(store: Arc<dyn JobStore>, location: impl Into<String>) -> Self {
        Self {
            store: Some(store),
            whereabouts: Whereabouts::At(location.into()),
        }
    }

    fn off(reason: impl Into<String>) -> Self {
        Self {
            store: None,
            whereabouts: Whereabouts::Off(reason.into()),
        }
    }

    fn off_reason(&self) -> Option<&str> {
        match &self.whereabouts {
            Whereabouts::Off(reason) => Some(reason),
            Whereabouts::At(_) => None,
        }
    }
}

/// What opening a journal's store gave: the store and where it is, or why there is none (the
/// journal is then off, as [`Journal::off`] is).
pub type Opening = Result<(Arc<dyn JobStore>, String), String>;

/// The journal an opening on the blocking pool ended in, logged.
fn settle(outcome: Result<Opening, tokio::task::JoinError>) -> Opened {
    match outcome.unwrap_or_else(|e| Err(format!("opening it panicked: {e}"))) {
        Ok((store, location)) => {
            tracing::info!(at = %location, "job journal");
            Opened::new(store, location)
        }
        Err(reason) => {
            tracing::warn!("job journal off: {reason}. Jobs still run, but list_jobs cannot show them.");
            Opened::off(reason)
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.peek().map(|o| &o.whereabouts) {
            Some(Whereabouts::At(place)) => write!(f, "Journal(at {place})"),
            Some(Whereabouts::Off(reason)) => write!(f, "Journal(off: {reason})"),
            None => write!(f, "Journal(opening)"),
        }
    }
}

impl Default for Journal {
    /// Off: a server built without asking for a journal records nothing.
    fn default() -> Self {
        Self::off("the server was started without a journal")
    }
}

impl Journal {
    pub fn new(store: Arc<dyn JobStore>, location: impl Into<String>, retention: Retention) -> Self {
        Self::ready(Opened::new(store, location), retention)
    }

    pub fn off(reason: impl Into<String>) -> Self {
        Self::ready(Opened::off(reason), Retention::default())
    }

    fn ready(opened: Opened, retention: Retention) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: State::Ready(Arc::new(opened)),
                retention,
            }),
        }
    }

    /// A journal on this machine that `open` opens on tokio's blocking pool, started now and
    /// not waited for: calls wait for it. Never a shared database: whether tasks are shared must be
    /// known at once ([`Journal::shares_tasks`]).
    pub fn opening(open: impl FnOnce() -> Opening + Send + 'static, retention: Retention) -> Self {
        let task = tokio::task::spawn_blocking(open);
        let opened = async move { Arc::new(settle(task.await)) };
        Self {
            inner: Arc::new(Inner {
                state: State::Opening(opened.boxed().shared()),
                retention,
            }),
        }
    }

    /// The journal `open` opens on tokio's blocking pool, once it is open.
    pub async fn open_now(open: impl FnOnce() -> Opening + Send + 'static, retention: Retention) -> Self {
        Self::ready(settle(tokio::task::spawn_blocking(open).await), retention)
    }

    /// The journal once opened (at once, after the first call).
    async fn opened(&self) -> Arc<Opened> {
        match &self.inner.state {
            State::Ready(opened) => opened.clone(),
            State::Opening(opening) => match opening.peek() {
                Some(opened) => opened.clone(),
                None => opening.clone().await,
            },
        }
    }

    /// The journal if it is open by now.
    fn peek(&self) -> Option<&Opened> {
        match &self.inner.state {
            State::Ready(opened) => Some(opened),
            State::Opening(opening) => opening.peek().map(|o| &**o),
        }
    }

    /// Where the journal is, when there is one (and, while it is still opening, not yet).
    pub fn location(&self) -> Option<&str> {
        match &self.peek()?.whereabouts {
            Whereabouts::At(place) => Some(place),
            Whereabouts::Off(_) => None,
        }
    }

    /// Why there is no journal, when there is none. `None` while it is still opening.
    pub fn off_reason(&self) -> Option<&str> {
        self.peek()?.off_reason()
    }

    /// Whether a record may be kept: the journal is on, or still opening.
    pub fn may_record(&self) -> bool {
        self.peek().is_none_or(|o| o.store.is_some())
    }

    /// Records a submit about to be sent, before its body leaves, so that a crash mid-submit
    /// leaves a trace, and checks it against `limits` in the same transaction. Without limits the
    /// journal cannot stop a submit: no journal, or a failed record (logged), is `Go(None)`. With
    /// limits, a journal that cannot count is [`Gate::Unchecked`]: limits that cannot be checked
    /// must not be passed silently.
    pub async fn begin_submit(&self, job: NewJob, limits: Limits) -> Gate {
        let opened = self.opened().await;
        if limits.any() && opened.store.is_none() {
            let reason = opened.off_reason().unwrap_or("there is none");
            return Gate::Unchecked(format!("the job journal, where spending is counted, is off: {reason}"));
        }
        match self
            .run("recording a submit", move |s| s.begin_submit(&job, &limits))
            .await
        {
            Some(Admission::Admitted(key)) => Gate::Go(Some(key)),
            Some(Admission::Refused(refusal)) => Gate::Refused(refusal),
            None if limits.any() => Gate::Unchecked(
                "the job journal, where spending is counted, could not be read just now; try again in a moment, and if it keeps failing, tell the person who runs this server (its log has the cause)"
                    .to_owned(),
            ),
            None => Gate::Go(None),
        }
    }

    /// `owner`'s spend today, over the last 7 days and over all recorded time. `Err` says why
    /// there is none.
    pub async fn spend(&self, owner: &Owner) -> Result<SpendTotals, String> {
        let owner = owner.clone();
        self.query("counting spend", move |s| s.spend(&owner, Utc::now())).await
    }

    /// `owner`'s spend and jobs per UTC day over the last `days` days, newest first.
    pub async fn usage(&self, owner: &Owner, days: u32) -> Result<Vec<DayUsage>, String> {
        let owner = owner.clone();
        self.query("counting usage", move |s| s.usage(&owner, days, Utc::now()))
            .await
    }

    /// Records how a submit ended: the request id, or that its fate is unknown, or that no job
    /// was created. Pruning rides on it: a submit is the only time the journal grows.
    pub async fn finish_submit(&self, key: JobKey, outcome: SubmitOutcome) {
        let retention = self.inner.retention;
        self.run("recording a submit's outcome", move |s| {
            s.finish_submit(key, &outcome, Utc::now())?;
            s.prune(&retention, Utc::now()).map(drop)
        })
        .await;
    }

    /// Records what was learnt about `owner`'s job: a status, a result, a cancel, files saved
    /// here.
    pub async fn record(&self, owner: &Owner, id: &RequestId, update: JobUpdate) {
        if update.is_empty()
            || self
                .opened()
                .await
                .store
                .as_ref()
                .is_some_and(|s| s.unchanged(owner, id.as_str(), &update))
        {
            return;
        }
        let (owner, request_id) = (owner.clone(), id.to_string());
        let known = self
            .run("updating a job", move |s| {
                s.update(&owner, &request_id, &update, Utc::now())
            })
            .await;
        if known == Some(false) {
            tracing::debug!(%id, "job not in the journal (submitted elsewhere, before it existed, or another owner's)");
        }
    }

    /// Jobs, newest first. `Err` says why there is nothing to list.
    pub async fn list(&self, query: JobQuery) -> Result<Vec<JobRecord>, String> {
        self.query("listing jobs", move |s| s.list(&query)).await
    }

    /// A read whose failure the caller shows: `Err` says why there is no answer.
    async fn query<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&dyn JobStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, String> {
        if let Some(reason) = self.opened().await.off_reason() {
            return Err(format!("The job journal is off: {reason}."));
        }
        self.run(what, f)
            .await
            .ok_or_else(|| "The job journal could not be read just now; try again in a moment, and if it keeps failing, tell the person who runs this server (its log has the cause).".to_owned())
    }

    /// `owner`'s job with this request id as recorded here; `None` when unknown, another
    /// owner's, or without a journal.
    /// How long the newest succeeded jobs of `model` at `size` took from submit to done, newest
    /// first, at most `limit` (see [`JobStore::run_lengths`]); empty without a journal or when
    /// the query fails (logged).
    pub async fn run_lengths(&self, model: &str, size: &str, limit: usize) -> Vec<std::time::Duration> {
        let (model, size) = (model.to_owned(), size.to_owned());
        self.run("reading run lengths", move |s| s.run_lengths(&model, &size, limit))
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|ms| u64::try_from(ms).ok().map(std::time::Duration::from_millis))
            .collect()
    }

    pub async fn get(&self, owner: &Owner, id: &RequestId) -> Option<JobRecord> {
        let (owner, request_id) = (owner.clone(), id.to_string());
        self.run("reading a job", move |s| s.get(&owner, &request_id))
            .await
            .flatten()
    }

    /// Whether tasks are kept here for other servers (a shared database).
    pub fn shares_tasks(&self) -> bool {
        // A journal opening in the background is never shared (see `opening`).
        self.peek().and_then(|o| o.store.as_ref()).is_some_and(|s| s.shared())
    }

    /// Records a task's state for the other servers sharing the journal (a no-op otherwise).
    pub async fn save_task(&self, task: TaskRecord) {
        if self.shares_tasks() {
            self.run("recording a task", move |s| s.save_task(&task)).await;
        }
    }

    /// `owner`'s task with this id as another server recorded it.
    pub async fn task(&self, owner: &Owner, task_id: &str) -> Option<TaskRecord> {
        if !self.shares_tasks() {
            return None;
        }
        let (owner, task_id) = (owner.clone(), task_id.to_owned());
        self.run("reading a task", move |s| s.task(&owner, &task_id))
            .await
            .flatten()
    }

    /// The shared database's state, for `/healthz`: `None` without one (a journal on this
    /// machine, or none), else whether it answers (`Err` says why not, for the log).
    pub async fn database_health(&self) -> Option<Result<(), String>> {
        let store = self.opened().await.store.clone().filter(|s| s.shared())?;
        Some(
            tokio::task::spawn_blocking(move || store.health())
                .await
                .unwrap_or_else(|e| Err(StoreError::Panicked(e.to_string())))
                .map_err(|e| e.to_string()),
        )
    }

    async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&dyn JobStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Option<T> {
        let store = self.opened().await.store.clone()?;
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "job journal: {what} failed; carrying on without it");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "job journal: {what} panicked; carrying on without it");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::journal::{sqlite::SqliteStore, Owner};

    fn job() -> NewJob {
        NewJob {
            owner: Owner::single(),
            model: "m".into(),
            prompt: "a fox".into(),
            size: "1024x1024(1:1)".into(),
            params: json!({"prompt": "a fox"}),
            submitted_at: Utc::now(),
            estimate_usd: Some(0.5),
        }
    }

    fn query() -> JobQuery {
        JobQuery {
            owner: Owner::single(),
            status: None,
            limit: 10,
        }
    }

    /// A call made while the file is still opening waits for it: its record is kept, not lost.
    #[tokio::test]
    async fn calls_made_while_the_journal_opens_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let journal = Journal::opening(
            move || {
                wait.recv().unwrap();
                let store = SqliteStore::open(&path).map_err(|e| e.to_string())?;
                Ok((Arc::new(store) as Arc<dyn JobStore>, path.display().to_string()))
            },
            Retention::default(),
        );
        assert!(journal.may_record() && journal.off_reason().is_none() && journal.location().is_none());
        // Polled by hand: the opening is held until `release`, so the submit must be waiting.
        let mut submit = std::pin::pin!(journal.begin_submit(job(), Limits::default()));
        assert!(
            futures::poll!(submit.as_mut()).is_pending(),
            "a submit does not go before its record can be kept"
        );
        release.send(()).unwrap();
        assert!(matches!(submit.await, Gate::Go(Some(_))));
        let jobs = journal.list(query()).await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert!(journal.location().unwrap().ends_with("journal.sqlite3"));
    }

    /// A file that cannot be opened leaves the journal off, with the reason, as at a start that
    /// waited for it; limits are then not passed silently.
    #[tokio::test]
    async fn a_journal_that_fails_to_open_is_off_with_its_reason() {
        let journal = Journal::opening(|| Err("the disk is full".to_owned()), Retention::default());
        let limits = Limits {
            max_spend_usd_per_day: Some(1.0),
            ..Limits::default()
        };
        assert!(matches!(journal.begin_submit(job(), limits).await, Gate::Unchecked(_)));
        let listed = journal.list(query()).await.unwrap_err();
        assert!(listed.contains("the disk is full"), "{listed}");
        assert_eq!(journal.off_reason(), Some("the disk is full"));
        assert!(!journal.may_record() && !journal.shares_tasks());
    }
}
