//! The job journal: a durable record, on the user's machine, of every job this server submitted
//! and of what it learnt about each since. Every job costs money, and RunComfy offers no way to
//! list past requests: without this, a client timeout or a restart loses the request id and so
//! the paid image.
//!
//! Storage only: it records and answers queries, and calls nobody (the job service in
//! [`crate::jobs`] decides what to record and when). [`JobStore`] is the small storage interface;
//! [`Journal`] is the async, never-failing front the job service uses; `record` has the rows and
//! updates as plain data, `spend` the limits and tallies over them.
//!
//! Both stores are SQL, and everything SQL about them is written once: `queries` holds every
//! statement and the logic around it (and implements [`JobStore`] for both), `migrations` the
//! schema as one numbered list (its doc says how to add a table or a column), `columns` how a
//! job is kept in columns, `sql` the templates' dialects and driver-free values. What is left in
//! [`sqlite`] (the default, a file on this machine) and [`postgres`] (shared by replicas) is
//! opening, connections and transactions. [`location`] finds the file and repairs a broken one;
//! `settings` holds the flags.

mod columns;
mod handle;
pub mod location;
#[cfg(test)]
mod migration_tests;
mod migrations;
pub mod postgres;
mod queries;
mod recent;
mod record;
mod settings;
mod spend;
pub(crate) mod sql;
pub mod sqlite;
#[cfg(test)]
pub(super) mod store_tests;

pub(crate) use handle::{Gate, Journal};
pub(crate) use record::{JobKey, JobRecord, RecordedStatus, TaskRecord};
pub use record::{JobQuery, JobUpdate, NewJob, Owner, Retention, SubmitOutcome};
pub use settings::JournalArgs;
pub use spend::Limits;
pub(crate) use spend::{Admission, DayUsage, Refusal, SpendTotals, Tally};

use chrono::{DateTime, Utc};

/// A failure of the store itself. Never shown as a tool failure: the journal is a safety net, so
/// its errors are logged and the tool call goes on (and limits that cannot be counted refuse).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// A shared database that does not answer (down, cut off, refusing connections); calls work
    /// again once it is back.
    #[error("the journal database {place} is unreachable: {reason}")]
    Unreachable { place: String, reason: String },
    /// The shared database was migrated by a newer runcomfy-mcp: left alone.
    #[error("the journal database was written by a newer runcomfy-mcp (schema version {0}, this one knows {known})", known = migrations::LATEST)]
    Newer(i64),
    /// A statement failed (a busy file past the wait, a full disk, a lost connection…), with the
    /// engine's reason.
    #[error("{0}")]
    Query(String),
    /// A row could not be read as a job (another program's row, a damaged file).
    #[error("the journal holds a row it cannot read: {0}")]
    Decode(String),
    /// The call panicked (a bug): the store itself is still usable.
    #[error("the journal call panicked: {0}")]
    Panicked(String),
}

/// Where jobs are kept. Calls block (a file or a network round trip): callers run them off the
/// async runtime, as [`Journal`] does. Implementations must be safe to share between threads and
/// between processes on one machine.
///
/// Every job has an [`Owner`], and every call that reads or changes jobs by request id or counts
/// them is asked on behalf of one: it sees, changes and counts that owner's rows only. Another
/// owner's job is answered exactly as a job the journal does not know (`None`, `false`, left
/// out), so that request ids cannot be probed. Only [`JobStore::prune`] and
/// [`JobStore::finish_submit`] (by the row's own key) work across owners.
pub trait JobStore: Send + Sync + 'static {
    /// Records a submit before it is sent, so that a crash mid-submit leaves a trace, unless it
    /// would pass one of `limits` ([`spend::check`]) counting `job.owner`'s jobs only. The check
    /// and the record are one transaction that no other process's submit can interleave with.
    fn begin_submit(&self, job: &NewJob, limits: &Limits) -> Result<Admission, StoreError>;

    /// Records how the submit ended.
    fn finish_submit(&self, key: JobKey, outcome: &SubmitOutcome, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Applies what was learnt about a job. A terminal status is never overwritten by an older,
    /// non-terminal one (two servers may poll the same job). Returns false when the journal does
    /// not know the job (submitted elsewhere, or before the journal existed) or it is another
    /// owner's (then it is left as it is).
    fn update(
        &self,
        owner: &Owner,
        request_id: &str,
        update: &JobUpdate,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Whether `update` is known to change nothing (a poll of a job that did not move), answered
    /// from memory without blocking, so that [`Journal`] can skip the blocking call. `false` when
    /// in doubt.
    fn unchanged(&self, _owner: &Owner, _request_id: &str, _update: &JobUpdate) -> bool {
        false
    }

    /// How long the newest succeeded jobs of `model` at `size` took from submit to done (as far as
    /// this journal saw them finish), newest first, at most `limit`: the wait polls densely
    /// where the next one is likely to finish. Across owners: the length of a run says nothing
    /// about whose job it was, and a shared server learns its model's timing sooner.
    fn run_lengths(&self, _model: &str, _size: &str, _limit: usize) -> Result<Vec<i64>, StoreError> {
        Ok(Vec::new())
    }

    /// `query.owner`'s jobs, newest first.
    fn list(&self, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError>;

    /// `owner`'s job with this request id, if the journal knows it (another owner's is `None`).
    fn get(&self, owner: &Owner, request_id: &str) -> Result<Option<JobRecord>, StoreError>;

    /// `owner`'s spend and job counts today, over the last 7 days and over all the journal holds.
    fn spend(&self, owner: &Owner, now: DateTime<Utc>) -> Result<SpendTotals, StoreError>;

    /// `owner`'s spend and job counts per UTC day over the last `days` days (today included),
    /// newest first; days without jobs are left out.
    fn usage(&self, owner: &Owner, days: u32, now: DateTime<Utc>) -> Result<Vec<DayUsage>, StoreError>;

    /// Deletes jobs older than the retention age, then the oldest beyond the retention count (all
    /// owners' together: retention is the server's, not a person's). Returns how many were deleted.
    fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Records a task's state, unless the stored one is already finished. Only a store shared
    /// between servers keeps tasks (one server's own tasks live in its memory): the default
    /// keeps nothing.
    fn save_task(&self, _task: &TaskRecord) -> Result<(), StoreError> {
        Ok(())
    }

    /// `owner`'s task with this id, if the store keeps it (another owner's is `None`).
    fn task(&self, _owner: &Owner, _task_id: &str) -> Result<Option<TaskRecord>, StoreError> {
        Ok(None)
    }

    /// Whether the store can be used now (a shared database can be unreachable; a file on this
    /// machine is taken to be usable), for `/healthz`.
    fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether the store is shared with other servers (what `/healthz` reports on).
    fn shared(&self) -> bool {
        false
    }
}
