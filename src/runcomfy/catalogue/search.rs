//! A search of the catalogue: the filters and the page of entries that match.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{ApiToken, Catalogue, CatalogueError, ModelInfo};

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

impl Catalogue {
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
}
