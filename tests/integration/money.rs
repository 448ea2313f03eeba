//! Money in view, through the real binary and the simulator's prices: the actual cost in every
//! result form and in the journal, the spending totals of list_jobs, the estimate before paying
//! (single, set and batch), an exhausted balance, and the spend and rate limits, including
//! several server processes racing one journal for the last dollars of a limit.

use std::path::Path;

use crate::common::*;
use runcomfy_mcp::simulator::SimConfig;
use serde_json::{json, Value};

/// Dollars to a millionth: sums of floats drift in the last digits.
fn usd(value: &Value) -> f64 {
    let v = value.as_f64().unwrap_or_else(|| panic!("not an amount: {value}"));
    (v * 1e6).round() / 1e6
}

/// A stdio server polling fast, its journal in `dir`, with `flags`.
async fn server(base_url: &str, dir: &Path, flags: &[&str]) -> Client {
    let bin = Bin::serve()
        .args(["--poll-first-ms", "50", "--poll-max-ms", "200"])
        .args(flags)
        .upstream(base_url)
        .journal_in(dir);
    start_stdio((), bin).await.client
}

/// Asserts an isError answer that says each of `parts`.
fn assert_refused(result: &rmcp::model::CallToolResult, parts: &[&str]) {
    assert!(is_error(result), "expected an error: {}", text(result));
    for part in parts {
        assert!(text(result).contains(part), "{part:?} in {}", text(result));
    }
}

/// The simulator's catalogue answers "no such model" for a while: no price can be read.
async fn unreadable_catalogue(control: &Control) {
    let no_model = json!({"error_code": 400001, "error_message": "no such model"});
    control
        .fault(json!({"endpoint": "model", "status": 404, "times": 10, "body": no_model}))
        .await;
}

async fn wait_for(client: &Client, arguments: Value) -> Value {
    let result = call(client, "generate_image_and_wait", arguments).await;
    assert!(!is_error(&result), "{}", text(&result));
    structured(&result).clone()
}

