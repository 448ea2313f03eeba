//! The journal in one SQLite file. WAL mode with full sync: a commit survives a kill -9 (and a
//! power cut) at any point, readers never wait for writers, and several server processes share
//! the file through SQLite's own locking. Every write is one short `BEGIN IMMEDIATE` transaction,
//! so two processes never deadlock upgrading a read to a write; a busy file is waited on.

use std::{path::Path, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};

use super::{
    recent::Recent,
    spend::{self, Admission, Counted, DayUsage, Limits, SpendTotals, Tally},
    JobKey, JobQuery, JobRecord, JobStore, JobUpdate, NewJob, Owner, RecordedStatus, Retention, StoreError,
    SubmitOutcome,
};
use crate::runcomfy::JobStatus;

/// Bumped when the table changes; a file from a newer version is left alone. 2: `cost_usd` and
/// `estimate_usd`; 3: `owner` (`''`, the single-user owner, for every older row); each added to
/// an older file in place (see [`MIGRATIONS`]).
const SCHEMA_VERSION: i64 = 3;
/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    key            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id     TEXT UNIQUE,
    model          TEXT NOT NULL,
    prompt         TEXT NOT NULL,
    size           TEXT NOT NULL,
    params         TEXT NOT NULL,
    status         TEXT NOT NULL,
    queue_position INTEGER,
    images         TEXT NOT NULL DEFAULT '[]',
    videos         TEXT NOT NULL DEFAULT '[]',
    saved_paths    TEXT NOT NULL DEFAULT '[]',
    error          TEXT,
    submitted_at   INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    cost_usd       REAL,
    estimate_usd   REAL,
    owner          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (submitted_at DESC, key DESC);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, submitted_at DESC);
";

/// Indexes on columns added since version 1: created after [`MIGRATIONS`] added the columns.
const LATER_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, submitted_at DESC, key DESC);
";

/// Columns added since version 1, each with its definition: a file that lacks one gets it. Each
/// is nullable or has a default, which keeps every row, and an older server's queries, as they
/// were; an older server's rows are the single-user owner's (`''`).
const MIGRATIONS: [(&str, &str); 3] = [
    ("cost_usd", "REAL"),
    ("estimate_usd", "REAL"),
    ("owner", "TEXT NOT NULL DEFAULT ''"),
];

const COLUMNS: &str = "key, request_id, model, prompt, size, params, status, queue_position, images, videos, \
saved_paths, error, submitted_at, updated_at, finished_at, cost_usd, estimate_usd, owner";

/// The rows the spend and rate limits count: every submit but those RunComfy refused.
const COUNTED: &str = "status <> 'rejected'";

/// Why a file could not be opened as a journal, which decides what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not a database, a damaged one, or one with tables we cannot use: safe to move aside.
    #[error("the journal file is damaged or is not a journal ({0})")]
    Corrupt(String),
    /// Written by a newer runcomfy-mcp: leave it for that version.
    #[error("the journal was written by a newer runcomfy-mcp (schema version {0}, this one knows {SCHEMA_VERSION})")]
    Newer(i64),
    /// Busy, read-only, no permission, disk full: not the file's fault, so never moved aside.
    #[error("the journal cannot be opened ({0})")]
    Unavailable(String),
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Self::Corrupt(e.to_string()),
            _ => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

pub struct SqliteStore {
    // One connection per process; SQLite's locks coordinate with the other processes.
    conn: Mutex<Connection>,
    /// Each job's status as last written or read here; only changed under `conn`'s lock.
    recent: Recent,
}

