//! Result media over stdio, with the real binary and the simulator's real PNGs: previews within
//! their caps for every size, saved files that decode, several images, full-size inline, failed
//! downloads that degrade the result instead of failing it, files that never land outside the
//! output directory, and the structuredContent choice for Claude Code.

use std::path::Path;

use crate::common::*;
use base64::Engine as _;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use runcomfy_mcp::dreamina::Size;
use serde_json::{json, Value};

const PREVIEW_MAX_BYTES: usize = 150 * 1024;
const PREVIEW_MAX_SIDE: u32 = 768;

/// Submits, waits until finished, and calls get_result with `extra` arguments.
async fn finished_result(client: &Client, submit_args: Value, extra: Value) -> (String, CallToolResult) {
    let id = submit(client, submit_args).await;
    poll_until_finished(client, &id).await;
    let mut arguments = json!({ "request_id": id });
    arguments
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let result = call(client, "get_result", arguments).await;
    assert!(!is_error(&result), "{}", text(&result));
    (id, result)
}

/// The inline images of a result: (mime type, bytes).
fn inline_images(result: &CallToolResult) -> Vec<(String, Vec<u8>)> {
    result
        .content
        .iter()
        .filter_map(|c| c.as_image())
        .map(|img| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&img.data)
                .expect("valid base64");
            (img.mime_type.clone(), bytes)
        })
        .collect()
}

fn resource_links(result: &CallToolResult) -> Vec<rmcp::model::Resource> {
    result
        .content
        .iter()
        .filter_map(|c| c.as_resource_link().cloned())
        .collect()
}

fn dimensions_of(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).expect("decodes as an image");
    (image.width(), image.height())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_size_gets_a_capped_preview_and_a_saved_file_that_decodes() {
    let sim = simulator(fast_config()).await;
    let out = tempfile::tempdir().unwrap();
    let client = connect(
        &sim.base_url(),
        &[("RUNCOMFY_OUTPUT_DIR", out.path().to_str().unwrap())],
    )
    .await;

    // All eleven jobs run at once in the simulator.
    let mut jobs = Vec::new();
    for size in Size::all() {
        let id = submit(
            &client,
            json!({"prompt": "a lighthouse", "size": size.as_str(), "force_single": true}),
        )
        .await;
        jobs.push((size, id));
    }
    for (size, id) in &jobs {
        poll_until_finished(&client, id).await;
        let result = call(&client, "get_result", json!({ "request_id": id })).await;
        assert!(!is_error(&result), "{}", text(&result));
        let (w, h) = (size.width(), size.height());

        // The preview: one JPEG, longest side and bytes within the caps, aspect ratio kept.
        let images = inline_images(&result);
        assert_eq!(images.len(), 1, "{size:?}");
        let (mime, preview) = &images[0];
        assert_eq!(mime, "image/jpeg");
        assert!(preview.len() <= PREVIEW_MAX_BYTES, "{size:?}: {} bytes", preview.len());
        let (pw, ph) = dimensions_of(preview);
        assert_eq!(pw.max(ph), PREVIEW_MAX_SIDE.min(w.max(h)), "{size:?}: {pw}×{ph}");
        let (want, got) = (w as f64 / h as f64, pw as f64 / ph as f64);
        assert!((want - got).abs() / want < 0.01, "{size:?}: aspect {got} vs {want}");

        // The facts, the saved file, the link.
        let out_json = structured(&result);
        let output = &out_json["outputs"][0];
        assert_eq!(
            (output["width"].as_u64(), output["height"].as_u64()),
            (Some(w.into()), Some(h.into()))
        );
        assert_eq!(output["mime_type"], "image/png");
        assert_eq!(output["inline"]["form"], "preview");
        assert_eq!(output["inline"]["bytes"].as_u64(), Some(preview.len() as u64));
        // RunComfy publishes no lifetime for Model API result URLs: none is promised.
        assert!(out_json.get("url_lifetime_hours").is_none());
        assert!(text(&result).contains("for a limited time"), "{}", text(&result));
        let saved = output["saved_path"].as_str().expect("a saved path");
        assert_eq!(
            Path::new(saved),
            out.path().canonicalize().unwrap().join(format!("{id}-1.png"))
        );
        let bytes = std::fs::read(saved).unwrap();
        assert_eq!(output["bytes"].as_u64(), Some(bytes.len() as u64));
        assert_eq!(dimensions_of(&bytes), (w, h), "{size:?}");
        assert!(text(&result).contains(saved) && text(&result).contains(&format!("{w}×{h}")));
        let links = resource_links(&result);
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].uri, output["url"].as_str().unwrap());
        assert_eq!(links[0].mime_type.as_deref(), Some("image/png"));
        assert_eq!(links[0].size, Some(bytes.len() as u64));
    }
    // Only the finished files: no temporary files left behind.
    assert_eq!(files_in(out.path()).len(), 11);
}

