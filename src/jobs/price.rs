//! What a job will cost, before it is paid for: the model's price from its catalogue entry
//! (`GET /v1/models/{model_id}`, as RunComfy's own clients read it), cached, times the units of
//! that price the job makes ([`Basis`]). RunComfy's nodes estimate a job as price × outputs;
//! Dreamina 4.0 makes one image with `force_single`, else a set of one or more, so its estimate
//! is a range whose top is what the spend limit counts until the actual cost is known. A model
//! priced per second (video) costs price × the duration its input asks for.
//!
//! What is not known is said, never guessed low: a price of 0 or below, a unit other than
//! `output` or `second` (RunComfy has others), or an input that does not say how many units it
//! makes are each "no estimate", with the reason (a spend limit then refuses the job). RunComfy
//! says its base price "is not a guaranteed minimum", so the estimate is the price list's figure.
//!
//! Prices are cached for everyone, one read per model at a time: callers of one model wait for
//! its one read in flight, callers of others go on (no lock is held across a read but the
//! model's own).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as SyncMutex},
    time::Duration,
};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::{sync::Mutex, time::Instant};

use super::Prepared;
use crate::{
    money::round_usd,
    runcomfy::{ApiToken, Client, ModelInfo},
};

/// The most images one Dreamina 4.0 job can make, reference images included (Seedream 4.0's
/// documented cap of 15 for a set). An assumption of this server, not a RunComfy figure.
pub const MAX_SET_IMAGES: u32 = 15;

/// How long a price read from the catalogue is used before it is read again.
const PRICE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a failed read is remembered, so that a catalogue that is down does not slow every
/// submit by a read and its retries.
const FAILURE_TTL: Duration = Duration::from_secs(60);

/// What one job of a prepared request is priced by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Basis {
    /// A Dreamina set: one image at least, at most this many.
    ImageSet { most: u32 },
    /// This many outputs, for a model priced per output.
    Outputs(u32),
    /// This many seconds, for a model priced per second (the input's duration).
    Seconds(u32),
    /// The input does not say (why): no estimate.
    Unknown(&'static str),
}

impl Basis {
    /// A Dreamina job's set: one image with `force_single`, else up to [`MAX_SET_IMAGES`] less
    /// the `references` it is given (they count towards the cap).
    pub fn image_set(force_single: bool, references: usize) -> Self {
        let most = if force_single {
            1
        } else {
            MAX_SET_IMAGES.saturating_sub(references as u32).max(1)
        };
        Self::ImageSet { most }
    }
}

/// The estimate of one call's jobs, in US dollars.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CostEstimate {
    /// The least the jobs cost (a Dreamina job: one image each).
    pub min_usd: f64,
    /// The most they cost (a Dreamina job: its largest set). Equal to min_usd when the units are known exactly.
    pub max_usd: f64,
    /// RunComfy's catalogue price of one unit of the model.
    pub per_unit_usd: f64,
    /// What the price is per: image, output or second.
    pub unit: String,
    /// Units one job makes at least and at most.
    pub units_per_job: [u32; 2],
    /// Jobs the call starts (count).
    pub jobs: u32,
    /// RunComfy's own remark on the price, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_note: Option<String>,
    /// The caller's RunComfy balance when it was read, for [`CostEstimate::text`] only (the
    /// tools' structured answers keep their schema).
    #[serde(skip)]
    #[schemars(skip)]
    pub balance: Option<crate::runcomfy::Balance>,
}

impl CostEstimate {
    /// The same estimate for `jobs` jobs (an estimate made for the call's count, said of the
    /// jobs that were submitted: a refused job costs nothing).
    pub fn for_jobs(&self, jobs: u32) -> Self {
        let [low, high] = self.units_per_job;
        let of = |units: u32| round_usd(self.per_unit_usd * f64::from(units) * f64::from(jobs));
        Self {
            min_usd: of(low),
            max_usd: of(high),
            jobs,
            ..self.clone()
        }
    }

    /// `$0.03` or `$0.03–$0.45`.
    pub fn range_text(&self) -> String {
        if (self.max_usd - self.min_usd).abs() < 1e-12 {
            usd(self.min_usd)
        } else {
            format!("{}–{}", usd(self.min_usd), usd(self.max_usd))
        }
    }

