//! RunComfy's model catalogue: every model's entry (name, kind, price, input schema), read in
//! pages from `GET /v1/models` and kept in memory and on disk in the state directory. A copy
//! younger than [`TTL`] is used as is; an older one is answered at once while a background read
//! replaces it; with RunComfy out of reach the copy on disk still answers (offline). Only when
//! neither can tell is the answer an error, saying both why.
//!
//! The whole catalogue is read, not each search sent upstream: searches, closest-id suggestions
//! and the offline copy all want the full list, and it is a few hundred small entries.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use super::{ApiError, Client, ModelInfo};

/// How long a copy of the catalogue is used before it is read again.
pub const TTL: Duration = Duration::from_secs(60 * 60);
/// Entries per page read.
const PAGE: u32 = 100;
/// A bound on the pages read, so that an upstream that pages forever cannot hold a read open.
const MAX_PAGES: u32 = 50;
/// Once a read failed, how long before another is tried: a catalogue that is down must not slow
/// every call by a read and its retries.
const FAILURE_PAUSE: Duration = Duration::from_secs(60);

/// What the catalogue knew at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub read_at: DateTime<Utc>,
    pub models: Vec<ModelInfo>,
    pub categories: Vec<String>,
}

impl Snapshot {
    pub fn get(&self, model: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.model_id.as_deref() == Some(model))
    }

    /// The ids nearest to `model` (edit distance, then a shared name part), at most `n`.
    pub fn closest(&self, model: &str, n: usize) -> Vec<String> {
        let wanted = model.to_ascii_lowercase();
        let mut scored: Vec<(isize, &str)> = self
            .models
            .iter()
            .filter_map(|m| m.model_id.as_deref())
            .map(|id| {
                let lower = id.to_ascii_lowercase();
                let typos = distance(&wanted, &lower) as isize;
                // "seedream edit" or a bare "nano-banana" should find the family by its parts.
                let shared = wanted
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|p| p.len() > 2 && lower.contains(p))
                    .count();
                // Signed: a floor at zero would tie every id that shares two parts, and the tie
                // would go to the alphabetically first, not the nearest.
                (typos - shared as isize * 8, id)
            })
            .collect();
        scored.sort();
        scored.into_iter().take(n).map(|(_, id)| id.to_owned()).collect()
    }
}

