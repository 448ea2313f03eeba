//! A call's jobs together (one, or `count` of them): their outcomes in order, the outputs of
//! those that succeeded collected at once within one result's inline budget, and what they come
//! to as a whole — one status, the jobs still going, the cost so far. The tools and the tasks
//! path render a [`Batch`]; none of this is MCP's.

use super::{Caller, JobOutcome, JobService, Run, RunError};
use crate::{
    journal::JobUpdate,
    media::{self, Collected, OutputUrls},
    runcomfy::{JobStatus, RequestId, ResultResponse},
};

/// A finished job's outputs to collect, for [`JobService::collect_all`].
#[derive(Debug, Clone, Copy)]
pub struct Outputs<'a> {
    pub id: &'a RequestId,
    pub urls: &'a OutputUrls,
}

/// The jobs of one call, in order.
#[derive(Debug)]
pub struct Batch {
    pub jobs: Vec<JobOutcome>,
}

impl Batch {
    /// The batch in one status: still going while any job is (queued while some are queued and
    /// none is running), else succeeded when any job succeeded, else cancelled when any was,
    /// else failed.
    pub fn status(&self) -> JobStatus {
        let any = |status: JobStatus| self.jobs.iter().any(|j| j.state().is(&status));
        if !self.finished() {
            if any(JobStatus::InQueue) && !any(JobStatus::InProgress) {
                JobStatus::InQueue
            } else {
                JobStatus::InProgress
            }
        } else if any(JobStatus::Succeeded) {
            JobStatus::Succeeded
        } else if any(JobStatus::Cancelled) {
            JobStatus::Cancelled
        } else {
            JobStatus::Failed
        }
    }

    /// True when no job's state will change any more.
    pub fn finished(&self) -> bool {
        self.jobs.iter().all(JobOutcome::finished)
    }

    /// The jobs that exist and go on: to come back for, never to submit again.
    pub fn still_going(&self) -> Vec<&RequestId> {
        self.jobs
            .iter()
            .filter(|j| !j.finished())
            .filter_map(JobOutcome::id)
            .collect()
    }

    /// Whether any job has made, or may still make, its outputs.
    pub fn made_or_making(&self) -> bool {
        self.jobs.iter().any(|j| j.state().is(&JobStatus::Succeeded)) || !self.still_going().is_empty()
    }

    /// Every job's id, in order (a submit that got none is left out).
    pub fn request_ids(&self) -> Vec<RequestId> {
        self.jobs.iter().filter_map(JobOutcome::id).cloned().collect()
    }

    /// What the jobs whose cost RunComfy reported cost together; `None` when none is known.
    pub fn cost_usd(&self) -> Option<f64> {
        let costs: Vec<f64> = self.jobs.iter().filter_map(JobOutcome::cost_usd).collect();
        (!costs.is_empty()).then(|| crate::money::round_usd(costs.iter().sum()))
    }
}

impl JobService {
    /// A call's runs as their outcomes, in order, with the outputs of every job that succeeded
    /// collected together (see [`JobService::collect_all`]).
    pub async fn outcomes(&self, caller: &Caller, runs: Vec<Result<Run, RunError>>, full_size: bool) -> Batch {
        self.outcomes_with(&self.media, caller, runs, full_size).await
    }

    /// A call's runs as their outcomes, in order, answered as soon as their output URLs are
    /// known: every output listed as [`JobService::outcomes`] lists it, but nothing downloaded,
    /// previewed or saved. Each image's preview is made in the background meanwhile, for the
    /// reads of the app view that shows them (see [`media::on_demand::prefetch_preview`]).
    /// Only for a server that saves nothing ([`JobService::saves_outputs`]).
    pub async fn outcomes_listed(&self, caller: &Caller, runs: Vec<Result<Run, RunError>>) -> Batch {
        // Nothing needs the bytes now: the listing only (no preview, no save) fetches none.
        let listing_only = media::MediaOptions {
            previews: false,
            output_dir: None,
            ..(*self.media).clone()
        };
        let batch = self.outcomes_with(&listing_only, caller, runs, false).await;
        if self.media.previews {
            let listed = batch.jobs.iter().filter_map(|job| match job {
                JobOutcome::Answered { media: Some(media), .. } => Some(&media.outputs),
                _ => None,
            });
            // As many as a full answer would have previewed (a hostile listing costs no more).
            let images = listed.flat_map(|outputs| {
                outputs
                    .iter()
                    .filter(|o| o.kind == media::OutputKind::Image)
                    .take(media::MAX_PROCESSED)
            });
            for output in images.filter(|o| o.not_a_link.is_none()) {
                media::on_demand::prefetch_preview(&self.downloader, &self.media, &output.url);
            }
        }
        batch
    }

