//! A finished job's output images one at a time, on demand: what the result resources carry
//! (the original or a preview) and the save a person chose in the app view. The image is found
//! as an edit's reference is (`request_id#n`: the journal, else RunComfy's result).

use super::{prepare::OutputError, Caller, JobService};
use crate::{
    journal::JobUpdate,
    media::on_demand::{self, File, Form},
    runcomfy::RequestId,
};

impl JobService {
    /// Image `index` (from 1) of job `id`, in `form`. `Err` says why not, for the person.
    pub async fn output_file(&self, caller: &Caller, id: &RequestId, index: usize, form: Form) -> Result<File, String> {
        let url = self.output_url(caller, id, index).await?;
        on_demand::fetch(&self.downloader, &self.media, &url, form).await
    }

    /// Saves image `index` (from 1) of job `id` to the output directory, and records where.
    pub async fn save_output(&self, caller: &Caller, id: &RequestId, index: usize) -> Result<String, String> {
        let url = self.output_url(caller, id, index).await?;
        let path = on_demand::save(&self.downloader, &self.media, &url, id.as_str(), index).await?;
        let path = path.display().to_string();
        self.journal
            .record(caller.owner(), id, JobUpdate::saved(vec![path.clone()]))
            .await;
        Ok(path)
    }

    async fn output_url(&self, caller: &Caller, id: &RequestId, index: usize) -> Result<String, String> {
        if index == 0 {
            return Err(format!("images are numbered from 1: use {id}#1"));
        }
        self.job_output(caller, id, index).await.map_err(|e| match e {
            OutputError::Unusable(why) => why,
            OutputError::Lookup(e) => format!("looking up job {id} at RunComfy failed: {e} Try again in a moment."),
        })
    }
}
