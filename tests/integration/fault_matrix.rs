//! The fault matrix: every simulator fault against every tool. For each cell the server answers
//! (an actionable isError result, or success after retries where the fault is transient), keeps
//! serving afterwards, never shows the token, and never submits a job twice.

use std::sync::Arc;

use crate::common::*;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    Err,
}
use Expect::{Err, Ok};

struct Fault {
    name: &'static str,
    /// The rule, without its endpoint.
    rule: Value,
    /// Expected outcome on submit, and on the reads (status, result, cancel).
    on_submit: Expect,
    on_read: Expect,
}

fn faults() -> Vec<Fault> {
    let f = |name, rule, on_submit, on_read| Fault {
        name,
        rule,
        on_submit,
        on_read,
    };
    vec![
        f("429 once", json!({"status": 429}), Ok, Ok),
        f(
            "429 once with Retry-After",
            json!({"status": 429, "retry_after": 1}),
            Ok,
            Ok,
        ),
        f(
            "429 with a Retry-After beyond the budget",
            json!({"status": 429, "retry_after": 120}),
            Err,
            Err,
        ),
        f("503 once", json!({"status": 503}), Ok, Ok),
        f(
            "500 once",
            json!({"status": 500, "body": {"error_code": 500001, "error_message": "boom"}}),
            Err,
            Ok,
        ),
        f("502 persistent", json!({"status": 502, "times": 100}), Err, Err),
        f("connection reset", json!({"kind": "reset"}), Err, Ok),
        f("malformed body", json!({"kind": "malformed"}), Err, Ok),
        f("truncated body", json!({"kind": "truncated"}), Err, Ok),
        f("empty body", json!({"kind": "empty"}), Err, Ok),
        f(
            "200 with error_code",
            json!({"status": 200, "body": {"error_code": 400002, "error_message": "Insufficient balance"}}),
            Err,
            Err,
        ),
        f("unknown status string", json!({"kind": "unknown_status"}), Ok, Ok),
        f("slow body", json!({"kind": "slow_body", "delay_ms": 100}), Ok, Ok),
        f("delay beyond the timeout", json!({"delay_ms": 2500}), Err, Ok),
    ]
}

const TOOLS: [(&str, &str); 5] = [
    ("generate_image", "submit"),
    ("generate_image_and_wait", "submit"),
    ("check_status", "status"),
    ("get_result", "result"),
    ("cancel_request", "cancel"),
];

struct Cell {
    fault: &'static str,
    tool: &'static str,
    expected: Expect,
    got: Expect,
    text: String,
    jobs: usize,
    submissions: u64,
    alive: bool,
}

async fn run_cell(fault: &Fault, tool: &'static str, endpoint: &'static str) -> Cell {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[("RUNCOMFY_TIMEOUT_SECS", "1")]).await;
    let control = Control::new(&sim);
    // Reads act on a job that exists before the fault is armed.
    let existing = if endpoint == "submit" {
        None
    } else {
        Some(submit(&client, json!({"prompt": "before"})).await)
    };
    let mut rule = fault.rule.clone();
    rule["endpoint"] = json!(endpoint);
    control.fault(rule).await;

    let arguments = match &existing {
        None => json!({"prompt": "under fault", "max_wait_seconds": 20}),
        Some(id) => json!({"request_id": id}),
    };
    let arguments = if tool == "generate_image" {
        json!({"prompt": "under fault"})
    } else {
        arguments
    };
    let result = call(&client, tool, arguments).await;
    let got = if is_error(&result) { Err } else { Ok };

    // Still serving: clear the faults and run a whole job.
    reqwest::Client::new()
        .delete(format!("{}/__sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    let follow_up = call(&client, "generate_image_and_wait", json!({"prompt": "after"})).await;
    let alive = !is_error(&follow_up) && structured(&follow_up)["status"] == "succeeded";

    let jobs = control.jobs().await;
    let expected = if endpoint == "submit" {
        fault.on_submit
    } else {
        fault.on_read
    };
    Cell {
        fault: fault.name,
        tool,
        expected,
        got,
        text: text(&result),
        // Jobs made by the call under test: all but the one made before it and the follow-up.
        jobs: jobs.len() - 1 - usize::from(existing.is_some()),
        submissions: sim.stats().submissions,
        alive,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_against_every_tool() {
    let limit = Arc::new(Semaphore::new(6));
    let mut cells = tokio::task::JoinSet::new();
    for fault in faults() {
        let fault = Arc::new(fault);
        for (tool, endpoint) in TOOLS {
            let (fault, limit) = (fault.clone(), limit.clone());
            cells.spawn(async move {
                let _permit = limit.acquire().await.unwrap();
                run_cell(&fault, tool, endpoint).await
            });
        }
    }
    let mut failures = Vec::new();
    let mut count = 0;
    while let Some(cell) = cells.join_next().await {
        let cell = cell.expect("a cell panicked");
        count += 1;
        let mut problems = Vec::new();
        if cell.got != cell.expected {
            problems.push(format!("expected {:?}, got {:?}", cell.expected, cell.got));
        }
        if cell.got == Err && (cell.text.trim().is_empty() || cell.text.contains("panicked")) {
            problems.push("the error says nothing useful".to_owned());
        }
        if cell.text.contains(TOKEN) {
            problems.push("the token leaked".to_owned());
        }
        if cell.jobs > 1 {
            problems.push(format!("{} jobs were created for one call", cell.jobs));
        }
        if !cell.alive {
            problems.push("the server stopped serving".to_owned());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} × {}: {} — {:?} (submissions {})",
                cell.fault,
                cell.tool,
                problems.join(", "),
                cell.text,
                cell.submissions
            ));
        }
    }
    assert_eq!(count, faults().len() * TOOLS.len());
    println!("fault matrix: {count} cells, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {count} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
