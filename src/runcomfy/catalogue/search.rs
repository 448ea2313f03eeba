//! A search of the catalogue: the filters and the page of entries that match.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{ApiToken, Catalogue, CatalogueError, ModelInfo, Snapshot};

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
        Ok(self.snapshot(key).await?.find(query))
    }
}

impl Snapshot {
    /// The entries of this copy matching `query`, in catalogue order.
    fn find(&self, query: &ModelQuery) -> Found {
        let words: Vec<String> = query
            .search
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b.trim());
        let matching: Vec<&ModelInfo> = self
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
        Found {
            total: matching.len(),
            models: matching
                .into_iter()
                .skip(query.offset)
                .take(query.limit)
                .cloned()
                .collect(),
            read_at: self.read_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, name: &str, categories: &[&str]) -> ModelInfo {
        ModelInfo {
            model_id: Some(id.into()),
            display_name: Some(name.into()),
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            kind: Some("model".into()),
            ..ModelInfo::default()
        }
    }

    fn ids(found: &Found) -> Vec<&str> {
        found.models.iter().filter_map(|m| m.model_id.as_deref()).collect()
    }

    #[test]
    fn every_given_filter_must_match_and_the_page_is_cut_after_counting() {
        let copy = Snapshot {
            read_at: Utc::now(),
            upstream: String::new(),
            models: vec![
                entry("a/dreamina-4-0", "Dreamina 4.0", &["text-to-image"]),
                entry("a/dreamina-4-0/edit", "Dreamina Edit", &["image-to-image"]),
                entry("b/seedance", "Seedance", &["Image-to-Video"]),
                entry("c/speech", "Speech", &["text-to-audio"]),
            ],
            categories: Vec::new(),
        };
        let query = |search: Option<&str>, category: Option<&str>, kind: Option<&str>| ModelQuery {
            search: search.map(str::to_owned),
            category: category.map(str::to_owned),
            kind: kind.map(str::to_owned),
            limit: 10,
            offset: 0,
        };
        let found = copy.find(&query(Some("DREAMINA edit"), None, None));
        assert_eq!(ids(&found), ["a/dreamina-4-0/edit"], "every word, any case");
        let found = copy.find(&query(None, Some(" image-to-video"), None));
        assert_eq!(ids(&found), ["b/seedance"], "a category in any case");
        let found = copy.find(&query(None, None, Some("image")));
        assert_eq!(
            ids(&found),
            ["a/dreamina-4-0", "a/dreamina-4-0/edit"],
            "the kind from the categories"
        );
        assert_eq!(copy.find(&query(None, None, Some("model"))).total, 4, "or as sent");
        let page = copy.find(&ModelQuery {
            limit: 1,
            offset: 1,
            ..query(None, None, None)
        });
        assert_eq!((ids(&page), page.total), (vec!["a/dreamina-4-0/edit"], 4));
    }
}
