//! Image rendering: a real PNG of the requested size, cheap to make and encoded once per size.
//!
//! Clients download, decode, preview and save results, so the bytes must be a valid PNG of the
//! exact requested dimensions (up to 6198×2656). An 8-bit indexed gradient with the `Sub`
//! filter and fast deflate keeps even the largest size small and quick; the encoded bytes are
//! cached per size, and concurrent first requests for a size wait on one encoding.
//!
//! [`ImageStyle::Noise`] makes the opposite: random RGB that does not compress, so a 4096×4096
//! result is a ~50 MB PNG — the vendor's recommended maximum — for tests of download limits
//! and memory use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// What the pixels of a result image are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStyle {
    /// A smooth indexed-colour gradient: tiny files (tens of KB even at 6198×2656).
    #[default]
    Gradient,
    /// Incompressible random RGB: a file as large as the raw pixels (48 MiB at 4096×4096).
    Noise,
}

/// One size's PNG, filled by whichever request asks first.
type Encoded = Arc<OnceCell<Bytes>>;

/// Encoded PNGs, one per `(width, height, style)`.
#[derive(Debug, Default)]
pub(crate) struct ImageCache {
    sizes: Mutex<HashMap<(u32, u32, ImageStyle), Encoded>>,
}

impl ImageCache {
    /// The PNG for this size, encoding it on a blocking thread the first time.
    pub(crate) async fn get(&self, width: u32, height: u32, style: ImageStyle) -> std::io::Result<Bytes> {
        let cell = {
            let mut sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(sizes.entry((width, height, style)).or_default())
        };
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || match style {
                ImageStyle::Gradient => render(width, height),
                ImageStyle::Noise => render_noise(width, height),
            })
            .await
            .map_err(std::io::Error::other)?
        })
        .await
        .cloned()
    }
}

/// zlib level 1, the bytes png 0.17's `Compression::Fast` wrote. Not png 0.18's
/// `Compression::Fast`: in a stream that is fdeflate, which made the 6198×2656 gradient 5× larger
/// (1.2 MB) and grew incompressible noise by a third (69 MB at 4096×4096, not ~50 MB).
const FASTEST_DEFLATE: png::DeflateCompression = png::DeflateCompression::Level(1);

/// Renders a diagonal gradient; every row differs so decoders do real work, yet `Sub`
/// filtering turns each row into nearly constant deltas that deflate to almost nothing.
pub(crate) fn render(width: u32, height: u32) -> std::io::Result<Bytes> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 96 + i / 2, 255 - i]).collect();
    encoder.set_palette(palette);
    encoder.set_deflate_compression(FASTEST_DEFLATE);
    encoder.set_filter(png::Filter::Sub);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    {
        let mut stream = writer.stream_writer().map_err(std::io::Error::other)?;
        let mut row = vec![0u8; width as usize];
        for y in 0..u64::from(height) {
            let shade = y * 64 / u64::from(height.max(1));
            for (x, px) in row.iter_mut().enumerate() {
                *px = ((x as u64 * 192 / u64::from(width.max(1))) + shade) as u8;
            }
            std::io::Write::write_all(&mut stream, &row)?;
        }
        stream.finish().map_err(std::io::Error::other)?;
    }
    writer.finish().map_err(std::io::Error::other)?;
    Ok(Bytes::from(out))
}

/// Random RGB rows, unfiltered and stored with the fastest deflate: random bytes do not
/// compress, so the file is the raw pixels plus a little framing.
pub(crate) fn render_noise(width: u32, height: u32) -> std::io::Result<Bytes> {
    let row_len = width as usize * 3;
    let mut out = Vec::with_capacity(row_len * height as usize + 1024);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_deflate_compression(FASTEST_DEFLATE);
    encoder.set_filter(png::Filter::NoFilter);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    {
        let mut stream = writer.stream_writer().map_err(std::io::Error::other)?;
        let mut row = vec![0u8; row_len];
        // xorshift64: fast even unoptimised, and no need for cryptographic randomness here.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..height {
            for chunk in row.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            std::io::Write::write_all(&mut stream, &row)?;
        }
        stream.finish().map_err(std::io::Error::other)?;
    }
    writer.finish().map_err(std::io::Error::other)?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_decodable_png_of_the_requested_size() {
        let bytes = super::render(300, 200).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (300, 200));
    }

    #[test]
    fn noise_does_not_compress() {
        let bytes = super::render_noise(256, 128).unwrap();
        assert!(bytes.len() >= 256 * 128 * 3, "{}", bytes.len());
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (256, 128));
    }
}
