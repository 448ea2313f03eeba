//! Results of any model, not only images: a job whose result is a video and an audio file comes
//! back from get_result as a success, each file listed, saved into the output directory as it
//! came (size, type and path reported), linked, and never put inline.
//!
//! The upstream is a small fake RunComfy on 127.0.0.1 that this test starts (the simulator makes
//! images only): its result answer names files at its own origin, the one loopback origin the
//! address policy lets the server download from.

use axum::{extract::Path, http::header::CONTENT_TYPE, routing::get, Json, Router};
use serde_json::json;

use crate::common::*;

const ID: &str = "3f2b9d4a-1c2e-4f00-8a00-0000000000a1";
const VIDEO: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom-a-short-video";
const AUDIO: &[u8] = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0-a-short-sound";

/// A RunComfy that knows one finished job, whose outputs are a video and an audio file.
async fn fake_upstream() -> String {
    fake_upstream_with(|base| json!({"video": format!("{base}/files/v.mp4"), "audio": format!("{base}/files/a.wav")}))
        .await
}

/// A RunComfy that knows one finished job, whose `output` is `output(base)`.
async fn fake_upstream_with(output: fn(&str) -> serde_json::Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let result = {
        let base = base.clone();
        move |Path(id): Path<String>| async move {
            Json(json!({
                "request_id": id,
                "status": "succeeded",
                "output": output(&base),
                "cost": 0.2,
            }))
        }
    };
    let app = Router::new()
        .route("/v1/requests/{id}/result", get(result))
        .route(
            "/v1/requests/{id}/status",
            get(|Path(id): Path<String>| async move { Json(json!({"request_id": id, "status": "completed"})) }),
        )
        .route(
            "/files/v.mp4",
            get(|| async { ([(CONTENT_TYPE, "video/mp4")], VIDEO.to_vec()) }),
        )
        .route(
            "/files/a.wav",
            get(|| async { ([(CONTENT_TYPE, "audio/wav")], AUDIO.to_vec()) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn get_result_saves_and_links_a_video_and_an_audio_output() {
    let base = fake_upstream().await;
    let out = tempfile::tempdir().unwrap();
    let client = connect(&base, &[("RUNCOMFY_OUTPUT_DIR", out.path().to_str().unwrap())]).await;

    let result = call(&client, "get_result", json!({"request_id": ID})).await;
    let shown = text(&result);
    assert!(!is_error(&result), "a video and audio result is a success: {shown}");
    let answer = structured(&result);
    assert_eq!(answer["status"], "succeeded");
    assert_eq!(answer["images"], json!([]));
    assert_eq!(answer["videos"], json!([format!("{base}/files/v.mp4")]));
    assert_eq!(answer["audios"], json!([format!("{base}/files/a.wav")]));

    let outputs = answer["outputs"].as_array().unwrap();
    let kinds: Vec<&str> = outputs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["video", "audio"]);
    for (output, bytes, mime, name) in [
        (&outputs[0], VIDEO, "video/mp4", format!("{ID}-video-1.mp4")),
        (&outputs[1], AUDIO, "audio/wav", format!("{ID}-audio-1.wav")),
    ] {
        assert_eq!(output["mime_type"], mime, "{output}");
        assert_eq!(output["bytes"], bytes.len(), "{output}");
        assert!(
            output.get("inline").is_none() && output.get("problem").is_none(),
            "{output}"
        );
        let saved = output["saved_path"].as_str().expect("saved");
        assert_eq!(
            std::path::Path::new(saved),
            out.path().join(&name).canonicalize().unwrap()
        );
        assert_eq!(std::fs::read(saved).unwrap(), bytes);
        assert!(shown.contains(&format!("saved to {saved}")), "{shown}");
    }
    assert!(shown.contains("1 video, 1 audio file."), "{shown}");
    assert!(
        !shown.contains("edit or build on an image"),
        "no image to edit: {shown}"
    );

    assert!(result.content.iter().all(|c| c.as_image().is_none()), "nothing inline");
    let links: Vec<(String, Option<String>)> = result
        .content
        .iter()
        .filter_map(|c| c.as_resource_link())
        .map(|r| (r.uri.clone(), r.mime_type.clone()))
        .collect();
    assert_eq!(
        links,
        [
            (format!("{base}/files/v.mp4"), Some("video/mp4".to_owned())),
            (format!("{base}/files/a.wav"), Some("audio/wav".to_owned())),
        ]
    );
    client.cancel().await.unwrap();
}

/// Issue 40 finding 9: a model whose outputs are under keys of its own (not image(s), video(s) or
/// audio(s)) loses none of them: RunComfy's CLI collects every URL in `output`.
#[tokio::test]
async fn outputs_under_an_unexpected_key_are_kept() {
    let sim = simulator(fast_config()).await;
    let out = tempfile::tempdir().unwrap();
    let client = connect(
        &sim.base_url(),
        &[("RUNCOMFY_OUTPUT_DIR", out.path().to_str().unwrap())],
    )
    .await;
    let id = submit(
        &client,
        json!({"prompt": "odd keys", "size": "1024x1024", "force_single": true}),
    )
    .await;
    poll_until_finished(&client, &id).await;
    Control::new(&sim)
        .fault(json!({"endpoint": "result", "kind": "unexpected_output_key"}))
        .await;
    let result = call(&client, "get_result", json!({"request_id": id})).await;
    let shown = text(&result);
    assert!(!is_error(&result), "{shown}");
    assert!(!shown.contains("no output URLs"), "{shown}");
    let answer = structured(&result);
    let image = answer["images"][0].as_str().expect("the image is listed").to_owned();
    assert!(
        image.starts_with(&sim.base_url()) && image.ends_with(".png"),
        "{answer}"
    );
    // It is handled as an image: downloaded, previewed, saved, linked.
    let output = &answer["outputs"][0];
    assert_eq!(output["kind"], "image", "{output}");
    assert_eq!(output["mime_type"], "image/png", "{output}");
    assert!(output["saved_path"].is_string(), "{output}");
    assert!(result.content.iter().any(|c| c.as_image().is_some()), "a preview");
    assert!(
        result
            .content
            .iter()
            .any(|c| c.as_resource_link().is_some_and(|r| r.uri == image)),
        "a link"
    );

    // A URL whose kind neither its key nor its name tells is listed as a file.
    let base =
        fake_upstream_with(|base| json!({"result": {"mesh": format!("{base}/files/model.glb")}, "seed": 3})).await;
    let other = connect(&base, &[]).await;
    let result = call(&other, "get_result", json!({"request_id": ID})).await;
    assert!(!is_error(&result), "{}", text(&result));
    let answer = structured(&result);
    assert_eq!(answer["files"], json!([format!("{base}/files/model.glb")]), "{answer}");
    assert_eq!(answer["outputs"][0]["kind"], "file", "{answer}");
    assert!(text(&result).contains("1 other file"), "{}", text(&result));
    other.cancel().await.unwrap();
    client.cancel().await.unwrap();
}

/// Issue 34 finding 5: output URLs that could run script where a host opens them are listed as
/// text with the reason, never handed on as a resource link (nor, in the app view's data, as
/// something to open).
#[tokio::test]
async fn script_urls_are_listed_as_text_never_as_links() {
    const DANGEROUS: [&str; 4] = [
        "javascript:alert(document.domain)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "JavaScript:alert(1)//.png",
    ];
    let base = fake_upstream_with(|base| {
        json!({"images": [DANGEROUS[0], DANGEROUS[1], DANGEROUS[2], DANGEROUS[3], format!("{base}/files/v.mp4")]})
    })
    .await;
    let client = connect(&base, &[]).await;
    let result = call(&client, "get_result", json!({"request_id": ID})).await;
    let shown = text(&result);
    assert!(!is_error(&result), "{shown}");
    let links: Vec<String> = result
        .content
        .iter()
        .filter_map(|c| c.as_resource_link())
        .map(|r| r.uri.clone())
        .collect();
    assert_eq!(
        links,
        [format!("{base}/files/v.mp4")],
        "only the loopback upstream's own URL is linked"
    );
    let answer = structured(&result);
    let outputs = answer["outputs"].as_array().unwrap();
    for (output, url) in outputs.iter().zip(DANGEROUS) {
        assert_eq!(output["url"], url, "{output}");
        assert!(output["not_a_link"].as_str().unwrap().contains("script"), "{output}");
    }
    assert!(outputs[4].get("not_a_link").is_none(), "{}", outputs[4]);
    assert_eq!(shown.matches("not linked: a ").count(), 4, "{shown}");
    client.cancel().await.unwrap();
}
