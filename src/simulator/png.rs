//! Image rendering: a real PNG of the requested size that shows what was asked, cheap to make.
//!
//! Clients download, decode, preview and save results, so the bytes must be a valid PNG of the
//! exact requested dimensions (up to 6198×2656). A text-to-image result is an 8-bit indexed
//! gradient whose colours come from a hash of the job and the output (each job, and each image of
//! a batch, looks different), with the prompt's words, the size and the image's reference
//! (`request_id#n`) written across it in a tiny bitmap font: a person trying the server offline
//! sees that their prompt arrived and which job they are looking at. The `Sub` filter and fast
//! deflate keep even the largest size small and quick; each output is encoded once, and
//! concurrent first requests for it wait on one encoding.
//!
//! [`ImageStyle::Noise`] makes the opposite: random RGB that does not compress, so a 4096×4096
//! result is a ~50 MB PNG — the vendor's recommended maximum — for tests of download limits
//! and memory use. It is the same for every job of a size.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

/// What the pixels of a result image are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStyle {
    /// A smooth indexed-colour gradient with the request written on it: tiny files (tens of KB
    /// even at 6198×2656).
    #[default]
    Gradient,
    /// Incompressible random RGB: a file as large as the raw pixels (48 MiB at 4096×4096).
    Noise,
}

/// What a text-to-image output shows: the job's prompt, its size, and its own reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Caption {
    pub(crate) prompt: String,
    /// `request_id#n`.
    pub(crate) reference: String,
}

/// One output's PNG, filled by whichever request asks first.
type Encoded = Arc<OnceCell<Bytes>>;

/// Past this many outputs, the cache starts again: each is cheap to draw again, and a
/// simulator that serves thousands of jobs must not keep every one of them.
const MAX_CACHED: usize = 512;

/// An output's size, style and caption (none for noise, the same for every job of a size).
type Key = (u32, u32, ImageStyle, Option<Caption>);

/// Encoded PNGs, one per output (noise: one per size).
#[derive(Debug, Default)]
pub(crate) struct ImageCache {
    outputs: Mutex<HashMap<Key, Encoded>>,
}

