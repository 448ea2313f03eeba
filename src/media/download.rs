//! Bounded downloads of result files: where they may come from, a timeout, a size cap, a
//! content-type check, and the body streamed into a file rather than held in memory.
//!
//! A result URL comes from the upstream's answer, so everything about it is checked: where it
//! points ([`super::address`]: public `https` only, before the request, at every redirect and
//! after DNS), an error status is an error, a `Content-Type` that is not an image (an HTML error
//! page served with 200) is refused before the body is read, and the first bytes must be a PNG,
//! JPEG or WebP signature — the format we name the file after is the one sniffed, not the one
//! claimed. A video or audio file ([`download_media`]) is never decoded: its type is the
//! server's `Content-Type`, and only an error page is refused. The body goes chunk by chunk into the spool file, so a 50 MB image costs a few
//! kilobytes of buffer, not 50 MB (or twice that).

use std::{sync::Arc, time::Duration};

use image::ImageFormat;
use reqwest::header;
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use super::address::{self, AddressPolicy, Refusal, Resolver, SystemResolver};
use super::streamed::Tap;

/// The HTTP client for result files. Its own, not the API client's: it resolves names through
/// the address policy, checks every redirect, never goes through a proxy (a proxy would resolve
/// names where the policy cannot see them), and never carries the API token.
#[derive(Clone)]
pub struct Downloader {
    http: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Downloader {
    /// With the system resolver.
    pub fn new(policy: AddressPolicy) -> Result<Self, String> {
        Self::builder(policy).build()
    }

    pub fn builder(policy: AddressPolicy) -> DownloaderBuilder {
        DownloaderBuilder {
            policy,
            resolver: Arc::new(SystemResolver),
            proxy: None,
        }
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }
}

/// Builds a [`Downloader`]; the seams are for tests.
pub struct DownloaderBuilder {
    policy: AddressPolicy,
    resolver: Arc<dyn Resolver>,
    proxy: Option<reqwest::Proxy>,
}

impl DownloaderBuilder {
    /// Resolves names (and picks the address dialled) with `resolver` instead of the system's.
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Sends the requests `proxy` matches through it. Only for tests: requests to address
    /// literals never reach the resolver, so a test routes them to a recorder on loopback
    /// (`reqwest::Proxy::custom`) to be sure nothing else is dialled even if a check is broken.
    pub fn proxy(mut self, proxy: reqwest::Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    pub fn build(self) -> Result<Downloader, String> {
        let policy = Arc::new(self.policy);
        let redirects = {
            let policy = policy.clone();
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > address::MAX_REDIRECTS {
                    return attempt.error(Refusal::TooManyRedirects(address::MAX_REDIRECTS));
                }
                match policy.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refusal) => attempt.error(refusal),
                }
            })
        };
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(address::Guarded {
                policy: policy.clone(),
                resolver: self.resolver,
            }))
            .redirect(redirects)
            .referer(false)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("runcomfy-mcp/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = self.proxy {
            builder = builder.proxy(proxy);
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the download client: {e}"))?;
        Ok(Downloader { http, policy })
    }
}

/// Bounds on one download.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// A finished download: the spool file holds exactly the body.
#[derive(Debug)]
pub struct Downloaded {
    pub file: NamedTempFile,
    pub bytes: u64,
    /// The sniffed format.
    pub format: ImageFormat,
}

impl Downloaded {
    pub fn mime_type(&self) -> &'static str {
        self.format.to_mime_type()
    }

    pub fn extension(&self) -> &'static str {
        self.format.extensions_str().first().copied().unwrap_or("bin")
    }
}

