//! The read of the whole catalogue from RunComfy, page by page, and everything that bounds it.

use chrono::Utc;
use serde_json::Value;

use super::{Catalogue, Snapshot, MAX_BYTES, MAX_ID_CHARS, MAX_MODELS};
use crate::runcomfy::{client::answer_too_large, ApiToken, ModelInfo};

/// Entries asked for per page.
const PAGE: u32 = 100;
/// The most bytes one entry may take, as JSON; a larger one is skipped (and logged).
const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// A bound on the pages read, so that an upstream that pages forever cannot hold a read open.
const MAX_PAGES: usize = 2 * MAX_MODELS / PAGE as usize + 100;
/// Entries too large for an answer skipped in one read before it gives up.
const MAX_SKIPPED: usize = 20;

/// Why one read of the catalogue failed.
pub(super) enum ReadError {
    Upstream(String),
    TooLarge(String),
}

impl Catalogue {
    pub(super) async fn read(&self, key: Option<&ApiToken>) -> Result<Snapshot, ReadError> {
        let upstream = |e: crate::runcomfy::ApiError| ReadError::Upstream(e.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_come_in_either_shape() {
        assert_eq!(
            category_names(&serde_json::json!({"categories": ["a", {"name": "b"}]})),
            ["a", "b"]
        );
        assert_eq!(category_names(&serde_json::json!(["x"])), ["x"]);
    }
}
