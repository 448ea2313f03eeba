//! `--per-user-keys`: two people with their own RunComfy keys on one HTTP server. Each request's
//! key goes upstream for that person's calls only (the simulator records which key each call
//! used), and neither can see, follow, cancel, reuse or read the other's jobs by any tool, job
//! reference, resource or task id: another's id is answered exactly as an id nobody has. A
//! request without a key is a 401; a key RunComfy rejects is an error result that says so. The
//! same holds across two stateless replicas on one PostgreSQL journal.

use std::collections::BTreeSet;

use crate::common::{
    eventually, fast_config,
    http::{answer, initialize, rpc, Events, HttpServer},
    simulator, Control, JournalAt, TOKEN,
};
use runcomfy_mcp::simulator::{SimConfig, TokenUse};
use serde_json::{json, Value};

const ALICE: &str = "rc-alice-key-4e1b7d";
const BOB: &str = "rc-bob-key-9a2c5f";
const REVOKED: &str = "rc-revoked-key-3d8e0a";
/// A well-formed request id no job has.
const NOBODYS: &str = "00000000-0000-4000-8000-000000000000";

/// One person's view of a stateless server: every POST carries their key.
struct Person<'a> {
    server: &'a HttpServer,
    key: &'a str,
    http: reqwest::Client,
}

impl<'a> Person<'a> {
    fn new(server: &'a HttpServer, key: &'a str) -> Self {
        Self {
            server,
            key,
            http: reqwest::Client::new(),
        }
    }

