//! The journal's schema: one numbered list of steps, the same for every store. Each store keeps
//! the number of the last step it ran (SQLite in `PRAGMA user_version`, PostgreSQL in the
//! `runcomfy_schema` table) and, when it opens, runs the steps after it in one transaction,
//! through [`migrate`]. A store whose number is past the end of the list was written by a newer
//! runcomfy-mcp and is left alone.
//!
//! Steps are written once, in SQL both engines read, with the few tokens that
//! [`Dialect::render`] fills in: `{prefix}` before every table and index name (`runcomfy_` in
//! PostgreSQL), `{key}` for an auto-numbered primary key, `{bigint}` and `{double}` for column
//! types.
//!
//! # Adding a migration
//!
//! Append one [`Migration`] to [`MIGRATIONS`] with the next version number and a line saying what
//! it adds; that is the whole change (a new table is `CREATE TABLE {prefix}name (…)`). Never edit
//! or reorder a step that has shipped: a store that ran it will not run it again. A column added
//! to a table that has rows must be nullable or have a default, so that an older server's rows
//! and queries stay as they were.

use super::sql::Dialect;

/// One step of the schema.
#[derive(Debug)]
pub(super) struct Migration {
    /// Its number: the one before it plus one, starting at 1.
    pub(super) version: i64,
    /// What it adds, for the log.
    pub(super) description: &'static str,
    /// The statements, for [`Dialect::render`].
    pub(super) sql: &'static str,
}

/// Every step, in order. Versions 1 to 3 are those SQLite journals have carried since the
/// first release; a PostgreSQL database migrated before this list existed is mapped onto it
/// where its store reads its number.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "the jobs table",
        // IF NOT EXISTS: a foreign `jobs` table of another shape then fails at its first index
        // (no such column), which the SQLite store reports as a file that is not a journal.
        sql: "
CREATE TABLE IF NOT EXISTS {prefix}jobs (
    key            {key},
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
    submitted_at   {bigint} NOT NULL,
    updated_at     {bigint} NOT NULL,
    finished_at    {bigint}
);
CREATE INDEX IF NOT EXISTS {prefix}jobs_by_time ON {prefix}jobs (submitted_at DESC, key DESC);
CREATE INDEX IF NOT EXISTS {prefix}jobs_by_status ON {prefix}jobs (status, submitted_at DESC);
",
    },
    Migration {
        version: 2,
        description: "each job's cost and estimate",
        sql: "
ALTER TABLE {prefix}jobs ADD COLUMN cost_usd {double};
ALTER TABLE {prefix}jobs ADD COLUMN estimate_usd {double};
",
    },
    Migration {
        version: 3,
        description: "each job's owner (older rows are the single user's)",
        sql: "
ALTER TABLE {prefix}jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS {prefix}jobs_by_owner ON {prefix}jobs (owner, submitted_at DESC, key DESC);
",
    },
    Migration {
        version: 4,
        description: "tasks, which replicas sharing a database answer for each other",
        sql: "
CREATE TABLE IF NOT EXISTS {prefix}tasks (
    task_id     TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    detail      TEXT NOT NULL,
    request_ids TEXT NOT NULL DEFAULT '[]',
    finished    BOOLEAN NOT NULL,
    updated_at  {bigint} NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}tasks_by_time ON {prefix}tasks (updated_at);
",
    },
    Migration {
        version: 5,
        description: "OAuth sign-in: clients, grants (each person's sealed key and limits), codes and tokens by digest",
        sql: "
CREATE TABLE IF NOT EXISTS {prefix}oauth_clients (
    client_id     TEXT PRIMARY KEY,
    client_name   TEXT,
    redirect_uris TEXT NOT NULL,
    created_at    {bigint} NOT NULL
);
CREATE TABLE IF NOT EXISTS {prefix}oauth_grants (
    grant_id              TEXT PRIMARY KEY,
    owner                 TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    resource              TEXT NOT NULL,
    sealed_key            TEXT NOT NULL,
    max_spend_usd_per_day {double},
    max_jobs_per_hour     {bigint},
    created_at            {bigint} NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}oauth_grants_by_owner ON {prefix}oauth_grants (owner);
CREATE TABLE IF NOT EXISTS {prefix}oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     {bigint} NOT NULL,
    used_at        {bigint}
);
CREATE TABLE IF NOT EXISTS {prefix}oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    expires_at {bigint} NOT NULL,
    used_at    {bigint}
);
CREATE INDEX IF NOT EXISTS {prefix}oauth_tokens_by_grant ON {prefix}oauth_tokens (grant_id);
",
    },
    Migration {
        version: 6,
        description: "a person's own confirm threshold with their grant (blank: the server's)",
        sql: "
ALTER TABLE {prefix}oauth_grants ADD COLUMN confirm_above_usd {double};
",
    },
];

/// The version of a store that has run every step.
pub(super) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Why a store could not be brought up to date.
#[derive(Debug)]
pub(super) enum Refused<E> {
    /// Its version is past [`LATEST`]: a newer runcomfy-mcp wrote it.
    Newer(i64),
    /// A step failed (the store rolls its transaction back).
    Failed(E),
}

/// Brings a store at `version` up to date, the same way for every store: `execute` runs one
/// step's statements inside the transaction the store holds for the whole migration. Returns the
/// version to record, or `None` when the store is already up to date (nothing to write).
pub(super) fn migrate<E>(
    dialect: Dialect,
    version: i64,
    mut execute: impl FnMut(&str) -> Result<(), E>,
) -> Result<Option<i64>, Refused<E>> {
    if version > LATEST {
        return Err(Refused::Newer(version));
    }
    for step in MIGRATIONS.iter().filter(|step| step.version > version) {
        tracing::info!(
            version = step.version,
            step = step.description,
            "job journal: migrating the schema"
        );
        execute(&dialect.render(step.sql)).map_err(Refused::Failed)?;
    }
    Ok((version < LATEST).then_some(LATEST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one_without_a_gap() {
        for (i, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, i as i64 + 1, "{}", step.description);
        }
    }

    #[test]
    fn every_step_renders_for_each_engine() {
        for step in MIGRATIONS {
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                assert!(!dialect.render(step.sql).contains('{'), "{}", step.description);
            }
        }
    }

    #[test]
    fn only_the_steps_after_a_stores_version_run_and_a_newer_store_is_refused() {
        let mut ran = Vec::new();
        let recorded = migrate::<()>(Dialect::Sqlite, 2, |sql| {
            ran.push(sql.to_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(recorded, Some(LATEST));
        assert_eq!(ran.len(), MIGRATIONS.len() - 2);
        assert!(ran[0].contains("ADD COLUMN owner"));
        assert_eq!(migrate::<()>(Dialect::Sqlite, LATEST, |_| panic!("ran")).unwrap(), None);
        assert!(matches!(
            migrate::<()>(Dialect::Postgres, LATEST + 1, |_| panic!("ran")),
            Err(Refused::Newer(v)) if v == LATEST + 1
        ));
    }
}
