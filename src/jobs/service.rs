//! The job service: the one place that calls RunComfy for a job and records what it learns. Each
//! call goes upstream first and to the journal after, in that order, and the answer is returned
//! untouched; the journal never fails a call.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{follow::Follower, poll, Event, WaitOptions, WaitOutcome, WaitPolicy};
use crate::{
    dreamina::ImageRequest,
    journal::{JobQuery, JobRecord, JobUpdate, Journal, NewJob, SubmitOutcome},
    media::{self, Collected, MediaOptions},
    runcomfy::{ApiError, CancelResponse, Client, RequestId, ResultResponse, StatusResponse},
};

/// Cheap to clone: every clone shares the client (and its connection pool) and the journal.
#[derive(Debug, Clone)]
pub struct JobService {
    client: Arc<Client>,
    journal: Journal,
    policy: WaitPolicy,
    media: Arc<MediaOptions>,
}

/// A step of [`JobService::run`], for progress messages.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Submitted(&'a RequestId),
    Polled(&'a RequestId, &'a Event),
}

/// How a submitted job's run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// The job ended: RunComfy's result for it (succeeded, failed or cancelled).
    Done(ResultResponse),
    /// The wait ended first; the job goes on upstream. The last status seen, if any.
    StillRunning(Option<StatusResponse>),
    /// The caller cancelled; what RunComfy answered to cancelling the job.
    Cancelled(Result<CancelResponse, ApiError>),
}

#[derive(Debug)]
pub struct Run {
    pub id: RequestId,
    /// From just before the submit to the outcome.
    pub waited: Duration,
    pub outcome: RunOutcome,
}

#[derive(Debug)]
pub enum RunError {
    /// No job to follow: the submit failed (its fate may be unknown; see [`ApiError`]).
    Submit(ApiError),
    /// The job exists, but following it failed.
    Follow { id: RequestId, error: ApiError },
}

impl JobService {
    pub fn new(client: Arc<Client>, journal: Journal, policy: WaitPolicy, media: MediaOptions) -> Self {
        Self {
            client,
            journal,
            policy,
            media: Arc::new(media),
        }
    }

    pub fn policy(&self) -> &WaitPolicy {
        &self.policy
    }

    /// Submits a job, recording it before the body leaves and its outcome after. Never sent
    /// twice unless RunComfy provably did not take it (the client's retry policy).
    pub async fn submit(&self, request: &ImageRequest) -> Result<RequestId, ApiError> {
        let wire = request.to_wire();
        let job = NewJob {
            model: self.client.model().to_owned(),
            prompt: request.prompt.clone(),
            size: request.size.as_str().to_owned(),
            params: wire.clone(),
            submitted_at: Utc::now(),
        };
        let key = self.journal.begin_submit(job).await;
        let submitted = self.client.submit(&wire).await;
        if let Some(key) = key {
            let outcome = match &submitted {
                Ok(id) => SubmitOutcome::Accepted {
                    request_id: id.to_string(),
                },
                Err(e) if e.submit_fate_unknown() => SubmitOutcome::FateUnknown { error: e.to_string() },
                Err(e) => SubmitOutcome::Rejected { error: e.to_string() },
            };
            self.journal.finish_submit(key, outcome).await;
        }
        submitted
    }

    pub async fn status(&self, id: &RequestId) -> Result<StatusResponse, ApiError> {
        let answer = self.client.status(id).await?;
        self.journal.record(id, JobUpdate::from_status(&answer)).await;
        Ok(answer)
    }

    pub async fn result(&self, id: &RequestId) -> Result<ResultResponse, ApiError> {
        let answer = self.client.result(id).await?;
        self.journal.record(id, JobUpdate::from_result(&answer)).await;
        Ok(answer)
    }

    pub async fn cancel(&self, id: &RequestId) -> Result<CancelResponse, ApiError> {
        let answer = self.client.cancel(id).await?;
        self.journal.record(id, JobUpdate::from_cancel(&answer)).await;
        Ok(answer)
    }

    /// Waits for a job up to `max_wait` (see [`poll::wait`]), recording every change of status
    /// and queue position it sees, and the cancel if the wait was cancelled.
    pub async fn wait(
        &self,
        id: &RequestId,
        max_wait: Duration,
        cancel: &CancellationToken,
        mut on_event: impl FnMut(&Event),
    ) -> Result<WaitOutcome, ApiError> {
        let follower = Follower::start(&self.journal, id);
        let options = WaitOptions::new(self.policy.backoff, max_wait);
        let outcome = poll::wait(self.client.as_ref(), id, &options, cancel, |event| {
            follower.saw(event);
            on_event(event);
        })
        .await;
        follower.finish().await;
        if let Ok(WaitOutcome::Cancelled { cancel: Ok(answer), .. }) = &outcome {
            self.journal.record(id, JobUpdate::from_cancel(answer)).await;
        }
        outcome
    }

    /// Submits a job and follows it for at most `max_wait` (the submit included), then fetches
    /// its result once it ended: the flow of the waiting tool, the tasks path and the CLI.
    /// The submit is never abandoned half-way, even if `cancel` fires meanwhile (its fate would be
    /// unknown): a cancellation is acted on right after, by cancelling the job.
    pub async fn run(
        &self,
        request: &ImageRequest,
        max_wait: Duration,
        cancel: &CancellationToken,
        mut on_step: impl FnMut(Duration, Step<'_>),
    ) -> Result<Run, RunError> {
        let started = Instant::now();
        let id = self.submit(request).await.map_err(RunError::Submit)?;
        on_step(started.elapsed(), Step::Submitted(&id));
        let waited = self
            .wait(&id, max_wait.saturating_sub(started.elapsed()), cancel, |event| {
                on_step(started.elapsed(), Step::Polled(&id, event))
            })
            .await;
        let outcome = match waited {
            Ok(WaitOutcome::Finished(_)) => self.result(&id).await.map(RunOutcome::Done),
            Ok(WaitOutcome::DeadlinePassed { last }) => Ok(RunOutcome::StillRunning(last)),
            Ok(WaitOutcome::Cancelled { cancel, .. }) => Ok(RunOutcome::Cancelled(cancel)),
            Err(error) => Err(error),
        };
        match outcome {
            Ok(outcome) => Ok(Run {
                id,
                waited: started.elapsed(),
                outcome,
            }),
            Err(error) => Err(RunError::Follow { id, error }),
        }
    }

    /// Downloads, saves and previews a succeeded job's outputs as the media options say (see
    /// [`media::collect`]), and records the saved files.
    pub async fn collect(&self, id: &RequestId, images: &[String], videos: &[String], full_size: bool) -> Collected {
        let request = media::Request {
            name_stem: id.as_str(),
            images,
            videos,
            full_size,
        };
        let collected = media::collect(self.client.http(), &self.media, request).await;
        let saved: Vec<String> = collected.outputs.iter().filter_map(|o| o.saved_path.clone()).collect();
        if !saved.is_empty() {
            // The journal keeps where the files went, so list_jobs can point at them later.
            self.journal.record(id, JobUpdate::saved(saved)).await;
        }
        collected
    }

    /// Jobs recorded on this machine, newest first. `Err` says why there is nothing to list.
    pub async fn list(&self, query: JobQuery) -> Result<Vec<JobRecord>, String> {
        self.journal.list(query).await
    }
}
