//! Decoding a result PNG while its download streams, so that on a slow link the picture is
//! decoded when its last byte arrives instead of starting then.
//!
//! The download loop hands each chunk it writes to the spool file to a bounded channel as well
//! ([`Tap`]); a blocking thread decodes from that channel under the same pixel and allocation
//! limits as any decode ([`super::pixels`]). The spool file is written exactly as without a tap;
//! when the stream is not a PNG, breaks off, or is refused, the decode says so and the caller
//! decodes the finished file as before. A tap holds a streamed-decode slot for its whole life,
//! and is only opened when one is free at once: a download never waits for a decode.

use std::io::{BufRead, Read, Seek, SeekFrom};

use bytes::Bytes;
use image::codecs::png::PngDecoder;
use image::{DynamicImage, ImageDecoder};
use tokio::sync::{mpsc, SemaphorePermit};

/// Chunks in flight between the download and the decoder: enough to keep both busy, few enough
/// that a decoder slower than the link holds the download back rather than piling up memory.
const CHUNKS_IN_FLIGHT: usize = 32;

/// The download side: where the body's chunks go as they arrive (nowhere, by default).
#[derive(Default)]
pub(crate) struct Tap(Option<mpsc::Sender<Bytes>>);

impl Tap {
    /// Passes `chunk` on; once the decoder has stopped (refused or failed), the tap closes and
    /// the download goes on alone.
    pub(crate) async fn send(&mut self, chunk: &Bytes) {
        if let Some(sender) = &self.0 {
            if sender.send(chunk.clone()).await.is_err() {
                self.0 = None;
            }
        }
    }
}

/// The decode under way: the decoded image, and the decode slot it holds while in memory.
pub(crate) type Decoding = tokio::task::JoinHandle<(SemaphorePermit<'static>, Result<DynamicImage, String>)>;

/// A tap and the decode it feeds, when a decode slot of `slots` is free now.
pub(crate) fn open(slots: &'static tokio::sync::Semaphore) -> Option<(Tap, Decoding)> {
    let slot = slots.try_acquire().ok()?;
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let decoding = tokio::task::spawn_blocking(move || {
        let decoded = decode(ChannelReader::new(receiver));
        (slot, decoded)
    });
    Some((Tap(Some(sender)), decoding))
}

/// Decodes the PNG `reader` streams, refusing a declared size over the pixel cap from its header.
fn decode(reader: ChannelReader) -> Result<DynamicImage, String> {
    let decoder = PngDecoder::with_limits(reader, super::pixels::limits()).map_err(|e| e.to_string())?;
    let (width, height) = decoder.dimensions();
    super::pixels::check(width, height)?;
    DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())
}

/// The channel's chunks as a byte stream. PNG decoding reads forward only; `Seek` (which the
/// decoder's type asks for but does not use) answers the position and refuses to move.
struct ChannelReader {
    receiver: mpsc::Receiver<Bytes>,
    chunk: Bytes,
    position: u64,
}

impl ChannelReader {
    fn new(receiver: mpsc::Receiver<Bytes>) -> Self {
        Self {
            receiver,
            chunk: Bytes::new(),
            position: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.chunk.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => break, // The download ended (or broke off): end of stream.
            }
        }
        Ok(&self.chunk)
    }

    fn consume(&mut self, n: usize) {
        let _ = self.chunk.split_to(n);
        self.position += n as u64;
    }
}

impl Seek for ChannelReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match to {
            SeekFrom::Current(0) => Ok(self.position),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "a streamed download cannot seek",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageFormat;
    use tokio::sync::Semaphore;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        }))
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
        png
    }

    async fn stream(slots: &'static Semaphore, bytes: &[u8], chunk: usize) -> Result<DynamicImage, String> {
        let (mut tap, decoding) = open(slots).expect("a free slot");
        for piece in bytes.chunks(chunk) {
            tap.send(&Bytes::copy_from_slice(piece)).await;
        }
        drop(tap);
        decoding.await.unwrap().1
    }

    #[tokio::test]
    async fn a_png_streamed_in_small_chunks_decodes_to_the_same_pixels() {
        static SLOTS: Semaphore = Semaphore::const_new(1);
        let bytes = png(300, 200);
        let streamed = stream(&SLOTS, &bytes, 1000).await.unwrap();
        let whole = image::load_from_memory(&bytes).unwrap();
        assert_eq!(streamed.to_rgb8(), whole.to_rgb8());
        assert_eq!(
            SLOTS.available_permits(),
            1,
            "the slot is free once the image is dropped"
        );
    }

    #[tokio::test]
    async fn a_pixel_bomb_is_refused_from_its_header_and_a_cut_stream_is_an_error() {
        static SLOTS: Semaphore = Semaphore::const_new(1);
        let bomb = crate::media::pixels::tests::pixel_bomb(11_000, 11_000);
        let refused = stream(&SLOTS, &bomb, 7).await.unwrap_err();
        assert!(refused.contains("megapixels"), "{refused}");
        let bytes = png(300, 200);
        assert!(stream(&SLOTS, &bytes[..bytes.len() / 2], 4096).await.is_err());
        assert!(stream(&SLOTS, b"<!doctype html><p>no</p>", 4096).await.is_err());
    }

    #[tokio::test]
    async fn no_tap_is_opened_without_a_free_decode_slot() {
        static SLOTS: Semaphore = Semaphore::const_new(1);
        let _taken = SLOTS.try_acquire().unwrap();
        assert!(open(&SLOTS).is_none());
    }
}