impl SqliteStore {
    /// Opens (or creates) the journal at `path` and checks it. Does not repair anything: see
    /// [`super::location`] for that.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The first statement that reads the file is where "not a database" shows up.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                mode,
                "the journal could not switch to WAL mode; it still works, with more waiting"
            );
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(OpenError::Corrupt(format!("integrity check: {check}")));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(OpenError::Newer(version));
        }
        // A journal already at this version is only read: writing its version again at every
        // start cost a WAL commit, and with the checkpoint at exit five disk syncs a run (strace).
        if version < SCHEMA_VERSION {
            tx.execute_batch(SCHEMA).map_err(|e| match OpenError::from(e) {
                // A `jobs` table of another shape is somebody else's file.
                OpenError::Unavailable(m) if m.contains("no such column") => OpenError::Corrupt(m),
                other => other,
            })?;
            migrate(&tx)?;
            tx.execute_batch(LATER_INDEXES)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        } else {
            tx.rollback()?; // nothing was written
        }
        // A table of the right name but another shape is not ours either.
        conn.prepare(&format!("SELECT {COLUMNS} FROM jobs LIMIT 0"))
            .map_err(|e| OpenError::Corrupt(e.to_string()))?;
        Ok(Self {
            conn: Mutex::new(conn),
            recent: Recent::default(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        // A panic while holding the lock leaves the connection usable: SQLite rolled back.
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(StoreError::from)
    }
}

impl JobStore for SqliteStore {
    fn begin_submit(&self, job: &NewJob, limits: &Limits) -> Result<Admission, StoreError> {
        self.with(|conn| {
            // IMMEDIATE takes the write lock first: no other process can record a submit between
            // this one's count and its insert, so two processes never pass a limit together.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if limits.any() {
                let now = job.submitted_at;
                let last_hour = counted_since(&tx, &job.owner, now - spend::RATE_WINDOW)?;
                let last_day = counted_since(&tx, &job.owner, now - spend::SPEND_WINDOW)?;
                if let Some(refusal) = spend::check(limits, now, job.estimate_usd, &last_hour, &last_day) {
                    return Ok(Admission::Refused(refusal));
                }
            }
            let at = millis(job.submitted_at);
            tx.execute(
                "INSERT INTO jobs (model, prompt, size, params, status, submitted_at, updated_at, estimate_usd, owner) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
                params![
                    job.model,
                    job.prompt,
                    job.size,
                    job.params.to_string(),
                    RecordedStatus::Submitting.as_str(),
                    at,
                    job.estimate_usd,
                    job.owner.as_str(),
                ],
            )?;
            let key = JobKey(tx.last_insert_rowid());
            tx.commit()?;
            Ok(Admission::Admitted(key))
        })
    }

    fn finish_submit(&self, key: JobKey, outcome: &SubmitOutcome, now: DateTime<Utc>) -> Result<(), StoreError> {
        let (request_id, state, error) = match outcome {
            SubmitOutcome::Accepted { request_id } => {
                (Some(request_id.as_str()), RecordedStatus::Job(JobStatus::InQueue), None)
            }
            SubmitOutcome::FateUnknown { error } => (None, RecordedStatus::FateUnknown, Some(error.as_str())),
            SubmitOutcome::Rejected { error } => (None, RecordedStatus::Rejected, Some(error.as_str())),
        };
        let finished = state.is_final().then(|| millis(now));
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(id) = request_id {
                // Ids are unique upstream; a stale row holding this one (a journal restored from a
                // backup) must not block recording the new job.
                tx.execute("UPDATE jobs SET request_id = NULL WHERE request_id = ?1 AND key <> ?2", params![id, key.0])?;
            }
            tx.execute(
                "UPDATE jobs SET request_id = ?2, status = ?3, error = ?4, updated_at = ?5, finished_at = ?6 WHERE key = ?1",
                params![key.0, request_id, state.as_str(), error, millis(now), finished],
            )?;
            tx.commit()?;
            if let Some(id) = request_id {
                self.recent.forget(id);
            }
            Ok(())
        })
    }

    fn update(
        &self,
        owner: &Owner,
        request_id: &str,
        update: &JobUpdate,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(mut job) = tx
                .query_row(
                    &format!("SELECT {COLUMNS} FROM jobs WHERE request_id = ?1 AND owner = ?2"),
                    [request_id, owner.as_str()],
                    read_row,
                )
                .optional()?
            else {
                self.recent.saw(owner, request_id, None);
                return Ok(false);
            };
            let before = job.clone();
            apply(&mut job, update, now);
            if job == before {
                // Nothing new (a poll of a job that did not move): no write, no disk sync.
                self.recent
                    .saw(owner, request_id, Some((&job.status, job.queue_position)));
                return Ok(true);
            }
            tx.execute(
                "UPDATE jobs SET status = ?2, queue_position = ?3, images = ?4, videos = ?5, saved_paths = ?6, \
                 error = ?7, updated_at = ?8, finished_at = ?9, cost_usd = ?10 WHERE key = ?1",
                params![
                    job.key.0,
                    job.status.as_str(),
                    job.queue_position,
                    json_list(&job.images),
                    json_list(&job.videos),
                    json_list(&job.saved_paths),
                    job.error,
                    millis(now),
                    job.finished_at.map(millis),
                    job.cost_usd,
                ],
            )?;
            tx.commit()?;
            self.recent
                .saw(owner, request_id, Some((&job.status, job.queue_position)));
            Ok(true)
        })
    }

    fn unchanged(&self, owner: &Owner, request_id: &str, update: &JobUpdate) -> bool {
        self.recent.unchanged(owner, request_id, update)
    }

    fn list(&self, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        self.with(|conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM jobs WHERE owner = ?3 AND (?1 IS NULL OR status = ?1) \
                 ORDER BY submitted_at DESC, key DESC LIMIT ?2"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let status = query.status.as_ref().map(RecordedStatus::as_str);
            let rows = statement.query_map(params![status, query.limit, query.owner.as_str()], read_row)?;
            rows.collect()
        })
    }

    fn get(&self, owner: &Owner, request_id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.with(|conn| {
            let sql = format!("SELECT {COLUMNS} FROM jobs WHERE request_id = ?1 AND owner = ?2");
            conn.prepare_cached(&sql)?
                .query_row([request_id, owner.as_str()], read_row)
                .optional()
        })
    }

    fn spend(&self, owner: &Owner, now: DateTime<Utc>) -> Result<SpendTotals, StoreError> {
        self.with(|conn| {
            let tally = |since: Option<DateTime<Utc>>| -> rusqlite::Result<Tally> {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT cost_usd, estimate_usd FROM jobs WHERE {COUNTED} AND owner = ?2 AND submitted_at >= ?1"
                ))?;
                let mut tally = Tally::default();
                let mut rows = statement.query(params![since.map_or(i64::MIN, millis), owner.as_str()])?;
                while let Some(row) = rows.next()? {
                    tally.add(row.get(0)?, row.get(1)?);
                }
                Ok(tally)
            };
            Ok(SpendTotals {
                today: tally(Some(spend::start_of_day(now)))?,
                last_7_days: tally(Some(now - chrono::Duration::days(7)))?,
                all_recorded: tally(None)?,
            })
        })
    }

    fn usage(&self, owner: &Owner, days: u32, now: DateTime<Utc>) -> Result<Vec<DayUsage>, StoreError> {
        let since = spend::start_of_day(now) - chrono::Duration::days(i64::from(days.max(1)) - 1);
        self.with(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT submitted_at, cost_usd, estimate_usd FROM jobs WHERE {COUNTED} AND owner = ?2 \
                 AND submitted_at >= ?1 ORDER BY submitted_at DESC"
            ))?;
            let mut rows = statement.query(params![millis(since), owner.as_str()])?;
            let mut days: Vec<DayUsage> = Vec::new();
            while let Some(row) = rows.next()? {
                let day = from_millis(row.get(0)?).date_naive();
                if days.last().is_none_or(|d| d.day != day) {
                    days.push(DayUsage {
                        day,
                        tally: Tally::default(),
                    });
                }
                if let Some(last) = days.last_mut() {
                    last.tally.add(row.get(1)?, row.get(2)?);
                }
            }
            Ok(days)
        })
    }

    fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let oldest_kept = millis(now - retention.max_age);
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let by_age = tx.execute("DELETE FROM jobs WHERE submitted_at < ?1", [oldest_kept])?;
            // The count bound never takes a job of the last 24 hours: the spend and rate limits
            // count those, and a small --journal-max-jobs must not reopen a spent budget.
            let by_count = tx.execute(
                "DELETE FROM jobs WHERE key NOT IN \
                 (SELECT key FROM jobs ORDER BY submitted_at DESC, key DESC LIMIT ?1) AND submitted_at <= ?2",
                params![retention.max_jobs, millis(now - spend::SPEND_WINDOW)],
            )?;
            tx.commit()?;
            Ok(by_age + by_count)
        })
    }
}

