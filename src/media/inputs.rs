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

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use base64::Engine as _;
use image::{codecs::png::PngEncoder, DynamicImage, ImageEncoder, ImageFormat};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::save::expand_home;
use crate::runcomfy::RequestId;

/// Largest local file or data URI read as a reference image, unless `--input-max-mb` says
/// otherwise. What is sent is a PNG within [`MAX_INPUT_PNG_BYTES`], whatever this is.
pub const DEFAULT_INPUT_MAX_BYTES: u64 = 20 * 1024 * 1024;

/// The most bytes one image input may have as sent (the PNG, before base64): the Model API's
/// per-input limit as RunComfy's own client states and enforces it (6 MiB).
pub const MAX_INPUT_PNG_BYTES: usize = 6 * 1024 * 1024;
/// The most pixels one image input may have as sent: RunComfy's client refuses more than 32
/// million.
pub const MAX_INPUT_PIXELS: u64 = 32_000_000;
/// Re-encodings running at once in the whole process: each holds a decoded image of up to
/// 64 MP, so a crowd of edits must not decode a crowd of them at once.
static ENCODES: Semaphore = Semaphore::const_new(2);

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

/// What an entry names, as far as its text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An `https://` URL, exactly as given.
    Url(String),
    /// An earlier job's `index`-th image (from 1).
    Job { id: RequestId, index: usize },
    /// A local file, by absolute path (`~` expanded); not yet checked.
    File(PathBuf),
    /// A `data:` URI, exactly as given.
    DataUri(String),
    /// An upload's id (of `upload:<id>`).
    Upload(String),
    /// A file the host handed over (ChatGPT's file parameters).
    HostFile(super::host_files::HostFile),
}

impl Source {
    /// Reads an entry. `Err` says what is wrong with it and what to give instead.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        // First: its string form holds a URL, which is not the entry's own.
        if let Some(file) = super::host_files::parse(entry) {
            return file.map(Self::HostFile);
        }
        let lower = entry.get(..8).unwrap_or(entry).to_ascii_lowercase();
        if lower.starts_with("data:") {
            return Ok(Self::DataUri(entry.to_owned()));
        }
        if lower.starts_with("https://") {
            let url = reqwest::Url::parse(entry).map_err(|e| format!("{} is not a valid URL ({e})", shown(entry)))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("{} has no host", shown(entry)));
            }
            return Ok(Self::Url(entry.to_owned()));
        }
        if lower.starts_with("http://") {
            return Err(format!(
                "{} is a plain http:// URL; RunComfy fetches reference images only over public https://. Give an https:// URL, or for an image this server made, its request_id or request_id#n",
                shown(entry)
            ));
        }
        if let Some((scheme, _)) = entry.split_once("://") {
            return Err(format!(
                "{} is a {scheme}:// URL; only public https:// URLs can be passed to RunComfy",
                shown(entry)
            ));
        }
        if let Some(upload) = super::uploads::reference(entry) {
            return upload.map(Self::Upload);
        }
        if let Some(job) = job_reference(entry) {
            return job;
        }
        let path = expand_home(entry);
        if path.is_absolute() {
            return Ok(Self::File(path));
        }
        if looks_like_a_path(entry) {
            return Err(format!(
                "{} is a relative path; give the file's absolute path (the server does not know your working directory)",
                shown(entry)
            ));
        }
        Err(format!(
            "{} is not an image reference: give a request_id or request_id#n of an earlier job, an https:// URL, an absolute file path, or a data:image/...;base64, URI",
            shown(entry)
        ))
    }
}

/// Whether an entry that is no URL, data URI or job reference is shaped like a file path
/// (absolute or relative).
pub fn looks_like_a_path(entry: &str) -> bool {
    let entry = entry.trim();
    !entry.contains("://")
        && !entry.to_ascii_lowercase().starts_with("data:")
        && job_reference(entry).is_none()
        && (expand_home(entry).is_absolute() || entry.contains(['/', '\\', '.']))
}

