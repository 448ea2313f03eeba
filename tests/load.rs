//! Load over HTTP, bounded and on loopback only: many concurrent Streamable HTTP sessions, each
//! making many tool calls. No call may fail, and the server's memory after the sessions close
//! is reported next to its baseline and peak. Sizes: LOAD_SESSIONS (200) × LOAD_CALLS (50).

mod common;

use std::{sync::Arc, time::Instant};

use common::{http::*, *};
use serde_json::{json, Value};

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One session: initialize, `calls` × check_status, then close it. Returns the failures.
async fn session(http: reqwest::Client, server: Arc<HttpServer>, request_id: String, calls: usize) -> Vec<String> {
    let mut failures = Vec::new();
    let response = post_mcp(&http, &server, &initialize(0)).send().await.unwrap();
    let Some(sid) = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return vec![format!(
            "initialize answered {} without a session id",
            response.status()
        )];
    };
    answer(response, 0).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let sent = post_mcp(&http, &server, &initialized)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    if !sent.status().is_success() {
        failures.push(format!("initialized: {}", sent.status()));
    }
    for i in 1..=calls as u64 {
        let body = rpc(
            i,
            "tools/call",
            json!({"name": "check_status", "arguments": {"request_id": request_id}}),
        );
        let response = post_mcp(&http, &server, &body)
            .header("mcp-session-id", &sid)
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => {
                let message = answer(r, i).await;
                if message["result"]["isError"] != json!(false) {
                    failures.push(format!("call {i}: {message}"));
                }
            }
            Ok(r) => failures.push(format!("call {i}: HTTP {}", r.status())),
            Err(e) => failures.push(format!("call {i}: {e}")),
        }
    }
    let closed = http
        .delete(server.url("/mcp"))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    if !closed.status().is_success() {
        failures.push(format!("closing the session: {}", closed.status()));
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_sessions_and_calls_over_http() {
    let (sessions, calls) = (env_or("LOAD_SESSIONS", 200), env_or("LOAD_CALLS", 50));
    let sim = simulator(fast_config()).await;
    let max = (sessions + 10).to_string();
    let server = Arc::new(HttpServer::start(&sim.base_url(), &["--max-sessions", &max], &[]).await);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(sessions)
        .build()
        .unwrap();
    // The job every call reads, submitted straight to the simulator.
    let submitted: Value = http
        .post(format!(
            "{}/v1/models/bytedance/dreamina-4-0/text-to-image",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"prompt": "load"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request_id = submitted["request_id"].as_str().unwrap().to_owned();
    let pid = server.pid();
    let baseline = rss_kib(pid, "VmRSS:");

    // Two identical rounds: the first shows the cost of the load, the second that it does not
    // grow (memory kept by the allocator for reuse is fine; memory lost per session is a leak).
    let mut peaks = Vec::new();
    for round in 1..=2 {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..sessions {
            tasks.spawn(session(http.clone(), server.clone(), request_id.clone(), calls));
        }
        let mut failures: Vec<String> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            failures.extend(done.expect("a session task panicked"));
        }
        let elapsed = started.elapsed();
        let peak = rss_kib(pid, "VmHWM:");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let after = rss_kib(pid, "VmRSS:");
        let total = sessions * calls;
        println!(
            "load round {round}: {sessions} sessions x {calls} calls = {total} calls in {:.1} s ({:.0} calls/s); server RSS before {baseline} KiB, peak {peak} KiB, after {after} KiB; {} failures",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64(),
            failures.len()
        );
        assert!(
            failures.is_empty(),
            "{} failures, first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        peaks.push(peak);
    }
    assert!(
        peaks[1] <= peaks[0] + peaks[0] / 4,
        "memory grew from round 1 to round 2: {peaks:?} KiB"
    );
    let total = 2 * sessions * calls;
    assert!(
        sim.stats().status_calls >= total as u64,
        "every call reached the upstream"
    );
    let Ok(server) = Arc::try_unwrap(server) else {
        panic!("sessions still hold the server")
    };
    assert!(server.stop().await.success());
}