    /// One line for a person or a model: the range and how it was reached.
    pub fn text(&self) -> String {
        let [low, high] = self.units_per_job;
        let unit = &self.unit;
        let images = if low == high {
            format!("{low} {unit}{}", if low == 1 { "" } else { "s" })
        } else {
            format!("{low} to {high} {unit}s")
        };
        let jobs = if self.jobs == 1 {
            String::new()
        } else {
            format!(" × {} jobs", self.jobs)
        };
        let covers = self
            .balance
            .and_then(|balance| balance.covers(self.per_unit_usd, unit))
            .map(|covers| format!("; {covers}"))
            .unwrap_or_default();
        format!(
            "Estimated cost {} ({} per {unit} × {images}{jobs}; RunComfy's price list{covers})",
            self.range_text(),
            usd(self.per_unit_usd)
        )
    }
}

/// Dollars as people read them (kept here for the callers of `price::usd`).
pub use crate::money::usd;

/// One model's price, its unit and RunComfy's note on it, or why it is not known.
type Price = Result<(f64, Option<String>, Option<String>), String>;

/// One model's cached price: its own lock, held across its read only.
type Slot = Arc<Mutex<Option<(Instant, Price)>>>;

/// The most models whose prices are kept; past it, slots not in use are dropped.
const MAX_SLOTS: usize = 4_096;

/// Prices read from the catalogue, by model id.
#[derive(Debug, Default)]
pub struct Prices {
    /// Held only to find a model's slot, never across a read.
    slots: SyncMutex<HashMap<String, Slot>>,
}

impl Prices {
    /// The estimate for `count` jobs of `prepared`; `Err` says why the price is not known.
    /// `key`: whose key reads the catalogue (`None`: the server's). A price is the same for
    /// everyone, so it is cached for all; a failure only when the server's own key met it, so
    /// that one person's bad key does not leave the others without estimates.
    pub async fn estimate(
        &self,
        client: &Client,
        key: Option<&ApiToken>,
        prepared: &Prepared,
        count: u32,
    ) -> Result<CostEstimate, String> {
        let (per_unit_usd, unit, pricing_note) = self.price(client, key, &prepared.model).await?;
        let model = &prepared.model;
        let unit = unit.as_deref().map(|u| u.trim().to_ascii_lowercase());
        let (unit, low, high) = match (prepared.basis, unit.as_deref()) {
            (Basis::ImageSet { most }, Some("output") | None) => ("image", 1, most),
            (Basis::Outputs(n), Some("output") | None) => ("output", n, n),
            (Basis::Seconds(s), Some("second")) => ("second", s, s),
            (Basis::Unknown(why), _) => return Err(format!("{model}'s input does not say {why}")),
            (_, Some(unit)) if !KNOWN_UNITS.contains(&unit) => {
                return Err(format!(
                "{model} is priced per {:?}, a unit this server cannot estimate (it knows per output and per second)",
                crate::text::ellipsis(unit, 40)
            ))
            }
            (_, unit) => {
                return Err(format!(
                    "{model} is priced per {}, which this server cannot estimate for this input",
                    unit.unwrap_or("output")
                ))
            }
        };
        Ok(CostEstimate {
            min_usd: round_usd(per_unit_usd * f64::from(low) * f64::from(count)),
            max_usd: round_usd(per_unit_usd * f64::from(high) * f64::from(count)),
            per_unit_usd,
            unit: unit.to_owned(),
            units_per_job: [low, high],
            jobs: count,
            pricing_note,
            balance: None,
        })
    }

