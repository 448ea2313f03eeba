//! The job service: the one place that calls RunComfy for a job and records what it learns. Each
//! call goes upstream first and to the journal after, in that order, and the answer is returned
//! untouched; the journal never fails a call. A request is first [`prepared`](super::prepare)
//! (its reference images resolved), then submitted once, or several times for a batch.
//!
//! Every call is made for a [`Caller`]: their key goes upstream, the journal is read and written
//! as their owner, and, for a caller with their own key, a request id the journal does not hold
//! as theirs is not found, before anything is sent (see [`JobService::owned`]).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    answered::Answered,
    caller::{Caller, CallerClient},
    follow::Follower,
    history::Histories,
    limits::{refusal_text, unknown_price_text},
    poll,
    price::{CostEstimate, Prices},
    Event, Pacer, Prepared, WaitOptions, WaitOutcome, WaitPolicy,
};
use crate::{
    dreamina::{Models, EDIT_MODEL},
    journal::{Gate, JobQuery, JobRecord, JobUpdate, Journal, Limits, NewJob, SpendTotals, SubmitOutcome},
    media::{Downloader, MediaOptions},
    runcomfy::{
        ApiError, Balance, BalanceReader, CancelResponse, Catalogue, Client, RequestId, ResultResponse, StatusResponse,
    },
};

/// The most jobs one call may start at once ("give me four options").
pub const MAX_COUNT: u32 = 8;

/// Cheap to clone: every clone shares the client (and its connection pool) and the journal.
#[derive(Debug, Clone)]
pub struct JobService {
    client: Arc<Client>,
    /// Result files: its own client, bound to where results may live.
    pub(super) downloader: Downloader,
    pub(super) journal: Journal,
    policy: WaitPolicy,
    pub(super) media: Arc<MediaOptions>,
    /// The model ids a request goes to, by endpoint.
    pub(super) models: Arc<Models>,
    limits: Limits,
    prices: Arc<Prices>,
    /// RunComfy's models, for the catalogue tools and any model's input.
    catalogue: Arc<Catalogue>,
    /// Every wait's polls together, held to the policy's rate.
    pacer: Arc<Pacer>,
    /// Past run lengths per model, for where to poll.
    histories: Arc<Histories>,
    /// The images of jobs just answered for, for the view's reads that follow.
    pub(super) answered: Arc<Answered>,
    /// The account balance shown beside spending and estimates; `None`: not read.
    balance: Option<Arc<BalanceReader>>,
}

/// Why a submit did not happen, or failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// RunComfy's answer, or the lack of one. When the submit's fate is unknown, the text says
    /// so and what to do, never "try again".
    #[error("{}", submit_failure(.0))]
    Api(#[from] ApiError),
    /// A spend or rate limit refused it, or could not be checked: nothing was sent. The text
    /// says which limit, what was spent, and when the next job fits.
    #[error("{0}")]
    Limit(String),
}

impl SubmitError {
    /// True when a job may exist and be charged although the submit failed.
    pub fn submit_fate_unknown(&self) -> bool {
        matches!(self, Self::Api(e) if e.submit_fate_unknown())
    }
}

/// What a person or a model must do after a submit whose fate is unknown: look before paying
/// again (RunComfy's own clients say the same: "check RunComfy Generations before submitting
/// again").
const FATE_UNKNOWN_ADVICE: &str = "The fate of this submit is unknown: the request may have reached RunComfy, so a job may exist and be charged. It was NOT sent again, and it counts against the spending limit at its estimate. Before submitting the same request again, call list_jobs (this submit is listed with status unknown) and look at RunComfy's Generations page (https://www.runcomfy.com, Generations); submit again only if no such job is there.";

fn submit_failure(e: &ApiError) -> String {
    if e.submit_fate_unknown() {
        format!("{}. {FATE_UNKNOWN_ADVICE}", e.submit_failure_text())
    } else {
        e.to_string()
    }
}

/// What the wait needs to know of a job to poll where it is likely to finish.
#[derive(Debug, Clone, Copy)]
struct JobTiming<'a> {
    model: &'a str,
    size: &'a str,
    /// How long ago it was submitted, when the wait begins.
    submitted_ago: Duration,
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
    /// No job to follow: the submit was refused or failed (its fate may be unknown; see
    /// [`ApiError`]).
    Submit(SubmitError),
    /// The job exists, but following it failed.
    Follow { id: RequestId, error: ApiError },
}

