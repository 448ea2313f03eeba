//! Stores made by earlier versions, each exactly as that version left it, opened by this one: they
//! migrate through [`super::migrations`], keep their jobs, and work at once.

use chrono::Utc;
use rusqlite::Connection;

use super::{
    migrations::LATEST, postgres::PgStore, sqlite::SqliteStore, store_tests::pg::Cluster, JobStore, JobUpdate, Owner,
    TaskRecord,
};

/// The columns of `jobs` up to `finished_at`, as SQLite version 1 created them.
const SQLITE_V1_COLUMNS: &str = "key INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT UNIQUE, \
    model TEXT NOT NULL, prompt TEXT NOT NULL, size TEXT NOT NULL, params TEXT NOT NULL, \
    status TEXT NOT NULL, queue_position INTEGER, images TEXT NOT NULL DEFAULT '[]', \
    videos TEXT NOT NULL DEFAULT '[]', saved_paths TEXT NOT NULL DEFAULT '[]', error TEXT, \
    submitted_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER";

const SQLITE_V1_INDEXES: &str = "CREATE INDEX jobs_by_time ON jobs (submitted_at DESC, key DESC); \
    CREATE INDEX jobs_by_status ON jobs (status, submitted_at DESC);";

/// A SQLite journal made by `sql`, opened by this version.
fn sqlite_journal(dir: &tempfile::TempDir, sql: &str) -> SqliteStore {
    let path = dir.path().join("journal.sqlite3");
    Connection::open(&path).unwrap().execute_batch(sql).unwrap();
    SqliteStore::open(&path).unwrap()
}

fn sqlite_version(dir: &tempfile::TempDir) -> i64 {
    Connection::open(dir.path().join("journal.sqlite3"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_version_1_journal_opens_keeps_its_jobs_and_records_costs() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_journal(
        &dir,
        &format!(
            "CREATE TABLE jobs ({SQLITE_V1_COLUMNS}); {SQLITE_V1_INDEXES} \
             INSERT INTO jobs (request_id, model, prompt, size, params, status, submitted_at, updated_at) \
             VALUES ('old-1', 'm', 'an old fox', '1024x1024(1:1)', '{{}}', 'succeeded', 1, 1); \
             PRAGMA user_version = 1;"
        ),
    );
    let me = Owner::single();
    let old = store.get(&me, "old-1").unwrap().unwrap();
    assert_eq!(
        (old.prompt.as_str(), old.cost_usd, old.estimate_usd),
        ("an old fox", None, None)
    );
    let update = JobUpdate {
        cost_usd: Some(0.03),
        ..Default::default()
    };
    assert!(store.update(&me, "old-1", &update, Utc::now()).unwrap());
    assert_eq!(store.get(&me, "old-1").unwrap().unwrap().cost_usd, Some(0.03));
    assert_eq!(sqlite_version(&dir), LATEST);
    drop(store);
    // Opening it again finds nothing left to migrate.
    let again = SqliteStore::open(&dir.path().join("journal.sqlite3")).unwrap();
    assert_eq!(again.get(&me, "old-1").unwrap().unwrap().cost_usd, Some(0.03));
}

#[test]
fn a_version_2_journal_gets_owners_and_its_jobs_are_the_single_users() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_journal(
        &dir,
        &format!(
            "CREATE TABLE jobs ({SQLITE_V1_COLUMNS}, cost_usd REAL, estimate_usd REAL); {SQLITE_V1_INDEXES} \
             INSERT INTO jobs (request_id, model, prompt, size, params, status, submitted_at, updated_at, cost_usd) \
             VALUES ('old-2', 'm', 'a version 2 fox', '1024x1024(1:1)', '{{}}', 'succeeded', 1, 1, 0.03); \
             PRAGMA user_version = 2;"
        ),
    );
    let old = store.get(&Owner::single(), "old-2").unwrap().unwrap();
    assert_eq!((old.prompt.as_str(), old.owner.is_single()), ("a version 2 fox", true));
    assert!(store.get(&Owner::from_stored("b0b0"), "old-2").unwrap().is_none());
    assert_eq!(sqlite_version(&dir), LATEST);
}

/// Version 3 is where SQLite journals stood before the one migration list.
#[test]
fn a_version_3_journal_opens_with_its_jobs_and_owners() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_journal(
        &dir,
        &format!(
            "CREATE TABLE jobs ({SQLITE_V1_COLUMNS}, cost_usd REAL, estimate_usd REAL, owner TEXT NOT NULL DEFAULT ''); \
             {SQLITE_V1_INDEXES} CREATE INDEX jobs_by_owner ON jobs (owner, submitted_at DESC, key DESC); \
             INSERT INTO jobs (request_id, model, prompt, size, params, status, submitted_at, updated_at, owner) \
             VALUES ('old-3', 'm', 'a version 3 fox', '1024x1024(1:1)', '{{}}', 'succeeded', 1, 1, 'a1a1'); \
             PRAGMA user_version = 3;"
        ),
    );
    let alice = Owner::from_stored("a1a1");
    assert_eq!(store.get(&alice, "old-3").unwrap().unwrap().prompt, "a version 3 fox");
    assert_eq!(store.spend(&alice, Utc::now()).unwrap().all_recorded.jobs, 1);
    assert_eq!(sqlite_version(&dir), LATEST);
}

