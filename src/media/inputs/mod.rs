//! Reference images in: what an entry of a request's `images` names, and what RunComfy is sent
//! for it.
//!
//! An entry is a string, one of:
//! - an `https://` URL, passed through unchanged (RunComfy fetches it; it must be public);
//! - an earlier job's output, `<request_id>` (its first image) or `<request_id>#<n>` (its n-th,
//!   from 1), which the job service resolves to the URL RunComfy gave (this module only parses it);
//! - a local file by absolute path (or `~/…`), read only inside the directories the user allowed
//!   (`--input-dir`), within a size cap, its type sniffed from its bytes;
//! - a `data:image/…;base64,` URI, checked and size-capped;
//! - an image the person uploaded from the app view, `upload:<id>` ([`super::uploads`]).
//!
//! A file or a data URI is sent as RunComfy's own client sends images: re-encoded as a PNG data
//! URI of at most [`MAX_INPUT_PNG_BYTES`] and [`MAX_INPUT_PIXELS`] (the Model API's per-input
//! limits, as RunComfy's ComfyUI nodes state them), downscaled to fit rather than refused for
//! being large. The decode is bounded by pixels ([`super::pixels`]), so a small file declaring a
//! huge image is refused without being decoded.
//!
//! Every refusal says what was wrong and what would work, so that the model can fix the call.
//! What is kept of an input ([`InputRecord`]) never holds its bytes.

mod data_uris;
mod files;
mod png;
mod source;

use serde::{Deserialize, Serialize};

pub use data_uris::{data_uri, upload_png};
pub use files::{file, saved_copy};
pub use png::{png_of, MAX_INPUT_PIXELS, MAX_INPUT_PNG_BYTES};
pub use source::{looks_like_a_path, Source};

use super::save::expand_home;
use base64::Engine as _;
use png::PNG_MIME;
use std::path::PathBuf;

/// Largest local file or data URI read as a reference image, unless `--input-max-mb` says
/// otherwise. What is sent is a PNG within [`MAX_INPUT_PNG_BYTES`], whatever this is.
pub const DEFAULT_INPUT_MAX_BYTES: u64 = 20 * 1024 * 1024;

/// Where local reference images may be read from, and how large they may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputOptions {
    /// Canonical directories (symlinks resolved) whose files may be read. Empty: none.
    pub dirs: Vec<PathBuf>,
    pub max_bytes: u64,
}

impl Default for InputOptions {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            max_bytes: DEFAULT_INPUT_MAX_BYTES,
        }
    }
}

impl InputOptions {
    /// Checks the directories the user allowed (each must exist) and resolves them, so that a
    /// path is compared with what it really is, not with how it was spelt.
    pub fn new(dirs: &[String], max_bytes: u64) -> Result<Self, String> {
        let mut resolved: Vec<PathBuf> = Vec::new();
        for raw in dirs
            .iter()
            .map(|d| d.trim().trim_matches('"'))
            .filter(|d| !d.is_empty())
        {
            let expanded = expand_home(raw);
            let path = dunce::canonicalize(&expanded).map_err(|e| format!("--input-dir {raw}: cannot use it: {e}"))?;
            if !path.is_dir() {
                return Err(format!("--input-dir {raw} is not a directory"));
            }
            if !resolved.contains(&path) {
                resolved.push(path);
            }
        }
        Ok(Self {
            dirs: resolved,
            max_bytes,
        })
    }
}

/// What kind of entry an input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    Url,
    Job,
    File,
    DataUri,
    Upload,
}

/// What is kept of one input (in the job journal, in results): what it was, never its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    pub kind: InputKind,
    /// The entry as it was given, so that the job can be run again; for a data URI given
    /// directly, a description instead (its bytes are not kept).
    pub given: String,
    /// The URL RunComfy was sent (a URL, or a job's output URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The file read, resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Bytes of a file or data URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The type RunComfy was sent for a file or data URI (always `image/png`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// How a file or data URI was changed to fit RunComfy's per-input limits, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_as: Option<String>,
}

/// An input ready to send: what RunComfy receives for it, and what is kept of it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// A URL or a `data:` URI.
    pub wire: String,
    pub record: InputRecord,
}

/// An `https://` URL, passed through unchanged.
pub fn url(url: String) -> Resolved {
    passed_through(InputKind::Url, url.clone(), url)
}

/// An earlier job's output: its URL exactly as RunComfy gave it (an `http://127.0.0.1` URL of
/// the simulator's stays as it is).
pub fn job_output(given: &str, url: String) -> Resolved {
    passed_through(InputKind::Job, given.trim().to_owned(), url)
}

/// A reference sent to RunComfy as the URL it is, with nothing read or converted.
fn passed_through(kind: InputKind, given: String, url: String) -> Resolved {
    Resolved {
        record: InputRecord {
            kind,
            given,
            url: Some(url.clone()),
            path: None,
            bytes: None,
            mime_type: None,
            sent_as: None,
        },
        wire: url,
    }
}
/// An upload: its PNG, kept within RunComfy's limits when it came, sent as a data URI.
pub fn upload(given: &str, png: Vec<u8>) -> Resolved {
    let engine = base64::engine::general_purpose::STANDARD;
    Resolved {
        wire: format!("data:{PNG_MIME};base64,{}", engine.encode(&png)),
        record: InputRecord {
            kind: InputKind::Upload,
            given: given.trim().to_owned(),
            url: None,
            path: None,
            bytes: Some(png.len() as u64),
            mime_type: Some(PNG_MIME.to_owned()),
            sent_as: None,
        },
    }
}

pub(super) fn too_large(what: &str, bytes: u64, max: u64) -> String {
    format!(
        "{what} is {:.1} MiB; reference images may be at most {} MiB each (--input-max-mb). Make it smaller (JPEG, fewer pixels) or give an https:// URL",
        bytes as f64 / (1024.0 * 1024.0),
        max / (1024 * 1024)
    )
}

pub(super) fn allowed(options: &InputOptions) -> String {
    options
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An entry as an error message repeats it: quoted, and short (a data URI can be megabytes).
pub(super) fn shown(entry: &str) -> String {
    format!("{:?}", crate::text::ellipsis(entry.trim(), 80))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use image::{DynamicImage, ImageFormat};
    use std::path::Path;

    /// A whole 1×1 PNG.
    pub(super) fn png_1x1() -> Vec<u8> {
        encoded(&DynamicImage::new_rgb8(1, 1), ImageFormat::Png)
    }

    pub(super) fn options(dirs: &[&Path]) -> InputOptions {
        InputOptions {
            dirs: dirs.iter().map(|d| dunce::canonicalize(d).unwrap()).collect(),
            max_bytes: 1024,
        }
    }

    pub(super) fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn allowed_directories_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let ok = InputOptions::new(&[dir.path().display().to_string()], 10).unwrap();
        assert_eq!(ok.dirs, [dunce::canonicalize(dir.path()).unwrap()]);
        assert!(InputOptions::new(&["/no/such/dir/anywhere".into()], 10).is_err());
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(InputOptions::new(&[file.display().to_string()], 10).is_err());
    }
}
