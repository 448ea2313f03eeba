//! RunComfy's model catalogue: every model's entry (name, categories, price, input schema), read
//! in pages from `GET /v1/models` and kept in memory and on disk in the state directory. A copy
//! younger than [`TTL`] is used as is; an older one is answered at once while a background read
//! replaces it; with RunComfy out of reach the copy on disk still answers (offline). Only when
//! neither can tell is the answer an error, saying both why.
//!
//! The whole catalogue is read, not each search sent upstream: searches, closest-id suggestions
//! and the offline copy all want the full list, and it is a few hundred small entries (384 in
//! September 2026). Reads carry the caller's key (with `--per-user-keys`) or the server's, as
//! RunComfy authenticates them; one read at a time fills the one copy every caller shares.
//!
//! Everything the upstream sends is bounded: pages are read to the `total` they announce (no
//! page size is published, so a short page is not the end), at most [`MAX_MODELS`] entries and
//! [`MAX_BYTES`] in all, each entry at most [`MAX_ENTRY_BYTES`]; an entry too large for an
//! answer is skipped by itself (pages halved down to one entry), never the whole catalogue.
//!
//! Here the copy and its reads (who reads, when, and what answers meanwhile); each concept in a
//! file of its own: [`snapshot`] (one copy and its closest-id suggestions), [`search`], [`read`]
//! (the paged read from RunComfy and its bounds), [`disk`] (the offline copy) and [`error`].

mod disk;
mod error;
mod read;
mod search;
mod snapshot;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::Utc;
use tokio::sync::Mutex;

use super::{ApiToken, Client, ModelInfo};
pub use error::CatalogueError;
use read::ReadError;
pub use search::ModelQuery;
pub use snapshot::Snapshot;

/// How long a copy of the catalogue is used before it is read again.
pub const TTL: Duration = Duration::from_secs(60 * 60);
/// The most entries kept: RunComfy lists a few hundred; more is refused, saying so.
pub const MAX_MODELS: usize = 5_000;
/// The most bytes of entries kept, as JSON (RunComfy's whole catalogue is a few MB).
const MAX_BYTES: usize = 32 * 1024 * 1024;
/// The longest model id (RunComfy's are under 60 characters). Longer ids are refused before any
/// work, and catalogue entries with longer ids skipped.
pub const MAX_ID_CHARS: usize = 200;
/// Once a read with the server's own key failed, how long before another is tried: a catalogue
/// that is down must not slow every call by a read and its retries.
const FAILURE_PAUSE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Catalogue {
    client: Arc<Client>,
    /// Where the copy is kept; `None`: memory only.
    path: Option<PathBuf>,
    copy: Mutex<Option<Arc<Snapshot>>>,
    /// Held across a read from RunComfy: callers that find no copy wait for the one read in
    /// flight instead of each starting their own.
    reading: Mutex<()>,
    /// When the last read with the server's own key failed, so that the next waits
    /// [`FAILURE_PAUSE`] (a caller's bad key must not pause everyone's reads).
    failed_at: std::sync::Mutex<Option<tokio::time::Instant>>,
    refreshing: AtomicBool,
}

impl Catalogue {
    pub fn new(client: Arc<Client>, path: Option<PathBuf>) -> Self {
        Self {
            client,
            path,
            copy: Mutex::new(None),
            reading: Mutex::new(()),
            failed_at: std::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    /// The catalogue as best known now (see the module doc); a read from RunComfy goes with
    /// `key` (`None`: the server's own).
    pub async fn snapshot(self: &Arc<Self>, key: Option<&ApiToken>) -> Result<Arc<Snapshot>, CatalogueError> {
        let mut copy = self.copy.lock().await;
        if copy.is_none() {
            *copy = self.load().await.map(Arc::new);
        }
        if let Some(known) = copy.as_ref() {
            let age = (Utc::now() - known.read_at).to_std().unwrap_or_default();
            if age >= TTL && !self.paused() && !self.refreshing.swap(true, Ordering::AcqRel) {
                let this = Arc::clone(self);
                let key = key.cloned();
                tokio::spawn(async move {
                    let _ = this.refresh(key.as_ref()).await;
                    this.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(Arc::clone(known));
        }
        drop(copy);
        // One read at a time: whoever waited here finds the copy the read before them made.
        let _reading = self.reading.lock().await;
        if let Some(known) = self.copy.lock().await.clone() {
            return Ok(known);
        }
        self.read_and_keep(key).await
    }

    /// Reads the whole catalogue from RunComfy now (after any read in flight), and keeps it.
    pub async fn refresh(&self, key: Option<&ApiToken>) -> Result<Arc<Snapshot>, CatalogueError> {
        let _reading = self.reading.lock().await;
        self.read_and_keep(key).await
    }

    /// Called with `reading` held.
    async fn read_and_keep(&self, key: Option<&ApiToken>) -> Result<Arc<Snapshot>, CatalogueError> {
        match self.read(key).await {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                self.store(&snapshot).await;
                *self.copy.lock().await = Some(Arc::clone(&snapshot));
                Ok(snapshot)
            }
            Err(e) => {
                let (ReadError::Upstream(text) | ReadError::TooLarge(text)) = &e;
                tracing::warn!(error = %text, "model catalogue: read failed");
                if key.is_none() {
                    *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
                }
                // A copy read meanwhile (or kept from before) still answers.
                match (self.copy.lock().await.clone(), e) {
                    (Some(known), _) => Ok(known),
                    (None, ReadError::Upstream(text)) => Err(CatalogueError::Unavailable(text)),
                    (None, ReadError::TooLarge(text)) => Err(CatalogueError::TooLarge(text)),
                }
            }
        }
    }

    fn paused(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < FAILURE_PAUSE)
    }

    /// `model`'s entry, or the closest ids when there is none. An id longer than any model's is
    /// refused before any work; the closest-id search runs off the async workers.
    pub async fn describe(self: &Arc<Self>, key: Option<&ApiToken>, model: &str) -> Result<ModelInfo, CatalogueError> {
        let model = model.trim();
        let chars = model.chars().take(MAX_ID_CHARS + 1).count();
        if chars > MAX_ID_CHARS {
            return Err(CatalogueError::IdTooLong(model.chars().count()));
        }
        let snapshot = self.snapshot(key).await?;
        if let Some(entry) = snapshot.get(model) {
            return Ok(entry.clone());
        }
        let wanted = model.to_owned();
        let closest = tokio::task::spawn_blocking(move || snapshot.closest(&wanted, 3))
            .await
            .unwrap_or_default();
        Err(CatalogueError::Unknown {
            model: model.to_owned(),
            closest,
        })
    }
}