/// Brings a file of an older version up to this one's table, in the open transaction.
fn migrate(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut statement = tx.prepare("SELECT name FROM pragma_table_info('jobs')")?;
    let present: Vec<String> = statement.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for (column, definition) in MIGRATIONS {
        if !present.iter().any(|p| p == column) {
            tracing::info!(column, "job journal: adding a column to a journal of an older version");
            tx.execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {column} {definition}"))?;
        }
    }
    Ok(())
}

/// `owner`'s jobs the limits count that were submitted after `since`, oldest first.
fn counted_since(
    tx: &rusqlite::Transaction<'_>,
    owner: &Owner,
    since: DateTime<Utc>,
) -> rusqlite::Result<Vec<Counted>> {
    let mut statement = tx.prepare_cached(&format!(
        "SELECT submitted_at, cost_usd, estimate_usd FROM jobs WHERE {COUNTED} AND owner = ?2 AND submitted_at > ?1 \
         ORDER BY submitted_at ASC, key ASC"
    ))?;
    let rows = statement.query_map(params![millis(since), owner.as_str()], |row| {
        let cost: Option<f64> = row.get(1)?;
        let estimate: Option<f64> = row.get(2)?;
        Ok(Counted {
            submitted_at: from_millis(row.get(0)?),
            usd: cost.or(estimate).unwrap_or(0.0),
            estimated: cost.is_none() && estimate.is_some(),
        })
    })?;
    rows.collect()
}

