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

/// The JSON-RPC answers the specification gives, over Streamable HTTP: a body that is not JSON
/// is a 400 with `-32700`, JSON that is not a request (a batch, an id that is not a string or a
/// number) a 400 with `-32600` (id null where it cannot be echoed), wrong-typed params of a
/// known method `-32602`, and an error about a 3.9 MB URI does not carry it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_over_http_carry_the_codes_json_rpc_gives_them() {
    let sim = simulator(fast_config()).await;
    // Room for a 3.9 MB URI.
    let server = HttpServer::start(&sim.base_url(), &["--max-body-bytes", "8388608"], &[]).await;
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
            .send()
    };

    for (body, code, id) in [
        ("this is not json".to_owned(), -32700, Value::Null),
        ("[]".to_owned(), -32600, Value::Null),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#.to_owned(),
            -32600,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":true,"method":"tools/list"}"#.to_owned(),
            -32600,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#.to_owned(),
            -32600,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":[1],"method":"tools/list"}"#.to_owned(),
            -32600,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"1.0","id":"v","method":"tools/list"}"#.to_owned(),
            -32600,
            json!("v"),
        ),
    ] {
        let response = raw(body.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{body}: not JSON: {e}"));
        assert_eq!(
            (error["error"]["code"].clone(), error["id"].clone()),
            (json!(code), id),
            "{body}: {error}"
        );
    }

    let huge = "u".repeat(3_900_000);
    for (id, method, params) in [
        (1, "tools/call", json!({"name": "generate_image", "arguments": [1, 2]})),
        (
            2,
            "tools/call",
            json!({"name": "generate_image", "arguments": "a prompt"}),
        ),
        (3, "resources/read", json!({"uri": 5})),
        (4, "resources/read", json!({"uri": huge.clone()})),
        (
            5,
            "resources/read",
            json!({"uri": format!("runcomfy://jobs/{huge}/images/1")}),
        ),
    ] {
        let response = post_mcp(&http, &server, &rpc(id, method, params))
            .header("mcp-session-id", &sid)
            .send()
            .await
            .unwrap();
        let message = answer(response, id).await;
        let text = message.to_string();
        assert!(text.len() < 2_000, "{id}: an answer of {} bytes", text.len());
        let code = &message["error"]["code"];
        match id {
            1..=3 => assert_eq!(code, -32602, "{message}"),
            _ => assert!(code.is_i64(), "{message}"),
        }
    }
    assert_eq!(sim.stats().submissions, 0, "nothing malformed reached the upstream");
    assert!(server.stop().await.success());
}
