//! Shared test helpers: a simulator on 127.0.0.1 per test, the real `runcomfy-mcp` binary started
//! over stdio against it, and an rmcp client driving it.
#![allow(dead_code)] // each test binary uses a different subset

mod eventually;
pub mod http;
mod journal_at;
pub mod pg;
pub mod proc;
mod server;

pub use eventually::{eventually, within};
#[allow(unused_imports)] // as below: not every test binary uses it
pub use journal_at::JournalAt;
#[allow(unused_imports)] // as with dead_code: not every test binary names every type
pub use server::{start_stdio, Bin, Output, StdioServer};

use std::net::SocketAddr;

use rmcp::{
    model::{CallToolRequestParams, CallToolResult, JsonObject},
    service::RunningService,
    RoleClient,
};
use runcomfy_mcp::simulator::{SimConfig, Simulator};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_runcomfy-mcp");
pub const TOKEN: &str = "test-token-5f3c9a";

/// Short timings so a whole job takes well under a second.
/// The files `generate` saved: it prints one path a line on stdout, and nothing else there.
pub fn saved_paths(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn fast_config() -> SimConfig {
    SimConfig {
        initial_queue_position: 2,
        queue_step_ms: 100,
        run_ms: 200,
        ..SimConfig::default()
    }
}

pub async fn simulator(config: SimConfig) -> Simulator {
    Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .expect("simulator starts")
}

pub type Client = RunningService<RoleClient, ()>;

/// Starts the binary over stdio pointed at `base_url`, with extra environment.
pub async fn connect(base_url: &str, env: &[(&str, &str)]) -> Client {
    connect_with((), base_url, env).await
}

/// Like [`connect`], with `handler` as the client (its `initialize` info, progress handling…).
pub async fn connect_with<H: rmcp::ClientHandler>(
    handler: H,
    base_url: &str,
    env: &[(&str, &str)],
) -> RunningService<RoleClient, H> {
    start_stdio(handler, Bin::serve().upstream(base_url).envs(env))
        .await
        .client
}

pub fn args(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, got {other}"),
    }
}

pub async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap_or_else(|e| panic!("{tool} call failed at the protocol level: {e}"))
}

pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn structured(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structuredContent in {}", text(result)))
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

pub async fn submit(client: &Client, arguments: Value) -> String {
    let result = call(client, "generate_image", arguments).await;
    assert!(!is_error(&result), "submit failed: {}", text(&result));
    structured(&result)["request_id"]
        .as_str()
        .expect("request_id")
        .to_owned()
}

/// Polls check_status until the job is finished; returns every status seen, in order.
pub async fn poll_until_finished(client: &Client, id: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    eventually(
        async || {
            let result = call(client, "check_status", serde_json::json!({ "request_id": id })).await;
            assert!(!is_error(&result), "check_status failed: {}", text(&result));
            let state = structured(&result).clone();
            let finished = state["finished"].as_bool().unwrap();
            seen.push(state.clone());
            if finished {
                Ok(())
            } else {
                Err(state)
            }
        },
        &format!("job {id} to finish"),
    )
    .await;
    seen
}

/// The simulator's control API, for faults and inspection.
pub struct Control {
    base: String,
    http: reqwest::Client,
}

impl Control {
    pub fn new(sim: &Simulator) -> Self {
        Self {
            base: sim.base_url(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn fault(&self, rule: Value) {
        let response = self
            .http
            .post(format!("{}/__sim/faults", self.base))
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "fault rule refused: {}",
            response.status()
        );
    }

    pub async fn job(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/__sim/jobs/{id}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every job the simulator holds, oldest first (`request_id` and `status`).
    pub async fn jobs(&self) -> Vec<Value> {
        let url = format!("{}/__sim/jobs", self.base);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The id of the simulator's `n`-th job (1-based), once it has been submitted.
    pub async fn nth_job(&self, n: usize) -> String {
        eventually(
            async || {
                let jobs = self.jobs().await;
                jobs.get(n - 1)
                    .and_then(|j| j["request_id"].as_str())
                    .map(str::to_owned)
                    .ok_or(jobs)
            },
            &format!("the simulator to see job {n}"),
        )
        .await
    }

    pub async fn config(&self, partial: Value) {
        let response = self
            .http
            .put(format!("{}/__sim/config", self.base))
            .json(&partial)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

/// Like [`connect`], but the client introduces itself with `client_name` at `initialize` (the
/// server adapts some results to known clients, e.g. `claude-code`).
pub async fn connect_as(
    base_url: &str,
    env: &[(&str, &str)],
    client_name: &str,
) -> RunningService<RoleClient, rmcp::model::ClientConfig> {
    let info = rmcp::model::ClientConfig::new(
        Default::default(),
        rmcp::model::Implementation::new(client_name, "1.0.0"),
    );
    connect_with(info, base_url, env).await
}

/// Waits for a task to end and returns its result; panics unless it completed.
pub async fn completed_task<H: rmcp::ClientHandler>(
    client: &RunningService<RoleClient, H>,
    task_id: &str,
) -> CallToolResult {
    let done = eventually(
        async || {
            let info = client
                .peer()
                .get_task(rmcp::model::GetTaskParams::new(task_id.to_owned()))
                .await
                .unwrap();
            if info.task.status().is_terminal() {
                Ok(info.task)
            } else {
                Err(info.task.status())
            }
        },
        "the task to end",
    )
    .await;
    match done.payload {
        rmcp::model::TaskPayload::Completed { result } => serde_json::from_value(Value::Object(result)).unwrap(),
        other => panic!("expected a completed task, got {other:?}"),
    }
}

/// The client info of a host that renders MCP Apps views: it declares the
/// `io.modelcontextprotocol/ui` extension with the app mime type.
pub fn app_host_config() -> rmcp::model::ClientConfig {
    let mut capabilities = rmcp::model::ClientCapabilities::default();
    let settings = serde_json::json!({ "mimeTypes": ["text/html;profile=mcp-app"] });
    capabilities.extensions = Some(
        [(
            "io.modelcontextprotocol/ui".to_owned(),
            settings.as_object().cloned().unwrap_or_default(),
        )]
        .into(),
    );
    rmcp::model::ClientConfig::new(capabilities, rmcp::model::Implementation::new("app-host-test", "1.0.0"))
}