/// Merges what was learnt into the stored row.
fn apply(job: &mut JobRecord, update: &JobUpdate, now: DateTime<Utc>) {
    if let Some(new) = &update.status {
        // Polls from two servers can arrive out of order: a finished job stays finished.
        if !job.is_final() || new.is_terminal() {
            job.status = RecordedStatus::Job(new.clone());
            job.queue_position = update.queue_position;
        }
    }
    if !update.images.is_empty() {
        job.images = update.images.clone();
    }
    if !update.videos.is_empty() {
        job.videos = update.videos.clone();
    }
    for path in &update.saved_paths {
        if !job.saved_paths.contains(path) {
            job.saved_paths.push(path.clone());
        }
    }
    if update.error.is_some() {
        job.error = update.error.clone();
    }
    if update.cost_usd.is_some() {
        job.cost_usd = update.cost_usd;
    }
    if job.is_final() && job.finished_at.is_none() {
        job.finished_at = Some(now);
    }
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        key: JobKey(row.get("key")?),
        owner: Owner::from_stored(row.get::<_, String>("owner")?),
        request_id: row.get("request_id")?,
        model: row.get("model")?,
        prompt: row.get("prompt")?,
        size: row.get("size")?,
        // Lenient: a row another version wrote oddly must not hide every other job.
        params: serde_json::from_str(&row.get::<_, String>("params")?).unwrap_or_default(),
        status: RecordedStatus::from_stored(&row.get::<_, String>("status")?),
        queue_position: row.get("queue_position")?,
        images: parse_list(row.get("images")?),
        videos: parse_list(row.get("videos")?),
        saved_paths: parse_list(row.get("saved_paths")?),
        error: row.get("error")?,
        submitted_at: from_millis(row.get("submitted_at")?),
        updated_at: from_millis(row.get("updated_at")?),
        finished_at: row.get::<_, Option<i64>>("finished_at")?.map(from_millis),
        cost_usd: row.get("cost_usd")?,
        estimate_usd: row.get("estimate_usd")?,
    })
}

