//! An image as RunComfy is sent it: a PNG within the Model API's per-input limits, downscaled
//! to fit, decoded within a pixel bound.

use base64::Engine as _;
use image::{codecs::png::PngEncoder, DynamicImage, ImageEncoder, ImageFormat};
use tokio::sync::Semaphore;

/// The most bytes one image input may have as sent (the PNG, before base64): the Model API's
/// per-input limit as RunComfy's own client states and enforces it (6 MiB).
pub const MAX_INPUT_PNG_BYTES: usize = 6 * 1024 * 1024;
/// The most pixels one image input may have as sent: RunComfy's client refuses more than 32
/// million.
pub const MAX_INPUT_PIXELS: u64 = 32_000_000;
/// Re-encodings running at once in the whole process: each holds a decoded image of up to
/// 64 MP, so a crowd of edits must not decode a crowd of them at once.
pub(super) static ENCODES: Semaphore = Semaphore::const_new(2);

/// An image's bytes (of a sniffed format) as the PNG RunComfy is sent, with its width and height.
pub async fn png_of(bytes: Vec<u8>, format: ImageFormat) -> Result<(Vec<u8>, u32, u32), String> {
    let _slot = ENCODES.acquire().await;
    let png = tokio::task::spawn_blocking(move || as_png(&bytes, format))
        .await
        .map_err(|e| format!("re-encoding the image failed: {e}"))?
        .map_err(|e| format!("the image cannot be used: {e}"))?;
    Ok((png.bytes, png.width, png.height))
}

pub(super) const PNG_MIME: &str = "image/png";

/// An image as it is sent: a PNG within RunComfy's per-input limits.
#[derive(Debug)]
pub(super) struct Png {
    pub(super) bytes: Vec<u8>,
    pub(super) width: u32,
    pub(super) height: u32,
    /// The image's own size, when it was downscaled to fit.
    pub(super) downscaled_from: Option<(u32, u32)>,
    pub(super) original_bytes: usize,
}

impl Png {
    pub(super) fn data_uri(&self) -> String {
        let engine = base64::engine::general_purpose::STANDARD;
        format!("data:{PNG_MIME};base64,{}", engine.encode(&self.bytes))
    }

    /// `PNG 2000×1500, downscaled from 4000×3000 to fit RunComfy's 6 MiB / 32 MP per image`.
    pub(super) fn sent_as(&self) -> Option<String> {
        let (w, h) = self.downscaled_from?;
        Some(format!(
            "PNG {}×{}, downscaled from {w}×{h} to fit RunComfy's {} MiB / {} MP per image",
            self.width,
            self.height,
            MAX_INPUT_PNG_BYTES / (1024 * 1024),
            MAX_INPUT_PIXELS / 1_000_000
        ))
    }
}

/// Encode attempts before giving up on fitting the byte limit (each one smaller).
const FIT_ATTEMPTS: usize = 8;

/// `bytes` (a PNG, JPEG or WebP image) as RunComfy's client sends an image: a PNG of at most
/// [`MAX_INPUT_PIXELS`] and [`MAX_INPUT_PNG_BYTES`], downscaled (aspect ratio kept) until it
/// fits. A PNG already within both limits goes as it is. Blocking work.
pub(super) fn as_png(bytes: &[u8], format: ImageFormat) -> Result<Png, String> {
    let (width, height) = crate::media::pixels::dimensions(crate::media::pixels::reader(bytes, format))
        .map_err(|e| format!("its header cannot be read ({e})"))?;
    let pixels = u64::from(width) * u64::from(height);
    if format == ImageFormat::Png && pixels <= MAX_INPUT_PIXELS && bytes.len() <= MAX_INPUT_PNG_BYTES {
        return Ok(Png {
            bytes: bytes.to_vec(),
            width,
            height,
            downscaled_from: None,
            original_bytes: bytes.len(),
        });
    }
    let image = crate::media::pixels::decode(|| Ok(crate::media::pixels::reader(bytes, format)))?;
    // Eight bits a channel, alpha only where there is any: what RunComfy's client sends.
    let image = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    };
    let mut target = pixels.min(MAX_INPUT_PIXELS);
    for _ in 0..FIT_ATTEMPTS {
        let (w, h) = fit(width, height, target);
        let scaled;
        let sent = if (w, h) == (width, height) {
            &image
        } else {
            scaled = image.thumbnail_exact(w, h);
            &scaled
        };
        let png = encode_png(sent)?;
        if png.len() <= MAX_INPUT_PNG_BYTES {
            return Ok(Png {
                original_bytes: bytes.len(),
                bytes: png,
                width: w,
                height: h,
                downscaled_from: ((w, h) != (width, height)).then_some((width, height)),
            });
        }
        // A PNG's size grows about with its pixels: aim a little under the limit.
        let ratio = MAX_INPUT_PNG_BYTES as f64 / png.len() as f64;
        target = ((u64::from(w) * u64::from(h)) as f64 * ratio * 0.9) as u64;
    }
    Err(format!(
        "it does not fit in a {} MiB PNG even when made smaller; give a smaller image or an https:// URL",
        MAX_INPUT_PNG_BYTES / (1024 * 1024)
    ))
}

