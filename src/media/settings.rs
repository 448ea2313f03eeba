//! The media settings: flags and environment for reference images read from disk, previews,
//! saving and downloads (images, and video and audio files), checked once at start (a bad `--output-dir` or `--input-dir` is a
//! start-up error, not a failure on the first call).

use std::time::Duration;

use clap::Args;

use super::{
    inputs::{InputOptions, DEFAULT_INPUT_MAX_BYTES},
    save::OutputDir,
};

/// Flags of `serve` for result media; flattened into the serve command.
#[derive(Args, Debug, Clone)]
pub struct MediaArgs {
    /// Save every result image, video and audio file into this directory (created if missing). `~` means your home
    /// directory; Windows paths such as `C:\Users\me\Pictures` work on Windows.
    #[arg(long, env = "RUNCOMFY_OUTPUT_DIR")]
    pub output_dir: Option<String>,

    /// Do not put image previews in results (URLs, links and saved files only).
    #[arg(long, env = "RUNCOMFY_NO_PREVIEW")]
    pub no_preview: bool,

    /// Longest side of a preview, in pixels.
    #[arg(long, env = "RUNCOMFY_PREVIEW_MAX_SIDE", default_value_t = MediaOptions::default().preview_max_side,
          value_parser = clap::value_parser!(u32).range(32..=4096))]
    pub preview_max_side: u32,

    /// Most bytes one encoded (JPEG) preview may take, in KiB; base64 adds a third.
    #[arg(long, env = "RUNCOMFY_PREVIEW_MAX_KB", default_value_t = (MediaOptions::default().preview_max_bytes / 1024) as u64,
          value_parser = clap::value_parser!(u64).range(4..=4096))]
    pub preview_max_kb: u64,

    /// Hard cap, in KiB, on full-size images put inline in one result (only when a call asks for
    /// them with `inline_full_size`); images past it come as previews.
    #[arg(long, env = "RUNCOMFY_FULL_INLINE_MAX_KB", default_value_t = (MediaOptions::default().full_inline_max_bytes / 1024) as u64,
          value_parser = clap::value_parser!(u64).range(0..=65536))]
    pub full_inline_max_kb: u64,

    /// Largest result image downloaded, in MiB (RunComfy recommends images of at most 50 MB).
    #[arg(long, env = "RUNCOMFY_DOWNLOAD_MAX_MB", default_value_t = MediaOptions::default().download_max_bytes / (1024 * 1024),
          value_parser = clap::value_parser!(u64).range(1..=2048))]
    pub download_max_mb: u64,

    /// Largest video or audio result file downloaded (to be saved), in MiB.
    #[arg(long, env = "RUNCOMFY_MEDIA_DOWNLOAD_MAX_MB", default_value_t = MediaOptions::default().media_download_max_bytes / (1024 * 1024),
          value_parser = clap::value_parser!(u64).range(1..=16384))]
    pub media_download_max_mb: u64,

    /// Time allowed for one video or audio result download, in seconds.
    #[arg(long, env = "RUNCOMFY_MEDIA_DOWNLOAD_TIMEOUT_SECS", default_value_t = MediaOptions::default().media_download_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub media_download_timeout_secs: u64,

    /// Time allowed for one result image download, in seconds.
    #[arg(long, env = "RUNCOMFY_DOWNLOAD_TIMEOUT_SECS", default_value_t = MediaOptions::default().download_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub download_timeout_secs: u64,

    /// A directory whose files (and subdirectories') may be sent as reference images, by
    /// absolute path; repeat it for several. None by default: no local file is read. In the
    /// environment, several are separated as in PATH (`:` on Unix, `;` on Windows).
    #[arg(long = "input-dir", env = "RUNCOMFY_INPUT_DIRS")]
    pub input_dirs: Vec<String>,

    /// Largest local file or data URI taken as a reference image, in MiB (sent base64-encoded,
    /// a third larger; RunComfy takes at most 64 MiB per request).
    #[arg(long, env = "RUNCOMFY_INPUT_MAX_MB", default_value_t = DEFAULT_INPUT_MAX_BYTES / (1024 * 1024),
          value_parser = clap::value_parser!(u64).range(1..=47))]
    pub input_max_mb: u64,
}