/// Why a download was given up; the message is shown to the user as a note.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("not an http(s) URL")]
    BadUrl,
    #[error("refused: {0}")]
    Refused(Refusal),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the server sent {0:?} instead of a file of the expected kind")]
    WrongType(String),
    #[error("it is larger than the {} MB download limit", .0 / (1024 * 1024))]
    TooLarge(u64),
    #[error("it did not finish downloading within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("the content is not a PNG, JPEG or WebP image")]
    NotAnImage,
    #[error("the content is a web page or JSON, not a video or audio file")]
    NotMedia,
    #[error("the content is not a JSON object")]
    NotJson,
    #[error("the connection failed: {0}")]
    Transport(String),
    #[error("cannot write the file: {0}")]
    Io(#[from] std::io::Error),
}

/// Bytes needed to recognise every supported signature (WebP: `RIFF....WEBP`).
const SNIFF_LEN: usize = 16;

/// Downloads the image at `url` into `spool` (an empty temporary file), within `limits`, handing
/// each chunk of the body to `tap` as well (a decode while it streams; `Tap::default()`: none).
pub async fn download(
    downloader: &Downloader,
    url: &str,
    limits: Limits,
    spool: NamedTempFile,
    tap: Tap,
) -> Result<Downloaded, DownloadError> {
    let want = Want {
        accept: "image/png, image/jpeg, image/webp, image/*;q=0.8",
        acceptable: acceptable_type,
        // Stop at once on an HTML page or anything else that is not an image.
        head: |head| sniff(head).map(drop),
    };
    let body = within(limits, fetch(downloader, url, limits, spool, want, tap)).await?;
    Ok(Downloaded {
        format: sniff(&body.head)?,
        file: body.file,
        bytes: body.bytes,
    })
}

/// A finished download of a video or audio file, which is kept as it came: never decoded.
#[derive(Debug)]
pub struct MediaFile {
    pub file: NamedTempFile,
    pub bytes: u64,
    /// The type the server named (`application/octet-stream` when it named none we know).
    pub mime_type: String,
    /// The saved file's extension: from the type, else from the URL, else `bin`.
    pub extension: &'static str,
}

/// Downloads the video or audio file at `url` into `spool`, within `limits`. Its type is the
/// server's word (there is no signature check short of decoding it), but an error page is still
/// refused: a text type, or a body that starts like HTML or JSON.
pub async fn download_media(
    downloader: &Downloader,
    url: &str,
    limits: Limits,
    spool: NamedTempFile,
) -> Result<MediaFile, DownloadError> {
    let want = Want {
        accept: "video/*, audio/*, application/octet-stream;q=0.8",
        acceptable: acceptable_media_type,
        head: |head| match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<' | b'{') => Err(DownloadError::NotMedia),
            _ => Ok(()),
        },
    };
    let body = within(limits, fetch(downloader, url, limits, spool, want, Tap::default())).await?;
    let essence = body.content_type.as_deref().map(essence).unwrap_or_default();
    let (mime_type, extension) = match media_extension_of_type(&essence) {
        Some(extension) => (essence, extension),
        None => (
            "application/octet-stream".to_owned(),
            media_extension_of_url(url).unwrap_or("bin"),
        ),
    };
    Ok(MediaFile {
        file: body.file,
        bytes: body.bytes,
        mime_type,
        extension,
    })
}

/// Downloads the small JSON object at `url` (an OAuth client's metadata document, whose address a
/// stranger chooses) under the same policy, within `limits`, and returns its bytes.
pub async fn download_json(downloader: &Downloader, url: &str, limits: Limits) -> Result<Vec<u8>, DownloadError> {
    let want = Want {
        accept: "application/json",
        acceptable: |claimed| {
            let essence = essence(claimed);
            essence == "application/json" || essence.ends_with("+json")
        },
        head: |head| match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Ok(()),
            _ => Err(DownloadError::NotJson),
        },
    };
    let (spool, tap) = (NamedTempFile::new()?, Tap::default());
    let body = within(limits, fetch(downloader, url, limits, spool, want, tap)).await?;
    Ok(tokio::fs::read(body.file.path()).await?)
}

