//! The journal in PostgreSQL, for replicas that share one record: every replica writes its jobs
//! to the same tables, so `list_jobs`, job references and the limits see every replica's jobs.
//!
//! The guarantees are SQLite's: each write is one transaction committed before the call returns
//! (PostgreSQL's commit is durable, so a killed replica loses nothing it answered for); the limit
//! check and the submit's record are one transaction under an advisory lock of the owner's, so
//! two replicas never pass a limit together; an update reads its row `FOR UPDATE`, so a terminal
//! status is never overwritten by an older one from another replica.
//!
//! Connections come from a pool (r2d2) that tests each one before use: a replica that loses the
//! database fails each call with the reason (and the journal front fails closed on limits), then
//! recovers by itself when the database is back. The schema is brought up to date once per
//! process, on the first connection that works, under an advisory lock so that replicas starting
//! together migrate once.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use chrono::{DateTime, Utc};
use postgres::{config::Host, Client, NoTls, Row, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use super::{
    columns::{self, apply, from_millis, json_list, millis, parse_list, COLUMNS, COUNTED},
    migrations::{self, Dialect, Refused, LATEST},
    recent::Recent,
    spend::{self, Admission, Counted, DayUsage, Limits, SpendTotals, Tally},
    JobKey, JobQuery, JobRecord, JobStore, JobUpdate, NewJob, Owner, RecordedStatus, Retention, StoreError,
    SubmitOutcome, TaskRecord,
};

/// The advisory lock migrations run under (any constant no other program is likely to pick).
const MIGRATION_LOCK: i64 = 0x7275_6e63_6f6d_6679; // "runcomfy"

/// How long a call waits for a connection: a database that does not answer in this time is
/// reported unreachable, rather than holding a tool call for the pool's default 30 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per replica: journal calls are short, and each one holds a blocking thread.
const POOL_SIZE: u32 = 8;

/// Why a database could not be used as a journal.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("--journal-url is not a PostgreSQL connection URL ({0})")]
    BadUrl(String),
    /// Written by a newer runcomfy-mcp: leave it for that version.
    #[error("the journal database was written by a newer runcomfy-mcp (schema version {0}, this one knows {known})", known = LATEST)]
    Newer(i64),
}

pub struct PgStore {
    /// Always `Some` but in `drop`, which hands it to a thread of its own (see there).
    pool: Option<r2d2::Pool<PostgresConnectionManager<NoTls>>>,
    /// Where the database is, for logs and list_jobs: hosts, port and database, never the password.
    place: String,
    /// Whether this process has brought the schema up to date.
    migrated: AtomicBool,
    /// Each job's status as last written or read here; changed only while the row is locked.
    recent: Recent,
}

impl Drop for PgStore {
    /// The `postgres` crate closes each connection by blocking on its own runtime, which panics on
    /// a tokio thread, where an HTTP server drops its last handle at shutdown: they close on a
    /// thread of their own. Not joined: a close waiting on a database that stopped answering must
    /// not hold up the exit (the kernel closes the sockets then).
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            std::thread::spawn(move || drop(pool));
        }
    }
}

