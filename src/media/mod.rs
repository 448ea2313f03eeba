//! Media in and out. In: [`inputs`] turns the reference images of a request (URLs, files in
//! allowed directories, data URIs) into what RunComfy is sent. Out: what a finished job's output
//! files become for the person and the model — downloaded once (bounded), saved to the output
//! directory, previewed inline (images only: a video or audio file is saved as it came, never
//! decoded), described.
//!
//! [`collect`] is the one entry point; the tools render its [`Collected`] into MCP content. It
//! never fails: a download, preview or save that goes wrong leaves the URL in the result and a
//! note saying what failed, because the job itself succeeded and was paid for.
//!
//! A result is bounded however many outputs the upstream lists: at most [`MAX_PROCESSED`] are
//! downloaded, previewed or saved, at most [`MAX_LISTED`] (within [`MAX_LISTED_URL_BYTES`]) are
//! listed at all, and the rest are counted ([`listing`]).
//!
//! Layout: [`download`] streams a URL into a spool file within a timeout and a size cap, from
//! where [`address`] allows, [`preview`] decodes (within [`pixels`]' bounds) and scales down, [`save`] owns the output
//! directory and file names, [`settings`] the flags.

pub mod address;
pub mod download;
pub mod inputs;
pub mod on_demand;
pub mod pixels;
pub mod preview;
pub mod save;
pub mod settings;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;
use tempfile::NamedTempFile;
use tokio::sync::Semaphore;

pub use address::AddressPolicy;
pub use download::Downloader;
pub use save::OutputDir;
pub use settings::{MediaArgs, MediaOptions};

use download::{Downloaded, Limits};
use preview::{Preview, PreviewLimits};

/// Outputs of one result that are downloaded, previewed or saved, in the upstream's order. A
/// Dreamina set is a handful of images; an answer listing thousands is a broken or hostile
/// upstream, and must not cost thousands of downloads.
pub const MAX_PROCESSED: usize = 16;
/// Outputs of one result listed at all (URL, link, entry in `outputs`); the rest are counted.
pub const MAX_LISTED: usize = 64;
/// The listed outputs' URLs together stay within this many bytes (each URL appears a few times
/// in an answer): 64 ordinary URLs fit, and a few kilobyte-long signed ones.
pub const MAX_LISTED_URL_BYTES: usize = 16 * 1024;
/// A problem note on one output is shortened to this many characters.
const MAX_PROBLEM_CHARS: usize = 300;

/// Downloads running at once for one result.
const PARALLEL_DOWNLOADS: usize = 4;
/// Downloads running at once in the whole process: a thousand results finishing together
/// (over HTTP, many sessions) must not open a thousand connections and spools at once.
static PROCESS_DOWNLOADS: Semaphore = Semaphore::const_new(16);
/// Previews per result, in bytes, are capped at this many previews' worth, so a large image set
/// cannot push a result past what the per-preview cap was chosen for.
const PREVIEW_BUDGET_IN_PREVIEWS: usize = 4;
/// Decoding a 6K image takes ~100 MB. One decode at a time in the whole process, not per call:
/// a thousand results finishing together must not hold a thousand decoded images at once.
static DECODES: Semaphore = Semaphore::const_new(1);

/// What kind of file an output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    Image,
    Video,
    Audio,
    /// Any other file a model returned (under a key of its own, of no known media type):
    /// listed by URL, never downloaded.
    File,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::File => "file",
        }
    }
}

/// How an image is carried inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InlineForm {
    /// Scaled down and re-encoded as JPEG.
    Preview,
    /// The file as RunComfy made it.
    FullSize,
}

/// What one output became.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OutputReport {
    /// `image`, `video`, `audio` or `file` (any other output, listed by URL only).
    #[schemars(with = "String")]
    pub kind: OutputKind,
    /// 1-based position among the outputs of its kind, in RunComfy's order.
    pub index: usize,
    pub url: String,
    /// How to name this image in `images` to edit or reuse it: `<request_id>#<n>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The content type: an image's as sniffed from its bytes, a video's or audio file's as its server named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// File size in bytes, when it was downloaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Where the file was saved on the server's machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_path: Option<String>,
    /// The inline copy of this image in the result's content, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline: Option<InlineReport>,
    /// What went wrong with this output (the URL still works).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Why the URL is listed as text only, never as a link or an open button (only https: URLs are linked: a javascript: or data: URL could run script where it is opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_a_link: Option<String>,
}

