//! Saving result files: the output directory, safe generated names, atomic writes.
//!
//! Nothing from outside — an upstream URL, a request id typed by a model — ever becomes a path:
//! a file name is built from a sanitised stem, an index and the extension of the sniffed
//! format, and must be a single plain path component. Files are first written to a temporary
//! file created exclusively inside the directory (never following a symlink), then renamed over
//! the final name; a rename replaces a symlink planted at that name instead of writing through
//! it, so nothing lands outside the directory and a reader never sees half a file.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use tempfile::NamedTempFile;

/// A checked output directory: absolute, canonical, an existing writable directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDir {
    path: PathBuf,
}

/// Longest stem kept in a file name; well under every file system's name limit.
const MAX_STEM: usize = 64;

impl OutputDir {
    /// Expands `~`, makes the directory if it is missing, resolves it to its canonical form (a
    /// symlinked directory chosen by the user is followed once, here) and checks it is writable.
    pub fn prepare(raw: &str) -> Result<Self, String> {
        let expanded = expand_home(raw.trim().trim_matches('"'));
        let absolute = if expanded.is_absolute() {
            expanded
        } else {
            let cwd = std::env::current_dir().map_err(|e| format!("--output-dir {raw:?}: {e}"))?;
            tracing::warn!(dir = raw, cwd = %cwd.display(), "relative --output-dir: resolved against the working directory the client started the server in");
            cwd.join(expanded)
        };
        if absolute.exists() && !absolute.is_dir() {
            return Err(format!(
                "--output-dir {} exists and is not a directory",
                absolute.display()
            ));
        }
        fs::create_dir_all(&absolute)
            .map_err(|e| format!("--output-dir {}: cannot create it: {e}", absolute.display()))?;
        // dunce: on Windows, a plain `C:\...` path rather than the `\\?\C:\...` form.
        let path = dunce::canonicalize(&absolute)
            .map_err(|e| format!("--output-dir {}: cannot resolve it: {e}", absolute.display()))?;
        if !path.is_dir() {
            return Err(format!("--output-dir {} is not a directory", path.display()));
        }
        let dir = Self { path };
        dir.spool()
            .map_err(|e| format!("--output-dir {}: cannot write there: {e}", dir.path.display()))?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new empty temporary file inside the directory, created exclusively (`O_EXCL`: it never
    /// opens an existing file or follows a symlink), removed again if dropped unsaved.
    pub fn spool(&self) -> io::Result<NamedTempFile> {
        self.check_still_a_directory()?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".runcomfy-").suffix(".part");
        // A saved image gets the mode any other program's new file gets (0666 less the umask),
        // not a temporary file's 0600: it is the person's, to open, share or serve like the rest.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        builder.tempfile_in(&self.path)
    }

    /// Flushes `spool` to disk and renames it to `name` in this directory, replacing any file or
    /// symlink of that name. `name` must be one plain path component.
    pub fn persist(&self, spool: NamedTempFile, name: &str) -> io::Result<PathBuf> {
        let target = self.path.join(checked_name(name)?);
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a directory", target.display()),
            ));
        }
        self.check_still_a_directory()?;
        spool.as_file().sync_all()?;
        spool.persist(&target).map_err(|e| e.error)?;
        Ok(target)
    }

    /// The directory could have been swapped for a symlink since start-up; refuse to write then.
    fn check_still_a_directory(&self) -> io::Result<()> {
        let meta = fs::symlink_metadata(&self.path)?;
        if meta.is_dir() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{} is no longer a directory (replaced by a symlink or file?)",
                self.path.display()
            )))
        }
    }
}

/// `{stem}-{index}.{extension}` with the stem reduced to ASCII letters, digits, `-` and `_`
/// (safe on every file system, Windows included) and `extension` to letters and digits.
pub fn file_name(stem: &str, index: usize, extension: &str) -> String {
    let mut clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_STEM)
        .collect();
    if clean.trim_matches('_').is_empty() {
        clean = "image".to_owned();
    }
    let extension: String = extension.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let extension = if extension.is_empty() {
        "bin".to_owned()
    } else {
        extension
    };
    format!("{clean}-{index}.{}", extension.to_ascii_lowercase())
}