impl JobService {
    /// Text-to-image goes to the client's model, edits to RunComfy's edit endpoint, unless
    /// [`JobService::with_models`] says otherwise.
    pub fn new(
        client: Arc<Client>,
        downloader: Downloader,
        journal: Journal,
        policy: WaitPolicy,
        media: MediaOptions,
    ) -> Self {
        let models = Models {
            text_to_image: client.model().to_owned(),
            edit: EDIT_MODEL.to_owned(),
        };
        Self {
            catalogue: Arc::new(Catalogue::new(Arc::clone(&client), None)),
            client,
            downloader,
            journal,
            policy,
            media: Arc::new(media),
            models: Arc::new(models),
            limits: Limits::default(),
            prices: Arc::default(),
            pacer: Arc::new(Pacer::per_second(policy.max_rate)),
            histories: Arc::default(),
            answered: Arc::default(),
            balance: None,
        }
    }

    /// Reads the account balance with `reader`, to show beside spending and estimates.
    pub fn with_balance(mut self, reader: Option<BalanceReader>) -> Self {
        self.balance = reader.map(Arc::new);
        self
    }

    /// `caller`'s RunComfy balance, if it can be read (briefly cached; never an error).
    pub async fn balance(&self, caller: &Caller) -> Option<Balance> {
        self.balance.as_ref()?.read(caller.key()).await
    }