/// Describes an inline image block.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InlineReport {
    /// `preview` (scaled down) or `full_size`.
    #[schemars(with = "String")]
    pub form: InlineForm,
    pub width: u32,
    pub height: u32,
    /// Bytes before base64.
    pub bytes: usize,
    pub mime_type: String,
}

/// An image to put inline, in output order.
#[derive(Debug, Clone)]
pub struct InlineImage {
    pub index: usize,
    pub mime_type: String,
    pub data: Vec<u8>,
}

/// Everything [`collect`] found out and made.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The listed outputs (see [`listing`]): images, then videos, then audio.
    pub outputs: Vec<OutputReport>,
    pub inline: Vec<InlineImage>,
    /// Result-wide remarks (per-output ones are in [`OutputReport::problem`]).
    pub notes: Vec<String>,
    /// Outputs the upstream listed beyond those in `outputs`.
    pub unlisted: usize,
}

/// A result's output URLs by kind, each in RunComfy's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputUrls {
    pub images: Vec<String>,
    pub videos: Vec<String>,
    pub audios: Vec<String>,
    /// URLs under other keys whose kind neither their key nor their extension tells.
    pub files: Vec<String>,
}

impl OutputUrls {
    /// Every URL of `output`: its image(s), video(s) and audio(s) keys, then every http(s) URL
    /// under any other key (as RunComfy's CLI collects them), sorted into a kind by the key's
    /// name or the URL's extension, else listed as a file.
    pub fn of(output: &crate::runcomfy::Output) -> Self {
        let mut urls = Self {
            images: output.image_urls(),
            videos: output.video_urls(),
            audios: output.audio_urls(),
            files: Vec::new(),
        };
        for other in output.other_urls() {
            if urls.contains(&other.url) {
                continue;
            }
            match kind_of(&other.key, &other.url) {
                OutputKind::Image => urls.images.push(other.url),
                OutputKind::Video => urls.videos.push(other.url),
                OutputKind::Audio => urls.audios.push(other.url),
                OutputKind::File => urls.files.push(other.url),
            }
        }
        urls
    }

    fn contains(&self, url: &String) -> bool {
        [&self.images, &self.videos, &self.audios, &self.files]
            .iter()
            .any(|list| list.contains(url))
    }

