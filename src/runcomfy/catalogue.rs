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

use super::{client::answer_too_large, ApiToken, Client, ModelInfo};

/// How long a copy of the catalogue is used before it is read again.
pub const TTL: Duration = Duration::from_secs(60 * 60);
/// Entries asked for per page.
const PAGE: u32 = 100;
/// The most entries kept: RunComfy lists a few hundred; more is refused, saying so.
pub const MAX_MODELS: usize = 5_000;
/// The most bytes of entries kept, as JSON (RunComfy's whole catalogue is a few MB).
const MAX_BYTES: usize = 32 * 1024 * 1024;
/// The most bytes one entry may take, as JSON; a larger one is skipped (and logged).
const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// The longest model id (RunComfy's are under 60 characters). Longer ids are refused before any
/// work, and catalogue entries with longer ids skipped.
pub const MAX_ID_CHARS: usize = 200;
/// A bound on the pages read, so that an upstream that pages forever cannot hold a read open.
const MAX_PAGES: usize = 2 * MAX_MODELS / PAGE as usize + 100;
/// Entries too large for an answer skipped in one read before it gives up.
const MAX_SKIPPED: usize = 20;
/// Once a read with the server's own key failed, how long before another is tried: a catalogue
/// that is down must not slow every call by a read and its retries.
const FAILURE_PAUSE: Duration = Duration::from_secs(60);

/// What the catalogue knew at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub read_at: DateTime<Utc>,
    /// The API it was read from: a copy on disk from another upstream (another `--base-url`)
    /// is not this one's catalogue.
    #[serde(default)]
    pub upstream: String,
    pub models: Vec<ModelInfo>,
    pub categories: Vec<String>,
}

