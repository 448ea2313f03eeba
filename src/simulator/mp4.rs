//! Video results: one real MP4, shipped as a 2 KB asset.
//!
//! An encoder in code would be far more than the simulator is worth, and a file of invented
//! boxes would not play: this is one second of ffmpeg's test pattern, 64×64 at 10 fps, H.264,
//! with `moov` before `mdat` (faststart) as streamed results are. Made once, by hand, with
//!
//! ```text
//! ffmpeg -f lavfi -i testsrc=size=64x64:rate=10:duration=1 -c:v libx264 -pix_fmt yuv420p \
//!     -preset veryslow -crf 35 -movflags +faststart -map_metadata -1 \
//!     -fflags +bitexact -flags +bitexact clip.mp4
//! ```
//!
//! (ffmpeg 5.1, Debian 12). Nothing builds or tests with ffmpeg.

/// The clip every video job returns.
pub(crate) const CLIP: &[u8] = include_bytes!("assets/clip.mp4");

#[cfg(test)]
mod tests {
    use super::*;

    /// The top-level boxes: (type, size), checking each size stays inside the file.
    fn boxes(file: &[u8]) -> Vec<([u8; 4], usize)> {
        let mut at = 0;
        let mut found = Vec::new();
        while at < file.len() {
            assert!(file.len() - at >= 8, "a box header is cut at {at}");
            let size = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = file[at + 4..at + 8].try_into().unwrap();
            assert!(size >= 8 && at + size <= file.len(), "box at {at} has size {size}");
            found.push((kind, size));
            at += size;
        }
        assert_eq!(at, file.len(), "the boxes fill the file exactly");
        found
    }

    #[test]
    fn the_clip_is_iso_bmff_with_ftyp_moov_then_mdat() {
        let found = boxes(CLIP);
        let kinds: Vec<&[u8; 4]> = found.iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds[0], b"ftyp");
        let moov = kinds.iter().position(|k| *k == b"moov").expect("a moov box");
        let mdat = kinds.iter().position(|k| *k == b"mdat").expect("an mdat box");
        assert!(moov < mdat, "faststart: moov before mdat, {kinds:?}");
        // The brand says MP4: isom/mp42 family, not QuickTime.
        assert!(
            matches!(&CLIP[8..12], b"isom" | b"mp42" | b"mp41"),
            "{:?}",
            &CLIP[8..12]
        );
        assert!(CLIP.len() < 8 * 1024, "a small asset: {} bytes", CLIP.len());
    }
}
