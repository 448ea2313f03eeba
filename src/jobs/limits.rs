//! Spend and rate limits: their flags, and what a refused submit says. The check itself runs in
//! the journal, in the transaction that records the submit (see [`crate::journal::spend`]), so
//! that every server process sharing the journal shares the limits and none can pass one in a
//! race with another.

use chrono::{DateTime, Utc};
use clap::Args;

use super::price::usd;
use crate::journal::{Limits, Refusal};

/// The limit flags, for `serve` and `generate`.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Refuse a submit that would take spending over the last 24 hours (a rolling day) past this
    /// many US dollars. Jobs whose cost is not known yet count at their estimate's top.
    #[arg(long, env = "RUNCOMFY_MAX_SPEND_USD_PER_DAY", value_name = "USD", value_parser = positive_usd)]
    pub max_spend_usd_per_day: Option<f64>,

    /// Refuse a submit past this many jobs submitted over the last hour.
    #[arg(long, env = "RUNCOMFY_MAX_JOBS_PER_HOUR", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_jobs_per_hour: Option<u32>,
}

/// The limits' environment variables, and the spend confirmation's (`--confirm-above-usd`, in
/// the MCP flags): a blank one is no setting.
const ENV: [&str; 3] = [
    "RUNCOMFY_MAX_SPEND_USD_PER_DAY",
    "RUNCOMFY_MAX_JOBS_PER_HOUR",
    "RUNCOMFY_CONFIRM_ABOVE_USD",
];

/// A client configuration that leaves a limit blank (an MCP Bundle's optional setting left
/// empty becomes `""`, and so does an `"env"` entry written as a placeholder) means no limit,
/// not a malformed amount that stops the server from starting. Call before the arguments are
/// parsed, while the process has one thread.
pub fn unset_blank_env() {
    for name in ENV {
        if std::env::var_os(name).is_some_and(|v| v.to_string_lossy().trim().is_empty()) {
            std::env::remove_var(name);
        }
    }
}

pub(crate) fn positive_usd(raw: &str) -> Result<f64, String> {
    match raw.trim().trim_start_matches('$').parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{raw:?} is not an amount of US dollars above 0, such as 5 or 2.50"
        )),
    }
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_spend_usd_per_day: self.max_spend_usd_per_day,
            max_jobs_per_hour: self.max_jobs_per_hour,
        }
    }

    /// Limits are counted in the journal: they cannot be kept without one.
    pub fn check_with_journal(&self, no_journal: bool) -> anyhow::Result<()> {
        if no_journal && self.limits().any() {
            anyhow::bail!(
                "--max-spend-usd-per-day and --max-jobs-per-hour are counted in the job journal: drop --no-journal (RUNCOMFY_NO_JOURNAL) to use them"
            );
        }
        Ok(())
    }
}

/// What a refused submit is told: what was spent, the limit, and when the next job fits.
pub fn refusal_text(refusal: &Refusal, now: DateTime<Utc>) -> String {
    match refusal {
        Refusal::Spend {
            spent_usd,
            estimated_usd,
            job_usd,
            limit_usd,
            next_fits_at,
        } => {
            let estimated = if *estimated_usd > 0.0 {
                format!(
                    " ({} of it estimates for jobs whose cost is not known yet)",
                    usd(*estimated_usd)
                )
            } else {
                String::new()
            };
            let when = match next_fits_at {
                Some(at) => format!("A job like this one fits again {}.", when(*at, now)),
                None => "This job alone may cost more than the whole limit: ask for less (force_single: true makes exactly one image, count 1), or have the limit raised.".to_owned(),
            };
            format!(
                "Spending limit reached: {} spent over the last 24 hours{estimated}, and this job may cost up to {}; the limit (--max-spend-usd-per-day) is {} per rolling 24 hours. {when}",
                usd(*spent_usd),
                usd(*job_usd),
                usd(*limit_usd)
            )
        }
        Refusal::Jobs {
            jobs,
            limit,
            next_fits_at,
        } => format!(
            "Job limit reached: {jobs} jobs were submitted over the last hour, and the limit (--max-jobs-per-hour) is {limit}. The next job fits {}.",
            when(*next_fits_at, now)
        ),
    }
}

/// What a submit refused under a spend limit for want of a price is told: why the price is not
/// known, and what can be done, since waiting helps only when the catalogue was out of reach.
pub fn unknown_price_text(limit_usd: f64, reason: &str) -> String {
    format!(
        "Not submitted: a spending limit is set ({} per rolling 24 hours, --max-spend-usd-per-day), and it can only admit a job whose price is known; this job's price is not known: {reason}. Nothing was sent to RunComfy. What to do: if RunComfy's catalogue could not be read, try again in a minute; if this model's price cannot be estimated for this input, choose a model priced per image, output or second (list_models shows prices), or ask whoever runs this server to remove the spending limit (--max-spend-usd-per-day, RUNCOMFY_MAX_SPEND_USD_PER_DAY): raising it does not help.",
        usd(limit_usd)
    )
}

/// `at 2026-12-01T19:04:05Z (in 47 min)`.
fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = ((at - now).num_seconds().max(0) + 59) / 60;
    let wait = if minutes >= 90 {
        format!("{} h {} min", minutes / 60, minutes % 60)
    } else {
        format!("{minutes} min")
    };
    format!(
        "at {} (in {wait})",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_checked() {
        assert_eq!(positive_usd("5"), Ok(5.0));
        assert_eq!(positive_usd("$2.50"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "five"] {
            assert!(positive_usd(bad).is_err(), "{bad}");
        }
    }

    /// Issue 40 finding 13: an unknown price under a spend limit says what to do.
    #[test]
    fn an_unknown_price_under_a_limit_says_what_to_do() {
        let text = unknown_price_text(0.5, "acme/video is priced per token, which this server cannot estimate");
        for part in [
            "$0.50 per rolling 24 hours",
            "price is not known: acme/video is priced per token",
            "Nothing was sent to RunComfy",
            "try again in a minute",
            "choose a model priced per image, output or second",
            "remove the spending limit",
            "RUNCOMFY_MAX_SPEND_USD_PER_DAY",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
    }

    #[test]
    fn a_refusal_says_what_was_spent_the_limit_and_when() {
        let now = Utc::now();
        let text = refusal_text(
            &Refusal::Jobs {
                jobs: 3,
                limit: 3,
                next_fits_at: now + chrono::Duration::minutes(47),
            },
            now,
        );
        assert!(text.contains("3 jobs were submitted over the last hour"), "{text}");
        assert!(text.contains("(in 47 min)"), "{text}");
        let text = refusal_text(
            &Refusal::Spend {
                spent_usd: 0.09,
                estimated_usd: 0.03,
                job_usd: 0.03,
                limit_usd: 0.1,
                next_fits_at: Some(now + chrono::Duration::hours(23)),
            },
            now,
        );
        assert!(text.contains("$0.09 spent"), "{text}");
        assert!(text.contains("$0.03 of it estimates"), "{text}");
        assert!(text.contains("is $0.10 per rolling 24 hours"), "{text}");
        assert!(text.contains("(in 23 h 0 min)"), "{text}");
    }
}
