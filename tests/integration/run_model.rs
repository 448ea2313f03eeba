//! `run_model` through the real binary and the simulator's catalogue: a model's input under its
//! provider-safe keys reaches RunComfy under its own, an input that breaks the model's schema is
//! refused in the schema's words before anything is sent, an unknown id gets the closest ids,
//! job references resolve in a model's media inputs, and `wait: false` only submits.

use crate::common::*;
use serde_json::{json, Value};

const DREAMINA: &str = "bytedance/dreamina-4-0/text-to-image";

async fn run(client: &Client, arguments: Value) -> rmcp::model::CallToolResult {
    call(client, "run_model", arguments).await
}

#[tokio::test]
async fn a_models_input_goes_upstream_under_runcomfys_keys_and_the_result_comes_back() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let client = start_stdio((), Bin::serve().upstream(&sim.base_url()).journal_in(state.path()))
        .await
        .client;
    let control = Control::new(&sim);

    let result = run(
        &client,
        json!({"model_id": DREAMINA, "input": {"prompt": "a red fox", "width_x_height": "1024x1024(1:1)"}}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let out = structured(&result);
    assert_eq!(out["status"], "succeeded", "{out}");
    assert!(!out["images"].as_array().unwrap().is_empty(), "{out}");
    assert!(
        out.get("made_with").is_none(),
        "a model's job has no Dreamina recipe: {out}"
    );
    // A Dreamina set may hold up to 15 images: the estimate's top counts them all.
    assert_eq!(out["estimated_cost_usd"]["units_per_job"], json!([1, 15]), "{out}");
    let id = out["request_id"].as_str().unwrap();
    let job = control.job(id).await;
    assert_eq!(job["request"]["width×height"], "1024x1024(1:1)", "{job}");
    assert!(job["request"].get("width_x_height").is_none(), "{job}");

    // The journal lists it under its model.
    let listed = structured(&call(&client, "list_jobs", json!({})).await).clone();
    let entry = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["request_id"] == id)
        .cloned();
    assert_eq!(
        entry.as_ref().map(|e| e["model"].clone()),
        Some(json!(DREAMINA)),
        "{listed}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_input_the_schema_refuses_is_never_sent() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let control = Control::new(&sim);

    let result = run(
        &client,
        json!({"model_id": DREAMINA, "input": {"prompt": "x", "scale": 2}}),
    )
    .await;
    assert!(is_error(&result), "{}", text(&result));
    let said = text(&result);
    assert!(said.contains("input.scale"), "{said}");
    assert!(
        said.contains("greater than the maximum of 1"),
        "the schema's own words: {said}"
    );
    assert!(said.contains("Nothing was submitted"), "{said}");

    let missing = run(&client, json!({"model_id": DREAMINA, "input": {}})).await;
    assert!(
        text(&missing).contains("\"prompt\" is a required property"),
        "{}",
        text(&missing)
    );
    assert!(control.jobs().await.is_empty(), "nothing reached RunComfy");

    // The server goes on serving.
    let fine = run(
        &client,
        json!({"model_id": DREAMINA, "input": {"prompt": "x"}, "wait": false}),
    )
    .await;
    assert!(!is_error(&fine), "{}", text(&fine));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_unknown_model_is_answered_with_the_closest_ids() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let result = run(
        &client,
        json!({"model_id": "bytedance/seedream-4-0/edt", "input": {"prompt": "x"}}),
    )
    .await;
    assert!(is_error(&result), "{}", text(&result));
    assert!(
        text(&result).contains("bytedance/seedream-4-0/edit"),
        "{}",
        text(&result)
    );
    assert!(Control::new(&sim).jobs().await.is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_job_reference_resolves_in_a_models_media_input_and_wait_false_only_submits() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let control = Control::new(&sim);
    let made = run(&client, json!({"model_id": DREAMINA, "input": {"prompt": "a fox"}})).await;
    let first = structured(&made)["request_id"].as_str().unwrap().to_owned();
    let image = structured(&made)["images"][0].as_str().unwrap().to_owned();

    let submitted = run(
        &client,
        json!({"model_id": "bytedance/dreamina-4-0/edit", "wait": false,
               "input": {"prompt": "the fox in snow", "image_urls": [format!("{first}#1")]}}),
    )
    .await;
    assert!(!is_error(&submitted), "{}", text(&submitted));
    let out = structured(&submitted);
    assert_eq!(out["status"], "in_queue", "{out}");
    assert_eq!(out["finished"], false, "{out}");
    assert!(text(&submitted).contains("Estimated cost"), "{}", text(&submitted));
    let id = out["request_id"].as_str().unwrap();
    let job = control.job(id).await;
    assert_eq!(
        job["request"]["image_urls"],
        json!([image]),
        "the reference went as its URL: {job}"
    );

    let finished = poll_until_finished(&client, id).await;
    assert_eq!(finished.last().unwrap()["status"], "succeeded");
    client.cancel().await.unwrap();
}

/// A video model priced per second and an audio model, end to end: the estimate from the input's
/// duration, the actual cost, the files saved with their types, and a schema violation refused.
#[tokio::test]
async fn a_video_and_an_audio_model_run_end_to_end_with_saved_files() {
    let sim = simulator(fast_config()).await;
    let out_dir = tempfile::tempdir().unwrap();
    let dir = out_dir.path().to_str().unwrap().to_owned();
    let client = connect(&sim.base_url(), &[("RUNCOMFY_OUTPUT_DIR", dir.as_str())]).await;
    let video_model = "bytedance/seedance-2.5/text-to-video/1080p";

    let video = run(
        &client,
        json!({"model_id": video_model, "input": {"prompt": "waves on a beach", "duration": 5}}),
    )
    .await;
    assert!(!is_error(&video), "{}", text(&video));
    let out = structured(&video);
    assert_eq!(out["status"], "succeeded", "{out}");
    assert_eq!(out["videos"].as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(out["estimated_cost_usd"]["unit"], "second", "{out}");
    assert_eq!(out["estimated_cost_usd"]["units_per_job"], json!([5, 5]), "{out}");
    assert!((out["cost_usd"].as_f64().unwrap() - 0.5).abs() < 1e-9, "{out}");
    let saved = out["outputs"][0]["saved_path"].as_str().expect("the video saved");
    assert!(saved.ends_with(".mp4") && saved.starts_with(&dir), "{saved}");
    let bytes = std::fs::read(saved).unwrap();
    assert_eq!(&bytes[4..8], b"ftyp", "an MP4 file");
    assert!(
        text(&video).contains("Estimated cost $0.50 ($0.10 per second × 5 seconds"),
        "{}",
        text(&video)
    );

    let audio = run(
        &client,
        json!({"model_id": "minimax/speech-2.6/text-to-audio", "input": {"text": "Hello there"}}),
    )
    .await;
    assert!(!is_error(&audio), "{}", text(&audio));
    let out = structured(&audio);
    assert_eq!(out["audios"].as_array().map(Vec::len), Some(1), "{out}");
    let saved = out["outputs"][0]["saved_path"].as_str().expect("the audio saved");
    let bytes = std::fs::read(saved).unwrap();
    assert!(
        saved.ends_with(".wav") && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{saved}"
    );

    let jobs_before = Control::new(&sim).jobs().await.len();
    let refused = run(
        &client,
        json!({"model_id": video_model, "input": {"prompt": "waves", "duration": 99}}),
    )
    .await;
    assert!(is_error(&refused));
    assert!(
        text(&refused).contains("input.duration: 99 is greater than the maximum of 30"),
        "{}",
        text(&refused)
    );
    assert_eq!(Control::new(&sim).jobs().await.len(), jobs_before, "nothing submitted");
    client.cancel().await.unwrap();
}

/// What to do after a failure comes from what made the job: a failed or cancelled job of another
/// model is sent back to run_model with its model_id, never to generate_image (issue 38 item 4).
#[tokio::test]
async fn a_failed_models_job_is_sent_back_to_run_model_not_generate_image() {
    let sim = simulator(fast_config()).await;
    let state = tempfile::tempdir().unwrap();
    let client = start_stdio((), Bin::serve().upstream(&sim.base_url()).journal_in(state.path()))
        .await
        .client;
    let control = Control::new(&sim);
    let model = "minimax/speech-2.6/text-to-audio";
    let submitted = run(
        &client,
        json!({"model_id": model, "input": {"text": "Hello there"}, "wait": false}),
    )
    .await;
    assert!(!is_error(&submitted), "{}", text(&submitted));
    let id = structured(&submitted)["request_id"].as_str().unwrap().to_owned();

    control
        .fault(json!({"endpoint": "result", "status": 200,
                      "body": {"request_id": id, "status": "failed", "error": {"message": "voice refused"}}}))
        .await;
    let failed = call(&client, "get_result", json!({"request_id": id})).await;
    assert!(is_error(&failed), "{}", text(&failed));
    let said = text(&failed);
    assert!(said.contains("voice refused"), "{said}");
    assert!(
        said.contains(&format!("call run_model again with model_id \"{model}\"")),
        "{said}"
    );
    assert!(!said.contains("generate_image"), "{said}");

    control
        .fault(json!({"endpoint": "status", "status": 200,
                      "body": {"request_id": id, "status": "cancelled"}}))
        .await;
    let cancelled = text(&call(&client, "check_status", json!({"request_id": id})).await);
    assert!(cancelled.contains("Call run_model again"), "{cancelled}");
    assert!(!cancelled.contains("generate_image"), "{cancelled}");
    client.cancel().await.unwrap();
}