/// `<request_id>` or `<request_id>#<n>`; `None` when the entry is not shaped like one.
fn job_reference(entry: &str) -> Option<Result<Source, String>> {
    let (id, index) = match entry.split_once('#') {
        Some((id, n)) => (id, Some(n)),
        None => (entry, None),
    };
    let id = RequestId::parse(id).ok()?;
    let index = match index {
        None => 1,
        Some(n) => match n.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Some(Err(format!(
                    "{} names output {n:?} of job {id}; outputs are numbered from 1 ({id}#1 is the first image)",
                    shown(entry)
                )))
            }
        },
    };
    Some(Ok(Source::Job { id, index }))
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
    Resolved {
        record: InputRecord {
            kind: InputKind::Url,
            given: url.clone(),
            url: Some(url.clone()),
            path: None,
            bytes: None,
            mime_type: None,
            sent_as: None,
        },
        wire: url,
    }
}

/// An earlier job's output: its URL exactly as RunComfy gave it (an `http://127.0.0.1` URL of
/// the simulator's stays as it is).
pub fn job_output(given: &str, url: String) -> Resolved {
    Resolved {
        record: InputRecord {
            kind: InputKind::Job,
            given: given.trim().to_owned(),
            url: Some(url.clone()),
            path: None,
            bytes: None,
            mime_type: None,
            sent_as: None,
        },
        wire: url,
    }
}

