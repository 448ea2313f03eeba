//! The journal in one SQLite file. WAL mode with full sync: a commit survives a kill -9 (and a
//! power cut) at any point, readers never wait for writers, and several server processes share
//! the file through SQLite's own locking. Every write is one short `BEGIN IMMEDIATE` transaction,
//! so two processes never deadlock upgrading a read to a write; a busy file is waited on.
//!
//! Opening, the connection and its transactions only: the statements are in `queries`, the
//! schema in `migrations`, both shared with PostgreSQL.

use std::{path::Path, sync::Mutex, time::Duration};

use rusqlite::{
    types::{ToSqlOutput, ValueRef},
    Connection, ErrorCode, TransactionBehavior,
};

use super::{
    columns::COLUMNS,
    migrations::{self, Refused, LATEST},
    queries::SqlStore,
    recent::Recent,
    sql::{Database, Dialect, Row, Session, Tx, Value},
    StoreError,
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
        StoreError::Query(e.to_string())
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

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        // A panic while holding the lock leaves the connection usable: SQLite rolled back.
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn)
    }
}

impl Database for SqliteStore {
    type Reads<'a> = Reads<'a>;
    type Write<'a> = Write<'a>;

    fn read<T>(&self, f: impl FnOnce(&mut Reads<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with(|conn| f(&mut Reads(conn)))
    }

    /// `f` in a write transaction. IMMEDIATE takes the write lock first: no other process writes
    /// between this one's reads and its writes (no limit passed together, no deadlock upgrading a
    /// read lock).
    fn write<T>(&self, f: impl FnOnce(Write<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with(|conn| f(Write(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)))
    }
}

impl SqlStore for SqliteStore {
    /// A file on this machine: its tasks live in the server's memory.
    const SHARED: bool = false;

    fn recent(&self) -> &Recent {
        &self.recent
    }
}

/// The connection, for reads.
pub(crate) struct Reads<'c>(&'c Connection);

/// A write transaction.
pub(crate) struct Write<'c>(rusqlite::Transaction<'c>);

impl Session for Reads<'_> {
    fn query(&mut self, template: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        query(self.0, template, params)
    }

    fn execute(&mut self, template: &str, params: &[Value]) -> Result<u64, StoreError> {
        execute(self.0, template, params)
    }
}

impl Session for Write<'_> {
    fn query(&mut self, template: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        query(&self.0, template, params)
    }

    fn execute(&mut self, template: &str, params: &[Value]) -> Result<u64, StoreError> {
        execute(&self.0, template, params)
    }
}

impl Tx for Write<'_> {
    fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit()?)
    }
}

fn query(conn: &Connection, template: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
    let mut statement = conn.prepare_cached(&Dialect::Sqlite.render(template))?;
    let width = statement.column_count();
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..width)
            .map(|i| Ok(value(row.get_ref(i)?)))
            .collect::<Result<_, StoreError>>()?;
        out.push(Row(values));
    }
    Ok(out)
}

fn execute(conn: &Connection, template: &str, params: &[Value]) -> Result<u64, StoreError> {
    let changed = conn
        .prepare_cached(&Dialect::Sqlite.render(template))?
        .execute(rusqlite::params_from_iter(params))?;
    Ok(changed as u64)
}

fn value(raw: ValueRef<'_>) -> Value {
    match raw {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        // No column of ours holds bytes; a blob another program wrote is read as text, lossily.
        ValueRef::Text(v) | ValueRef::Blob(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Int(v) => ToSqlOutput::from(*v),
            Value::Real(v) => ToSqlOutput::from(*v),
            Value::Text(v) => ToSqlOutput::from(v.as_str()),
            Value::Bool(v) => ToSqlOutput::from(*v),
        })
    }
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
