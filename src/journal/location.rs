//! Where the journal lives, and opening it so that it can never stop the server: a damaged or
//! foreign file is moved aside (kept, for a person to look at) with a warning and a fresh journal
//! is started; anything else that goes wrong turns the journal off with a warning.
//!
//! Opening holds a lock file, so that when several servers start at once over a damaged journal
//! only one of them moves it aside, and none moves aside the fresh journal another just created.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::sqlite::{OpenError, SqliteStore};

/// The journal's file name inside the state directory.
pub const FILE_NAME: &str = "journal.sqlite3";
/// The journal of runs against the built-in simulator: fake jobs never mix with paid ones.
pub const SIMULATED_FILE_NAME: &str = "journal-simulated.sqlite3";
const LOCK_NAME: &str = "journal.lock";

/// The platform's directory for state that should survive restarts but is not a document:
/// `$XDG_STATE_HOME/runcomfy-mcp` (else `~/.local/state/runcomfy-mcp`) on Linux, the local
/// application-data directory on macOS and Windows.
pub fn default_state_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "runcomfy-mcp")?;
    Some(dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir()).to_path_buf())
}

/// Opens the journal `file_name` in `dir`, repairing what can be repaired. `Err` says, for a
/// warning, why the server runs without a journal.
pub fn open_in(dir: &Path, file_name: &str) -> Result<(SqliteStore, PathBuf), String> {
    create_private_dir(dir).map_err(|e| format!("cannot create the state directory {}: {e}", dir.display()))?;
    let path = dir.join(file_name);
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_NAME))
        .map_err(|e| format!("cannot create {}: {e}", dir.join(LOCK_NAME).display()))?;
    let mut lock = fd_lock::RwLock::new(lock_file);
    // Held only while opening: a few milliseconds, unless another server is repairing.
    let _guard = lock
        .write()
        .map_err(|e| format!("cannot lock {}: {e}", dir.join(LOCK_NAME).display()))?;

    match SqliteStore::open(&path) {
        Ok(store) => Ok((store, path)),
        Err(OpenError::Corrupt(reason)) => {
            let aside = move_aside(&path).map_err(|e| {
                format!(
                    "the journal {} is damaged ({reason}) and could not be moved aside: {e}",
                    path.display()
                )
            })?;
            tracing::warn!(
                journal = %path.display(),
                moved_to = %aside.display(),
                %reason,
                "the job journal was damaged or unreadable: it was moved aside and a fresh journal was started; \
                 the old file is kept for inspection"
            );
            let store = SqliteStore::open(&path).map_err(|e| format!("cannot start a fresh journal: {e}"))?;
            Ok((store, path))
        }
        Err(e) => Err(format!("{e} at {}", path.display())),
    }
}

/// Renames the journal (and SQLite's `-wal` and `-shm` companions) to `….corrupt-TIMESTAMP…`.
/// Returns the new name of the main file.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let aside = path.with_file_name(format!("{name}.corrupt-{stamp}"));
    // The companions first: a WAL left next to a fresh database would be replayed into it.
    for suffix in ["-wal", "-shm"] {
        let companion = PathBuf::from(format!("{}{suffix}", path.display()));
        if companion.exists() {
            fs::rename(&companion, format!("{}{suffix}", aside.display()))?;
        }
    }
    fs::rename(path, &aside)?;
    Ok(aside)
}

/// Prompts are the user's own words: the directory is readable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_moved_aside_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = b"not sqlite at all ".repeat(300);
        fs::write(dir.path().join(FILE_NAME), &garbage).unwrap();
        let (_store, path) = open_in(dir.path(), FILE_NAME).unwrap();
        assert_eq!(path, dir.path().join(FILE_NAME));
        let aside: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(fs::read(&aside[0]).unwrap(), garbage);
    }

    #[test]
    fn a_newer_journal_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let reason = open_in(dir.path(), FILE_NAME).err().expect("not opened");
        assert!(reason.contains("newer"), "{reason}");
        assert!(path.exists());
    }
}