/// The copy saved on this machine of an earlier job's image, for a job RunComfy no longer has:
/// read from the output directory (this server's own, so no `--input-dir` is needed), within
/// the cap, sent like a file.
pub async fn saved_copy(options: &InputOptions, path: PathBuf, given: &str) -> Result<Resolved, String> {
    let (max_bytes, given) = (options.max_bytes, given.trim().to_owned());
    let _slot = ENCODES.acquire().await;
    tokio::task::spawn_blocking(move || {
        let shown_path = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(max_bytes + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("the saved copy {shown_path} cannot be read: {e}"))?;
        if bytes.len() as u64 > max_bytes {
            return Err(too_large(&shown_path, bytes.len() as u64, max_bytes));
        }
        let format =
            sniff(&bytes).ok_or_else(|| format!("the saved copy {shown_path} is not a PNG, JPEG or WebP image"))?;
        let png = as_png(&bytes, format).map_err(|e| format!("the saved copy {shown_path} cannot be used: {e}"))?;
        Ok(Resolved {
            wire: png.data_uri(),
            record: InputRecord {
                kind: InputKind::Job,
                given,
                url: None,
                path: Some(shown_path),
                bytes: Some(png.bytes.len() as u64),
                mime_type: Some(PNG_MIME.to_owned()),
                sent_as: png.sent_as(),
            },
        })
    })
    .await
    .map_err(|e| format!("reading the saved copy failed: {e}"))?
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

/// A `data:image/…;base64,` URI as the PNG an upload keeps (what [`data_uri`] would send), with
/// its width and height.
pub async fn upload_png(options: &InputOptions, uri: &str) -> Result<(Vec<u8>, u32, u32), String> {
    let (bytes, format) = data_uri_bytes(options, uri)?;
    png_of(bytes, format).await
}

/// An image's bytes (of a sniffed format) as the PNG RunComfy is sent, with its width and height.
pub async fn png_of(bytes: Vec<u8>, format: ImageFormat) -> Result<(Vec<u8>, u32, u32), String> {
    let _slot = ENCODES.acquire().await;
    let png = tokio::task::spawn_blocking(move || as_png(&bytes, format))
        .await
        .map_err(|e| format!("re-encoding the image failed: {e}"))?
        .map_err(|e| format!("the image cannot be used: {e}"))?;
    Ok((png.bytes, png.width, png.height))
}

/// A local file, if it is inside an allowed directory, within the cap and an image, as a
/// `data:` URI. Runs the file system calls off the async runtime.
pub async fn file(options: &InputOptions, path: PathBuf, given: &str) -> Result<Resolved, String> {
    let (options, given) = (options.clone(), given.trim().to_owned());
    let _slot = ENCODES.acquire().await;
    tokio::task::spawn_blocking(move || read_file(&options, &path, given))
        .await
        .map_err(|e| format!("reading the file failed: {e}"))?
}

fn read_file(options: &InputOptions, path: &Path, given: String) -> Result<Resolved, String> {
    let shown_path = path.display();
    if options.dirs.is_empty() {
        return Err(format!(
            "{shown_path} is a local file, and this server reads none: start it with --input-dir DIR (or RUNCOMFY_INPUT_DIRS) to allow a directory, or give an https:// URL instead"
        ));
    }
    let allows = |p: &Path| options.dirs.iter().any(|dir| p.starts_with(dir));
    // Said the same whether or not the file exists: the answer tells nothing about a place the
    // server may not read.
    let outside = |p: &Path, link: Option<&Path>| {
        let parent = p.parent().unwrap_or(p).display();
        let what = match link {
            Some(real) => format!("{shown_path} is a link to {}, which is", real.display()),
            None => format!("{shown_path} is"),
        };
        format!(
            "{what} outside the directories this server may read ({}). Move the file into one of them, or restart the server with --input-dir {parent} to allow its directory",
            allowed(options)
        )
    };
    let lexical = lexically_normal(path);
    // Resolved first (symlinks followed), so that a link inside an allowed directory that
    // points outside it is refused like the path it points to.
    let real = match dunce::canonicalize(path) {
        Ok(real) => real,
        Err(_) if !allows(&lexical) => return Err(outside(&lexical, None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(format!("there is no file at {shown_path}")),
        Err(e) => return Err(format!("{shown_path} cannot be read: {e}")),
    };
    if !allows(&real) {
        // A link (or a directory on the way) that leads out: say where, so that the person
        // sees why a file in an allowed directory is refused.
        let link = (real != lexical).then_some(real.as_path());
        return Err(outside(&real, link));
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("{shown_path} cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown_path} is not a file"));
    }
    if meta.len() > options.max_bytes {
        return Err(too_large(&shown_path.to_string(), meta.len(), options.max_bytes));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(&real)
        .and_then(|f| f.take(options.max_bytes + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("{shown_path} cannot be read: {e}"))?;
    if bytes.len() as u64 > options.max_bytes {
        return Err(too_large(
            &shown_path.to_string(),
            bytes.len() as u64,
            options.max_bytes,
        ));
    }
    let format = sniff(&bytes)
        .ok_or_else(|| format!("{shown_path} is not a PNG, JPEG or WebP image (judged by its first bytes)"))?;
    let png = as_png(&bytes, format).map_err(|e| format!("{shown_path} cannot be used: {e}"))?;
    Ok(Resolved {
        wire: png.data_uri(),
        record: InputRecord {
            kind: InputKind::File,
            given,
            url: None,
            path: Some(real.display().to_string()),
            bytes: Some(png.bytes.len() as u64),
            mime_type: Some(PNG_MIME.to_owned()),
            sent_as: png.sent_as(),
        },
    })
}

/// `path` with `.` and `..` folded away, without asking the file system (which would say
/// whether something exists there).
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// A `data:image/…;base64,` URI: decodable, an image, within the cap; sent re-encoded as a PNG
/// within RunComfy's per-input limits. The re-encoding runs off the async runtime.
pub async fn data_uri(options: &InputOptions, uri: &str) -> Result<Resolved, String> {
    let (bytes, format) = data_uri_bytes(options, uri)?;
    let _slot = ENCODES.acquire().await;
    let png = tokio::task::spawn_blocking(move || as_png(&bytes, format))
        .await
        .map_err(|e| format!("re-encoding the image failed: {e}"))?
        .map_err(|e| format!("{} cannot be used: {e}", shown(uri)))?;
    Ok(Resolved {
        wire: png.data_uri(),
        record: InputRecord {
            kind: InputKind::DataUri,
            given: format!(
                "(a data URI: {}, {} bytes; not kept)",
                format.to_mime_type(),
                png.original_bytes
            ),
            url: None,
            path: None,
            bytes: Some(png.bytes.len() as u64),
            mime_type: Some(PNG_MIME.to_owned()),
            sent_as: png.sent_as(),
        },
    })
}

/// The image bytes of a data URI, and their sniffed format.
fn data_uri_bytes(options: &InputOptions, uri: &str) -> Result<(Vec<u8>, ImageFormat), String> {
    let shown_uri = shown(uri);
    let rest = uri.trim().get(5..).unwrap_or_default(); // after `data:`
    let (header, payload) = rest
        .split_once(',')
        .ok_or_else(|| format!("{shown_uri} is not a data URI (no comma before the data)"))?;
    let mut parts = header.split(';');
    let declared = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !declared.starts_with("image/") {
        return Err(format!(
            "{shown_uri} declares type {declared:?}; a reference image must be data:image/png, image/jpeg or image/webp"
        ));
    }
    if !parts.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err(format!(
            "{shown_uri} is not base64-encoded; use data:image/png;base64,…"
        ));
    }
    let payload: String = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Refused before decoding, so that a huge URI costs no second copy.
    let estimated = payload.len() as u64 / 4 * 3;
    if estimated > options.max_bytes + 3 {
        return Err(too_large("the data URI", estimated, options.max_bytes));
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine
        .decode(payload.as_bytes())
        .map_err(|e| format!("{shown_uri} does not decode as base64 ({e})"))?;
    if bytes.len() as u64 > options.max_bytes {
        return Err(too_large("the data URI", bytes.len() as u64, options.max_bytes));
    }
    let format = sniff(&bytes).ok_or_else(|| format!("{shown_uri} does not hold a PNG, JPEG or WebP image"))?;
    Ok((bytes, format))
}

const PNG_MIME: &str = "image/png";

/// An image as it is sent: a PNG within RunComfy's per-input limits.
#[derive(Debug)]
struct Png {
    bytes: Vec<u8>,
    width: u32,
    height: u32,
    /// The image's own size, when it was downscaled to fit.
    downscaled_from: Option<(u32, u32)>,
    original_bytes: usize,
}

impl Png {
    fn data_uri(&self) -> String {
        let engine = base64::engine::general_purpose::STANDARD;
        format!("data:{PNG_MIME};base64,{}", engine.encode(&self.bytes))
    }

    /// `PNG 2000×1500, downscaled from 4000×3000 to fit RunComfy's 6 MiB / 32 MP per image`.
    fn sent_as(&self) -> Option<String> {
        let (w, h) = self.downscaled_from?;
        Some(format!(
            "PNG {}×{}, downscaled from {w}×{h} to fit RunComfy's {} MiB / {} MP per image",
            self.width,
            self.height,
            MAX_INPUT_PNG_BYTES / (1024 * 1024),
            MAX_INPUT_PIXELS / 1_000_000
        ))
    }
}

/// Encode attempts before giving up on fitting the byte limit (each one smaller).
const FIT_ATTEMPTS: usize = 8;

/// `bytes` (a PNG, JPEG or WebP image) as RunComfy's client sends an image: a PNG of at most
/// [`MAX_INPUT_PIXELS`] and [`MAX_INPUT_PNG_BYTES`], downscaled (aspect ratio kept) until it
/// fits. A PNG already within both limits goes as it is. Blocking work.
fn as_png(bytes: &[u8], format: ImageFormat) -> Result<Png, String> {
    let (width, height) = super::pixels::dimensions(super::pixels::reader(bytes, format))
        .map_err(|e| format!("its header cannot be read ({e})"))?;
    let pixels = u64::from(width) * u64::from(height);
    if format == ImageFormat::Png && pixels <= MAX_INPUT_PIXELS && bytes.len() <= MAX_INPUT_PNG_BYTES {
        return Ok(Png {
            bytes: bytes.to_vec(),
            width,
            height,
            downscaled_from: None,
            original_bytes: bytes.len(),
        });
    }
    let image = super::pixels::decode(|| Ok(super::pixels::reader(bytes, format)))?;
    // Eight bits a channel, alpha only where there is any: what RunComfy's client sends.
    let image = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.into_rgb8())
    };
    let mut target = pixels.min(MAX_INPUT_PIXELS);
    for _ in 0..FIT_ATTEMPTS {
        let (w, h) = fit(width, height, target);
        let scaled;
        let sent = if (w, h) == (width, height) {
            &image
        } else {
            scaled = image.thumbnail_exact(w, h);
            &scaled
        };
        let png = encode_png(sent)?;
        if png.len() <= MAX_INPUT_PNG_BYTES {
            return Ok(Png {
                original_bytes: bytes.len(),
                bytes: png,
                width: w,
                height: h,
                downscaled_from: ((w, h) != (width, height)).then_some((width, height)),
            });
        }
        // A PNG's size grows about with its pixels: aim a little under the limit.
        let ratio = MAX_INPUT_PNG_BYTES as f64 / png.len() as f64;
        target = ((u64::from(w) * u64::from(h)) as f64 * ratio * 0.9) as u64;
    }
    Err(format!(
        "it does not fit in a {} MiB PNG even when made smaller; give a smaller image or an https:// URL",
        MAX_INPUT_PNG_BYTES / (1024 * 1024)
    ))
}

/// The largest size with the aspect ratio of `width`×`height` and at most `pixels` pixels.
fn fit(width: u32, height: u32, pixels: u64) -> (u32, u32) {
    let have = u64::from(width) * u64::from(height);
    if have <= pixels {
        return (width, height);
    }
    let scale = (pixels as f64 / have as f64).sqrt();
    let w = ((f64::from(width) * scale).floor() as u32).max(1);
    let h = ((f64::from(height) * scale).floor() as u32).max(1);
    (w, h)
}

fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(image.as_bytes(), image.width(), image.height(), image.color().into())
        .map_err(|e| format!("it cannot be encoded as PNG ({e})"))?;
    Ok(out)
}

fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    match image::guess_format(bytes) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) => Some(format),
        _ => None,
    }
}