    async fn outcomes_with(
        &self,
        options: &media::MediaOptions,
        caller: &Caller,
        runs: Vec<Result<Run, RunError>>,
        full_size: bool,
    ) -> Batch {
        let mut jobs: Vec<JobOutcome> = runs.into_iter().map(JobOutcome::of_run).collect();
        let found: Vec<(usize, RequestId, OutputUrls)> = jobs
            .iter()
            .enumerate()
            .filter_map(|(i, job)| job.to_collect().map(|(id, urls)| (i, id.clone(), urls)))
            .collect();
        for (_, id, urls) in &found {
            self.answered.keep(caller.owner(), id, &urls.images);
        }
        let outputs: Vec<Outputs<'_>> = found.iter().map(|(_, id, urls)| Outputs { id, urls }).collect();
        let collected = self.collect_with(options, caller, &outputs, full_size).await;
        for ((i, ..), media) in found.iter().zip(collected) {
            if let JobOutcome::Answered { media: slot, .. } = &mut jobs[*i] {
                *slot = Some(media);
            }
        }
        Batch { jobs }
    }

    /// Whether this server saves results' outputs (`--output-dir`): then an answer waits for
    /// the saves, and says where the files went.
    pub fn saves_outputs(&self) -> bool {
        self.media.output_dir.is_some()
    }

    /// RunComfy's result for job `id`, looked up, as its outcome: its outputs collected when it
    /// succeeded with any.
    pub async fn answered(
        &self,
        caller: &Caller,
        id: RequestId,
        result: ResultResponse,
        full_size: bool,
    ) -> JobOutcome {
        let mut job = JobOutcome::Answered {
            id,
            result,
            media: None,
        };
        if let Some((id, urls)) = job.to_collect().map(|(id, urls)| (id.clone(), urls)) {
            let collected = self.collect(caller, &id, &urls, full_size).await;
            if let JobOutcome::Answered { media, .. } = &mut job {
                *media = Some(collected);
            }
        }
        job
    }

    /// Downloads, saves and previews a succeeded job's outputs as the media options say (see
    /// [`media::collect`]), and records the saved files.
    pub async fn collect(&self, caller: &Caller, id: &RequestId, urls: &OutputUrls, full_size: bool) -> Collected {
        let jobs = [Outputs { id, urls }];
        self.collect_all(caller, &jobs, full_size)
            .await
            .pop()
            .unwrap_or_default()
    }

    /// [`JobService::collect`] for several jobs answered together (see [`media::collect_all`]):
    /// one [`Collected`] per job, in order, each image with its reference (`<request_id>#<n>`).
    pub async fn collect_all(&self, caller: &Caller, jobs: &[Outputs<'_>], full_size: bool) -> Vec<Collected> {
        self.collect_with(&self.media, caller, jobs, full_size).await
    }

    /// [`JobService::collect_all`] with these media options.
    async fn collect_with(
        &self,
        options: &media::MediaOptions,
        caller: &Caller,
        jobs: &[Outputs<'_>],
        full_size: bool,
    ) -> Vec<Collected> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let requests: Vec<media::Request<'_>> = jobs
            .iter()
            .map(|job| media::Request {
                name_stem: job.id.as_str(),
                urls: job.urls,
                full_size,
            })
            .collect();
        let mut all = media::collect_all(&self.downloader, options, &requests).await;
        for (job, collected) in jobs.iter().zip(&mut all) {
            for output in &mut collected.outputs {
                if output.kind == media::OutputKind::Image {
                    output.reference = Some(format!("{}#{}", job.id, output.index));
                }
            }
            let saved: Vec<String> = collected.outputs.iter().filter_map(|o| o.saved_path.clone()).collect();
            if !saved.is_empty() {
                // The journal keeps where the files went, so list_jobs can point at them later.
                self.journal
                    .record(caller.owner(), job.id, JobUpdate::saved(saved))
                    .await;
            }
        }
        all
    }
}
