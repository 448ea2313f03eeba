//! The real binary as an HTTP server (`serve --transport http --port 0`) against a test's
//! simulator, and raw JSON-RPC over HTTP to it: these tests are about what the HTTP layer answers
//! (status codes, headers, session ids), which a full MCP client would hide.

use std::process::Stdio;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{within, Bin};

pub struct HttpServer {
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`, from the endpoint the server printed (`…/mcp`).
    pub base: String,
}

impl HttpServer {
    /// Starts the server pointed at `upstream`, with extra flags and environment.
    pub async fn start(upstream: &str, flags: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Bin::serve_http().args(flags).upstream(upstream).envs(env).tokio();
        command.stdout(Stdio::piped());
        let mut child = command.spawn().expect("binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        within(
            BufReader::new(stdout).read_line(&mut line),
            "the server to print its URL",
        )
        .await
        .expect("stdout readable");
        let printed = line.trim();
        let base = printed.strip_suffix("/mcp").unwrap_or_default().to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "server printed {printed:?}");
        Self { child, base }
    }

    /// SIGTERM, then the exit status (graceful shutdown should make it a success).
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        within(self.child.wait(), "the server to exit after SIGTERM")
            .await
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A JSON-RPC request body.
pub fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

pub fn initialize(id: u64) -> Value {
    rpc(
        id,
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "http-test", "version": "0" }
        }),
    )
}

/// POSTs to `/mcp` as a Streamable HTTP client does.
pub fn post_mcp(http: &reqwest::Client, server: &HttpServer, body: &Value) -> reqwest::RequestBuilder {
    http.post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(body)
}

/// The JSON-RPC answer with `id` from a response that is either plain JSON or an SSE stream.
pub async fn answer(response: reqwest::Response, id: u64) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    let messages: Vec<Value> = match serde_json::from_str(&body) {
        Ok(one) => vec![one],
        Err(_) => body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect(),
    };
    messages
        .into_iter()
        .find(|m| m["id"] == json!(id))
        .unwrap_or_else(|| panic!("no answer to request {id} in {body}"))
}

/// Calls a tool over stateless Streamable HTTP and returns its result object.
pub async fn call_tool(http: &reqwest::Client, server: &HttpServer, id: u64, tool: &str, args: Value) -> Value {
    let body = rpc(id, "tools/call", json!({ "name": tool, "arguments": args }));
    let response = post_mcp(http, server, &body)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    let message = answer(response, id).await;
    message
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{tool}: no result in {message}"))
}

/// A server-sent event stream read one event at a time.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

/// One event: its `event:` name (`message` when absent) and its `data:`.
#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub data: String,
}

impl Events {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments such as keep-alives skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    name: "message".into(),
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event.name = name.trim().to_owned();
                    } else if let Some(data) = line.strip_prefix("data:") {
                        has_data = true;
                        event.data.push_str(data.trim_start());
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue;
            }
            let chunk = within(self.response.chunk(), "the next server-sent event")
                .await
                .ok()??;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }
}

/// Opens a legacy SSE session; returns the event stream and the endpoint path it announced.
pub async fn open_sse(http: &reqwest::Client, server: &HttpServer) -> (Events, String) {
    let response = http.get(server.url("/sse")).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET /sse");
    let mut events = Events::new(response);
    let endpoint = events.next().await.expect("an endpoint event");
    assert_eq!(endpoint.name, "endpoint");
    (events, endpoint.data)
}
