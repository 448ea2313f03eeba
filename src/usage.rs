//! `runcomfy-mcp usage`: spending and job counts per UTC day, from this machine's job journal
//! (every server process and `generate` run on the machine records there), and the account's
//! balance, read from RunComfy as its own CLI (`runcomfy balance`) reads it. The journal is read
//! directly rather than through the job service: the spending needs no token, client or network,
//! and the balance is one read with the key in the environment, left out when there is none.

use std::{fmt::Write, time::Duration};

use crate::{
    jobs::price::usd,
    journal::{DayUsage, Journal, Owner, SpendTotals, Tally},
    runcomfy::{
        settings::{token_from_env, BalanceArgs},
        Balance, BalanceReader,
    },
};

/// The balance as the report shows it: the figure, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum BalanceLine {
    Read(Balance),
    NotRead(String),
}

impl BalanceLine {
    fn text(&self) -> String {
        match self {
            Self::Read(balance) => format!("RunComfy balance: {} (read from RunComfy just now).", balance.text()),
            Self::NotRead(why) => format!("RunComfy balance: not shown ({why}); the RunComfy dashboard shows it."),
        }
    }
}

/// The account's balance, read with the key in the environment where `args` say; `simulated`:
/// the report is of the simulator's journal, which no account pays for.
pub async fn balance(args: &BalanceArgs, simulated: bool) -> anyhow::Result<BalanceLine> {
    if simulated {
        return Ok(BalanceLine::NotRead(
            "the simulator's jobs are paid by no account".to_owned(),
        ));
    }
    let Some(url) = args.base_url(None)? else {
        return Ok(BalanceLine::NotRead("--balance-base-url is off".to_owned()));
    };
    let Some(token) = token_from_env() else {
        return Ok(BalanceLine::NotRead(
            "no RUNCOMFY_API_KEY in the environment to read it with".to_owned(),
        ));
    };
    let reader = BalanceReader::new(&url, Some(&token), Duration::from_secs(10)).map_err(anyhow::Error::msg)?;
    Ok(match reader.read(None).await {
        Some(balance) => BalanceLine::Read(balance),
        None => BalanceLine::NotRead("RunComfy did not answer the balance read".to_owned()),
    })
}

/// The report, as printed.
pub async fn report(journal: &Journal, days: u32, balance: &BalanceLine) -> anyhow::Result<String> {
    let by_day = journal
        .usage(&Owner::single(), days)
        .await
        .map_err(anyhow::Error::msg)?;
    let totals = journal.spend(&Owner::single()).await.map_err(anyhow::Error::msg)?;
    Ok(render(
        journal.location().unwrap_or("the job journal"),
        days,
        &by_day,
        &totals,
        balance,
    ))
}

fn render(location: &str, days: u32, by_day: &[DayUsage], totals: &SpendTotals, balance: &BalanceLine) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Jobs and spending recorded in {location}, last {days} days (UTC), newest first:"
    );
    let _ = writeln!(out, "{:<12} {:>5} {:>10} {:>12}", "day", "jobs", "cost", "estimated");
    let mut shown = Tally::default();
    for day in by_day {
        let _ = writeln!(out, "{}", row(&day.day.to_string(), &day.tally));
        shown.jobs += day.tally.jobs;
        shown.cost_usd += day.tally.cost_usd;
        shown.estimated_usd += day.tally.estimated_usd;
        shown.unpriced_jobs += day.tally.unpriced_jobs;
    }
    if by_day.is_empty() {
        let _ = writeln!(out, "(no jobs)");
    }
    let _ = writeln!(out, "{}", row("total", &shown));
    let _ = writeln!(
        out,
        "cost: what RunComfy reported; estimated: the jobs whose cost is not known yet, at the top of their estimate."
    );
    let _ = writeln!(
        out,
        "All recorded: {} jobs, {} (+ {} estimated).",
        totals.all_recorded.jobs,
        usd(totals.all_recorded.cost_usd),
        usd(totals.all_recorded.estimated_usd)
    );
    let _ = writeln!(out, "{}", balance.text());
    out
}

fn row(label: &str, tally: &Tally) -> String {
    let mut line = format!(
        "{label:<12} {:>5} {:>10} {:>12}",
        tally.jobs,
        usd(tally.cost_usd),
        usd(tally.estimated_usd)
    );
    if tally.unpriced_jobs > 0 {
        line.push_str(&format!("  ({} of unknown price)", tally.unpriced_jobs));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_has_a_row_per_day_and_a_total() {
        let tally = Tally {
            jobs: 4,
            cost_usd: 0.15,
            estimated_usd: 0.45,
            unpriced_jobs: 0,
        };
        let day = DayUsage {
            day: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            tally,
        };
        let unread = BalanceLine::NotRead("no key".to_owned());
        let text = render(
            "/tmp/j",
            30,
            &[day.clone(), day.clone()],
            &SpendTotals::default(),
            &unread,
        );
        assert!(text.contains("2026-12-01       4      $0.15        $0.45\n"), "{text}");
        assert!(text.contains("total            8      $0.30        $0.90\n"), "{text}");
        assert!(text.contains("RunComfy balance: not shown (no key)"), "{text}");
        let read = BalanceLine::Read(Balance { usd: 12.5 });
        let text = render("/tmp/j", 30, &[day], &SpendTotals::default(), &read);
        assert!(
            text.ends_with("RunComfy balance: $12.50 (read from RunComfy just now).\n"),
            "{text}"
        );
    }
}
