//! Images a person hands the server from the app view (the app-only `upload_image`), kept a while
//! so that an edit can name them: `upload:<id>` in `images`, as `request_id#n` names a result.
//! No host lets a view attach a file to the conversation, so the view reads the file the person
//! chose and sends it here.
//!
//! Kept in the state directory, one folder per owner (the journal's owner: with per-user keys one
//! caller never reads another's upload, whose id is answered "not found" like an unknown one), as
//! the PNG that RunComfy is sent (already within its per-input limits, see [`super::inputs`]).
//! Bounded: at most [`MAX_PER_OWNER`] per owner (the oldest make room), each kept for
//! [`KEPT_FOR`] (then refused and deleted), each at most [`super::inputs::MAX_INPUT_PNG_BYTES`].

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use crate::journal::Owner;

/// How an upload is named in `images`.
pub const PREFIX: &str = "upload:";
/// Uploads one owner keeps at once: a new one beyond this deletes the oldest.
pub const MAX_PER_OWNER: usize = 20;
/// How long an upload is kept.
pub const KEPT_FOR: Duration = Duration::from_secs(24 * 60 * 60);
const ID_LEN: usize = 32;

/// Where uploads are kept; `None`: nowhere (no state directory), and uploads are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uploads {
    dir: Option<PathBuf>,
}

/// An upload just kept.
#[derive(Debug, Clone)]
pub struct Kept {
    /// `upload:<id>`, for `images`.
    pub reference: String,
    pub expires_at: SystemTime,
}

/// The id of `upload:<id>`; `None` when the entry does not start with the prefix, `Err` when it
/// does but names no possible upload.
pub fn reference(entry: &str) -> Option<Result<String, String>> {
    let id = entry.trim().strip_prefix(PREFIX)?;
    Some(if is_id(id) {
        Ok(id.to_owned())
    } else {
        Err(format!(
            "{:?} is not an upload reference: upload:<id> as upload_image returned it (32 hex digits)",
            crate::text::ellipsis(entry, 80)
        ))
    })
}

fn is_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Uploads {
    /// Uploads kept in `dir` (made when the first one comes).
    pub fn in_dir(dir: PathBuf) -> Self {
        Self { dir: Some(dir) }
    }

    fn owner_dir(&self, owner: &Owner) -> Result<PathBuf, String> {
        let dir = self.dir.as_ref().ok_or_else(|| {
            "this server keeps no uploads: it runs with --no-journal and no --state-dir. Give it a --state-dir (RUNCOMFY_STATE_DIR), or pass the image as an https:// URL".to_owned()
        })?;
        // The owner is "" (one key for the whole server) or the hex of a keyed hash: a safe name.
        Ok(dir.join(if owner.as_str().is_empty() {
            "server"
        } else {
            owner.as_str()
        }))
    }

    /// Keeps `png` for `owner`: expired uploads are deleted first, then the oldest while the
    /// owner has [`MAX_PER_OWNER`].
    pub async fn keep(&self, owner: &Owner, png: Vec<u8>) -> Result<Kept, String> {
        let dir = self.owner_dir(owner)?;
        tokio::task::spawn_blocking(move || keep_in(&dir, &png, SystemTime::now()))
            .await
            .map_err(|e| format!("keeping the upload failed: {e}"))?
    }

    /// The PNG of `owner`'s upload `id`; an expired one is deleted and refused.
    pub async fn read(&self, owner: &Owner, id: &str) -> Result<Vec<u8>, String> {
        if !is_id(id) {
            return Err(format!("{PREFIX}{id} is not an upload reference"));
        }
        let path = self.owner_dir(owner)?.join(format!("{id}.png"));
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let gone = || {
                format!(
                    "{PREFIX}{id} is not an upload of yours on this server, or it was deleted (uploads are kept {} hours, {MAX_PER_OWNER} at most): upload the image again in the viewer",
                    KEPT_FOR.as_secs() / 3600
                )
            };
            let made = std::fs::metadata(&path).and_then(|m| m.modified()).map_err(|_| gone())?;
            if expired(made, SystemTime::now()) {
                let _ = std::fs::remove_file(&path);
                return Err(gone());
            }
            std::fs::read(&path).map_err(|_| gone())
        })
        .await
        .map_err(|e| format!("reading the upload failed: {e}"))?
    }
}

fn expired(made: SystemTime, now: SystemTime) -> bool {
    now.duration_since(made).is_ok_and(|age| age >= KEPT_FOR)
}

fn keep_in(dir: &Path, png: &[u8], now: SystemTime) -> Result<Kept, String> {
    let failed = |e: std::io::Error| format!("the upload could not be kept: {e}");
    std::fs::create_dir_all(dir).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    let mut kept: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(failed)?.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "png") {
            continue;
        }
        let made = entry.metadata().and_then(|m| m.modified()).unwrap_or(now);
        if expired(made, now) {
            let _ = std::fs::remove_file(&path);
        } else {
            kept.push((made, path));
        }
    }
    kept.sort();
    let excess = (kept.len() + 1).saturating_sub(MAX_PER_OWNER);
    for (_, path) in kept.iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
    let id = format!("{:032x}", rand::random::<u128>());
    // Written beside and renamed, so that a read never sees half a file.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    std::io::Write::write_all(&mut file, png).map_err(failed)?;
    file.persist(dir.join(format!("{id}.png")))
        .map_err(|e| failed(e.error))?;
    Ok(Kept {
        reference: format!("{PREFIX}{id}"),
        expires_at: now + KEPT_FOR,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_upload_is_read_back_by_its_owner_only() {
        let state = tempfile::tempdir().unwrap();
        let uploads = Uploads::in_dir(state.path().join("uploads"));
        let (me, other) = (Owner::from_stored("aa11"), Owner::from_stored("bb22"));
        let kept = uploads.keep(&me, b"png bytes".to_vec()).await.unwrap();
        let id = reference(&kept.reference).unwrap().unwrap();
        assert_eq!(uploads.read(&me, &id).await.unwrap(), b"png bytes");
        let refused = uploads.read(&other, &id).await.unwrap_err();
        assert!(refused.contains("not an upload of yours"), "{refused}");
    }

    #[test]
    fn the_oldest_make_room_and_expired_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let start = SystemTime::now();
        let first = keep_in(dir.path(), b"1", start).unwrap();
        for _ in 1..MAX_PER_OWNER {
            keep_in(dir.path(), b"n", start).unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), MAX_PER_OWNER);
        // Files made in the same instant: one more still leaves MAX_PER_OWNER.
        keep_in(dir.path(), b"m", start).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), MAX_PER_OWNER);
        // A day later every earlier one has expired.
        keep_in(dir.path(), b"late", start + KEPT_FOR + Duration::from_secs(1)).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(!first.reference.is_empty());
    }

    #[test]
    fn references_are_checked() {
        assert!(reference("abc#1").is_none());
        assert!(reference("upload:../../etc/passwd").unwrap().is_err());
        assert!(reference("upload:ABCDEF0123456789ABCDEF0123456789").unwrap().is_err());
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(reference(&format!(" upload:{id} ")).unwrap().unwrap(), id);
    }

    #[tokio::test]
    async fn no_state_directory_no_uploads() {
        let refused = Uploads::default().keep(&Owner::single(), vec![1]).await.unwrap_err();
        assert!(refused.contains("--state-dir"), "{refused}");
    }
}
