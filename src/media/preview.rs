//! Previews: a result image decoded once from its downloaded file, scaled down and encoded as a
//! JPEG whose longest side and byte size are both capped.
//!
//! Full results are multi-megapixel PNGs of several MB: inline, they would blow the model's
//! context and some clients' 1 MiB result limit. A capped JPEG shows the picture in the chat at
//! a small, predictable cost. JPEG because it is the compact format every client and model
//! reads (the `image` crate's WebP encoder is lossless only); alpha is flattened onto white.
//!
//! The preview is made while the person waits for the picture, so each step is the cheap one:
//! a SIMD area-average shrink (`fast_image_resize`) straight from the decoded buffer, and one
//! JPEG encode (`jpeg-encoder`, 4:2:0) at a quality chosen from how JPEG sizes fall with quality,
//! not a walk down a list of qualities.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use fast_image_resize::{images::Image, images::ImageRef, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
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

/// The JPEG qualities a preview may take, best first, each with the size of its JPEG relative to
/// the first's for white noise, measured with `jpeg-encoder` at 300–768 px: the content whose
/// size falls slowest with quality (a photograph's falls faster, a flat image's faster still),
/// so a quality picked from these is one whose JPEG fits, or, rarely, nearly does.
const QUALITIES: [(u8, f32); 7] = [
    (82, 1.0),
    (76, 0.885),
    (70, 0.806),
    (64, 0.740),
    (58, 0.684),
    (52, 0.635),
    (46, 0.592),
];
/// When not even the lowest quality fits, the preview is made smaller, by enough for this step
/// of [`QUALITIES`] to fit: a smaller picture at a fair quality rather than a blocky one.
const SHRUNK_STEP: usize = 3;
/// Each smaller try is at most this much of the side before, so the tries end.
const MAX_SHRINK: f32 = 0.9;
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
    fit(image, limits).map(|(preview, _encodes)| preview)
}

/// [`from_image`], also saying how many JPEG encodes it took.
fn fit(image: &DynamicImage, limits: PreviewLimits) -> Result<(Preview, usize), String> {
    let max_bytes = limits.max_bytes as f32;
    let mut rgb = scaled(image, limits.max_side.max(MIN_SIDE))?;
    let mut step = 0;
    let mut encodes = 0;
    loop {
        let (quality, relative) = QUALITIES[step];
        let jpeg = encode(&rgb, quality)?;
        encodes += 1;
        if jpeg.len() <= limits.max_bytes {
            let (width, height) = rgb.dimensions();
            return Ok((Preview { jpeg, width, height }, encodes));
        }
        // What this picture would take at the first quality, and so at each lower one.
        let mut at_first = jpeg.len() as f32 / relative;
        let fitting =
            |at_first: f32, from: usize| (from..QUALITIES.len()).find(|&i| at_first * QUALITIES[i].1 <= max_bytes);
        if let Some(next) = fitting(at_first, step + 1) {
            step = next;
            continue;
        }
        // Bytes go with the pixel count: shrink the side by the square root of the excess.
        let excess = at_first * QUALITIES[SHRUNK_STEP].1 / max_bytes;
        let shrink = (0.95 / excess.sqrt()).min(MAX_SHRINK);
        let side = (rgb.width().max(rgb.height()) as f32 * shrink) as u32;
        if side < MIN_SIDE {
            return Err(format!(
                "no preview fits in {} bytes even at {MIN_SIDE} px",
                limits.max_bytes
            ));
        }
        // Shrink the already-small preview rather than the full image again: far cheaper.
        let before = (rgb.width() * rgb.height()) as f32;
        rgb = scaled(&DynamicImage::ImageRgb8(rgb), side)?;
        at_first *= (rgb.width() * rgb.height()) as f32 / before;
        step = fitting(at_first, 0).unwrap_or(QUALITIES.len() - 1);
    }
}

fn reader(path: &Path, format: ImageFormat) -> Result<ImageReader<BufReader<File>>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut reader = ImageReader::new(BufReader::new(file));
    reader.set_format(format);
    Ok(reader)
}

/// `image` fitted within `side`×`side` (never enlarged), aspect ratio kept, alpha flattened onto
/// white. The shrink averages the pixels each output pixel covers (a box filter over the
/// footprint): free of the aliasing a nearest-neighbour shrink of a detailed 6K image would show.
/// RGB and RGBA images are read in place; other layouts (grey, 16-bit) are converted first.
fn scaled(image: &DynamicImage, side: u32) -> Result<RgbImage, String> {
    let (pixels, layout): (Cow<'_, [u8]>, PixelType) = match image {
        DynamicImage::ImageRgb8(rgb) => (Cow::Borrowed(rgb.as_raw()), PixelType::U8x3),
        DynamicImage::ImageRgba8(rgba) => (Cow::Borrowed(rgba.as_raw()), PixelType::U8x4),
        other if other.color().has_alpha() => (Cow::Owned(other.to_rgba8().into_raw()), PixelType::U8x4),
        other => (Cow::Owned(other.to_rgb8().into_raw()), PixelType::U8x3),
    };
    let (width, height) = (image.width(), image.height());
    let (to_width, to_height) = within(width, height, side);
    let resized = if (to_width, to_height) == (width, height) {
        pixels
    } else {
        let source = ImageRef::new(width, height, &pixels, layout).map_err(|e| e.to_string())?;
        let mut target = Image::new(to_width, to_height, layout);
        // RGBA is averaged with its alpha premultiplied (the library's default), so that the
        // colour of transparent pixels does not bleed into their neighbours.
        Resizer::new()
            .resize(
                &source,
                &mut target,
                &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box)),
            )
            .map_err(|e| e.to_string())?;
        Cow::Owned(target.into_vec())
    };
    let rgb = match layout {
        PixelType::U8x4 => flatten(&resized),
        _ => resized.into_owned(),
    };
    RgbImage::from_raw(to_width, to_height, rgb).ok_or_else(|| "the scaled preview has the wrong size".to_owned())
}

