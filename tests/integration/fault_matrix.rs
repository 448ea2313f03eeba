//! The fault matrix: every simulator fault against every tool. For each cell the server answers
//! (an actionable isError result, or success after retries where the fault is transient), keeps
//! serving afterwards, never shows the token, and never submits a job twice.

use std::sync::Arc;

use crate::common::*;
use runcomfy_mcp::simulator::SimConfig;
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
        // A submit is never sent again after an answer (issue 40 finding 5): a 429 or a 503 to a
        // submit is an error whose fate is unknown; reads and cancels retry them.
        f("429 once", json!({"status": 429}), Err, Ok),
        f(
            "429 once with Retry-After",
            json!({"status": 429, "retry_after": 1}),
            Err,
            Ok,
        ),
        f(
            "429 with a Retry-After beyond the budget",
            json!({"status": 429, "retry_after": 120}),
            Err,
            Err,
        ),
        f("503 once", json!({"status": 503}), Err, Ok),
        f(
            "500 once",
            json!({"status": 500, "body": {"error_code": 500001, "error_message": "boom"}}),
            Err,
            Ok,
        ),
        f("502 persistent", json!({"status": 502, "times": 100}), Err, Err),
        // The same answers after the endpoint did its work (a submit made its job): a submit is
        // not sent again, a read or a cancel is.
        f(
            "429 after the work",
            json!({"kind": "respond_after", "status": 429}),
            Err,
            Ok,
        ),
        f(
            "503 after the work",
            json!({"kind": "respond_after", "status": 503, "body": {"error_message": "unavailable"}}),
            Err,
            Ok,
        ),
        f(
            "500 after the work",
            json!({"kind": "respond_after", "status": 500, "body": {"error_code": 500001, "error_message": "boom"}}),
            Err,
            Ok,
        ),
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

/// Issue 40 finding 5: a 429, a 503 (each with and without a body) and a 500, answered to a
/// submit after the simulator made its job. Each time exactly one job exists (the submit was
/// not sent again), the answer says the fate is unknown and to look at list_jobs and RunComfy's
/// Generations before submitting again (never "try again"), the journal lists the submit as
/// unknown, and the spend limit counts it at its estimate: the next job past the limit is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_answered_with_an_error_after_its_job_was_made_is_never_resent_and_counts() {
    let cases = [
        (
            "429 with a body",
            json!({"status": 429, "body": {"error_code": 429001, "error_message": "Too many requests"}}),
        ),
        ("429 without a body", json!({"status": 429})),
        (
            "503 with a body",
            json!({"status": 503, "body": {"error_message": "Service unavailable"}}),
        ),
        ("503 without a body", json!({"status": 503})),
        (
            "500",
            json!({"status": 500, "body": {"error_code": 500001, "error_message": "Internal error"}}),
        ),
    ];
    for (name, answer) in cases {
        // Jobs stay queued: the one made under the fault keeps its estimate all along.
        let sim = simulator(SimConfig {
            queue_step_ms: 600_000,
            ..fast_config()
        })
        .await;
        let state = tempfile::tempdir().unwrap();
        // $0.05 a day: one job at $0.03 fits, a second does not.
        let bin = Bin::serve()
            .args(["--max-spend-usd-per-day", "0.05"])
            .upstream(&sim.base_url())
            .journal_in(state.path());
        let client = start_stdio((), bin).await.client;
        let mut rule = answer;
        rule["endpoint"] = json!("submit");
        rule["kind"] = json!("respond_after");
        Control::new(&sim).fault(rule).await;

        let one = json!({"prompt": "a fox", "force_single": true});
        let result = call(&client, "generate_image", one.clone()).await;
        let said = text(&result);
        assert!(is_error(&result), "{name}: {said}");
        for part in [
            "fate of this submit is unknown",
            "a job may exist and be charged",
            "NOT sent again",
            "list_jobs",
            "Generations",
        ] {
            assert!(said.contains(part), "{name}: {part:?} in {said}");
        }
        assert!(!said.to_lowercase().contains("try again"), "{name}: {said}");
        assert!(!said.contains("No job was created"), "{name}: {said}");
        assert_eq!(Control::new(&sim).jobs().await.len(), 1, "{name}: one job");
        assert_eq!(sim.stats().submissions, 1, "{name}: sent once");

        let listed = call(&client, "list_jobs", json!({})).await;
        let list = structured(&listed);
        assert_eq!(list["jobs"][0]["status"], "unknown", "{name}: {list}");
        assert!(
            list["jobs"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("fate is unknown")),
            "{name}: {list}"
        );
        assert_eq!(list["spend"]["today"]["estimated_usd"], json!(0.03), "{name}: {list}");
        assert!(text(&listed).contains("status unknown"), "{name}: {}", text(&listed));

        let refused = call(&client, "generate_image", one).await;
        assert!(is_error(&refused), "{name}: {}", text(&refused));
        assert!(
            text(&refused).contains("Spending limit reached: $0.03 spent"),
            "{name}: {}",
            text(&refused)
        );
        assert_eq!(sim.stats().submissions, 1, "{name}: the refused job was not sent");
        client.cancel().await.unwrap();
    }
}
