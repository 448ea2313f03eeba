//! Audio results: a real WAV file (RIFF/WAVE, PCM 16-bit mono at 8 kHz) holding a quiet sine.
//!
//! Made in code, not shipped: its length follows the job (an input `duration`, else one second),
//! and 8 kHz mono keeps a minute under a megabyte. Players, `file` and decoders accept it, which
//! is all a client that downloads, sniffs and saves a result needs.

use axum::body::Bytes;

pub(crate) const SAMPLE_RATE: u32 = 8_000;
/// The tone: an A, loud enough to hear, quiet enough not to startle.
const TONE_HZ: f64 = 440.0;
const AMPLITUDE: f64 = 8_000.0;

/// A WAV of `millis` milliseconds.
pub(crate) fn render(millis: u32) -> Bytes {
    // Saturating: callers cap the length far below where it would matter (a RIFF size is 32 bits).
    let data_len = millis
        .saturating_mul(SAMPLE_RATE / 1000)
        .saturating_mul(2)
        .min(u32::MAX - 36);
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVE");
    wav.extend_from_slice(b"fmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // the PCM fmt chunk's size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    wav.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for n in 0..data_len / 2 {
        let t = f64::from(n) / f64::from(SAMPLE_RATE);
        let sample = (AMPLITUDE * (std::f64::consts::TAU * TONE_HZ * t).sin()) as i16;
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn header_describes_pcm_16_bit_mono_and_the_length() {
        let wav = render(1500);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(u32_at(&wav, 4) as usize, wav.len() - 8);
        assert_eq!(&wav[8..12], b"WAVE");
        assert_eq!(&wav[12..16], b"fmt ");
        assert_eq!(u32_at(&wav, 16), 16);
        assert_eq!(u16_at(&wav, 20), 1, "PCM");
        assert_eq!(u16_at(&wav, 22), 1, "mono");
        assert_eq!(u32_at(&wav, 24), SAMPLE_RATE);
        assert_eq!(u32_at(&wav, 28), SAMPLE_RATE * 2);
        assert_eq!(u16_at(&wav, 32), 2);
        assert_eq!(u16_at(&wav, 34), 16);
        assert_eq!(&wav[36..40], b"data");
        assert_eq!(u32_at(&wav, 40) as usize, wav.len() - 44);
        assert_eq!(wav.len() - 44, 12_000 * 2, "1.5 s at 8 kHz");
    }

    #[test]
    fn it_is_not_silence() {
        let wav = render(100);
        let loudest = wav[44..]
            .chunks_exact(2)
            .map(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs())
            .max();
        assert!(loudest > Some(7_000), "{loudest:?}");
    }
}
