//! The job journal through the real binary: a job survives a kill -9 of the server that was
//! waiting on it, two servers sharing one journal lose no record, a garbage journal is moved
//! aside without stopping the server, retention drops old jobs only, and a submit whose fate is
//! unknown is still listed. Every test uses its own temporary state directory.

use std::collections::BTreeSet;

use crate::common::*;
use chrono::Utc;
use rmcp::model::CallToolRequestParams;
use runcomfy_mcp::{
    journal::{location::FILE_NAME as JOURNAL_FILE, JobUpdate, Limits, NewJob, Owner, SubmitOutcome},
    simulator::SimConfig,
};
use serde_json::{json, Value};

/// Each test once per backend: `sqlite::NAME` (a state directory) and `postgres::NAME` (a
/// throwaway cluster; skipped, with a message, only without PostgreSQL outside CI).
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(crate::common::JournalAt::dir()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(at) = crate::common::JournalAt::database(stringify!($test)) {
                        super::$test(at).await
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    a_job_survives_kill_9_while_waiting_and_a_new_server_completes_it,
    a_waiting_call_keeps_the_journal_current_as_the_job_moves,
    two_servers_submitting_at_once_lose_no_record,
    retention_removes_old_jobs_only,
    a_submit_whose_fate_is_unknown_is_listed_without_an_id,
);

/// A server over stdio with its journal `at`, polling fast.
async fn server_with(base_url: &str, at: &JournalAt, extra_env: &[(&str, &str)]) -> StdioServer<()> {
    let bin = Bin::serve()
        .args(["--poll-first-ms", "50", "--poll-max-ms", "200"])
        .upstream(base_url);
    start_stdio((), at.apply(bin).envs(extra_env)).await
}

async fn server(base_url: &str, at: &JournalAt) -> Client {
    server_with(base_url, at, &[]).await.client
}

async fn list_jobs(client: &Client, arguments: Value) -> Vec<Value> {
    let result = call(client, "list_jobs", arguments).await;
    assert!(!is_error(&result), "list_jobs failed: {}", text(&result));
    structured(&result)["jobs"].as_array().expect("jobs").clone()
}

async fn sim_jobs(sim_url: &str) -> Vec<Value> {
    reqwest::get(format!("{sim_url}/__sim/jobs"))
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

async fn a_job_survives_kill_9_while_waiting_and_a_new_server_completes_it(state: JournalAt) {
    let sim = simulator(SimConfig {
        initial_queue_position: 15,
        queue_step_ms: 100,
        run_ms: 200,
        ..fast_config()
    })
    .await;
    let control = Control::new(&sim);
    let StdioServer { client: first, pid, .. } = server_with(&sim.base_url(), &state, &[]).await;

    // The waiting tool holds the call open while it polls.
    let peer = first.peer().clone();
    let waiting = tokio::spawn(async move {
        let params = CallToolRequestParams::new("generate_image_and_wait").with_arguments(args(json!({
            "prompt": "a paid-for lighthouse at dusk", "size": "2560x1440", "max_wait_seconds": 120
        })));
        peer.call_tool(params).await
    });
    // Kill it once it is provably waiting: the job exists and has been polled.
    let id = eventually(
        async || {
            let job = sim_jobs(&sim.base_url()).await.first()?.clone();
            let candidate = job["request_id"].as_str().unwrap().to_owned();
            (control.job(&candidate).await["status_calls"].as_u64() >= Some(1)).then_some(candidate)
        },
        "the server to submit and begin waiting",
    )
    .await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(waiting.await.unwrap().is_err(), "the waiting call died with its server");
    assert_eq!(
        control.job(&id).await["status"],
        "in_queue",
        "the job outlived the server"
    );

    // A new server (a new conversation, a restarted client) finds the job it never submitted.
    let second = server(&sim.base_url(), &state).await;
    let jobs = list_jobs(&second, json!({})).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["request_id"], id.as_str());
    assert_eq!(jobs[0]["prompt"], "a paid-for lighthouse at dusk");
    assert_eq!(jobs[0]["size"], "2560x1440(16:9)");
    assert_eq!(jobs[0]["finished"], false);
    assert!(
        ["in_queue", "in_progress"].contains(&jobs[0]["status"].as_str().unwrap()),
        "{jobs:?}"
    );
    let listed = call(&second, "list_jobs", json!({})).await;
    assert!(text(&listed).contains(&id), "{}", text(&listed));

    // get_result completes it, and the journal keeps the URLs.
    let images = eventually(
        async || {
            let result = call(&second, "get_result", json!({ "request_id": id })).await;
            assert!(!is_error(&result), "{}", text(&result));
            let out = structured(&result);
            if out["finished"] != true {
                return Err(out["status"].clone());
            }
            assert_eq!(out["status"], "succeeded");
            Ok(out["images"].clone())
        },
        "get_result to see the job finished",
    )
    .await;
    assert!(images.as_array().is_some_and(|i| !i.is_empty()), "{images}");
    let jobs = list_jobs(&second, json!({"status": "succeeded"})).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["request_id"], id.as_str());
    assert_eq!(jobs[0]["images"], images);
    assert_eq!(jobs[0]["finished"], true);
    assert!(jobs[0]["finished_at"].is_string());
    second.cancel().await.unwrap();
}