#[tokio::test]
async fn several_images_each_get_a_preview_a_link_and_a_file() {
    let sim = simulator(fast_config()).await;
    Control::new(&sim).config(json!({"images_per_job": 4})).await;
    let out = tempfile::tempdir().unwrap();
    let client = connect(
        &sim.base_url(),
        &[("RUNCOMFY_OUTPUT_DIR", out.path().to_str().unwrap())],
    )
    .await;
    let (id, result) = finished_result(&client, json!({"prompt": "four cats", "size": "4096x4096"}), json!({})).await;

    let images = inline_images(&result);
    assert_eq!(images.len(), 4);
    let base64_total: usize = images.iter().map(|(_, b)| b.len().div_ceil(3) * 4).sum();
    assert!(base64_total < 1_000_000, "{base64_total} bytes of base64");
    assert_eq!(resource_links(&result).len(), 4);
    let outputs = structured(&result)["outputs"].as_array().unwrap().clone();
    assert_eq!(outputs.len(), 4);
    for (i, output) in outputs.iter().enumerate() {
        assert_eq!(output["index"], i + 1);
        assert!(output.get("problem").is_none(), "{output}");
    }
    let want: Vec<String> = (1..=4).map(|i| format!("{id}-{i}.png")).collect();
    assert_eq!(files_in(out.path()), want);
    assert!(text(&result).contains("4 images"));
}

#[tokio::test]
async fn full_size_inline_when_asked_and_under_the_cap() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[]).await;
    let (_, result) = finished_result(
        &client,
        json!({"prompt": "a cat", "size": "1024x1024"}),
        json!({"inline_full_size": true}),
    )
    .await;
    let images = inline_images(&result);
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].0, "image/png");
    assert_eq!(dimensions_of(&images[0].1), (1024, 1024));
    assert_eq!(structured(&result)["outputs"][0]["inline"]["form"], "full_size");

    // Over the hard cap: a preview and a note instead.
    let capped = connect(&sim.base_url(), &[("RUNCOMFY_FULL_INLINE_MAX_KB", "1")]).await;
    let (_, result) = finished_result(
        &capped,
        json!({"prompt": "a cat", "size": "1024x1024"}),
        json!({"inline_full_size": true}),
    )
    .await;
    let images = inline_images(&result);
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].0, "image/jpeg");
    assert!(text(&result).contains("instead of full size"), "{}", text(&result));
}