/// What a download must be: the `Accept` header, the `Content-Type`s taken, and a check of the
/// first bytes.
struct Want {
    accept: &'static str,
    acceptable: fn(&str) -> bool,
    head: fn(&[u8]) -> Result<(), DownloadError>,
}

/// A body streamed into its spool file.
struct Body {
    file: NamedTempFile,
    bytes: u64,
    content_type: Option<String>,
    /// The first [`SNIFF_LEN`] bytes (fewer for a shorter body).
    head: Vec<u8>,
}

async fn within<T>(
    limits: Limits,
    fetching: impl std::future::Future<Output = Result<T, DownloadError>>,
) -> Result<T, DownloadError> {
    match tokio::time::timeout(limits.timeout, fetching).await {
        Ok(outcome) => outcome,
        Err(_) => Err(DownloadError::Timeout(limits.timeout)),
    }
}

async fn fetch(
    downloader: &Downloader,
    url: &str,
    limits: Limits,
    spool: NamedTempFile,
    want: Want,
    mut tap: Tap,
) -> Result<Body, DownloadError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| DownloadError::BadUrl)?;
    if parsed.host().is_none() {
        return Err(DownloadError::BadUrl);
    }
    // Literal addresses never reach the resolver: they are judged here.
    downloader.policy.check_url(&parsed).map_err(|refusal| match refusal {
        Refusal::BadUrl => DownloadError::BadUrl,
        other => DownloadError::Refused(other),
    })?;
    // No token: result URLs are public, and the token must never go to another host.
    let mut response = downloader
        .http
        .get(parsed)
        .header(header::ACCEPT, want.accept)
        .timeout(limits.timeout)
        .send()
        .await
        .map_err(|e| transport(&e, limits.timeout))?;
    if !response.status().is_success() {
        return Err(DownloadError::Status(response.status().as_u16()));
    }
    let content_type = match response.headers().get(header::CONTENT_TYPE) {
        Some(claimed) => {
            let claimed = claimed.to_str().unwrap_or("(unreadable)").to_owned();
            if !(want.acceptable)(&claimed) {
                // The header is the other side's: shown shortened.
                return Err(DownloadError::WrongType(crate::text::ellipsis(&claimed, 80)));
            }
            Some(claimed)
        }
        None => None,
    };
    if response.content_length().is_some_and(|n| n > limits.max_bytes) {
        return Err(DownloadError::TooLarge(limits.max_bytes));
    }

    let mut file = tokio::fs::File::from_std(spool.as_file().try_clone()?);
    let mut written: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut checked = false;
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e, limits.timeout))? {
        written += chunk.len() as u64;
        if written > limits.max_bytes {
            return Err(DownloadError::TooLarge(limits.max_bytes));
        }
        if !checked {
            head.extend(chunk.iter().take(SNIFF_LEN - head.len()));
            if head.len() == SNIFF_LEN {
                (want.head)(&head)?;
                checked = true;
            }
        }
        file.write_all(&chunk).await?;
        tap.send(&chunk).await;
    }
    file.flush().await?;
    if !checked {
        (want.head)(&head)?;
    }
    Ok(Body {
        file: spool,
        bytes: written,
        content_type,
        head,
    })
}

