//! The journal's flags (and their environment variables), and turning them into a [`Journal`].
//! Opening never fails the start: without a usable journal the server runs without one and says
//! so on stderr.

use std::{path::PathBuf, sync::Arc};

use clap::{builder::FalseyValueParser, Args};

use super::{location, postgres, Journal, Retention};

#[derive(Args, Debug, Clone)]
pub struct JournalArgs {
    /// Directory for the job journal [default: $XDG_STATE_HOME/runcomfy-mcp or ~/.local/state/runcomfy-mcp on Linux, the local application-data directory on macOS and Windows].
    #[arg(long, env = "RUNCOMFY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Keep the job journal in this PostgreSQL database instead of a file on this machine (postgres://user:password@host:port/db; a unix socket as postgres://user@%2Frun%2Fpostgresql/db). Replicas given the same database share jobs, limits and tasks. A blank value means unset.
    #[arg(long, env = "RUNCOMFY_JOURNAL_URL", value_name = "URL", hide_env_values = true)]
    pub journal_url: Option<String>,

    /// Do not record jobs on this machine (list_jobs then has nothing to show).
    #[arg(long, env = "RUNCOMFY_NO_JOURNAL", value_parser = FalseyValueParser::new())]
    pub no_journal: bool,

    /// Forget jobs submitted more than this many days ago.
    #[arg(long, env = "RUNCOMFY_JOURNAL_MAX_AGE_DAYS", value_name = "DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub journal_max_age_days: u32,

    /// Keep at most this many jobs, the newest (those of the last 24 hours are always kept: the spend and rate limits count them).
    #[arg(long, env = "RUNCOMFY_JOURNAL_MAX_JOBS", value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub journal_max_jobs: u32,
}

impl JournalArgs {
    /// The database URL, if one is set (blank is unset, as an MCP Bundle's empty setting is).
    pub fn database_url(&self) -> Option<&str> {
        self.journal_url.as_deref().map(str::trim).filter(|u| !u.is_empty())
    }

    /// Refuses settings that cannot work, before anything starts.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(url) = self.database_url() {
            if self.no_journal {
                anyhow::bail!("--journal-url (RUNCOMFY_JOURNAL_URL) and --no-journal (RUNCOMFY_NO_JOURNAL) contradict each other: drop one");
            }
            if !postgres::is_postgres_url(url) {
                anyhow::bail!("--journal-url (RUNCOMFY_JOURNAL_URL) must be a PostgreSQL URL, postgres://user:password@host:port/database");
            }
            url.parse::<::postgres::Config>()
                .map_err(|e| anyhow::anyhow!("--journal-url (RUNCOMFY_JOURNAL_URL) cannot be read: {e}"))?;
        }
        Ok(())
    }

    pub fn retention(&self) -> Retention {
        Retention {
            max_age: chrono::Duration::days(self.journal_max_age_days.into()),
            max_jobs: self.journal_max_jobs,
        }
    }

    /// Opens the journal these settings describe, or a journal that is off (with a warning when
    /// that was not asked for). Prunes old jobs on the way. A file is opened in the background
    /// (calls wait for it); a shared database before this returns. `simulated`: the server runs
    /// on the built-in simulator, whose jobs go to a journal of their own.
    pub async fn open(&self, simulated: bool) -> Journal {
        if self.no_journal {
            tracing::info!("job journal off (--no-journal)");
            return Journal::off("it was turned off with --no-journal (RUNCOMFY_NO_JOURNAL)");
        }
        if let Some(url) = self.database_url() {
            return self.open_database(url.to_owned()).await;
        }
        let Some(dir) = self.state_dir.clone().or_else(location::default_state_dir) else {
            let reason = "no home directory was found to keep it in; set --state-dir (RUNCOMFY_STATE_DIR)";
            tracing::warn!("job journal off: {reason}");
            return Journal::off(reason);
        };
        let retention = self.retention();
        let file_name = if simulated {
            location::SIMULATED_FILE_NAME
        } else {
            location::FILE_NAME
        };
        Journal::opening(
            move || {
                let (store, path) = location::open_in(&dir, file_name)?;
                if let Err(e) = super::JobStore::prune(&store, &retention, chrono::Utc::now()) {
                    tracing::warn!(error = %e, "job journal: pruning old jobs failed");
                }
                Ok((Arc::new(store) as Arc<dyn super::JobStore>, path.display().to_string()))
            },
            retention,
        )
    }
}

impl JournalArgs {
    /// The journal in a shared database. Never the file: a replica told to share must not
    /// quietly keep a record of its own. A database that is down now is used once it is up.
    async fn open_database(&self, url: String) -> Journal {
        let retention = self.retention();
        let open = move || {
            let store = postgres::PgStore::open(&url).map_err(|e| e.to_string())?;
            if let Err(e) = super::JobStore::prune(&store, &retention, chrono::Utc::now()) {
                tracing::debug!(error = %e, "job journal: pruning old jobs failed");
            }
            let place = store.place().to_owned();
            Ok((Arc::new(store) as Arc<dyn super::JobStore>, place))
        };
        Journal::open_now(open, retention).await
    }
}