#[tokio::test]
async fn failed_downloads_degrade_the_result_with_a_note() {
    let sim = simulator(fast_config()).await;
    let control = Control::new(&sim);
    let out = tempfile::tempdir().unwrap();
    let client = connect(
        &sim.base_url(),
        &[
            ("RUNCOMFY_OUTPUT_DIR", out.path().to_str().unwrap()),
            ("RUNCOMFY_DOWNLOAD_MAX_MB", "1"),
        ],
    )
    .await;

    let cases = [
        // An HTML error page served with 200.
        (
            json!({"endpoint": "image", "status": 200, "body": "<html>oops</html>", "content_type": "text/html"}),
            "text/html",
        ),
        // Claims to be a PNG, is not one.
        (
            json!({"endpoint": "image", "status": 200, "body": "<html>oops</html>", "content_type": "image/png"}),
            "not a PNG, JPEG or WebP",
        ),
        (json!({"endpoint": "image", "status": 404}), "HTTP 404"),
    ];
    for (rule, expected) in cases {
        control.fault(rule).await;
        let (_, result) = finished_result(&client, json!({"prompt": "a cat", "size": "1024x1024"}), json!({})).await;
        let output = &structured(&result)["outputs"][0];
        let problem = output["problem"]
            .as_str()
            .unwrap_or_else(|| panic!("no problem noted: {output}"));
        assert!(problem.contains(expected), "{problem}");
        assert!(output["url"].as_str().unwrap().starts_with("http"));
        assert!(output.get("saved_path").is_none());
        assert!(inline_images(&result).is_empty());
        assert_eq!(resource_links(&result).len(), 1, "the link is still given");
        assert!(text(&result).contains(problem));
    }

    // Oversized: a 3 MB noise PNG against a 1 MB cap, announced by Content-Length and not.
    control.config(json!({"image_style": "noise"})).await;
    for chunked in [false, true] {
        if chunked {
            control.fault(json!({"endpoint": "image", "kind": "chunked"})).await;
        }
        let (_, result) = finished_result(&client, json!({"prompt": "static", "size": "1024x1024"}), json!({})).await;
        let problem = structured(&result)["outputs"][0]["problem"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(problem.contains("larger than the 1 MB"), "chunked={chunked}: {problem}");
    }
    assert!(
        files_in(out.path()).is_empty(),
        "nothing saved, no temporary files left: {:?}",
        files_in(out.path())
    );
}

#[cfg(unix)]
#[tokio::test]
async fn files_never_land_outside_the_output_dir() {
    let sim = simulator(fast_config()).await;
    let control = Control::new(&sim);
    control
        .config(json!({"initial_queue_position": 5, "queue_step_ms": 100}))
        .await;
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let outside = root.path().join("precious.png");
    std::fs::write(&outside, b"keep me").unwrap();
    let client = connect(&sim.base_url(), &[("RUNCOMFY_OUTPUT_DIR", out.to_str().unwrap())]).await;

    // A symlink planted under the very name the result will be saved as.
    let id = submit(&client, json!({"prompt": "a cat", "size": "1024x1024"})).await;
    let planted = out.join(format!("{id}-1.png"));
    std::os::unix::fs::symlink(&outside, &planted).unwrap();
    poll_until_finished(&client, &id).await;
    let result = call(&client, "get_result", json!({"request_id": id})).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
    let meta = std::fs::symlink_metadata(&planted).unwrap();
    assert!(meta.file_type().is_file(), "the link was replaced by the file");
    assert_eq!(dimensions_of(&std::fs::read(&planted).unwrap()), (1024, 1024));

    // Hostile request ids never reach the file system (nor the network).
    for hostile in ["../../etc/x", "/etc/passwd", "..\\..\\x", "C:\\x"] {
        let result = call(&client, "get_result", json!({"request_id": hostile})).await;
        assert!(is_error(&result), "{hostile}");
    }
    let mut everything: Vec<String> = walk(root.path());
    everything.sort();
    assert_eq!(everything, vec![format!("out/{id}-1.png"), "precious.png".to_owned()]);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for inner in walk(&path) {
                found.push(format!("{}/{inner}", path.file_name().unwrap().to_string_lossy()));
            }
        } else {
            found.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    found
}

#[tokio::test]
async fn no_preview_means_no_download_without_an_output_dir() {
    let sim = simulator(fast_config()).await;
    let client = connect(&sim.base_url(), &[("RUNCOMFY_NO_PREVIEW", "true")]).await;
    let (_, result) = finished_result(&client, json!({"prompt": "a cat", "size": "1024x1024"}), json!({})).await;
    assert!(inline_images(&result).is_empty());
    assert_eq!(resource_links(&result).len(), 1);
    assert_eq!(sim.stats().image_calls, 0, "nothing needed the bytes");
    assert!(structured(&result)["outputs"][0]["url"].is_string());
}

#[tokio::test]
async fn claude_code_gets_the_images_without_structured_content() {
    let sim = simulator(fast_config()).await;
    let get = |client_name: &'static str, env: &'static [(&'static str, &'static str)]| {
        let base = sim.base_url();
        async move {
            let client = connect_as(&base, env, client_name).await;
            let submitted = client
                .call_tool(
                    CallToolRequestParams::new("generate_image")
                        .with_arguments(args(json!({"prompt": "a cat", "size": "1024x1024"}))),
                )
                .await
                .unwrap();
            let id = submitted.structured_content.unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_owned();
            eventually(
                async || {
                    let result = client
                        .call_tool(
                            CallToolRequestParams::new("get_result").with_arguments(args(json!({"request_id": id}))),
                        )
                        .await
                        .unwrap();
                    if result.content.iter().any(|c| c.as_image().is_some()) {
                        Ok(result)
                    } else {
                        Err(text(&result))
                    }
                },
                "get_result to carry the image",
            )
            .await
        }
    };
    let code = get("claude-code", &[]).await;
    assert!(
        code.structured_content.is_none(),
        "Claude Code would drop the image next to it"
    );
    let all = text(&code);
    assert!(all.contains("Image 1: http") && all.contains("1024×1024"), "{all}");

    let desktop = get("claude-ai", &[]).await;
    assert!(desktop.structured_content.is_some());
    assert_eq!(inline_images(&desktop).len(), 1);

    let forced = get("claude-code", &[("RUNCOMFY_STRUCTURED_CONTENT", "always")]).await;
    assert!(forced.structured_content.is_some());
    let omitted = get("some-client", &[("RUNCOMFY_STRUCTURED_CONTENT", "omit-with-images")]).await;
    assert!(omitted.structured_content.is_none());
}

/// Random pixels: a photograph's worst case for PNG (about three bytes a pixel).
fn noise(width: u32, height: u32) -> image::RgbImage {
    let mut state = 0x9e37_79b9_u32;
    image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    })
}

