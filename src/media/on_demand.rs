//! One output file, fetched when someone asks for it rather than when the job finished: the
//! bytes behind a result resource (the original or a preview) and the save a person chose in the
//! app view. Same bounds as [`super::collect`]: the address policy (the [`Downloader`]), the
//! download cap and timeout, the process-wide download slots and the one decode at a time.

use std::{
    collections::{HashMap, VecDeque},
    sync::{LazyLock, Mutex},
};

use futures::future::{BoxFuture, FutureExt, Shared};
use tempfile::NamedTempFile;

use super::{
    download::{self, Downloaded, Downloader, Limits},
    preview::{self, PreviewLimits},
    save, MediaOptions, DECODES, PROCESS_DOWNLOADS,
};

/// Which form of an output to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// The file as RunComfy made it, if it is at most this many bytes.
    Original { max_bytes: u64 },
    /// Scaled down and re-encoded as JPEG, within the server's preview limits.
    Preview,
}

/// An output's bytes.
#[derive(Debug, Clone)]
pub struct File {
    pub mime_type: String,
    pub data: Vec<u8>,
}

/// Previews made lately, by URL, newest last: a view shows the same image in a job's card and in
/// the gallery, and a host may read it again on every render, while making a preview decodes
/// the whole image. At most [`CACHED_PREVIEWS`] of at most the preview cap each (150 KiB by
/// default: under 5 MB in all).
static PREVIEWS: Mutex<VecDeque<(String, File)>> = Mutex::new(VecDeque::new());
const CACHED_PREVIEWS: usize = 32;

fn cached_preview(url: &str) -> Option<File> {
    let previews = PREVIEWS.lock().unwrap_or_else(|p| p.into_inner());
    previews.iter().find(|(u, _)| u == url).map(|(_, f)| f.clone())
}

fn keep_preview(url: &str, file: &File) {
    let mut previews = PREVIEWS.lock().unwrap_or_else(|p| p.into_inner());
    previews.retain(|(u, _)| u != url);
    if previews.len() == CACHED_PREVIEWS {
        previews.pop_front();
    }
    previews.push_back((url.to_owned(), file.clone()));
}

/// A fetch under way, which any number of readers await.
type Pending = Shared<BoxFuture<'static, Result<File, String>>>;

/// Fetches under way, by URL and form: a read that comes while the same file is being fetched
/// (a result's previews made ahead for the app view, or another read) waits for that fetch
/// instead of downloading the file again. Each runs in a task of its own, to its end whoever
/// still waits, and leaves this map when done (a preview after it went into the cache).
static IN_FLIGHT: LazyLock<Mutex<HashMap<(String, Form), Pending>>> = LazyLock::new(Mutex::default);

/// Downloads `url` and returns it in `form`, or joins the fetch of it already under way. `Err`
/// says what went wrong, for the person.
pub async fn fetch(downloader: &Downloader, options: &MediaOptions, url: &str, form: Form) -> Result<File, String> {
    if form == Form::Preview {
        if let Some(file) = cached_preview(url) {
            return Ok(file);
        }
    }
    start(downloader, options, url, form).await
}

/// Makes the preview of `url` now, in the background, so that a read of it soon (the app
/// view's) finds it made or joins its making.
pub fn prefetch_preview(downloader: &Downloader, options: &MediaOptions, url: &str) {
    if cached_preview(url).is_none() {
        drop(start(downloader, options, url, Form::Preview));
    }
}

/// The fetch of `url` in `form` under way, started if there is none.
fn start(downloader: &Downloader, options: &MediaOptions, url: &str, form: Form) -> Pending {
    let key = (url.to_owned(), form);
    let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pending) = in_flight.get(&key) {
        return pending.clone();
    }
    let (downloader, options, done) = (downloader.clone(), options.clone(), key.clone());
    let pending = async move {
        let fetched = fetch_now(&downloader, &options, &done.0, done.1).await;
        IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()).remove(&done);
        fetched
    }
    .boxed()
    .shared();
    in_flight.insert(key, pending.clone());
    tokio::spawn(pending.clone());
    pending
}

