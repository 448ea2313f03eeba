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

use postgres::{
    config::Host,
    types::{ToSql, Type},
    Client, GenericClient, NoTls, Transaction,
};
use r2d2_postgres::PostgresConnectionManager;

use super::{
    migrations::{self, Refused, LATEST},
    queries::SqlStore,
    recent::Recent,
    sql::{values, Database, Dialect, Row, Session, Tx, Value},
    StoreError,
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
        let store = Self::lazily(url, "runcomfy-mcp", POOL_SIZE)?;
        match store.connection() {
            Ok(_) => {}
            Err(StoreError::Newer(version)) => return Err(OpenError::Newer(version)),
            Err(e) => {
                tracing::warn!(database = %store.place, error = %e, "job journal: the database cannot be reached now; \
                     every journal call fails (and limits refuse every submit) until it can");
            }
        }
        Ok(store)
    }

    /// A store on `url` with a pool of its own (`pool_size` connections, named
    /// `application_name` in the database's views) that connects, and brings the schema up to
    /// date, at its first call only: the sign-in store beside the journal's.
    pub(crate) fn lazily(url: &str, application_name: &str, pool_size: u32) -> Result<Self, OpenError> {
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
        config.application_name(application_name);
        let place = describe(&config);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            // No connection at start: a replica may start before its database.
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .error_handler(Box::new(LogConnectError))
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        Ok(Self {
            pool: Some(pool),
            place,
            migrated: AtomicBool::new(false),
            recent: Recent::default(),
        })
    }

    /// Where the database is, without the password.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// A connection with the schema up to date.
    fn connection(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StoreError> {
        let mut conn = self
            .pool
            .as_ref()
            .expect("the pool is taken only by drop")
            .get()
            .map_err(|e| StoreError::Unreachable {
                place: self.place.clone(),
                reason: e.to_string(),
            })?;
        if !self.migrated.load(Ordering::Acquire) {
            migrate(&mut conn).map_err(|e| match e {
                Refused::Newer(version) => StoreError::Newer(version),
                Refused::Failed(e) => query_error(&self.place, e),
            })?;
            self.migrated.store(true, Ordering::Release);
        }
        Ok(conn)
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

impl Database for PgStore {
    type Reads<'a> = Reads<'a>;
    type Write<'a> = Write<'a>;

    fn read<T>(&self, f: impl FnOnce(&mut Reads<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.connection()?;
        f(&mut Reads {
            client: &mut conn,
            place: &self.place,
        })
    }

    fn write<T>(&self, f: impl FnOnce(Write<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.connection()?;
        let tx = conn.transaction().map_err(|e| query_error(&self.place, e))?;
        f(Write { tx, place: &self.place })
    }
}

impl SqlStore for PgStore {
    const SHARED: bool = true;

    fn recent(&self) -> &Recent {
        &self.recent
    }

    fn reachable(&self) -> Result<(), StoreError> {
        // The pool tests a connection before handing it out: getting one is the check.
        self.connection().map(drop)
    }
}

/// A connection, for reads and single statements.
pub(crate) struct Reads<'a> {
    client: &'a mut Client,
    place: &'a str,
}

/// A transaction (read committed: each statement sees what was committed before it).
pub(crate) struct Write<'a> {
    tx: Transaction<'a>,
    place: &'a str,
}

impl Session for Reads<'_> {
    fn query(&mut self, template: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        query(self.client, self.place, template, params)
    }

    fn execute(&mut self, template: &str, params: &[Value]) -> Result<u64, StoreError> {
        execute(self.client, self.place, template, params)
    }
}

impl Session for Write<'_> {
    fn query(&mut self, template: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        query(&mut self.tx, self.place, template, params)
    }

    fn execute(&mut self, template: &str, params: &[Value]) -> Result<u64, StoreError> {
        execute(&mut self.tx, self.place, template, params)
    }
}

impl Tx for Write<'_> {
    /// The owner's advisory lock, held to the commit: another replica's submit for the same
    /// owner waits here, then counts this one's row.
    fn serialize_submits(&mut self, owner: &str) -> Result<(), StoreError> {
        self.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('runcomfy-mcp limits ' || ?1, 0))",
            values![owner],
        )
        .map(drop)
    }

    fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().map_err(|e| query_error(self.place, e))
    }
}

fn query(
    client: &mut impl GenericClient,
    place: &str,
    template: &str,
    params: &[Value],
) -> Result<Vec<Row>, StoreError> {
    let statement = client
        .prepare(&Dialect::Postgres.render(template))
        .map_err(|e| query_error(place, e))?;
    let params = typed(params, statement.params());
    let rows = client
        .query(&statement, &references(&params))
        .map_err(|e| query_error(place, e))?;
    rows.iter().map(row).collect()
}

fn execute(client: &mut impl GenericClient, place: &str, template: &str, params: &[Value]) -> Result<u64, StoreError> {
    let statement = client
        .prepare(&Dialect::Postgres.render(template))
        .map_err(|e| query_error(place, e))?;
    let params = typed(params, statement.params());
    client
        .execute(&statement, &references(&params))
        .map_err(|e| query_error(place, e))
}

fn query_error(place: &str, e: postgres::Error) -> StoreError {
    StoreError::Query(format!("the journal database {place}: {e}"))
}

type Param<'a> = Box<dyn ToSql + Sync + 'a>;

/// Each value as the type its parameter has in the statement: PostgreSQL checks them, and an
/// `INTEGER` column takes 32 bits.
fn typed<'a>(values: &'a [Value], types: &[Type]) -> Vec<Param<'a>> {
    values
        .iter()
        .zip(types)
        .map(|(value, ty)| -> Param<'a> {
            match value {
                Value::Int(v) if *ty == Type::INT4 => Box::new(i32::try_from(*v).unwrap_or(i32::MAX)),
                Value::Int(v) => Box::new(*v),
                Value::Real(v) => Box::new(*v),
                Value::Text(v) => Box::new(v.as_str()),
                Value::Bool(v) => Box::new(*v),
                Value::Null if *ty == Type::INT4 => Box::new(None::<i32>),
                Value::Null if *ty == Type::INT8 => Box::new(None::<i64>),
                Value::Null if *ty == Type::FLOAT8 => Box::new(None::<f64>),
                Value::Null if *ty == Type::BOOL => Box::new(None::<bool>),
                Value::Null => Box::new(None::<&str>),
            }
        })
        .collect()
}

fn references<'a>(params: &'a [Param<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// A result row in the drivers' neutral terms, by each column's type.
fn row(row: &postgres::Row) -> Result<Row, StoreError> {
    let decode = |e: postgres::Error| StoreError::Decode(e.to_string());
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_();
            Ok(if *ty == Type::INT8 {
                row.try_get::<_, Option<i64>>(i).map_err(decode)?.into()
            } else if *ty == Type::INT4 {
                row.try_get::<_, Option<i32>>(i).map_err(decode)?.map(i64::from).into()
            } else if *ty == Type::FLOAT8 {
                row.try_get::<_, Option<f64>>(i).map_err(decode)?.into()
            } else if *ty == Type::BOOL {
                row.try_get::<_, Option<bool>>(i).map_err(decode)?.into()
            } else {
                row.try_get::<_, Option<String>>(i).map_err(decode)?.into()
            })
        })
        .collect::<Result<_, _>>()
        .map(Row)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::journal::store_tests::pg::Cluster;
    use crate::journal::{JobQuery, JobStore, Owner, TaskRecord};

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
        assert!(matches!(e, StoreError::Unreachable { .. }), "{e}");
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