/// While a call waits, the journal follows the job: another server sharing the journal sees it
/// leave the queue before the wait ends, so a process that dies mid-wait leaves its last state.
async fn a_waiting_call_keeps_the_journal_current_as_the_job_moves(state: JournalAt) {
    let sim = simulator(SimConfig {
        initial_queue_position: 3,
        queue_step_ms: 150,
        run_ms: 30_000,
        ..fast_config()
    })
    .await;
    let waiter = server(&sim.base_url(), &state).await;
    let reader = server(&sim.base_url(), &state).await;

    let peer = waiter.peer().clone();
    let waiting = tokio::spawn(async move {
        let params = CallToolRequestParams::new("generate_image_and_wait")
            .with_arguments(args(json!({ "prompt": "a slow comet", "max_wait_seconds": 60 })));
        peer.call_tool(params).await
    });
    let mut seen = BTreeSet::new();
    eventually(
        async || {
            if let Some(job) = list_jobs(&reader, json!({})).await.first() {
                seen.insert(job["status"].as_str().unwrap().to_owned());
            }
            if seen.contains("in_progress") {
                Ok(())
            } else {
                Err(seen.clone())
            }
        },
        "the journal to show the job in_progress",
    )
    .await;
    assert!(seen.contains("in_progress"), "the journal never left {seen:?}");
    assert!(
        !waiting.is_finished(),
        "the 30 s job was seen running while the call still waited"
    );
    waiting.abort();
    waiter.cancel().await.unwrap();
    reader.cancel().await.unwrap();
}