    pub fn len(&self) -> usize {
        self.images.len() + self.videos.len() + self.audios.len() + self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The kind of a URL found under an unexpected key of `output`: the key's name says it
/// (`image_url`, `video_result`), else the URL's extension, else it is a file.
fn kind_of(key: &str, url: &str) -> OutputKind {
    let key = key.to_ascii_lowercase();
    if key.contains("image") || key.contains("img") || key.contains("photo") {
        return OutputKind::Image;
    }
    if key.contains("video") {
        return OutputKind::Video;
    }
    if key.contains("audio") || key.contains("sound") || key.contains("music") || key.contains("speech") {
        return OutputKind::Audio;
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path
        .rsplit_once('.')
        .filter(|(_, ext)| !ext.contains('/'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" | "jpg" | "jpeg" | "webp" | "gif" => OutputKind::Image,
        "mp4" | "webm" | "mov" | "mkv" | "m4v" => OutputKind::Video,
        "wav" | "mp3" | "ogg" | "flac" | "m4a" | "aac" | "opus" => OutputKind::Audio,
        _ => OutputKind::File,
    }
}

/// The outputs of a result that are listed: the first images, then the first videos, then the
/// first audio files, at most [`MAX_LISTED`] of them and [`MAX_LISTED_URL_BYTES`] of URLs;
/// `unlisted` counts the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing<'a> {
    pub images: &'a [String],
    pub videos: &'a [String],
    pub audios: &'a [String],
    pub files: &'a [String],
    pub unlisted: usize,
}

/// The one place the listing bound is applied: by [`collect`], the tools' answers and the journal.
pub fn listing(urls: &OutputUrls) -> Listing<'_> {
    ListingRoom::new().listing(urls)
}

/// What is left of one answer's listing bound, for an answer that lists several results
/// (`list_jobs`): each takes its share in turn, and once it is used up the rest are counted.
#[derive(Debug, Clone)]
pub struct ListingRoom {
    entries: usize,
    bytes: usize,
}

impl Default for ListingRoom {
    fn default() -> Self {
        Self::new()
    }
}

impl ListingRoom {
    pub fn new() -> Self {
        Self {
            entries: MAX_LISTED,
            bytes: MAX_LISTED_URL_BYTES,
        }
    }

    /// One job's room in an answer for `jobs` jobs (a batch): its own [`MAX_LISTED`] entries,
    /// and its share of the URL bytes, so that the batch's answer is no larger than one job's
    /// of long URLs.
    pub fn share_of(jobs: usize) -> Self {
        Self {
            entries: MAX_LISTED,
            bytes: MAX_LISTED_URL_BYTES / jobs.max(1),
        }
    }

    /// The longest prefix of `items` that fits, taken out of the room.
    pub fn take<'a>(&mut self, items: &'a [String]) -> &'a [String] {
        let mut n = 0;
        for item in items {
            if self.entries == 0 || item.len() > self.bytes {
                // Nothing after an item that did not fit is listed, so a list is always a prefix.
                self.entries = 0;
                break;
            }
            self.entries -= 1;
            self.bytes -= item.len();
            n += 1;
        }
        &items[..n]
    }

    /// A result's images, then its videos, its audio files and its other files (as in
    /// `outputs`), out of the room.
    pub fn listing<'a>(&mut self, urls: &'a OutputUrls) -> Listing<'a> {
        let images = self.take(&urls.images);
        let videos = self.take(&urls.videos);
        let audios = self.take(&urls.audios);
        let files = self.take(&urls.files);
        Listing {
            unlisted: urls.len() - images.len() - videos.len() - audios.len() - files.len(),
            images,
            videos,
            audios,
            files,
        }
    }
}

/// `20000` as `20,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One result's outputs to collect.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Saved files are named after it (sanitised): the request id.
    pub name_stem: &'a str,
    pub urls: &'a OutputUrls,
    /// The call asked for full-size images inline.
    pub full_size: bool,
}

/// Downloads, saves and previews the images of a finished job as the options say, and downloads
/// and saves its videos and audio files when saving is on, the first [`MAX_PROCESSED`] outputs
/// in all (images first); outputs past those get their URL only, and outputs past the
/// [`listing`] are only counted.
pub async fn collect(downloader: &Downloader, options: &MediaOptions, request: Request<'_>) -> Collected {
    collect_all(downloader, options, &[request])
        .await
        .pop()
        .unwrap_or_default()
}

