//! An upstream result that lists tens of thousands of outputs: a bounded answer and a bounded
//! number of downloads in every path — get_result, generate_image_and_wait, a task, list_jobs
//! and the CLI. At most 16 outputs are downloaded, 64 listed, the rest counted, and an answer
//! stays under 256 KB besides its (capped) previews.

use crate::common::*;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
};
use runcomfy_mcp::media::{MAX_LISTED, MAX_PROCESSED};
use serde_json::{json, Value};

const OUTPUTS: usize = 20_000;
const ANSWER_BYTES: usize = 256 * 1024;

/// Every result answer with outputs lists 20,000: the waiting paths poll `/result` while the job
/// runs (answers without outputs, which pass unchanged but use up a rule's `times`).
fn many_outputs() -> Value {
    json!({"endpoint": "result", "kind": "many_outputs", "count": OUTPUTS, "times": 1000})
}

/// The answer's size as JSON, with the inline images' data left out (they have their own cap).
fn size_without_images(result: &CallToolResult) -> usize {
    let mut value = serde_json::to_value(result).unwrap();
    for block in value["content"].as_array_mut().unwrap() {
        if block["type"] == "image" {
            block["data"] = json!("");
        }
    }
    value.to_string().len()
}

/// What every path must show for a 20,000-output result.
fn assert_bounded(result: &CallToolResult, what: &str) {
    assert!(!is_error(result), "{what}: {}", text(result));
    let size = size_without_images(result);
    assert!(size < ANSWER_BYTES, "{what}: the answer is {size} bytes");
    // Previews: one per downloaded image at most, four previews' worth of bytes in all.
    let previews: Vec<usize> = result
        .content
        .iter()
        .filter_map(|c| c.as_image())
        .map(|i| i.data.len())
        .collect();
    assert!(
        previews.len() <= MAX_PROCESSED,
        "{what}: {} inline images",
        previews.len()
    );
    let base64: usize = previews.iter().sum();
    assert!(
        base64 <= 4 * (150 * 1024 * 4usize).div_ceil(3),
        "{what}: {base64} bytes of previews"
    );
    let links = result.content.iter().filter(|c| c.as_resource_link().is_some()).count();
    assert_eq!(links, MAX_LISTED, "{what}: a link per listed output");
    let all = text(result);
    assert!(all.contains("and 19,936 more"), "{what}: {all:.600}");
    assert!(
        all.contains(&format!("Only the first {MAX_PROCESSED} images")),
        "{what}: {all:.600}"
    );
    let structured = structured(result);
    assert_eq!(structured["images"].as_array().unwrap().len(), MAX_LISTED, "{what}");
    assert_eq!(structured["outputs"].as_array().unwrap().len(), MAX_LISTED, "{what}");
    assert_eq!(structured["unlisted_outputs"], OUTPUTS - MAX_LISTED, "{what}");
    // The first 16 are downloaded and described; the rest listed by URL only.
    let outputs = structured["outputs"].as_array().unwrap();
    assert!(outputs[..MAX_PROCESSED].iter().all(|o| o["bytes"].is_u64()), "{what}");
    assert!(
        outputs[MAX_PROCESSED..].iter().all(|o| o.get("bytes").is_none()),
        "{what}"
    );
}