/// The largest size with the aspect ratio of `width`×`height` and at most `pixels` pixels.
fn fit(width: u32, height: u32, pixels: u64) -> (u32, u32) {
    let have = u64::from(width) * u64::from(height);
    if have <= pixels {
        return (width, height);
    }
    let scale = (pixels as f64 / have as f64).sqrt();
    let w = ((f64::from(width) * scale).floor() as u32).max(1);
    let h = ((f64::from(height) * scale).floor() as u32).max(1);
    (w, h)
}

fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(image.as_bytes(), image.width(), image.height(), image.color().into())
        .map_err(|e| format!("it cannot be encoded as PNG ({e})"))?;
    Ok(out)
}

pub(super) fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    match image::guess_format(bytes) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) => Some(format),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::inputs::tests::encoded;

    fn noise(w: u32, h: u32) -> DynamicImage {
        let mut state = 0x2545_f491_u32;
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |_, _| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let [a, b, c, _] = state.to_le_bytes();
            image::Rgb([a, b, c])
        }))
    }

    /// Issue 40 finding 6: a JPEG or WebP goes as a PNG, downscaled until it fits 6 MiB.
    #[test]
    fn images_go_as_pngs_within_runcomfys_per_input_limits() {
        // Noise: its PNG is about 3 bytes a pixel, so 2400×1800 (13 MB as PNG) must shrink.
        let jpeg = encoded(&noise(2400, 1800), ImageFormat::Jpeg);
        let png = as_png(&jpeg, ImageFormat::Jpeg).unwrap();
        assert!(png.bytes.len() <= MAX_INPUT_PNG_BYTES, "{}", png.bytes.len());
        assert_eq!(image::guess_format(&png.bytes).unwrap(), ImageFormat::Png);
        assert_eq!(png.downscaled_from, Some((2400, 1800)));
        let sent = image::load_from_memory(&png.bytes).unwrap();
        assert_eq!((sent.width(), sent.height()), (png.width, png.height));
        let ratio = f64::from(png.width) / f64::from(png.height);
        assert!((ratio - 4.0 / 3.0).abs() < 0.01, "{ratio}");
        assert!(png.sent_as().unwrap().contains("downscaled from 2400×1800"));

        // A small WebP is re-encoded at its own size; a small PNG goes as it is.
        let webp = encoded(&DynamicImage::new_rgba8(30, 20), ImageFormat::WebP);
        let png = as_png(&webp, ImageFormat::WebP).unwrap();
        assert_eq!(image::guess_format(&png.bytes).unwrap(), ImageFormat::Png);
        assert_eq!((png.width, png.height, png.downscaled_from), (30, 20, None));
        let small = encoded(&DynamicImage::new_rgb8(30, 20), ImageFormat::Png);
        assert_eq!(as_png(&small, ImageFormat::Png).unwrap().bytes, small);
    }

    #[test]
    fn the_pixel_limit_is_kept_without_decoding_a_bomb() {
        assert_eq!(fit(8000, 6000, MAX_INPUT_PIXELS), (6531, 4898));
        assert!(u64::from(6531u32) * 4898 <= MAX_INPUT_PIXELS);
        assert_eq!(fit(100, 50, MAX_INPUT_PIXELS), (100, 50));
        // Issue 34 finding 8: 11000×11000 declared in a tiny file is refused from its header.
        let bomb = crate::media::pixels::tests::pixel_bomb(11_000, 11_000);
        let refused = as_png(&bomb, ImageFormat::Png).unwrap_err();
        assert!(refused.contains("megapixels"), "{refused}");
    }
}
