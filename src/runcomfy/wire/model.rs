//! The catalogue's wire: one model's entry, and a page of `GET /v1/models` read entry by entry,
//! with a bound on how many are kept.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::lenient::{lenient_cost, lenient_string, lenient_strings, lenient_u64};

/// A model's catalogue entry (`GET /v1/models/{model_id}`, and each entry of `GET /v1/models`):
/// its name, kind, price and input schema, as RunComfy's own clients read them. Serialisable so
/// that the catalogue can keep a copy on disk.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ModelInfo {
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient_strings")]
    pub categories: Vec<String>,
    /// Always `model` for the Model API's endpoints (RunComfy's partner nodes refuse any other):
    /// the media a model makes is read from its `categories` ([`ModelInfo::media_kinds`]).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<String>,
    /// The price of one unit, in US dollars.
    #[serde(default, deserialize_with = "lenient_cost", skip_serializing_if = "Option::is_none")]
    pub base_price_usd: Option<f64>,
    /// `output` (per image or video made) or `second` (per second of video).
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub price_unit: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub pricing_note: Option<String>,
    /// The model's input as a JSON Schema, as RunComfy publishes it (present when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    #[serde(
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub model_url: Option<String>,
}

impl ModelInfo {
    /// What the model makes, from its categories as RunComfy's own nodes read them: a category
    /// ending in `image`, `video` or `audio` (`text-to-image`, `image-to-video`, …) names it.
    pub fn media_kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        for category in &self.categories {
            let category = category.trim().to_ascii_lowercase();
            for kind in ["image", "video", "audio"] {
                if category.ends_with(kind) && !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        kinds
    }

    /// The price of one unit, when RunComfy gives a real one: a price of 0 or below is not
    /// known (an estimate of $0 would let any number of jobs through a spend limit).
    pub fn price_usd(&self) -> Option<f64> {
        self.base_price_usd.filter(|p| *p > 0.0)
    }
}

/// The most entries one page is read for, whatever it holds: an upstream whose pages ignore
/// `limit` (or are simply huge) costs no more memory than this many entries and the answer.
pub const PAGE_ENTRIES_KEPT: usize = 1_000;

/// A page of `GET /v1/models`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelPage {
    #[serde(default)]
    pub models: PageEntries,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total: Option<u64>,
}

/// A page's entries, each read on its own: one that is not an entry is counted and skipped,
/// never the page's failure, and past [`PAGE_ENTRIES_KEPT`] they are only counted.
#[derive(Debug, Clone, Default)]
pub struct PageEntries {
    pub kept: Vec<ModelInfo>,
    /// Entries that could not be read as one (logged by the catalogue).
    pub unreadable: usize,
    /// Entries past [`PAGE_ENTRIES_KEPT`], not read.
    pub beyond: usize,
}

impl PageEntries {
    /// How many entries the page held, read or not.
    pub fn held(&self) -> usize {
        self.kept.len() + self.unreadable + self.beyond
    }
}

impl<'de> Deserialize<'de> for PageEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = PageEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of models")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<PageEntries, A::Error> {
                let mut entries = PageEntries::default();
                while entries.kept.len() + entries.unreadable < PAGE_ENTRIES_KEPT {
                    let Some(value) = seq.next_element::<Value>()? else {
                        return Ok(entries);
                    };
                    match ModelInfo::deserialize(value) {
                        Ok(entry) => entries.kept.push(entry),
                        Err(_) => entries.unreadable += 1,
                    }
                }
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    entries.beyond += 1;
                }
                Ok(entries)
            }
            // `null` or anything that is not a list: no entries.
            fn visit_unit<E>(self) -> Result<PageEntries, E> {
                Ok(PageEntries::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PageEntries, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(PageEntries::default())
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Issue 34, finding 4: a page that ignores `limit` is read for its first entries only,
    /// and an entry that is not one is skipped, not the page's failure.
    #[test]
    fn a_page_keeps_a_bounded_number_of_readable_entries() {
        let mut models: Vec<Value> = (0..PAGE_ENTRIES_KEPT + 50)
            .map(|i| json!({"model_id": format!("m{i}"), "categories": ["text-to-image"], "kind": "model"}))
            .collect();
        models[1] = json!({"model_id": 7});
        let page: ModelPage = serde_json::from_value(json!({"models": models, "total": "2000"})).unwrap();
        assert_eq!(page.total, Some(2000));
        assert_eq!(page.models.unreadable, 1);
        assert_eq!(page.models.kept.len(), PAGE_ENTRIES_KEPT - 1);
        assert_eq!(page.models.beyond, 50);
        assert_eq!(page.models.held(), PAGE_ENTRIES_KEPT + 50);
        assert_eq!(page.models.kept[0].media_kinds(), ["image"]);
        let empty: ModelPage = serde_json::from_value(json!({"models": null})).unwrap();
        assert_eq!(empty.models.held(), 0);
    }
}
