//! The stdio transport at the byte level: stdout carries JSON-RPC and nothing else even at trace
//! logging, unknown methods are answered at once, and the process exits cleanly on EOF.
//!
//! These tests block on child processes, so they run on a multi-threaded runtime: the simulator
//! shares the test's runtime and must keep answering meanwhile.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use serde_json::{json, Value};

/// The binary over raw pipes (`serve`, the default command, against `sim`), journal off.
fn spawn_raw(sim: &runcomfy_mcp::simulator::Simulator, rust_log: &str, stderr: Stdio) -> std::process::Child {
    Command::new(BIN)
        .arg("serve")
        .env("RUNCOMFY_API_KEY", TOKEN)
        .env("RUNCOMFY_BASE_URL", sim.base_url())
        .env("RUNCOMFY_NO_JOURNAL", "true")
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn line(value: Value) -> String {
    format!("{value}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_is_only_json_rpc_at_trace_level_and_eof_exits_cleanly() {
    let sim = simulator(fast_config()).await;
    let mut child = spawn_raw(&sim, "trace", Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    // Drain stderr as it comes: trace logging fills a pipe buffer fast, and a full pipe would
    // block the server.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut stderr_pipe, &mut stderr).unwrap();
        stderr
    });
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    let script = [
        line(init),
        line(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
        line(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})),
        line(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "generate_image", "arguments": {"prompt": "a cat"}}}),
        ),
        line(
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "check_status", "arguments": {"request_id": "../x"}}}),
        ),
        line(json!({"jsonrpc": "2.0", "id": 5, "method": "no/such/method"})),
        line(
            json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}}),
        ),
    ];
    for message in &script {
        stdin.write_all(message.as_bytes()).unwrap();
    }
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut answered = Vec::new();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for l in stdout.lines() {
            lines.push(l.unwrap());
        }
        lines
    });
    // Give the server time to answer the submit before closing stdin.
    std::thread::sleep(Duration::from_millis(1500));
    drop(stdin);
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?} to exit after EOF",
        started.elapsed()
    );

    for l in reader.join().unwrap() {
        let message: Value = serde_json::from_str(&l).unwrap_or_else(|_| panic!("stdout line is not JSON: {l:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "{l}");
        if let Some(id) = message["id"].as_i64() {
            answered.push((id, message));
        }
    }
    // Requests are served concurrently, so answers may come in any order.
    let mut ids: Vec<i64> = answered.iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6], "every request answered once");
    let by_id = |id: i64| &answered.iter().find(|(i, _)| *i == id).unwrap().1;
    assert_eq!(by_id(3)["result"]["isError"], false);
    assert_eq!(by_id(4)["result"]["isError"], true);
    assert_eq!(by_id(5)["error"]["code"], -32601);
    assert!(by_id(6)["error"].is_object() || by_id(6)["result"]["isError"] == true);

    let stderr = stderr_reader.join().unwrap();
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace logging went to stderr"
    );
    assert!(!stderr.contains(TOKEN), "the token appeared in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_discover_is_answered_at_once() {
    let sim = simulator(fast_config()).await;
    let mut child = spawn_raw(&sim, "warn", Stdio::null());
    let started = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(line(json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}})).as_bytes())
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let answer: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(answer["id"], 1);
    assert!(
        answer.get("result").is_some() || answer.get("error").is_some(),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "discover took {:?}",
        started.elapsed()
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_is_a_clear_start_up_error() {
    let output = Command::new(BIN)
        .arg("serve")
        .env_remove("RUNCOMFY_API_KEY")
        .env_remove("RUNCOMFY_API_TOKEN")
        .env_remove("RUNCOMFY_SIMULATE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RUNCOMFY_API_KEY") && stderr.contains("--simulate"),
        "{stderr}"
    );
}

/// Malformed JSON-RPC, wrong types, a huge string and deep nesting: every request gets an answer
/// with its own id (the client would otherwise wait forever), and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_answers_and_the_server_keeps_serving() {
    let sim = simulator(fast_config()).await;
    let mut child = spawn_raw(&sim, "warn", Stdio::null());
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    let lines = [
        line(init),
        line(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
        "this is not json\n".to_owned(),
        line(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": "x"})),
        line(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "generate_image", "arguments": {"prompt": "x".repeat(5_000_000)}}}),
        ),
        format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        line(
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "check_status", "arguments": {"request_id": {"a": [1, {"b": null}]}}}}),
        ),
        line(json!({"jsonrpc": "1.0", "id": 5, "method": "tools/list"})),
        line(
            json!({"jsonrpc": "2.0", "id": "six", "method": "tools/call", "params": {"name": "generate_image", "arguments": [1, 2]}}),
        ),
        line(json!({"jsonrpc": "2.0", "method": "notifications/bogus", "params": 7})),
        line(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})),
    ];
    let writer = std::thread::spawn(move || {
        for l in lines {
            stdin.write_all(l.as_bytes()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1000));
        drop(stdin);
    });
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    writer.join().unwrap();
    assert!(output.status.success());
    let answers: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON on stdout: {l}")))
        .collect();
    let mut ids: Vec<String> = answers
        .iter()
        .filter(|a| !a["id"].is_null())
        .map(|a| a["id"].to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["\"six\"", "1", "2", "3", "4", "5", "7"], "{answers:#?}");
    let by_id = |id: Value| answers.iter().find(|a| a["id"] == id).unwrap();
    assert_eq!(by_id(json!(2))["error"]["code"], -32600);
    assert_eq!(by_id(json!(5))["error"]["code"], -32600);
    assert!(by_id(json!(3))["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("5000000 characters"));
    assert_eq!(by_id(json!(4))["result"]["isError"], true);
    assert!(
        by_id(json!(7))["result"]["tools"].is_array(),
        "still serving after all that"
    );
    // The two lines that are not JSON at all get id-less parse errors.
    assert_eq!(
        answers
            .iter()
            .filter(|a| a["id"].is_null() && a["error"]["code"] == -32700)
            .count(),
        2
    );
    assert_eq!(sim.stats().submissions, 0);
}

/// A client that closes our stderr must not bring the server down, even at trace logging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_does_not_stop_the_server() {
    let sim = simulator(fast_config()).await;
    let mut child = spawn_raw(&sim, "trace", Stdio::piped());
    drop(child.stderr.take());
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
    for message in [
        line(init),
        line(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
        line(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "generate_image", "arguments": {"prompt": "a cat"}}}),
        ),
    ] {
        stdin.write_all(message.as_bytes()).unwrap();
    }
    let output = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(1000));
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", output.status);
    let answers = String::from_utf8(output.stdout).unwrap();
    assert!(
        answers
            .lines()
            .any(|l| l.contains("\"id\":2") && l.contains("request_id")),
        "{answers}"
    );
}