fn too_large(what: &str, bytes: u64, max: u64) -> String {
    format!(
        "{what} is {:.1} MiB; reference images may be at most {} MiB each (--input-max-mb). Make it smaller (JPEG, fewer pixels) or give an https:// URL",
        bytes as f64 / (1024.0 * 1024.0),
        max / (1024 * 1024)
    )
}

fn allowed(options: &InputOptions) -> String {
    options
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An entry as an error message repeats it: quoted, and short (a data URI can be megabytes).
fn shown(entry: &str) -> String {
    format!("{:?}", crate::text::ellipsis(entry.trim(), 80))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole 1×1 PNG.
    fn png_1x1() -> Vec<u8> {
        encoded(&DynamicImage::new_rgb8(1, 1), ImageFormat::Png)
    }

    fn options(dirs: &[&Path]) -> InputOptions {
        InputOptions {
            dirs: dirs.iter().map(|d| dunce::canonicalize(d).unwrap()).collect(),
            max_bytes: 1024,
        }
    }

    #[test]
    fn entries_are_told_apart_by_their_text() {
        assert_eq!(
            Source::parse(" https://images.invalid/a.png?x=1 ").unwrap(),
            Source::Url("https://images.invalid/a.png?x=1".into())
        );
        let job = |id: &str, index| Source::Job {
            id: RequestId::parse(id).unwrap(),
            index,
        };
        assert_eq!(Source::parse("abc-123").unwrap(), job("abc-123", 1));
        assert_eq!(Source::parse("abc-123#3").unwrap(), job("abc-123", 3));
        assert!(Source::parse("abc#0").unwrap_err().contains("numbered from 1"));
        assert!(Source::parse("abc#x").is_err());
        assert_eq!(Source::parse("/tmp/a.png").unwrap(), Source::File("/tmp/a.png".into()));
        assert!(matches!(
            Source::parse("data:image/png;base64,AAAA").unwrap(),
            Source::DataUri(_)
        ));
        let http = Source::parse("http://example.com/a.png").unwrap_err();
        assert!(http.contains("https://") && http.contains("request_id#n"), "{http}");
        assert!(Source::parse("ftp://x/y").unwrap_err().contains("ftp://"));
        assert!(Source::parse("photo.png").unwrap_err().contains("absolute path"));
        assert!(Source::parse("./photo").unwrap_err().contains("absolute path"));
        assert!(Source::parse("what is this?")
            .unwrap_err()
            .contains("not an image reference"));
    }

    #[test]
    fn files_are_read_only_inside_allowed_directories() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let image = allowed.path().join("a.png");
        std::fs::write(&image, png_1x1()).unwrap();
        std::fs::write(outside.path().join("b.png"), png_1x1()).unwrap();
        std::fs::write(allowed.path().join("notes.txt"), b"hello, not an image").unwrap();
        std::fs::write(allowed.path().join("big.png"), vec![0u8; 2048]).unwrap();
        let opts = options(&[allowed.path()]);

        let ok = read_file(&opts, &image, "given".into()).unwrap();
        assert!(ok.wire.starts_with("data:image/png;base64,iVBORw0KGgo"), "{}", ok.wire);
        assert_eq!(ok.record.kind, InputKind::File);
        assert_eq!(ok.record.bytes, Some(png_1x1().len() as u64));
        assert_eq!(ok.record.mime_type.as_deref(), Some("image/png"));

        let refused = read_file(&opts, &outside.path().join("b.png"), "x".into()).unwrap_err();
        assert!(
            refused.contains("outside") && refused.contains("--input-dir"),
            "{refused}"
        );
        let missing = read_file(&opts, &allowed.path().join("nope.png"), "x".into()).unwrap_err();
        assert!(missing.contains("no file"), "{missing}");
        let text = read_file(&opts, &allowed.path().join("notes.txt"), "x".into()).unwrap_err();
        assert!(text.contains("not a PNG, JPEG or WebP"), "{text}");
        let big = read_file(&opts, &allowed.path().join("big.png"), "x".into()).unwrap_err();
        assert!(big.contains("--input-max-mb"), "{big}");
        let dir = read_file(&opts, allowed.path(), "x".into()).unwrap_err();
        assert!(dir.contains("not a file"), "{dir}");
        let none = read_file(&InputOptions::default(), &image, "x".into()).unwrap_err();
        assert!(none.contains("--input-dir"), "{none}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_an_allowed_directory_is_refused() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.png"), png_1x1()).unwrap();
        let link = allowed.path().join("link.png");
        std::os::unix::fs::symlink(outside.path().join("secret.png"), &link).unwrap();
        let refused = read_file(&options(&[allowed.path()]), &link, "x".into()).unwrap_err();
        assert!(refused.contains("outside"), "{refused}");
        // It says where the link leads: the file in the allowed directory is only a link.
        let real = dunce::canonicalize(outside.path().join("secret.png")).unwrap();
        assert!(
            refused.contains(&format!("is a link to {}", real.display())),
            "{refused}"
        );
    }

    /// Outside the allowed directories, a missing file gets the same answer as one that exists:
    /// nothing is learnt about a place the server may not read.
    #[test]
    fn outside_the_allowed_directories_a_missing_file_is_answered_like_an_existing_one() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let outside_dir = dunce::canonicalize(outside.path()).unwrap();
        std::fs::write(outside_dir.join("there.png"), png_1x1()).unwrap();
        let opts = options(&[allowed.path()]);
        let there = read_file(&opts, &outside_dir.join("there.png"), "x".into()).unwrap_err();
        let missing = read_file(&opts, &outside_dir.join("missing.png"), "x".into()).unwrap_err();
        assert_eq!(
            there.replace("there.png", "F"),
            missing.replace("missing.png", "F"),
            "{there} / {missing}"
        );
        assert!(!missing.contains("no file"), "{missing}");
        // Walking out with `..` is judged by where it leads, the same way.
        let climbed = allowed.path().join("..").join("nowhere.png");
        let refused = read_file(&opts, &climbed, "x".into()).unwrap_err();
        assert!(refused.contains("outside"), "{refused}");
    }

    #[tokio::test]
    async fn data_uris_are_checked_and_relabelled_by_their_bytes() {
        let engine = base64::engine::general_purpose::STANDARD;
        let payload = engine.encode(png_1x1());
        let opts = options(&[]);
        let ok = data_uri(&opts, &format!("data:image/jpeg;base64,{payload}"))
            .await
            .unwrap();
        assert_eq!(ok.wire, format!("data:image/png;base64,{payload}"));
        assert!(!ok.record.given.contains(&payload), "the bytes are not kept");
        for (bad, says) in [
            ("data:text/plain;base64,aGVsbG8=", "declares type"),
            ("data:image/png,rawbytes", "not base64"),
            ("data:image/png;base64,@@@", "does not decode"),
            ("data:image/png;base64,aGVsbG8gd29ybGQ=", "does not hold"),
            ("data:image/png;base64", "no comma"),
        ] {
            let err = data_uri(&opts, bad).await.unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let big = format!("data:image/png;base64,{}", engine.encode(vec![0u8; 4096]));
        assert!(data_uri(&opts, &big).await.unwrap_err().contains("--input-max-mb"));
    }

    fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut out), format).unwrap();
        out
    }

    fn noise(w: u32, h: u32) -> DynamicImage {
        let mut state = 0x2545_f491_u32;
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |_, _| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let [a, b, c, _] = state.to_le_bytes();
            image::Rgb([a, b, c])
        }))
    }

    /// Issue 40 finding 6: a JPEG or WebP goes as a PNG, downscaled until it fits 6 MiB.
    #[test]
    fn images_go_as_pngs_within_runcomfys_per_input_limits() {
        // Noise: its PNG is about 3 bytes a pixel, so 2400×1800 (13 MB as PNG) must shrink.
        let jpeg = encoded(&noise(2400, 1800), ImageFormat::Jpeg);
        let png = as_png(&jpeg, ImageFormat::Jpeg).unwrap();
        assert!(png.bytes.len() <= MAX_INPUT_PNG_BYTES, "{}", png.bytes.len());
        assert_eq!(image::guess_format(&png.bytes).unwrap(), ImageFormat::Png);
        assert_eq!(png.downscaled_from, Some((2400, 1800)));
        let sent = image::load_from_memory(&png.bytes).unwrap();
        assert_eq!((sent.width(), sent.height()), (png.width, png.height));
        let ratio = f64::from(png.width) / f64::from(png.height);
        assert!((ratio - 4.0 / 3.0).abs() < 0.01, "{ratio}");
        assert!(png.sent_as().unwrap().contains("downscaled from 2400×1800"));

        // A small WebP is re-encoded at its own size; a small PNG goes as it is.
        let webp = encoded(&DynamicImage::new_rgba8(30, 20), ImageFormat::WebP);
        let png = as_png(&webp, ImageFormat::WebP).unwrap();
        assert_eq!(image::guess_format(&png.bytes).unwrap(), ImageFormat::Png);
        assert_eq!((png.width, png.height, png.downscaled_from), (30, 20, None));
        let small = encoded(&DynamicImage::new_rgb8(30, 20), ImageFormat::Png);
        assert_eq!(as_png(&small, ImageFormat::Png).unwrap().bytes, small);
    }

    #[test]
    fn the_pixel_limit_is_kept_without_decoding_a_bomb() {
        assert_eq!(fit(8000, 6000, MAX_INPUT_PIXELS), (6531, 4898));
        assert!(u64::from(6531u32) * 4898 <= MAX_INPUT_PIXELS);
        assert_eq!(fit(100, 50, MAX_INPUT_PIXELS), (100, 50));
        // Issue 34 finding 8: 11000×11000 declared in a tiny file is refused from its header.
        let bomb = crate::media::pixels::tests::pixel_bomb(11_000, 11_000);
        let refused = as_png(&bomb, ImageFormat::Png).unwrap_err();
        assert!(refused.contains("megapixels"), "{refused}");
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
