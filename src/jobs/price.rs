//! What a job will cost, before it is paid for: the model's price from its catalogue entry
//! (`GET /v1/models/{model_id}`, as RunComfy's own clients read it), cached, times the units of
//! that price the job makes ([`Basis`]). RunComfy's nodes estimate a job as price × outputs;
//! Dreamina 4.0 makes one image with `force_single`, else a set of one or more, so its estimate
//! is a range whose top is what the spend limit counts until the actual cost is known. A model
//! priced per second (video) costs price × the duration its input asks for.

use std::{collections::HashMap, time::Duration};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::{sync::Mutex, time::Instant};

use super::Prepared;
use crate::{
    money::round_usd,
    runcomfy::{ApiToken, Client},
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
}

impl CostEstimate {
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
        format!(
            "Estimated cost {} ({} per {unit} × {images}{jobs}; RunComfy's price list)",
            self.range_text(),
            usd(self.per_unit_usd)
        )
    }
}

/// Dollars as people read them (kept here for the callers of `price::usd`).
pub use crate::money::usd;

/// One model's price, its unit and RunComfy's note on it, or why it is not known.
type Price = Result<(f64, Option<String>, Option<String>), String>;

/// Prices read from the catalogue, by model id.
#[derive(Debug, Default)]
pub struct Prices {
    // A tokio mutex held across the read: jobs of one batch wait for one read, not one each.
    cache: Mutex<HashMap<String, (Instant, Price)>>,
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
        let (unit, low, high) = match (prepared.basis, unit.as_deref()) {
            (Basis::ImageSet { most }, Some("output") | None) => ("image", 1, most),
            (Basis::Outputs(n), Some("output") | None) => ("output", n, n),
            (Basis::Seconds(s), Some("second")) => ("second", s, s),
            (Basis::Unknown(why), _) => return Err(format!("{model}'s input does not say {why}")),
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
        })
    }

    async fn price(&self, client: &Client, key: Option<&ApiToken>, model: &str) -> Price {
        let mut cache = self.cache.lock().await;
        if let Some((read_at, price)) = cache.get(model) {
            let ttl = if price.is_ok() { PRICE_TTL } else { FAILURE_TTL };
            if read_at.elapsed() < ttl {
                return price.clone();
            }
        }
        let price = match client.model_info(key, model).await {
            Err(e) => Err(format!("RunComfy's catalogue entry for {model} could not be read: {e}")),
            Ok(info) => match info.base_price_usd {
                Some(price) => Ok((price, info.price_unit, info.pricing_note)),
                None => Err(format!("RunComfy's catalogue entry for {model} carries no price")),
            },
        };
        if let Err(reason) = &price {
            tracing::warn!("no cost estimate: {reason}");
        }
        if price.is_ok() || key.is_none() {
            cache.insert(model.to_owned(), (Instant::now(), price.clone()));
        }
        price
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        assert_eq!(
            estimate.text(),
            "Estimated cost $0.06–$0.90 ($0.03 per image × 1 to 15 images × 2 jobs; RunComfy's price list)"
        );
        let video = CostEstimate {
            min_usd: 0.5,
            max_usd: 0.5,
            per_unit_usd: 0.1,
            unit: "second".to_owned(),
            units_per_job: [5, 5],
            jobs: 1,
            pricing_note: None,
        };
        assert_eq!(
            video.text(),
            "Estimated cost $0.50 ($0.10 per second × 5 seconds; RunComfy's price list)"
        );
    }
}
