//! Jobs and their time-based state machine.
//!
//! A job never runs anything: its phase is a pure function of the instant it was submitted, the
//! timings captured at submit, and whether it was cancelled. Computing the phase lazily on every
//! request keeps a thousand concurrent jobs as cheap as a thousand small structs — no task, no
//! timer per job — and makes a config change apply only to jobs submitted afterwards.
//!
//! The simulator built into `serve --simulate` keeps its jobs in a file of the state directory
//! ([`Jobs::kept_in`]): one JSON line per submit and per cancel, appended. After a restart the
//! jobs are read back, so `list_jobs` (the journal) and `get_result` (the simulator) agree again
//! and `request_id#n` references still work. Persisting the jobs was chosen over a fixed port per
//! state directory: several clients often start `serve --simulate` on the same directory at once
//! (a desktop app and an editor), and a fixed port would let only one of them start. For the
//! same reason a job another process added is looked for in the file before it is called
//! unknown. Result URLs carry the port of the simulator that answers, so an old URL goes dead
//! with its process, as RunComfy's expire; a job's result hands out fresh ones.

use std::collections::HashMap;
use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::input::{self, Reference};
use super::png::Caption;
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

    /// What output `n` (from 0) shows: the prompt (a catalogue model's too, when its input has
    /// one) and the reference a client names it by, `request_id#n` (from 1).
    pub(crate) fn caption(&self, id: &str, n: u32) -> Caption {
        Caption {
            prompt: self.request["prompt"].as_str().unwrap_or_default().to_owned(),
            reference: format!("{id}#{}", n + 1),
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

/// All jobs, keyed by request id, and the file they are kept in, if any. A std mutex: every
/// critical section is a map lookup (and, for a job not in the map, a read of the file's new
/// lines).
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Job>,
    file: Option<JobFile>,
}

impl Jobs {
    /// Jobs kept in `path` (made if missing): the jobs already there are read back.
    pub(crate) fn kept_in(path: &Path) -> std::io::Result<Jobs> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let mut inner = Inner {
            map: HashMap::new(),
            file: Some(JobFile {
                path: path.to_owned(),
                read_to: 0,
            }),
        };
        inner.read_new();
        tracing::info!(path = %path.display(), jobs = inner.map.len(), "simulator: jobs kept across restarts");
        Ok(Jobs {
            inner: Mutex::new(inner),
        })
    }

    pub(crate) fn insert(&self, id: String, job: Job) {
        let mut inner = self.lock();
        inner.keep(&id, &job);
        inner.map.insert(id, job);
    }

    /// A snapshot of the job, if it exists.
    pub(crate) fn get(&self, id: &str) -> Option<Job> {
        self.lock().find(id).cloned()
    }

    /// Every job's id and status string, oldest first (for the control API).
    pub(crate) fn list(&self) -> Vec<(String, &'static str)> {
        let mut inner = self.lock();
        inner.read_new();
        let mut jobs: Vec<(&String, &Job)> = inner.map.iter().collect();
        jobs.sort_by_key(|(_, job)| job.submitted);
        jobs.into_iter()
            .map(|(id, job)| (id.clone(), job.phase().status_str()))
            .collect()
    }

    /// Counts a status call on the job and returns its phase, if the job exists.
    pub(crate) fn status(&self, id: &str) -> Option<Phase> {
        let mut inner = self.lock();
        let job = inner.find(id)?;
        job.status_calls += 1;
        Some(job.phase())
    }

    /// Cancels the job if it is still queued; only queued jobs can be cancelled upstream.
    pub(crate) fn cancel(&self, id: &str) -> Option<CancelOutcome> {
        let mut inner = self.lock();
        let job = inner.find(id)?;
        match job.phase() {
            Phase::InQueue { .. } => {
                job.cancelled = true;
                let job = job.clone();
                inner.keep(id, &job);
                Some(CancelOutcome::Cancelled)
            }
            other => Some(CancelOutcome::NotCancellable(other)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave a map half-updated: recover it.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// The job, looked for in the file's new lines too (another process's) before it is unknown.
    fn find(&mut self, id: &str) -> Option<&mut Job> {
        if !self.map.contains_key(id) {
            self.read_new();
        }
        self.map.get_mut(id)
    }

    /// Appends the job's line to the file, if there is one. A failure costs only the job's
    /// survival of a restart: said in the log, and the simulator goes on.
    fn keep(&mut self, id: &str, job: &Job) {
        let Some(file) = &mut self.file else {
            return;
        };
        let mut line = match serde_json::to_vec(&Saved::of(id, job)) {
            Ok(line) => line,
            Err(error) => return tracing::warn!(%error, "simulator: cannot keep a job"),
        };
        line.push(b'\n');
        // One write of the whole line in append mode: lines of several processes do not mix.
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(&file.path)
            .and_then(|mut f| f.write_all(&line));
        if let Err(error) = written {
            tracing::warn!(%error, path = %file.path.display(), "simulator: cannot keep a job");
        }
    }

    /// Reads the lines added to the file since the last read (the later line of a job wins).
    fn read_new(&mut self) {
        let Some(file) = &mut self.file else {
            return;
        };
        let read = std::fs::File::open(&file.path).and_then(|mut f| {
            f.seek(std::io::SeekFrom::Start(file.read_to))?;
            let mut jobs = Vec::new();
            let mut reader = std::io::BufReader::new(f);
            let mut line = String::new();
            // Only whole lines: one being written by another process is read next time.
            while reader.read_line(&mut line)? > 0 && line.ends_with('\n') {
                file.read_to += line.len() as u64;
                match serde_json::from_str::<Saved>(&line) {
                    Ok(saved) => jobs.push(saved),
                    Err(error) => tracing::warn!(%error, "simulator: a kept job could not be read; skipped"),
                }
                line.clear();
            }
            Ok(jobs)
        });
        match read {
            Ok(jobs) => {
                for saved in jobs {
                    let (id, job) = saved.into_job();
                    self.map.insert(id, job);
                }
            }
            Err(error) => tracing::warn!(%error, path = %file.path.display(), "simulator: cannot read the kept jobs"),
        }
    }
}

/// The file jobs are kept in, and how far it has been read.
#[derive(Debug)]
struct JobFile {
    path: PathBuf,
    read_to: u64,
}

/// A string longer than this in a request (an edit's data URI) is not kept: a file of kept jobs
/// would grow by megabytes per edit. Such an edit is drawn from its prompt after a restart.
const MAX_KEPT_STRING: usize = 4096;

/// A job as one line of the file: its timings as wall-clock milliseconds, so that its phase goes
/// on where it was after a restart.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    id: String,
    model: String,
    media: String,
    #[serde(default)]
    millis: u32,
    request: Value,
    width: u32,
    height: u32,
    images: u32,
    cost_usd: f64,
    created_at_ms: u64,
    initial_queue_position: u32,
    queue_step_ms: u64,
    run_ms: u64,
    cancelled: bool,
}

impl Saved {
    fn of(id: &str, job: &Job) -> Saved {
        let (media, millis) = match job.media {
            Media::Image => ("image", 0),
            Media::Video => ("video", 0),
            Media::Audio { millis } => ("audio", millis),
        };
        let millis_of = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Saved {
            id: id.to_owned(),
            model: job.model.to_string(),
            media: media.to_owned(),
            millis,
            request: without_long_strings(&job.request),
            width: job.width,
            height: job.height,
            images: job.images,
            cost_usd: job.cost_usd,
            created_at_ms: millis_of(job.created_at.duration_since(UNIX_EPOCH).unwrap_or_default()),
            initial_queue_position: job.initial_queue_position,
            queue_step_ms: millis_of(job.queue_step),
            run_ms: millis_of(job.run),
            cancelled: job.cancelled,
        }
    }

    fn into_job(self) -> (String, Job) {
        let created_at = UNIX_EPOCH + Duration::from_millis(self.created_at_ms);
        let age = SystemTime::now().duration_since(created_at).unwrap_or_default();
        // Submitted `age` ago on this process's clock; a job older than the clock itself (made
        // before the machine started) has long finished.
        let (submitted, timings) = match Instant::now().checked_sub(age) {
            Some(submitted) => (
                submitted,
                (
                    self.initial_queue_position,
                    Duration::from_millis(self.queue_step_ms),
                    Duration::from_millis(self.run_ms),
                ),
            ),
            None => (Instant::now(), (0, Duration::ZERO, Duration::ZERO)),
        };
        // An edit's references, judged again from its body (an edit whose data URIs were not
        // kept has none, and is drawn from its prompt).
        let references = if self.model == input::EDIT_MODEL_ID {
            serde_json::to_vec(&self.request)
                .ok()
                .and_then(|body| input::validate_for(input::Endpoint::Edit, &body).ok())
                .map(|(_, valid)| valid.images)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let media = match self.media.as_str() {
            "video" => Media::Video,
            "audio" => Media::Audio { millis: self.millis },
            _ => Media::Image,
        };
        let job = Job {
            model: self.model.into(),
            media,
            request: Arc::new(self.request),
            references: references.into(),
            width: self.width,
            height: self.height,
            images: self.images,
            cost_usd: self.cost_usd,
            created_at,
            submitted,
            initial_queue_position: timings.0,
            queue_step: timings.1,
            run: timings.2,
            cancelled: self.cancelled,
            status_calls: 0,
        };
        (self.id, job)
    }
}

/// `value` with every string longer than [`MAX_KEPT_STRING`] replaced by a note of its length.
fn without_long_strings(value: &Value) -> Value {
    match value {
        Value::String(s) if s.len() > MAX_KEPT_STRING => Value::String(format!("(not kept: {} bytes)", s.len())),
        Value::Array(items) => Value::Array(items.iter().map(without_long_strings).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), without_long_strings(v))).collect()),
        other => other.clone(),
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

    /// Jobs kept in a file come back in a new simulator on the same file, in the phase the clock
    /// says, cancelled ones cancelled; and one another process added is found there.
    #[test]
    fn kept_jobs_survive_a_restart_and_are_shared_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("simulator-jobs.jsonl");
        let first = Jobs::kept_in(&path).unwrap();
        let request = serde_json::json!({"prompt": "a red fox"});
        let config = SimConfig::default();
        first.insert(
            "done".into(),
            Job::new(
                "m",
                request.clone(),
                Vec::new(),
                (1024, 576),
                2,
                &SimConfig {
                    initial_queue_position: 0,
                    run_ms: 0,
                    ..config.clone()
                },
            ),
        );
        first.insert("queued".into(), job(50, 60_000, 0));
        assert_eq!(first.cancel("queued"), Some(CancelOutcome::Cancelled));
        first.insert("waiting".into(), job(50, 60_000, 0));

        let again = Jobs::kept_in(&path).unwrap();
        let done = again.get("done").unwrap();
        assert!(matches!(done.phase(), Phase::Completed { .. }));
        assert_eq!((done.width, done.height, done.images), (1024, 576, 2));
        assert_eq!(done.caption("done", 1).prompt, "a red fox");
        assert_eq!(done.output_index("1.png"), Some(1));
        assert_eq!(again.status("queued"), Some(Phase::Cancelled));
        assert!(matches!(again.status("waiting"), Some(Phase::InQueue { .. })));
        // Another process on the same file: its job is found without a restart.
        first.insert("later".into(), job(0, 0, 0));
        assert!(again.get("later").is_some());
        assert_eq!(again.list().len(), 4);
    }

    #[test]
    fn empty_queue_starts_in_progress() {
        let j = job(0, 0, 10);
        assert_eq!(j.phase_at(j.submitted), Phase::InProgress);
    }
}
