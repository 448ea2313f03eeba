//! Image decoding bounded by pixels as well as bytes.
//!
//! A file's byte size says little about what decoding it costs: a 353 KB PNG can declare
//! 11000×11000 pixels and take 369 MB to decode. So every decode here first reads the declared
//! width and height from the header (cheap, nothing decoded), refuses anything over
//! [`MAX_DECODE_PIXELS`], and then decodes under the `image` crate's [`Limits`], which also
//! bound what the decoder allocates (a 16-bit RGBA image costs eight bytes a pixel).

use std::io::{BufRead, Seek};

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The most pixels any image is decoded at: 64 MP (8000×8000), past the largest photographs
/// people have and past every size RunComfy makes. A pixel bomb declares far more.
pub const MAX_DECODE_PIXELS: u64 = 64_000_000;
/// What one decode may allocate: a 64 MP RGB image takes 192 MB.
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

/// The limits every decode runs under.
pub fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(64_000);
    limits.max_image_height = Some(64_000);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

/// The declared width and height, read from the header only.
pub fn dimensions<R: BufRead + Seek>(reader: ImageReader<R>) -> Result<(u32, u32), String> {
    reader.into_dimensions().map_err(|e| e.to_string())
}

/// Decodes the image `open` reads (called twice: once for the header, once to decode), after
/// checking its declared size against [`MAX_DECODE_PIXELS`]. `Err` says why, for a person.
pub fn decode<R: BufRead + Seek>(
    mut open: impl FnMut() -> Result<ImageReader<R>, String>,
) -> Result<DynamicImage, String> {
    let (width, height) = dimensions(open()?)?;
    check(width, height)?;
    let mut reader = open()?;
    reader.limits(limits());
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => format!(
            "{width}×{height} takes more memory to decode than this server allows ({} MiB)",
            MAX_DECODE_ALLOC / (1024 * 1024)
        ),
        other => other.to_string(),
    })
}

/// A reader over `bytes` in `format`.
pub fn reader(bytes: &[u8], format: ImageFormat) -> ImageReader<std::io::Cursor<&[u8]>> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes));
    reader.set_format(format);
    reader
}

/// Refuses a declared size over [`MAX_DECODE_PIXELS`].
pub fn check(width: u32, height: u32) -> Result<(), String> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_DECODE_PIXELS {
        return Err(format!(
            "the image declares {width}×{height} pixels ({:.0} megapixels); at most {} megapixels are decoded",
            pixels as f64 / 1e6,
            MAX_DECODE_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny PNG whose header declares `width`×`height` pixels (a 1×1 image with its IHDR
    /// rewritten): what a decoder reads before it allocates is all a refusal may cost.
    pub(crate) fn pixel_bomb(width: u32, height: u32) -> Vec<u8> {
        let mut png = Vec::new();
        DynamicImage::new_rgb8(1, 1)
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        // Signature (8), length (4), "IHDR" (4), then width and height; the CRC after the
        // 13 data bytes covers the type and the data.
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    /// Issue 34 finding 8: a PNG declaring 11000×11000 is refused from its header, not decoded.
    #[test]
    fn a_pixel_bomb_is_refused_from_its_header() {
        let bomb = pixel_bomb(11_000, 11_000);
        assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
        let refused = decode(|| Ok(reader(&bomb, ImageFormat::Png))).unwrap_err();
        assert!(
            refused.contains("11000×11000") && refused.contains("megapixels"),
            "{refused}"
        );
    }

    #[test]
    fn an_ordinary_image_decodes() {
        let mut png = Vec::new();
        DynamicImage::new_rgb8(40, 30)
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let image = decode(|| Ok(reader(&png, ImageFormat::Png))).unwrap();
        assert_eq!((image.width(), image.height()), (40, 30));
    }
}