/// [`collect`] for several finished jobs answered together (a batch): every image is fetched at
/// once within the same bounds, and the inline budgets are the result's, shared in job order,
/// so that four jobs carry no more inline bytes than one job of four images. Each job has its
/// own [`MAX_PROCESSED`] and [`MAX_LISTED`], and its share of [`MAX_LISTED_URL_BYTES`]
/// ([`ListingRoom::share_of`]). One [`Collected`] per request, in order: what a batch's answer
/// lists is its `outputs`.
pub async fn collect_all(downloader: &Downloader, options: &MediaOptions, requests: &[Request<'_>]) -> Vec<Collected> {
    let listed: Vec<Listing<'_>> = requests
        .iter()
        .map(|r| ListingRoom::share_of(requests.len()).listing(r.urls))
        .collect();
    let downloads = Semaphore::new(PARALLEL_DOWNLOADS);
    let decodes = &DECODES;
    let work = requests.iter().zip(&listed).map(|(&request, listed)| {
        let downloads = &downloads;
        let processed = &listed.images[..listed.images.len().min(MAX_PROCESSED)];
        let images = processed.iter().enumerate().map(move |(i, url)| async move {
            one_image(downloader, options, request, i + 1, url, downloads, decodes).await
        });
        // Only saving needs a video's or audio file's bytes: without an output directory, none
        // is fetched.
        let room = match options.output_dir {
            Some(_) => MAX_PROCESSED - processed.len(),
            None => 0,
        };
        let files = numbered(OutputKind::Video, listed.videos)
            .chain(numbered(OutputKind::Audio, listed.audios))
            .take(room)
            .map(move |(kind, index, url)| async move {
                one_file(downloader, options, request, kind, index, url, downloads).await
            });
        futures::future::join(futures::future::join_all(images), futures::future::join_all(files))
    });
    let done = futures::future::join_all(work).await;

    // `--no-preview` means no inline images at all, full-size ones included.
    let full_size = requests.iter().any(|r| r.full_size);
    let mut budget = Budget {
        full: if full_size && options.previews {
            options.full_inline_max_bytes
        } else {
            0
        },
        preview: options.preview_max_bytes * PREVIEW_BUDGET_IN_PREVIEWS,
    };
    requests
        .iter()
        .zip(listed)
        .zip(done)
        .map(|((request, listed), done)| {
            let mut collected = budget.apply(options, *request, listed, done);
            for output in &mut collected.outputs {
                output.not_a_link = downloader.policy().check_link(&output.url).err();
            }
            collected
        })
        .collect()
}

/// The inline bytes a result may still carry.
struct Budget {
    full: usize,
    preview: usize,
}

impl Budget {
    /// One job's images, inline as far as the budget goes; what did not fit is said in a note.
    /// `done` holds the processed images, the first of `listed`.
    fn apply(
        &mut self,
        options: &MediaOptions,
        request: Request<'_>,
        listed: Listing<'_>,
        (done, files): (Vec<(OutputReport, Option<Made>)>, Vec<OutputReport>),
    ) -> Collected {
        let processed = done.len();
        let files_processed = files.len();
        let mut collected = Collected {
            unlisted: listed.unlisted,
            ..Collected::default()
        };
        if request.full_size && !options.previews {
            collected
                .notes
                .push("Inline images are turned off on this server (--no-preview); use the URLs.".to_owned());
        }
        let mut over_full_budget = 0;
        let mut over_preview_budget = 0;
        for (mut report, made) in done {
            let Some(made) = made else {
                collected.outputs.push(report);
                continue;
            };
            let (width, height) = (report.width.unwrap_or(0), report.height.unwrap_or(0));
            let full = made.full.filter(|bytes| bytes.len() <= self.full);
            if request.full_size && options.previews && full.is_none() {
                over_full_budget += 1;
            }
            let inline = match (full, made.preview) {
                (Some(bytes), _) => {
                    self.full -= bytes.len();
                    Some((
                        InlineForm::FullSize,
                        width,
                        height,
                        report.mime_type.clone().unwrap_or_default(),
                        bytes,
                    ))
                }
                (None, Some(p)) if p.jpeg.len() <= self.preview => {
                    self.preview -= p.jpeg.len();
                    Some((
                        InlineForm::Preview,
                        p.width,
                        p.height,
                        Preview::MIME_TYPE.to_owned(),
                        p.jpeg,
                    ))
                }
                (None, Some(_)) => {
                    over_preview_budget += 1;
                    None
                }
                (None, None) => None,
            };
            if let Some((form, width, height, mime_type, data)) = inline {
                report.inline = Some(InlineReport {
                    form,
                    width,
                    height,
                    bytes: data.len(),
                    mime_type: mime_type.clone(),
                });
                collected.inline.push(InlineImage {
                    index: report.index,
                    mime_type,
                    data,
                });
            }
            collected.outputs.push(report);
        }
        collected.outputs.extend(
            listed.images[processed..]
                .iter()
                .enumerate()
                .map(|(i, url)| OutputReport::new(OutputKind::Image, processed + i + 1, url)),
        );
        let mut files = files.into_iter().peekable();
        for (kind, index, url) in
            numbered(OutputKind::Video, listed.videos).chain(numbered(OutputKind::Audio, listed.audios))
        {
            let report = files
                .next_if(|r| r.kind == kind && r.index == index)
                .unwrap_or_else(|| OutputReport::new(kind, index, url));
            collected.outputs.push(report);
        }
        // Other files are listed by URL only: there is no telling what they are.
        collected.outputs.extend(
            numbered(OutputKind::File, listed.files).map(|(kind, index, url)| OutputReport::new(kind, index, url)),
        );
        let files_listed = listed.videos.len() + listed.audios.len();
        if options.output_dir.is_some() && files_listed > files_processed {
            collected.notes.push(format!(
                "{} video or audio file(s) are not saved: at most {MAX_PROCESSED} outputs of a result are downloaded. Their URLs are listed.",
                files_listed - files_processed
            ));
        }

        let fetches = options.previews || options.output_dir.is_some();
        if fetches && request.urls.images.len() > processed {
            collected.notes.push(format!(
                "Only the first {processed} images of a result are downloaded{}; the others are listed by URL.",
                match (options.previews, options.output_dir.is_some()) {
                    (true, true) => ", previewed and saved",
                    (true, false) => " and previewed",
                    (false, _) => " and saved",
                },
            ));
        }
        if listed.unlisted > 0 {
            let total = request.urls.len();
            collected.notes.push(format!(
                "RunComfy listed {} outputs for this job: the first {} are listed here, and {} more are not.",
                thousands(total),
                thousands(total - listed.unlisted),
                thousands(listed.unlisted),
            ));
        }

        if over_full_budget > 0 {
            collected.notes.push(format!(
                "{over_full_budget} image(s) came as previews instead of full size: full-size images in one result are capped at {} KB.",
                options.full_inline_max_bytes / 1024
            ));
        }
        if over_preview_budget > 0 {
            collected.notes.push(format!(
                "{over_preview_budget} image(s) have no inline preview, to keep the result small; their URLs are listed."
            ));
        }
        collected
    }
}

/// What was made from one downloaded image for the inline part of the result.
struct Made {
    preview: Option<Preview>,
    /// The whole file, when full size was asked for and it is under the cap on its own.
    full: Option<Vec<u8>>,
}

impl OutputReport {
    fn new(kind: OutputKind, index: usize, url: &str) -> Self {
        Self {
            kind,
            index,
            url: url.to_owned(),
            reference: None,
            mime_type: None,
            bytes: None,
            width: None,
            height: None,
            saved_path: None,
            inline: None,
            problem: None,
            not_a_link: None,
        }
    }
}

async fn one_image(
    downloader: &Downloader,
    options: &MediaOptions,
    request: Request<'_>,
    index: usize,
    url: &str,
    downloads: &Semaphore,
    decodes: &Semaphore,
) -> (OutputReport, Option<Made>) {
    let mut report = OutputReport::new(OutputKind::Image, index, url);
    if !options.previews && options.output_dir.is_none() {
        return (report, None); // Nothing needs the bytes: do not fetch them.
    }
    let downloaded = {
        let _slot = downloads.acquire().await;
        let _process_slot = PROCESS_DOWNLOADS.acquire().await;
        let spool = match &options.output_dir {
            Some(dir) => dir.spool(),
            None => NamedTempFile::new(),
        };
        let spool = match spool {
            Ok(spool) => spool,
            Err(e) => {
                report.problem = Some(format!("not downloaded: cannot create a temporary file: {e}"));
                return (report, None);
            }
        };
        let limits = Limits {
            max_bytes: options.download_max_bytes,
            timeout: options.download_timeout,
        };
        download::download(downloader, url, limits, spool).await
    };
    let downloaded = match downloaded {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(url, error = %e, "result download failed");
            report.problem = Some(problem(&format!("not downloaded: {e}")));
            return (report, None);
        }
    };
    report.bytes = Some(downloaded.bytes);
    report.mime_type = Some(downloaded.mime_type().to_owned());

    let _slot = decodes.acquire().await;
    let options = options.clone();
    let name = save::file_name(request.name_stem, index, downloaded.extension());
    let full_size = request.full_size;
    let processed = tokio::task::spawn_blocking(move || process(downloaded, &options, &name, full_size)).await;
    match processed {
        Ok(p) => {
            report.width = p.dimensions.map(|d| d.0);
            report.height = p.dimensions.map(|d| d.1);
            report.saved_path = p.saved.map(|path| path.display().to_string());
            if !p.problems.is_empty() {
                report.problem = Some(problem(&p.problems.join("; ")));
            }
            (report, Some(p.made))
        }
        Err(e) => {
            report.problem = Some(format!("could not be processed: {e}"));
            (report, None)
        }
    }
}

