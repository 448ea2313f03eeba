//! Money and rate as the journal counts them: the limits a submit is checked against, what a
//! refused submit is told, and spend totals. Plain data and arithmetic over recorded jobs, so
//! that the check is the same whichever store holds the rows (the store runs it inside the
//! transaction that records the submit: see [`super::JobStore::begin_submit`]).
//!
//! A job counts from the moment it is recorded, before it is sent, unless RunComfy refused it
//! (no job, no charge). It counts at its actual cost once a result said it, and until then at
//! its estimate: the most it is expected to cost.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::JobKey;
use crate::money::round_usd;

/// The spend window: a rolling day, not a calendar one, so that midnight never frees a budget.
pub const SPEND_WINDOW: Duration = Duration::hours(24);
/// The rate window.
pub const RATE_WINDOW: Duration = Duration::hours(1);

/// Amounts within this of a limit are at the limit: sums of floats drift by far less.
const EPSILON_USD: f64 = 1e-9;

/// The ceilings every submit is checked against (none by default).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// US dollars over the last 24 hours.
    pub max_spend_usd_per_day: Option<f64>,
    /// Jobs submitted over the last hour.
    pub max_jobs_per_hour: Option<u32>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.max_spend_usd_per_day.is_some() || self.max_jobs_per_hour.is_some()
    }
}

/// How the limit check of a submit ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Within the limits: recorded, to be sent.
    Admitted(JobKey),
    /// It would pass a limit: not recorded, not to be sent.
    Refused(Refusal),
}

impl Admission {
    /// The row's key, if it was recorded.
    pub fn admitted(self) -> Option<JobKey> {
        match self {
            Self::Admitted(key) => Some(key),
            Self::Refused(_) => None,
        }
    }
}

/// Which limit a submit would pass, with what it is measured against, and when a job of the same
/// price next fits (`None`: never, the job alone is over the limit).
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Spend {
        /// Counted over the last 24 hours.
        spent_usd: f64,
        /// The part of `spent_usd` that is estimates of jobs whose cost is not known yet.
        estimated_usd: f64,
        /// This job, at its estimate.
        job_usd: f64,
        limit_usd: f64,
        next_fits_at: Option<DateTime<Utc>>,
    },
    Jobs {
        /// Submitted over the last hour.
        jobs: u32,
        limit: u32,
        next_fits_at: DateTime<Utc>,
    },
}

/// A recorded job as the limits see it.
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    pub submitted_at: DateTime<Utc>,
    /// The actual cost, else the estimate.
    pub usd: f64,
    /// True when `usd` is an estimate.
    pub estimated: bool,
}

/// Checks a job submitted at `now` and expected to cost at most `job_usd` against `limits`, given
/// the jobs counted within the last [`RATE_WINDOW`] (`last_hour`) and [`SPEND_WINDOW`]
/// (`last_day`), each oldest first. A job of unknown price counts at 0 here: the job service
/// refuses such a job before asking when a spend limit is set.
pub fn check(
    limits: &Limits,
    now: DateTime<Utc>,
    job_usd: Option<f64>,
    last_hour: &[Counted],
    last_day: &[Counted],
) -> Option<Refusal> {
    if let Some(limit) = limits.max_jobs_per_hour {
        let jobs = last_hour.len();
        if jobs >= limit as usize {
            // The job that must age out of the window for one more to fit.
            let freeing = &last_hour[jobs - limit as usize];
            return Some(Refusal::Jobs {
                jobs: jobs as u32,
                limit,
                next_fits_at: (freeing.submitted_at + RATE_WINDOW).max(now),
            });
        }
    }
    if let Some(limit_usd) = limits.max_spend_usd_per_day {
        let job_usd = job_usd.unwrap_or(0.0);
        let spent_usd: f64 = last_day.iter().map(|c| c.usd).sum();
        if spent_usd + job_usd > limit_usd + EPSILON_USD {
            let estimated_usd = last_day.iter().filter(|c| c.estimated).map(|c| c.usd).sum();
            let next_fits_at = (job_usd <= limit_usd + EPSILON_USD)
                .then(|| {
                    let mut left = spent_usd;
                    last_day.iter().find_map(|c| {
                        left -= c.usd;
                        (left + job_usd <= limit_usd + EPSILON_USD).then_some(c.submitted_at + SPEND_WINDOW)
                    })
                })
                .flatten();
            return Some(Refusal::Spend {
                spent_usd,
                estimated_usd,
                job_usd,
                limit_usd,
                next_fits_at,
            });
        }
    }
    None
}

/// Jobs and money over a stretch of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Tally {
    /// Jobs submitted (refused submits, which made no job, are not counted).
    pub jobs: u64,
    /// The actual cost of the jobs whose cost RunComfy reported, in US dollars.
    pub cost_usd: f64,
    /// The jobs whose cost is not known yet, at their estimates, in US dollars.
    pub estimated_usd: f64,
    /// Jobs of which neither the cost nor an estimate is known.
    pub unpriced_jobs: u64,
}

impl Tally {
    /// Counts a job. The sums are kept to a millionth of a dollar, so that they read as the
    /// amounts added, not as float noise (0.09000000000000001).
    pub fn add(&mut self, cost_usd: Option<f64>, estimate_usd: Option<f64>) {
        self.jobs += 1;
        match (cost_usd, estimate_usd) {
            (Some(cost), _) => self.cost_usd = round_usd(self.cost_usd + cost),
            (None, Some(estimate)) => self.estimated_usd = round_usd(self.estimated_usd + estimate),
            (None, None) => self.unpriced_jobs += 1,
        }
    }
}

