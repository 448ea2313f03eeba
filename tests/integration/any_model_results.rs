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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let result = {
        let base = base.clone();
        move |Path(id): Path<String>| async move {
            Json(json!({
                "request_id": id,
                "status": "succeeded",
                "output": {"video": format!("{base}/files/v.mp4"), "audio": format!("{base}/files/a.wav")},
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
