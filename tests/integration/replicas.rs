//! Two replicas (two HTTP server processes) on one PostgreSQL journal, as a team runs them behind
//! a load balancer: what one does, the other sees and finishes. Jobs submitted through A are
//! listed, resolved and finished through B, a task A runs is answered by B, a job whose waiting
//! replica is killed -9 is finished through the other, one rate limit holds across both, and a
//! replica that loses the database says so (and refuses limited submits) until it is back.
//! Skipped, with a message, only without PostgreSQL outside CI.

use std::collections::BTreeSet;

use crate::common::{http::HttpServer, *};
use runcomfy_mcp::simulator::SimConfig;
use serde_json::{json, Value};

const PROTOCOL: &str = "2025-06-18";

/// A replica on `db`'s journal, against the shared simulator.
async fn replica(sim: &str, db: &JournalAt, flags: &[&str]) -> HttpServer {
    let url = db.cluster().tcp_url();
    let mut flags = flags.to_vec();
    flags.extend(["--poll-first-ms", "50", "--poll-max-ms", "200"]);
    HttpServer::start(
        sim,
        &flags,
        &[("RUNCOMFY_NO_JOURNAL", "false"), ("RUNCOMFY_JOURNAL_URL", &url)],
    )
    .await
}

/// One MCP session on a replica, over raw Streamable HTTP.
struct Session {
    http: reqwest::Client,
    /// The replica's `/mcp`.
    mcp: String,
    id: String,
    next: u64,
}

impl Session {
    /// `tasks`: the client declares the tasks extension, so image tools run as tasks.
    async fn open(server: &HttpServer, tasks: bool) -> Self {
        Self::open_at(server.url("/mcp"), tasks).await
    }

    async fn open_at(mcp: String, tasks: bool) -> Self {
        let http = reqwest::Client::new();
        let capabilities = if tasks {
            json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } })
        } else {
            json!({})
        };
        let body = http::rpc(
            1,
            "initialize",
            json!({ "protocolVersion": PROTOCOL, "capabilities": capabilities,
                    "clientInfo": { "name": "replica-test", "version": "0" } }),
        );
        let response = http
            .post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .unwrap();
        let id = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        http::answer(response, 1).await;
        let session = Self { http, mcp, id, next: 2 };
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let sent = session.post(&note).send().await.unwrap();
        assert!(sent.status().is_success(), "{}", sent.status());
        session
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(&self.mcp)
            .header("accept", "application/json, text/event-stream")
            .json(body)
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", PROTOCOL)
    }

    /// The JSON-RPC message answering `method` (its `result` or its `error`).
    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let response = self.post(&http::rpc(id, method, params)).send().await.unwrap();
        http::answer(response, id).await
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let message = self
            .request("tools/call", json!({ "name": tool, "arguments": arguments }))
            .await;
        message["result"].clone()
    }

    /// get_result until the job has finished; its structured answer.
    async fn finished(&mut self, id: &str) -> Value {
        eventually(
            async || {
                let result = self.call("get_result", json!({ "request_id": id })).await;
                assert_ne!(result["isError"], true, "{result}");
                let out = result["structuredContent"].clone();
                (out["finished"] == true).then_some(out)
            },
            "the job to finish",
        )
        .await
    }

    async fn jobs(&mut self) -> Vec<Value> {
        let result = self.call("list_jobs", json!({ "limit": 100 })).await;
        assert_ne!(result["isError"], true, "{result}");
        result["structuredContent"]["jobs"].as_array().unwrap().clone()
    }
}