/// The tally of counted rows, each its `(cost_usd, estimate_usd)`.
pub(super) fn tally(rows: impl IntoIterator<Item = (Option<f64>, Option<f64>)>) -> Tally {
    let mut tally = Tally::default();
    for (cost, estimate) in rows {
        tally.add(cost, estimate);
    }
    tally
}

/// The tallies of counted rows per UTC day, each row its `(submitted_at, cost_usd, estimate_usd)`,
/// rows and days newest first; days without rows are left out.
pub(super) fn by_day(rows: impl IntoIterator<Item = (DateTime<Utc>, Option<f64>, Option<f64>)>) -> Vec<DayUsage> {
    let mut days: Vec<DayUsage> = Vec::new();
    for (submitted_at, cost, estimate) in rows {
        let day = submitted_at.date_naive();
        match days.last_mut() {
            Some(last) if last.day == day => last.tally.add(cost, estimate),
            _ => days.push(DayUsage {
                day,
                tally: tally([(cost, estimate)]),
            }),
        }
    }
    days
}

/// Spend over the windows list_jobs shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SpendTotals {
    /// Since midnight UTC.
    pub today: Tally,
    /// The last 7 days (7 × 24 hours).
    pub last_7_days: Tally,
    /// Everything the journal holds (it forgets jobs past its retention).
    pub all_recorded: Tally,
}

/// One UTC day of `runcomfy-mcp usage`.
#[derive(Debug, Clone, PartialEq)]
pub struct DayUsage {
    pub day: NaiveDate,
    pub tally: Tally,
}

/// Midnight UTC of `now`'s day.
pub fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: DateTime<Utc>, minutes_ago: i64, usd: f64) -> Counted {
        Counted {
            submitted_at: now - Duration::minutes(minutes_ago),
            usd,
            estimated: false,
        }
    }

    #[test]
    fn the_rate_limit_says_when_the_oldest_job_ages_out() {
        let now = Utc::now();
        let limits = Limits {
            max_jobs_per_hour: Some(2),
            ..Limits::default()
        };
        let hour = [at(now, 50, 0.0), at(now, 20, 0.0)];
        assert_eq!(check(&limits, now, None, &hour[..1], &[]), None);
        assert_eq!(
            check(&limits, now, None, &hour, &[]),
            Some(Refusal::Jobs {
                jobs: 2,
                limit: 2,
                next_fits_at: now + Duration::minutes(10)
            })
        );
    }

    #[test]
    fn the_spend_limit_counts_this_job_and_says_when_enough_ages_out() {
        let now = Utc::now();
        let limits = Limits {
            max_spend_usd_per_day: Some(1.0),
            ..Limits::default()
        };
        let day = [at(now, 600, 0.5), at(now, 300, 0.25), at(now, 60, 0.25)];
        // 1.00 spent: a free job fits exactly, a paid one does not.
        assert_eq!(check(&limits, now, Some(0.0), &[], &day), None);
        let Some(Refusal::Spend {
            next_fits_at,
            spent_usd,
            ..
        }) = check(&limits, now, Some(0.6), &[], &day)
        else {
            panic!("refused")
        };
        assert_eq!(spent_usd, 1.0);
        // The two oldest must age out: 0.25 left + 0.6 fits.
        assert_eq!(next_fits_at, Some(now - Duration::minutes(300) + SPEND_WINDOW));
        // A job over the whole limit never fits.
        let Some(Refusal::Spend { next_fits_at, .. }) = check(&limits, now, Some(1.5), &[], &day) else {
            panic!("refused")
        };
        assert_eq!(next_fits_at, None);
    }

    #[test]
    fn a_tally_keeps_costs_estimates_and_unpriced_jobs_apart() {
        let mut tally = Tally::default();
        tally.add(Some(0.03), Some(0.45));
        tally.add(None, Some(0.45));
        tally.add(None, None);
        assert_eq!(tally.jobs, 3);
        assert_eq!(tally.cost_usd, 0.03);
        assert_eq!(tally.estimated_usd, 0.45);
        assert_eq!(tally.unpriced_jobs, 1);
        // Sums read as the amounts added.
        let mut sum = Tally::default();
        for _ in 0..3 {
            sum.add(Some(0.03), None);
            sum.add(None, Some(0.1));
        }
        assert_eq!((sum.cost_usd, sum.estimated_usd), (0.09, 0.3));
    }

    #[test]
    fn usage_is_tallied_per_utc_day_newest_first() {
        let day = |d: u32, h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 12, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
        };
        let days = by_day([
            (day(6, 23), Some(0.03), None),
            (day(6, 0), None, Some(0.5)),
            (day(4, 12), None, None),
        ]);
        let seen: Vec<_> = days.iter().map(|d| (d.day.to_string(), d.tally.jobs)).collect();
        assert_eq!(seen, [("2026-12-06".to_owned(), 2), ("2026-12-04".to_owned(), 1)]);
        assert_eq!((days[0].tally.cost_usd, days[0].tally.estimated_usd), (0.03, 0.5));
        assert_eq!(days[1].tally.unpriced_jobs, 1);
        assert_eq!(tally([(Some(0.1), None), (None, Some(0.2))]).jobs, 2);
    }
}
