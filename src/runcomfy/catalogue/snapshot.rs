//! One copy of the catalogue, as read at one moment, and the ids nearest to one that is not in it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ModelInfo;

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
    /// are at most [`MAX_ID_CHARS`](super::MAX_ID_CHARS) (see
    /// [`Catalogue::describe`](super::Catalogue::describe)); it still takes a few milliseconds
    /// over a large catalogue, so callers run it off the async workers.
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
}
