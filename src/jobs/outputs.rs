//! A finished job's output images one at a time, on demand: what the result resources carry
//! (the original or a preview) and the save a person chose in the app view. The image is found
//! as an edit's reference is (`request_id#n`: RunComfy's result, asked afresh; a saved copy when
//! RunComfy no longer has the job), or is the URL an answer of this process listed moments ago.

use std::path::PathBuf;

use super::{Caller, JobService};
use crate::{
    journal::JobUpdate,
    media::{
        on_demand::{self, File, Form},
        save, OutputUrls,
    },
    runcomfy::{ApiError, JobStatus, RequestId},
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
        // The view reads what an answer just listed: its URL, without asking RunComfy again.
        let image = match self.answered.images(caller.owner(), id) {
            Some(images) => pick(id, &images, index).map(JobImage::Url),
            None => self.job_output(caller, id, index).await,
        };
        let image = image.map_err(|e| match e {
            OutputError::Unusable(why) => why,
            OutputError::Lookup(e) => format!("looking up job {id} at RunComfy failed: {e} Try again in a moment."),
        })?;
        match image {
            JobImage::Url(url) => Ok(url),
            JobImage::Saved(path) => Err(format!(
                "RunComfy no longer has job {id}; its image is saved on this machine at {}",
                path.display()
            )),
        }
    }
}

/// Where an earlier job's image is to be had.
pub(super) enum JobImage {
    /// The URL RunComfy gave for it just now.
    Url(String),
    /// RunComfy no longer has the job; this is the copy saved on this machine.
    Saved(PathBuf),
}

/// Why an earlier job's output cannot be used.
pub(super) enum OutputError {
    Unusable(String),
    Lookup(ApiError),
}

impl JobService {
    /// Image `index` (from 1) of `caller`'s job `id`. Its URL is asked of RunComfy every time,
    /// not reused from the journal: RunComfy publishes no lifetime for result URLs, and a signed
    /// URL may have expired since. When RunComfy no longer has the job (404001), the copy saved on
    /// this machine serves, if there is one; when it cannot be reached, the journal's URL is the
    /// best there is. Another person's job is "no job", as an unknown one.
    pub(super) async fn job_output(
        &self,
        caller: &Caller,
        id: &RequestId,
        index: usize,
    ) -> Result<JobImage, OutputError> {
        let answer = match self.result(caller, id).await {
            Ok(answer) => answer,
            Err(ApiError::NotFound { .. }) => return self.saved_copy(caller, id, index).await,
            Err(e) => {
                let journaled = self
                    .journal
                    .get(caller.owner(), id)
                    .await
                    .filter(|j| !j.images.is_empty());
                return match journaled {
                    Some(job) => pick(id, &job.images, index).map(JobImage::Url),
                    None => Err(OutputError::Lookup(e)),
                };
            }
        };
        let images = answer
            .output
            .as_deref()
            .map(|o| OutputUrls::of(o).images)
            .unwrap_or_default();
        match answer.status {
            JobStatus::Succeeded => pick(id, &images, index).map(JobImage::Url),
            JobStatus::Failed | JobStatus::Cancelled => Err(OutputError::Unusable(format!(
                "job {id} {} and made no image to use",
                answer.status
            ))),
            status => Err(OutputError::Unusable(format!(
                "job {id} is still {status}: wait until it has succeeded (get_result says so), then pass it again"
            ))),
        }
    }

    /// The saved copy of image `index` of a job RunComfy no longer has, or why there is none.
    async fn saved_copy(&self, caller: &Caller, id: &RequestId, index: usize) -> Result<JobImage, OutputError> {
        let Some(job) = self.journal.get(caller.owner(), id).await else {
            return Err(OutputError::Unusable(format!(
                "there is no job {id} at RunComfy (or it has expired): give the request_id of a job that succeeded (list_jobs lists them)"
            )));
        };
        // Saved images are named `<request_id>-<n>.<ext>` (media::save::file_name).
        let prefix = save::file_name(id.as_str(), index, "x");
        let prefix = prefix.trim_end_matches('x');
        let saved = job.saved_paths.iter().map(PathBuf::from).find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
                && path.is_file()
        });
        saved.map(JobImage::Saved).ok_or_else(|| {
            OutputError::Unusable(format!(
                "RunComfy no longer has job {id} (its results are kept for a limited time), and no copy of {id}#{index} was saved on this machine: give the image as a file or an https:// URL instead"
            ))
        })
    }
}

fn pick(id: &RequestId, images: &[String], index: usize) -> Result<String, OutputError> {
    match images.get(index - 1) {
        Some(url) => Ok(url.clone()),
        None if images.is_empty() => Err(OutputError::Unusable(format!("job {id} has no images"))),
        None => Err(OutputError::Unusable(format!(
            "job {id} has {} image(s), so there is no {id}#{index}; use {id}#1{}",
            images.len(),
            if images.len() > 1 {
                format!(" to {id}#{}", images.len())
            } else {
                String::new()
            }
        ))),
    }
}