async fn fetch_now(downloader: &Downloader, options: &MediaOptions, url: &str, form: Form) -> Result<File, String> {
    let max_bytes = match form {
        Form::Original { max_bytes } => max_bytes.min(options.download_max_bytes),
        Form::Preview => options.download_max_bytes,
    };
    let spool = NamedTempFile::new().map_err(|e| format!("cannot create a temporary file: {e}"))?;
    let downloaded = bounded_download(downloader, options, url, max_bytes, spool).await?;
    match form {
        Form::Original { .. } => {
            let mime_type = downloaded.mime_type().to_owned();
            let data = tokio::fs::read(downloaded.file.path())
                .await
                .map_err(|e| format!("cannot read the downloaded file: {e}"))?;
            Ok(File { mime_type, data })
        }
        Form::Preview => {
            let limits = PreviewLimits {
                max_side: options.preview_max_side,
                max_bytes: options.preview_max_bytes,
            };
            let _slot = DECODES.acquire().await;
            let made = tokio::task::spawn_blocking(move || {
                preview::make(downloaded.file.path(), downloaded.format, limits).map(|(p, _)| p)
            })
            .await
            .map_err(|e| format!("the preview could not be made: {e}"))??;
            let file = File {
                mime_type: preview::Preview::MIME_TYPE.to_owned(),
                data: made.jpeg,
            };
            keep_preview(url, &file);
            Ok(file)
        }
    }
}

/// Downloads `url` into the output directory as `{stem}-{index}.{ext}`; the saved path.
pub async fn save(
    downloader: &Downloader,
    options: &MediaOptions,
    url: &str,
    stem: &str,
    index: usize,
) -> Result<std::path::PathBuf, String> {
    let Some(dir) = &options.output_dir else {
        return Err(
            "this server saves no images: start it with --output-dir DIR (or RUNCOMFY_OUTPUT_DIR) to save them"
                .to_owned(),
        );
    };
    let spool = dir
        .spool()
        .map_err(|e| format!("cannot write in {}: {e}", dir.path().display()))?;
    let downloaded = bounded_download(downloader, options, url, options.download_max_bytes, spool).await?;
    let name = save::file_name(stem, index, downloaded.extension());
    let dir = dir.clone();
    tokio::task::spawn_blocking(move || dir.persist(downloaded.file, &name))
        .await
        .map_err(|e| format!("the file could not be saved: {e}"))?
        .map_err(|e| format!("the file could not be saved: {e}"))
}

async fn bounded_download(
    downloader: &Downloader,
    options: &MediaOptions,
    url: &str,
    max_bytes: u64,
    spool: NamedTempFile,
) -> Result<Downloaded, String> {
    let _slot = PROCESS_DOWNLOADS.acquire().await;
    let limits = Limits {
        max_bytes,
        timeout: options.download_timeout,
    };
    download::download(downloader, url, limits, spool, Default::default())
        .await
        .map_err(|e| format!("the image could not be downloaded: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_cache_keeps_the_latest_and_drops_the_oldest() {
        let file = |n: u8| File {
            mime_type: "image/jpeg".to_owned(),
            data: vec![n],
        };
        let url = |n: usize| format!("https://cache.test/{n}.png");
        for n in 0..=CACHED_PREVIEWS {
            keep_preview(&url(n), &file(n as u8));
        }
        assert!(cached_preview(&url(0)).is_none(), "the oldest went");
        assert_eq!(cached_preview(&url(1)).unwrap().data, [1]);
        assert_eq!(
            cached_preview(&url(CACHED_PREVIEWS)).unwrap().data,
            [CACHED_PREVIEWS as u8]
        );
        assert!(PREVIEWS.lock().unwrap().len() <= CACHED_PREVIEWS);
    }
}