fn parse_list(raw: String) -> Vec<String> {
    serde_json::from_str(&raw).unwrap_or_default()
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Refusal;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("journal.sqlite3")).unwrap();
        (dir, store)
    }

    fn me() -> Owner {
        Owner::single()
    }

    fn job(prompt: &str, at: DateTime<Utc>) -> NewJob {
        NewJob {
            owner: me(),
            model: "m".into(),
            prompt: prompt.into(),
            size: "1024x1024(1:1)".into(),
            params: json!({"prompt": prompt}),
            submitted_at: at,
            estimate_usd: Some(0.5),
        }
    }

    fn begin(store: &SqliteStore, job: &NewJob) -> JobKey {
        store.begin_submit(job, &Limits::default()).unwrap().admitted().unwrap()
    }

    fn submitted(store: &SqliteStore, prompt: &str, at: DateTime<Utc>) -> String {
        let key = begin(store, &job(prompt, at));
        let id = format!("id-{prompt}");
        store
            .finish_submit(key, &SubmitOutcome::Accepted { request_id: id.clone() }, at)
            .unwrap();
        id
    }

    fn all(store: &SqliteStore) -> Vec<JobRecord> {
        store
            .list(&JobQuery {
                owner: me(),
                status: None,
                limit: 1000,
            })
            .unwrap()
    }

    #[test]
    fn a_submit_is_recorded_before_and_after_it_is_sent() {
        let (_dir, store) = store();
        let now = Utc::now();
        let key = begin(&store, &job("a fox", now));
        assert_eq!(all(&store)[0].status, RecordedStatus::Submitting);
        store
            .finish_submit(key, &SubmitOutcome::FateUnknown { error: "reset".into() }, now)
            .unwrap();
        let row = &all(&store)[0];
        assert_eq!((row.status.as_str(), row.request_id.as_deref()), ("unknown", None));
        assert_eq!(row.status, RecordedStatus::FateUnknown);
        assert_eq!(row.error.as_deref(), Some("reset"));
        assert_eq!(row.params, json!({"prompt": "a fox"}));
    }

    #[test]
    fn updates_merge_and_a_finished_job_stays_finished() {
        let (_dir, store) = store();
        let id = submitted(&store, "a", Utc::now());
        let update = |u: JobUpdate| assert!(store.update(&me(), &id, &u, Utc::now()).unwrap());
        update(JobUpdate {
            status: Some(JobStatus::InQueue),
            queue_position: Some(3),
            ..Default::default()
        });
        assert_eq!(all(&store)[0].queue_position, Some(3));
        update(JobUpdate {
            status: Some(JobStatus::Succeeded),
            images: vec!["http://x/1.png".into()],
            ..Default::default()
        });
        update(JobUpdate::saved(vec!["/tmp/1.png".into()]));
        update(JobUpdate::saved(vec!["/tmp/1.png".into(), "/tmp/2.png".into()]));
        // A late poll from another server.
        update(JobUpdate {
            status: Some(JobStatus::InProgress),
            ..Default::default()
        });
        let row = &all(&store)[0];
        assert_eq!(row.status, RecordedStatus::Job(JobStatus::Succeeded));
        assert_eq!(row.queue_position, None);
        assert_eq!(row.images, ["http://x/1.png"]);
        assert_eq!(row.saved_paths, ["/tmp/1.png", "/tmp/2.png"]);
        assert!(row.finished_at.is_some());
        assert!(!store
            .update(&me(), "unknown-id", &JobUpdate::default(), Utc::now())
            .unwrap());
        assert_eq!(store.get(&me(), &id).unwrap().unwrap().images, ["http://x/1.png"]);
        assert_eq!(store.get(&me(), "unknown-id").unwrap(), None);
    }

    #[test]
    fn a_poll_that_did_not_move_is_known_unchanged_and_every_other_one_is_written() {
        let (dir, store) = store();
        let id = submitted(&store, "a", Utc::now());
        let queued = |p| JobUpdate::status(&JobStatus::InQueue, Some(p));
        assert!(!store.unchanged(&me(), &id, &queued(3)), "not read yet");
        assert!(store.update(&me(), &id, &queued(3), Utc::now()).unwrap());
        assert!(store.unchanged(&me(), &id, &queued(3)));
        assert!(!store.unchanged(&me(), &id, &queued(2)));
        assert!(store.update(&me(), &id, &queued(2), Utc::now()).unwrap());
        assert_eq!(store.get(&me(), &id).unwrap().unwrap().queue_position, Some(2));
        // Another process moves the job on: this one's older news is still not written over it.
        let other = SqliteStore::open(&dir.path().join("journal.sqlite3")).unwrap();
        let running = JobUpdate::status(&JobStatus::InProgress, None);
        assert!(other.update(&me(), &id, &running, Utc::now()).unwrap());
        assert!(
            store.unchanged(&me(), &id, &queued(2)),
            "this process already recorded it"
        );
        assert_eq!(
            store.get(&me(), &id).unwrap().unwrap().status,
            RecordedStatus::Job(JobStatus::InProgress)
        );
        assert!(!store.unchanged(&me(), &id, &running));
        assert!(store.update(&me(), &id, &running, Utc::now()).unwrap());
        assert_eq!(
            store.get(&me(), &id).unwrap().unwrap().status,
            RecordedStatus::Job(JobStatus::InProgress)
        );
        // A result carries more than a status: never skipped.
        let done = JobUpdate {
            status: Some(JobStatus::Succeeded),
            images: vec!["http://x/1.png".into()],
            ..Default::default()
        };
        assert!(!store.unchanged(&me(), &id, &done));
        assert!(!store.unchanged(&me(), "unknown-id", &running));
        assert!(!store.update(&me(), "unknown-id", &running, Utc::now()).unwrap());
        assert!(
            store.unchanged(&me(), "unknown-id", &running),
            "a job this journal does not have"
        );
    }

    #[test]
    fn newest_first_with_a_status_filter_and_a_limit() {
        let (_dir, store) = store();
        let t0 = Utc::now() - chrono::Duration::minutes(10);
        for (i, p) in ["a", "b", "c"].iter().enumerate() {
            submitted(&store, p, t0 + chrono::Duration::minutes(i as i64));
        }
        store
            .update(
                &me(),
                "id-b",
                &JobUpdate {
                    status: Some(JobStatus::Failed),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap();
        let prompts = |q: JobQuery| {
            store
                .list(&q)
                .unwrap()
                .into_iter()
                .map(|r| r.prompt)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            prompts(JobQuery {
                owner: me(),
                status: None,
                limit: 10
            }),
            ["c", "b", "a"]
        );
        assert_eq!(
            prompts(JobQuery {
                owner: me(),
                status: None,
                limit: 2
            }),
            ["c", "b"]
        );
        assert_eq!(
            prompts(JobQuery {
                owner: me(),
                status: Some(RecordedStatus::Job(JobStatus::InQueue)),
                limit: 10
            }),
            ["c", "a"]
        );
    }

    #[test]
    fn retention_removes_old_rows_only() {
        let (_dir, store) = store();
        let now = Utc::now();
        submitted(&store, "ancient", now - chrono::Duration::days(100));
        submitted(&store, "old", now - chrono::Duration::days(40));
        submitted(&store, "recent", now - chrono::Duration::days(1));
        submitted(&store, "new", now);
        let retention = Retention {
            max_age: chrono::Duration::days(30),
            max_jobs: 10,
        };
        assert_eq!(store.prune(&retention, now).unwrap(), 2);
        let left: Vec<String> = all(&store).into_iter().map(|r| r.prompt).collect();
        assert_eq!(left, ["new", "recent"]);
        let retention = Retention {
            max_jobs: 1,
            ..retention
        };
        assert_eq!(store.prune(&retention, now).unwrap(), 1);
        assert_eq!(all(&store)[0].prompt, "new");
        // Past the count bound, but within the limits' window: kept.
        submitted(&store, "an hour ago", now - chrono::Duration::hours(1));
        assert_eq!(store.prune(&retention, now).unwrap(), 0);
        assert_eq!(all(&store).len(), 2);
    }

    #[test]
    fn garbage_is_reported_as_corrupt_and_a_newer_schema_as_newer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        std::fs::write(
            &path,
            b"this is not a database, it is a shopping list: eggs, milk".repeat(100),
        )
        .unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(OpenError::Corrupt(_))));

        let path = dir.path().join("newer.sqlite3");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(OpenError::Newer(99))));

        let path = dir.path().join("foreign.sqlite3");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE jobs (id TEXT)")
            .unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(OpenError::Corrupt(_))));
    }

    #[test]
    fn a_version_1_journal_opens_keeps_its_jobs_and_records_costs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        {
            // The table exactly as version 1 created it, with one job in it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE jobs (key INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT UNIQUE, \
                 model TEXT NOT NULL, prompt TEXT NOT NULL, size TEXT NOT NULL, params TEXT NOT NULL, \
                 status TEXT NOT NULL, queue_position INTEGER, images TEXT NOT NULL DEFAULT '[]', \
                 videos TEXT NOT NULL DEFAULT '[]', saved_paths TEXT NOT NULL DEFAULT '[]', error TEXT, \
                 submitted_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER); \
                 CREATE INDEX jobs_by_time ON jobs (submitted_at DESC, key DESC); \
                 CREATE INDEX jobs_by_status ON jobs (status, submitted_at DESC); \
                 INSERT INTO jobs (request_id, model, prompt, size, params, status, submitted_at, updated_at) \
                 VALUES ('old-1', 'm', 'an old fox', '1024x1024(1:1)', '{}', 'succeeded', 1, 1); \
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let old = store.get(&me(), "old-1").unwrap().unwrap();
        assert_eq!(
            (old.prompt.as_str(), old.cost_usd, old.estimate_usd),
            ("an old fox", None, None)
        );
        let update = JobUpdate {
            cost_usd: Some(0.03),
            ..Default::default()
        };
        assert!(store.update(&me(), "old-1", &update, Utc::now()).unwrap());
        assert_eq!(store.get(&me(), "old-1").unwrap().unwrap().cost_usd, Some(0.03));
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(store);
        // Opening it again finds nothing left to migrate.
        assert_eq!(
            SqliteStore::open(&path)
                .unwrap()
                .get(&me(), "old-1")
                .unwrap()
                .unwrap()
                .cost_usd,
            Some(0.03)
        );
    }

    #[test]
    fn limits_refuse_inside_the_store_and_count_unknown_costs_at_their_estimate() {
        let (_dir, store) = store();
        let now = Utc::now();
        let limits = Limits {
            max_spend_usd_per_day: Some(1.2),
            max_jobs_per_hour: Some(3),
        };
        let id = submitted(&store, "a", now - chrono::Duration::hours(2));
        store
            .update(
                &me(),
                &id,
                &JobUpdate {
                    cost_usd: Some(0.25),
                    ..Default::default()
                },
                now,
            )
            .unwrap();
        // 0.25 actual + 0.5 estimated: one more 0.5 fits (1.25 > 1.2 does not).
        submitted(&store, "b", now - chrono::Duration::minutes(30));
        let refused = store.begin_submit(&job("c", now), &limits).unwrap();
        let Admission::Refused(Refusal::Spend {
            spent_usd,
            estimated_usd,
            ..
        }) = refused
        else {
            panic!("{refused:?}")
        };
        assert_eq!((spent_usd, estimated_usd), (0.75, 0.5));
        assert_eq!(all(&store).len(), 2, "a refused submit leaves no row");
        // A rejected submit (no job) costs nothing and does not count.
        let key = begin(&store, &job("rejected", now));
        store
            .finish_submit(key, &SubmitOutcome::Rejected { error: "402".into() }, now)
            .unwrap();
        let cheap = NewJob {
            estimate_usd: Some(0.1),
            ..job("d", now)
        };
        assert!(matches!(
            store.begin_submit(&cheap, &limits).unwrap(),
            Admission::Admitted(_)
        ));
        let totals = store.spend(&me(), now).unwrap();
        assert_eq!(totals.all_recorded.jobs, 3);
        assert_eq!(totals.all_recorded.cost_usd, 0.25);
        assert!((totals.all_recorded.estimated_usd - 0.6).abs() < 1e-9);
        let days = store.usage(&me(), 7, now).unwrap();
        assert_eq!(days.iter().map(|d| d.tally.jobs).sum::<u64>(), 3);
    }

    #[test]
    fn each_owner_sees_changes_and_counts_only_their_own_jobs() {
        let (_dir, store) = store();
        let now = Utc::now();
        let (alice, bob) = (Owner::from_stored("a1a1"), Owner::from_stored("b0b0"));
        let submit = |owner: &Owner, prompt: &str| {
            let key = begin(
                &store,
                &NewJob {
                    owner: owner.clone(),
                    ..job(prompt, now)
                },
            );
            let id = format!("id-{prompt}");
            store
                .finish_submit(key, &SubmitOutcome::Accepted { request_id: id.clone() }, now)
                .unwrap();
            id
        };
        let alices = submit(&alice, "alice's fox");
        submit(&bob, "bob's owl");
        let listed = |owner: &Owner| {
            store
                .list(&JobQuery {
                    owner: owner.clone(),
                    status: None,
                    limit: 10,
                })
                .unwrap()
                .into_iter()
                .map(|r| (r.prompt, r.owner))
                .collect::<Vec<_>>()
        };
        assert_eq!(listed(&alice), [("alice's fox".to_owned(), alice.clone())]);
        assert_eq!(listed(&bob), [("bob's owl".to_owned(), bob.clone())]);
        assert_eq!(listed(&me()), [], "the single-user owner is an owner like any other");
        // Bob cannot read, nor change, Alice's job: to him it is unknown.
        assert!(store.get(&bob, &alices).unwrap().is_none());
        let done = JobUpdate {
            status: Some(JobStatus::Succeeded),
            cost_usd: Some(0.4),
            ..Default::default()
        };
        assert!(!store.update(&bob, &alices, &done, now).unwrap());
        assert!(!store.unchanged(&alice, &alices, &JobUpdate::status(&JobStatus::InQueue, None)));
        assert_eq!(
            store.get(&alice, &alices).unwrap().unwrap().status,
            RecordedStatus::Job(JobStatus::InQueue)
        );
        assert!(store.update(&alice, &alices, &done, now).unwrap());
        assert_eq!(store.spend(&alice, now).unwrap().today.cost_usd, 0.4);
        assert_eq!(store.spend(&bob, now).unwrap().today.jobs, 1);
        assert_eq!(store.spend(&bob, now).unwrap().today.cost_usd, 0.0);
        assert_eq!(store.usage(&bob, 1, now).unwrap()[0].tally.jobs, 1);
        // Limits are each owner's: Alice at her one job an hour does not stop Bob's second.
        let limits = Limits {
            max_jobs_per_hour: Some(1),
            ..Limits::default()
        };
        let next = |owner: &Owner| NewJob {
            owner: owner.clone(),
            ..job("again", now)
        };
        assert!(matches!(
            store.begin_submit(&next(&alice), &limits).unwrap(),
            Admission::Refused(Refusal::Jobs { jobs: 1, .. })
        ));
        assert!(matches!(
            store.begin_submit(&next(&me()), &limits).unwrap(),
            Admission::Admitted(_)
        ));
    }

    #[test]
    fn a_version_2_journal_gets_owners_and_its_jobs_are_the_single_users() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite3");
        {
            // The table exactly as version 2 created it, with one job in it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE jobs (key INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT UNIQUE, \
                 model TEXT NOT NULL, prompt TEXT NOT NULL, size TEXT NOT NULL, params TEXT NOT NULL, \
                 status TEXT NOT NULL, queue_position INTEGER, images TEXT NOT NULL DEFAULT '[]', \
                 videos TEXT NOT NULL DEFAULT '[]', saved_paths TEXT NOT NULL DEFAULT '[]', error TEXT, \
                 submitted_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER, \
                 cost_usd REAL, estimate_usd REAL); \
                 CREATE INDEX jobs_by_time ON jobs (submitted_at DESC, key DESC); \
                 CREATE INDEX jobs_by_status ON jobs (status, submitted_at DESC); \
                 INSERT INTO jobs (request_id, model, prompt, size, params, status, submitted_at, updated_at, cost_usd) \
                 VALUES ('old-2', 'm', 'a version 2 fox', '1024x1024(1:1)', '{}', 'succeeded', 1, 1, 0.03); \
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let old = store.get(&Owner::single(), "old-2").unwrap().unwrap();
        assert_eq!((old.prompt.as_str(), old.owner.is_single()), ("a version 2 fox", true));
        assert!(store.get(&Owner::from_stored("b0b0"), "old-2").unwrap().is_none());
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