/// The jobs table as PostgreSQL's own version 1 created it (before the shared list).
const POSTGRES_V1: &str = "
CREATE TABLE runcomfy_schema (version BIGINT NOT NULL);
INSERT INTO runcomfy_schema (version) VALUES (1);
CREATE TABLE runcomfy_jobs (
    key BIGSERIAL PRIMARY KEY, request_id TEXT UNIQUE, model TEXT NOT NULL, prompt TEXT NOT NULL,
    size TEXT NOT NULL, params TEXT NOT NULL, status TEXT NOT NULL, queue_position INTEGER,
    images TEXT NOT NULL DEFAULT '[]', videos TEXT NOT NULL DEFAULT '[]', saved_paths TEXT NOT NULL DEFAULT '[]',
    error TEXT, submitted_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, finished_at BIGINT,
    cost_usd DOUBLE PRECISION, estimate_usd DOUBLE PRECISION, owner TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runcomfy_jobs_by_time ON runcomfy_jobs (submitted_at DESC, key DESC);
CREATE INDEX runcomfy_jobs_by_owner ON runcomfy_jobs (owner, submitted_at DESC, key DESC);
INSERT INTO runcomfy_jobs (request_id, model, prompt, size, params, status, submitted_at, updated_at, owner)
VALUES ('old-pg', 'm', 'a replica''s fox', '1024x1024(1:1)', '{}', 'succeeded', 1, 1, 'a1a1');
";

/// What PostgreSQL's own version 2 added: the tasks table.
const POSTGRES_V2: &str = "
UPDATE runcomfy_schema SET version = 2;
CREATE TABLE runcomfy_tasks (
    task_id TEXT PRIMARY KEY, owner TEXT NOT NULL, detail TEXT NOT NULL,
    request_ids TEXT NOT NULL DEFAULT '[]', finished BOOLEAN NOT NULL, updated_at BIGINT NOT NULL
);
CREATE INDEX runcomfy_tasks_by_time ON runcomfy_tasks (updated_at);
";

/// A database `sql` made, opened by this version: its job is there, tasks can be kept, and its
/// number is the list's last.
fn a_postgres_database_made_by(test: &str, sql: &str) {
    let Some(cluster) = Cluster::start(test) else {
        return;
    };
    let mut client = postgres::Client::connect(&cluster.socket_url(), postgres::NoTls).unwrap();
    client.batch_execute(sql).unwrap();
    let store = PgStore::open(&cluster.socket_url()).unwrap();
    let alice = Owner::from_stored("a1a1");
    assert_eq!(store.get(&alice, "old-pg").unwrap().unwrap().prompt, "a replica's fox");
    let task = TaskRecord {
        task_id: "t-1".into(),
        owner: alice.clone(),
        detail: serde_json::json!({ "status": "working" }),
        request_ids: vec!["old-pg".into()],
        finished: false,
        updated_at: Utc::now(),
    };
    store.save_task(&task).unwrap();
    assert_eq!(store.task(&alice, "t-1").unwrap().unwrap().detail, task.detail);
    let version: i64 = client
        .query_one("SELECT version FROM runcomfy_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, LATEST);
}

#[test]
fn a_postgres_database_of_its_own_version_1_migrates_and_keeps_its_jobs() {
    a_postgres_database_made_by("a_postgres_database_of_its_own_version_1", POSTGRES_V1);
}

#[test]
fn a_postgres_database_of_its_own_version_2_migrates_and_keeps_its_jobs() {
    a_postgres_database_made_by(
        "a_postgres_database_of_its_own_version_2",
        &format!("{POSTGRES_V1}{POSTGRES_V2}"),
    );
}
