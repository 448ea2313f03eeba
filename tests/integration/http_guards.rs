//! The HTTP server's guards and session rules, seen from the wire: the status codes a client
//! gets for a missing or wrong token, a foreign Host or Origin, an oversized body, an unknown or
//! expired legacy session, and too many sessions; CORS for allowed browser origins only; and the
//! refusal to listen on a public address without authentication.

use crate::common::{
    eventually,
    http::{answer, initialize, open_sse, post_mcp, rpc, Events, HttpServer},
    simulator, within, Bin,
};
use reqwest::{header, StatusCode};
use runcomfy_mcp::simulator::SimConfig;
use serde_json::json;

const AUTH_TOKEN: &str = "guards-test-token-0123456789";

fn authed() -> reqwest::Client {
    let mut headers = header::HeaderMap::new();
    headers.insert(header::AUTHORIZATION, format!("Bearer {AUTH_TOKEN}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

/// Each endpoint as a request a client might send to it.
fn every_endpoint(http: &reqwest::Client, server: &HttpServer) -> Vec<(&'static str, reqwest::RequestBuilder)> {
    vec![
        ("POST /mcp", post_mcp(http, server, &initialize(1))),
        ("GET /sse", http.get(server.url("/sse"))),
        (
            "POST /message",
            http.post(server.url("/message?sessionId=00000000000000000000000000000000"))
                .json(&rpc(1, "ping", json!({}))),
        ),
        ("GET /healthz", http.get(server.url("/healthz"))),
    ]
}

#[tokio::test]
async fn a_missing_or_wrong_token_gets_401_on_every_endpoint() {
    let sim = simulator(SimConfig::default()).await;
    let server = HttpServer::start(&sim.base_url(), &[], &[("RUNCOMFY_MCP_AUTH_TOKEN", AUTH_TOKEN)]).await;
    let anonymous = reqwest::Client::new();

    for (endpoint, request) in every_endpoint(&anonymous, &server) {
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{endpoint} without a token"
        );
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer"), "{endpoint}: {challenge}");
        assert!(response.text().await.unwrap().contains("Authorization: Bearer <token>"));
    }
    for (endpoint, request) in every_endpoint(&anonymous, &server) {
        let response = request
            .bearer_auth("guards-test-token-0123456788")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{endpoint} with a wrong token"
        );
        let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{endpoint}: {challenge}"
        );
    }

    // The right token opens every door.
    let http = authed();
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let init = post_mcp(&http, &server, &initialize(1)).send().await.unwrap();
    assert!(init.headers().contains_key("mcp-session-id"));
    let answer = answer(init, 1).await;
    assert_eq!(answer["result"]["serverInfo"]["name"], "runcomfy-mcp");
    let (_events, endpoint) = open_sse(&http, &server).await;
    assert!(endpoint.starts_with("/message?sessionId="), "{endpoint}");

    assert!(server.stop().await.success());
}

#[tokio::test]
async fn a_foreign_host_or_origin_gets_403_on_every_endpoint() {
    let sim = simulator(SimConfig::default()).await;
    let server = HttpServer::start(
        &sim.base_url(),
        &[
            "--allowed-host",
            "mcp.example.com",
            "--allowed-origin",
            "https://app.example.com",
        ],
        &[("RUNCOMFY_MCP_AUTH_TOKEN", AUTH_TOKEN)],
    )
    .await;
    let http = authed();

    for (endpoint, request) in every_endpoint(&http, &server) {
        let response = request.header(header::HOST, "evil.example").send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{endpoint} with Host evil.example"
        );
        assert!(response.text().await.unwrap().contains("--allowed-host"));
    }
    for (endpoint, request) in every_endpoint(&http, &server) {
        let response = request
            .header(header::ORIGIN, "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{endpoint} with Origin evil.example"
        );
        assert!(response.text().await.unwrap().contains("--allowed-origin"));
    }
    // A rebinding page has no token either: the 403 comes first and says nothing about auth.
    let anonymous = reqwest::Client::new();
    let response = anonymous
        .get(server.url("/healthz"))
        .header(header::HOST, "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Loopback and configured names pass.
    for (name, value) in [
        (header::HOST, "mcp.example.com"),
        (header::HOST, "localhost:1234"),
        (header::ORIGIN, "https://app.example.com"),
        (header::ORIGIN, "http://localhost:6274"),
    ] {
        let response = http
            .get(server.url("/healthz"))
            .header(name.clone(), value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}: {value}");
    }
    assert!(server.stop().await.success());
}

