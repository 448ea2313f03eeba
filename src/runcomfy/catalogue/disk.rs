//! The copy of the catalogue kept on disk, so that it still answers with RunComfy out of reach.

use std::path::Path;

use super::{Catalogue, Snapshot, MAX_BYTES};

impl Catalogue {
    /// The copy on disk, if this catalogue keeps one and it is this upstream's.
    pub(super) async fn load(&self) -> Option<Snapshot> {
        load(self.path.as_deref()?, self.client.base_url()).await
    }

    /// Keeps `snapshot` on disk, if this catalogue keeps a copy.
    pub(super) async fn store(&self, snapshot: &Snapshot) {
        if let Some(path) = &self.path {
            store(path, snapshot).await;
        }
    }
}

/// The copy at `path` read from `upstream`, unless it is larger than any catalogue this server
/// keeps.
async fn load(path: &Path, upstream: &str) -> Option<Snapshot> {
    let size = tokio::fs::metadata(path).await.ok()?.len();
    if size > (2 * MAX_BYTES) as u64 {
        tracing::warn!(path = %path.display(), bytes = size, "model catalogue: the copy on disk is larger than any catalogue kept; ignored");
        return None;
    }
    let bytes = tokio::fs::read(path).await.ok()?;
    match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(snapshot) if snapshot.upstream == upstream => Some(snapshot),
        Ok(_) => {
            tracing::info!(path = %path.display(), "model catalogue: the copy on disk is another upstream's; ignored");
            None
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "model catalogue: the copy on disk is unreadable; ignored");
            None
        }
    }
}

/// Writes the copy beside its final name and renames it into place, so that a reader never
/// sees half a file. A failure only costs the offline copy.
async fn store(path: &Path, snapshot: &Snapshot) {
    let Ok(bytes) = serde_json::to_vec(snapshot) else {
        return;
    };
    let path = path.to_owned();
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut file, &bytes)?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(())
    })
    .await;
    if let Ok(Err(e)) | Err(e) = written.map_err(std::io::Error::other) {
        tracing::warn!(error = %e, "model catalogue: the copy could not be saved");
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::runcomfy::ModelInfo;

    fn snapshot(upstream: &str) -> Snapshot {
        Snapshot {
            read_at: Utc::now(),
            upstream: upstream.to_owned(),
            models: vec![ModelInfo {
                model_id: Some("a/b".into()),
                ..ModelInfo::default()
            }],
            categories: vec!["text-to-image".into()],
        }
    }

    #[tokio::test]
    async fn the_copy_is_read_back_for_its_own_upstream_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("catalogue.json");
        assert!(load(&path, "http://127.0.0.1:1").await.is_none(), "no copy yet");
        store(&path, &snapshot("http://127.0.0.1:1")).await;
        let back = load(&path, "http://127.0.0.1:1").await.expect("the copy");
        assert_eq!(back.get("a/b").and_then(|m| m.model_id.as_deref()), Some("a/b"));
        assert_eq!(back.categories, ["text-to-image"]);
        assert!(
            load(&path, "http://127.0.0.1:2").await.is_none(),
            "another upstream's copy is not this one's catalogue"
        );
        std::fs::write(&path, b"{ not json").unwrap();
        assert!(
            load(&path, "http://127.0.0.1:1").await.is_none(),
            "an unreadable copy is ignored"
        );
    }
}
