//! generate_image_and_wait and the tasks extension against slow simulator jobs: progress in
//! order, cancellation while queued and while running, the deadline handle, the poll schedule.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::common::*;
use rmcp::{
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities, ClientConfig,
        ClientRequest, GetTaskParams, Implementation, ProgressNotificationParam, Request, ServerResult,
    },
    service::{NotificationContext, PeerRequestOptions, RunningService},
    ClientHandler, RoleClient,
};
use runcomfy_mcp::jobs::Backoff;
use serde_json::{json, Value};

/// A client that records every progress notification it receives.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(&self, params: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(params);
    }
}

async fn spawn_binary<H: ClientHandler>(handler: H, base_url: &str, extra: &[&str]) -> RunningService<RoleClient, H> {
    start_stdio(handler, Bin::serve().args(extra).upstream(base_url))
        .await
        .client
}

/// Like `spawn_binary`, with the server's stderr (at info level) kept for inspection.
async fn spawn_binary_with_log(base_url: &str) -> StdioServer<Recorder> {
    // At least info for runcomfy_mcp (the cancel outcome is an info line); more when the suite
    // asks for it (the secret scan runs everything at trace level).
    let level = match std::env::var("RUST_LOG").as_deref() {
        Ok(more @ ("trace" | "debug")) => more.to_owned(),
        _ => "runcomfy_mcp=info".to_owned(),
    };
    let bin = Bin::serve()
        .args(["--poll-first-ms", "50"])
        .upstream(base_url)
        .env("RUST_LOG", level);
    start_stdio(Recorder::default(), bin).await
}

fn wait_call(arguments: Value) -> ClientRequest {
    ClientRequest::CallToolRequest(Request::new(
        CallToolRequestParams::new("generate_image_and_wait").with_arguments(args(arguments)),
    ))
}

fn tool_result(response: ServerResult) -> CallToolResult {
    match response {
        ServerResult::CallToolResult(r) => r,
        other => panic!("expected a tool result, got {other:?}"),
    }
}

const FAST_POLL: [&str; 4] = ["--poll-first-ms", "50", "--poll-max-ms", "200"];

#[tokio::test]
async fn progress_arrives_in_order_with_meaningful_messages() {
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        initial_queue_position: 3,
        queue_step_ms: 300,
        run_ms: 600,
        ..fast_config()
    })
    .await;
    let recorder = Recorder::default();
    let client = spawn_binary(recorder.clone(), &sim.base_url(), &FAST_POLL).await;
    let handle = client
        .send_cancellable_request(
            wait_call(json!({"prompt": "a slow cat", "size": "1024x1024"})),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let result = tool_result(handle.await_response().await.unwrap());
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let out = structured(&result);
    assert_eq!(out["status"], "succeeded");
    assert_eq!(out["images"].as_array().unwrap().len(), 1);

    let progress = recorder.progress.lock().unwrap().clone();
    let messages: Vec<String> = progress.iter().map(|p| p.message.clone().unwrap_or_default()).collect();
    assert!(
        progress.windows(2).all(|w| w[0].progress < w[1].progress),
        "progress must increase: {progress:?}"
    );
    let id = out["request_id"].as_str().unwrap();
    assert!(
        messages[0].contains("Submitted") && messages[0].contains(id),
        "{messages:?}"
    );
    let first = |needle: &str| messages.iter().position(|m| m.contains(needle));
    let (queued, generating, finished) = (first("Queued at position"), first("Generating"), first("Finished"));
    assert!(
        queued.is_some() && generating.is_some() && finished.is_some(),
        "{messages:?}"
    );
    assert!(
        queued < generating && generating < finished,
        "phases out of order: {messages:?}"
    );
    // The queue position falls as the job moves up.
    let positions: Vec<u32> = messages
        .iter()
        .filter_map(|m| m.split("Queued at position ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] >= w[1]) && positions.len() >= 2,
        "{messages:?}"
    );
}

#[tokio::test]
async fn cancelling_a_queued_wait_cancels_the_job() {
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        initial_queue_position: 100,
        queue_step_ms: 1000,
        ..fast_config()
    })
    .await;
    let client = spawn_binary(Recorder::default(), &sim.base_url(), &FAST_POLL).await;
    let handle = client
        .send_cancellable_request(
            wait_call(json!({"prompt": "never mind"})),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let id = Control::new(&sim).nth_job(1).await;
    handle.cancel(Some("user changed their mind".into())).await.unwrap();
    let control = Control::new(&sim);
    eventually(
        async || {
            let status = control.job(&id).await["status"].as_str().unwrap().to_owned();
            if status == "cancelled" {
                Ok(())
            } else {
                Err(status)
            }
        },
        "the job to be cancelled",
    )
    .await;
    assert_eq!(sim.stats().cancel_calls, 1);
}