/// A search of the catalogue: every given filter must match.
#[derive(Debug, Clone, Default)]
pub struct ModelQuery {
    /// Words that must each appear in the id, name or description (any case).
    pub search: Option<String>,
    pub category: Option<String>,
    pub kind: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// The matching entries of one page, and how many matched in all.
#[derive(Debug, Clone)]
pub struct Found {
    pub models: Vec<ModelInfo>,
    pub total: usize,
    /// When the copy answering was read from RunComfy.
    pub read_at: DateTime<Utc>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogueError {
    /// Neither RunComfy nor a copy on this machine can say.
    #[error("RunComfy's model catalogue could not be read ({0}), and there is no copy of it on this machine yet. Try again once RunComfy answers.")]
    Unavailable(String),
    #[error("there is no model {model:?} in RunComfy's catalogue{}", suggest(.closest))]
    Unknown { model: String, closest: Vec<String> },
}

fn suggest(closest: &[String]) -> String {
    if closest.is_empty() {
        ". list_models lists the models".to_owned()
    } else {
        format!(
            ". The closest ids: {}. list_models searches them all",
            closest.join(", ")
        )
    }
}

#[derive(Debug)]
pub struct Catalogue {
    client: Arc<Client>,
    /// Where the copy is kept; `None`: memory only.
    path: Option<PathBuf>,
    copy: Mutex<Option<Arc<Snapshot>>>,
    /// When the last read failed, so that the next waits [`FAILURE_PAUSE`].
    failed_at: std::sync::Mutex<Option<tokio::time::Instant>>,
    refreshing: AtomicBool,
}

impl Catalogue {
    pub fn new(client: Arc<Client>, path: Option<PathBuf>) -> Self {
        Self {
            client,
            path,
            copy: Mutex::new(None),
            failed_at: std::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    /// The catalogue as best known now (see the module doc).
    pub async fn snapshot(self: &Arc<Self>) -> Result<Arc<Snapshot>, CatalogueError> {
        let mut copy = self.copy.lock().await;
        if copy.is_none() {
            *copy = self.load().await.map(Arc::new);
        }
        if let Some(known) = copy.as_ref() {
            let age = (Utc::now() - known.read_at).to_std().unwrap_or_default();
            if age >= TTL && !self.paused() && !self.refreshing.swap(true, Ordering::AcqRel) {
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    let _ = this.refresh().await;
                    this.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(Arc::clone(known));
        }
        drop(copy);
        self.refresh().await
    }

    /// Reads the whole catalogue from RunComfy now, and keeps it.
    pub async fn refresh(&self) -> Result<Arc<Snapshot>, CatalogueError> {
        match self.read().await {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                self.store(&snapshot).await;
                *self.copy.lock().await = Some(Arc::clone(&snapshot));
                Ok(snapshot)
            }
            Err(e) => {
                tracing::warn!(error = %e, "model catalogue: read failed");
                *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
                // A copy read meanwhile (or kept from before) still answers.
                match self.copy.lock().await.clone() {
                    Some(known) => Ok(known),
                    None => Err(CatalogueError::Unavailable(e.to_string())),
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

    /// The entries matching `query`, in catalogue order.
    pub async fn search(self: &Arc<Self>, query: &ModelQuery) -> Result<Found, CatalogueError> {
        let snapshot = self.snapshot().await?;
        let words: Vec<String> = query
            .search
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b.trim());
        let matching: Vec<&ModelInfo> = snapshot
            .models
            .iter()
            .filter(|m| {
                let text = [&m.model_id, &m.display_name, &m.description]
                    .iter()
                    .filter_map(|f| f.as_deref())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase();
                words.iter().all(|w| text.contains(w.as_str()))
            })
            .filter(|m| {
                query
                    .category
                    .as_deref()
                    .is_none_or(|c| m.categories.iter().any(|x| same(x, c)))
            })
            .filter(|m| {
                query
                    .kind
                    .as_deref()
                    .is_none_or(|k| m.kind.as_deref().is_some_and(|x| same(x, k)))
            })
            .collect();
        Ok(Found {
            total: matching.len(),
            models: matching
                .into_iter()
                .skip(query.offset)
                .take(query.limit)
                .cloned()
                .collect(),
            read_at: snapshot.read_at,
        })
    }

    /// `model`'s entry, or the closest ids when there is none.
    pub async fn describe(self: &Arc<Self>, model: &str) -> Result<ModelInfo, CatalogueError> {
        let snapshot = self.snapshot().await?;
        if let Some(entry) = snapshot.get(model.trim()) {
            return Ok(entry.clone());
        }
        Err(CatalogueError::Unknown {
            model: model.to_owned(),
            closest: snapshot.closest(model, 3),
        })
    }

    async fn read(&self) -> Result<Snapshot, ApiError> {
        let mut models = Vec::new();
        for page in 0..MAX_PAGES {
            let answer = self.client.model_page(page * PAGE, PAGE).await?;
            let got = answer.models.len();
            models.extend(answer.models.into_iter().filter(|m| m.model_id.is_some()));
            let total = answer.total.map_or(usize::MAX, |t| t as usize);
            if got < PAGE as usize || models.len() >= total {
                break;
            }
        }
        // The categories call is a nicety: the entries carry theirs.
        let categories = match self.client.model_categories().await {
            Ok(answer) => category_names(&answer),
            Err(e) => {
                tracing::debug!(error = %e, "model catalogue: categories not read; taken from the entries");
                Vec::new()
            }
        };
        let categories = if categories.is_empty() {
            let mut all: Vec<String> = models.iter().flat_map(|m| m.categories.clone()).collect();
            all.sort();
            all.dedup();
            all
        } else {
            categories
        };
        tracing::info!(models = models.len(), "model catalogue read");
        Ok(Snapshot {
            read_at: Utc::now(),
            models,
            categories,
        })
    }

    async fn load(&self) -> Option<Snapshot> {
        let path = self.path.clone()?;
        let bytes = tokio::fs::read(&path).await.ok()?;
        match serde_json::from_slice::<Snapshot>(&bytes) {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "model catalogue: the copy on disk is unreadable; ignored");
                None
            }
        }
    }

    /// Writes the copy beside its final name and renames it into place, so that a reader never
    /// sees half a file. A failure only costs the offline copy.
    async fn store(&self, snapshot: &Snapshot) {
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

/// `{"categories": [...]}` or a bare list, of strings or of objects with a name.
fn category_names(answer: &Value) -> Vec<String> {
    let list = answer.get("categories").unwrap_or(answer);
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.as_str()
                .or_else(|| {
                    ["name", "slug", "id"]
                        .iter()
                        .find_map(|k| c.get(k).and_then(Value::as_str))
                })
                .map(str::to_owned)
        })
        .collect()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(ids: &[&str]) -> Snapshot {
        Snapshot {
            read_at: Utc::now(),
            models: ids
                .iter()
                .map(|id| ModelInfo {
                    model_id: Some((*id).to_owned()),
                    ..ModelInfo::default()
                })
                .collect(),
            categories: Vec::new(),
        }
    }

    #[test]
    fn closest_ids_catch_typos_and_parts() {
        let s = snapshot(&[
            "bytedance/dreamina-4-0/edit",
            "bytedance/seedream-4-0/edit",
            "google/nano-banana-2-lite/edit",
            "minimax/speech-2.6/text-to-audio",
        ]);
        assert_eq!(
            s.closest("bytedance/seedrem-4-0/edit", 1),
            ["bytedance/seedream-4-0/edit"]
        );
        assert_eq!(s.closest("nano-banana", 1), ["google/nano-banana-2-lite/edit"]);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn categories_come_in_either_shape() {
        assert_eq!(
            category_names(&serde_json::json!({"categories": ["a", {"name": "b"}]})),
            ["a", "b"]
        );
        assert_eq!(category_names(&serde_json::json!(["x"])), ["x"]);
    }
}
