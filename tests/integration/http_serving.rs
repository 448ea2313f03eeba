//! Running the HTTP server for real: stateless replicas behind a load balancer share nothing but
//! the upstream, so a job submitted through one can be followed through another; and SIGTERM
//! lets a call in flight finish before the process exits. Stateless answers are plain JSON
//! unless the call streams progress.

use crate::common::{
    eventually, fast_config,
    http::{answer, call_tool, initialize, post_mcp, HttpServer},
    simulator, within,
};
use runcomfy_mcp::simulator::SimConfig;
use serde_json::json;

#[tokio::test]
async fn a_job_submitted_through_one_stateless_replica_is_read_through_another() {
    let sim = simulator(fast_config()).await;
    let a = HttpServer::start(&sim.base_url(), &["--stateless"], &[]).await;
    let b = HttpServer::start(&sim.base_url(), &["--stateless"], &[]).await;
    let http = reqwest::Client::new();

    // No session: the initialize answer carries no session id to route by.
    for replica in [&a, &b] {
        let init = post_mcp(&http, replica, &initialize(1)).send().await.unwrap();
        assert!(!init.headers().contains_key("mcp-session-id"));
        assert_eq!(answer(init, 1).await["result"]["serverInfo"]["name"], "runcomfy-mcp");
    }

    let submitted = call_tool(
        &http,
        &a,
        2,
        "generate_image",
        json!({ "prompt": "two lighthouses", "force_single": true }),
    )
    .await;
    assert_eq!(submitted["isError"], json!(false), "{submitted}");
    let id = submitted["structuredContent"]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut rpc_id = 10;
    eventually(
        async || {
            rpc_id += 1;
            let status = call_tool(&http, &b, rpc_id, "check_status", json!({ "request_id": id })).await;
            assert_eq!(status["isError"], json!(false), "{status}");
            let state = &status["structuredContent"];
            if state["finished"] != json!(true) {
                return Err(state["status"].clone());
            }
            assert_eq!(state["status"], "succeeded");
            Ok(())
        },
        "the job to finish as seen from replica b",
    )
    .await;
    let result = call_tool(&http, &b, 500, "get_result", json!({ "request_id": id })).await;
    assert_eq!(result["isError"], json!(false), "{result}");
    let images = result["structuredContent"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(sim.stats().submissions, 1, "one job, submitted once");

    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
}

/// Without a session there is no stream to resume: a plain call is answered as plain JSON, and
/// a call that reports progress as an SSE stream that carries the progress, then the result.
#[tokio::test]
async fn stateless_answers_are_json_unless_progress_is_sent_first() {
    let sim = simulator(fast_config()).await;
    let server = HttpServer::start(&sim.base_url(), &["--stateless"], &[]).await;
    let http = reqwest::Client::new();
    let call = |id: u64, params: serde_json::Value| {
        post_mcp(&http, &server, &crate::common::http::rpc(id, "tools/call", params))
            .header("mcp-protocol-version", "2025-06-18")
            .send()
    };
    let content_type = |r: &reqwest::Response| r.headers()["content-type"].to_str().unwrap().to_owned();

    let plain = call(1, json!({ "name": "list_jobs", "arguments": {} })).await.unwrap();
    assert_eq!(content_type(&plain), "application/json");
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["id"], 1, "{body}");

    let waiting = call(
        2,
        json!({
            "name": "generate_image_and_wait",
            "arguments": { "prompt": "a streamed kite" },
            "_meta": { "progressToken": "kite" }
        }),
    )
    .await
    .unwrap();
    assert_eq!(content_type(&waiting), "text/event-stream");
    let body = waiting.text().await.unwrap();
    let progress = body.find("notifications/progress").expect("progress in the stream");
    let result = body.find(r#""id":2"#).expect("the result in the stream");
    assert!(progress < result, "{body}");
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn sigterm_stops_new_connections_but_lets_the_call_in_flight_finish() {
    let sim = simulator(SimConfig {
        initial_queue_position: 1,
        queue_step_ms: 200,
        run_ms: 2500,
        ..SimConfig::default()
    })
    .await;
    let server = HttpServer::start(
        &sim.base_url(),
        &["--stateless", "--shutdown-grace-secs", "60"],
        &[("RUNCOMFY_POLL_FIRST_MS", "50"), ("RUNCOMFY_POLL_MAX_MS", "200")],
    )
    .await;
    let http = reqwest::Client::new();
    let healthz = server.url("/healthz");

    let call = tokio::spawn({
        let (http, server_url) = (http.clone(), server.url("/mcp"));
        async move {
            let body = json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": "generate_image_and_wait", "arguments": { "prompt": "last light" } }
            });
            let response = http
                .post(server_url)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18")
                .json(&body)
                .send()
                .await
                .unwrap();
            answer(response, 1).await
        }
    });
    // Wait until the call has reached the upstream, then ask the server to stop.
    eventually(
        async || match sim.stats().submissions {
            0 => Err(0),
            n => Ok(n),
        },
        "the call to reach the upstream",
    )
    .await;
    assert_eq!(sim.stats().submissions, 1, "the call reached the upstream once");
    let stopping = tokio::spawn(server.stop());

    // New connections are refused while the call is still running...
    eventually(
        async || match reqwest::Client::new().get(&healthz).send().await {
            Err(_) => Ok(()),
            Ok(accepted) => Err(accepted.status()),
        },
        "the server to refuse new connections after SIGTERM",
    )
    .await;
    assert!(!call.is_finished(), "the call should still be running");

    // ...and the call still gets its image, then the process exits cleanly.
    let answer = call.await.unwrap();
    let result = &answer["result"];
    assert_eq!(result["isError"], json!(false), "{answer}");
    assert_eq!(result["structuredContent"]["status"], "succeeded", "{answer}");
    assert!(stopping.await.unwrap().success());
}

/// ChatGPT's app directory fetches its domain-verification token back from the server's host: set
/// (by flag or variable, a pasted newline trimmed), it is served there as plain text; unset, the
/// path is an ordinary 404; a token that is not one word is refused at start, before listening.
#[tokio::test]
async fn the_openai_apps_challenge_is_served_as_plain_text_once_set() {
    const PATH: &str = "/.well-known/openai-apps-challenge";
    let sim = simulator(fast_config()).await;
    let http = reqwest::Client::new();
    let by_variable = HttpServer::start(
        &sim.base_url(),
        &[],
        &[("RUNCOMFY_MCP_OPENAI_APPS_CHALLENGE", "tok-123_ABC\n")],
    )
    .await;
    let by_flag = HttpServer::start(&sim.base_url(), &["--openai-apps-challenge", "other.Token-9"], &[]).await;
    for (server, token) in [(&by_variable, "tok-123_ABC"), (&by_flag, "other.Token-9")] {
        let got = http.get(server.url(PATH)).send().await.unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(got.text().await.unwrap(), token);
    }
    let unset = HttpServer::start(&sim.base_url(), &[], &[]).await;
    assert_eq!(http.get(unset.url(PATH)).send().await.unwrap().status(), 404);

    // Refused at start: the process exits (`within` fails the test, and kill_on_drop ends the
    // child, should it listen instead).
    let refused = within(
        crate::common::Bin::serve_http()
            .upstream(&sim.base_url())
            .args(["--openai-apps-challenge", "two words"])
            .tokio()
            .output(),
        "serve to refuse a token of two words",
    )
    .await
    .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--openai-apps-challenge"), "{said}");
}
