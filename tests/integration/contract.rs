//! The contract with RunComfy as it publishes itself (`tests/fixtures/runcomfy/`, each file's
//! source in its README): the client's public wire types parse every published example, and the
//! simulator answers the same calls in the same shape (the same keys, values of the same JSON
//! types). Without this the simulator and the client, written from the same beliefs, agree with
//! each other and with nothing else.

use std::{collections::BTreeMap, path::PathBuf};

use crate::common::*;
use runcomfy_mcp::runcomfy::{
    ApiError, BalanceResponse, CancelOutcome, CancelResponse, JobStatus, ModelInfo, ModelPage, Output, ResultResponse,
    StatusResponse, SubmitResponse,
};
use runcomfy_mcp::simulator::SimConfig;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runcomfy")
}

/// Every fixture, by file name.
fn fixtures() -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            all.insert(path.file_name().unwrap().to_string_lossy().into_owned(), value);
        }
    }
    all
}

fn fixture(name: &str) -> Value {
    fixtures().remove(name).unwrap_or_else(|| panic!("no fixture {name}"))
}

fn parse<T: DeserializeOwned>(name: &str, value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// The client reads every published example, and reads it right: each fixture is parsed by the
/// wire type of its call, and what matters in it comes out.
#[test]
fn the_client_parses_every_published_answer() {
    let all = fixtures();
    assert!(all.len() >= 15, "fixtures missing: {:?}", all.keys());
    let mut unread = Vec::new();
    for (name, value) in &all {
        let call = name.split('.').next().unwrap();
        match call {
            "submit" => assert!(!parse::<SubmitResponse>(name, value).request_id.is_empty()),
            "status" => {
                let status: StatusResponse = parse(name, value);
                assert!(
                    !matches!(status.status, JobStatus::Unknown(_)),
                    "{name}: {:?}",
                    status.status
                );
                if status.status == JobStatus::InQueue {
                    assert_eq!(
                        status.queue_position,
                        value["queue_position"].as_u64().map(|p| p as u32)
                    );
                }
            }
            "result" => {
                let result: ResultResponse = parse(name, value);
                assert!(!matches!(result.status, JobStatus::Unknown(_)), "{name}");
                if let Some(images) = value["output"]["images"].as_array() {
                    let output = result.output.expect("the output is read");
                    assert_eq!(output.images.len(), images.len(), "{name}");
                }
            }
            "cancel" => {
                let cancel: CancelResponse = parse(name, value);
                let expected = match value["outcome"].as_str() {
                    Some("cancelled") => CancelOutcome::Cancelled,
                    _ => CancelOutcome::NotCancellable,
                };
                assert_eq!(cancel.outcome, Some(expected), "{name}");
            }
            "balance" => {
                let balance: BalanceResponse = parse(name, value);
                assert_eq!(balance.usd(), value["balance_usd"].as_f64(), "{name}");
                assert_eq!(
                    balance.balance_microdollars.map(|m| m as f64 / 1e6),
                    value["balance_usd"].as_f64()
                );
            }
            "error" => {
                let body = serde_json::to_vec(value).unwrap();
                let status = if value["error_code"] == 400002 { 402 } else { 422 };
                let error = ApiError::from_answer(status, None, &body).expect("an error");
                let kind = if status == 402 {
                    "insufficient_balance"
                } else {
                    "validation"
                };
                assert_eq!(error.kind(), kind, "{name}: {error}");
            }
            "model" => {
                let info: ModelInfo = parse(name, value);
                assert_eq!(info.base_price_usd, value["base_price_usd"].as_f64(), "{name}");
                assert_eq!(info.price_unit.as_deref(), value["price_unit"].as_str(), "{name}");
            }
            "models" => {
                let page: ModelPage = parse(name, value);
                // Every entry kept: none unreadable.
                assert_eq!(
                    page.models.kept.len(),
                    value["models"].as_array().unwrap().len(),
                    "{name}"
                );
                assert_eq!(page.models.unreadable, 0, "{name}");
            }
            "input_schema" => {
                // The published schema, as a catalogue entry carries it.
                let entry = json!({"model_id": "bytedance/dreamina-4-0/text-to-image", "input_schema": value});
                let info: ModelInfo = parse(name, &entry);
                assert!(info.input_schema.is_some(), "{name}");
            }
            "output_schema" => {
                // An answer with a URL under every key the model's Output schema declares: the
                // client reads each one.
                let mut output = serde_json::Map::new();
                for (key, property) in value["output"]["properties"].as_object().unwrap() {
                    let url = format!("https://example.invalid/{key}.bin");
                    output.insert(
                        key.clone(),
                        if property["type"] == "array" {
                            json!([url])
                        } else {
                            json!(url)
                        },
                    );
                }
                let output: Output = parse(name, &Value::Object(output.clone()));
                let read = output.image.iter().count()
                    + output.images.len()
                    + output.video.iter().count()
                    + output.videos.len();
                assert_eq!(read, value["output"]["properties"].as_object().unwrap().len(), "{name}");
            }
            _ => unread.push(name.clone()),
        }
    }
    assert!(unread.is_empty(), "fixtures no test reads: {unread:?}");
}

/// Where `actual` differs in shape from `expected`: keys missing or extra, values of another JSON
/// type. Arrays are compared by their first items. `ignore`: keys whose presence is free (texts
/// for people, such as a schema's `title`).
fn shape_diff(expected: &Value, actual: &Value, path: &str, ignore: &[&str], out: &mut Vec<String>) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                match a.get(key) {
                    Some(other) => shape_diff(value, other, &format!("{path}.{key}"), ignore, out),
                    None if ignore.contains(&key.as_str()) => {}
                    None => out.push(format!("{path}.{key}: missing")),
                }
            }
            for key in a
                .keys()
                .filter(|k| !e.contains_key(*k) && !ignore.contains(&k.as_str()))
            {
                out.push(format!("{path}.{key}: not in the published answer"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e), Some(a)) = (e.first(), a.first()) {
                shape_diff(e, a, &format!("{path}[0]"), ignore, out);
            }
        }
        (e, a) if kind(e) != kind(a) => out.push(format!("{path}: {} where {} was published", kind(a), kind(e))),
        _ => {}
    }
}

