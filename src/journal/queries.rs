//! Every read and write of the SQL stores, written once over [`Session`] and [`Tx`]: the same
//! statements (templates that [`super::sql::Dialect::render`] writes out for SQLite or
//! PostgreSQL) and the same logic around them. A store is its [`SqlStore`] plumbing (a
//! connection for reads, a write transaction); [`JobStore`] is implemented here, once, for every
//! such store. What each call guarantees is said on [`JobStore`].

use chrono::{DateTime, Utc};

use super::{
    columns::{self, apply, json_list, millis, parse_list, read_row},
    recent::Recent,
    spend::{self, Admission, Counted, DayUsage, Limits, SpendTotals},
    sql::{values, Database, Row, Session, Tx},
    JobKey, JobQuery, JobRecord, JobStore, JobUpdate, NewJob, Owner, RecordedStatus, Retention, StoreError,
    SubmitOutcome, TaskRecord,
};

/// What a SQL store supplies beyond its connection and its transactions ([`Database`]).
pub(super) trait SqlStore: Database {
    /// Shared between servers: it keeps their tasks, and it can be out of reach.
    const SHARED: bool;

    /// Each job's status as last written or read here.
    fn recent(&self) -> &Recent;

    /// Whether the store can be used now (a file on this machine is taken to be).
    fn reachable(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl<S: SqlStore> JobStore for S {
    fn begin_submit(&self, job: &NewJob, limits: &Limits) -> Result<Admission, StoreError> {
        self.write(|tx| begin_submit(tx, job, limits))
    }

    fn finish_submit(&self, key: JobKey, outcome: &SubmitOutcome, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(|tx| finish_submit(tx, self.recent(), key, outcome, now))
    }

    fn update(&self, owner: &Owner, id: &str, changes: &JobUpdate, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.write(|tx| update(tx, self.recent(), owner, id, changes, now))
    }

    fn unchanged(&self, owner: &Owner, request_id: &str, update: &JobUpdate) -> bool {
        self.recent().unchanged(owner, request_id, update)
    }

    fn run_lengths(&self, model: &str, size: &str, limit: usize) -> Result<Vec<i64>, StoreError> {
        self.read(|s| run_lengths(s, model, size, limit))
    }

    fn list(&self, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        self.read(|s| list(s, query))
    }

    fn get(&self, owner: &Owner, request_id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.read(|s| get(s, owner, request_id))
    }

    fn spend(&self, owner: &Owner, now: DateTime<Utc>) -> Result<SpendTotals, StoreError> {
        self.read(|s| spend(s, owner, now))
    }

    fn usage(&self, owner: &Owner, days: u32, now: DateTime<Utc>) -> Result<Vec<DayUsage>, StoreError> {
        self.read(|s| usage(s, owner, days, now))
    }

    fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.write(|tx| prune(tx, retention, now))
    }

    fn save_task(&self, task: &TaskRecord) -> Result<(), StoreError> {
        if S::SHARED {
            self.read(|s| save_task(s, task))?;
        }
        Ok(())
    }

    fn task(&self, owner: &Owner, task_id: &str) -> Result<Option<TaskRecord>, StoreError> {
        if !S::SHARED {
            return Ok(None);
        }
        self.read(|s| task(s, owner, task_id))
    }

    fn health(&self) -> Result<(), StoreError> {
        self.reachable()
    }

    fn shared(&self) -> bool {
        S::SHARED
    }
}

/// The limit check and the submit's record, in `tx`, which [`Tx::serialize_submits`] makes the
/// only one of its owner's counting at a time.
fn begin_submit(mut tx: impl Tx, job: &NewJob, limits: &Limits) -> Result<Admission, StoreError> {
    if limits.any() {
        tx.serialize_submits(job.owner.as_str())?;
        let now = job.submitted_at;
        let last_hour = counted_since(&mut tx, &job.owner, now - spend::RATE_WINDOW)?;
        let last_day = counted_since(&mut tx, &job.owner, now - spend::SPEND_WINDOW)?;
        if let Some(refusal) = spend::check(limits, now, job.estimate_usd, &last_hour, &last_day) {
            return Ok(Admission::Refused(refusal));
        }
    }
    let rows = tx.query(
        "INSERT INTO {prefix}jobs (model, prompt, size, params, status, submitted_at, updated_at, estimate_usd, owner) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8) RETURNING key",
        values![
            &job.model,
            &job.prompt,
            &job.size,
            job.params.to_string(),
            RecordedStatus::Submitting.as_str(),
            millis(job.submitted_at),
            job.estimate_usd,
            job.owner.as_str(),
        ],
    )?;
    let key = first(rows)?.cells().int()?;
    tx.commit()?;
    Ok(Admission::Admitted(JobKey(key)))
}

fn finish_submit(
    mut tx: impl Tx,
    recent: &Recent,
    key: JobKey,
    outcome: &SubmitOutcome,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (request_id, state, error) = columns::submit_columns(outcome);
    if let Some(id) = request_id {
        // Ids are unique upstream; a stale row holding this one (a journal restored from a
        // backup) must not block recording the new job.
        tx.execute(
            "UPDATE {prefix}jobs SET request_id = NULL WHERE request_id = ?1 AND key <> ?2",
            values![id, key.0],
        )?;
    }
    tx.execute(
        "UPDATE {prefix}jobs SET request_id = ?2, status = ?3, error = ?4, updated_at = ?5, finished_at = ?6 \
         WHERE key = ?1",
        values![
            key.0,
            request_id,
            state.as_str(),
            error,
            millis(now),
            state.is_final().then(|| millis(now)),
        ],
    )?;
    tx.commit()?;
    if let Some(id) = request_id {
        recent.forget(id);
    }
    Ok(())
}

/// Merges `update` into the row, read locked (`{lock_row}`: another replica's update of it waits
/// for this commit, then merges into what it wrote, so a finished job stays finished).
fn update(
    mut tx: impl Tx,
    recent: &Recent,
    owner: &Owner,
    request_id: &str,
    update: &JobUpdate,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let rows = tx.query(
        "SELECT {columns} FROM {prefix}jobs WHERE request_id = ?1 AND owner = ?2{lock_row}",
        values![request_id, owner.as_str()],
    )?;
    let Some(row) = rows.into_iter().next() else {
        recent.saw(owner, request_id, None);
        return Ok(false);
    };
    let mut job = read_row(row)?;
    let before = job.clone();
    apply(&mut job, update, now);
    if job == before {
        // Nothing new (a poll of a job that did not move): no write, no disk sync.
        recent.saw(owner, request_id, Some((&job.status, job.queue_position)));
        return Ok(true);
    }
    tx.execute(
        "UPDATE {prefix}jobs SET status = ?2, queue_position = ?3, images = ?4, videos = ?5, saved_paths = ?6, \
         error = ?7, updated_at = ?8, finished_at = ?9, cost_usd = ?10 WHERE key = ?1",
        values![
            job.key.0,
            job.status.as_str(),
            job.queue_position,
            json_list(&job.images),
            json_list(&job.videos),
            json_list(&job.saved_paths),
            job.error.as_deref(),
            millis(now),
            job.finished_at.map(millis),
            job.cost_usd,
        ],
    )?;
    // Remembered while the row is still locked, so that this process's memory follows the order
    // of the writes; forgotten if the commit fails.
    recent.saw(owner, request_id, Some((&job.status, job.queue_position)));
    tx.commit().inspect_err(|_| recent.forget(request_id))?;
    Ok(true)
}

fn list(s: &mut impl Session, query: &JobQuery) -> Result<Vec<JobRecord>, StoreError> {
    let status = query.status.as_ref().map(RecordedStatus::as_str);
    s.query(
        "SELECT {columns} FROM {prefix}jobs WHERE owner = ?3 AND (CAST(?1 AS TEXT) IS NULL OR status = CAST(?1 AS TEXT)) \
         ORDER BY submitted_at DESC, key DESC LIMIT ?2",
        values![status, i64::from(query.limit), query.owner.as_str()],
    )?
    .into_iter()
    .map(read_row)
    .collect()
}

fn run_lengths(s: &mut impl Session, model: &str, size: &str, limit: usize) -> Result<Vec<i64>, StoreError> {
    s.query(
        "SELECT finished_at - submitted_at FROM {prefix}jobs WHERE status = 'succeeded' AND model = ?1 \
         AND size = ?2 AND finished_at IS NOT NULL ORDER BY submitted_at DESC LIMIT ?3",
        values![model, size, limit as i64],
    )?
    .into_iter()
    .map(|row| row.cells().int())
    .collect()
}

fn get(s: &mut impl Session, owner: &Owner, request_id: &str) -> Result<Option<JobRecord>, StoreError> {
    s.query(
        "SELECT {columns} FROM {prefix}jobs WHERE request_id = ?1 AND owner = ?2",
        values![request_id, owner.as_str()],
    )?
    .into_iter()
    .next()
    .map(read_row)
    .transpose()
}

fn spend(s: &mut impl Session, owner: &Owner, now: DateTime<Utc>) -> Result<SpendTotals, StoreError> {
    let mut tally = |since: Option<DateTime<Utc>>| {
        let rows = s.query(
            "SELECT cost_usd, estimate_usd FROM {prefix}jobs WHERE {counted} AND owner = ?2 AND submitted_at >= ?1",
            values![since.map_or(i64::MIN, millis), owner.as_str()],
        )?;
        let priced = rows.into_iter().map(|row| {
            let mut cells = row.cells();
            Ok((cells.opt_real()?, cells.opt_real()?))
        });
        Ok::<_, StoreError>(spend::tally(priced.collect::<Result<Vec<_>, StoreError>>()?))
    };
    Ok(SpendTotals {
        today: tally(Some(spend::start_of_day(now)))?,
        last_7_days: tally(Some(now - chrono::Duration::days(7)))?,
        all_recorded: tally(None)?,
    })
}

fn usage(s: &mut impl Session, owner: &Owner, days: u32, now: DateTime<Utc>) -> Result<Vec<DayUsage>, StoreError> {
    let since = spend::start_of_day(now) - chrono::Duration::days(i64::from(days.max(1)) - 1);
    let rows = s.query(
        "SELECT submitted_at, cost_usd, estimate_usd FROM {prefix}jobs WHERE {counted} AND owner = ?2 \
         AND submitted_at >= ?1 ORDER BY submitted_at DESC",
        values![millis(since), owner.as_str()],
    )?;
    let priced = rows.into_iter().map(|row| {
        let mut cells = row.cells();
        Ok((columns::from_millis(cells.int()?), cells.opt_real()?, cells.opt_real()?))
    });
    Ok(spend::by_day(priced.collect::<Result<Vec<_>, StoreError>>()?))
}

fn prune(mut tx: impl Tx, retention: &Retention, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let oldest_kept = millis(now - retention.max_age);
    let by_age = tx.execute("DELETE FROM {prefix}jobs WHERE submitted_at < ?1", values![oldest_kept])?;
    // The count bound never takes a job of the last 24 hours: the spend and rate limits count
    // those, and a small --journal-max-jobs must not reopen a spent budget.
    let by_count = tx.execute(
        "DELETE FROM {prefix}jobs WHERE key NOT IN \
         (SELECT key FROM {prefix}jobs ORDER BY submitted_at DESC, key DESC LIMIT ?1) AND submitted_at <= ?2",
        values![i64::from(retention.max_jobs), millis(now - spend::SPEND_WINDOW)],
    )?;
    // Tasks outlive their answer only as long as the jobs they started.
    tx.execute("DELETE FROM {prefix}tasks WHERE updated_at < ?1", values![oldest_kept])?;
    tx.commit()?;
    Ok((by_age + by_count) as usize)
}

fn save_task(s: &mut impl Session, task: &TaskRecord) -> Result<(), StoreError> {
    // A settled task stays settled: a late save of its working state changes nothing.
    s.execute(
        "INSERT INTO {prefix}tasks (task_id, owner, detail, request_ids, finished, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (task_id) DO UPDATE SET detail = EXCLUDED.detail, \
         request_ids = EXCLUDED.request_ids, finished = EXCLUDED.finished, updated_at = EXCLUDED.updated_at \
         WHERE NOT {prefix}tasks.finished AND {prefix}tasks.owner = EXCLUDED.owner",
        values![
            &task.task_id,
            task.owner.as_str(),
            task.detail.to_string(),
            json_list(&task.request_ids),
            task.finished,
            millis(task.updated_at),
        ],
    )?;
    Ok(())
}

fn task(s: &mut impl Session, owner: &Owner, task_id: &str) -> Result<Option<TaskRecord>, StoreError> {
    let rows = s.query(
        "SELECT task_id, owner, detail, request_ids, finished, updated_at FROM {prefix}tasks \
         WHERE task_id = ?1 AND owner = ?2",
        values![task_id, owner.as_str()],
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mut cells = row.cells();
    Ok(Some(TaskRecord {
        task_id: cells.text()?,
        owner: Owner::from_stored(cells.text()?),
        detail: columns::parse_params(&cells.text()?),
        request_ids: parse_list(&cells.text()?),
        finished: cells.flag()?,
        updated_at: columns::from_millis(cells.int()?),
    }))
}

/// `owner`'s jobs the limits count that were submitted after `since`, oldest first.
fn counted_since(tx: &mut impl Session, owner: &Owner, since: DateTime<Utc>) -> Result<Vec<Counted>, StoreError> {
    tx.query(
        "SELECT submitted_at, cost_usd, estimate_usd FROM {prefix}jobs WHERE {counted} AND owner = ?2 \
         AND submitted_at > ?1 ORDER BY submitted_at ASC, key ASC",
        values![millis(since), owner.as_str()],
    )?
    .into_iter()
    .map(counted)
    .collect()
}

/// A row of `submitted_at, cost_usd, estimate_usd`.
fn counted(row: Row) -> Result<Counted, StoreError> {
    let mut cells = row.cells();
    Ok(columns::counted(cells.int()?, cells.opt_real()?, cells.opt_real()?))
}

/// The one row a statement returns.
fn first(rows: Vec<Row>) -> Result<Row, StoreError> {
    rows.into_iter()
        .next()
        .ok_or_else(|| StoreError::Decode("the statement returned no row".into()))
}