impl ImageCache {
    /// The PNG of this output, encoding it on a blocking thread the first time.
    pub(crate) async fn get(
        &self,
        (width, height): (u32, u32),
        style: ImageStyle,
        caption: Caption,
    ) -> std::io::Result<Bytes> {
        let caption = (style == ImageStyle::Gradient).then_some(caption);
        let cell = {
            let mut outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
            if outputs.len() >= MAX_CACHED {
                outputs.clear();
            }
            Arc::clone(outputs.entry((width, height, style, caption.clone())).or_default())
        };
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || match caption {
                Some(caption) => render_captioned(width, height, &caption),
                None => render_noise(width, height),
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

/// Palette entries of the writing: the letters, and the band behind them.
const INK: u8 = 255;
const BAND: u8 = 254;

/// A plain diagonal gradient (no writing), for the tests that only need some PNG.
#[cfg(test)]
pub(crate) fn render(width: u32, height: u32) -> std::io::Result<Bytes> {
    encode_indexed(width, height, &palette(0), |_| {})
}

/// The gradient in colours of the caption's own, with the caption written on it.
pub(crate) fn render_captioned(width: u32, height: u32, caption: &Caption) -> std::io::Result<Bytes> {
    let seed = fnv1a(caption.prompt.as_bytes()) ^ fnv1a(caption.reference.as_bytes()).rotate_left(17);
    let lines = caption_lines(width, height, caption);
    encode_indexed(width, height, &palette(seed), |(y, row)| write_lines(&lines, y, row))
}

/// 256 RGB entries: a gradient between two colours picked by `seed`, then the band and the ink.
fn palette(seed: u64) -> Vec<u8> {
    let pick = |shift: u32| -> [u8; 3] {
        let bits = (seed >> shift) as u32;
        [
            (bits & 0xff) as u8,
            ((bits >> 8) & 0xff) as u8,
            ((bits >> 16) & 0xff) as u8,
        ]
    };
    // Seed 0 keeps the old blue-to-orange look.
    let (from, to) = if seed == 0 {
        ([0, 96, 255], [255, 224, 0])
    } else {
        (pick(0), pick(24))
    };
    let mut palette: Vec<u8> = (0..254u32)
        .flat_map(|i| (0..3).map(move |c| ((u32::from(from[c]) * (253 - i) + u32::from(to[c]) * i) / 253) as u8))
        .collect();
    palette.extend_from_slice(&[16, 16, 16, 255, 255, 255]);
    palette
}

/// Rows of the gradient, each handed to `overlay` (with its y) before it is written. Every row
/// differs so decoders do real work, yet `Sub` filtering turns each row into nearly constant
/// deltas that deflate to almost nothing.
fn encode_indexed(
    width: u32,
    height: u32,
    palette: &[u8],
    mut overlay: impl FnMut((u32, &mut [u8])),
) -> std::io::Result<Bytes> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(palette.to_vec());
    encoder.set_deflate_compression(FASTEST_DEFLATE);
    encoder.set_filter(png::Filter::Sub);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    {
        let mut stream = writer.stream_writer().map_err(std::io::Error::other)?;
        let mut row = vec![0u8; width as usize];
        for y in 0..height {
            let shade = u64::from(y) * 60 / u64::from(height.max(1));
            for (x, px) in row.iter_mut().enumerate() {
                *px = ((x as u64 * 192 / u64::from(width.max(1))) + shade) as u8;
            }
            overlay((y, &mut row));
            std::io::Write::write_all(&mut stream, &row)?;
        }
        stream.finish().map_err(std::io::Error::other)?;
    }
    writer.finish().map_err(std::io::Error::other)?;
    Ok(Bytes::from(out))
}

/// The writing, laid out: its lines, where they start and how large a font pixel is.
struct Lines {
    text: Vec<Vec<&'static [u8; 7]>>,
    scale: u32,
    left: u32,
    top: u32,
}

/// The prompt's words wrapped to the width (as many lines as fit, the last cut with `...`),
/// then the size and the reference.
fn caption_lines(width: u32, height: u32, caption: &Caption) -> Lines {
    // About 40 characters across, but never a font pixel under one image pixel.
    let scale = (width / (40 * 6)).max(1);
    let columns = ((width / scale).saturating_sub(12) / 6).max(1) as usize;
    let rows = ((height / scale).saturating_sub(12) / 10).max(1) as usize;
    let tail = [format!("{width}×{height}"), caption.reference.clone()];
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in caption.prompt.split_whitespace() {
        let word: String = word.chars().take(columns).collect();
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > columns {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    let room = rows.saturating_sub(tail.len() + 1).max(1);
    if lines.len() > room {
        lines.truncate(room);
        if let Some(last) = lines.last_mut() {
            let kept: String = last.chars().take(columns.saturating_sub(3)).collect();
            *last = format!("{kept}...");
        }
    }
    lines.push(String::new());
    lines.extend(tail.into_iter().map(|l| l.chars().take(columns).collect()));
    Lines {
        text: lines.iter().map(|l| l.chars().map(glyph).collect()).collect(),
        scale,
        left: 6 * scale,
        top: 6 * scale,
    }
}

/// Writes row `y` of the lines into `row`: a dark band behind each line, the letters in white.
fn write_lines(lines: &Lines, y: u32, row: &mut [u8]) {
    let Some(inside) = y.checked_sub(lines.top) else {
        return;
    };
    let line_height = 10 * lines.scale;
    let (index, within) = ((inside / line_height) as usize, inside % line_height);
    let Some(line) = lines.text.get(index).filter(|l| !l.is_empty()) else {
        return;
    };
    let band_end = (lines.left as usize + line.len() * 6 * lines.scale as usize + lines.scale as usize).min(row.len());
    let band_start = (lines.left.saturating_sub(lines.scale) as usize).min(band_end);
    row[band_start..band_end].fill(BAND);
    // Font rows start one font pixel into the band, which is 10 font pixels high.
    let Some(font_row) = (within / lines.scale).checked_sub(1).filter(|r| *r < 7) else {
        return;
    };
    for (n, glyph) in line.iter().enumerate() {
        let bits = glyph[font_row as usize];
        for column in 0..5u32 {
            if bits & (0x10 >> column) == 0 {
                continue;
            }
            let x = lines.left + (n as u32 * 6 + column) * lines.scale;
            let from = (x as usize).min(row.len());
            let to = ((x + lines.scale) as usize).min(row.len());
            row[from..to].fill(INK);
        }
    }
}

/// FNV-1a: a stable hash (the same picture for the same job in every run and on every machine).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A 5×7 bitmap font: each row's five pixels in the low bits, left first. Letters are drawn in
/// capitals; a character it lacks is drawn as `?`.
fn glyph(c: char) -> &'static [u8; 7] {
    const UNKNOWN: [u8; 7] = [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04];
    const LETTERS: [[u8; 7]; 26] = [
        [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
    ];
    const DIGITS: [[u8; 7]; 10] = [
        [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
    ];
    const SPACE: [u8; 7] = [0; 7];
    const DOT: [u8; 7] = [0, 0, 0, 0, 0, 0x0C, 0x0C];
    const COMMA: [u8; 7] = [0, 0, 0, 0, 0x0C, 0x04, 0x08];
    const COLON: [u8; 7] = [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0];
    const DASH: [u8; 7] = [0, 0, 0, 0x1F, 0, 0, 0];
    const HASH: [u8; 7] = [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A];
    const OPEN: [u8; 7] = [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02];
    const CLOSE: [u8; 7] = [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08];
    const SLASH: [u8; 7] = [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0];
    const BANG: [u8; 7] = [0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04];
    const QUOTE: [u8; 7] = [0x04, 0x04, 0x08, 0, 0, 0, 0];
    const QUOTES: [u8; 7] = [0x0A, 0x0A, 0, 0, 0, 0, 0];
    const TIMES: [u8; 7] = [0, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0];
    match c.to_ascii_uppercase() {
        c @ 'A'..='Z' => &LETTERS[c as usize - 'A' as usize],
        c @ '0'..='9' => &DIGITS[c as usize - '0' as usize],
        ' ' => &SPACE,
        '.' => &DOT,
        ',' => &COMMA,
        ':' | ';' => &COLON,
        '-' | '_' => &DASH,
        '#' => &HASH,
        '(' | '[' => &OPEN,
        ')' | ']' => &CLOSE,
        '/' => &SLASH,
        '!' => &BANG,
        '\'' | '‘' | '’' => &QUOTE,
        '"' | '“' | '”' => &QUOTES,
        '×' => &TIMES,
        _ => &UNKNOWN,
    }
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

    fn pixels(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn caption(prompt: &str, reference: &str) -> super::Caption {
        super::Caption {
            prompt: prompt.into(),
            reference: reference.into(),
        }
    }

    /// Two prompts, two pictures: the writing and the colours differ, and so does a second job
    /// of the same prompt; the same output is the same picture every time.
    #[test]
    fn each_output_shows_its_own_request() {
        let draw = |c: &super::Caption| pixels(&super::render_captioned(1024, 1024, c).unwrap());
        let fox = draw(&caption("a red fox in the snow", "job-a#1"));
        let lighthouse = draw(&caption("a lighthouse at dusk", "job-b#1"));
        let fox_again = draw(&caption("a red fox in the snow", "job-c#1"));
        assert_eq!((fox.0, fox.1), (1024, 1024));
        let differing = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x != y).count();
        // Indexed pixels: the same index is another colour in another palette, so the writing
        // is compared here, and the colours below.
        assert!(differing(&fox.2, &lighthouse.2) > 1000, "the words differ");
        assert!(differing(&fox.2, &fox_again.2) > 10, "the reference differs");
        let fox_png = super::render_captioned(64, 64, &caption("a red fox", "a#1")).unwrap();
        let other_png = super::render_captioned(64, 64, &caption("a red fox", "b#1")).unwrap();
        assert_ne!(fox_png, other_png, "another job, other colours");
        assert_eq!(
            fox_png,
            super::render_captioned(64, 64, &caption("a red fox", "a#1")).unwrap()
        );
        // The letters are there: ink in the rows of the first line.
        assert!(fox.2.contains(&super::INK));
    }

    /// A long prompt is cut to what fits, and a tiny image still renders.
    #[test]
    fn any_prompt_fits_any_size() {
        let long = "word ".repeat(400);
        for (w, h) in [(1, 1), (7, 300), (300, 7), (6198, 2656)] {
            let (width, height, _) = pixels(&super::render_captioned(w, h, &caption(&long, "x#1")).unwrap());
            assert_eq!((width, height), (w, h));
        }
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