/// A web client: its browser preflights without the token, then sends the call with it, and
/// may read the answer and the session id only if its origin is allowed.
#[tokio::test]
async fn browsers_get_cors_for_allowed_origins_only() {
    let sim = simulator(SimConfig::default()).await;
    let server = HttpServer::start(
        &sim.base_url(),
        &["--allowed-origin", "https://app.example.com"],
        &[("RUNCOMFY_MCP_AUTH_TOKEN", AUTH_TOKEN)],
    )
    .await;
    let anonymous = reqwest::Client::new();
    let preflight = |origin: &str| {
        anonymous
            .request(reqwest::Method::OPTIONS, server.url("/mcp"))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type,mcp-session-id,mcp-protocol-version",
            )
            .send()
    };

    for origin in ["https://app.example.com", "http://localhost:6274"] {
        let response = preflight(origin).await.unwrap();
        assert!(response.status().is_success(), "{origin}: {}", response.status());
        let headers = response.headers();
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        for name in [
            "authorization",
            "content-type",
            "mcp-session-id",
            "mcp-protocol-version",
        ] {
            assert!(allowed.contains(name), "{origin}: {name} not in {allowed}");
        }
        assert!(headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .contains("POST"));
    }
    let foreign = preflight("http://evil.example").await.unwrap();
    assert!(!foreign.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));

    // The call itself still needs the token, and its answer exposes the session id.
    let response = post_mcp(&authed(), &server, &initialize(1))
        .header(header::ORIGIN, "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
    assert!(headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .contains("mcp-session-id"));
    assert!(headers.contains_key("mcp-session-id"));
    let refused = post_mcp(&anonymous, &server, &initialize(1))
        .header(header::ORIGIN, "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The browser may read why: the 401 carries CORS headers too.
    assert!(refused.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn an_oversized_body_gets_413_whether_its_length_is_declared_or_not() {
    let sim = simulator(SimConfig::default()).await;
    let server = HttpServer::start(&sim.base_url(), &["--max-body-bytes", "4096"], &[]).await;
    let http = reqwest::Client::new();
    let (_events, endpoint) = open_sse(&http, &server).await;
    let big = rpc(
        1,
        "tools/call",
        json!({ "name": "generate_image", "arguments": { "prompt": "x".repeat(5000) } }),
    );
    let bytes = serde_json::to_vec(&big).unwrap();

    for path in ["/mcp", endpoint.as_str()] {
        let declared = http
            .post(server.url(path))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            declared.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{path} with Content-Length"
        );
        // The unread rest of the body makes the connection useless: the client must not reuse it.
        assert_eq!(declared.headers()[header::CONNECTION], "close", "{path}");

        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(1000).map(|c| Ok(c.to_vec())).collect();
        let streamed = http
            .post(server.url(path))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .unwrap();
        assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path} chunked");
        assert_eq!(streamed.headers()[header::CONNECTION], "close", "{path} chunked");
    }
    // Under the limit is fine.
    let small = post_mcp(&http, &server, &initialize(1)).send().await.unwrap();
    assert_eq!(small.status(), StatusCode::OK);
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn legacy_sessions_have_unguessable_ids_and_unknown_ones_get_404() {
    let sim = simulator(SimConfig::default()).await;
    let server = HttpServer::start(&sim.base_url(), &[], &[]).await;
    let http = reqwest::Client::new();

    let (mut events, endpoint) = open_sse(&http, &server).await;
    let (_other, other_endpoint) = open_sse(&http, &server).await;
    let id = endpoint.strip_prefix("/message?sessionId=").expect("endpoint path");
    assert_eq!(id.len(), 32, "128 bits in hex: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_ne!(endpoint, other_endpoint);

    // A message to the session is accepted and answered on its stream.
    let accepted = http
        .post(server.url(&endpoint))
        .json(&initialize(7))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let event = events.next().await.expect("the initialize answer");
    assert_eq!(event.name, "message");
    let message: serde_json::Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(message["id"], 7);
    assert_eq!(message["result"]["serverInfo"]["name"], "runcomfy-mcp");

    // Unknown ids, and no id at all.
    let unknown = format!("/message?sessionId={}", "0".repeat(32));
    let response = http
        .post(server.url(&unknown))
        .json(&rpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("GET /sse"));
    let response = http
        .post(server.url("/message"))
        .json(&rpc(1, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Not JSON-RPC.
    let response = http.post(server.url(&endpoint)).body("{").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A client that hangs up ends its session.
    drop(events);
    eventually(
        async || {
            let status = http
                .post(server.url(&endpoint))
                .json(&rpc(2, "ping", json!({})))
                .send()
                .await
                .unwrap()
                .status();
            if status == StatusCode::NOT_FOUND {
                Ok(())
            } else {
                Err(status)
            }
        },
        "the session to end with its stream (404)",
    )
    .await;
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn idle_sessions_expire_on_both_transports() {
    let sim = simulator(SimConfig::default()).await;
    let server = HttpServer::start(&sim.base_url(), &["--session-idle-secs", "1"], &[]).await;
    let http = reqwest::Client::new();

    let (mut legacy_events, endpoint) = open_sse(&http, &server).await;
    let init = post_mcp(&http, &server, &initialize(1)).send().await.unwrap();
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    answer(init, 1).await;
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    let response = post_mcp(&http, &server, &initialized)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // The Streamable HTTP session's own event stream (GET /mcp), which ends with the session.
    let stream = http
        .get(server.url("/mcp"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK, "GET /mcp");
    let mut streamable_events = Events::new(stream);

    // No traffic on either session from here (a request would restart its idle clock): each one
    // ends by itself, and the server then ends its event stream. That end is what is waited for,
    // so the test takes as long as the expiry and no longer (a session that never expires fails
    // the wait).
    within(
        async { while legacy_events.next().await.is_some() {} },
        "the idle legacy SSE session's stream to end",
    )
    .await;
    within(
        async { while streamable_events.next().await.is_some() {} },
        "the idle Streamable HTTP session's stream to end",
    )
    .await;
    let legacy = http
        .post(server.url(&endpoint))
        .json(&rpc(2, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), StatusCode::NOT_FOUND, "legacy session after idling");
    let streamable = post_mcp(&http, &server, &rpc(2, "ping", json!({})))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        streamable.status(),
        StatusCode::NOT_FOUND,
        "Streamable HTTP session after idling"
    );
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn sessions_past_the_cap_get_503_on_both_transports() {
    let sim = simulator(SimConfig::default()).await;
    let server = HttpServer::start(&sim.base_url(), &["--max-sessions", "2"], &[]).await;
    let http = reqwest::Client::new();

    let (first, _) = open_sse(&http, &server).await;
    let init = post_mcp(&http, &server, &initialize(1)).send().await.unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    answer(init, 1).await;

    let refused = http.get(server.url("/sse")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    let refused = post_mcp(&http, &server, &initialize(2)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.text().await.unwrap().contains("maximum of 2 sessions"));

    // Closing a session frees its place.
    drop(first);
    eventually(
        async || match http.get(server.url("/sse")).send().await.unwrap().status() {
            StatusCode::OK => Ok(()),
            other => Err(other),
        },
        "a place to free up (200 on GET /sse)",
    )
    .await;
    assert!(server.stop().await.success());
}

#[tokio::test]
async fn listening_on_a_public_address_without_auth_is_refused() {
    // The builder leaves out every RUNCOMFY_* variable, RUNCOMFY_MCP_AUTH_TOKEN among them.
    let output = Bin::serve_http()
        .args(["--host", "0.0.0.0", "--simulate"])
        .env("RUST_LOG", "off")
        .tokio()
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0 without authentication"),
        "{stderr}"
    );
    assert!(stderr.contains("RUNCOMFY_MCP_AUTH_TOKEN") && stderr.contains("--allow-remote-without-auth"));
    assert!(output.stdout.is_empty(), "nothing was served");
}

/// Closing a session is answered 204 (the official Python client counts 202 as a failed
/// termination and logs it), and the session is gone: a call on its id is then unknown (404).
#[tokio::test]
async fn deleting_a_session_answers_204_and_ends_it() {
    let sim = simulator(SimConfig::default()).await;
    let server = HttpServer::start(&sim.base_url(), &[], &[]).await;
    let http = reqwest::Client::new();
    let init = post_mcp(&http, &server, &initialize(1)).send().await.unwrap();
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    answer(init, 1).await;

    let closed = http
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), StatusCode::NO_CONTENT);
    assert!(closed.bytes().await.unwrap().is_empty());

    let after = post_mcp(&http, &server, &rpc(2, "ping", json!({})))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::NOT_FOUND, "the closed session");
    let again = http
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    // DELETE is idempotent: a second close finds nothing to end and says the same.
    assert_eq!(again.status(), StatusCode::NO_CONTENT, "closing it twice");
    assert!(server.stop().await.success());
}