/// `width`×`height` scaled to fit within `side`×`side`, never enlarged, at least 1×1.
fn within(width: u32, height: u32, side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= side {
        return (width, height);
    }
    let scale = |n: u32| ((u64::from(n) * u64::from(side) + u64::from(long) / 2) / u64::from(long)).max(1) as u32;
    (scale(width), scale(height))
}

/// RGBA pixels laid over white, as RGB.
fn flatten(rgba: &[u8]) -> Vec<u8> {
    let over_white = |c: u8, a: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
    rgba.chunks_exact(4)
        .flat_map(|p| [over_white(p[0], p[3]), over_white(p[1], p[3]), over_white(p[2], p[3])])
        .collect()
}

fn encode(rgb: &RgbImage, quality: u8) -> Result<Vec<u8>, String> {
    let (Ok(width), Ok(height)) = (u16::try_from(rgb.width()), u16::try_from(rgb.height())) else {
        return Err(format!("{}×{} is too large for a JPEG", rgb.width(), rgb.height()));
    };
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(rgb.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
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

    /// A picture as generated images are: smooth shading, edges, a little grain.
    fn picture(w: u32, h: u32) -> DynamicImage {
        let mut state = 0x9e37_79b9_u32;
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let grain = (state % 9) as u8;
            let inside =
                (x as i64 - i64::from(w) / 2).pow(2) + (y as i64 - i64::from(h) / 3).pow(2) < i64::from(h).pow(2) / 9;
            let base = if inside {
                [200, 80 + (y * 100 / h) as u8, 40]
            } else {
                [(x * 255 / w) as u8, (y * 200 / h) as u8, 120]
            };
            image::Rgb(base.map(|c| c.saturating_add(grain)))
        }))
    }

    #[test]
    fn a_typical_picture_fits_the_default_budget_in_one_encode_at_the_best_quality() {
        let limits = PreviewLimits {
            max_side: 768,
            max_bytes: 150 * 1024,
        };
        let (preview, encodes) = fit(&picture(2048, 1536), limits).unwrap();
        assert_eq!(encodes, 1);
        assert_eq!((preview.width, preview.height), (768, 576));
        assert!(preview.jpeg.len() <= limits.max_bytes);
    }

    #[test]
    fn noise_falls_back_to_a_smaller_preview_within_the_budget_in_a_few_encodes() {
        let limits = PreviewLimits {
            max_side: 768,
            max_bytes: 150 * 1024,
        };
        // Pixel-level noise at the preview's own size: the worst case, nothing averaged away.
        let (preview, encodes) = fit(&noise(768, 512), limits).unwrap();
        eprintln!(
            "{}×{} in {} bytes after {encodes} encodes",
            preview.width,
            preview.height,
            preview.jpeg.len()
        );
        assert!(preview.jpeg.len() <= limits.max_bytes, "{}", preview.jpeg.len());
        // At 768 px no quality fits: the first encode says so, the next is at a smaller size.
        assert!(preview.width < 768, "{}", preview.width);
        assert!(encodes <= 3, "{encodes} encodes");
        let ratio = preview.width as f32 / preview.height as f32;
        assert!((ratio - 1.5).abs() < 0.02, "{ratio}");
    }

    #[test]
    fn a_preview_is_never_over_its_budget_whatever_the_budget() {
        let image = noise(600, 400);
        for max_bytes in [3_000, 9_000, 27_000, 81_000] {
            let limits = PreviewLimits {
                max_side: 512,
                max_bytes,
            };
            let preview = from_image(&image, limits).unwrap();
            assert!(preview.jpeg.len() <= max_bytes, "{} > {max_bytes}", preview.jpeg.len());
        }
    }

    #[test]
    fn transparency_is_flattened_onto_white_and_other_layouts_are_converted() {
        let limits = PreviewLimits {
            max_side: 64,
            max_bytes: 100_000,
        };
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(256, 128, Rgba([255, 0, 0, 0])));
        let preview = from_image(&clear, limits).unwrap();
        assert_eq!((preview.width, preview.height), (64, 32));
        let decoded = image::load_from_memory(&preview.jpeg).unwrap().to_rgb8();
        assert!(
            decoded.pixels().all(|p| p.0.iter().all(|&c| c > 245)),
            "{:?}",
            decoded.get_pixel(0, 0)
        );

        let grey = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(100, 300, image::Luma([30_000u16])));
        let preview = from_image(&grey, limits).unwrap();
        assert_eq!((preview.width, preview.height), (21, 64));
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
