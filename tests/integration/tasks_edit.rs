//! The tasks path with reference images and a batch: a task edits as the tools do and settles
//! with every job's images; a bad reference is answered at once, with no task and no submit.

use rmcp::{
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
        JsonObject,
    },
    service::RunningService,
    transport::{ConfigureCommandExt, TokioChildProcess},
    RoleClient, ServiceExt,
};
use runcomfy_mcp::simulator::{SimConfig, Simulator};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_runcomfy-mcp");

async fn tasks_client(base_url: &str) -> RunningService<RoleClient, ClientConfig> {
    let base_url = base_url.to_owned();
    let command = tokio::process::Command::new(BIN).configure(move |cmd| {
        cmd.args(["serve", "--poll-first-ms", "50", "--poll-max-ms", "200"])
            .env("RUNCOMFY_API_KEY", "tasks-edit-token")
            .env("RUNCOMFY_BASE_URL", &base_url)
            .env("RUNCOMFY_NO_JOURNAL", "true")
            .env_remove("RUNCOMFY_INPUT_DIRS")
            .env("RUST_LOG", "warn");
    });
    let info = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks-edit-test", "0"),
    );
    info.serve(TokioChildProcess::new(command).unwrap()).await.unwrap()
}

fn arguments(value: Value) -> JsonObject {
    value.as_object().unwrap().clone()
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_task_edits_a_batch_and_a_bad_reference_gets_no_task() {
    let config = SimConfig {
        initial_queue_position: 1,
        queue_step_ms: 100,
        run_ms: 100,
        ..SimConfig::default()
    };
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let client = tasks_client(&sim.base_url()).await;

    let url = "https://images.invalid/ref.png";
    let call = CallToolRequestParams::new("generate_image").with_arguments(arguments(
        json!({"prompt": "two versions", "images": [url], "count": 2, "size": "1024x1024"}),
    ));
    let CallToolResponse::Task(created) = client.call_tool_once(call).await.unwrap() else {
        panic!("expected a task");
    };
    let result = crate::common::completed_task(&client, &created.task.task_id).await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let done = result.structured_content.unwrap();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(done["images"].as_array().unwrap().len(), 2);
    assert_eq!(done["made_with"]["images"], json!([url]));
    // Each job's cost as the simulator reports it (one image at $0.03), and the estimate made
    // before: one reference leaves room for 14 images in a set.
    let cost = |v: &Value| (v.as_f64().unwrap() * 1e6).round() / 1e6;
    assert_eq!(cost(&done["cost_usd"]), 0.06, "{done}");
    assert_eq!(cost(&done["jobs"][1]["cost_usd"]), 0.03, "{done}");
    assert_eq!(done["estimated_cost_usd"]["units_per_job"], json!([1, 14]));
    assert_eq!(cost(&done["estimated_cost_usd"]["max_usd"]), 0.84);
    let http = reqwest::Client::new();
    for id in done["request_ids"].as_array().unwrap() {
        let job: Value = http
            .get(format!("{}/__sim/jobs/{}", sim.base_url(), id.as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(job["request"]["image_urls"], json!([url]), "passed through unchanged");
    }

    let submits = sim.stats().submissions;
    let bad = CallToolRequestParams::new("generate_image_and_wait")
        .with_arguments(arguments(json!({"prompt": "x", "images": ["/etc/hostname"]})));
    match client.call_tool_once(bad).await.unwrap() {
        CallToolResponse::Complete(r) => {
            assert_eq!(r.is_error, Some(true));
            assert!(
                text(&r).contains("`images[0]`") && text(&r).contains("--input-dir"),
                "{}",
                text(&r)
            );
        }
        other => panic!("expected an error result, got {other:?}"),
    }
    assert_eq!(sim.stats().submissions, submits, "nothing submitted");
    client.cancel().await.unwrap();
}

/// run_model as a task: the input is checked before a task is made, and a good one runs to the
/// same answer as the waiting call.
#[tokio::test]
async fn run_model_runs_as_a_task_and_a_bad_input_gets_no_task() {
    let config = SimConfig {
        initial_queue_position: 1,
        queue_step_ms: 100,
        run_ms: 100,
        ..SimConfig::default()
    };
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let client = tasks_client(&sim.base_url()).await;
    let model = "bytedance/dreamina-4-0/text-to-image";

    let bad = CallToolRequestParams::new("run_model").with_arguments(arguments(
        json!({"model_id": model, "input": {"prompt": "x", "force_single": "yes"}}),
    ));
    let CallToolResponse::Complete(refused) = client.call_tool_once(bad).await.unwrap() else {
        panic!("a bad input must not become a task");
    };
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains("input.force_single"), "{}", text(&refused));

    let good = CallToolRequestParams::new("run_model").with_arguments(arguments(
        json!({"model_id": model, "input": {"prompt": "a fox", "force_single": true}}),
    ));
    let CallToolResponse::Task(created) = client.call_tool_once(good).await.unwrap() else {
        panic!("expected a task");
    };
    let result = crate::common::completed_task(&client, &created.task.task_id).await;
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    let done = result.structured_content.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["images"].as_array().unwrap().len(), 1, "{done}");
    // Dreamina's own estimate, whichever tool started it: force_single makes exactly one image.
    assert_eq!(done["estimated_cost_usd"]["unit"], "image", "{done}");
    assert_eq!(done["estimated_cost_usd"]["units_per_job"], json!([1, 1]), "{done}");
    client.cancel().await.unwrap();
}
