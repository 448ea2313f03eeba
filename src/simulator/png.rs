//! Image rendering: a real PNG of the requested size, cheap to make and encoded once per size.
//!
//! Clients download, decode, preview and save results, so the bytes must be a valid PNG of the
//! exact requested dimensions (up to 6198×2656). An 8-bit indexed gradient with the `Sub`
//! filter and fast deflate keeps even the largest size small and quick; the encoded bytes are
//! cached per size, and concurrent first requests for a size wait on one encoding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::OnceCell;

/// One size's PNG, filled by whichever request asks first.
type Encoded = Arc<OnceCell<Bytes>>;

/// Encoded PNGs, one per `(width, height)`.
#[derive(Debug, Default)]
pub(crate) struct ImageCache {
    sizes: Mutex<HashMap<(u32, u32), Encoded>>,
}

impl ImageCache {
    /// The PNG for this size, encoding it on a blocking thread the first time.
    pub(crate) async fn get(&self, width: u32, height: u32) -> std::io::Result<Bytes> {
        let cell = {
            let mut sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(sizes.entry((width, height)).or_default())
        };
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || render(width, height))
                .await
                .map_err(std::io::Error::other)?
        })
        .await
        .cloned()
    }
}

/// Renders a diagonal gradient; every row differs so decoders do real work, yet `Sub`
/// filtering turns each row into nearly constant deltas that deflate to almost nothing.
pub(crate) fn render(width: u32, height: u32) -> std::io::Result<Bytes> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 96 + i / 2, 255 - i]).collect();
    encoder.set_palette(palette);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::FilterType::Sub);
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

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_decodable_png_of_the_requested_size() {
        let bytes = super::render(300, 200).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (300, 200));
    }
}