/// Two replicas on one database, or `None` when the test is skipped.
fn database(test: &str) -> Option<JournalAt> {
    JournalAt::database(test)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_and_a_task_from_replica_a_are_listed_resolved_and_answered_by_replica_b() {
    let Some(db) = database("replicas::a_job_and_a_task") else {
        return;
    };
    let sim = simulator(fast_config()).await;
    let upstream = sim.base_url();
    let (a, b) = tokio::join!(replica(&upstream, &db, &[]), replica(&upstream, &db, &[]));
    let (mut on_a, mut on_b) = (Session::open(&a, false).await, Session::open(&b, false).await);

    let submitted = on_a
        .call("generate_image", json!({ "prompt": "a fox seen by two servers" }))
        .await;
    assert_ne!(submitted["isError"], true, "{submitted}");
    let id = submitted["structuredContent"]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = on_b.jobs().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["request_id"], id.as_str());
    assert_eq!(listed[0]["prompt"], "a fox seen by two servers");

    let done = on_b.finished(&id).await;
    assert_eq!(done["status"], "succeeded");
    // A reference to the job resolves on B from the journal A wrote: an edit of it is accepted.
    let edit = on_b
        .call(
            "generate_image",
            json!({ "prompt": "the same fox, in snow", "images": [format!("{id}#1")] }),
        )
        .await;
    assert_ne!(edit["isError"], true, "{edit}");

    // A task A runs is answered by B: working while A follows it, then its result.
    let mut tasks_a = Session::open(&a, true).await;
    let mut tasks_b = Session::open(&b, true).await;
    let created = tasks_a
        .call("generate_image_and_wait", json!({ "prompt": "a task for two servers" }))
        .await;
    let task_id = created["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {created}"))
        .to_owned();
    let first = tasks_b.request("tasks/get", json!({ "taskId": task_id })).await;
    assert!(first.get("result").is_some(), "B does not know A's task: {first}");
    let settled = eventually(
        async || {
            let message = tasks_b.request("tasks/get", json!({ "taskId": task_id })).await;
            let task = message["result"].clone();
            (task["status"] != "working").then_some(task)
        },
        "B to see A's task settle",
    )
    .await;
    assert_eq!(settled["status"], "completed", "{settled}");
    let text = settled["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(settled["result"]["isError"] != true, "{settled}");
    let task_job = on_b
        .jobs()
        .await
        .into_iter()
        .find(|j| j["prompt"] == "a task for two servers")
        .expect("the task's job is in the shared journal");
    assert!(text.contains(task_job["request_id"].as_str().unwrap()), "{text}");
    // An unknown task is still unknown.
    let unknown = tasks_b.request("tasks/get", json!({ "taskId": "no-such-task" })).await;
    assert!(unknown.get("error").is_some(), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_replica_is_killed_mid_wait_is_finished_through_the_other() {
    let Some(db) = database("replicas::killed_mid_wait") else {
        return;
    };
    let sim = simulator(SimConfig {
        initial_queue_position: 15,
        queue_step_ms: 100,
        run_ms: 200,
        ..fast_config()
    })
    .await;
    let control = Control::new(&sim);
    let upstream = sim.base_url();
    let (a, b) = tokio::join!(replica(&upstream, &db, &[]), replica(&upstream, &db, &[]));
    let waiting = {
        let on_a = Session::open(&a, false).await;
        tokio::spawn(async move {
            let body = http::rpc(
                9,
                "tools/call",
                json!({ "name": "generate_image_and_wait",
                "arguments": { "prompt": "a lighthouse paid for once", "max_wait_seconds": 120 } }),
            );
            on_a.post(&body).send().await.map(drop)
        })
    };
    let id = eventually(
        async || {
            let job = control.jobs().await.first()?.clone();
            let candidate = job["request_id"].as_str().unwrap().to_owned();
            (control.job(&candidate).await["status_calls"].as_u64() >= Some(1)).then_some(candidate)
        },
        "A to submit and begin waiting",
    )
    .await;
    let killed = std::process::Command::new("kill")
        .args(["-9", &a.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = waiting.await;
    assert_eq!(control.job(&id).await["status"], "in_queue", "the job outlived A");

    let mut on_b = Session::open(&b, false).await;
    let listed = on_b.jobs().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["request_id"], id.as_str());
    let done = on_b.finished(&id).await;
    assert_eq!(done["status"], "succeeded");
    let listed = on_b.jobs().await;
    assert_eq!(
        (listed[0]["status"].clone(), listed[0]["finished"].clone()),
        (json!("succeeded"), json!(true))
    );
    assert_eq!(control.jobs().await.len(), 1, "one job, paid for once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rate_limit_holds_across_both_replicas() {
    let Some(db) = database("replicas::one_rate_limit") else {
        return;
    };
    let sim = simulator(fast_config()).await;
    let limit = ["--max-jobs-per-hour", "3"];
    let upstream = sim.base_url();
    let (a, b) = tokio::join!(replica(&upstream, &db, &limit), replica(&upstream, &db, &limit));
    // Eight submits at once, four through each replica: three jobs in all, not three each.
    let mut calls = tokio::task::JoinSet::new();
    for (n, server) in [&a, &b].into_iter().enumerate() {
        for i in 0..4 {
            let mcp = server.url("/mcp");
            calls.spawn(async move {
                let mut session = Session::open_at(mcp, false).await;
                session
                    .call("generate_image", json!({ "prompt": format!("racer {n}.{i}") }))
                    .await
            });
        }
    }
    let results = calls.join_all().await;
    let admitted = results.iter().filter(|r| r["isError"] != true).count();
    assert_eq!(admitted, 3, "{results:?}");
    let refused = results.iter().find(|r| r["isError"] == true).unwrap();
    let text = refused["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("3"), "{text}");
    assert_eq!(control_jobs(&sim).await, 3, "nothing past the limit reached RunComfy");
}

async fn control_jobs(sim: &runcomfy_mcp::simulator::Simulator) -> usize {
    Control::new(sim).jobs().await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_loses_the_database_says_so_fails_closed_and_recovers() {
    let Some(db) = database("replicas::loses_the_database") else {
        return;
    };
    let sim = simulator(fast_config()).await;
    let a = replica(&sim.base_url(), &db, &["--max-jobs-per-hour", "50"]).await;
    let http = reqwest::Client::new();
    let health = async || {
        let response = http.get(a.url("/healthz")).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(health().await, (200, "ok\ndatabase: ok\n".to_owned()));

    db.cluster().pause();
    assert_eq!(health().await, (503, "unavailable\ndatabase: unreachable\n".to_owned()));
    let mut session = Session::open(&a, false).await;
    let refused = session
        .call("generate_image", json!({ "prompt": "not while blind" }))
        .await;
    assert_eq!(refused["isError"], true, "{refused}");
    let text = refused["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("journal"), "{text}");
    assert_eq!(
        control_jobs(&sim).await,
        0,
        "a limit that cannot be counted sends nothing"
    );
    let listed = session.call("list_jobs", json!({})).await;
    assert_eq!(listed["isError"], true, "{listed}");

    db.cluster().resume();
    assert_eq!(health().await, (200, "ok\ndatabase: ok\n".to_owned()));
    let sent = session.call("generate_image", json!({ "prompt": "seen again" })).await;
    assert_ne!(sent["isError"], true, "{sent}");
    let prompts: BTreeSet<String> = session
        .jobs()
        .await
        .iter()
        .map(|j| j["prompt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(prompts, BTreeSet::from(["seen again".to_owned()]));
}
