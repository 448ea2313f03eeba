//! Previews: a result image decoded once from its downloaded file, scaled down and encoded as a
//! JPEG whose longest side and byte size are both capped.
//!
//! Full results are multi-megapixel PNGs of several MB: inline, they would blow the model's
//! context and some clients' 1 MiB result limit. A capped JPEG shows the picture in the chat at
//! a small, predictable cost. JPEG because it is the compact format every client and model
//! reads (the `image` crate's WebP encoder is lossless only); alpha is flattened onto white.

use std::fs::File;
use std::io::{BufReader, Cursor};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, RgbImage};

/// Caps on one preview.
#[derive(Debug, Clone, Copy)]
pub struct PreviewLimits {
    pub max_side: u32,
    pub max_bytes: usize,
}

/// An encoded preview.
#[derive(Debug, Clone)]
pub struct Preview {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Preview {
    pub const MIME_TYPE: &'static str = "image/jpeg";
}

/// JPEG qualities tried in turn before the image is made smaller.
const QUALITIES: [u8; 4] = [82, 70, 58, 45];
/// Each further step scales the preview by this much.
const SHRINK: f32 = 0.75;
/// Below this the preview is not worth having.
const MIN_SIDE: u32 = 32;

/// The stored image's width and height, read from its header only.
pub fn dimensions(path: &Path, format: ImageFormat) -> Result<(u32, u32), String> {
    reader(path, format)?.into_dimensions().map_err(|e| e.to_string())
}

/// Decodes the file and makes a preview within `limits`; also returns the full dimensions.
pub fn make(path: &Path, format: ImageFormat, limits: PreviewLimits) -> Result<(Preview, (u32, u32)), String> {
    // Bounded by pixels as well as bytes: a small file can declare a huge image.
    let image = super::pixels::decode(|| reader(path, format))?;
    let full = (image.width(), image.height());
    Ok((from_image(&image, limits)?, full))
}

/// Scales `image` down (never up) until its JPEG fits `limits`.
pub fn from_image(image: &DynamicImage, limits: PreviewLimits) -> Result<Preview, String> {
    let mut side = limits.max_side.max(MIN_SIDE);
    let mut rgb = flatten(&fit(image, side));
    loop {
        for quality in QUALITIES {
            let jpeg = encode(&rgb, quality)?;
            if jpeg.len() <= limits.max_bytes {
                return Ok(Preview {
                    jpeg,
                    width: rgb.width(),
                    height: rgb.height(),
                });
            }
        }
        side = ((side as f32) * SHRINK) as u32;
        if side < MIN_SIDE {
            return Err(format!(
                "no preview fits in {} bytes even at {MIN_SIDE} px",
                limits.max_bytes
            ));
        }
        // Shrink the already-small preview rather than the full image again: far cheaper.
        rgb = flatten(&fit(&DynamicImage::ImageRgb8(rgb), side));
    }
}

fn reader(path: &Path, format: ImageFormat) -> Result<ImageReader<BufReader<File>>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut reader = ImageReader::new(BufReader::new(file));
    reader.set_format(format);
    Ok(reader)
}

/// `thumbnail` averages the pixels each output pixel covers: fast, and free of the aliasing a
/// nearest-neighbour shrink of a detailed 6K image would show.
fn fit(image: &DynamicImage, side: u32) -> DynamicImage {
    if image.width().max(image.height()) <= side {
        image.clone()
    } else {
        image.thumbnail(side, side)
    }
}

fn flatten(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

fn encode(rgb: &RgbImage, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(rgb)
        .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    fn noise(w: u32, h: u32) -> DynamicImage {
        let mut state = 0x2545_f491_u32;
        DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |_, _| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let [a, b, c, d] = state.to_le_bytes();
            Rgba([a, b, c, d])
        }))
    }

    #[test]
    fn noise_is_squeezed_under_the_byte_cap() {
        let limits = PreviewLimits {
            max_side: 512,
            max_bytes: 20_000,
        };
        let preview = from_image(&noise(1200, 800), limits).unwrap();
        assert!(preview.jpeg.len() <= limits.max_bytes);
        assert!(preview.width <= 512 && preview.height <= 512);
        let decoded = image::load_from_memory(&preview.jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (preview.width, preview.height));
        // Aspect ratio kept (within rounding).
        let ratio = preview.width as f32 / preview.height as f32;
        assert!((ratio - 1.5).abs() < 0.02, "{ratio}");
    }

    #[test]
    fn small_images_are_not_enlarged() {
        let preview = from_image(
            &noise(100, 40),
            PreviewLimits {
                max_side: 768,
                max_bytes: 100_000,
            },
        )
        .unwrap();
        assert_eq!((preview.width, preview.height), (100, 40));
    }

    #[test]
    fn an_impossible_cap_is_an_error_not_a_loop() {
        let limits = PreviewLimits {
            max_side: 512,
            max_bytes: 10,
        };
        assert!(from_image(&noise(600, 600), limits).is_err());
    }
}