/// `(kind, 1-based index, url)` of each URL.
fn numbered(kind: OutputKind, urls: &[String]) -> impl Iterator<Item = (OutputKind, usize, &String)> {
    urls.iter().enumerate().map(move |(i, url)| (kind, i + 1, url))
}

/// Downloads a video or audio file into the output directory and saves it as it came (no
/// decode, no preview), within the media download bounds. Only called when saving is on.
async fn one_file(
    downloader: &Downloader,
    options: &MediaOptions,
    request: Request<'_>,
    kind: OutputKind,
    index: usize,
    url: &str,
    downloads: &Semaphore,
) -> OutputReport {
    let mut report = OutputReport::new(kind, index, url);
    let Some(dir) = options.output_dir.clone() else {
        return report;
    };
    let downloaded = {
        let _slot = downloads.acquire().await;
        let _process_slot = PROCESS_DOWNLOADS.acquire().await;
        let spool = match dir.spool() {
            Ok(spool) => spool,
            Err(e) => {
                report.problem = Some(format!("not downloaded: cannot create a temporary file: {e}"));
                return report;
            }
        };
        let limits = Limits {
            max_bytes: options.media_download_max_bytes,
            timeout: options.media_download_timeout,
        };
        download::download_media(downloader, url, limits, spool).await
    };
    let downloaded = match downloaded {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(url, error = %e, "result download failed");
            report.problem = Some(problem(&format!("not downloaded: {e}")));
            return report;
        }
    };
    report.bytes = Some(downloaded.bytes);
    report.mime_type = Some(downloaded.mime_type.clone());
    // The kind is in the name: a job's first video must not replace its first image.
    let stem = format!("{}-{}", request.name_stem, kind.as_str());
    let name = save::file_name(&stem, index, downloaded.extension);
    // `persist` syncs the file to disk: blocking work.
    match tokio::task::spawn_blocking(move || dir.persist(downloaded.file, &name)).await {
        Ok(Ok(path)) => report.saved_path = Some(path.display().to_string()),
        Ok(Err(e)) => report.problem = Some(problem(&format!("not saved: {e}"))),
        Err(e) => report.problem = Some(format!("could not be saved: {e}")),
    }
    report
}

