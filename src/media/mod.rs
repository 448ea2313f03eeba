//! Media in and out. In: [`inputs`] turns the reference images of a request (URLs, files in
//! allowed directories, data URIs) into what RunComfy is sent. Out: what a finished job's output
//! files become for the person and the model — downloaded once (bounded), saved to the output
//! directory, previewed inline, described.
//!
//! [`collect`] is the one entry point; the tools render its [`Collected`] into MCP content. It
//! never fails: a download, preview or save that goes wrong leaves the URL in the result and a
//! note saying what failed, because the job itself succeeded and was paid for.
//!
//! Layout: [`download`] streams a URL into a spool file within a timeout and a size cap, from
//! where [`address`] allows, [`preview`] decodes and scales down, [`save`] owns the output
//! directory and file names, [`settings`] the flags.

pub mod address;
pub mod download;
pub mod inputs;
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

/// Downloads running at once for one result.
const PARALLEL_DOWNLOADS: usize = 4;
/// Downloads running at once in the whole process: a thousand results finishing together
/// (over HTTP, many sessions) must not open a thousand connections and spools at once.
static PROCESS_DOWNLOADS: Semaphore = Semaphore::const_new(16);
/// Previews per result, in bytes, are capped at this many previews' worth, so a large image set
/// cannot push a result past what the per-preview cap was chosen for.
const PREVIEW_BUDGET_IN_PREVIEWS: usize = 4;

/// What kind of file an output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    Image,
    Video,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
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
    /// `image` or `video`.
    #[schemars(with = "String")]
    pub kind: OutputKind,
    /// 1-based position among the outputs of its kind, in RunComfy's order.
    pub index: usize,
    pub url: String,
    /// How to name this image in `images` to edit or reuse it: `<request_id>#<n>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The content type, as sniffed from the downloaded bytes.
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
    pub outputs: Vec<OutputReport>,
    pub inline: Vec<InlineImage>,
    /// Result-wide remarks (per-output ones are in [`OutputReport::problem`]).
    pub notes: Vec<String>,
}

/// One result's outputs to collect.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Saved files are named after it (sanitised): the request id.
    pub name_stem: &'a str,
    pub images: &'a [String],
    pub videos: &'a [String],
    /// The call asked for full-size images inline.
    pub full_size: bool,
}

/// Downloads, saves and previews the images of a finished job as the options say; videos get
/// their URL only.
pub async fn collect(downloader: &Downloader, options: &MediaOptions, request: Request<'_>) -> Collected {
    collect_all(downloader, options, &[request])
        .await
        .pop()
        .unwrap_or_default()
}

/// [`collect`] for several finished jobs answered together (a batch): every image is fetched at
/// once within the same bounds, and the inline budgets are the result's, shared in job order,
/// so that four jobs carry no more inline bytes than one job of four images. One [`Collected`]
/// per request, in order.
pub async fn collect_all(downloader: &Downloader, options: &MediaOptions, requests: &[Request<'_>]) -> Vec<Collected> {
    let downloads = Semaphore::new(PARALLEL_DOWNLOADS);
    // Decoding a 6K image takes ~100 MB. One decode at a time in the whole process, not per call:
    // a thousand results finishing together must not hold a thousand decoded images at once.
    static DECODES: Semaphore = Semaphore::const_new(1);
    let decodes = &DECODES;
    let work = requests.iter().map(|&request| {
        let downloads = &downloads;
        let images = request.images.iter().enumerate().map(move |(i, url)| async move {
            one_image(downloader, options, request, i + 1, url, downloads, decodes).await
        });
        futures::future::join_all(images)
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
        .zip(done)
        .map(|(request, done)| budget.apply(options, *request, done))
        .collect()
}

/// The inline bytes a result may still carry.
struct Budget {
    full: usize,
    preview: usize,
}

impl Budget {
    /// One job's images, inline as far as the budget goes; what did not fit is said in a note.
    fn apply(
        &mut self,
        options: &MediaOptions,
        request: Request<'_>,
        done: Vec<(OutputReport, Option<Made>)>,
    ) -> Collected {
        let mut collected = Collected::default();
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
            request
                .videos
                .iter()
                .enumerate()
                .map(|(i, url)| OutputReport::new(OutputKind::Video, i + 1, url)),
        );

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
            report.problem = Some(format!("not downloaded: {e}"));
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
                report.problem = Some(p.problems.join("; "));
            }
            (report, Some(p.made))
        }
        Err(e) => {
            report.problem = Some(format!("could not be processed: {e}"));
            (report, None)
        }
    }
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