#[tokio::test]
async fn cancelling_a_running_wait_leaves_the_job_running() {
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        initial_queue_position: 0,
        run_ms: 60_000,
        ..fast_config()
    })
    .await;
    let StdioServer {
        client, stderr: log, ..
    } = spawn_binary_with_log(&sim.base_url()).await;
    let handle = client
        .send_cancellable_request(
            wait_call(json!({"prompt": "too late"})),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let id = Control::new(&sim).nth_job(1).await;
    handle.cancel(None).await.unwrap();
    // The server asks RunComfy to cancel; RunComfy answers not_cancellable and the job runs on.
    eventually(
        async || match sim.stats().cancel_calls {
            0 => Err(0),
            _ => Ok(()),
        },
        "the server to ask RunComfy to cancel",
    )
    .await;
    assert_eq!(Control::new(&sim).job(&id).await["status"], "in_progress");
    log.line(|l| l.contains("NotCancellable"), "the outcome to be logged")
        .await;
    // The server keeps serving after the cancelled call.
    let result = call_on(&client, "cancel_request", json!({"request_id": id})).await;
    assert_eq!(structured(&result)["outcome"], "not_cancellable");
}

#[tokio::test]
async fn a_deadline_returns_the_handle_and_get_result_collects_later() {
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        initial_queue_position: 1,
        queue_step_ms: 1000,
        run_ms: 1500,
        ..fast_config()
    })
    .await;
    let client = spawn_binary(Recorder::default(), &sim.base_url(), &FAST_POLL).await;
    let result = call_on(
        &client,
        "generate_image_and_wait",
        json!({"prompt": "patience", "max_wait_seconds": 1}),
    )
    .await;
    assert_ne!(
        result.is_error,
        Some(true),
        "a deadline is not an error: {}",
        text(&result)
    );
    let out = structured(&result).clone();
    assert_eq!(out["finished"], false);
    assert!(out["images"].as_array().unwrap().is_empty());
    let id = out["request_id"].as_str().unwrap().to_owned();
    assert!(
        out["next_step"]
            .as_str()
            .unwrap()
            .contains(&format!("get_result with request_id \"{id}\"")),
        "{out}"
    );

    eventually(
        async || {
            let r = call_on(&client, "get_result", json!({"request_id": id})).await;
            match structured(&r)["images"].as_array().map(|a| a.len()).unwrap_or(0) {
                1 => Ok(()),
                n => Err(format!("{n} images")),
            }
        },
        "get_result to collect the one image",
    )
    .await;
}

#[tokio::test]
async fn polling_follows_the_backoff_schedule() {
    // A job of 2 s in all; polls every 50 ms at first, growing by half to at most 400 ms.
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        initial_queue_position: 2,
        queue_step_ms: 500,
        run_ms: 1000,
        ..fast_config()
    })
    .await;
    let client = spawn_binary(
        Recorder::default(),
        &sim.base_url(),
        &["--poll-first-ms", "50", "--poll-max-ms", "400"],
    )
    .await;
    let started = std::time::Instant::now();
    let result = call_on(&client, "generate_image_and_wait", json!({"prompt": "count my polls"})).await;
    let elapsed = started.elapsed();
    assert_eq!(structured(&result)["status"], "succeeded");
    // Status polls while queued, result polls once it runs (the last one is the result itself).
    let stats = sim.stats();
    let polls = (stats.status_calls + stats.result_calls) as usize;
    let schedule = Backoff {
        first: Duration::from_millis(50),
        factor: 1.5,
        max: Duration::from_millis(400),
    };
    let most = schedule.polls_within(elapsed);
    // At least one poll per phase change; never more than the schedule allows in the time taken.
    assert!(
        polls >= 3 && polls <= most,
        "{polls} polls in {elapsed:?}; the schedule allows {most}"
    );
}

