//! Keeping an image a person uploads from the app view, for their later edits (`upload:<id>` in
//! `images`, resolved in [`super::prepare`] like any reference). Nothing is sent to RunComfy and
//! nothing is paid for here.

use super::{Caller, JobService};
use crate::media::{inputs, uploads::Kept};

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