#[tokio::test]
async fn get_result_and_list_jobs_stay_bounded() {
    let sim = simulator(fast_config()).await;
    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let client = connect(
        &sim.base_url(),
        &[
            ("RUNCOMFY_OUTPUT_DIR", out.path().to_str().unwrap()),
            ("RUNCOMFY_NO_JOURNAL", "false"),
            ("RUNCOMFY_STATE_DIR", state.path().to_str().unwrap()),
        ],
    )
    .await;
    let id = submit(
        &client,
        json!({"prompt": "many", "size": "1024x1024", "force_single": true}),
    )
    .await;
    poll_until_finished(&client, &id).await;
    Control::new(&sim).fault(many_outputs()).await;
    let result = call(&client, "get_result", json!({"request_id": id})).await;
    assert_bounded(&result, "get_result");
    assert_eq!(sim.stats().image_calls, MAX_PROCESSED as u64, "downloads");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        MAX_PROCESSED,
        "saved files"
    );

    // The journal keeps only what an answer can list, and list_jobs stays small.
    let listed = call(&client, "list_jobs", json!({})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    assert!(size_without_images(&listed) < ANSWER_BYTES);
    let job = &structured(&listed)["jobs"][0];
    assert_eq!(
        job["images"].as_array().unwrap().len(),
        MAX_LISTED - MAX_PROCESSED,
        "{job:.300}"
    );
    assert!(job["unlisted"].as_u64().unwrap() > 0, "{job:.300}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_waiting_tool_and_a_task_stay_bounded() {
    let sim = simulator(fast_config()).await;
    let control = Control::new(&sim);
    let client = connect(&sim.base_url(), &[("RUNCOMFY_POLL_FIRST_MS", "50")]).await;
    control.fault(many_outputs()).await;
    let result = call(
        &client,
        "generate_image_and_wait",
        json!({"prompt": "many", "size": "1024x1024", "force_single": true}),
    )
    .await;
    assert_bounded(&result, "generate_image_and_wait");
    assert_eq!(sim.stats().image_calls, MAX_PROCESSED as u64);
    client.cancel().await.unwrap();

    let info = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks-test", "0"),
    );
    let tasks = connect_with(info, &sim.base_url(), &[("RUNCOMFY_POLL_FIRST_MS", "50")]).await;
    control.fault(many_outputs()).await;
    let created = match tasks
        .call_tool_once(
            CallToolRequestParams::new("generate_image_and_wait").with_arguments(args(
                json!({"prompt": "many", "size": "1024x1024", "force_single": true}),
            )),
        )
        .await
        .unwrap()
    {
        CallToolResponse::Task(created) => created,
        other => panic!("expected a task, got {other:?}"),
    };
    let result = completed_task(&tasks, &created.task.task_id).await;
    assert_bounded(&result, "task");
    assert_eq!(sim.stats().image_calls, 2 * MAX_PROCESSED as u64);
    tasks.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_saves_a_bounded_number_and_says_how_many_it_left() {
    let sim = simulator(fast_config()).await;
    Control::new(&sim).fault(many_outputs()).await;
    let out = tempfile::tempdir().unwrap();
    let (base, dir) = (sim.base_url(), out.path().to_owned());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["generate", "many", "--size", "1024x1024", "--force-single"])
            .args(["--poll-first-ms", "50", "--out"])
            .arg(&dir)
            .env("RUNCOMFY_NO_JOURNAL", "true")
            // What the CLI itself says is measured: no log lines (scripts/test exports trace).
            .env("RUST_LOG", "warn")
            .env("RUNCOMFY_API_KEY", TOKEN)
            .env("RUNCOMFY_BASE_URL", base)
            .env_remove("RUNCOMFY_SIMULATE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), MAX_PROCESSED, "one saved path per line");
    assert!(stderr.contains("19,984 more outputs not saved"), "{stderr}");
    assert!(stderr.len() < 4096, "{} bytes on stderr", stderr.len());
    assert_eq!(sim.stats().image_calls, MAX_PROCESSED as u64);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), MAX_PROCESSED);
}

#[tokio::test]
async fn a_batch_is_bounded_per_job() {
    let sim = simulator(fast_config()).await;
    let control = Control::new(&sim);
    let out = tempfile::tempdir().unwrap();
    // Saved, not previewed: the downloads are what is counted, and decoding would only add time.
    let client = connect(
        &sim.base_url(),
        &[
            ("RUNCOMFY_POLL_FIRST_MS", "50"),
            ("RUNCOMFY_OUTPUT_DIR", out.path().to_str().unwrap()),
            ("RUNCOMFY_NO_PREVIEW", "true"),
        ],
    )
    .await;
    // Both jobs' results list 20,000 outputs.
    control.fault(many_outputs()).await;
    let result = call(
        &client,
        "generate_image_and_wait",
        json!({"prompt": "many", "size": "1024x1024", "force_single": true, "count": 2}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let size = size_without_images(&result);
    assert!(size < ANSWER_BYTES, "the answer is {size} bytes");
    assert_eq!(sim.stats().image_calls, 2 * MAX_PROCESSED as u64, "downloads");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        2 * MAX_PROCESSED,
        "saved files"
    );
    let links = result.content.iter().filter(|c| c.as_resource_link().is_some()).count();
    assert_eq!(links, 2 * MAX_LISTED, "a link per listed output");
    let structured = structured(&result);
    assert_eq!(structured["images"].as_array().unwrap().len(), 2 * MAX_LISTED);
    assert_eq!(structured["unlisted_outputs"], 2 * (OUTPUTS - MAX_LISTED));
    for job in structured["jobs"].as_array().unwrap() {
        assert_eq!(job["images"].as_array().unwrap().len(), MAX_LISTED, "{job:.300}");
        assert_eq!(job["unlisted_outputs"], OUTPUTS - MAX_LISTED, "{job:.300}");
    }
    let all = text(&result);
    assert!(all.contains("and 39,872 more not listed"), "{all:.600}");
    assert!(
        all.contains(&format!(
            "Only the first {MAX_PROCESSED} images of a result are downloaded and saved"
        )),
        "{all:.600}"
    );
    client.cancel().await.unwrap();
}
