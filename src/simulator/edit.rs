//! Edit results: drawn from the first reference image the simulator can read, so that a test
//! (or a person trying the server offline) can see that the reference reached the model.
//!
//! The output is that image scaled to the requested size, every pixel moved a quarter of the way
//! towards orange ([`TINT`]): the input stays recognisable and the edit is visible. Without a
//! size in the request the output keeps the reference's aspect ratio (its long side that of the
//! default size), as an edit of a 4:3 photo should not come back square. When no reference can
//! be read, the output is a grey checkerboard with the same tint, at the requested or default
//! size.
//!
//! The edit endpoint is strict about its body ([`undeclared`]): a key its catalogue schema does
//! not declare is refused with the upstream's 422, as RunComfy's validation refuses extra inputs.
//!
//! What it reads: data URIs (already decoded when the submit was judged), its own result URLs
//! (straight from its state, with no connection), and other URLs only on a loopback IP address
//! (a test's local server), without proxies or redirects. It never opens a connection to any
//! other address: `https://images.invalid/…` in a test is only passed through.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use image::{imageops::FilterType, DynamicImage, RgbImage};
use tokio::sync::OnceCell;

use super::catalogue;
use super::input::{self, Reference, Violation, SIZE_KEY};
use super::state::Job;
use super::Shared;

/// The colour edits are tinted with.
pub(crate) const TINT: [u8; 3] = [255, 128, 0];
/// Largest image fetched from a loopback URL.
const MAX_FETCH_BYTES: usize = 64 * 1024 * 1024;
/// An edit of an edit of … is drawn through at most this many of its own results.
const MAX_DEPTH: u8 = 8;

/// An edit's output, and which reference it was drawn from (`None`: the placeholder).
#[derive(Debug, Clone)]
pub(crate) struct Drawn {
    pub(crate) png: Bytes,
    pub(crate) from: Option<usize>,
}

/// Drawn outputs, one per edit job, made by whichever request asks first.
#[derive(Debug, Default)]
pub(crate) struct EditCache {
    jobs: Mutex<HashMap<String, Arc<OnceCell<Drawn>>>>,
}

impl EditCache {
    fn cell(&self, id: &str) -> Arc<OnceCell<Drawn>> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(jobs.entry(id.to_owned()).or_default())
    }

    /// Which reference job `id` was drawn from, once it has been drawn: `Some(None)` for the
    /// placeholder.
    pub(crate) fn drawn_from(&self, id: &str) -> Option<Option<usize>> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(id).and_then(|cell| cell.get()).map(|d| d.from)
    }
}

/// A client for loopback URLs only: no proxy (it would be another address), no redirects (they
/// could lead anywhere).
pub(crate) fn loopback_client() -> std::io::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(std::io::Error::other)
}

/// The PNG of an edit job's outputs, drawing it the first time.
pub(crate) async fn drawn(sim: &Shared, id: &str, job: &Job) -> std::io::Result<Drawn> {
    drawn_at(sim, id, job, 0).await
}

async fn drawn_at(sim: &Shared, id: &str, job: &Job, depth: u8) -> std::io::Result<Drawn> {
    let cell = sim.edits.cell(id);
    let made = cell
        .get_or_try_init(|| async {
            let mut source = None;
            for (i, reference) in job.references.iter().enumerate() {
                if let Some(image) = read(sim, reference, depth).await {
                    source = Some((i, image));
                    break;
                }
            }
            let from = source.as_ref().map(|(i, _)| *i);
            let (width, height) = match &source {
                Some((_, image)) if job.request.get(SIZE_KEY).is_none() => {
                    keep_ratio(image.width(), image.height(), job.width.max(job.height))
                }
                _ => (job.width, job.height),
            };
            let png = tokio::task::spawn_blocking(move || draw(source.map(|(_, image)| image), width, height))
                .await
                .map_err(std::io::Error::other)??;
            tracing::debug!(request_id = id, ?from, "simulator: edit drawn");
            Ok::<_, std::io::Error>(Drawn { png, from })
        })
        .await?;
    Ok(made.clone())
}

/// A reference as pixels, if the simulator may and can read it.
async fn read(sim: &Shared, reference: &Reference, depth: u8) -> Option<DynamicImage> {
    let bytes = match reference {
        Reference::Data { bytes, .. } => bytes.clone(),
        Reference::Url(url) => fetch(sim, url, depth).await?,
    };
    tokio::task::spawn_blocking(move || image::load_from_memory(&bytes).ok())
        .await
        .ok()
        .flatten()
}

/// The bytes behind a loopback URL: one of its own results, or a local server's file.
async fn fetch(sim: &Shared, url: &str, depth: u8) -> Option<Bytes> {
    let parsed = reqwest::Url::parse(url).ok()?;
    // Only an IP literal: a name could resolve anywhere.
    let host = parsed.host_str()?.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    if !ip.is_loopback() {
        return None;
    }
    if let Some(file) = url.strip_prefix(&format!("{}/files/", sim.base_url)) {
        return own_result(sim, file, depth).await;
    }
    let mut response = sim.http.get(parsed).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_FETCH_BYTES {
            return None;
        }
    }
    Some(body.into())
}