/// Whether `url` names a PostgreSQL database (rather than being a typo for one).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgStore {
    /// A store on the database at `url` (`postgres://user:password@host:port/db`; a unix socket
    /// directory as a percent-encoded host, or `?host=/dir`). Does not need the database to be up:
    /// a store opened while it is down works once it is back. `Err` only for a URL that cannot be
    /// one, or a database a newer version migrated.
    pub fn open(url: &str) -> Result<Self, OpenError> {
        if !is_postgres_url(url) {
            return Err(OpenError::BadUrl(
                "it must start with postgres:// or postgresql://".into(),
            ));
        }
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| OpenError::BadUrl(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("runcomfy-mcp");
        let place = describe(&config);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            // No connection at start: a replica may start before its database.
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .error_handler(Box::new(LogConnectError))
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        let store = Self {
            pool: Some(pool),
            place,
            migrated: AtomicBool::new(false),
            recent: Recent::default(),
        };
        match store.connection() {
            Ok(_) => {}
            Err(Unusable::Newer(version)) => return Err(OpenError::Newer(version)),
            Err(Unusable::Store(e)) => {
                tracing::warn!(database = %store.place, error = %e, "job journal: the database cannot be reached now; \
                     every journal call fails (and limits refuse every submit) until it can");
            }
        }
        Ok(store)
    }

    /// Where the database is, without the password.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// A connection with the schema up to date.
    fn connection(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, Unusable> {
        let mut conn = self
            .pool
            .as_ref()
            .expect("the pool is taken only by drop")
            .get()
            .map_err(|e| StoreError(format!("the journal database {} is unreachable: {e}", self.place)))?;
        if !self.migrated.load(Ordering::Acquire) {
            migrate(&mut conn).map_err(|e| match e {
                Refused::Newer(version) => Unusable::Newer(version),
                Refused::Failed(e) => Unusable::Store(self.error(e)),
            })?;
            self.migrated.store(true, Ordering::Release);
        }
        Ok(conn)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> Result<T, StoreError> {
        let mut conn = self.connection().map_err(StoreError::from)?;
        f(&mut conn).map_err(|e| self.error(e))
    }

    fn error(&self, e: postgres::Error) -> StoreError {
        StoreError(format!("the journal database {}: {e}", self.place))
    }
}

/// Why no connection could be had.
enum Unusable {
    Store(StoreError),
    Newer(i64),
}

impl From<StoreError> for Unusable {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Unusable> for StoreError {
    fn from(e: Unusable) -> Self {
        match e {
            Unusable::Store(e) => e,
            Unusable::Newer(version) => StoreError(OpenError::Newer(version).to_string()),
        }
    }
}

/// Brings the schema up to date, in one transaction under [`MIGRATION_LOCK`].
fn migrate(client: &mut Client) -> Result<(), Refused<postgres::Error>> {
    let mut tx = client.transaction().map_err(Refused::Failed)?;
    let (version, stored) = schema_version(&mut tx).map_err(Refused::Failed)?;
    let latest = migrations::migrate(Dialect::Postgres, version, |sql| tx.batch_execute(sql))?;
    if let Some(version) = latest.or((version != stored).then_some(version)) {
        tx.execute("UPDATE runcomfy_schema SET version = $1", &[&version])
            .map_err(Refused::Failed)?;
    }
    tx.commit().map_err(Refused::Failed)
}

/// The database's place in [`migrations::MIGRATIONS`], and the number stored for it, with
/// [`MIGRATION_LOCK`] taken.
///
/// Databases migrated before the list was shared with SQLite counted their own steps: 1 made
/// the jobs table as it is at version 3 of the list, 2 added tasks (version 4). The list's
/// numbers 1 and 2 are never what a database is left at (every store runs to the end in one
/// transaction), so a 1 or a 2 found here can only be one of those.
fn schema_version(tx: &mut Transaction<'_>) -> Result<(i64, i64), postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS runcomfy_schema (version BIGINT NOT NULL)")?;
    let Some(row) = tx.query_opt("SELECT version FROM runcomfy_schema", &[])? else {
        tx.execute("INSERT INTO runcomfy_schema (version) VALUES (0)", &[])?;
        return Ok((0, 0));
    };
    let stored: i64 = row.get(0);
    let version = match stored {
        1 => 3,
        2 => 4,
        other => other,
    };
    Ok((version, stored))
}

/// The hosts, port and database of `config`, for people: never the password.
fn describe(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(dir) => dir.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().map_or(String::new(), |p| format!(":{p}"));
    format!(
        "postgres://{}{port}/{}",
        if hosts.is_empty() {
            "localhost".to_owned()
        } else {
            hosts.join(",")
        },
        config.get_dbname().unwrap_or("")
    )
}

/// r2d2 reports a failed connection attempt here; the call that waited on it reports it too.
#[derive(Debug)]
struct LogConnectError;

impl r2d2::HandleError<postgres::Error> for LogConnectError {
    fn handle_error(&self, error: postgres::Error) {
        tracing::debug!(%error, "job journal: connecting to the database failed");
    }
}

impl JobStore for PgStore {
    fn begin_submit(&self, job: &NewJob, limits: &Limits) -> Result<Admission, StoreError> {
        self.with(|client| {
            let mut tx = client.transaction()?;
            if limits.any() {
                // The owner's lock, held to the commit: another replica's submit for the same
                // owner waits here, then counts this one's row (read committed: each statement
                // sees what was committed before it).
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended('runcomfy-mcp limits ' || $1, 0))",
                    &[&job.owner.as_str()],
                )?;
                let now = job.submitted_at;
                let last_hour = counted_since(&mut tx, &job.owner, now - spend::RATE_WINDOW)?;
                let last_day = counted_since(&mut tx, &job.owner, now - spend::SPEND_WINDOW)?;
                if let Some(refusal) = spend::check(limits, now, job.estimate_usd, &last_hour, &last_day) {
                    return Ok(Admission::Refused(refusal));
                }
            }
            let at = millis(job.submitted_at);
            let row = tx.query_one(
                "INSERT INTO runcomfy_jobs (model, prompt, size, params, status, submitted_at, updated_at, estimate_usd, owner) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8) RETURNING key",
                &[
                    &job.model,
                    &job.prompt,
                    &job.size,
                    &job.params.to_string(),
                    &RecordedStatus::Submitting.as_str(),
                    &at,
                    &job.estimate_usd,
                    &job.owner.as_str(),
                ],
            )?;
            tx.commit()?;
            Ok(Admission::Admitted(JobKey(row.get(0))))
        })
    }

    fn finish_submit(&self, key: JobKey, outcome: &SubmitOutcome, now: DateTime<Utc>) -> Result<(), StoreError> {
        let (request_id, state, error) = columns::submit_columns(outcome);
        let finished = state.is_final().then(|| millis(now));
        self.with(|client| {
            let mut tx = client.transaction()?;
            if let Some(id) = request_id {
                // Ids are unique upstream; a stale row holding this one (a database restored from
                // a backup) must not block recording the new job.
                tx.execute(
                    "UPDATE runcomfy_jobs SET request_id = NULL WHERE request_id = $1 AND key <> $2",
                    &[&id, &key.0],
                )?;
            }
            tx.execute(
                "UPDATE runcomfy_jobs SET request_id = $2, status = $3, error = $4, updated_at = $5, finished_at = $6 \
                 WHERE key = $1",
                &[&key.0, &request_id, &state.as_str(), &error, &millis(now), &finished],
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
        self.with(|client| {
            let mut tx = client.transaction()?;
            // FOR UPDATE: another replica's update of this row waits for this one's commit, and
            // then merges into what it wrote (a finished job stays finished).
            let Some(row) = tx.query_opt(
                &format!("SELECT {COLUMNS} FROM runcomfy_jobs WHERE request_id = $1 AND owner = $2 FOR UPDATE"),
                &[&request_id, &owner.as_str()],
            )?
            else {
                self.recent.saw(owner, request_id, None);
                return Ok(false);
            };
            let mut job = read_row(&row);
            let before = job.clone();
            apply(&mut job, update, now);
            if job != before {
                tx.execute(
                    "UPDATE runcomfy_jobs SET status = $2, queue_position = $3, images = $4, videos = $5, \
                     saved_paths = $6, error = $7, updated_at = $8, finished_at = $9, cost_usd = $10 WHERE key = $1",
                    &[
                        &job.key.0,
                        &job.status.as_str(),
                        &job.queue_position.map(|p| i32::try_from(p).unwrap_or(i32::MAX)),
                        &json_list(&job.images),
                        &json_list(&job.videos),
                        &json_list(&job.saved_paths),
                        &job.error,
                        &millis(now),
                        &job.finished_at.map(millis),
                        &job.cost_usd,
                    ],
                )?;
            }
            // Remembered while the row is still locked, so that this process's memory follows
            // the order of the writes; forgotten if the commit fails.
            self.recent
                .saw(owner, request_id, Some((&job.status, job.queue_position)));
            tx.commit().inspect_err(|_| self.recent.forget(request_id))?;
            Ok(true)
        })
    }

    fn unchanged(&self, owner: &Owner, request_id: &str, update: &JobUpdate) -> bool {
        self.recent.unchanged(owner, request_id, update)
    }

    fn list(&self, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        self.with(|client| {
            let status = query.status.as_ref().map(RecordedStatus::as_str);
            let rows = client.query(
                &format!(
                    "SELECT {COLUMNS} FROM runcomfy_jobs WHERE owner = $3 AND ($1::TEXT IS NULL OR status = $1::TEXT) \
                     ORDER BY submitted_at DESC, key DESC LIMIT $2"
                ),
                &[&status, &i64::from(query.limit), &query.owner.as_str()],
            )?;
            Ok(rows.iter().map(read_row).collect())
        })
    }

    fn run_lengths(&self, model: &str, size: &str, limit: usize) -> Result<Vec<i64>, StoreError> {
        self.with(|client| {
            let rows = client.query(
                "SELECT finished_at - submitted_at FROM runcomfy_jobs WHERE status = 'succeeded' AND model = $1 \
                 AND size = $2 AND finished_at IS NOT NULL ORDER BY submitted_at DESC LIMIT $3",
                &[&model, &size, &(limit as i64)],
            )?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }

    fn get(&self, owner: &Owner, request_id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.with(|client| {
            let row = client.query_opt(
                &format!("SELECT {COLUMNS} FROM runcomfy_jobs WHERE request_id = $1 AND owner = $2"),
                &[&request_id, &owner.as_str()],
            )?;
            Ok(row.as_ref().map(read_row))
        })
    }

    fn spend(&self, owner: &Owner, now: DateTime<Utc>) -> Result<SpendTotals, StoreError> {
        self.with(|client| {
            let mut tally = |since: Option<DateTime<Utc>>| -> Result<Tally, postgres::Error> {
                let rows = client.query(
                    &format!(
                        "SELECT cost_usd, estimate_usd FROM runcomfy_jobs WHERE {COUNTED} AND owner = $2 \
                         AND submitted_at >= $1"
                    ),
                    &[&since.map_or(i64::MIN, millis), &owner.as_str()],
                )?;
                let mut tally = Tally::default();
                for row in &rows {
                    tally.add(row.get(0), row.get(1));
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
        self.with(|client| {
            let rows = client.query(
                &format!(
                    "SELECT submitted_at, cost_usd, estimate_usd FROM runcomfy_jobs WHERE {COUNTED} AND owner = $2 \
                     AND submitted_at >= $1 ORDER BY submitted_at DESC"
                ),
                &[&millis(since), &owner.as_str()],
            )?;
            let mut days: Vec<DayUsage> = Vec::new();
            for row in &rows {
                let day = from_millis(row.get(0)).date_naive();
                if days.last().is_none_or(|d| d.day != day) {
                    days.push(DayUsage {
                        day,
                        tally: Tally::default(),
                    });
                }
                if let Some(last) = days.last_mut() {
                    last.tally.add(row.get(1), row.get(2));
                }
            }
            Ok(days)
        })
    }

    fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let oldest_kept = millis(now - retention.max_age);
        self.with(|client| {
            let mut tx = client.transaction()?;
            let by_age = tx.execute("DELETE FROM runcomfy_jobs WHERE submitted_at < $1", &[&oldest_kept])?;
            // The count bound never takes a job of the last 24 hours: the limits count those.
            let by_count = tx.execute(
                "DELETE FROM runcomfy_jobs WHERE key NOT IN \
                 (SELECT key FROM runcomfy_jobs ORDER BY submitted_at DESC, key DESC LIMIT $1) AND submitted_at <= $2",
                &[&i64::from(retention.max_jobs), &millis(now - spend::SPEND_WINDOW)],
            )?;
            // Tasks outlive their answer only as long as the jobs they started.
            tx.execute("DELETE FROM runcomfy_tasks WHERE updated_at < $1", &[&oldest_kept])?;
            tx.commit()?;
            Ok((by_age + by_count) as usize)
        })
    }

    fn save_task(&self, task: &TaskRecord) -> Result<(), StoreError> {
        self.with(|client| {
            // A settled task stays settled: a late save of its working state changes nothing.
            client.execute(
                "INSERT INTO runcomfy_tasks (task_id, owner, detail, request_ids, finished, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id) DO UPDATE SET detail = EXCLUDED.detail, \
                 request_ids = EXCLUDED.request_ids, finished = EXCLUDED.finished, updated_at = EXCLUDED.updated_at \
                 WHERE NOT runcomfy_tasks.finished AND runcomfy_tasks.owner = EXCLUDED.owner",
                &[
                    &task.task_id,
                    &task.owner.as_str(),
                    &task.detail.to_string(),
                    &json_list(&task.request_ids),
                    &task.finished,
                    &millis(task.updated_at),
                ],
            )?;
            Ok(())
        })
    }

    fn task(&self, owner: &Owner, task_id: &str) -> Result<Option<TaskRecord>, StoreError> {
        self.with(|client| {
            let row = client.query_opt(
                "SELECT task_id, owner, detail, request_ids, finished, updated_at FROM runcomfy_tasks \
                 WHERE task_id = $1 AND owner = $2",
                &[&task_id, &owner.as_str()],
            )?;
            Ok(row.map(|row| TaskRecord {
                task_id: row.get(0),
                owner: Owner::from_stored(row.get::<_, String>(1)),
                detail: columns::parse_params(row.get(2)),
                request_ids: parse_list(row.get(3)),
                finished: row.get(4),
                updated_at: from_millis(row.get(5)),
            }))
        })
    }

    fn health(&self) -> Result<(), StoreError> {
        // The pool tests a connection before handing it out: getting one is the check.
        self.connection().map(drop).map_err(StoreError::from)
    }

    fn shared(&self) -> bool {
        true
    }
}

/// `owner`'s jobs the limits count that were submitted after `since`, oldest first.
fn counted_since(
    tx: &mut Transaction<'_>,
    owner: &Owner,
    since: DateTime<Utc>,
) -> Result<Vec<Counted>, postgres::Error> {
    let rows = tx.query(
        &format!(
            "SELECT submitted_at, cost_usd, estimate_usd FROM runcomfy_jobs WHERE {COUNTED} AND owner = $2 \
             AND submitted_at > $1 ORDER BY submitted_at ASC, key ASC"
        ),
        &[&millis(since), &owner.as_str()],
    )?;
    Ok(rows
        .iter()
        .map(|row| columns::counted(row.get(0), row.get(1), row.get(2)))
        .collect())
}

fn read_row(row: &Row) -> JobRecord {
    JobRecord {
        key: JobKey(row.get("key")),
        owner: Owner::from_stored(row.get::<_, String>("owner")),
        request_id: row.get("request_id"),
        model: row.get("model"),
        prompt: row.get("prompt"),
        size: row.get("size"),
        params: columns::parse_params(row.get("params")),
        status: RecordedStatus::from_stored(row.get("status")),
        queue_position: row
            .get::<_, Option<i32>>("queue_position")
            .and_then(|p| u32::try_from(p).ok()),
        images: parse_list(row.get("images")),
        videos: parse_list(row.get("videos")),
        saved_paths: parse_list(row.get("saved_paths")),
        error: row.get("error"),
        submitted_at: from_millis(row.get("submitted_at")),
        updated_at: from_millis(row.get("updated_at")),
        finished_at: row.get::<_, Option<i64>>("finished_at").map(from_millis),
        cost_usd: row.get("cost_usd"),
        estimate_usd: row.get("estimate_usd"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::store_tests::pg::Cluster;

    fn query() -> JobQuery {
        JobQuery {
            owner: Owner::single(),
            status: None,
            limit: 10,
        }
    }

    #[test]
    fn a_lost_database_fails_each_call_with_the_reason_and_is_used_again_once_it_is_back() {
        let Some(cluster) = Cluster::start("postgres::a_lost_database") else {
            return;
        };
        // Opened while the database is down: it works once the database is up.
        cluster.pause();
        let store = PgStore::open(&cluster.tcp_url()).unwrap();
        let e = store.list(&query()).unwrap_err();
        assert!(e.0.contains("unreachable"), "{e}");
        assert!(store.health().is_err());
        cluster.resume();
        assert!(store.health().is_ok());
        assert_eq!(store.list(&query()).unwrap(), []);
        // Lost and found again, with connections in the pool that the restart broke.
        cluster.pause();
        assert!(store.list(&query()).is_err());
        assert!(store.health().is_err());
        cluster.resume();
        assert_eq!(store.list(&query()).unwrap(), []);
    }

    #[test]
    fn a_database_migrated_by_a_newer_version_is_refused_and_left_alone() {
        let Some(cluster) = Cluster::start("postgres::a_newer_database") else {
            return;
        };
        drop(PgStore::open(&cluster.socket_url()).unwrap());
        let mut client = postgres::Client::connect(&cluster.socket_url(), NoTls).unwrap();
        client.execute("UPDATE runcomfy_schema SET version = 99", &[]).unwrap();
        assert!(matches!(
            PgStore::open(&cluster.socket_url()),
            Err(OpenError::Newer(99))
        ));
        let version: i64 = client
            .query_one("SELECT version FROM runcomfy_schema", &[])
            .unwrap()
            .get(0);
        assert_eq!(version, 99);
    }

    #[test]
    fn a_task_is_its_owners_only_and_a_settled_one_stays_settled() {
        let Some(cluster) = Cluster::start("postgres::a_task_is_its_owners_only") else {
            return;
        };
        let store = PgStore::open(&cluster.socket_url()).unwrap();
        let (alice, bob) = (Owner::from_stored("a1a1"), Owner::from_stored("b0b0"));
        let task = |status: &str, finished: bool| TaskRecord {
            task_id: "t-1".into(),
            owner: alice.clone(),
            detail: serde_json::json!({ "status": status }),
            request_ids: vec!["r-1".into()],
            finished,
            updated_at: Utc::now(),
        };
        store.save_task(&task("working", false)).unwrap();
        assert_eq!(store.task(&alice, "t-1").unwrap().unwrap().detail["status"], "working");
        assert_eq!(store.task(&bob, "t-1").unwrap(), None, "another's task is unknown");
        // Bob cannot write over Alice's task by reusing its id.
        store
            .save_task(&TaskRecord {
                owner: bob.clone(),
                ..task("completed", true)
            })
            .unwrap();
        assert_eq!(store.task(&alice, "t-1").unwrap().unwrap().detail["status"], "working");
        store.save_task(&task("completed", true)).unwrap();
        // A late save of the working state (saves run in the background) changes nothing.
        store.save_task(&task("working", false)).unwrap();
        let stored = store.task(&alice, "t-1").unwrap().unwrap();
        assert_eq!(
            (stored.detail["status"].as_str(), stored.finished),
            (Some("completed"), true)
        );
        assert_eq!(stored.request_ids, ["r-1"]);
    }

    #[test]
    fn urls_that_cannot_be_a_database_are_refused_and_places_never_show_a_password() {
        assert!(matches!(PgStore::open("mysql://x/y"), Err(OpenError::BadUrl(_))));
        assert!(matches!(
            PgStore::open("postgres://a:b@h:notaport/db"),
            Err(OpenError::BadUrl(_))
        ));
        let config: postgres::Config = "postgres://alice:s3cret@db.internal:6543/jobs".parse().unwrap();
        assert_eq!(describe(&config), "postgres://db.internal:6543/jobs");
        let config: postgres::Config = "postgres://alice@%2Frun%2Fpostgresql/jobs".parse().unwrap();
        assert_eq!(describe(&config), "postgres:///run/postgresql:5432/jobs");
    }
}
