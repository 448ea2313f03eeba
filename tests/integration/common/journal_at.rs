//! Where a test's servers keep their job journal: a state directory of their own (SQLite, the
//! default) or a throwaway PostgreSQL cluster (`--journal-url`), so that one test body checks
//! both backends.

use std::path::Path;

use runcomfy_mcp::journal::{location::FILE_NAME, postgres::PgStore, sqlite::SqliteStore, JobStore};

use super::{pg::Cluster, Bin};

pub enum JournalAt {
    Dir(tempfile::TempDir),
    Database(Cluster),
}

impl JournalAt {
    pub fn dir() -> Self {
        Self::Dir(tempfile::tempdir().unwrap())
    }

    /// A fresh database, or `None` (the test is skipped with a message) without PostgreSQL here
    /// outside CI.
    pub fn database(test: &str) -> Option<Self> {
        Cluster::start(test).map(Self::Database)
    }

    /// `bin` with its journal here.
    pub fn apply(&self, bin: Bin) -> Bin {
        match self {
            Self::Dir(dir) => bin.journal_in(dir.path()),
            Self::Database(cluster) => bin
                .env("RUNCOMFY_NO_JOURNAL", "false")
                .env("RUNCOMFY_JOURNAL_URL", cluster.tcp_url()),
        }
    }

    /// The journal itself, as another server would open it.
    pub fn store(&self) -> Box<dyn JobStore> {
        match self {
            Self::Dir(dir) => Box::new(SqliteStore::open(&dir.path().join(FILE_NAME)).unwrap()),
            Self::Database(cluster) => Box::new(PgStore::open(&cluster.socket_url()).unwrap()),
        }
    }

    pub fn cluster(&self) -> &Cluster {
        match self {
            Self::Database(cluster) => cluster,
            Self::Dir(_) => panic!("not a database"),
        }
    }

    /// The state directory, for a test about the file.
    pub fn path(&self) -> &Path {
        match self {
            Self::Dir(dir) => dir.path(),
            Self::Database(_) => panic!("not a directory"),
        }
    }
}
