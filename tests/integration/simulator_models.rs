//! The simulator's catalogue models other than Dreamina, over HTTP: a submit is judged by the
//! model's published schema, runs as a job, bills as the entry says, and its result is a real
//! file of the model's kind.

use reqwest::StatusCode;
use runcomfy_mcp::simulator::{SimConfig, Simulator};
use serde_json::{json, Value};

use crate::common::eventually;

const VIDEO: &str = "bytedance/seedance-2.5/text-to-video/1080p";
const SPEECH: &str = "minimax/speech-2.6/text-to-audio";
const IMAGE: &str = "google/nano-banana-2-lite/text-to-image";

async fn start() -> Simulator {
    let config = SimConfig {
        initial_queue_position: 1,
        queue_step_ms: 20,
        run_ms: 40,
        // A balance, so that what each submit charged (or did not) can be read back.
        balance_usd: Some(10.0),
        ..SimConfig::default()
    };
    Simulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("simulator starts")
}

async fn post(sim: &Simulator, model: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/models/{model}", sim.base_url()))
        .bearer_auth("test-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn get(url: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth("test-token")
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Submits, polls until completed and returns the result (with its cost).
async fn run(sim: &Simulator, model: &str, body: Value) -> (String, Value) {
    let (code, submitted) = post(sim, model, body).await;
    assert_eq!(code, StatusCode::OK, "{submitted}");
    let id = submitted["request_id"].as_str().unwrap().to_owned();
    let status_url = submitted["status_url"].as_str().unwrap();
    eventually(
        async || match get(status_url).await {
            (StatusCode::OK, answer) if answer["status"] == "completed" => Ok(()),
            (_, answer) => Err(answer),
        },
        &format!("{model} job to complete"),
    )
    .await;
    let result_url = format!("{}?include_cost=true", submitted["result_url"].as_str().unwrap());
    let (code, result) = get(&result_url).await;
    assert_eq!(code, StatusCode::OK, "{result}");
    assert_eq!(result["status"], "succeeded", "{result}");
    (id, result)
}

/// Downloads a result file (no token, as upstream's hosted URLs): its Content-Type and bytes.
async fn download(url: &str) -> (String, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    let kind = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    (kind, response.bytes().await.unwrap().to_vec())
}

fn balance(sim: &Simulator) -> f64 {
    sim.config().balance_usd.unwrap()
}

#[tokio::test]
async fn a_video_model_runs_bills_per_second_and_serves_an_mp4() {
    let sim = start().await;
    let (id, result) = run(&sim, VIDEO, json!({"prompt": "x", "duration": 5})).await;
    assert_eq!(result["cost"], 0.5, "0.1 USD a second for 5 s: {result}");
    assert!(
        (balance(&sim) - 9.5).abs() < 1e-9,
        "charged at submit: {}",
        balance(&sim)
    );
    let url = result["output"]["video"].as_str().expect("output.video is a URL");
    assert!(url.ends_with("/0.mp4"), "{url}");
    let (kind, bytes) = download(url).await;
    assert_eq!(kind, "video/mp4");
    assert_eq!(&bytes[4..8], b"ftyp", "an ISO-BMFF file");
    assert!(bytes.windows(4).any(|w| w == b"moov"));

    let (code, job) = get(&format!("{}/__sim/jobs/{id}", sim.base_url())).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(job["model"], VIDEO);
    assert_eq!(job["request"]["duration"], 5);
}

#[tokio::test]
async fn an_audio_model_serves_a_wav_and_bills_per_output() {
    let sim = start().await;
    let (_, result) = run(&sim, SPEECH, json!({"text": "hello"})).await;
    assert_eq!(result["cost"], 0.01, "{result}");
    let url = result["output"]["audio"].as_str().expect("output.audio is a URL");
    assert!(url.ends_with("/0.wav"), "{url}");
    let (kind, bytes) = download(url).await;
    assert_eq!(kind, "audio/wav");
    assert_eq!((&bytes[0..4], &bytes[8..12]), (&b"RIFF"[..], &b"WAVE"[..]));
    // One second of 16-bit mono at 8 kHz, after the 44-byte header.
    assert_eq!(bytes.len(), 44 + 16_000);
}

#[tokio::test]
async fn an_image_model_serves_one_png_of_its_aspect_ratio() {
    let sim = start().await;
    let (_, result) = run(&sim, IMAGE, json!({"prompt": "x", "aspect_ratio": "16:9"})).await;
    assert_eq!(result["cost"], 0.02, "{result}");
    let images = result["output"]["images"].as_array().expect("output.images");
    assert_eq!(images.len(), 1);
    let (kind, bytes) = download(images[0].as_str().unwrap()).await;
    assert_eq!(kind, "image/png");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let info = decoder.read_info().expect("a PNG");
    assert_eq!((info.info().width, info.info().height), (1024, 576));
}

#[tokio::test]
async fn input_against_the_schema_is_422_and_charges_nothing() {
    let sim = start().await;
    let (code, answer) = post(&sim, VIDEO, json!({"prompt": "x", "duration": 99})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error_code"], 422001);
    let detail = answer["detail"].as_array().expect("a detail list");
    assert_eq!(detail.len(), 1, "{answer}");
    assert_eq!(detail[0]["loc"], json!(["body", "duration"]));
    assert!(detail[0]["msg"].as_str().unwrap().contains("99"), "{answer}");

    let (code, answer) = post(&sim, SPEECH, json!({"voice": "loud"})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(
        answer["detail"].as_array().unwrap().len(),
        2,
        "text missing, voice not listed: {answer}"
    );

    assert_eq!(balance(&sim), 10.0, "nothing charged");
    assert_eq!(sim.stats().accepted, 0);
}

#[tokio::test]
async fn an_unknown_model_is_still_not_found() {
    let sim = start().await;
    let (code, answer) = post(&sim, "acme/nothing/text-to-video", json!({"prompt": "x"})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error_code"], 400001);
    let message = answer["error_message"].as_str().unwrap();
    assert!(
        message.contains("acme/nothing/text-to-video") && message.contains("/v1/models"),
        "{message}"
    );
}

#[tokio::test]
async fn a_cancelled_catalogue_job_is_refunded() {
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            initial_queue_position: 50,
            queue_step_ms: 10_000,
            balance_usd: Some(1.0),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let (code, submitted) = post(&sim, VIDEO, json!({"prompt": "x"})).await;
    assert_eq!(code, StatusCode::OK, "{submitted}");
    assert!(
        (balance(&sim) - 0.5).abs() < 1e-9,
        "the schema's default 5 s: {}",
        balance(&sim)
    );
    let response = reqwest::Client::new()
        .post(submitted["cancel_url"].as_str().unwrap())
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!((balance(&sim) - 1.0).abs() < 1e-9, "refunded: {}", balance(&sim));
}