/// The checked media settings the tools use.
#[derive(Debug, Clone)]
pub struct MediaOptions {
    /// Which local files may be sent as reference images, and how large they may be.
    pub inputs: InputOptions,
    /// Where images are saved; `None`: not saved.
    pub output_dir: Option<OutputDir>,
    /// Put downscaled previews in results.
    pub previews: bool,
    pub preview_max_side: u32,
    pub preview_max_bytes: usize,
    /// Total raw bytes of full-size images one result may carry inline.
    pub full_inline_max_bytes: usize,
    pub download_max_bytes: u64,
    pub download_timeout: Duration,
    /// Bounds on a video or audio download, which is only made to save the file.
    pub media_download_max_bytes: u64,
    pub media_download_timeout: Duration,
    /// Where images uploaded from the app view are kept (set from the state directory).
    pub uploads: super::uploads::Uploads,
    /// Where a file a host hands over may be downloaded from: public https only, unless a test
    /// names its own loopback origin ([`super::host_files::TEST_ORIGIN_VAR`]).
    pub host_file_policy: super::AddressPolicy,
}

impl Default for MediaOptions {
    /// Previews of at most 768 px and 150 KiB: four of them come to about 800 KB of base64, under
    /// the 1 MiB result limit some clients apply, and 768 px is enough to judge an image.
    fn default() -> Self {
        Self {
            inputs: InputOptions::default(),
            output_dir: None,
            previews: true,
            preview_max_side: 768,
            preview_max_bytes: 150 * 1024,
            // ~4 MiB of base64: under the 5 MB per-image limit of Anthropic's API.
            full_inline_max_bytes: 3 * 1024 * 1024,
            download_max_bytes: 50 * 1024 * 1024,
            download_timeout: Duration::from_secs(60),
            // A minute of 1080p video is some 10-50 MB; 200 MB leaves room for longer clips
            // and lossless audio while bounding the disk one result can fill.
            media_download_max_bytes: 200 * 1024 * 1024,
            media_download_timeout: Duration::from_secs(300),
            uploads: super::uploads::Uploads::default(),
            host_file_policy: super::AddressPolicy::public_only(),
        }
    }
}

impl MediaArgs {
    /// Checks the settings and prepares the output directory.
    pub fn options(&self) -> Result<MediaOptions, String> {
        let output_dir = match self.output_dir.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(raw) => Some(OutputDir::prepare(raw)?),
        };
        // Each value may itself be a PATH-style list (how the environment variable holds several).
        let dirs: Vec<String> = self
            .input_dirs
            .iter()
            .flat_map(|d| {
                std::env::split_paths(d)
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(MediaOptions {
            inputs: InputOptions::new(&dirs, self.input_max_mb * 1024 * 1024)?,
            output_dir,
            previews: !self.no_preview,
            preview_max_side: self.preview_max_side,
            preview_max_bytes: (self.preview_max_kb * 1024) as usize,
            full_inline_max_bytes: (self.full_inline_max_kb * 1024) as usize,
            download_max_bytes: self.download_max_mb * 1024 * 1024,
            download_timeout: Duration::from_secs(self.download_timeout_secs),
            media_download_max_bytes: self.media_download_max_mb * 1024 * 1024,
            media_download_timeout: Duration::from_secs(self.media_download_timeout_secs),
            uploads: super::uploads::Uploads::default(),
            host_file_policy: super::AddressPolicy::public_only(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_previews_fit_four_in_a_megabyte_of_base64() {
        let o = MediaOptions::default();
        assert!(4 * o.preview_max_bytes.div_ceil(3) * 4 < 1_000_000);
    }
}