/// `Video/MP4; codecs=x` as `video/mp4`.
fn essence(claimed: &str) -> String {
    claimed.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Video and audio types, and the generic binary types storage services often send for any file.
fn acceptable_media_type(claimed: &str) -> bool {
    let essence = essence(claimed);
    essence.starts_with("video/")
        || essence.starts_with("audio/")
        || matches!(
            essence.as_str(),
            "application/octet-stream" | "binary/octet-stream" | "application/ogg" | "application/mp4"
        )
}

/// The video and audio types we name files after, with their extensions.
const MEDIA_TYPES: &[(&str, &str)] = &[
    ("video/mp4", "mp4"),
    ("application/mp4", "mp4"),
    ("video/webm", "webm"),
    ("video/quicktime", "mov"),
    ("video/x-matroska", "mkv"),
    ("video/x-msvideo", "avi"),
    ("video/mpeg", "mpeg"),
    ("video/ogg", "ogv"),
    ("audio/wav", "wav"),
    ("audio/x-wav", "wav"),
    ("audio/wave", "wav"),
    ("audio/vnd.wave", "wav"),
    ("audio/mpeg", "mp3"),
    ("audio/mp3", "mp3"),
    ("audio/ogg", "ogg"),
    ("application/ogg", "ogg"),
    ("audio/opus", "opus"),
    ("audio/flac", "flac"),
    ("audio/x-flac", "flac"),
    ("audio/aac", "aac"),
    ("audio/mp4", "m4a"),
    ("audio/x-m4a", "m4a"),
    ("audio/webm", "weba"),
];

fn media_extension_of_type(essence: &str) -> Option<&'static str> {
    MEDIA_TYPES.iter().find(|(t, _)| *t == essence).map(|(_, ext)| *ext)
}

/// The extension of the URL's path, when it is one of [`MEDIA_TYPES`]' (a generic type says
/// nothing; the URL's name usually does).
fn media_extension_of_url(url: &str) -> Option<&'static str> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let last = parsed.path_segments()?.next_back()?;
    let (_, ext) = last.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    MEDIA_TYPES.iter().map(|(_, e)| *e).find(|e| *e == ext)
}

/// Image types, and the generic binary types storage services often send for any file (the
/// signature check decides then).
fn acceptable_type(claimed: &str) -> bool {
    let essence = claimed.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.starts_with("image/") || essence == "application/octet-stream" || essence == "binary/octet-stream"
}

fn sniff(head: &[u8]) -> Result<ImageFormat, DownloadError> {
    match image::guess_format(head) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) => Ok(format),
        _ => Err(DownloadError::NotAnImage),
    }
}

fn transport(e: &reqwest::Error, timeout: Duration) -> DownloadError {
    // A refused name or redirect comes back wrapped in reqwest's error.
    if let Some(refusal) = address::refusal_in(e) {
        return DownloadError::Refused(refusal);
    }
    if e.is_timeout() {
        return DownloadError::Timeout(timeout);
    }
    DownloadError::Transport(crate::text::cause_chain(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ok in [
            "image/png",
            "IMAGE/JPEG; charset=x",
            "application/octet-stream",
            "image/webp",
        ] {
            assert!(acceptable_type(ok), "{ok}");
        }
        for bad in ["text/html", "application/json", "", "text/plain; image/png"] {
            assert!(!acceptable_type(bad), "{bad}");
        }
    }

    #[test]
    fn signatures() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap(), ImageFormat::Png);
        assert_eq!(
            sniff(b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0").unwrap(),
            ImageFormat::Jpeg
        );
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), ImageFormat::WebP);
        assert!(sniff(b"<!doctype html><html>").is_err());
        assert!(sniff(b"GIF89a..........").is_err());
    }

    #[test]
    fn media_types_and_extensions() {
        for ok in [
            "video/mp4",
            "Audio/WAV; rate=44100",
            "application/octet-stream",
            "application/ogg",
        ] {
            assert!(acceptable_media_type(ok), "{ok}");
        }
        for bad in ["text/html", "application/json", "image/png", ""] {
            assert!(!acceptable_media_type(bad), "{bad}");
        }
        assert_eq!(media_extension_of_type("video/quicktime"), Some("mov"));
        assert_eq!(media_extension_of_type("audio/mpeg"), Some("mp3"));
        assert_eq!(media_extension_of_type("application/octet-stream"), None);
        assert_eq!(media_extension_of_url("https://x.test/a/b.WEBM?sig=1"), Some("webm"));
        assert_eq!(media_extension_of_url("https://x.test/a/b.exe"), None);
        assert_eq!(media_extension_of_url("https://x.test/"), None);
    }
}