/// Accepts only a single normal component: no separators of either platform, no `..`, no root,
/// no drive prefix, no leading dot.
fn checked_name(name: &str) -> io::Result<&str> {
    let mut components = Path::new(name).components();
    let single = matches!(components.next(), Some(Component::Normal(_))) && components.next().is_none();
    let ok = single && !name.contains(['/', '\\', ':', '\0']) && !name.starts_with('.');
    if ok {
        Ok(name)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing unsafe file name {name:?}"),
        ))
    }
}

/// `~` or `~/…` (`~\…` too) means the home directory, as `directories` finds it (`HOME` on Unix,
/// the profile folder on Windows).
pub(crate) fn expand_home(raw: &str) -> PathBuf {
    let rest = match raw.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '\\']) => rest.trim_start_matches(['/', '\\']),
        _ => return PathBuf::from(raw),
    };
    match directories::BaseDirs::new() {
        Some(dirs) if rest.is_empty() => dirs.home_dir().to_path_buf(),
        Some(dirs) => dirs.home_dir().join(rest),
        None => PathBuf::from(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn generated_names_are_plain_and_safe() {
        assert_eq!(file_name("3f2b-9d4a", 1, "png"), "3f2b-9d4a-1.png");
        for hostile in [
            "../../etc/x",
            "/etc/passwd",
            "C:\\Windows\\x",
            "..",
            ".",
            "",
            "a/b",
            "\0",
            "~root",
        ] {
            let name = file_name(hostile, 2, "png");
            assert!(checked_name(&name).is_ok(), "{hostile:?} gave {name:?}");
            assert!(!name.contains(['/', '\\', ':']), "{name}");
        }
        assert_eq!(file_name("x", 1, "../jpg"), "x-1.jpg");
        assert_eq!(file_name(&"a".repeat(500), 1, "png").len(), MAX_STEM + "-1.png".len());
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in ["../x", "/abs", "a/b", "a\\b", "..", ".", "", ".hidden", "C:x", "x\0"] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
        assert!(checked_name("ok-1.png").is_ok());
    }

    #[test]
    fn persist_is_atomic_and_stays_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutputDir::prepare(tmp.path().join("out").to_str().unwrap()).unwrap();
        let mut spool = dir.spool().unwrap();
        spool.write_all(b"hello").unwrap();
        let saved = dir.persist(spool, "a-1.png").unwrap();
        assert_eq!(saved, dir.path().join("a-1.png"));
        assert_eq!(fs::read(&saved).unwrap(), b"hello");
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let spool = dir.spool().unwrap();
        assert!(dir.persist(spool, "../escape.png").is_err());
        assert!(!tmp.path().join("escape.png").exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a refused spool is removed"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside.png");
        fs::write(&outside, b"precious").unwrap();
        let dir = OutputDir::prepare(tmp.path().join("out").to_str().unwrap()).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("a-1.png")).unwrap();
        let mut spool = dir.spool().unwrap();
        spool.write_all(b"new").unwrap();
        let saved = dir.persist(spool, "a-1.png").unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&saved).unwrap().file_type().is_file());
        assert_eq!(fs::read(&saved).unwrap(), b"new");
    }

    /// A saved image has the mode a new file of any other program gets here (the umask's), not
    /// a temporary file's 0600.
    #[cfg(unix)]
    #[test]
    fn a_saved_file_respects_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutputDir::prepare(tmp.path().to_str().unwrap()).unwrap();
        let saved = dir.persist(dir.spool().unwrap(), "a-1.png").unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, b"").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&saved), mode(&plain));
    }

    #[test]
    fn home_is_expanded() {
        // An empty HOME is no home: `directories` then asks the system for it.
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            assert_eq!(expand_home("~/pics"), PathBuf::from(&home).join("pics"));
            assert_eq!(expand_home("~"), PathBuf::from(&home));
            // A Windows-style separator after `~` (as typed in a Windows config) works too.
            assert_eq!(expand_home("~\\pics"), PathBuf::from(&home).join("pics"));
        }
        assert_eq!(expand_home("~bob/x"), PathBuf::from("~bob/x"));
        assert_eq!(expand_home("/abs"), PathBuf::from("/abs"));
    }
}
