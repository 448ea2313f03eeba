//! Saving a 50 MB image streams it to disk: peak RSS must not grow by anything near the image's
//! size. Run alone in a process of its own (scripts/soak) so that no other test's allocations
//! share the process.
//! The figure itself (about +2 MB for a 50.5 MB PNG) is measured by `examples/save_peak_rss.rs`.
//!
//! A memory bound, so a soak test: `cargo test` lists it as ignored, scripts/soak runs it. It
//! needs `/proc/self/clear_refs` to reset the peak before the save, and fails if it cannot.

#![cfg(target_os = "linux")]

use std::time::Duration;

use crate::common::{
    proc::{own_peak_kib, reset_own_peak},
    *,
};
use runcomfy_mcp::media::{self, save::OutputDir, AddressPolicy, Downloader, MediaOptions};
use runcomfy_mcp::runcomfy::{ApiToken, Client, ClientConfig, JobStatus};
use runcomfy_mcp::simulator::ImageStyle;
use serde_json::json;

#[tokio::test]
#[ignore = "soak: a memory bound, run by scripts/soak"]
async fn soak_saving_a_50_mb_image_does_not_hold_it_in_memory() {
    let sim = simulator(fast_config()).await;
    sim.set_config(runcomfy_mcp::simulator::SimConfig {
        image_style: ImageStyle::Noise,
        ..fast_config()
    });
    let client = Client::new(ClientConfig {
        base_url: sim.base_url(),
        token: ApiToken::new(TOKEN),
        model: "bytedance/dreamina-4-0/text-to-image".into(),
        timeout: Duration::from_secs(60),
        retry: runcomfy_mcp::runcomfy::RetryPolicy::default(),
    })
    .unwrap();
    let id = client
        .submit(&json!({"prompt": "noise", "width\u{d7}height": "4096x4096(1:1)", "force_single": true}))
        .await
        .unwrap();
    let urls = eventually(
        async || {
            let answer = client.result(None, &id).await.unwrap();
            if answer.status == JobStatus::Succeeded {
                Ok(answer.output.unwrap().image_urls())
            } else {
                Err(answer.status)
            }
        },
        "the job to succeed",
    )
    .await;
    // The simulator renders and caches the PNG in this process on first request: do that
    // before measuring, so that only the download and save are measured.
    let size = reqwest::get(&urls[0]).await.unwrap().bytes().await.unwrap().len();
    assert!(size > 48 * 1024 * 1024, "a ~50 MB PNG, got {size}");

    let dir = tempfile::tempdir().unwrap();
    let options = MediaOptions {
        output_dir: Some(OutputDir::prepare(dir.path().to_str().unwrap()).unwrap()),
        previews: false,
        ..MediaOptions::default()
    };
    // Resets VmHWM to the current RSS. Without it the peak would be the process's whole history
    // and the bound would measure nothing: fail rather than pass without measuring.
    reset_own_peak();
    let before = own_peak_kib();
    let downloader = Downloader::new(AddressPolicy::for_upstream(&sim.base_url())).unwrap();
    let urls = media::OutputUrls {
        images: urls,
        ..media::OutputUrls::default()
    };
    let collected = media::collect(
        &downloader,
        &options,
        media::Request {
            name_stem: id.as_str(),
            urls: &urls,
            full_size: false,
        },
    )
    .await;
    let grew_mb = (own_peak_kib() - before) / 1024;
    eprintln!("peak RSS grew by {grew_mb} MB while saving a {size}-byte image");
    let output = &collected.outputs[0];
    assert!(output.problem.is_none(), "{:?}", output.problem);
    assert_eq!(output.bytes, Some(size as u64));
    assert_eq!(
        std::fs::metadata(output.saved_path.as_ref().unwrap()).unwrap().len(),
        size as u64
    );
    // Measured: about 2 MB. A quarter of the image leaves room for allocator noise while still
    // failing at once if the body were ever buffered.
    assert!(
        grew_mb < 12,
        "peak RSS grew by {grew_mb} MB while saving a {} MB image",
        size / 1_000_000
    );
}

/// A 353 KB PNG declaring 11000×11000 pixels (zlib-compressed zero rows, as in issue 34).
fn pixel_bomb() -> Vec<u8> {
    use std::io::Write;
    let (width, height) = (11_000u32, 11_000u32);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        let row = vec![0u8; width as usize * 3];
        for _ in 0..height {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

/// Issue 34 finding 8: a pixel bomb as a reference image and as a result image to preview costs
/// under 100 MB (it raised a preview decode to 369 MB before decodes were bounded by pixels).
#[tokio::test]
#[ignore = "soak: a memory bound, run by scripts/soak"]
async fn soak_a_pixel_bomb_costs_under_100_mb() {
    let bomb = pixel_bomb();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.png");
    std::fs::write(&path, &bomb).unwrap();
    let uri = format!(
        "data:image/png;base64,{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bomb)
    );
    reset_own_peak();
    let before = own_peak_kib();
    let options = media::inputs::InputOptions::default();
    let refused = media::inputs::data_uri(&options, &uri).await.unwrap_err();
    assert!(refused.contains("megapixels"), "{refused}");
    let limits = media::preview::PreviewLimits {
        max_side: 768,
        max_bytes: 150 * 1024,
    };
    let refused = media::preview::make(&path, image::ImageFormat::Png, limits).unwrap_err();
    assert!(refused.contains("megapixels"), "{refused}");
    let grown = own_peak_kib().saturating_sub(before);
    eprintln!("a pixel bomb raised peak RSS by {grown} kB");
    assert!(grown < 100 * 1024, "a pixel bomb raised peak RSS by {grown} kB");
}
