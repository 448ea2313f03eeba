//! The RunComfy wire types. Lenient on purpose: unknown fields are ignored and an unknown status
//! string becomes [`JobStatus::Unknown`], because a new upstream field or state must never turn a
//! paid job into a parse failure.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The state of a job, folded from the spellings the API and RunComfy's own clients use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    InQueue,
    InProgress,
    /// `completed` on the status endpoint, `succeeded` on the result endpoint.
    Succeeded,
    Failed,
    /// `cancelled` or `canceled`.
    Cancelled,
    /// Any other string, kept as sent.
    Unknown(String),
}

impl JobStatus {
    pub fn from_wire(raw: &str) -> Self {
        match raw.trim().to_ascii_lowercase().as_str() {
            // RunComfy's own clients treat `pending`, `waiting`, `starting` and `processing` as
            // "still going": a job not yet running is queued, one being set up is in progress.
            "in_queue" | "queued" | "pending" | "waiting" => Self::InQueue,
            "in_progress" | "running" | "processing" | "starting" => Self::InProgress,
            "completed" | "succeeded" | "success" => Self::Succeeded,
            "failed" | "error" => Self::Failed,
            "cancelled" | "canceled" => Self::Cancelled,
            // Kept as sent, within reason: it is shown in answers.
            _ => Self::Unknown(crate::text::ellipsis(raw, 64)),
        }
    }

    /// The name we show to models and people: one spelling per state.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InQueue => "in_queue",
            Self::InProgress => "in_progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown(raw) => raw,
        }
    }

    /// True when the job will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Accept any JSON value: a number or null for a status must not fail the whole answer.
        let value = Value::deserialize(deserializer)?;
        Ok(match value {
            Value::String(s) => Self::from_wire(&s),
            other => Self::Unknown(crate::text::ellipsis(&other.to_string(), 64)),
        })
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubmitResponse {
    pub request_id: String,
    // The URLs are informative only: we always build them from the request id, so a missing or
    // odd URL in an answer cannot send our next call somewhere else.
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusResponse {
    #[serde(default)]
    pub request_id: Option<String>,
    pub status: JobStatus,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub queue_position: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResultResponse {
    #[serde(default)]
    pub request_id: Option<String>,
    pub status: JobStatus,
    /// Boxed: a result travels in enums beside small statuses.
    #[serde(default)]
    pub output: Option<Box<Output>>,
    /// Free-form: whatever the upstream said went wrong.
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub created_at: Option<Value>,
    #[serde(default)]
    pub finished_at: Option<Value>,
    /// What the job cost, in US dollars, when asked for with `include_cost=true`. Only a finite,
    /// non-negative number counts: anything else is "not known", never a cost of 0.
    #[serde(default, deserialize_with = "lenient_cost")]
    pub cost: Option<f64>,
}

impl ResultResponse {
    /// What RunComfy said went wrong, as text, when it said anything.
    pub fn error_message(&self) -> Option<String> {
        self.error
            .as_ref()
            .filter(|e| !e.is_null())
            .map(super::error::free_form_message)
    }
}

/// A job's outputs: images, videos or audio, one or many of each, as RunComfy's models return
/// them, and every other URL anywhere in `output` (RunComfy's own CLI downloads every http(s) URL
/// it finds there): a model that names its output `mesh` or `result` must not lose it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Output {
    #[serde(default, deserialize_with = "lenient_string")]
    pub image: Option<String>,
    #[serde(default, deserialize_with = "lenient_strings")]
    pub images: Vec<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub video: Option<String>,
    #[serde(default, deserialize_with = "lenient_strings")]
    pub videos: Vec<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub audio: Option<String>,
    #[serde(default, deserialize_with = "lenient_strings")]
    pub audios: Vec<String>,
    /// Every other key of `output`, as sent.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// A URL found under another key of `output`, with the key it was under (the top-level one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherUrl {
    pub key: String,
    pub url: String,
}

/// URLs read from the other keys of one `output`, and how deep its JSON is walked: an upstream
/// answer is bounded in bytes, but a hostile one must not make a walk of millions of strings.
const MAX_OTHER_URLS: usize = 10_000;
const MAX_OTHER_DEPTH: usize = 16;

impl Output {
    /// Image URLs: `images` first, then `image` (RunComfy's own clients read them in that order),
    /// without duplicates.
    pub fn image_urls(&self) -> Vec<String> {
        merge(&self.images, self.image.as_ref())
    }

    pub fn video_urls(&self) -> Vec<String> {
        merge(&self.videos, self.video.as_ref())
    }

    pub fn audio_urls(&self) -> Vec<String> {
        merge(&self.audios, self.audio.as_ref())
    }

    /// Every http(s) URL under the other keys, in the order sent (as RunComfy's CLI collects
    /// them: strings that start with `http://` or `https://`, at any depth).
    pub fn other_urls(&self) -> Vec<OtherUrl> {
        let mut found = Vec::new();
        for (key, value) in &self.other {
            walk(value, 0, &mut |url| {
                found.push(OtherUrl {
                    key: key.clone(),
                    url: url.to_owned(),
                })
            });
            if found.len() >= MAX_OTHER_URLS {
                found.truncate(MAX_OTHER_URLS);
                break;
            }
        }
        found
    }
}

fn walk(value: &Value, depth: usize, found: &mut impl FnMut(&str)) {
    if depth > MAX_OTHER_DEPTH {
        return;
    }
    match value {
        Value::String(s) => {
            let head = s.get(..8).unwrap_or(s).to_ascii_lowercase();
            if head.starts_with("http://") || head.starts_with("https://") {
                found(s);
            }
        }
        Value::Array(items) => items
            .iter()
            .take(MAX_OTHER_URLS)
            .for_each(|v| walk(v, depth + 1, found)),
        Value::Object(map) => map
            .values()
            .take(MAX_OTHER_URLS)
            .for_each(|v| walk(v, depth + 1, found)),
        _ => {}
    }
}

fn merge(many: &[String], one: Option<&String>) -> Vec<String> {
    let mut urls: Vec<String> = many.to_vec();
    if let Some(one) = one {
        if !urls.contains(one) {
            urls.push(one.clone());
        }
    }
    urls
}

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

#[derive(Debug, Clone, Deserialize)]
pub struct CancelResponse {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub status: Option<JobStatus>,
    #[serde(default)]
    pub outcome: Option<CancelOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    NotCancellable,
    Unknown(String),
}

impl<'de> Deserialize<'de> for CancelOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(match value.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("cancelled" | "canceled") => Self::Cancelled,
            Some("not_cancellable" | "not_cancelable") => Self::NotCancellable,
            _ => Self::Unknown(value.to_string()),
        })
    }
}

fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }))
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }))
}

fn lenient_cost<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value
        .and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .filter(|c| c.is_finite() && *c >= 0.0))
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty()))
}

fn lenient_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(match value {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s],
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_spellings_fold_and_unknown_is_kept() {
        for (raw, want) in [
            ("completed", JobStatus::Succeeded),
            ("succeeded", JobStatus::Succeeded),
            ("cancelled", JobStatus::Cancelled),
            ("canceled", JobStatus::Cancelled),
            ("failed", JobStatus::Failed),
            ("in_queue", JobStatus::InQueue),
            ("in_progress", JobStatus::InProgress),
            ("warming_up", JobStatus::Unknown("warming_up".into())),
        ] {
            let parsed: StatusResponse = serde_json::from_value(json!({"status": raw})).unwrap();
            assert_eq!(parsed.status, want, "{raw}");
        }
        let odd: StatusResponse = serde_json::from_value(json!({"status": 7, "queue_position": "3", "x": 1})).unwrap();
        assert_eq!(odd.status, JobStatus::Unknown("7".into()));
        assert_eq!(odd.queue_position, Some(3));
    }

    /// Issue 40 finding 11: the states RunComfy's own clients read as "still going".
    #[test]
    fn statuses_runcomfys_clients_treat_as_in_progress_are_not_unknown() {
        for (raw, want) in [
            ("pending", JobStatus::InQueue),
            ("waiting", JobStatus::InQueue),
            ("starting", JobStatus::InProgress),
            ("processing", JobStatus::InProgress),
        ] {
            let parsed: StatusResponse = serde_json::from_value(json!({"status": raw})).unwrap();
            assert_eq!(parsed.status, want, "{raw}");
            assert!(!parsed.status.is_terminal(), "{raw}");
        }
    }

    #[test]
    fn output_reads_images_then_image_and_ignores_extras() {
        let r: ResultResponse = serde_json::from_value(json!({
            "request_id": "r", "status": "succeeded",
            "output": {"images": ["a", "b"], "image": "c", "seed": 42, "videos": null}
        }))
        .unwrap();
        assert_eq!(r.cost, None);
        let out = r.output.unwrap();
        assert_eq!(out.image_urls(), ["a", "b", "c"]);
        assert!(out.video_urls().is_empty());
        assert!(out.audio_urls().is_empty());
    }

    /// Issue 40 finding 9: URLs under keys other than image(s)/video(s)/audio(s) are kept.
    #[test]
    fn urls_under_other_keys_are_collected_as_runcomfys_cli_does() {
        let out: Output = serde_json::from_value(json!({
            "images": ["https://h/a.png"],
            "mesh": "https://h/m.glb",
            "result": {"files": [{"url": "https://h/r.webp"}, {"note": "not a url"}], "seed": 7},
            "caption": "a cat",
            "preview": "http://h/p.png"
        }))
        .unwrap();
        assert_eq!(out.image_urls(), ["https://h/a.png"]);
        let other: Vec<(String, String)> = out.other_urls().into_iter().map(|o| (o.key, o.url)).collect();
        let want = [
            ("mesh", "https://h/m.glb"),
            ("preview", "http://h/p.png"),
            ("result", "https://h/r.webp"),
        ];
        let mut got = other.clone();
        got.sort();
        assert_eq!(
            got,
            want.map(|(k, u)| (k.to_owned(), u.to_owned())),
            "every http(s) URL, none of the other strings"
        );
    }

    #[test]
    fn output_reads_video_and_audio_leniently() {
        let out: Output = serde_json::from_value(json!({
            "video": "v.mp4", "audio": "a.wav", "audios": ["b.mp3", 7, "a.wav"]
        }))
        .unwrap();
        assert_eq!(out.video_urls(), ["v.mp4"]);
        assert_eq!(out.audio_urls(), ["b.mp3", "a.wav"]);
        assert!(out.image_urls().is_empty());
    }

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

    #[test]
    fn a_cost_counts_only_when_it_is_a_real_amount() {
        for (raw, want) in [
            (json!(0.03), Some(0.03)),
            (json!("0.5"), Some(0.5)),
            (json!(0), Some(0.0)),
            (json!(-1), None),
            (json!(true), None),
            (json!(null), None),
        ] {
            let r: ResultResponse = serde_json::from_value(json!({"status": "succeeded", "cost": raw})).unwrap();
            assert_eq!(r.cost, want, "{raw}");
        }
    }
}
