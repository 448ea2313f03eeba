//! What a job will cost, before it is paid for: the model's price from its catalogue entry
//! (`GET /v1/models/{model_id}`, as RunComfy's own clients read it), cached, times the images it
//! can make. RunComfy's nodes estimate a job as price × outputs; Dreamina 4.0 makes one image
//! with `force_single`, else a set of one or more, so the estimate is a range whose top is what
//! the spend limit counts until the actual cost is known.

use std::{collections::HashMap, time::Duration};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::{sync::Mutex, time::Instant};

use super::Prepared;
use crate::runcomfy::{ApiToken, Client};

/// The most images one Dreamina 4.0 job can make, reference images included (Seedream 4.0's
/// documented cap of 15 for a set). An assumption of this server, not a RunComfy figure.
pub const MAX_SET_IMAGES: u32 = 15;

/// How long a price read from the catalogue is used before it is read again.
const PRICE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a failed read is remembered, so that a catalogue that is down does not slow every
/// submit by a read and its retries.
const FAILURE_TTL: Duration = Duration::from_secs(60);

/// The estimate of one call's jobs, in US dollars.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CostEstimate {
    /// The least the jobs cost: each makes one image.
    pub min_usd: f64,
    /// The most they cost: each makes its largest set. Equal to min_usd with force_single.
    pub max_usd: f64,
    /// RunComfy's catalogue price of one image of the model.
    pub per_image_usd: f64,
    /// Images one job makes at least and at most.
    pub images_per_job: [u32; 2],
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
        let [low, high] = self.images_per_job;
        let images = if low == high {
            format!("{low} image")
        } else {
            format!("{low} to {high} images")
        };
        let jobs = if self.jobs == 1 {
            String::new()
        } else {
            format!(" × {} jobs", self.jobs)
        };
        format!(
            "Estimated cost {} ({} per image × {images}{jobs}; RunComfy's price list)",
            self.range_text(),
            usd(self.per_image_usd)
        )
    }
}

/// Dollars as people read them: cents, or finer for sub-cent amounts.
pub fn usd(amount: f64) -> String {
    if amount != 0.0 && amount.abs() < 0.01 {
        format!("${amount:.4}")
    } else {
        format!("${amount:.2}")
    }
}

/// One model's price per image, or why it is not known.
type Price = Result<(f64, Option<String>), String>;

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
        let (per_image_usd, pricing_note) = self.price(client, key, &prepared.model).await?;
        let most = if prepared.recipe.force_single {
            1
        } else {
            MAX_SET_IMAGES
                .saturating_sub(prepared.recipe.images.len() as u32)
                .max(1)
        };
        Ok(CostEstimate {
            min_usd: per_image_usd * f64::from(count),
            max_usd: per_image_usd * f64::from(most) * f64::from(count),
            per_image_usd,
            images_per_job: [1, most],
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
            Ok(info) => match (info.base_price_usd, info.price_unit.as_deref()) {
                (Some(price), Some("output") | None) => Ok((price, info.pricing_note)),
                (Some(_), Some(unit)) => Err(format!(
                    "{model} is priced per {unit}, which this server cannot estimate for an image job"
                )),
                (None, _) => Err(format!("RunComfy's catalogue entry for {model} carries no price")),
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
            per_image_usd: 0.03,
            images_per_job: [1, 15],
            jobs: 2,
            pricing_note: None,
        };
        assert_eq!(
            estimate.text(),
            "Estimated cost $0.06–$0.90 ($0.03 per image × 1 to 15 images × 2 jobs; RunComfy's price list)"
        );
    }
}
