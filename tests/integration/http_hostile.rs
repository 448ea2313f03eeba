//! Hostile input over Streamable HTTP: bodies that are not JSON, not JSON-RPC, deeply nested,
//! huge, or with wrong argument types get proper errors, and the server keeps serving.

use crate::common::{http::*, *};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_errors_and_the_server_keeps_serving() {
    let sim = simulator(fast_config()).await;
    let server = HttpServer::start(&sim.base_url(), &[], &[]).await;
    let http = reqwest::Client::new();
    let response = post_mcp(&http, &server, &initialize(0)).send().await.unwrap();
    let sid = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    answer(response, 0).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    post_mcp(&http, &server, &initialized)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();

    let raw = |body: String| {
        http.post(server.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", &sid)
            .body(body)
    };
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for body in [
        "this is not json".to_owned(),
        nested,
        "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":".to_owned(),
        "[]".to_owned(),
    ] {
        let response = raw(body.clone()).send().await.unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{status} for {:.40}", body);
    }

    // Well-formed JSON-RPC with arguments of the wrong shape: tool errors the model can read.
    for (id, arguments) in [
        (1, json!({"prompt": 42})),
        (2, json!({"prompt": "x".repeat(600_000)})),
        (3, json!([1, 2, 3])),
        (4, json!({"prompt": "x", "size": {"w": 1}})),
    ] {
        let body = rpc(
            id,
            "tools/call",
            json!({"name": "generate_image", "arguments": arguments}),
        );
        let response = post_mcp(&http, &server, &body)
            .header("mcp-session-id", &sid)
            .send()
            .await
            .unwrap();
        let message = answer(response, id).await;
        let is_error = message["result"]["isError"] == json!(true) || message.get("error").is_some();
        assert!(is_error, "{id}: {message}");
    }

    // Still serving, on the same session.
    let body = rpc(10, "tools/list", json!({}));
    let response = post_mcp(&http, &server, &body)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    let tools: Value = answer(response, 10).await;
    assert!(
        tools["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{tools}"
    );
    assert_eq!(sim.stats().submissions, 0, "nothing malformed reached the upstream");
    assert!(server.stop().await.success());
}
