//! Images a person hands over: one uploaded from the app view, kept for their later edits
//! (`upload:<id>` in `images`, resolved in [`super::prepare`] like any reference), and a file
//! ChatGPT passes a tool. Nothing is sent to RunComfy and nothing is paid for here.

use super::{Caller, JobService};
use crate::media::{
    download::{download, Downloader, Limits},
    host_files::HostFile,
    inputs::{self, Resolved},
    uploads::Kept,
};

/// What was kept: its reference, and the image as it will be sent.
#[derive(Debug, Clone)]
pub struct Upload {
    pub kept: Kept,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

impl JobService {
    /// Checks `data_uri` as a reference image is checked (an image, within the size cap),
    /// re-encodes it as RunComfy will be sent it, and keeps it for `caller`.
    pub async fn keep_upload(&self, caller: &Caller, data_uri: &str) -> Result<Upload, String> {
        let (png, width, height) = inputs::upload_png(&self.media.inputs, data_uri).await?;
        let bytes = png.len() as u64;
        let kept = self.media.uploads.keep(caller.owner(), png).await?;
        Ok(Upload {
            kept,
            width,
            height,
            bytes,
        })
    }

    /// The PNG of `caller`'s upload `id`, for the view's before-and-after.
    pub async fn upload(&self, caller: &Caller, id: &str) -> Result<Vec<u8>, String> {
        self.media.uploads.read(caller.owner(), id).await
    }
}

impl JobService {
    /// A file a host handed over (ChatGPT's file parameters): downloaded under its own policy
    /// (public https; bounded by the input size cap and the download timeout), re-encoded as any
    /// reference image, and kept as an upload so that a variation can use it again. Its URL,
    /// which lasts minutes, is kept nowhere.
    pub(super) async fn host_file(&self, caller: &Caller, file: &HostFile) -> Result<Resolved, String> {
        let failed = |why: String| {
            format!(
                "is {}, which could not be read: {why}. Attach it again (ChatGPT's link to it lasts only minutes), or give the image as an https:// URL",
                file.shown()
            )
        };
        let downloader = Downloader::new(self.media.host_file_policy.clone()).map_err(failed)?;
        let spool = tempfile::NamedTempFile::new().map_err(|e| failed(e.to_string()))?;
        let limits = Limits {
            max_bytes: self.media.inputs.max_bytes,
            timeout: self.media.download_timeout,
        };
        let got = download(&downloader, &file.download_url, limits, spool, Default::default())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let bytes = tokio::fs::read(got.file.path())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let (png, _, _) = inputs::png_of(bytes, got.format).await.map_err(failed)?;
        let given = match self.media.uploads.keep(caller.owner(), png.clone()).await {
            Ok(kept) => kept.reference,
            Err(_) => format!("({}; not kept)", file.shown()),
        };
        Ok(inputs::upload(&given, png))
    }
}