/// A PNG whose header declares `width`×`height` pixels in a few dozen bytes (a 1×1 image with
/// its IHDR rewritten, CRC included): a pixel bomb.
fn pixel_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::new(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// Issue 40 finding 6: references go as RunComfy's own client sends them — PNG data URIs of at
/// most 6 MiB and 32 megapixels, downscaled to fit, never refused only for being large.
#[tokio::test]
async fn a_large_jpeg_and_webp_reach_runcomfy_as_pngs_within_its_per_input_limits() {
    let sim = simulator(fast_config()).await;
    let inputs = tempfile::tempdir().unwrap();
    // A 12 MB JPEG (noise at high quality) and a 4000×3000 WebP (lossless, a gradient with grain).
    let jpeg_path = inputs.path().join("photo.jpg");
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(&noise(2800, 2100))
        .unwrap();
    assert!(jpeg.len() > 12_000_000, "the JPEG is {} bytes", jpeg.len());
    std::fs::write(&jpeg_path, &jpeg).unwrap();
    let webp_path = inputs.path().join("scan.webp");
    let grain = noise(4000, 3000);
    let webp = image::RgbImage::from_fn(4000, 3000, |x, y| {
        let g = grain.get_pixel(x, y).0[0] % 8;
        image::Rgb([(x / 16) as u8 ^ g, (y / 12) as u8 ^ g, ((x + y) / 28) as u8])
    });
    webp.save_with_format(&webp_path, image::ImageFormat::WebP).unwrap();

    let dir = inputs.path().to_str().unwrap();
    let client = connect(&sim.base_url(), &[("RUNCOMFY_INPUT_DIRS", dir)]).await;
    let result = call(
        &client,
        "generate_image",
        json!({"prompt": "make it winter", "size": "1024x1024", "force_single": true,
               "images": [jpeg_path.to_str().unwrap(), webp_path.to_str().unwrap()]}),
    )
    .await;
    assert!(!is_error(&result), "{}", text(&result));
    let id = structured(&result)["request_id"].as_str().unwrap().to_owned();
    let job = Control::new(&sim).job(&id).await;
    let sent = job["inputs"].as_array().expect("the simulator lists the inputs");
    assert_eq!(sent.len(), 2, "{job}");
    for input in sent {
        assert_eq!(input["kind"], "data_uri", "{input}");
        assert_eq!(input["mime_type"], "image/png", "{input}");
        assert!(input["bytes"].as_u64().unwrap() <= 6 * 1024 * 1024, "{input}");
        let (w, h) = (input["width"].as_u64().unwrap(), input["height"].as_u64().unwrap());
        assert!(w * h <= 32_000_000, "{input}");
        // The aspect ratio is the original's (4:3 both).
        assert!(((w as f64 / h as f64) - 4.0 / 3.0).abs() < 0.01, "{input}");
    }
    // The noise could not fit at full size: it was downscaled, and the answer says so.
    assert!(sent[0]["width"].as_u64().unwrap() < 2800, "{}", sent[0]);
    client.cancel().await.unwrap();
}

/// Issue 34 finding 8: a small PNG declaring 11000×11000 pixels is refused as a reference, from
/// its header (nothing submitted, nothing decoded); the simulator refuses one sent to it
/// directly, as it refuses a data URI over 6 MiB, as RunComfy does.
#[tokio::test]
async fn a_pixel_bomb_and_an_oversized_data_uri_are_refused() {
    let sim = simulator(fast_config()).await;
    let inputs = tempfile::tempdir().unwrap();
    let bomb = pixel_bomb(11_000, 11_000);
    let bomb_path = inputs.path().join("bomb.png");
    std::fs::write(&bomb_path, &bomb).unwrap();
    let dir = inputs.path().to_str().unwrap();
    let client = connect(&sim.base_url(), &[("RUNCOMFY_INPUT_DIRS", dir)]).await;
    let result = call(
        &client,
        "generate_image",
        json!({"prompt": "p", "size": "1024x1024", "images": [bomb_path.to_str().unwrap()]}),
    )
    .await;
    assert!(is_error(&result), "{}", text(&result));
    assert!(text(&result).contains("11000×11000"), "{}", text(&result));
    assert_eq!(sim.stats().submissions, 0, "nothing was submitted");
    // The server keeps serving.
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();

    let engine = base64::engine::general_purpose::STANDARD;
    let mut big = Vec::new();
    image::RgbImage::new(8, 8)
        .write_to(&mut std::io::Cursor::new(&mut big), image::ImageFormat::Png)
        .unwrap();
    big.resize(6 * 1024 * 1024 + 1, 0);
    let http = reqwest::Client::new();
    for (image, says) in [(bomb, "megapixels"), (big, "MiB")] {
        let body = json!({"prompt": "p", "image_urls": [format!("data:image/png;base64,{}", engine.encode(&image))]});
        let response = http
            .post(format!("{}/v1/models/bytedance/dreamina-4-0/edit", sim.base_url()))
            .bearer_auth("t")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
        let answer: Value = response.json().await.unwrap();
        assert!(answer.to_string().contains(says), "{answer}");
    }
}

/// Issue 40 finding 10: a job reference (`request_id#n`) asks RunComfy for the job's URLs again
/// instead of reusing the journal's, which may have expired; when RunComfy no longer has the job
/// (404001), the copy saved on this machine is sent, and without one the answer says so.
#[tokio::test]
async fn a_job_reference_refreshes_its_url_and_falls_back_to_the_saved_copy() {
    let sim = simulator(fast_config()).await;
    let control = Control::new(&sim);
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
        json!({"prompt": "old job", "size": "1024x1024", "force_single": true}),
    )
    .await;
    poll_until_finished(&client, &id).await;
    // The result read that the journal keeps carries URLs that have expired since.
    control
        .fault(json!({"endpoint": "result", "kind": "expired_urls"}))
        .await;
    let result = call(&client, "get_result", json!({"request_id": id})).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert!(structured(&result)["images"][0].as_str().unwrap().contains("expired=1"));

    let edit = |reference: String| json!({"prompt": "make it winter", "size": "1024x1024", "images": [reference]});
    let result = call(&client, "generate_image", edit(format!("{id}#1"))).await;
    assert!(!is_error(&result), "{}", text(&result));
    let edit_id = structured(&result)["request_id"].as_str().unwrap().to_owned();
    let sent = &control.job(&edit_id).await["inputs"][0];
    assert_eq!(sent["kind"], "url", "{sent}");
    assert!(
        !sent["url"].as_str().unwrap().contains("expired"),
        "a fresh URL: {sent}"
    );

    // RunComfy no longer has the job: the saved copy goes instead.
    let gone = json!({"endpoint": "result", "status": 404, "body": {"error_code": 404001, "error_message": "Request not found"}});
    control.fault(gone.clone()).await;
    let result = call(&client, "generate_image", edit(format!("{id}#1"))).await;
    assert!(!is_error(&result), "{}", text(&result));
    let edit_id = structured(&result)["request_id"].as_str().unwrap().to_owned();
    let sent = &control.job(&edit_id).await["inputs"][0];
    assert_eq!(
        (&sent["kind"], &sent["mime_type"]),
        (&json!("data_uri"), &json!("image/png")),
        "{sent}"
    );
    client.cancel().await.unwrap();

    // Without a saved copy: a clear refusal, nothing submitted.
    let bare = connect(
        &sim.base_url(),
        &[
            ("RUNCOMFY_NO_JOURNAL", "false"),
            ("RUNCOMFY_STATE_DIR", state.path().to_str().unwrap()),
        ],
    )
    .await;
    let other = submit(
        &bare,
        json!({"prompt": "unsaved", "size": "1024x1024", "force_single": true}),
    )
    .await;
    poll_until_finished(&bare, &other).await;
    let before = sim.stats().submissions;
    control.fault(gone).await;
    let result = call(&bare, "generate_image", edit(format!("{other}#1"))).await;
    assert!(is_error(&result), "{}", text(&result));
    assert!(text(&result).contains("no longer has job"), "{}", text(&result));
    assert_eq!(sim.stats().submissions, before, "nothing submitted");
    bare.cancel().await.unwrap();
}