/// A problem note as shown: error texts can carry what the other side sent.
fn problem(text: &str) -> String {
    crate::text::ellipsis(text, MAX_PROBLEM_CHARS)
}

struct Processed {
    dimensions: Option<(u32, u32)>,
    saved: Option<PathBuf>,
    made: Made,
    problems: Vec<String>,
}

/// The blocking part: decode, preview, read for full size, save.
fn process(downloaded: Downloaded, options: &MediaOptions, name: &str, full_size: bool) -> Processed {
    let mut problems = Vec::new();
    let path = downloaded.file.path().to_owned();
    let (preview, dimensions) = if options.previews {
        let limits = PreviewLimits {
            max_side: options.preview_max_side,
            max_bytes: options.preview_max_bytes,
        };
        match preview::make(&path, downloaded.format, limits) {
            Ok((preview, dims)) => (Some(preview), Some(dims)),
            Err(e) => {
                problems.push(format!("no preview: {e}"));
                (None, preview::dimensions(&path, downloaded.format).ok())
            }
        }
    } else {
        (None, preview::dimensions(&path, downloaded.format).ok())
    };
    let full = (full_size && options.previews && downloaded.bytes <= options.full_inline_max_bytes as u64)
        .then(|| std::fs::read(&path).ok())
        .flatten();
    let saved = options
        .output_dir
        .as_ref()
        .and_then(|dir| match dir.persist(downloaded.file, name) {
            Ok(path) => Some(path),
            Err(e) => {
                problems.push(format!("not saved: {e}"));
                None
            }
        });
    Processed {
        dimensions,
        saved,
        made: Made { preview, full },
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: usize, len: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:0>len$}")).collect()
    }

    fn of(images: &[String], videos: &[String], audios: &[String]) -> OutputUrls {
        OutputUrls {
            images: images.to_vec(),
            videos: videos.to_vec(),
            audios: audios.to_vec(),
            files: Vec::new(),
        }
    }

    #[test]
    fn listing_is_a_prefix_within_the_count_and_the_bytes() {
        let few = urls(4, 100);
        let video = urls(1, 100);
        let audio = urls(2, 50);
        let all = of(&few, &video, &audio);
        assert_eq!(
            listing(&all),
            Listing {
                images: &few[..],
                videos: &video[..],
                audios: &audio[..],
                files: &[],
                unlisted: 0
            }
        );

        let many = of(&urls(20_000, 80), &video, &audio);
        let listed = listing(&many);
        assert_eq!(listed.images.len(), MAX_LISTED);
        assert!(listed.videos.is_empty(), "videos come after every image");
        assert!(listed.audios.is_empty(), "audio comes after every video");
        assert_eq!(listed.unlisted, 20_000 - MAX_LISTED + 3);

        // Long URLs: the byte budget ends the list first; one longer than it is never listed.
        let long = of(&urls(10, 4000), &[], &[]);
        assert_eq!(listing(&long).images.len(), MAX_LISTED_URL_BYTES / 4000);
        // In a batch of four, each job has its 64 entries but a quarter of the bytes.
        assert_eq!(
            ListingRoom::share_of(4).listing(&long).images.len(),
            MAX_LISTED_URL_BYTES / 4 / 4000
        );
        assert_eq!(ListingRoom::share_of(4).listing(&all).unlisted, 0);
        let huge = of(
            &["x".repeat(MAX_LISTED_URL_BYTES + 1), "short".to_owned()],
            &[],
            &["a".to_owned()],
        );
        let listed = listing(&huge);
        assert!(listed.images.is_empty());
        assert!(listed.audios.is_empty(), "nothing after an output that did not fit");
        assert_eq!(listed.unlisted, 3);
    }

    /// A file server on 127.0.0.1 (never anything else): `/v.mp4` as video/mp4, `/a.wav` as
    /// audio/wav, `/clip.mov` as octet-stream, `/page` as an HTML page sent as video/mp4.
    async fn file_server() -> String {
        use axum::{http::header::CONTENT_TYPE, routing::get, Router};
        let app = Router::new()
            .route(
                "/v.mp4",
                get(|| async { ([(CONTENT_TYPE, "video/mp4")], VIDEO.to_vec()) }),
            )
            .route(
                "/a.wav",
                get(|| async { ([(CONTENT_TYPE, "audio/wav")], AUDIO.to_vec()) }),
            )
            .route(
                "/clip.mov",
                get(|| async { ([(CONTENT_TYPE, "application/octet-stream")], VIDEO.to_vec()) }),
            )
            .route(
                "/page",
                get(|| async { ([(CONTENT_TYPE, "video/mp4")], "<!doctype html><p>denied</p>") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    const VIDEO: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isomAAAAAAAAAAAAAAAAAAAA";
    const AUDIO: &[u8] = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0BBBBBBBBBBBB";

    fn saving_options(dir: &std::path::Path) -> MediaOptions {
        MediaOptions {
            output_dir: Some(OutputDir::prepare(dir.to_str().unwrap()).unwrap()),
            ..MediaOptions::default()
        }
    }

    #[tokio::test]
    async fn a_video_and_an_audio_file_are_saved_as_they_came_and_never_previewed() {
        let base = file_server().await;
        let downloader = Downloader::new(AddressPolicy::for_upstream(&base)).unwrap();
        let out = tempfile::tempdir().unwrap();
        let options = saving_options(out.path());
        let urls = OutputUrls {
            images: Vec::new(),
            videos: vec![
                format!("{base}/v.mp4"),
                format!("{base}/clip.mov"),
                format!("{base}/page"),
            ],
            audios: vec![format!("{base}/a.wav")],
            files: Vec::new(),
        };
        let request = Request {
            name_stem: "job-1",
            urls: &urls,
            full_size: true,
        };
        let collected = collect(&downloader, &options, request).await;
        assert!(collected.inline.is_empty(), "no inline copy of a video or audio file");
        let kinds: Vec<(OutputKind, usize)> = collected.outputs.iter().map(|o| (o.kind, o.index)).collect();
        assert_eq!(
            kinds,
            [
                (OutputKind::Video, 1),
                (OutputKind::Video, 2),
                (OutputKind::Video, 3),
                (OutputKind::Audio, 1)
            ]
        );
        let [video, mov, page, audio] = &collected.outputs[..] else {
            unreachable!()
        };
        let saved = |o: &OutputReport| std::fs::read(o.saved_path.as_deref().expect("saved")).unwrap();
        assert_eq!(video.mime_type.as_deref(), Some("video/mp4"));
        assert_eq!(video.bytes, Some(VIDEO.len() as u64));
        assert!(video.saved_path.as_deref().unwrap().ends_with("job-1-video-1.mp4"));
        assert_eq!(saved(video), VIDEO);
        assert!(video.inline.is_none() && video.width.is_none() && video.problem.is_none());
        // A generic type: the extension comes from the URL.
        assert!(
            mov.saved_path.as_deref().unwrap().ends_with("job-1-video-2.mov"),
            "{mov:?}"
        );
        assert_eq!(mov.mime_type.as_deref(), Some("application/octet-stream"));
        // An error page is refused, and its URL still listed.
        assert!(page.saved_path.is_none());
        assert!(page.problem.as_deref().unwrap().contains("web page"), "{page:?}");
        assert_eq!(audio.mime_type.as_deref(), Some("audio/wav"));
        assert!(audio.saved_path.as_deref().unwrap().ends_with("job-1-audio-1.wav"));
        assert_eq!(saved(audio), AUDIO);
        let mut names: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["job-1-audio-1.wav", "job-1-video-1.mp4", "job-1-video-2.mov"],
            "no spool left"
        );
    }

    #[tokio::test]
    async fn media_downloads_have_their_own_cap_and_none_happen_without_saving() {
        let base = file_server().await;
        let downloader = Downloader::new(AddressPolicy::for_upstream(&base)).unwrap();
        let out = tempfile::tempdir().unwrap();
        let urls = OutputUrls {
            videos: vec![format!("{base}/v.mp4")],
            audios: vec![format!("{base}/a.wav")],
            ..OutputUrls::default()
        };
        let request = Request {
            name_stem: "j",
            urls: &urls,
            full_size: false,
        };
        // The image cap does not apply to videos; the media cap does.
        let options = MediaOptions {
            download_max_bytes: 1,
            media_download_max_bytes: 1,
            ..saving_options(out.path())
        };
        let collected = collect(&downloader, &options, request).await;
        for output in &collected.outputs {
            assert!(output.saved_path.is_none());
            assert!(
                output.problem.as_deref().unwrap().contains("download limit"),
                "{output:?}"
            );
        }
        let options = MediaOptions {
            download_max_bytes: 1,
            ..saving_options(out.path())
        };
        let collected = collect(&downloader, &options, request).await;
        assert!(
            collected.outputs.iter().all(|o| o.saved_path.is_some()),
            "{:?}",
            collected.outputs
        );

        // Without an output directory nothing needs the bytes: URLs only.
        let collected = collect(&downloader, &MediaOptions::default(), request).await;
        assert_eq!(collected.outputs.len(), 2);
        assert!(collected
            .outputs
            .iter()
            .all(|o| o.bytes.is_none() && o.problem.is_none()));
    }

    #[test]
    fn thousands_get_separators() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (19_936, "19,936"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), text);
        }
    }
}
