//! What the journal costs a tool call: the two transactions of a submit (before and after it is
//! sent, each synced to disk), the same with both limits checked against every job of the last
//! day, a status update, a `list_jobs` read and its spend totals, on this machine's disk.
//!
//! `cargo run --release --example journal_bench [DIR]` (DIR defaults to a temporary directory;
//! pass one on the disk that will hold the real journal).

use std::time::Instant;

use chrono::Utc;
use runcomfy_mcp::journal::{
    sqlite::SqliteStore, JobQuery, JobStore, JobUpdate, Limits, NewJob, Owner, Retention, SubmitOutcome,
};
use serde_json::json;

const JOBS: usize = 300;

fn main() {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = std::env::args()
        .nth(1)
        .map(Into::into)
        .unwrap_or_else(|| temp.path().to_owned());
    let path = std::path::Path::new(&dir).join("journal-bench.sqlite3");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path).expect("journal opens");

    let started = Instant::now();
    for i in 0..JOBS {
        let job = NewJob {
            owner: Owner::single(),
            model: "bytedance/dreamina-4-0/text-to-image".into(),
            prompt: format!("benchmark prompt number {i}, a lighthouse at dusk in watercolour"),
            size: "2048x2048(1:1)".into(),
            params: json!({"prompt": "x", "scale": 0.5, "force_single": false}),
            submitted_at: Utc::now(),
            estimate_usd: Some(0.03),
        };
        let key = store
            .begin_submit(&job, &Limits::default())
            .unwrap()
            .admitted()
            .unwrap();
        let outcome = SubmitOutcome::Accepted {
            request_id: format!("bench-{i}"),
        };
        store.finish_submit(key, &outcome, Utc::now()).unwrap();
        store.prune(&Retention::default(), Utc::now()).unwrap();
    }
    let submit = started.elapsed() / JOBS as u32;

    // The same submits with both limits set: each one counts the window's jobs (all of the above).
    let limits = Limits {
        max_spend_usd_per_day: Some(1e9),
        max_jobs_per_hour: Some(u32::MAX),
    };
    let started = Instant::now();
    for i in 0..JOBS {
        let job = NewJob {
            owner: Owner::single(),
            model: "bytedance/dreamina-4-0/text-to-image".into(),
            prompt: format!("limited prompt number {i}"),
            size: "2048x2048(1:1)".into(),
            params: json!({"prompt": "x"}),
            submitted_at: Utc::now(),
            estimate_usd: Some(0.03),
        };
        let key = store.begin_submit(&job, &limits).unwrap().admitted().unwrap();
        let outcome = SubmitOutcome::Accepted {
            request_id: format!("limited-{i}"),
        };
        store.finish_submit(key, &outcome, Utc::now()).unwrap();
    }
    let limited = started.elapsed() / JOBS as u32;

    let started = Instant::now();
    for _ in 0..100 {
        store.spend(&Owner::single(), Utc::now()).unwrap();
    }
    let spend = started.elapsed() / 100;

    let started = Instant::now();
    for i in 0..JOBS {
        let update = JobUpdate {
            status: Some(runcomfy_mcp::runcomfy::JobStatus::InProgress),
            ..JobUpdate::default()
        };
        store
            .update(&Owner::single(), &format!("bench-{i}"), &update, Utc::now())
            .unwrap();
    }
    let update = started.elapsed() / JOBS as u32;

    let started = Instant::now();
    for _ in 0..JOBS {
        store
            .list(&JobQuery {
                owner: Owner::single(),
                status: None,
                limit: 10,
            })
            .unwrap();
    }
    let list = started.elapsed() / JOBS as u32;
    println!("journal at {}", path.display());
    println!("per submit (record before + outcome after + prune): {submit:?}");
    println!(
        "per submit with both limits checked ({JOBS} to {} jobs in the window): {limited:?}",
        2 * JOBS
    );
    println!("per spend totals read (list_jobs, {} jobs): {spend:?}", 2 * JOBS);
    println!("per status update: {update:?}");
    println!("per list_jobs read (10 of {JOBS}): {list:?}");
    let _ = std::fs::remove_file(&path);
}
