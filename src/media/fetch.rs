//! Fetching a finished job's outputs: its images downloaded (bounded), decoded, previewed and
//! saved as the options say, its videos and audio files downloaded and saved as they came when
//! saving is on, at most [`MAX_PROCESSED`] outputs per result, with bounds on the downloads and
//! decodes running at once in the whole process. Never fails: what goes wrong is a problem on
//! its output, whose URL stays listed.

use std::path::PathBuf;

use image::DynamicImage;
use tempfile::NamedTempFile;
use tokio::sync::Semaphore;

use super::{
    download::{self, Downloaded, Limits},
    inline_budget::{Budget, Made},
    preview::{self, PreviewLimits},
    save, streamed, Collected, Downloader, Listing, ListingRoom, MediaOptions, OutputKind, OutputReport, OutputUrls,
};

/// Outputs of one result that are downloaded, previewed or saved, in the upstream's order. A
/// Dreamina set is a handful of images; an answer listing thousands is a broken or hostile
/// upstream, and must not cost thousands of downloads.
pub const MAX_PROCESSED: usize = 16;
/// A problem note on one output is shortened to this many characters.
const MAX_PROBLEM_CHARS: usize = 300;

/// Downloads running at once for one result.
const PARALLEL_DOWNLOADS: usize = 4;
/// Downloads running at once in the whole process: a thousand results finishing together
/// (over HTTP, many sessions) must not open a thousand connections and spools at once.
pub(super) static PROCESS_DOWNLOADS: Semaphore = Semaphore::const_new(16);
/// Decoding a 6K image takes ~100 MB. One decode at a time in the whole process, not per call:
/// a thousand results finishing together must not hold a thousand decoded images at once.
pub(super) static DECODES: Semaphore = Semaphore::const_new(1);
/// Decodes running while their download streams (media/streamed.rs) have a slot of their own:
/// one held for a slow download's whole length must not keep a downloaded image from its
/// decode. So at most two decoded images at once in the whole process.
static STREAMED_DECODES: Semaphore = Semaphore::const_new(1);

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

    let mut budget = Budget::new(options, requests.iter().any(|r| r.full_size));
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
    // A preview's decode runs while the body streams, when a decode slot is free now.
    let mut decoding = None;
    let downloaded = {
        let _slot = downloads.acquire().await;
        let _process_slot = PROCESS_DOWNLOADS.acquire().await;
        let tap = options.previews.then(|| streamed::open(&STREAMED_DECODES)).flatten();
        let tap = tap.map_or_else(streamed::Tap::default, |(tap, decode)| {
            decoding = Some(decode);
            tap
        });
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
        download::download(downloader, url, limits, spool, tap).await
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

    // The streamed decode's image comes with the decode slot it holds; without one (not a PNG,
    // no slot was free), the file is decoded under a slot as it waits.
    let streamed = match decoding {
        Some(decoding) => match decoding.await {
            Ok((slot, Ok(image))) => Some((slot, image)),
            Ok((_, Err(e))) => {
                tracing::debug!(url, error = %e, "streamed decode gave up; decoding the file");
                None
            }
            Err(_) => None,
        },
        None => None,
    };
    let (_slot, decoded) = match streamed {
        Some((slot, image)) => (Some(slot), Some(image)),
        None => (decodes.acquire().await.ok(), None),
    };
    let options = options.clone();
    let name = save::file_name(request.name_stem, index, downloaded.extension());
    let full_size = request.full_size;
    let processed = tokio::task::spawn_blocking(move || process(downloaded, decoded, &options, &name, full_size)).await;
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
pub(super) fn numbered(kind: OutputKind, urls: &[String]) -> impl Iterator<Item = (OutputKind, usize, &String)> {
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

/// The blocking part: decode (unless `decoded` already is), preview, read for full size, save.
fn process(
    downloaded: Downloaded,
    decoded: Option<DynamicImage>,
    options: &MediaOptions,
    name: &str,
    full_size: bool,
) -> Processed {
    let mut problems = Vec::new();
    let path = downloaded.file.path().to_owned();
    let (preview, dimensions) = if options.previews {
        let limits = PreviewLimits {
            max_side: options.preview_max_side,
            max_bytes: options.preview_max_bytes,
        };
        let made = match decoded {
            Some(image) => preview::from_image(&image, limits).map(|p| (p, (image.width(), image.height()))),
            None => preview::make(&path, downloaded.format, limits),
        };
        match made {
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
    use crate::media::{AddressPolicy, OutputDir};

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
}
