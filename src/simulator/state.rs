//! Jobs and their time-based state machine.
//!
//! A job never runs anything: its phase is a pure function of the instant it was submitted, the
//! timings captured at submit, and whether it was cancelled. Computing the phase lazily on every
//! request keeps a thousand concurrent jobs as cheap as a thousand small structs — no task, no
//! timer per job — and makes a config change apply only to jobs submitted afterwards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::input::Reference;
use super::SimConfig;

/// Where a job is in its life at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting; `position` is at least 1.
    InQueue {
        position: u32,
    },
    InProgress,
    /// Finished successfully at the given wall-clock time.
    Completed {
        finished_at: SystemTime,
    },
    Cancelled,
}

impl Phase {
    /// The status string of the `/status` endpoint.
    pub(crate) fn status_str(&self) -> &'static str {
        match self {
            Phase::InQueue { .. } => "in_queue",
            Phase::InProgress => "in_progress",
            Phase::Completed { .. } => "completed",
            Phase::Cancelled => "cancelled",
        }
    }
}

/// What a job's outputs are: each kind has its own file type and result field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    /// `images` PNGs of `width`×`height`.
    Image,
    /// One MP4.
    Video,
    /// One WAV of this many milliseconds.
    Audio { millis: u32 },
}

impl Media {
    /// The extension of its files' names under `/files/{id}/`.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Media::Image => "png",
            Media::Video => "mp4",
            Media::Audio { .. } => "wav",
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Media::Image => "image/png",
            Media::Video => "video/mp4",
            Media::Audio { .. } => "audio/wav",
        }
    }
}

/// One submitted job, with everything needed to answer about it later.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// The catalogue id it was submitted to.
    pub(crate) model: Arc<str>,
    pub(crate) media: Media,
    /// The JSON body exactly as submitted (for `/__sim/jobs/{id}`); shared, as it may hold
    /// megabytes of data URIs.
    pub(crate) request: Arc<Value>,
    /// An edit's reference images, in order; empty for text-to-image.
    pub(crate) references: Arc<[Reference]>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// How many outputs it makes (images, or 1 video or audio file).
    pub(crate) images: u32,
    /// What the job costs (charged at submit, refunded if cancelled), in US dollars.
    pub(crate) cost_usd: f64,
    pub(crate) created_at: SystemTime,
    submitted: Instant,
    initial_queue_position: u32,
    queue_step: Duration,
    run: Duration,
    cancelled: bool,
    pub(crate) status_calls: u64,
}

impl Job {
    /// An image job, priced per image from `config`. Captures the timings of `config` so later
    /// config changes leave this job alone.
    pub(crate) fn new(
        model: &str,
        request: Value,
        references: Vec<Reference>,
        (width, height): (u32, u32),
        images: u32,
        config: &SimConfig,
    ) -> Job {
        Job {
            model: model.into(),
            media: Media::Image,
            request: Arc::new(request),
            references: references.into(),
            width,
            height,
            images,
            cost_usd: config.price_usd_per_image * f64::from(images),
            created_at: SystemTime::now(),
            submitted: Instant::now(),
            initial_queue_position: config.initial_queue_position,
            queue_step: Duration::from_millis(config.queue_step_ms),
            run: Duration::from_millis(config.run_ms),
            cancelled: false,
            status_calls: 0,
        }
    }

    /// The same job making `media` instead, at another price (a catalogue model's).
    pub(crate) fn making(self, media: Media, cost_usd: f64) -> Job {
        Job {
            media,
            cost_usd,
            ..self
        }
    }

    /// Which output `file` (`{n}.{extension}`) is, if it is one of this job's and the job has
    /// succeeded: outputs exist only then.
    pub(crate) fn output_index(&self, file: &str) -> Option<u32> {
        let (n, extension) = file.split_once('.')?;
        let n: u32 = n.parse().ok()?;
        let done = matches!(self.phase(), Phase::Completed { .. });
        (extension == self.media.extension() && n < self.images && done).then_some(n)
    }