    /// `model`'s slot, made on first use.
    fn slot(&self, model: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(model) {
            return Arc::clone(slot);
        }
        if slots.len() >= MAX_SLOTS {
            // Only slots nobody is reading through: a read in flight keeps its callers together.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        Arc::clone(slots.entry(model.to_owned()).or_default())
    }

    async fn price(&self, client: &Client, key: Option<&ApiToken>, model: &str) -> Price {
        let slot = self.slot(model);
        // Held across this model's read only: its other callers wait for it, not for others'.
        let mut cached = slot.lock().await;
        if let Some((read_at, price)) = cached.as_ref() {
            let ttl = if price.is_ok() { PRICE_TTL } else { FAILURE_TTL };
            if read_at.elapsed() < ttl {
                return price.clone();
            }
        }
        let price = match client.model_info(key, model).await {
            Err(e) => Err(format!("RunComfy's catalogue entry for {model} could not be read: {e}")),
            Ok(info) => match info.price_usd() {
                Some(price) => Ok((price, info.price_unit, info.pricing_note)),
                None if info.base_price_usd.is_some() => Err(format!(
                    "RunComfy's catalogue gives {model} a price of {}, which is not a price this server can count on",
                    info.base_price_usd.unwrap_or_default()
                )),
                None => Err(format!("RunComfy's catalogue entry for {model} carries no price")),
            },
        };
        if let Err(reason) = &price {
            tracing::warn!("no cost estimate: {reason}");
        }
        if price.is_ok() || key.is_none() {
            *cached = Some((Instant::now(), price.clone()));
        }
        price
    }
}

/// The units this server can estimate a price in.
const KNOWN_UNITS: [&str; 2] = ["output", "second"];

/// Input keys that count a job's outputs, by name: RunComfy's schemas have no keyword for it.
const COUNT_KEYS: [&str; 10] = [
    "num_images",
    "num_outputs",
    "num_videos",
    "num_audios",
    "n",
    "batch_size",
    "number_of_images",
    "number_of_outputs",
    "image_count",
    "max_images",
];

/// True when the schema marks `key` (an integer property) as a count of outputs: by its name
/// (above, or `num_*` / `*_count` of what a model makes), or its title or description
/// ("Number of images").
fn counts_outputs(key: &str, property: &Value) -> bool {
    let key = key.to_ascii_lowercase();
    let made = ["image", "output", "video", "audio", "sample", "generation", "variation"];
    let says = |text: &str| {
        let text = text.to_ascii_lowercase();
        ["number of ", "num "].iter().any(|p| {
            text.split(p)
                .skip(1)
                .any(|rest| made.iter().any(|m| rest.trim_start().starts_with(m)))
        })
    };
    COUNT_KEYS.contains(&key.as_str())
        || (key.starts_with("num_") && made.iter().any(|m| key[4..].starts_with(m)))
        || (key.ends_with("_count") && made.iter().any(|m| key.starts_with(m)))
        || ["title", "description"]
            .iter()
            .any(|k| property.get(*k).and_then(Value::as_str).is_some_and(says))
}

/// What one job of `model` with this input is priced by: seconds of the duration it asks for
/// (or the schema's default) for a model priced per second, else its outputs: the product of
/// every count of outputs its schema has (the input's value, else the schema's default, else
/// one), since a batch of sets makes batch × set outputs.
pub(crate) fn basis(model: &ModelInfo, schema: &Value, input: Option<&Map<String, Value>>) -> Basis {
    let given = |key: &str| {
        input
            .and_then(|i| i.get(key))
            .or_else(|| {
                schema.pointer(&format!(
                    "/properties/{}/default",
                    key.replace('~', "~0").replace('/', "~1")
                ))
            })
            .and_then(Value::as_f64)
    };
    if model.price_unit.as_deref().map(str::trim) == Some("second") {
        return match given("duration") {
            Some(seconds) if seconds > 0.0 => Basis::Seconds(seconds.ceil().min(f64::from(u32::MAX)) as u32),
            _ => Basis::Unknown("how many seconds it runs (no duration)"),
        };
    }
    let mut keys: Vec<&str> = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(key, property)| counts_outputs(key, property))
        .map(|(key, _)| key.as_str())
        .collect();
    // A count the input gives under a known name, even where the schema does not list it.
    for key in COUNT_KEYS {
        if input.is_some_and(|i| i.contains_key(key)) && !keys.contains(&key) {
            keys.push(key);
        }
    }
    let count = keys
        .iter()
        .filter_map(|k| given(k))
        .filter(|n| *n >= 1.0)
        .fold(1u32, |all, n| all.saturating_mul(n.min(f64::from(u32::MAX)) as u32));
    Basis::Outputs(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(unit: &str) -> ModelInfo {
        ModelInfo {
            price_unit: Some(unit.to_owned()),
            ..ModelInfo::default()
        }
    }

    #[test]
    fn a_video_is_priced_by_its_duration_or_the_schemas_default() {
        let schema = json!({"properties": {"duration": {"type": "integer", "default": 5}}});
        let asked = json!({"duration": 12});
        assert_eq!(basis(&model("second"), &schema, asked.as_object()), Basis::Seconds(12));
        assert_eq!(basis(&model("second"), &schema, None), Basis::Seconds(5));
        assert!(matches!(basis(&model("second"), &json!({}), None), Basis::Unknown(_)));
    }

    #[test]
    fn other_models_are_priced_by_their_outputs() {
        let input = json!({"num_images": 3});
        assert_eq!(
            basis(&model("output"), &json!({}), input.as_object()),
            Basis::Outputs(3)
        );
        assert_eq!(basis(&model("output"), &json!({}), None), Basis::Outputs(1));
    }

    /// Issue 34, finding 6: `batch_size` (and any field the schema marks as a count of
    /// outputs) was estimated as one output.
    #[test]
    fn every_count_of_outputs_the_schema_marks_is_read() {
        let schema = json!({"properties": {
            "prompt": {"type": "string"},
            "batch_size": {"type": "integer", "default": 2, "minimum": 1, "maximum": 8},
            "variants": {"type": "integer", "title": "Number of images", "default": 1},
            "seed": {"type": "integer", "default": 42},
            "steps": {"type": "integer", "default": 30, "description": "Number of denoising steps"},
        }});
        assert_eq!(
            basis(&model("output"), &schema, None),
            Basis::Outputs(2),
            "the default counts"
        );
        let input = json!({"batch_size": 4, "variants": 3, "seed": 7});
        assert_eq!(basis(&model("output"), &schema, input.as_object()), Basis::Outputs(12));
        let named = json!({"properties": {"num_samples": {"type": "integer"}, "image_count": {"type": "integer"}}});
        let input = json!({"num_samples": 2, "image_count": 5});
        assert_eq!(basis(&model("output"), &named, input.as_object()), Basis::Outputs(10));
    }

    #[test]
    fn amounts_read_as_money() {
        assert_eq!(usd(0.03), "$0.03");
        assert_eq!(usd(0.45), "$0.45");
        assert_eq!(usd(0.0025), "$0.0025");
        assert_eq!(usd(0.0), "$0.00");
        let estimate = CostEstimate {
            min_usd: 0.06,
            max_usd: 0.9,
            per_unit_usd: 0.03,
            unit: "image".to_owned(),
            units_per_job: [1, 15],
            jobs: 2,
            pricing_note: None,
            balance: None,
        };
        assert_eq!(
            estimate.text(),
            "Estimated cost $0.06–$0.90 ($0.03 per image × 1 to 15 images × 2 jobs; RunComfy's price list)"
        );
        let five = estimate.for_jobs(5);
        assert_eq!((five.min_usd, five.max_usd, five.jobs), (0.15, 2.25, 5));
        assert_eq!(estimate.for_jobs(1).range_text(), "$0.03–$0.45");
        let video = CostEstimate {
            min_usd: 0.5,
            max_usd: 0.5,
            per_unit_usd: 0.1,
            unit: "second".to_owned(),
            units_per_job: [5, 5],
            jobs: 1,
            pricing_note: None,
            balance: None,
        };
        assert_eq!(
            video.text(),
            "Estimated cost $0.50 ($0.10 per second × 5 seconds; RunComfy's price list)"
        );
        // With the balance read beside it: how far it goes at this price.
        let funded = CostEstimate {
            balance: Some(crate::runcomfy::Balance { usd: 3.0 }),
            ..estimate
        };
        assert_eq!(
            funded.text(),
            "Estimated cost $0.06–$0.90 ($0.03 per image × 1 to 15 images × 2 jobs; RunComfy's price list; your RunComfy balance ($3.00) covers about 100 such images)"
        );
    }
}