    /// Keeps the model catalogue's copy in `path` too (read back when RunComfy is out of reach).
    pub fn with_catalogue_copy(mut self, path: std::path::PathBuf) -> Self {
        self.catalogue = Arc::new(Catalogue::new(Arc::clone(&self.client), Some(path)));
        self
    }

    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.catalogue
    }

    /// Checks every submit against `limits`, in the journal.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// What `count` jobs of `prepared` will cost, from the model's catalogue price (read once
    /// and cached); `Err` says why the price is not known.
    /// The caller's balance is read beside it, at the same time, for the estimate's text.
    pub async fn estimate(&self, caller: &Caller, prepared: &Prepared, count: u32) -> Result<CostEstimate, String> {
        let (estimate, balance) = tokio::join!(
            self.prices.estimate(&self.client, caller.key(), prepared, count),
            self.balance(caller)
        );
        estimate.map(|estimate| CostEstimate { balance, ..estimate })
    }

    /// `caller`'s spend today, over the last 7 days and over all recorded time, from the journal.
    pub async fn spend(&self, caller: &Caller) -> Result<SpendTotals, String> {
        self.journal.spend(caller.owner()).await
    }

    pub fn with_models(mut self, models: Models) -> Self {
        self.models = Arc::new(models);
        self
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn policy(&self) -> &WaitPolicy {
        &self.policy
    }

    /// Submits a job, recording it before the body leaves and its outcome after, unless a limit
    /// refuses it (then nothing is sent). Never sent twice unless RunComfy provably did not take
    /// it (the client's retry policy).
    pub async fn submit(&self, caller: &Caller, prepared: &Prepared) -> Result<RequestId, SubmitError> {
        let estimate = self.estimate(caller, prepared, 1).await;
        let limits = caller.limits().copied().unwrap_or(self.limits);
        if let (Some(limit), Err(reason)) = (limits.max_spend_usd_per_day, &estimate) {
            return Err(SubmitError::Limit(unknown_price_text(limit, reason)));
        }
        let job = NewJob {
            owner: caller.owner().clone(),
            model: prepared.model.clone(),
            prompt: prepared.prompt.clone(),
            size: prepared.size.clone(),
            params: prepared.params.clone(),
            submitted_at: Utc::now(),
            estimate_usd: estimate.ok().map(|e| e.max_usd),
        };
        let key = match self.journal.begin_submit(job, limits).await {
            Gate::Go(key) => key,
            Gate::Refused(refusal) => {
                let text = refusal_text(&refusal, Utc::now());
                tracing::info!("submit refused: {text}");
                return Err(SubmitError::Limit(format!(
                    "Not submitted. {text} Nothing was sent to RunComfy."
                )));
            }
            Gate::Unchecked(reason) => {
                return Err(SubmitError::Limit(format!(
                    "Not submitted: spending and job limits are set, but {reason}. Nothing was sent to RunComfy."
                )))
            }
        };
        let submitted = self
            .client
            .submit_to(caller.key(), &prepared.model, &prepared.wire)
            .await;
        if let Some(key) = key {
            let outcome = match &submitted {
                Ok(id) => SubmitOutcome::Accepted {
                    request_id: id.to_string(),
                },
                Err(e) if e.submit_fate_unknown() => SubmitOutcome::FateUnknown {
                    error: format!("{}: its fate is unknown, a job may exist", e.submit_failure_text()),
                },
                Err(e) => SubmitOutcome::Rejected { error: e.to_string() },
            };
            self.journal.finish_submit(key, outcome).await;
        }
        Ok(submitted?)
    }

    /// Submits `count` jobs of the same request at once: each one journaled, each one a separate
    /// paid job. Every submit runs to its end whatever the others do, so a failed one loses none
    /// of the others' request ids. The outcomes are in order.
    pub async fn submit_batch(
        &self,
        caller: &Caller,
        prepared: &Prepared,
        count: u32,
    ) -> Vec<Result<RequestId, SubmitError>> {
        futures::future::join_all((0..count).map(|_| self.submit(caller, prepared))).await
    }

    /// For a caller with their own key: `Ok` with the journal's row when the job is theirs, and
    /// RunComfy's "no such request" when it is not, whether it is another person's or nobody's
    /// (one answer for both, so that request ids cannot be probed), with nothing sent upstream.
    /// The server's own caller may follow any job its key can reach (`Ok(None)`, no lookup).
    pub(super) async fn owned(&self, caller: &Caller, id: &RequestId) -> Result<Option<JobRecord>, ApiError> {
        if !caller.is_keyed() {
            return Ok(None);
        }
        match self.journal.get(caller.owner(), id).await {
            Some(job) => Ok(Some(job)),
            None => Err(ApiError::NotFound {
                message: "no job with this request_id was submitted through this server with your RunComfy key"
                    .to_owned(),
            }),
        }
    }

    pub async fn status(&self, caller: &Caller, id: &RequestId) -> Result<StatusResponse, ApiError> {
        self.owned(caller, id).await?;
        let answer = self.client.status(caller.key(), id).await?;
        self.journal
            .record(caller.owner(), id, JobUpdate::from_status(&answer))
            .await;
        Ok(answer)
    }

    pub async fn result(&self, caller: &Caller, id: &RequestId) -> Result<ResultResponse, ApiError> {
        self.owned(caller, id).await?;
        let answer = self.client.result(caller.key(), id).await?;
        self.journal
            .record(caller.owner(), id, JobUpdate::from_result(&answer))
            .await;
        Ok(answer)
    }

    pub async fn cancel(&self, caller: &Caller, id: &RequestId) -> Result<CancelResponse, ApiError> {
        self.owned(caller, id).await?;
        let answer = self.client.cancel(caller.key(), id).await?;
        self.journal
            .record(caller.owner(), id, JobUpdate::from_cancel(&answer))
            .await;
        Ok(answer)
    }

    /// Waits for a job up to `max_wait` (see [`poll::wait`]), recording every change of status
    /// and queue position it sees, and the cancel if the wait was cancelled.
    pub async fn wait(
        &self,
        caller: &Caller,
        id: &RequestId,
        max_wait: Duration,
        cancel: &CancellationToken,
        on_event: impl FnMut(&Event),
    ) -> Result<WaitOutcome, ApiError> {
        let job = match self.owned(caller, id).await? {
            Some(job) => Some(job),
            None => self.journal.get(caller.owner(), id).await,
        };
        let known = job.as_ref().map(|job| JobTiming {
            model: &job.model,
            size: &job.size,
            submitted_ago: (Utc::now() - job.submitted_at).to_std().unwrap_or_default(),
        });
        self.wait_known(caller, id, max_wait, cancel, on_event, known).await
    }

    /// [`JobService::wait`] for a job whose model and submit time are known: its model's
    /// history (in the journal) says where to poll densely.
    async fn wait_known(
        &self,
        caller: &Caller,
        id: &RequestId,
        max_wait: Duration,
        cancel: &CancellationToken,
        mut on_event: impl FnMut(&Event),
        job: Option<JobTiming<'_>>,
    ) -> Result<WaitOutcome, ApiError> {
        let follower = Follower::start(&self.journal, caller.owner(), id);
        let mut options = WaitOptions::new(self.policy.backoff, max_wait);
        options.dense = self.policy.dense;
        options.pacer = Some(Arc::clone(&self.pacer));
        if let Some(job) = job {
            options.history = self.histories.get(&self.journal, job.model, job.size).await;
            options.submitted_ago = job.submitted_ago;
        }
        let upstream = CallerClient::new(&self.client, caller);
        let outcome = poll::wait(&upstream, id, &options, cancel, |event| {
            follower.saw(event);
            on_event(event);
        })
        .await;
        follower.finish().await;
        if let Ok(WaitOutcome::Cancelled { cancel: Ok(answer), .. }) = &outcome {
            self.journal
                .record(caller.owner(), id, JobUpdate::from_cancel(answer))
                .await;
        }
        outcome
    }

    /// Submits a job and follows it for at most `max_wait` (the submit included), then fetches
    /// its result once it ended: the flow of the waiting tool, the tasks path and the CLI.
    /// The submit is never abandoned half-way, even if `cancel` fires meanwhile (its fate would be
    /// unknown): a cancellation is acted on right after, by cancelling the job.
    pub async fn run(
        &self,
        caller: &Caller,
        prepared: &Prepared,
        max_wait: Duration,
        cancel: &CancellationToken,
        mut on_step: impl FnMut(Duration, Step<'_>),
    ) -> Result<Run, RunError> {
        let started = Instant::now();
        let id = self.submit(caller, prepared).await.map_err(RunError::Submit)?;
        on_step(started.elapsed(), Step::Submitted(&id));
        let job = JobTiming {
            model: &prepared.model,
            size: &prepared.size,
            submitted_ago: started.elapsed(),
        };
        let waited = self
            .wait_known(
                caller,
                &id,
                max_wait.saturating_sub(started.elapsed()),
                cancel,
                |event| on_step(started.elapsed(), Step::Polled(&id, event)),
                Some(job),
            )
            .await;
        let outcome = match waited {
            // The poll that saw the end was a result poll: its answer is the result.
            Ok(WaitOutcome::Finished {
                result: Some(result), ..
            }) => {
                self.journal
                    .record(caller.owner(), &id, JobUpdate::from_result(&result))
                    .await;
                Ok(RunOutcome::Done(*result))
            }
            Ok(WaitOutcome::Finished { result: None, .. }) => self.result(caller, &id).await.map(RunOutcome::Done),
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

    /// [`JobService::run`] for `count` jobs of the same request at once, with one deadline and
    /// one cancellation for all: at the deadline each job still going is handed back, and a
    /// cancellation cancels each one still queued. `on_step` hears every job's steps, with the
    /// job's place in the batch (from 0). The runs are in order.
    pub async fn run_batch(
        &self,
        caller: &Caller,
        prepared: &Prepared,
        count: u32,
        max_wait: Duration,
        cancel: &CancellationToken,
        on_step: impl FnMut(usize, Duration, Step<'_>) + Send,
    ) -> Vec<Result<Run, RunError>> {
        // The jobs run side by side in this one task; the lock only orders their callbacks.
        let on_step = std::sync::Mutex::new(on_step);
        let runs = (0..count as usize).map(|i| {
            let on_step = &on_step;
            self.run(caller, prepared, max_wait, cancel, move |elapsed, step| {
                (on_step.lock().unwrap_or_else(|p| p.into_inner()))(i, elapsed, step)
            })
        });
        futures::future::join_all(runs).await
    }

    /// `caller`'s jobs recorded in the journal, newest first (the query's owner is set to
    /// theirs). `Err` says why there is nothing to list.
    pub async fn list(&self, caller: &Caller, mut query: JobQuery) -> Result<Vec<JobRecord>, String> {
        query.owner = caller.owner().clone();
        self.journal.list(query).await
    }
}