/// `{id}/{n}.png` of its own results, as `/files/` would serve it.
async fn own_result(sim: &Shared, file: &str, depth: u8) -> Option<Bytes> {
    let (id, name) = file.split_once('/')?;
    let job = sim.jobs.get(id)?;
    // Only a finished job's own PNGs (not a video's or an audio's file).
    let n = job.output_index(name)?;
    if job.references.is_empty() {
        let caption = job.caption(id, n);
        return sim
            .images
            .get((job.width, job.height), sim.config().image_style, caption)
            .await
            .ok();
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    Box::pin(drawn_at(sim, id, &job, depth + 1)).await.ok().map(|d| d.png)
}

/// The keys of an edit `body` that `model`'s catalogue schema does not declare, each as the
/// upstream's 422 entry. A body that is not an object is left to the endpoint's own check.
pub(crate) fn undeclared(model: &str, body: &[u8]) -> Vec<Violation> {
    let Ok(object) = input::parse_object(body) else {
        return Vec::new();
    };
    let Some(declared) = catalogue::find(model).and_then(|e| e["input_schema"]["properties"].as_object()) else {
        return Vec::new();
    };
    object
        .keys()
        .filter(|key| !declared.contains_key(*key))
        .map(|key| Violation::new(Some(key), "Extra inputs are not permitted", "extra_forbidden"))
        .collect()
}

/// `width`×`height` scaled so that its long side is `long`, its ratio kept.
fn keep_ratio(width: u32, height: u32, long: u32) -> (u32, u32) {
    let (w, h, long) = (u64::from(width.max(1)), u64::from(height.max(1)), u64::from(long));
    let short = |big: u64, small: u64| ((long * small + big / 2) / big).clamp(1, long) as u32;
    if w >= h {
        (long as u32, short(w, h))
    } else {
        (short(h, w), long as u32)
    }
}

/// `source` scaled to `width`×`height` (or the placeholder), tinted, as a PNG.
fn draw(source: Option<DynamicImage>, width: u32, height: u32) -> std::io::Result<Bytes> {
    let mut canvas = match source {
        Some(image) => image::imageops::resize(&image.to_rgb8(), width, height, FilterType::Triangle),
        None => checkerboard(width, height),
    };
    for pixel in canvas.pixels_mut() {
        for (channel, tint) in pixel.0.iter_mut().zip(TINT) {
            *channel = tinted(*channel, tint);
        }
    }
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        Cursor::new(&mut out),
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Sub,
    );
    canvas.write_with_encoder(encoder).map_err(std::io::Error::other)?;
    Ok(Bytes::from(out))
}

/// A quarter of the way from `value` to `tint`.
pub(crate) fn tinted(value: u8, tint: u8) -> u8 {
    ((u16::from(value) * 3 + u16::from(tint)) / 4) as u8
}

/// Grey squares of 64 px: plainly not a picture of anything.
fn checkerboard(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let shade = if (x / 64 + y / 64) % 2 == 0 { 96 } else { 160 };
        image::Rgb([shade, shade, shade])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_the_input_scaled_and_tinted() {
        let input = DynamicImage::ImageRgb8(RgbImage::from_pixel(10, 10, image::Rgb([0, 160, 255])));
        let png = draw(Some(input), 40, 20).unwrap();
        let out = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (40, 20));
        let expected = [tinted(0, 255), tinted(160, 128), tinted(255, 0)];
        assert_eq!(out.get_pixel(20, 10).0, expected);
        assert_eq!(expected, [63, 152, 191]);
    }

    #[test]
    fn without_a_readable_input_it_is_a_tinted_checkerboard() {
        let out = image::load_from_memory(&draw(None, 130, 70).unwrap())
            .unwrap()
            .to_rgb8();
        assert_eq!(out.get_pixel(0, 0).0, [tinted(96, 255), tinted(96, 128), tinted(96, 0)]);
        assert_eq!(
            out.get_pixel(64, 0).0,
            [tinted(160, 255), tinted(160, 128), tinted(160, 0)]
        );
    }

    #[test]
    fn an_unsized_edit_keeps_its_references_ratio() {
        assert_eq!(keep_ratio(800, 600, 2048), (2048, 1536));
        assert_eq!(keep_ratio(600, 800, 2048), (1536, 2048));
        assert_eq!(keep_ratio(10, 10, 1024), (1024, 1024));
        assert_eq!(keep_ratio(10_000, 1, 2048), (2048, 1));
    }

    #[test]
    fn an_edit_body_with_an_undeclared_key_is_refused_by_name() {
        let body = serde_json::json!({"prompt": "p", "image_urls": ["https://x.invalid/a.png"], "seed": 3});
        let refused = undeclared(input::EDIT_MODEL_ID, body.to_string().as_bytes());
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].loc, ["body", "seed"]);
        assert_eq!(refused[0].kind, "extra_forbidden");
        let fine = serde_json::json!({"prompt": "p", "image_urls": []});
        assert!(undeclared(input::EDIT_MODEL_ID, fine.to_string().as_bytes()).is_empty());
    }
}