    /// The phase at `now`: queue positions fall by one per `queue_step`; the queue ends when the
    /// position would reach 0, then the job runs for `run`, then it is completed.
    pub(crate) fn phase_at(&self, now: Instant) -> Phase {
        if self.cancelled {
            return Phase::Cancelled;
        }
        let elapsed = now.saturating_duration_since(self.submitted);
        let queue_total = self.queue_step * self.initial_queue_position;
        if elapsed < queue_total {
            // queue_step > 0 here, since queue_total > elapsed >= 0.
            let steps = (elapsed.as_nanos() / self.queue_step.as_nanos()) as u32;
            return Phase::InQueue {
                position: self.initial_queue_position - steps,
            };
        }
        if elapsed < queue_total + self.run {
            return Phase::InProgress;
        }
        Phase::Completed {
            finished_at: self.created_at + queue_total + self.run,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase_at(Instant::now())
    }
}

/// The outcome of a cancel request on an existing job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelOutcome {
    Cancelled,
    /// Not cancellable; carries the phase the job is in.
    NotCancellable(Phase),
}

/// All jobs, keyed by request id. A std mutex: every critical section is a map lookup.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    map: Mutex<HashMap<String, Job>>,
}

impl Jobs {
    pub(crate) fn insert(&self, id: String, job: Job) {
        self.lock().insert(id, job);
    }

    /// A snapshot of the job, if it exists.
    pub(crate) fn get(&self, id: &str) -> Option<Job> {
        self.lock().get(id).cloned()
    }

    /// Every job's id and status string, oldest first (for the control API).
    pub(crate) fn list(&self) -> Vec<(String, &'static str)> {
        let map = self.lock();
        let mut jobs: Vec<(&String, &Job)> = map.iter().collect();
        jobs.sort_by_key(|(_, job)| job.submitted);
        jobs.into_iter()
            .map(|(id, job)| (id.clone(), job.phase().status_str()))
            .collect()
    }

    /// Counts a status call on the job and returns its phase, if the job exists.
    pub(crate) fn status(&self, id: &str) -> Option<Phase> {
        let mut map = self.lock();
        let job = map.get_mut(id)?;
        job.status_calls += 1;
        Some(job.phase())
    }

    /// Cancels the job if it is still queued; only queued jobs can be cancelled upstream.
    pub(crate) fn cancel(&self, id: &str) -> Option<CancelOutcome> {
        let mut map = self.lock();
        let job = map.get_mut(id)?;
        match job.phase() {
            Phase::InQueue { .. } => {
                job.cancelled = true;
                Some(CancelOutcome::Cancelled)
            }
            other => Some(CancelOutcome::NotCancellable(other)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        // A panic while holding this lock cannot leave a map half-updated: recover it.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(queue: u32, step_ms: u64, run_ms: u64) -> Job {
        let config = SimConfig {
            initial_queue_position: queue,
            queue_step_ms: step_ms,
            run_ms,
            ..SimConfig::default()
        };
        Job::new("m", Value::Null, Vec::new(), (1024, 1024), 1, &config)
    }

    #[test]
    fn outputs_are_named_by_their_kind_and_exist_once_done() {
        let running = job(0, 0, 60_000);
        assert_eq!(running.output_index("0.png"), None, "not yet");
        let done = job(0, 0, 0);
        assert_eq!(done.output_index("0.png"), Some(0));
        assert_eq!(done.output_index("1.png"), None, "only one image");
        assert_eq!(done.output_index("0.mp4"), None);
        let video = job(0, 0, 0).making(Media::Video, 0.5);
        assert_eq!(video.output_index("0.mp4"), Some(0));
        assert_eq!(video.output_index("0.png"), None);
        assert_eq!(video.cost_usd, 0.5);
        let audio = job(0, 0, 0).making(Media::Audio { millis: 1000 }, 0.01);
        assert_eq!(audio.output_index("0.wav"), Some(0));
        assert_eq!(Media::Audio { millis: 1 }.content_type(), "audio/wav");
    }

    #[test]
    fn phases_follow_the_clock() {
        let j = job(2, 100, 50);
        let t = j.submitted;
        let ms = Duration::from_millis;
        assert_eq!(j.phase_at(t), Phase::InQueue { position: 2 });
        assert_eq!(j.phase_at(t + ms(99)), Phase::InQueue { position: 2 });
        assert_eq!(j.phase_at(t + ms(100)), Phase::InQueue { position: 1 });
        assert_eq!(j.phase_at(t + ms(199)), Phase::InQueue { position: 1 });
        assert_eq!(j.phase_at(t + ms(200)), Phase::InProgress);
        assert_eq!(j.phase_at(t + ms(249)), Phase::InProgress);
        assert!(matches!(j.phase_at(t + ms(250)), Phase::Completed { .. }));
    }

    #[test]
    fn empty_queue_starts_in_progress() {
        let j = job(0, 0, 10);
        assert_eq!(j.phase_at(j.submitted), Phase::InProgress);
    }
}