fn assert_same_shape(fixture_name: &str, actual: &Value, ignore: &[&str]) {
    let mut diff = Vec::new();
    shape_diff(&fixture(fixture_name), actual, "", ignore, &mut diff);
    assert!(
        diff.is_empty(),
        "the simulator's answer differs from {fixture_name}: {diff:?}\nsimulator: {actual}"
    );
}

/// The simulator's API over plain HTTP, with the tests' token.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn submit(&self, body: Value) -> (u16, Value) {
        let path = "/v1/models/bytedance/dreamina-4-0/text-to-image";
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn cancel(&self, id: &str) -> Value {
        let (status, body) = self
            .send(reqwest::Method::POST, &format!("/v1/requests/{id}/cancel"), None)
            .await;
        assert!((200..300).contains(&status), "{body}");
        body
    }

    /// Submits a job and waits until its status is `status`.
    async fn job_in(&self, status: &str) -> (String, Value, Value) {
        let (code, submitted) = self
            .submit(json!({"prompt": "a lighthouse", "force_single": true}))
            .await;
        assert_eq!(code, 200, "{submitted}");
        let id = submitted["request_id"].as_str().unwrap().to_owned();
        let seen = eventually(
            async || {
                let seen = self.get(&format!("/v1/requests/{id}/status")).await;
                if seen["status"] == status {
                    Ok(seen)
                } else {
                    Err(seen)
                }
            },
            &format!("the job to be {status}"),
        )
        .await;
        (id, submitted, seen)
    }
}