async fn result_when_finished(client: &Client, id: &str) -> Value {
    eventually(
        async || {
            let result = call(client, "get_result", json!({ "request_id": id })).await;
            assert!(!is_error(&result), "{}", text(&result));
            let out = structured(&result).clone();
            if out["finished"] == true {
                Ok((out, text(&result)))
            } else {
                Err(out["status"].clone())
            }
        },
        "the job to finish",
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_are_in_every_result_form_and_in_the_journal_with_totals() {
    let sim = simulator(SimConfig {
        images_per_job: 2,
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let client = server(&sim.base_url(), state.path(), &[]).await;

    // A set: two images at $0.03; the estimate said one to fifteen.
    let set = call(&client, "generate_image_and_wait", json!({"prompt": "a set of foxes"})).await;
    assert!(!is_error(&set), "{}", text(&set));
    let out = structured(&set);
    assert_eq!(usd(&out["cost_usd"]), 0.06, "{out}");
    assert_eq!(usd(&out["estimated_cost_usd"]["min_usd"]), 0.03);
    assert_eq!(usd(&out["estimated_cost_usd"]["max_usd"]), 0.45);
    assert_eq!(out["estimated_cost_usd"]["units_per_job"], json!([1, 15]));
    assert!(text(&set).contains("Cost: $0.06"), "{}", text(&set));
    assert!(text(&set).contains("Estimated cost $0.03–$0.45"), "{}", text(&set));

    // force_single: one image, an exact estimate at submit, the cost in get_result.
    let submitted = call(
        &client,
        "generate_image",
        json!({"prompt": "one fox", "force_single": true}),
    )
    .await;
    assert!(!is_error(&submitted), "{}", text(&submitted));
    let estimate = &structured(&submitted)["estimated_cost_usd"];
    assert_eq!((usd(&estimate["min_usd"]), usd(&estimate["max_usd"])), (0.03, 0.03));
    assert!(
        text(&submitted).contains("Estimated cost $0.03 ("),
        "{}",
        text(&submitted)
    );
    let id = structured(&submitted)["request_id"].as_str().unwrap().to_owned();
    assert_eq!(usd(&result_when_finished(&client, &id).await["cost_usd"]), 0.03);

    // A batch: an estimate × count, each job's cost and their sum.
    let batch = wait_for(
        &client,
        json!({"prompt": "two foxes", "force_single": true, "count": 2}),
    )
    .await;
    assert_eq!(usd(&batch["estimated_cost_usd"]["max_usd"]), 0.06, "{batch}");
    assert_eq!(batch["estimated_cost_usd"]["jobs"], 2);
    assert_eq!(usd(&batch["jobs"][0]["cost_usd"]), 0.03);
    assert_eq!(usd(&batch["cost_usd"]), 0.06);

    // The journal kept each cost; the totals add them up.
    let listed = call(&client, "list_jobs", json!({})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    let list = structured(&listed);
    let costs: Vec<f64> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| usd(&j["cost_usd"]))
        .collect();
    assert_eq!(costs, [0.03, 0.03, 0.03, 0.06], "newest first: {list}");
    for window in ["today", "last_7_days", "all_recorded"] {
        assert_eq!(list["spend"][window]["jobs"], 4, "{window}");
        assert_eq!(usd(&list["spend"][window]["cost_usd"]), 0.15, "{window}");
        assert_eq!(usd(&list["spend"][window]["estimated_usd"]), 0.0, "{window}");
    }
    assert!(
        text(&listed).contains("Spent today (UTC): $0.15 over 4 jobs"),
        "{}",
        text(&listed)
    );
    // The price was read from the catalogue once, then reused; so was the catalogue the
    // request bodies are built from (one page and the categories).
    assert_eq!(sim.stats().model_calls, 3);

    // The journal carries the costs to `usage`.
    let usage = Bin::new(["usage"]).journal_in(state.path()).std().output().unwrap();
    let printed = String::from_utf8_lossy(&usage.stdout);
    assert!(usage.status.success(), "{}", String::from_utf8_lossy(&usage.stderr));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let row = printed
        .lines()
        .find(|l| l.starts_with(&today))
        .unwrap_or_else(|| panic!("{printed}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>()[1..3],
        ["4", "$0.15"],
        "{printed}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_balance_says_top_up_and_an_unknown_price_says_so() {
    let sim = simulator(SimConfig {
        balance_usd: Some(0.05),
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let client = server(&sim.base_url(), state.path(), &[]).await;
    let one = json!({"prompt": "a fox", "force_single": true});
    submit(&client, one.clone()).await;
    let refused = call(&client, "generate_image", one.clone()).await;
    assert_refused(&refused, &["top up your RunComfy balance", "No job was created"]);
    assert_eq!(sim.stats().accepted, 1);

    // A catalogue that cannot be read: the job still runs, and the answer says why there is no
    // estimate (a fresh server, so that no cached price hides it).
    let control = Control::new(&sim);
    control.config(json!({"balance_usd": null})).await;
    unreadable_catalogue(&control).await;
    let fresh = server(&sim.base_url(), state.path(), &[]).await;
    let submitted = call(&fresh, "generate_image", one).await;
    assert!(!is_error(&submitted), "{}", text(&submitted));
    assert!(structured(&submitted).get("estimated_cost_usd").is_none());
    assert!(
        text(&submitted).contains("No cost estimate: RunComfy's catalogue entry"),
        "{}",
        text(&submitted)
    );
    client.cancel().await.unwrap();
    fresh.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_before_anything_is_sent_and_say_when_the_next_job_fits() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let one = json!({"prompt": "a fox", "force_single": true});

    // $0.07 a day admits two jobs at $0.03.
    let client = server(&sim.base_url(), state.path(), &["--max-spend-usd-per-day", "0.07"]).await;
    submit(&client, one.clone()).await;
    let _ = wait_for(&client, one.clone()).await;
    let refused = call(&client, "generate_image", one.clone()).await;
    assert_refused(
        &refused,
        &[
            "Spending limit reached: $0.06 spent over the last 24 hours",
            "$0.03 of it estimates",
            "--max-spend-usd-per-day) is $0.07",
            "fits again at",
            "Nothing was sent to RunComfy",
        ],
    );
    assert_eq!(sim.stats().submissions, 2, "the refused job never reached RunComfy");
    // The job whose result nobody fetched counts at its estimate, in list_jobs too.
    let listed = call(&client, "list_jobs", json!({})).await;
    let list = structured(&listed);
    assert!(list["jobs"][1].get("cost_usd").is_none(), "{list}");
    assert_eq!(usd(&list["jobs"][1]["estimate_usd"]), 0.03);
    assert_eq!(usd(&list["spend"]["today"]["estimated_usd"]), 0.03);
    assert_eq!(usd(&list["spend"]["today"]["cost_usd"]), 0.03);
    assert!(
        text(&listed).contains("$0.03 over 2 jobs (+ up to $0.03 estimated"),
        "{}",
        text(&listed)
    );
    client.cancel().await.unwrap();

    // The rate limit counts the same journal, from another process.
    let rated = server(&sim.base_url(), state.path(), &["--max-jobs-per-hour", "3"]).await;
    submit(&rated, one.clone()).await;
    let refused = call(&rated, "generate_image_and_wait", one.clone()).await;
    assert_refused(
        &refused,
        &[
            "Job limit reached: 3 jobs were submitted over the last hour",
            "The next job fits at",
        ],
    );
    assert_eq!(sim.stats().submissions, 3);
    rated.cancel().await.unwrap();

    // An unknown price cannot be checked against a spend limit: refused, nothing sent.
    unreadable_catalogue(&Control::new(&sim)).await;
    let blind = server(&sim.base_url(), state.path(), &["--max-spend-usd-per-day", "100"]).await;
    let refused = call(&blind, "generate_image", one).await;
    assert_refused(&refused, &["price is not known", "Nothing was sent to RunComfy"]);
    assert_eq!(sim.stats().submissions, 3);
    blind.cancel().await.unwrap();

    // Limits need the journal they are counted in.
    let output = Bin::serve()
        .upstream(&sim.base_url())
        .args(["--max-jobs-per-hour", "5"])
        .std()
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("drop --no-journal"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Several server processes on one journal, each submitting at once, against a limit that
/// admits `K` jobs: exactly `K` submits reach the simulator, and every other call is told the
/// limit's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_racing_one_journal_never_pass_a_limit_together() {
    const SERVERS: usize = 4;
    const CALLS_EACH: usize = 3;
    const K: u64 = 3;
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    // $0.10 admits three jobs at $0.03; each counts at its estimate until its cost is known.
    let flags = ["--max-spend-usd-per-day", "0.10"];
    let mut clients = Vec::new();
    for _ in 0..SERVERS {
        clients.push(server(&sim.base_url(), state.path(), &flags).await);
    }
    let calls = clients.iter().flat_map(|client| {
        (0..CALLS_EACH).map(move |i| {
            call(
                client,
                "generate_image",
                json!({"prompt": format!("race {i}"), "force_single": true}),
            )
        })
    });
    let results = futures::future::join_all(calls).await;
    let admitted = results.iter().filter(|r| !is_error(r)).count() as u64;
    for refused in results.iter().filter(|r| is_error(r)) {
        assert!(
            text(refused).contains("Spending limit reached"),
            "every other call gets the limit's answer: {}",
            text(refused)
        );
    }
    assert_eq!(admitted, K, "admitted calls");
    assert_eq!(sim.stats().submissions, K, "submits that reached the simulator");
    for client in clients {
        client.cancel().await.unwrap();
    }
}

/// A limit left blank in a client's configuration (an MCP Bundle's optional setting cleared, an
/// `"env"` placeholder) means no limit: the server starts and serves, where a malformed amount
/// would stop it with a usage error.
#[tokio::test]
async fn a_blank_limit_in_the_environment_means_no_limit() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let bin = Bin::serve()
        .upstream(&sim.base_url())
        .journal_in(state.path())
        .env("RUNCOMFY_MAX_SPEND_USD_PER_DAY", "")
        .env("RUNCOMFY_MAX_JOBS_PER_HOUR", " ");
    let client = start_stdio((), bin).await.client;
    submit(&client, json!({"prompt": "a fox", "force_single": true})).await;
    assert_eq!(sim.stats().accepted, 1);
    client.cancel().await.unwrap();

    let malformed = Bin::serve()
        .upstream(&sim.base_url())
        .journal_in(state.path())
        .env("RUNCOMFY_MAX_SPEND_USD_PER_DAY", "five")
        .std()
        .output()
        .unwrap();
    assert_eq!(malformed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("not an amount of US dollars"));
}

/// Issue 35 finding 4: a job cancelled while queued stops counting at once. With a $0.47 limit,
/// a job estimated at up to $0.45 is cancelled in the queue; a $0.03 job is then admitted, and
/// list_jobs counts the cancelled one at nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_while_queued_stops_counting_at_once() {
    // Jobs stay queued until cancelled.
    let sim = simulator(SimConfig {
        queue_step_ms: 600_000,
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let client = server(&sim.base_url(), state.path(), &["--max-spend-usd-per-day", "0.47"]).await;
    let set = call(&client, "generate_image", json!({"prompt": "a set of foxes"})).await;
    assert!(!is_error(&set), "{}", text(&set));
    assert_eq!(usd(&structured(&set)["estimated_cost_usd"]["max_usd"]), 0.45);
    let id = structured(&set)["request_id"].as_str().unwrap().to_owned();
    let cancelled = call(&client, "cancel_request", json!({ "request_id": id })).await;
    assert!(!is_error(&cancelled), "{}", text(&cancelled));
    assert_eq!(Control::new(&sim).job(&id).await["status"], "cancelled");

    let one = call(
        &client,
        "generate_image",
        json!({"prompt": "one fox", "force_single": true}),
    )
    .await;
    assert!(!is_error(&one), "the $0.03 job is admitted: {}", text(&one));

    let listed = call(&client, "list_jobs", json!({})).await;
    let list = structured(&listed);
    assert_eq!(list["jobs"][1]["status"], "cancelled", "{list}");
    assert_eq!(list["jobs"][1]["cost_usd"], json!(0.0), "{list}");
    assert_eq!(list["spend"]["today"]["estimated_usd"], json!(0.03), "{list}");
    assert_eq!(list["spend"]["today"]["cost_usd"], json!(0.0), "{list}");
    assert!(!text(&listed).contains("$0.45"), "{}", text(&listed));
    client.cancel().await.unwrap();
}

/// Issue 35 finding 5 and issue 34 finding 6: amounts in answers are what they say, to the cent
/// in text and without float noise in structured fields (0.45, not 0.44999999999999996), and no
/// text shows "$-0.00".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_read_as_amounts_in_text_and_structured_fields() {
    let sim = simulator(SimConfig {
        queue_step_ms: 600_000,
        price_usd_per_image: 0.1,
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let client = server(&sim.base_url(), state.path(), &[]).await;
    // Three jobs of one to 15 images at $0.10: 0.1 × 3 is 0.30000000000000004 in floats.
    let set = call(&client, "generate_image", json!({"prompt": "foxes", "count": 3})).await;
    assert!(!is_error(&set), "{}", text(&set));
    let estimate = &structured(&set)["estimated_cost_usd"];
    assert_eq!(estimate["min_usd"], json!(0.3), "{estimate}");
    assert_eq!(estimate["max_usd"], json!(4.5), "{estimate}");
    assert!(text(&set).contains("$0.30–$4.50"), "{}", text(&set));

    let single = json!({"prompt": "one fox", "force_single": true});
    for _ in 0..3 {
        submit(&client, single.clone()).await;
    }
    let listed = call(&client, "list_jobs", json!({})).await;
    let list = structured(&listed);
    // 0.1 + 0.1 + 0.1 + 1.5 × 3 in floats.
    assert_eq!(list["spend"]["today"]["estimated_usd"], json!(4.8), "{list}");
    assert_eq!(list["jobs"][0]["estimate_usd"], json!(0.1), "{list}");
    assert!(text(&listed).contains("up to $4.80 estimated"), "{}", text(&listed));
    for answer in [&set, &listed] {
        assert!(!text(answer).contains("-0.00"), "{}", text(answer));
    }
    client.cancel().await.unwrap();
}

/// Billing at completion (issue 40 "what to build" 7: when RunComfy takes the money is not
/// published): the simulator charges a job only when it completes, so a job cancelled in the
/// queue never costs anything, and the server counts it at nothing too, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billed_at_completion_a_job_cancelled_in_the_queue_costs_nothing_anywhere() {
    let sim = simulator(SimConfig {
        balance_usd: Some(0.05),
        bill_at_completion: true,
        queue_step_ms: 600_000,
        ..fast_config()
    })
    .await;
    let control = Control::new(&sim);
    let state = tempfile::tempdir().unwrap();
    let client = server(&sim.base_url(), state.path(), &["--max-spend-usd-per-day", "0.05"]).await;
    let one = json!({"prompt": "a fox", "force_single": true});
    let queued = submit(&client, one.clone()).await;
    let balance = async || {
        let config: Value = reqwest::get(format!("{}/__sim/config", sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        usd(&config["balance_usd"])
    };
    assert_eq!(balance().await, 0.05, "nothing is charged at submit");
    let cancelled = call(&client, "cancel_request", json!({ "request_id": queued })).await;
    assert!(!is_error(&cancelled), "{}", text(&cancelled));
    assert_eq!(balance().await, 0.05, "a job cancelled in the queue is never charged");

    // The server counts the cancelled job at nothing: a job of the whole limit still fits, and
    // is charged once it completes.
    control.config(json!({"queue_step_ms": 100})).await;
    let done = wait_for(&client, one).await;
    assert_eq!(usd(&done["cost_usd"]), 0.03, "{done}");
    assert_eq!(balance().await, 0.02, "charged at completion");
    let listed = call(&client, "list_jobs", json!({})).await;
    let list = structured(&listed);
    assert_eq!(usd(&list["spend"]["today"]["cost_usd"]), 0.03, "{list}");
    assert_eq!(usd(&list["spend"]["today"]["estimated_usd"]), 0.0, "{list}");
    client.cancel().await.unwrap();
}
