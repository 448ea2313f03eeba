//! The simulator, driven over HTTP the way the client and other tests will use it.

use std::time::{Duration, Instant};

use crate::common::eventually;

use reqwest::StatusCode;
use runcomfy_mcp::simulator::{SimConfig, Simulator};
use serde_json::{json, Value};

const MODEL: &str = "bytedance/dreamina-4-0/text-to-image";
const SIZE_KEY: &str = "width\u{00D7}height";

async fn start(config: SimConfig) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("simulator starts")
}

fn fast() -> SimConfig {
    SimConfig {
        initial_queue_position: 2,
        queue_step_ms: 50,
        run_ms: 100,
        ..SimConfig::default()
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(sim: &Simulator) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: sim.base_url(),
        }
    }

    async fn submit_raw(&self, model: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}/v1/models/{model}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn submit(&self, body: Value) -> (StatusCode, Value) {
        self.submit_raw(MODEL, Some("test-token"), body).await
    }

    /// Submits and returns the request id, asserting success.
    async fn submit_ok(&self, body: Value) -> String {
        let (status, answer) = self.submit(body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["request_id"].as_str().unwrap().to_string()
    }

    async fn call(&self, method: reqwest::Method, url: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, url)
            .bearer_auth("test-token")
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn status(&self, id: &str) -> (StatusCode, Value) {
        let url = format!("{}/v1/requests/{id}/status", self.base);
        self.call(reqwest::Method::GET, &url).await
    }

    async fn result(&self, id: &str) -> (StatusCode, Value) {
        let url = format!("{}/v1/requests/{id}/result", self.base);
        self.call(reqwest::Method::GET, &url).await
    }

    async fn cancel(&self, id: &str) -> (StatusCode, Value) {
        let url = format!("{}/v1/requests/{id}/cancel", self.base);
        self.call(reqwest::Method::POST, &url).await
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn add_fault(&self, rule: Value) {
        self.control(reqwest::Method::POST, "/__sim/faults", Some(rule)).await;
    }
}

/// Polls status every 10 ms (the `eventually` interval) until `done`, returning every answer seen.
async fn poll_until(api: &Api, id: &str, done: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    eventually(
        async || {
            let (code, answer) = api.status(id).await;
            assert_eq!(code, StatusCode::OK, "{answer}");
            let status = answer["status"].as_str().unwrap().to_string();
            seen.push(answer);
            if status == done {
                Ok(())
            } else {
                Err(status)
            }
        },
        &format!("job {id} to reach {done}"),
    )
    .await;
    seen
}

fn decode_png(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    (info.width, info.height)
}

fn answer_id(answer: &Value) -> String {
    answer["request_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn happy_path_queues_runs_completes_and_serves_png() {
    // Each queue position lasts 100 ms, so 10 ms polls see every one even on a busy machine.
    let sim = start(SimConfig {
        queue_step_ms: 100,
        ..fast()
    })
    .await;
    let api = Api::new(&sim);
    let (code, submitted) = api
        .submit(json!({"prompt": "a lighthouse", SIZE_KEY: "1024x1024(1:1)"}))
        .await;
    assert_eq!(code, StatusCode::OK);
    let id = submitted["request_id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "uuid: {id}");
    for what in ["status", "result", "cancel"] {
        assert_eq!(
            submitted[format!("{what}_url")],
            format!("{}/v1/requests/{id}/{what}", sim.base_url())
        );
    }

    let (_, early) = api.result(id).await;
    assert_eq!(early, json!({"request_id": id, "status": "in_queue"}));

    let seen = poll_until(&api, id, "completed").await;
    let mut phases: Vec<&str> = seen.iter().map(|s| s["status"].as_str().unwrap()).collect();
    phases.dedup();
    assert_eq!(phases, ["in_queue", "in_progress", "completed"]);
    let positions: Vec<u64> = seen.iter().filter_map(|s| s["queue_position"].as_u64()).collect();
    assert_eq!(positions.first(), Some(&2));
    assert!(positions.contains(&1), "{positions:?}");
    assert!(positions.windows(2).all(|w| w[0] >= w[1]), "{positions:?}");
    assert!(seen
        .iter()
        .filter(|s| s["status"] != "in_queue")
        .all(|s| s.get("queue_position").is_none()));

    let (code, result) = api.result(id).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(result["status"], "succeeded");
    let created = result["created_at"].as_str().unwrap();
    let finished = result["finished_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    assert!(finished > created, "{created} {finished}");
    let images = result["output"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    let url = images[0].as_str().unwrap();
    assert!(url.starts_with(&sim.base_url()), "{url}");

    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(decode_png(&bytes), (1024, 1024));

    let job = api
        .control(reqwest::Method::GET, &format!("/__sim/jobs/{id}"), None)
        .await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["request"]["prompt"], "a lighthouse");
    assert_eq!(job["status_calls"], seen.len() as u64);

    let stats = sim.stats();
    assert_eq!(stats.submissions, 1);
    assert_eq!(stats.status_calls, seen.len() as u64);
    assert_eq!(stats.result_calls, 2);
    assert_eq!(stats.image_calls, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn wide_size_and_several_images() {
    let sim = start(SimConfig {
        initial_queue_position: 0,
        run_ms: 0,
        images_per_job: 2,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let id = api
        .submit_ok(json!({"prompt": "panorama", SIZE_KEY: "6198x2656(21:9)"}))
        .await;
    let (_, result) = api.result(&id).await;
    let images = result["output"]["images"].as_array().unwrap().clone();
    assert_eq!(images.len(), 2);
    for url in &images {
        let bytes = reqwest::get(url.as_str().unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(decode_png(&bytes), (6198, 2656));
    }
    let missing = reqwest::get(format!("{}/files/{id}/2.png", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let single = api
        .submit_ok(json!({"prompt": "one please", "force_single": true}))
        .await;
    let (_, result) = api.result(&single).await;
    assert_eq!(result["output"]["images"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn cancel_while_queued_sticks() {
    let sim = start(SimConfig {
        queue_step_ms: 100,
        run_ms: 50,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let id = api.submit_ok(json!({"prompt": "cancel me"})).await;
    let (code, answer) = api.cancel(&id).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(
        answer,
        json!({"request_id": id, "status": "cancelled", "outcome": "cancelled"})
    );
    // The job must still be cancelled once its run would have ended. A witness submitted after
    // it goes through the same queue and run times: once the witness has finished, so would it.
    let witness = api.submit_ok(json!({"prompt": "witness"})).await;
    eventually(
        async || match api.result(&witness).await.1 {
            answer if answer["status"] == "succeeded" => Ok(()),
            answer => Err(answer),
        },
        "the witness job to finish",
    )
    .await;
    let (_, status) = api.status(&id).await;
    let url = |what: &str| format!("{}/v1/requests/{id}/{what}", sim.base_url());
    assert_eq!(
        status,
        json!({"request_id": id, "status": "cancelled", "status_url": url("status"), "result_url": url("result")})
    );
    let (_, result) = api.result(&id).await;
    assert_eq!(result, json!({"request_id": id, "status": "cancelled"}));
    let (code, again) = api.cancel(&id).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(again["outcome"], "not_cancellable");
    assert_eq!(again["status"], "cancelled");
    assert_eq!(sim.stats().cancel_calls, 2);
}

#[tokio::test]
async fn cancel_while_in_progress_is_refused() {
    let sim = start(SimConfig {
        initial_queue_position: 0,
        run_ms: 10_000,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let id = api.submit_ok(json!({"prompt": "busy"})).await;
    let (code, answer) = api.cancel(&id).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(
        answer,
        json!({"request_id": id, "status": "in_progress", "outcome": "not_cancellable"})
    );
    let (_, status) = api.status(&id).await;
    assert_eq!(status["status"], "in_progress");
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let sim = start(fast()).await;
    let api = Api::new(&sim);
    let id = "00000000-0000-4000-8000-000000000000";
    for (code, body) in [api.status(id).await, api.result(id).await, api.cancel(id).await] {
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(body["error_code"], 404001);
        assert!(body["error_message"].is_string());
    }
    let image = reqwest::get(format!("{}/files/{id}/0.png", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(image.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validation_matches_the_upstream_schema() {
    let sim = start(fast()).await;
    let api = Api::new(&sim);

    let (code, body) = api.submit(json!({"prompt": "x".repeat(801)})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error_code"], 422001);
    assert_eq!(body["error_message"], "Validation failed");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "prompt"]));
    assert_eq!(body["detail"][0]["type"], "string_too_long");
    assert!(body["detail"][0]["msg"].is_string());

    let (code, body) = api.submit(json!({"prompt": "ok", SIZE_KEY: "1000x1000(1:1)"})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", SIZE_KEY]));

    // The ASCII-x spelling is not the size field: it is ignored and the default size applies.
    let id = api
        .submit_ok(json!({"prompt": "ok", "widthxheight": "1024x1024(1:1)"}))
        .await;
    assert_eq!(id.len(), 36);

    let (code, body) = api.submit(json!({"scale": 1.5, "force_single": 1})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["loc"][1])
        .collect();
    assert_eq!(fields, [&json!("prompt"), &json!("scale"), &json!("force_single")]);

    let (code, body) = api.submit(json!(["not", "an", "object"])).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body"]));

    // 800 characters of 3-byte UTF-8 (2,400 bytes) is within the limit.
    let prompt = "雨".repeat(800);
    assert_eq!(prompt.len(), 2400);
    let id = api
        .submit_ok(json!({"prompt": prompt, "scale": 0, "force_single": false}))
        .await;
    let job = api
        .control(reqwest::Method::GET, &format!("/__sim/jobs/{id}"), None)
        .await;
    assert_eq!(job["request"]["prompt"].as_str().unwrap().chars().count(), 800);

    assert_eq!(sim.stats().submissions, 6);
}

#[tokio::test]
async fn auth_and_model_id() {
    let sim = start(SimConfig {
        required_token: Some("s3cret".into()),
        ..fast()
    })
    .await;
    let api = Api::new(&sim);
    let body = json!({"prompt": "hi"});
    for token in [None, Some(""), Some("wrong")] {
        let (code, answer) = api.submit_raw(MODEL, token, body.clone()).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "token {token:?}");
        assert_eq!(answer["error_code"], 400004);
    }
    let (code, answer) = api.submit_raw(MODEL, Some("s3cret"), body.clone()).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let id = answer_id(&answer);

    let (code, answer) = api
        .submit_raw("bytedance/dreamina-9/text-to-image", Some("s3cret"), body.clone())
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error_code"], 400001);

    // Status needs the token too.
    let response = api
        .http
        .get(format!("{}/v1/requests/{id}/status", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sim.stats().submissions, 5);
}

#[tokio::test]
async fn a_fault_hits_once_then_is_used_up() {
    let sim = start(fast()).await;
    let api = Api::new(&sim);
    api.add_fault(json!({"endpoint": "submit", "status": 429, "retry_after": 3}))
        .await;

    let response = api
        .http
        .post(format!("{}/v1/models/{MODEL}", sim.base_url()))
        .bearer_auth("t")
        .json(&json!({"prompt": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_code"], 429001);

    let (code, _) = api.submit(json!({"prompt": "hi"})).await;
    assert_eq!(code, StatusCode::OK);
    // Two submissions reached the server; only the second created a job.
    assert_eq!(sim.stats().submissions, 2);
}

#[tokio::test]
async fn fault_kinds_mangle_answers() {
    let sim = start(fast()).await;
    let api = Api::new(&sim);
    let id = api.submit_ok(json!({"prompt": "hi"})).await;
    let status_url = format!("{}/v1/requests/{id}/status", sim.base_url());
    let get_text = || async {
        let response = api.http.get(&status_url).bearer_auth("t").send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    };

    api.add_fault(json!({"endpoint": "status", "kind": "malformed"})).await;
    assert_eq!(get_text().await, (StatusCode::OK, "{not json".to_string()));

    api.add_fault(json!({"endpoint": "status", "kind": "empty"})).await;
    assert_eq!(get_text().await, (StatusCode::OK, String::new()));

    api.add_fault(json!({"endpoint": "status", "kind": "truncated"})).await;
    let (code, text) = get_text().await;
    assert_eq!(code, StatusCode::OK);
    assert!(text.starts_with("{\"request_id\""), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    api.add_fault(json!({"endpoint": "any", "kind": "unknown_status"}))
        .await;
    let (code, answer) = api.status(&id).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(answer["status"], "warming_up");
    assert_eq!(answer["request_id"], id.as_str());

    api.add_fault(json!({"endpoint": "status", "kind": "reset", "times": 2}))
        .await;
    let sent = api.http.get(&status_url).bearer_auth("t").send().await;
    assert!(sent.is_err(), "reset must not answer: {sent:?}");
    let listed = api.control(reqwest::Method::GET, "/__sim/faults", None).await;
    assert_eq!(listed["faults"][0]["times"], 1);
    let cleared = api.control(reqwest::Method::DELETE, "/__sim/faults", None).await;
    assert_eq!(cleared, json!({"cleared": 1}));

    api.add_fault(json!({"endpoint": "status", "delay_ms": 200})).await;
    let started = Instant::now();
    let (code, answer) = api.status(&id).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(code, StatusCode::OK);
    assert_eq!(answer["request_id"], id.as_str());

    // Body-only rule: an error delivered as HTTP 200.
    api.add_fault(json!({
        "endpoint": "result",
        "body": {"error_code": 400002, "error_message": "Insufficient balance"}
    }))
    .await;
    let (code, answer) = api.result(&id).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(answer["error_code"], 400002);
}

#[tokio::test]
async fn reset_on_submit_still_creates_the_job() {
    let sim = start(fast()).await;
    let api = Api::new(&sim);
    api.add_fault(json!({"endpoint": "submit", "kind": "reset"})).await;
    let sent = api
        .http
        .post(format!("{}/v1/models/{MODEL}", sim.base_url()))
        .bearer_auth("t")
        .json(&json!({"prompt": "fate unknown"}))
        .send()
        .await;
    assert!(sent.is_err(), "{sent:?}");
    assert_eq!(sim.stats().submissions, 1);
}

#[tokio::test]
async fn config_changes_apply_to_new_jobs_only() {
    let sim = start(SimConfig {
        initial_queue_position: 5,
        queue_step_ms: 10_000,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let old = api.submit_ok(json!({"prompt": "old"})).await;
    let config = api
        .control(
            reqwest::Method::PUT,
            "/__sim/config",
            Some(json!({"initial_queue_position": 0, "run_ms": 0})),
        )
        .await;
    assert_eq!(config["initial_queue_position"], 0);
    assert_eq!(config["queue_step_ms"], 10_000, "untouched fields are kept");
    let new = api.submit_ok(json!({"prompt": "new"})).await;
    assert_eq!(api.status(&old).await.1["queue_position"], 5);
    assert_eq!(api.status(&new).await.1["status"], "completed");

    let stats = api.control(reqwest::Method::GET, "/__sim/stats", None).await;
    assert_eq!(
        stats,
        json!({"submissions": 2, "accepted": 2, "model_calls": 0, "status_calls": 2, "result_calls": 0,
               "cancel_calls": 0, "image_calls": 0})
    );
    let bad = api
        .http
        .put(format!("{}/__sim/config", sim.base_url()))
        .json(&json!({"run_msec": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_thousand_concurrent_jobs() {
    let sim = start(SimConfig {
        initial_queue_position: 1,
        queue_step_ms: 20,
        run_ms: 20,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&sim);
    let mut ids = Vec::new();
    for _ in 0..1000 {
        ids.push(api.submit_ok(json!({"prompt": "crowd"})).await);
    }
    for id in ids.iter().step_by(100) {
        poll_until(&api, id, "completed").await;
    }
    assert_eq!(sim.stats().submissions, 1000);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let sim = start(fast()).await;
    let addr = sim.local_addr();
    assert_eq!(sim.base_url(), format!("http://127.0.0.1:{}", addr.port()));
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