    async fn rpc(&self, id: u64, method: &str, params: Value) -> Value {
        let response = self
            .http
            .post(self.server.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .header("x-runcomfy-api-key", self.key)
            .json(&rpc(id, method, params))
            .send()
            .await
            .unwrap();
        answer(response, id).await
    }

    async fn tool(&self, id: u64, name: &str, arguments: Value) -> Value {
        let message = self
            .rpc(id, "tools/call", json!({ "name": name, "arguments": arguments }))
            .await;
        message["result"].clone()
    }

    async fn submit(&self, id: u64, prompt: &str) -> String {
        let submitted = self
            .tool(id, "generate_image", json!({ "prompt": prompt, "force_single": true }))
            .await;
        assert_eq!(submitted["isError"], json!(false), "{submitted}");
        submitted["structuredContent"]["request_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The prompts of the jobs list_jobs shows, and today's job count of its spend.
    async fn listed(&self, n: u64) -> (BTreeSet<String>, Value) {
        let list = self.tool(n, "list_jobs", json!({})).await;
        let jobs = list["structuredContent"]["jobs"].as_array().unwrap().clone();
        let prompts = jobs.iter().map(|j| j["prompt"].as_str().unwrap().to_owned()).collect();
        (prompts, list["structuredContent"]["spend"]["today"]["jobs"].clone())
    }

    async fn wait_done(&self, id: &str) {
        let mut n = 1000;
        eventually(
            async || {
                n += 1;
                let state = self.tool(n, "check_status", json!({ "request_id": id })).await;
                assert_eq!(state["isError"], json!(false), "{state}");
                match state["structuredContent"]["finished"] == json!(true) {
                    true => Ok(()),
                    false => Err(state["structuredContent"]["status"].clone()),
                }
            },
            "the job to finish",
        )
        .await;
    }
}

/// Which key each upstream call used, as the simulator recorded it.
async fn token_uses(sim: &runcomfy_mcp::simulator::Simulator) -> Vec<TokenUse> {
    let url = format!("{}/__sim/tokens", sim.base_url());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn error_text(result: &Value) -> String {
    assert_eq!(result["isError"], json!(true), "{result}");
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

async fn start(sim: &runcomfy_mcp::simulator::Simulator, state: &std::path::Path, flags: &[&str]) -> HttpServer {
    let mut all = vec!["--per-user-keys"];
    all.extend_from_slice(flags);
    HttpServer::start(
        &sim.base_url(),
        &all,
        &[
            ("RUNCOMFY_NO_JOURNAL", "false"),
            ("RUNCOMFY_STATE_DIR", state.to_str().unwrap()),
        ],
    )
    .await
}

#[tokio::test]
async fn two_people_see_and_spend_only_their_own_jobs() {
    let sim = simulator(SimConfig {
        record_tokens: true,
        rejected_tokens: vec![REVOKED.to_owned()],
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &["--stateless"]).await;
    let (alice, bob) = (Person::new(&server, ALICE), Person::new(&server, BOB));

    // No key: 401, saying what to send, before anything reaches the server's tools.
    let refused = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("X-RunComfy-Api-Key"));

    let alices = alice.submit(1, "alice's red fox").await;
    let bobs = bob.submit(2, "bob's blue owl").await;
    alice.wait_done(&alices).await;
    bob.wait_done(&bobs).await;

    // Another person's id is "not found", word for word as an id nobody has.
    for (n, tool) in [(10, "check_status"), (20, "get_result"), (30, "cancel_request")] {
        let theirs = error_text(&alice.tool(n, tool, json!({ "request_id": bobs })).await);
        let nobodys = error_text(&alice.tool(n + 1, tool, json!({ "request_id": NOBODYS })).await);
        assert!(theirs.contains("no job with this request_id"), "{tool}: {theirs}");
        assert_eq!(theirs.replace(&bobs, "ID"), nobodys.replace(NOBODYS, "ID"), "{tool}");
    }
    // Nor can a job reference reuse another's image.
    let edit = |n, image: &str| {
        alice.tool(
            n,
            "generate_image",
            json!({ "prompt": "make it green", "images": [image], "force_single": true }),
        )
    };
    let theirs = error_text(&edit(40, &format!("{bobs}#1")).await);
    let nobodys = error_text(&edit(41, &format!("{NOBODYS}#1")).await);
    assert_eq!(theirs.replace(&bobs, "ID"), nobodys.replace(NOBODYS, "ID"));
    // Nor read its image as a resource.
    let read = |n, id: &str| {
        alice.rpc(
            n,
            "resources/read",
            json!({ "uri": format!("runcomfy://jobs/{id}/images/1") }),
        )
    };
    let theirs = read(50, &bobs).await;
    let nobodys = read(51, NOBODYS).await;
    assert!(theirs.get("error").is_some(), "{theirs}");
    assert_eq!(
        theirs["error"]["message"].as_str().unwrap().replace(&bobs, "ID"),
        nobodys["error"]["message"].as_str().unwrap().replace(NOBODYS, "ID")
    );
    // Their own is theirs to read.
    let own = alice
        .rpc(
            52,
            "resources/read",
            json!({ "uri": format!("runcomfy://jobs/{alices}/images/1") }),
        )
        .await;
    assert!(own["result"]["contents"][0]["blob"].is_string(), "{own}");

    // Each lists, and counts the money of, their own jobs only.
    assert_eq!(
        alice.listed(60).await,
        (BTreeSet::from(["alice's red fox".to_owned()]), json!(1))
    );
    assert_eq!(
        bob.listed(61).await,
        (BTreeSet::from(["bob's blue owl".to_owned()]), json!(1))
    );
    let own_result = bob.tool(62, "get_result", json!({ "request_id": bobs })).await;
    assert_eq!(own_result["isError"], json!(false), "{own_result}");
    let resources = bob.rpc(63, "resources/list", json!({})).await.to_string();
    assert!(resources.contains(&bobs) && !resources.contains(&alices), "{resources}");

    // A key RunComfy rejects: an error result that tells the person to fix their key.
    let revoked = Person::new(&server, REVOKED);
    let rejected = error_text(
        &revoked
            .tool(70, "generate_image", json!({ "prompt": "x", "force_single": true }))
            .await,
    );
    assert!(rejected.contains("rejected your RunComfy API key"), "{rejected}");

    // Upstream, every call about a job went with its owner's key, and none with the server's.
    let uses = token_uses(&sim).await;
    let keys_for = |id: &str| -> BTreeSet<String> {
        uses.iter()
            .filter(|u| u.subject == id)
            .map(|u| u.token.clone())
            .collect()
    };
    assert_eq!(keys_for(&alices), BTreeSet::from([ALICE.to_owned()]));
    assert_eq!(keys_for(&bobs), BTreeSet::from([BOB.to_owned()]));
    assert!(
        uses.iter().all(|u| u.token != TOKEN),
        "the server's own key was used: {uses:?}"
    );
    assert!(uses.iter().any(|u| u.call == "submit" && u.token == ALICE));
    assert!(!uses
        .iter()
        .any(|u| u.subject == bobs && u.call != "submit" && u.token == ALICE));
    assert_eq!(sim.stats().accepted, 2, "no refused call sent a job");

    assert!(server.stop().await.success());
}

/// The same secret on every replica, so that one key is one owner on each of them.
const TEAM_SECRET: &str = "team-owner-secret-5c7e2a9b";

/// A stateless replica with per-user keys on `db`'s journal, its state (saved images) in `state`.
async fn team_replica(upstream: &str, db: &JournalAt, state: &std::path::Path) -> HttpServer {
    let url = db.cluster().tcp_url();
    let env = [
        ("RUNCOMFY_NO_JOURNAL", "false"),
        ("RUNCOMFY_JOURNAL_URL", url.as_str()),
        ("RUNCOMFY_MCP_OWNER_SECRET", TEAM_SECRET),
        ("RUNCOMFY_STATE_DIR", state.to_str().unwrap()),
    ];
    HttpServer::start(upstream, &["--per-user-keys", "--stateless"], &env).await
}

/// `params` of a request from a client with the tasks extension: a stateless request declares
/// it in its own `_meta`, there being no session to remember it.
pub(crate) fn with_tasks(mut params: Value) -> Value {
    params["_meta"] = json!({ "io.modelcontextprotocol/clientCapabilities":
                              { "extensions": { "io.modelcontextprotocol/tasks": {} } } });
    params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_two_replicas_two_people_see_only_their_own_jobs_and_tasks() {
    let Some(db) = JournalAt::database("per_user_keys::two_replicas") else {
        return;
    };
    let sim = simulator(SimConfig {
        record_tokens: true,
        ..fast_config()
    })
    .await;
    let upstream = sim.base_url();
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = tokio::join!(
        team_replica(&upstream, &db, state_a.path()),
        team_replica(&upstream, &db, state_b.path())
    );
    let alice_on_a = Person::new(&a, ALICE);
    let (alice_on_b, bob_on_b) = (Person::new(&b, ALICE), Person::new(&b, BOB));

    let alices = alice_on_a.submit(1, "alice's fox, through A").await;
    let bobs = bob_on_b.submit(2, "bob's owl, through B").await;
    alice_on_a.wait_done(&alices).await;
    bob_on_b.wait_done(&bobs).await;
    let bobs_own = || (BTreeSet::from(["bob's owl, through B".to_owned()]), json!(1));

    // To Bob on B, Alice's id is as unknown as an id nobody has, tool by tool.
    for (n, tool) in [(10, "check_status"), (20, "get_result"), (30, "cancel_request")] {
        let theirs = error_text(&bob_on_b.tool(n, tool, json!({ "request_id": alices })).await);
        let nobodys = error_text(&bob_on_b.tool(n + 1, tool, json!({ "request_id": NOBODYS })).await);
        assert!(theirs.contains("no job with this request_id"), "{tool}: {theirs}");
        assert_eq!(theirs.replace(&alices, "ID"), nobodys.replace(NOBODYS, "ID"), "{tool}");
    }
    assert_eq!(bob_on_b.listed(40).await, bobs_own());
    // A job reference to it is unknown too.
    let edit = |n, image: String| {
        bob_on_b.tool(
            n,
            "generate_image",
            json!({ "prompt": "make it green", "images": [image], "force_single": true }),
        )
    };
    let theirs = error_text(&edit(50, format!("{alices}#1")).await);
    let nobodys = error_text(&edit(51, format!("{NOBODYS}#1")).await);
    assert_eq!(theirs.replace(&alices, "ID"), nobodys.replace(NOBODYS, "ID"));
    // And its image as a resource.
    let image = |id: &str| json!({ "uri": format!("runcomfy://jobs/{id}/images/1") });
    let theirs = bob_on_b.rpc(60, "resources/read", image(&alices)).await;
    let nobodys = bob_on_b.rpc(61, "resources/read", image(NOBODYS)).await;
    assert!(theirs.get("error").is_some(), "{theirs}");
    assert_eq!(
        theirs["error"]["message"].as_str().unwrap().replace(&alices, "ID"),
        nobodys["error"]["message"].as_str().unwrap().replace(NOBODYS, "ID")
    );

    // Alice, through B, sees her job: its status, result, listing and image.
    let status = alice_on_b
        .tool(70, "check_status", json!({ "request_id": alices }))
        .await;
    assert_eq!(status["structuredContent"]["status"], "succeeded", "{status}");
    let result = alice_on_b.tool(71, "get_result", json!({ "request_id": alices })).await;
    assert_eq!(result["isError"], json!(false), "{result}");
    assert_eq!(
        alice_on_b.listed(72).await,
        (BTreeSet::from(["alice's fox, through A".to_owned()]), json!(1))
    );
    let bobs_on_a = error_text(&alice_on_a.tool(74, "check_status", json!({ "request_id": bobs })).await);
    assert!(bobs_on_a.contains("no job with this request_id"), "{bobs_on_a}");
    let own = alice_on_b.rpc(73, "resources/read", image(&alices)).await;
    assert!(own["result"]["contents"][0]["blob"].is_string(), "{own}");
    // Both results are in the shared journal now; Bob's resources list his image only.
    let bobs_result = bob_on_b.tool(75, "get_result", json!({ "request_id": bobs })).await;
    assert_eq!(bobs_result["isError"], json!(false), "{bobs_result}");
    let resources = bob_on_b.rpc(76, "resources/list", json!({})).await.to_string();
    assert!(resources.contains(&bobs) && !resources.contains(&alices), "{resources}");

    // A task Alice starts on A: B answers it to her, and to Bob as a task that does not exist.
    let created = alice_on_a
        .rpc(
            80,
            "tools/call",
            with_tasks(json!({
                "name": "generate_image",
                "arguments": { "prompt": "alice's task, through A", "force_single": true }
            })),
        )
        .await;
    let task_id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {created}"))
        .to_owned();
    let mut n = 100;
    let settled = eventually(
        async || {
            n += 1;
            let got = alice_on_b
                .rpc(n, "tasks/get", with_tasks(json!({ "taskId": task_id })))
                .await;
            let status = got["result"]["status"].clone();
            match status.as_str() {
                Some("working") => Err(got),
                _ => Ok(got),
            }
        },
        "alice to see her task settle through B",
    )
    .await;
    assert_eq!(settled["result"]["status"], "completed", "{settled}");
    for (n, method) in [(200, "tasks/get"), (210, "tasks/cancel")] {
        let theirs = bob_on_b.rpc(n, method, with_tasks(json!({ "taskId": task_id }))).await;
        let nobodys = bob_on_b
            .rpc(n + 1, method, with_tasks(json!({ "taskId": "no-such-task" })))
            .await;
        assert!(theirs.get("error").is_some(), "{method}: {theirs}");
        assert_eq!(
            theirs["error"]["message"].as_str().unwrap().replace(&task_id, "ID"),
            nobodys["error"]["message"]
                .as_str()
                .unwrap()
                .replace("no-such-task", "ID"),
            "{method}"
        );
    }
    assert_eq!(bob_on_b.listed(220).await, bobs_own());

    // Upstream, each job's calls went with its owner's key only, from either replica, and none
    // with the server's: Bob's attempts on Alice's job never left B.
    let uses = token_uses(&sim).await;
    let keys_for = |id: &str| -> BTreeSet<String> {
        uses.iter()
            .filter(|u| u.subject == id)
            .map(|u| u.token.clone())
            .collect()
    };
    assert_eq!(keys_for(&alices), BTreeSet::from([ALICE.to_owned()]), "{uses:?}");
    assert_eq!(keys_for(&bobs), BTreeSet::from([BOB.to_owned()]), "{uses:?}");
    let submits: Vec<&str> = uses
        .iter()
        .filter(|u| u.call == "submit")
        .map(|u| u.token.as_str())
        .collect();
    assert_eq!(
        submits.iter().filter(|t| **t == ALICE).count(),
        2,
        "her job and her task's"
    );
    assert_eq!(submits.iter().filter(|t| **t == BOB).count(), 1, "{uses:?}");
    assert!(
        uses.iter().all(|u| u.token != TOKEN),
        "the server's own key was used: {uses:?}"
    );
    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
}

/// A session of a client with the tasks extension: its id, and the key it was opened with.
async fn open_session(http: &reqwest::Client, server: &HttpServer, key: &str) -> String {
    let tasks = json!({ "extensions": { "io.modelcontextprotocol/tasks": {} } });
    open_session_declaring(http, server, key, tasks).await
}

async fn open_session_declaring(http: &reqwest::Client, server: &HttpServer, key: &str, capabilities: Value) -> String {
    let init = rpc(
        1,
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": capabilities,
            "clientInfo": { "name": "per-user-keys-test", "version": "0" }
        }),
    );
    let response = session_post(http, server, key, None, &init).send().await.unwrap();
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    answer(response, 1).await;
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let sent = session_post(http, server, key, Some(&session), &initialized)
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success());
    session
}

fn session_post(
    http: &reqwest::Client,
    server: &HttpServer,
    key: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("x-runcomfy-api-key", key)
        .json(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request
}

/// Issue 40, finding 1: in team mode the catalogue was read with no key at all, so
/// `list_models`, `describe_model` and `run_model` always failed (blaming RUNCOMFY_API_KEY).
/// RunComfy authenticates catalogue reads: each goes with the caller's key.
#[tokio::test]
async fn team_mode_lists_describes_and_runs_catalogue_models_with_the_callers_key() {
    let sim = simulator(SimConfig {
        record_tokens: true,
        rejected_tokens: vec![REVOKED.to_owned()],
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &["--stateless"]).await;
    let (alice, revoked) = (Person::new(&server, ALICE), Person::new(&server, REVOKED));

    // A rejected key's read fails saying so, without blaming the server's configuration.
    let refused = error_text(&revoked.tool(1, "list_models", json!({})).await);
    assert!(!refused.contains("RUNCOMFY_API_KEY"), "{refused}");

    let listed = alice.tool(2, "list_models", json!({ "kind": "image" })).await;
    assert_eq!(listed["isError"], json!(false), "{listed}");
    assert!(listed["structuredContent"]["total"].as_u64().unwrap() > 0, "{listed}");
    let described = alice
        .tool(
            3,
            "describe_model",
            json!({ "model_id": "google/nano-banana-2-lite/text-to-image" }),
        )
        .await;
    assert_eq!(described["isError"], json!(false), "{described}");
    let ran = alice
        .tool(
            4,
            "run_model",
            json!({ "model_id": "google/nano-banana-2-lite/text-to-image", "input": { "prompt": "a fox" } }),
        )
        .await;
    assert_eq!(ran["isError"], json!(false), "{ran}");
    assert_eq!(ran["structuredContent"]["status"], "succeeded", "{ran}");

    let uses = token_uses(&sim).await;
    let catalogue: Vec<&TokenUse> = uses
        .iter()
        .filter(|u| ["models", "categories", "model"].contains(&u.call.as_str()))
        .collect();
    assert!(
        catalogue.iter().any(|u| u.call == "models"),
        "the catalogue was read: {uses:?}"
    );
    assert!(
        catalogue.iter().any(|u| u.call == "model"),
        "the price was read: {uses:?}"
    );
    for read in &catalogue {
        assert!(
            read.token == ALICE || read.token == REVOKED,
            "every catalogue read carries a caller's key: {read:?}"
        );
    }
}

#[tokio::test]
async fn a_session_and_its_tasks_belong_to_the_key_that_opened_them() {
    let sim = simulator(SimConfig {
        record_tokens: true,
        ..fast_config()
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &[]).await;
    let http = reqwest::Client::new();
    let alices_session = open_session(&http, &server, ALICE).await;
    let bobs_session = open_session(&http, &server, BOB).await;
    let call = |key: &'static str, session: &str, id: u64, method: &str, params: Value| {
        let request = session_post(&http, &server, key, Some(session), &rpc(id, method, params));
        async move { answer(request.send().await.unwrap(), id).await }
    };

    // Bob's key on Alice's session is refused, as a session that does not exist.
    let list_jobs = rpc(2, "tools/call", json!({ "name": "list_jobs", "arguments": {} }));
    let hijack = session_post(&http, &server, BOB, Some(&alices_session), &list_jobs)
        .send()
        .await
        .unwrap();
    assert_eq!(hijack.status(), 404);
    assert_eq!(hijack.text().await.unwrap(), "Not Found: Session not found");

    // Alice's task is hers: to Bob it is as unknown as a task that does not exist.
    let created = call(
        ALICE,
        &alices_session,
        3,
        "tools/call",
        json!({ "name": "generate_image", "arguments": { "prompt": "a task of alice's", "force_single": true } }),
    )
    .await;
    let task_id = created["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("a task: {created}"))
        .to_owned();
    for (n, method) in [(10, "tasks/get"), (20, "tasks/cancel")] {
        let theirs = call(BOB, &bobs_session, n, method, json!({ "taskId": task_id })).await;
        let nobodys = call(BOB, &bobs_session, n + 1, method, json!({ "taskId": "no-such-task" })).await;
        assert_eq!(
            theirs["error"]["message"].as_str().unwrap().replace(&task_id, "ID"),
            nobodys["error"]["message"]
                .as_str()
                .unwrap()
                .replace("no-such-task", "ID"),
            "{method}: {theirs}"
        );
    }
    let mut n = 100;
    eventually(
        async || {
            n += 1;
            let got = call(ALICE, &alices_session, n, "tasks/get", json!({ "taskId": task_id })).await;
            match got["result"]["status"].as_str() {
                Some("completed") => Ok(()),
                other => Err(format!("{other:?}: {got}")),
            }
        },
        "alice's task to complete",
    )
    .await;
    // The task's job went upstream with Alice's key.
    let uses = token_uses(&sim).await;
    assert!(!uses.is_empty());
    assert!(uses.iter().all(|u| u.token == ALICE), "{uses:?}");
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn per_user_keys_are_refused_over_stdio() {
    let output = crate::common::Bin::serve()
        .arg("--per-user-keys")
        .env("RUNCOMFY_API_KEY", TOKEN)
        .std()
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--per-user-keys needs --transport http"), "{stderr}");
}

/// A simulator whose jobs stay queued for a few seconds: long enough for another caller to act
/// on a call that is still running.
fn slow_queue() -> SimConfig {
    SimConfig {
        record_tokens: true,
        initial_queue_position: 2,
        queue_step_ms: 2_000,
        run_ms: 100,
        ..fast_config()
    }
}

fn waiting_call(id: u64) -> Value {
    rpc(
        id,
        "tools/call",
        json!({ "name": "generate_image_and_wait", "arguments": { "prompt": "alice's slow fox", "force_single": true } }),
    )
}

/// What the simulator says of the one job there is: its id and status, once it is submitted.
async fn the_job(control: &Control) -> (String, Value) {
    let id = control.nth_job(1).await;
    let status = control.job(&id).await["status"].clone();
    (id, status)
}

/// Bob holding Alice's session id: his `notifications/cancelled` for her running call, his `GET`
/// stream and his `DELETE` on her session are answered as for a session that does not exist, and
/// change nothing for her: her call completes, her job is not cancelled, her session still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_cannot_cancel_stream_or_close_a_streamable_http_session() {
    let sim = simulator(slow_queue()).await;
    let control = Control::new(&sim);
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &[]).await;
    let http = reqwest::Client::new();
    // A client without tasks: the call runs in the request, as most clients make it.
    let alices = open_session_declaring(&http, &server, ALICE, json!({})).await;

    // Alice's call runs (its answer streams back once the job is done).
    let running = session_post(&http, &server, ALICE, Some(&alices), &waiting_call(2))
        .send()
        .await
        .unwrap();
    let (job, status) = the_job(&control).await;
    assert_eq!(status, "in_queue");

    let unknown = "0123456789abcdef0123456789abcdef";
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": { "requestId": 2, "reason": "bob says so" } });
    let bobs_cancel = session_post(&http, &server, BOB, Some(&alices), &cancel)
        .send()
        .await
        .unwrap();
    let nobodys_cancel = session_post(&http, &server, BOB, Some(unknown), &cancel)
        .send()
        .await
        .unwrap();
    let stream = |session: &str| {
        http.get(server.url("/mcp"))
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .header("x-runcomfy-api-key", BOB)
            .header("mcp-session-id", session)
            .send()
    };
    let bobs_stream = stream(&alices).await.unwrap();
    let nobodys_stream = stream(unknown).await.unwrap();
    let close = |session: &str| {
        http.delete(server.url("/mcp"))
            .header("mcp-protocol-version", "2025-06-18")
            .header("x-runcomfy-api-key", BOB)
            .header("mcp-session-id", session)
            .send()
    };
    let bobs_close = close(&alices).await.unwrap();
    let nobodys_close = close(unknown).await.unwrap();
    for (what, theirs, nobodys) in [
        ("cancel", bobs_cancel, nobodys_cancel),
        ("GET", bobs_stream, nobodys_stream),
        ("DELETE", bobs_close, nobodys_close),
    ] {
        assert_eq!(theirs.status(), 404, "{what}");
        assert_eq!(theirs.status(), nobodys.status(), "{what}");
        assert_eq!(theirs.text().await.unwrap(), nobodys.text().await.unwrap(), "{what}");
    }
    assert_eq!(
        control.job(&job).await["status"],
        "in_queue",
        "still running when Bob was done"
    );

    // Alice's call completes with her image; her job was never cancelled.
    let done = answer(running, 2).await;
    assert_eq!(done["result"]["isError"], json!(false), "{done}");
    assert_eq!(done["result"]["structuredContent"]["status"], "succeeded", "{done}");
    assert_eq!(control.job(&job).await["status"], "completed");
    let uses = token_uses(&sim).await;
    assert!(uses.iter().all(|u| u.call != "cancel"), "{uses:?}");
    // Her session still works.
    let listed = session_post(&http, &server, ALICE, Some(&alices), &rpc(3, "tools/list", json!({})))
        .send()
        .await
        .unwrap();
    assert!(answer(listed, 3).await["result"]["tools"].is_array());
    assert!(server.stop().await.success());
}

/// The same over the legacy SSE transport: Bob's `notifications/cancelled`, and any message, posted
/// to Alice's session is answered as for an unknown session, and her call completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_cannot_post_to_a_legacy_sse_session() {
    let sim = simulator(slow_queue()).await;
    let control = Control::new(&sim);
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &[]).await;
    let http = reqwest::Client::new();
    let opened = http
        .get(server.url("/sse"))
        .header("x-runcomfy-api-key", ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let mut events = Events::new(opened);
    let endpoint = events.next().await.expect("an endpoint event").data;
    let post = |key: &'static str, path: &str, body: Value| {
        http.post(server.url(path))
            .header("x-runcomfy-api-key", key)
            .json(&body)
            .send()
    };
    let init = rpc(
        1,
        "initialize",
        json!({ "protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": { "name": "per-user-keys-test", "version": "0" } }),
    );
    assert_eq!(post(ALICE, &endpoint, init).await.unwrap().status(), 202);
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    assert_eq!(post(ALICE, &endpoint, initialized).await.unwrap().status(), 202);
    assert_eq!(post(ALICE, &endpoint, waiting_call(2)).await.unwrap().status(), 202);
    let (job, status) = the_job(&control).await;
    assert_eq!(status, "in_queue");

    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": { "requestId": 2, "reason": "bob says so" } });
    let nobodys = "/message?sessionId=0123456789abcdef0123456789abcdef";
    for body in [cancel, rpc(9, "tools/list", json!({}))] {
        let theirs = post(BOB, &endpoint, body.clone()).await.unwrap();
        let unknown = post(BOB, nobodys, body).await.unwrap();
        assert_eq!(theirs.status(), 404);
        assert_eq!(theirs.text().await.unwrap(), unknown.text().await.unwrap());
    }
    assert_eq!(
        control.job(&job).await["status"],
        "in_queue",
        "still running when Bob was done"
    );

    // Alice's answer arrives on her stream (and nothing of Bob's), then her session still works.
    let answer_to = async |events: &mut Events, id: u64| loop {
        let event = events.next().await.expect("the stream stays open");
        let message: Value = serde_json::from_str(&event.data).unwrap();
        assert_ne!(
            message["id"],
            json!(9),
            "Bob's request reached Alice's session: {message}"
        );
        if message["id"] == json!(id) {
            return message;
        }
    };
    let _ = answer_to(&mut events, 1).await;
    let done = answer_to(&mut events, 2).await;
    assert_eq!(done["result"]["isError"], json!(false), "{done}");
    assert_eq!(done["result"]["structuredContent"]["status"], "succeeded", "{done}");
    assert_eq!(control.job(&job).await["status"], "completed");
    assert!(token_uses(&sim).await.iter().all(|u| u.call != "cancel"));
    assert_eq!(
        post(ALICE, &endpoint, rpc(3, "tools/list", json!({})))
            .await
            .unwrap()
            .status(),
        202
    );
    assert!(answer_to(&mut events, 3).await["result"]["tools"].is_array());
    assert!(server.stop().await.success());
}

/// Issue 39 item 2: an image uploaded from the app view is its uploader's. Bob cannot edit
/// Alice's upload by its reference nor read it as a resource: to him it is an upload nobody made.
#[tokio::test]
async fn an_upload_is_its_uploaders_only() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let server = start(&sim, state.path(), &[]).await;
    let http = reqwest::Client::new();
    let app = json!({ "extensions": { "io.modelcontextprotocol/ui": { "mimeTypes": ["text/html;profile=mcp-app"] } } });
    let alices = open_session_declaring(&http, &server, ALICE, app.clone()).await;
    let bobs = open_session_declaring(&http, &server, BOB, app).await;
    let call = |key: &'static str, session: &str, id: u64, method: &str, params: Value| {
        let request = session_post(&http, &server, key, Some(session), &rpc(id, method, params));
        async move { answer(request.send().await.unwrap(), id).await }
    };
    let mut png = Vec::new();
    image::RgbImage::from_pixel(32, 32, image::Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let uri = format!(
        "data:image/png;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png)
    );
    let uploaded = call(
        ALICE,
        &alices,
        2,
        "tools/call",
        json!({ "name": "upload_image", "arguments": { "image": uri } }),
    )
    .await;
    let reference = uploaded["result"]["structuredContent"]["reference"]
        .as_str()
        .unwrap_or_else(|| panic!("{uploaded}"))
        .to_owned();

    let edit = || json!({ "name": "generate_image", "arguments": { "prompt": "p", "images": [reference.clone()] } });
    let bobs_edit = call(BOB, &bobs, 3, "tools/call", edit()).await;
    assert_eq!(bobs_edit["result"]["isError"], json!(true), "{bobs_edit}");
    assert!(bobs_edit.to_string().contains("not an upload of yours"), "{bobs_edit}");
    let resource = json!({ "uri": format!("runcomfy://uploads/{}", &reference["upload:".len()..]) });
    let bobs_read = call(BOB, &bobs, 4, "resources/read", resource.clone()).await;
    assert!(bobs_read.get("error").is_some(), "{bobs_read}");
    assert!(
        Control::new(&sim).jobs().await.is_empty(),
        "Bob's refused edit submitted nothing"
    );

    let alices_edit = call(ALICE, &alices, 5, "tools/call", edit()).await;
    assert_ne!(alices_edit["result"]["isError"], json!(true), "{alices_edit}");
    assert!(call(ALICE, &alices, 6, "resources/read", resource)
        .await
        .get("result")
        .is_some());
    assert_eq!(Control::new(&sim).jobs().await.len(), 1);
}
