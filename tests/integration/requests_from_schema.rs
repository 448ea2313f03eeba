//! Request bodies built from the model's own catalogue schema (issue 40, findings 3 and 4; issue
//! 34, finding 8): an edit holds only the keys its schema declares and no size unless one was
//! chosen; `--edit-model` sends the reference images under that model's own field; a model whose
//! schema lacks what the tools need is refused at start-up, by name; media fields nested in a
//! catalogue schema are resolved and checked like top-level ones. The simulator's request log
//! (`/__sim/jobs/{id}`) shows each body as RunComfy would receive it.

use std::sync::{Arc, Mutex};

use axum::{extract::Path, routing::get, Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::*;

/// A solid-colour PNG of `width`×`height`, as a data URI.
fn png_data_uri(width: u32, height: u32) -> String {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([40, 120, 200]))
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn keys(body: &Value) -> Vec<String> {
    let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn an_edit_with_no_size_sends_only_prompt_and_image_urls() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let control = Control::new(&sim);

    let id = submit(
        &client,
        json!({"prompt": "make it winter", "images": [png_data_uri(40, 30)]}),
    )
    .await;
    let job = control.job(&id).await;
    assert_eq!(job["model"], "bytedance/dreamina-4-0/edit", "{job}");
    // No `width×height` (it was never chosen), and no text-to-image field left at its default.
    assert_eq!(keys(&job["request"]), ["image_urls", "prompt"], "{job}");

    // A size the user chose is sent.
    let sized = submit(
        &client,
        json!({"prompt": "make it winter", "images": [png_data_uri(40, 30)], "size": "16:9"}),
    )
    .await;
    assert_eq!(
        control.job(&sized).await["request"]["width\u{d7}height"],
        "2560x1440(16:9)"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_text_to_image_request_holds_only_what_was_chosen() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let control = Control::new(&sim);
    let id = submit(&client, json!({"prompt": "a lighthouse"})).await;
    assert_eq!(control.job(&id).await["request"], json!({"prompt": "a lighthouse"}));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_seedream_edit_model_gets_its_images_field() {
    let sim = simulator(fast_config()).await;
    let client = connect(
        &sim.base_url(),
        &[("RUNCOMFY_EDIT_MODEL", "bytedance/seedream-4-0/edit")],
    )
    .await;
    let control = Control::new(&sim);

    let id = submit(
        &client,
        json!({"prompt": "make it winter", "images": ["https://images.invalid/photo.png"]}),
    )
    .await;
    let job = control.job(&id).await;
    assert_eq!(job["model"], "bytedance/seedream-4-0/edit", "{job}");
    assert_eq!(keys(&job["request"]), ["images", "prompt"], "{job}");
    assert_eq!(job["request"]["images"], json!(["https://images.invalid/photo.png"]));

    // Seedream takes an aspect ratio, not Dreamina's sizes: a chosen size goes as its ratio.
    let sized = submit(
        &client,
        json!({"prompt": "wider", "images": ["https://images.invalid/photo.png"], "size": "2560x1440"}),
    )
    .await;
    assert_eq!(control.job(&sized).await["request"]["aspect_ratio"], "16:9");
    client.cancel().await.unwrap();
}

/// `serve` with `flags` against `base_url`: how it ended, and what it said on stderr.
fn serve_with(base_url: &str, env: &[(&str, &str)]) -> (bool, String) {
    let output = Bin::serve().upstream(base_url).envs(env).std().output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_model_whose_schema_lacks_what_the_tools_need_is_refused_at_start_up() {
    let sim = simulator(fast_config()).await;
    let base = sim.base_url();
    let base_for_blocking = base.clone();
    let cases = tokio::task::spawn_blocking(move || {
        [
            // No prompt at all: text to speak.
            (
                "RUNCOMFY_MODEL",
                "minimax/speech-2.6/text-to-audio",
                "no `prompt` field",
            ),
            // No image input: it cannot take an edit's reference images.
            (
                "RUNCOMFY_EDIT_MODEL",
                "google/nano-banana-2-lite/text-to-image",
                "no image input",
            ),
            // Not in the catalogue: the closest ids are named.
            (
                "RUNCOMFY_EDIT_MODEL",
                "bytedance/seedrem-4-0/edit",
                "bytedance/seedream-4-0/edit",
            ),
        ]
        .map(|(var, model, says)| (var, model, says, serve_with(&base_for_blocking, &[(var, model)])))
    })
    .await
    .unwrap();
    for (var, model, says, (ok, stderr)) in cases {
        assert!(!ok, "{var}={model} was not refused: {stderr}");
        let flag = if var == "RUNCOMFY_MODEL" {
            "--model"
        } else {
            "--edit-model"
        };
        assert!(stderr.contains(&format!("{flag} {model}")), "{stderr}");
        assert!(stderr.contains(says), "{var}={model}: {stderr}");
    }

    // A model that has what the tools need starts.
    let client = connect(&base, &[("RUNCOMFY_EDIT_MODEL", "google/nano-banana-2-lite/edit")]).await;
    let listed = call(&client, "list_models", json!({"search": "nano"})).await;
    assert!(!is_error(&listed), "{}", text(&listed));
    client.cancel().await.unwrap();
}

/// A fake RunComfy whose catalogue holds one model with image fields nested in a list of
/// objects; it records each submitted body.
async fn nested_upstream() -> (String, Arc<Mutex<Vec<Value>>>) {
    let entry = json!({
        "model_id": "test/nested/edit",
        "display_name": "Nested references",
        "categories": ["image-to-image"],
        "kind": "model",
        "base_price_usd": 0.01,
        "price_unit": "output",
        "input_schema": {"type": "object", "required": ["prompt"], "properties": {
            "prompt": {"type": "string"},
            "references": {"type": "array", "items": {"type": "object", "properties": {
                "image": {"type": "string", "format": "image_uri"},
                "weight": {"type": "number"}}}},
        }},
    });
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let listing = entry.clone();
    let recorded = Arc::clone(&bodies);
    let app = Router::new()
        .route(
            "/v1/models",
            get(move || {
                let listing = listing.clone();
                async move { Json(json!({"models": [listing], "total": 1})) }
            }),
        )
        .route(
            "/v1/models/categories",
            get(|| async { Json(json!({"categories": ["image-to-image"]})) }),
        )
        .route(
            "/v1/models/{*model}",
            get(move || {
                let entry = entry.clone();
                async move { Json(entry) }
            })
            .post(move |Path(_model): Path<String>, Json(body): Json<Value>| {
                let recorded = Arc::clone(&recorded);
                async move {
                    recorded.lock().unwrap().push(body);
                    Json(json!({"request_id": "0b5c1e62-7a0d-4f0e-9f57-2f3c4d5e6f70"}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

#[tokio::test]
async fn nested_image_fields_are_resolved_and_checked_like_top_level_ones() {
    let (upstream, bodies) = nested_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.png");
    image::RgbImage::from_pixel(8, 6, image::Rgb([0, 200, 0]))
        .save(&photo)
        .unwrap();
    let client = start_stdio(
        (),
        Bin::serve().upstream(&upstream).env("RUNCOMFY_INPUT_DIRS", dir.path()),
    )
    .await
    .client;

    // A bad nested entry is refused by its path, and nothing is sent.
    let refused = call(
        &client,
        "run_model",
        json!({"model_id": "test/nested/edit", "wait": false, "input": {"prompt": "x",
               "references": [{"image": "https://images.invalid/a.png"}, {"image": "data:image/png;base64,aGVsbG8="}]}}),
    )
    .await;
    assert!(is_error(&refused), "{}", text(&refused));
    assert!(
        text(&refused).contains("input.references[1].image"),
        "{}",
        text(&refused)
    );
    assert!(bodies.lock().unwrap().is_empty());

    // A local file nested in the list reaches RunComfy as a data URI; a URL as given.
    let sent = call(
        &client,
        "run_model",
        json!({"model_id": "test/nested/edit", "wait": false, "input": {"prompt": "x",
               "references": [{"image": photo.to_str().unwrap(), "weight": 0.5}, {"image": "https://images.invalid/a.png"}]}}),
    )
    .await;
    assert!(!is_error(&sent), "{}", text(&sent));
    let body = bodies.lock().unwrap().last().cloned().unwrap();
    let first = body["references"][0]["image"].as_str().unwrap();
    assert!(first.starts_with("data:image/png;base64,"), "{body}");
    assert_eq!(body["references"][0]["weight"], 0.5);
    assert_eq!(body["references"][1]["image"], "https://images.invalid/a.png");
    client.cancel().await.unwrap();
}
