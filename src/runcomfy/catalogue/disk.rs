//! The copy of the catalogue kept on disk, so that it still answers with RunComfy out of reach.

use super::{Catalogue, Snapshot, MAX_BYTES};

impl Catalogue {
    /// The copy on disk, unless it is larger than any catalogue this server keeps.
    pub(super) async fn load(&self) -> Option<Snapshot> {
        let path = self.path.clone()?;
        let size = tokio::fs::metadata(&path).await.ok()?.len();
        if size > (2 * MAX_BYTES) as u64 {
            tracing::warn!(path = %path.display(), bytes = size, "model catalogue: the copy on disk is larger than any catalogue kept; ignored");
            return None;
        }
        let bytes = tokio::fs::read(&path).await.ok()?;
        match serde_json::from_slice::<Snapshot>(&bytes) {
            Ok(snapshot) if snapshot.upstream == self.client.base_url() => Some(snapshot),
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
    pub(super) async fn store(&self, snapshot: &Snapshot) {
        let Some(path) = self.path.clone() else { return };
        let Ok(bytes) = serde_json::to_vec(snapshot) else {
            return;
        };
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
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
}