/// The simulator answers every call in the shape RunComfy publishes for it.
#[tokio::test]
async fn the_simulator_answers_in_the_published_shapes() {
    let sim = simulator(SimConfig {
        required_token: Some(TOKEN.to_owned()),
        ..fast_config()
    })
    .await;
    let control = Control::new(&sim);
    let api = Api {
        base: sim.base_url(),
        http: reqwest::Client::new(),
    };

    // A job held in the queue: submit, status, result and cancel as RunComfy answers them.
    control
        .config(json!({"initial_queue_position": 3, "queue_step_ms": 600_000}))
        .await;
    let (queued, submitted, status) = api.job_in("in_queue").await;
    assert_same_shape("submit.json", &submitted, &[]);
    assert_same_shape("status.in_queue.json", &status, &[]);
    assert_same_shape("cancel.cancelled.json", &api.cancel(&queued).await, &[]);

    // A job running: its status, its result so far, and a cancel that comes too late.
    control
        .config(json!({"initial_queue_position": 0, "run_ms": 600_000}))
        .await;
    let (running, _, status) = api.job_in("in_progress").await;
    assert_same_shape("status.in_progress.json", &status, &[]);
    let result = api.get(&format!("/v1/requests/{running}/result")).await;
    assert_same_shape("result.in_progress.json", &result, &[]);
    assert_same_shape("cancel.not_cancellable.json", &api.cancel(&running).await, &[]);

    // A job done: its status and its result.
    control.config(json!({"initial_queue_position": 0, "run_ms": 50})).await;
    let (done, _, status) = api.job_in("completed").await;
    assert_same_shape("status.completed.json", &status, &[]);
    let result = api.get(&format!("/v1/requests/{done}/result")).await;
    assert_same_shape("result.succeeded.json", &result, &[]);

    // The catalogue: an entry, a page, and the schema's keys (texts for people aside).
    let entry = api.get("/v1/models/bytedance/dreamina-4-0/text-to-image").await;
    assert_same_shape(
        "model.dreamina-4-0.text-to-image.json",
        &entry,
        &["title", "description"],
    );
    let page = api.get("/v1/models?include_schema=true&limit=1&offset=0").await;
    let mut one = page.clone();
    // The page's shape and an entry's fields; each model's own schema is its own.
    one["models"][0]["input_schema"] = json!({});
    let mut published = fixture("models.page.json");
    published["models"][0]["input_schema"] = json!({});
    let mut diff = Vec::new();
    shape_diff(&published, &one, "", &[], &mut diff);
    assert!(diff.is_empty(), "the catalogue page differs: {diff:?}\n{page}");

    // The balance.
    assert_same_shape("balance.json", &api.get("/prod/v2/balance").await, &[]);

    // Errors: a submit the balance cannot pay, and one with a bad input.
    control.config(json!({"balance_usd": 0.0})).await;
    let (code, refused) = api.submit(json!({"prompt": "unpaid", "force_single": true})).await;
    assert_eq!(code, 402, "{refused}");
    assert_same_shape("error.insufficient_balance.json", &refused, &[]);
    control.config(json!({"balance_usd": null})).await;
    let (code, invalid) = api.submit(json!({"prompt": "", "scale": 7})).await;
    assert_eq!(code, 422, "{invalid}");
    let mut diff = Vec::new();
    // The detail's items are the simulator's own (their published shape is not known).
    let mut published = fixture("error.validation.json");
    published["detail"] = json!([]);
    shape_diff(&published, &invalid, "", &[], &mut diff);
    assert!(diff.is_empty(), "the validation error differs: {diff:?}\n{invalid}");
}

/// `scripts/live-check`, the maintainers' run against the real API, as far as CI may run it.
fn live_check(args: &[&str]) -> std::process::Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/live-check");
    let mut command = std::process::Command::new("python3");
    command.arg(script).args(args);
    // No key and no address from the shell running the tests: nothing here may reach RunComfy.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RUNCOMFY_") {
            command.env_remove(name);
        }
    }
    command.output().expect("python3 runs the script")
}

/// `--dry-run` shows the plan and the cap with no key and sends nothing.
#[test]
fn the_live_check_dry_run_shows_the_plan_without_a_key() {
    let output = live_check(&["--dry-run", "--max-usd"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for part in [
        "text-to-image",
        "1024x1024(1:1)",
        "force_single: true",
        "edit by reference",
        "edit of a local file",
        "cancel while queued",
        "/prod/v2/balance",
        "Spending cap: $0.20",
        "Dry run: nothing was sent.",
    ] {
        assert!(printed.contains(part), "{part:?} not in {printed}");
    }
}

/// A live run does not start without a cap, whatever else is given.
#[test]
fn the_live_check_refuses_to_start_without_a_cap() {
    let output = live_check(&[]);
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("refusing to start without --max-usd"), "{said}");
    assert!(output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stdout));
}