async fn two_servers_submitting_at_once_lose_no_record(state: JournalAt) {
    const EACH: usize = 12;
    let sim = simulator(fast_config()).await;
    let url = sim.base_url();
    // Started together: both open (and set up) the journal at the same moment.
    let (a, b) = tokio::join!(server(&url, &state), server(&url, &state));

    let mut calls = tokio::task::JoinSet::new();
    for (n, client) in [&a, &b].into_iter().enumerate() {
        for i in 0..EACH {
            let peer = client.peer().clone();
            calls.spawn(async move {
                let params = CallToolRequestParams::new("generate_image")
                    .with_arguments(args(json!({ "prompt": format!("server {n} image {i}") })));
                let result = peer.call_tool(params).await.expect("call");
                assert!(result.is_error != Some(true), "{result:?}");
                result.structured_content.unwrap()["request_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            });
        }
    }
    let submitted: BTreeSet<String> = calls.join_all().await.into_iter().collect();
    assert_eq!(submitted.len(), 2 * EACH);

    for client in [&a, &b] {
        let jobs = list_jobs(client, json!({"limit": 100})).await;
        let listed: BTreeSet<String> = jobs
            .iter()
            .map(|j| j["request_id"].as_str().expect("every job has its id").to_owned())
            .collect();
        assert_eq!(listed, submitted, "both servers see every job");
        assert!(jobs.iter().all(|j| j["status"] == "in_queue"), "{jobs:?}");
    }
    let prompts: BTreeSet<String> = list_jobs(&a, json!({"limit": 100}))
        .await
        .iter()
        .map(|j| j["prompt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(prompts.len(), 2 * EACH, "each prompt recorded once");
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_journal_is_moved_aside_with_a_warning_and_the_server_serves() {
    let sim = simulator(fast_config()).await;
    let state = JournalAt::dir();
    let garbage = b"\x00\x01 definitely not SQLite \xff\xfe".repeat(200);
    std::fs::write(state.path().join(JOURNAL_FILE), &garbage).unwrap();

    let StdioServer { client, stderr, .. } = server_with(&sim.base_url(), &state, &[]).await;
    let warning = stderr.line(|l| l.contains("WARN"), "a warning on stderr").await;
    assert!(
        warning.contains("moved aside") && warning.contains("fresh journal"),
        "{warning}"
    );

    // A fresh journal that works.
    assert!(list_jobs(&client, json!({})).await.is_empty());
    let id = submit(&client, json!({"prompt": "after the repair"})).await;
    assert_eq!(list_jobs(&client, json!({})).await[0]["request_id"], id.as_str());

    // The damaged file is kept, byte for byte, for a person to look at.
    let aside: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage);
    client.cancel().await.unwrap();
}

async fn retention_removes_old_jobs_only(state: JournalAt) {
    let sim = simulator(fast_config()).await;
    // History written earlier (by an older session of the server), on a thread of its own: the
    // stores block, and PostgreSQL's client runs a runtime of its own, which tokio's would refuse.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // History written earlier (by an older session of the server).
            let store = state.store();
            for (prompt, days) in [("ancient", 400), ("old", 40), ("recent", 2)] {
                let at = Utc::now() - chrono::Duration::days(days);
                let key = store
                    .begin_submit(
                        &NewJob {
                            owner: Owner::single(),
                            model: "m".into(),
                            prompt: prompt.into(),
                            size: "1024x1024(1:1)".into(),
                            params: json!({}),
                            submitted_at: at,
                            estimate_usd: None,
                        },
                        &Limits::default(),
                    )
                    .unwrap()
                    .admitted()
                    .unwrap();
                let request_id = format!("{prompt}-0000");
                store
                    .finish_submit(
                        key,
                        &SubmitOutcome::Accepted {
                            request_id: request_id.clone(),
                        },
                        at,
                    )
                    .unwrap();
                let done = JobUpdate {
                    status: Some(runcomfy_mcp::runcomfy::JobStatus::Succeeded),
                    images: vec![format!("https://example.invalid/{prompt}.png")],
                    ..JobUpdate::default()
                };
                assert!(store.update(&Owner::single(), &request_id, &done, at).unwrap());
            }
        });
    });
    let limits = [
        ("RUNCOMFY_JOURNAL_MAX_AGE_DAYS", "30"),
        ("RUNCOMFY_JOURNAL_MAX_JOBS", "3"),
    ];
    let client = server_with(&sim.base_url(), &state, &limits).await.client;
    let jobs = list_jobs(&client, json!({})).await;
    assert_eq!(jobs.len(), 1, "older than 30 days is gone: {jobs:?}");
    assert_eq!(jobs[0]["prompt"], "recent");
    assert_eq!(jobs[0]["images"], json!(["https://example.invalid/recent.png"]));

    // Past the count, the oldest goes first.
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(submit(&client, json!({"prompt": format!("new {i}")})).await);
    }
    let listed: Vec<String> = list_jobs(&client, json!({"limit": 100}))
        .await
        .iter()
        .map(|j| j["prompt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ["new 2", "new 1", "new 0"]);
    client.cancel().await.unwrap();
}

async fn a_submit_whose_fate_is_unknown_is_listed_without_an_id(state: JournalAt) {
    let sim = simulator(fast_config()).await;
    let client = server(&sim.base_url(), &state).await;
    // The job is created, then the connection drops before the answer.
    Control::new(&sim)
        .fault(json!({"endpoint": "submit", "kind": "reset"}))
        .await;
    let result = call(&client, "generate_image", json!({"prompt": "lost in transit"})).await;
    assert!(is_error(&result));

    let listed = call(&client, "list_jobs", json!({"status": "unknown"})).await;
    let jobs = structured(&listed)["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["prompt"], "lost in transit");
    assert!(jobs[0].get("request_id").is_none(), "{:?}", jobs[0]);
    assert!(jobs[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(text(&listed).contains("dashboard"), "{}", text(&listed));
    assert_eq!(sim_jobs(&sim.base_url()).await.len(), 1, "a job does exist upstream");

    // A refused submit is recorded as rejected: no job, nothing to chase.
    Control::new(&sim)
        .fault(
            json!({"endpoint": "submit", "status": 402, "body": {"error_code": 400002, "error_message": "no balance"}}),
        )
        .await;
    assert!(is_error(
        &call(&client, "generate_image", json!({"prompt": "unpaid"})).await
    ));
    let jobs = list_jobs(&client, json!({"status": "rejected"})).await;
    assert_eq!((jobs.len(), jobs[0]["finished"].clone()), (1, json!(true)));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_jobs_says_when_the_journal_is_off_and_checks_its_arguments() {
    let sim = simulator(fast_config()).await;
    let state = JournalAt::dir();
    let client = server_with(&sim.base_url(), &state, &[("RUNCOMFY_NO_JOURNAL", "1")])
        .await
        .client;
    submit(&client, json!({"prompt": "unrecorded"})).await;
    let result = call(&client, "list_jobs", json!({})).await;
    assert!(is_error(&result));
    assert!(text(&result).contains("--no-journal"), "{}", text(&result));
    assert!(!state.path().join(JOURNAL_FILE).exists(), "nothing written when off");

    let on = server(&sim.base_url(), &state).await;
    for bad in [
        json!({"limit": 0}),
        json!({"limit": 101}),
        json!({"status": "done"}),
        json!({"since": 1}),
    ] {
        let result = call(&on, "list_jobs", bad.clone()).await;
        assert!(is_error(&result), "{bad} was accepted");
    }
    client.cancel().await.unwrap();
    on.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generate_command_records_its_saved_files() {
    let sim = simulator(fast_config()).await;
    let (state, out) = (JournalAt::dir(), tempfile::tempdir().unwrap());
    let output = Bin::new([
        "generate",
        "a saved fox",
        "--force-single",
        "--poll-first-ms",
        "50",
        "--out",
    ])
    .arg(out.path())
    .arg("--state-dir")
    .arg(state.path())
    .upstream(&sim.base_url())
    .env("RUNCOMFY_NO_JOURNAL", "false")
    .tokio()
    .output()
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let saved = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let client = server(&sim.base_url(), &state).await;
    let jobs = list_jobs(&client, json!({})).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["status"], "succeeded");
    assert_eq!(jobs[0]["saved_paths"], json!([saved]));
    assert_eq!(jobs[0]["images"].as_array().map(Vec::len), Some(1));
    let listed = call(&client, "list_jobs", json!({})).await;
    assert!(text(&listed).contains(&saved), "{}", text(&listed));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_jobs_go_to_a_journal_of_their_own() {
    let sim = simulator(fast_config()).await;
    let state = JournalAt::dir();
    let client = server_with(&sim.base_url(), &state, &[("RUNCOMFY_SIMULATE", "true")])
        .await
        .client;
    let id = submit(&client, json!({"prompt": "a fake fox"})).await;
    assert_eq!(list_jobs(&client, json!({})).await[0]["request_id"], id.as_str());
    client.cancel().await.unwrap();
    assert!(state.path().join("journal-simulated.sqlite3").exists());
    assert!(
        !state.path().join(JOURNAL_FILE).exists(),
        "fake jobs never enter the real journal"
    );
}