impl Snapshot {
    pub fn get(&self, model: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.model_id.as_deref() == Some(model))
    }

    /// The ids nearest to `model` (edit distance, then a shared name part), at most `n`. Work is
    /// bounded: both sides are compared on their first [`COMPARED_CHARS`] characters, and ids
    /// are at most [`MAX_ID_CHARS`] (see [`Catalogue::describe`]); it still takes a few
    /// milliseconds over a large catalogue, so callers run it off the async workers.
    pub fn closest(&self, model: &str, n: usize) -> Vec<String> {
        let wanted: String = model.to_ascii_lowercase().chars().take(COMPARED_CHARS).collect();
        let mut scored: Vec<(isize, &str)> = self
            .models
            .iter()
            .filter_map(|m| m.model_id.as_deref())
            .map(|id| {
                let lower: String = id.to_ascii_lowercase().chars().take(COMPARED_CHARS).collect();
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

/// Characters of each id compared by [`Snapshot::closest`].
const COMPARED_CHARS: usize = 80;

/// A search of the catalogue: every given filter must match.
#[derive(Debug, Clone, Default)]
pub struct ModelQuery {
    /// Words that must each appear in the id, name or description (any case).
    pub search: Option<String>,
    pub category: Option<String>,
    /// `image`, `video` or `audio`: read from the categories (RunComfy's `kind` is always
    /// `model`); any other value is matched against the entry's `kind` as sent.
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
    /// RunComfy's catalogue is larger than this server reads.
    #[error("RunComfy's model catalogue is larger than this server reads: {0}. list_models, describe_model and run_model need it; generate_image and edit_image do not.")]
    TooLarge(String),
    #[error("there is no model {model:?} in RunComfy's catalogue{}", suggest(.closest))]
    Unknown { model: String, closest: Vec<String> },
    /// An id no model can have: refused before any work.
    #[error("a model id is at most {MAX_ID_CHARS} characters, and this one has {0}: list_models gives the ids")]
    IdTooLong(usize),
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

/// Why one read of the catalogue failed.
enum ReadError {
    Upstream(String),
    TooLarge(String),
}

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

    /// The entries matching `query`, in catalogue order.
    pub async fn search(self: &Arc<Self>, key: Option<&ApiToken>, query: &ModelQuery) -> Result<Found, CatalogueError> {
        let snapshot = self.snapshot(key).await?;
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
                query.kind.as_deref().is_none_or(|k| {
                    m.media_kinds().iter().any(|x| same(x, k)) || m.kind.as_deref().is_some_and(|x| same(x, k))
                })
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

    async fn read(&self, key: Option<&ApiToken>) -> Result<Snapshot, ReadError> {
        let upstream = |e: super::ApiError| ReadError::Upstream(e.to_string());
        let mut models: Vec<ModelInfo> = Vec::new();
        let (mut offset, mut limit, mut bytes, mut skipped) = (0u64, PAGE, 0usize, 0usize);
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ReadError::TooLarge(format!(
                    "its pages did not end after {MAX_PAGES} reads"
                )));
            }
            let answer = match self.client.model_page(key, offset, limit).await {
                Ok(answer) => answer,
                // One entry larger than an answer may be must not cost the whole catalogue:
                // ask for fewer, down to that entry alone, and then skip it.
                Err(e) if answer_too_large(&e) && limit > 1 => {
                    limit = (limit / 4).max(1);
                    continue;
                }
                Err(e) if answer_too_large(&e) && skipped < MAX_SKIPPED => {
                    tracing::warn!(offset, "model catalogue: an entry too large to read was skipped");
                    skipped += 1;
                    offset += 1;
                    continue;
                }
                Err(e) => return Err(upstream(e)),
            };
            if let Some(total) = answer.total.filter(|t| *t > MAX_MODELS as u64) {
                return Err(ReadError::TooLarge(format!(
                    "it lists {total} models, and this server reads at most {MAX_MODELS}"
                )));
            }
            let page = answer.models;
            if page.unreadable > 0 {
                tracing::warn!(
                    offset,
                    entries = page.unreadable,
                    "model catalogue: entries that are not model entries were skipped"
                );
            }
            if page.held() > limit as usize {
                tracing::warn!(
                    offset,
                    asked = limit,
                    held = page.held(),
                    "model catalogue: a page held more entries than asked for; the rest were not read"
                );
            }
            // Only the entries asked for count: the next page starts after them.
            let advanced = page.held().min(limit as usize);
            for entry in page.kept.into_iter().take(advanced) {
                let Some(id) = entry.model_id.as_deref() else { continue };
                let size = json_size(&entry);
                if id.chars().count() > MAX_ID_CHARS || size > MAX_ENTRY_BYTES {
                    tracing::warn!(model = %crate::text::ellipsis(id, 80), bytes = size, "model catalogue: an oversized entry was skipped");
                    continue;
                }
                bytes += size;
                models.push(entry);
                if models.len() > MAX_MODELS || bytes > MAX_BYTES {
                    return Err(ReadError::TooLarge(format!(
                        "it holds more than {MAX_MODELS} models or {} MB, the most this server reads",
                        MAX_BYTES / (1024 * 1024)
                    )));
                }
            }
            offset += advanced as u64;
            let ended = match answer.total {
                Some(total) => offset >= total,
                // Without a total, only an empty or short page says the list ended.
                None => advanced < limit as usize,
            };
            if advanced == 0 || ended {
                break;
            }
            // Back towards full pages after a smaller one (an oversized entry behind us).
            limit = (limit * 2).min(PAGE);
        }
        // The categories call is a nicety: the entries carry theirs.
        let categories = match self.client.model_categories(key).await {
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
            upstream: self.client.base_url().to_owned(),
            models,
            categories,
        })
    }

    /// The copy on disk, unless it is larger than any catalogue this server keeps.
    async fn load(&self) -> Option<Snapshot> {
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

/// The size of `entry` as JSON, counted without keeping the text.
fn json_size(entry: &ModelInfo) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, entry);
    count.0
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
            upstream: String::new(),
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
