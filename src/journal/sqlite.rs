//! The journal in one SQLite file. WAL mode with full sync: a commit survives a kill -9 (and a
//! power cut) at any point, readers never wait for writers, and several server processes share
//! the file through SQLite's own locking. Every write is one short `BEGIN IMMEDIATE` transaction,
//! so two processes never deadlock upgrading a read to a write; a busy file is waited on.

use std::{path::Path, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};

use super::{
    columns::{self, apply, from_millis, json_list, millis, parse_list, COLUMNS, COUNTED},
    migrations::{self, Dialect, Refused, LATEST},
    recent::Recent,
    spend::{self, Admission, Counted, DayUsage, Limits, SpendTotals, Tally},
    JobKey, JobQuery, JobRecord, JobStore, JobUpdate, NewJob, Owner, RecordedStatus, Retention, StoreError,
    SubmitOutcome,
};

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a file could not be opened as a journal, which decides what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not a database, a damaged one, or one with tables we cannot use: safe to move aside.
    #[error("the journal file is damaged or is not a journal ({0})")]
    Corrupt(String),
    /// Written by a newer runcomfy-mcp: leave it for that version.
    #[error("the journal was written by a newer runcomfy-mcp (schema version {0}, this one knows {LATEST})")]
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
        // A journal already at this version is only read: writing its version again at every
        // start cost a WAL commit, and with the checkpoint at exit five disk syncs a run (strace).
        let migrated =
            migrations::migrate(Dialect::Sqlite, version, |sql| tx.execute_batch(sql)).map_err(|e| match e {
                Refused::Newer(version) => OpenError::Newer(version),
                Refused::Failed(e) => match OpenError::from(e) {
                    // A `jobs` table of another shape is somebody else's file.
                    OpenError::Unavailable(m) if m.contains("no such column") => OpenError::Corrupt(m),
                    other => other,
                },
            })?;
        match migrated {
            Some(version) => {
                tx.pragma_update(None, "user_version", version)?;
                tx.commit()?;
            }
            None => tx.rollback()?, // nothing was written
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
        let (request_id, state, error) = columns::submit_columns(outcome);
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

    fn run_lengths(&self, model: &str, size: &str, limit: usize) -> Result<Vec<i64>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT finished_at - submitted_at FROM jobs WHERE status = 'succeeded' AND model = ?1 \
                 AND size = ?2 AND finished_at IS NOT NULL ORDER BY submitted_at DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(params![model, size, limit as i64], |row| row.get(0))?;
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
        Ok(columns::counted(row.get(0)?, row.get(1)?, row.get(2)?))
    })?;
    rows.collect()
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        key: JobKey(row.get("key")?),
        owner: Owner::from_stored(row.get::<_, String>("owner")?),
        request_id: row.get("request_id")?,
        model: row.get("model")?,
        prompt: row.get("prompt")?,
        size: row.get("size")?,
        params: columns::parse_params(&row.get::<_, String>("params")?),
        status: RecordedStatus::from_stored(&row.get::<_, String>("status")?),
        queue_position: row.get("queue_position")?,
        images: parse_list(&row.get::<_, String>("images")?),
        videos: parse_list(&row.get::<_, String>("videos")?),
        saved_paths: parse_list(&row.get::<_, String>("saved_paths")?),
        error: row.get("error")?,
        submitted_at: from_millis(row.get("submitted_at")?),
        updated_at: from_millis(row.get("updated_at")?),
        finished_at: row.get::<_, Option<i64>>("finished_at")?.map(from_millis),
        cost_usd: row.get("cost_usd")?,
        estimate_usd: row.get("estimate_usd")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
