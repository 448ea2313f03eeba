//! `runcomfy-mcp usage`: spending and job counts per UTC day, from this machine's job journal
//! (every server process and `generate` run on the machine records there). RunComfy's public
//! client code reads no account balance (it only reports a 402 as "add funds"), so neither does
//! this: the balance is on the RunComfy dashboard. It reads the journal directly rather than
//! through the job service: a report needs no token, no client and no network.

use std::fmt::Write;

use crate::{
    jobs::price::usd,
    journal::{DayUsage, Journal, Owner, SpendTotals, Tally},
};

/// The report, as printed.
pub async fn report(journal: &Journal, days: u32) -> anyhow::Result<String> {
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
    ))
}

fn render(location: &str, days: u32, by_day: &[DayUsage], totals: &SpendTotals) -> String {
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
    let _ = writeln!(
        out,
        "Balance: not shown. RunComfy's API offers no balance read that its own clients use; see the RunComfy dashboard. A job the balance cannot pay for is refused with \"top up your RunComfy balance\"."
    );
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
        let text = render("/tmp/j", 30, &[day.clone(), day], &SpendTotals::default());
        assert!(text.contains("2026-12-01       4      $0.15        $0.45\n"), "{text}");
        assert!(text.contains("total            8      $0.30        $0.90\n"), "{text}");
    }
}