#[tokio::test]
async fn a_running_job_is_polled_through_its_result_and_answered_from_it() {
    // Running from the start: one status poll (nothing is known of the job yet), then `/result`,
    // which answers the current status until the job is done and then carries its outputs, so
    // that the end is seen and the outputs known in one round trip.
    let sim = simulator(runcomfy_mcp::simulator::SimConfig {
        initial_queue_position: 0,
        run_ms: 1500,
        ..fast_config()
    })
    .await;
    let client = spawn_binary(
        Recorder::default(),
        &sim.base_url(),
        &["--poll-first-ms", "50", "--poll-max-ms", "400"],
    )
    .await;
    let result = call_on(&client, "generate_image_and_wait", json!({"prompt": "poll my result"})).await;
    assert_eq!(structured(&result)["status"], "succeeded", "{}", text(&result));
    assert_eq!(structured(&result)["images"].as_array().unwrap().len(), 1);
    let stats = sim.stats();
    assert_eq!(stats.status_calls, 1, "{stats:?}");
    assert!(stats.result_calls >= 2, "polled while running, then done: {stats:?}");
    assert_eq!(stats.image_calls, 1, "{stats:?}");
}

#[tokio::test]
async fn tasks_run_to_completion_and_cancel_upstream() {
    let sim = simulator(fast_config()).await;
    let info = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks-test", "0"),
    );
    let client = spawn_binary(info, &sim.base_url(), &FAST_POLL).await;

    let created = match client
        .call_tool_once(CallToolRequestParams::new("generate_image").with_arguments(args(json!({"prompt": "a task"}))))
        .await
        .unwrap()
    {
        CallToolResponse::Task(created) => created,
        other => panic!("expected a task, got {other:?}"),
    };
    let result = completed_task(&client, &created.task.task_id).await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert_eq!(structured(&result)["status"], "succeeded");
    assert_eq!(structured(&result)["images"].as_array().unwrap().len(), 1);

    // A cancelled task cancels the queued upstream job.
    Control::new(&sim)
        .config(json!({"initial_queue_position": 100, "queue_step_ms": 1000}))
        .await;
    let created = match client
        .call_tool_once(
            CallToolRequestParams::new("generate_image_and_wait").with_arguments(args(json!({"prompt": "cancel me"}))),
        )
        .await
        .unwrap()
    {
        CallToolResponse::Task(created) => created,
        other => panic!("expected a task, got {other:?}"),
    };
    let id = Control::new(&sim).nth_job(2).await;
    client
        .peer()
        .cancel_task(CancelTaskParams::new(created.task.task_id.clone()))
        .await
        .unwrap();
    let control = Control::new(&sim);
    eventually(
        async || {
            let status = control.job(&id).await["status"].as_str().unwrap().to_owned();
            if status == "cancelled" {
                Ok(())
            } else {
                Err(status)
            }
        },
        "the upstream job to be cancelled",
    )
    .await;
    let task = client
        .peer()
        .get_task(GetTaskParams::new(created.task.task_id.clone()))
        .await
        .unwrap()
        .task;
    assert!(task.status().is_terminal(), "{task:?}");

    // Invalid arguments are refused at once, not turned into a task.
    match client
        .call_tool_once(CallToolRequestParams::new("generate_image").with_arguments(args(json!({"prompt": ""}))))
        .await
        .unwrap()
    {
        CallToolResponse::Complete(r) => assert_eq!(r.is_error, Some(true)),
        other => panic!("expected an error result, got {other:?}"),
    }
}

async fn call_on<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap()
}
