//! The simulator's edit endpoint, over HTTP: it judges `image_urls` like the real API, records
//! the inputs, and draws its outputs from the first reference it may and can read (tinted), so
//! that a test can see the reference reached the model. It reads data URIs, its own results and
//! loopback URLs only.

use axum::{http::header, response::IntoResponse, routing::get, Router};
use base64::Engine as _;
use reqwest::StatusCode;
use runcomfy_mcp::simulator::{SimConfig, Simulator};
use serde_json::{json, Value};

use crate::common::eventually;

const EDIT: &str = "bytedance/dreamina-4-0/edit";
const TEXT: &str = "bytedance/dreamina-4-0/text-to-image";

async fn start() -> Simulator {
    let config = SimConfig {
        initial_queue_position: 0,
        queue_step_ms: 0,
        run_ms: 50,
        ..SimConfig::default()
    };
    Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

/// A solid-colour PNG.
fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb(rgb));
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn data_uri(bytes: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A quarter of the way towards the simulator's orange tint (255, 128, 0).
fn tinted(rgb: [u8; 3]) -> [u8; 3] {
    let t = [255u16, 128, 0];
    [0, 1, 2].map(|i| ((u16::from(rgb[i]) * 3 + t[i]) / 4) as u8)
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(sim: &Simulator) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: sim.base_url(),
        }
    }

    async fn submit(&self, model: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/v1/models/{model}", self.base))
            .bearer_auth("t")
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn edit(&self, image_urls: Value) -> String {
        let body = json!({"prompt": "make it winter", "width\u{d7}height": "1024x1024(1:1)", "image_urls": image_urls});
        let (status, answer) = self.submit(EDIT, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["request_id"].as_str().unwrap().to_owned()
    }

    /// Waits for the job, then downloads its first image and decodes it.
    async fn first_image(&self, id: &str) -> image::RgbImage {
        let url = eventually(
            async || {
                let answer: Value = self
                    .http
                    .get(format!("{}/v1/requests/{id}/result", self.base))
                    .bearer_auth("t")
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                match answer["status"] == "succeeded" {
                    true => Ok(answer["output"]["images"][0].as_str().unwrap().to_owned()),
                    false => Err(answer["status"].clone()),
                }
            },
            &format!("job {id} to succeed"),
        )
        .await;
        let bytes = self.http.get(url).send().await.unwrap().bytes().await.unwrap();
        image::load_from_memory(&bytes).unwrap().to_rgb8()
    }

    async fn job(&self, id: &str) -> Value {
        let url = format!("{}/__sim/jobs/{id}", self.base);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }
}

/// A local HTTP server: `/photo.png` (a solid green PNG) and `/moved` (a redirect to it).
async fn local_server() -> String {
    let photo = png(8, 8, [0, 200, 0]);
    let app = Router::new()
        .route(
            "/photo.png",
            get(move || {
                let photo = photo.clone();
                async move { ([(header::CONTENT_TYPE, "image/png")], photo).into_response() }
            }),
        )
        .route(
            "/moved",
            get(|| async { axum::response::Redirect::temporary("/photo.png") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn an_edit_of_a_data_uri_is_that_image_scaled_and_tinted() {
    let sim = start().await;
    let api = Api::new(&sim);
    let blue = [0, 160, 255];
    let id = api.edit(json!([data_uri(&png(16, 16, blue))])).await;
    let out = api.first_image(&id).await;
    assert_eq!(out.dimensions(), (1024, 1024));
    assert_eq!(out.get_pixel(512, 512).0, tinted(blue));
    let job = api.job(&id).await;
    assert_eq!(job["inputs"][0]["kind"], "data_uri");
    assert_eq!(job["inputs"][0]["mime_type"], "image/png");
    assert_eq!(job["drawn_from"], 0);
}

#[tokio::test]
async fn urls_it_may_not_read_are_passed_over_for_the_first_it_can() {
    let sim = start().await;
    let api = Api::new(&sim);
    let local = local_server().await;
    // Not loopback: never fetched. A redirect: not followed. Then the local server's photo.
    let urls = json!([
        "https://images.invalid/cat.png",
        format!("{local}/moved"),
        format!("{local}/photo.png"),
    ]);
    let id = api.edit(urls.clone()).await;
    assert_eq!(api.first_image(&id).await.get_pixel(3, 3).0, tinted([0, 200, 0]));
    let job = api.job(&id).await;
    assert_eq!(job["request"]["image_urls"], urls, "recorded as received");
    assert_eq!(job["drawn_from"], 2);
    assert_eq!(
        job["inputs"][0],
        json!({"kind": "url", "url": "https://images.invalid/cat.png"})
    );
}

#[tokio::test]
async fn nothing_readable_gives_a_tinted_placeholder() {
    let sim = start().await;
    let api = Api::new(&sim);
    let id = api
        .edit(json!(["https://images.invalid/a.png", "http://localhost:9/a.png"]))
        .await;
    let out = api.first_image(&id).await;
    assert_eq!(out.get_pixel(0, 0).0, tinted([96, 96, 96]));
    assert_eq!(out.get_pixel(64, 0).0, tinted([160, 160, 160]));
    assert_eq!(api.job(&id).await["drawn_from"], Value::Null);
}

#[tokio::test]
async fn an_edit_of_its_own_result_reads_it_without_a_request() {
    let sim = start().await;
    let api = Api::new(&sim);
    let red = [200, 0, 0];
    let first = api.edit(json!([data_uri(&png(4, 4, red))])).await;
    api.first_image(&first).await;
    let own_url = format!("{}/files/{first}/0.png", sim.base_url());
    let images_served = sim.stats().image_calls;
    let second = api.edit(json!([own_url])).await;
    let out = api.first_image(&second).await;
    assert_eq!(out.get_pixel(100, 100).0, tinted(tinted(red)), "an edit of the edit");
    assert_eq!(
        sim.stats().image_calls,
        images_served + 1,
        "only the download of the second result"
    );
}

#[tokio::test]
async fn image_urls_are_judged_like_the_real_api() {
    let sim = start().await;
    let api = Api::new(&sim);
    let body = |urls: Value| json!({"prompt": "x", "image_urls": urls});
    for (urls, loc, kind) in [
        (Value::Null, "image_urls", "list_type"),
        (json!([]), "image_urls", "too_short"),
        (
            json!(vec!["https://images.invalid/a.png"; 11]),
            "image_urls",
            "too_long",
        ),
        (json!(["ftp://x/y.png"]), "image_urls.0", "value_error"),
        (
            json!(["https://ok.invalid/a.png", "data:image/png;base64,aGVsbG8="]),
            "image_urls.1",
            "value_error",
        ),
    ] {
        let (status, answer) = api.submit(EDIT, body(urls.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{urls}: {answer}");
        let detail = &answer["detail"][0];
        let got: Vec<&str> = detail["loc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(got[1..].join("."), loc, "{answer}");
        assert_eq!(detail["type"], kind);
    }
    let (status, answer) = api.submit(EDIT, json!({"prompt": "x"})).await;
    assert_eq!(
        (status, &answer["detail"][0]["type"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("missing"))
    );
    // Text-to-image is untouched by the field, and the edit endpoint is a model of its own.
    let (status, _) = api.submit(TEXT, json!({"prompt": "x"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.stats().submissions, 7);
    assert_eq!(sim.stats().image_calls, 0);
}

#[tokio::test]
async fn a_large_data_uri_fits_in_a_submit() {
    let sim = start().await;
    let api = Api::new(&sim);
    // Noise does not compress: about 6 MB of PNG, 8 MB of base64, past axum's 2 MB default.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..1400 * 1400 * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let image = image::RgbImage::from_raw(1400, 1400, noise).unwrap();
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    assert!(bytes.len() > 4 * 1024 * 1024, "{}", bytes.len());
    api.edit(json!([data_uri(&bytes)])).await;
}

#[tokio::test]
async fn an_edit_without_a_size_keeps_its_references_aspect_ratio() {
    let sim = start().await;
    let api = Api::new(&sim);
    let photo = data_uri(&png(40, 30, [0, 160, 255]));
    let (status, answer) = api
        .submit(EDIT, json!({"prompt": "make it winter", "image_urls": [photo.clone()]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let out = api.first_image(answer["request_id"].as_str().unwrap()).await;
    assert_eq!(out.dimensions(), (2048, 1536), "a 4:3 photo stays 4:3");

    // A size asked for is the size made.
    let body = json!({"prompt": "make it winter", "image_urls": [photo], "width\u{d7}height": "2560x1440(16:9)"});
    let (status, answer) = api.submit(EDIT, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let out = api.first_image(answer["request_id"].as_str().unwrap()).await;
    assert_eq!(out.dimensions(), (2560, 1440));
}

#[tokio::test]
async fn the_edit_endpoint_refuses_keys_its_schema_does_not_declare() {
    let sim = start().await;
    let api = Api::new(&sim);
    let body =
        json!({"prompt": "p", "image_urls": ["https://images.invalid/a.png"], "seed": 7, "negative_prompt": "x"});
    let (status, answer) = api.submit(EDIT, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let detail = answer["detail"].as_array().unwrap();
    let locs: Vec<String> = detail
        .iter()
        .map(|d| {
            d["loc"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect();
    assert_eq!(locs, ["body.negative_prompt", "body.seed"], "{answer}");
    assert!(detail.iter().all(|d| d["type"] == "extra_forbidden"), "{answer}");
    // Text-to-image ignores unknown fields, as upstream does.
    let (status, answer) = api.submit(TEXT, json!({"prompt": "p", "seed": 7})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
