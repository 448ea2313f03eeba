//! A fake RunComfy model API, served by axum on a local port: Dreamina 4.0 text-to-image and
//! edit in depth, and every other model of its catalogue with schema-checked input and real
//! PNG, MP4 or WAV results.
//!
//! Tests, demos and the `simulate` CLI command need the upstream's behaviour — queueing,
//! progress, cancellation, errors, real PNG results — without a token, money or a network.
//! The simulator speaks RunComfy's documented wire format (submit, status, result and cancel
//! under `/v1/`, with its error codes) and shares no code with the client but the field names.
//!
//! Layout: [`state`] holds jobs and their clock-driven state machine, [`input`] judges Dreamina
//! submit bodies like the real API, [`catalogue`] lists the models, [`schema`] judges the other
//! models' bodies against their schemas and [`plan`] says what their jobs make and cost,
//! [`billing`] charges jobs and keeps the balance, [`faults`] injects failures on demand,
//! [`png`], [`mp4`] and [`wav`] are the results' files,
//! [`edit`] draws an edit's results from its reference image,
//! [`wire`] holds the JSON shapes, and [`routes`] ties them to URLs (including the `/__sim/`
//! control API that tests use to reconfigure the simulator and to look inside it).

mod billing;
mod catalogue;
mod edit;
mod faults;
mod input;
mod mp4;
mod plan;
mod png;
mod routes;
mod schema;
mod state;
mod wav;
mod wire;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) use catalogue::CatalogueShape;
pub use faults::FaultRule;
pub use png::ImageStyle;

/// Timings and behaviour of new jobs. Missing fields take the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// A new job starts `in_queue` at this position.
    pub initial_queue_position: u32,
    /// Time for the queue position to drop by one.
    pub queue_step_ms: u64,
    /// Time spent `in_progress` before the job has succeeded.
    pub run_ms: u64,
    /// Images in a result (`force_single: true` always gives 1).
    pub images_per_job: u32,
    /// `None`: any non-empty bearer token is accepted.
    pub required_token: Option<String>,
    /// Tokens answered 401 as revoked, whatever else is set (a caller's bad key).
    pub rejected_tokens: Vec<String>,
    /// Keep which token each API call used (`GET /__sim/tokens`), for tests of per-user keys.
    /// Off by default: the log costs a lock per call.
    pub record_tokens: bool,
    /// What result images look like; read when an image is served.
    pub image_style: ImageStyle,
    /// The price of one image, in US dollars: the catalogue's `base_price_usd`, and a job's cost.
    pub price_usd_per_image: f64,
    /// The account's balance, in US dollars: each job is charged from it when submitted (and
    /// refunded when cancelled), and a submit it cannot pay for is answered 402. `None`: no end.
    pub balance_usd: Option<f64>,
    /// Charge each job when it completes instead of when it is submitted (RunComfy publishes
    /// neither): a submit only checks that the balance covers it, and a job cancelled in the
    /// queue is never charged.
    pub bill_at_completion: bool,
    /// How the model catalogue is served: page size, extra and filler entries, prices.
    pub catalogue: CatalogueShape,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            initial_queue_position: 2,
            queue_step_ms: 300,
            run_ms: 800,
            images_per_job: 1,
            required_token: None,
            rejected_tokens: Vec::new(),
            record_tokens: false,
            image_style: ImageStyle::Gradient,
            price_usd_per_image: billing::DEFAULT_PRICE_USD,
            balance_usd: None,
            bill_at_completion: false,
            catalogue: CatalogueShape::default(),
        }
    }
}

/// How many API requests of each kind reached the simulator (faulted and rejected ones too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    pub submissions: u64,
    /// Submits that made a job (not refused for balance, input, model or token, nor faulted).
    pub accepted: u64,
    /// Catalogue reads (`GET /v1/models/{id}`).
    pub model_calls: u64,
    pub status_calls: u64,
    pub result_calls: u64,
    pub cancel_calls: u64,
    pub image_calls: u64,
}

/// Lock-free counters behind [`SimStats`], bumped on every request.
#[derive(Debug, Default)]
struct Counters {
    submissions: AtomicU64,
    accepted: AtomicU64,
    model_calls: AtomicU64,
    status_calls: AtomicU64,
    result_calls: AtomicU64,
    cancel_calls: AtomicU64,
    image_calls: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            submissions: get(&self.submissions),
            accepted: get(&self.accepted),
            model_calls: get(&self.model_calls),
            status_calls: get(&self.status_calls),
            result_calls: get(&self.result_calls),
            cancel_calls: get(&self.cancel_calls),
            image_calls: get(&self.image_calls),
        }
    }
}

/// Everything the handlers share.
#[derive(Debug)]
struct Shared {
    config: Mutex<SimConfig>,
    jobs: state::Jobs,
    faults: faults::Faults,
    images: png::ImageCache,
    edits: edit::EditCache,
    /// Fetches reference images from loopback URLs only (see [`edit`]).
    http: reqwest::Client,
    counters: Counters,
    /// Absolute base of the URLs handed out (status, result, cancel, images).
    base_url: String,
    /// `config.record_tokens`, readable without the config's lock.
    record_tokens: std::sync::atomic::AtomicBool,
    /// Which token each API call used, while `record_tokens` is on.
    tokens: Mutex<Vec<TokenUse>>,
    /// Jobs to be charged when they complete (`bill_at_completion`).
    owed: billing::Owed,
}

/// One API call's token, as `GET /__sim/tokens` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUse {
    /// submit, status, result, cancel or model.
    pub call: String,
    /// The request id (a submit's is the new job's), or the model id.
    pub subject: String,
    pub token: String,
}

impl Shared {
    fn config(&self) -> SimConfig {
        self.config.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_config(&self, config: SimConfig) {
        self.record_tokens.store(config.record_tokens, Ordering::Relaxed);
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Runs `f` on the config under its lock: a charge and its check in one step.
    fn with_config<T>(&self, f: impl FnOnce(&mut SimConfig) -> T) -> T {
        f(&mut self.config.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A running simulator. Dropping it or calling [`Simulator::shutdown`] stops the server.
#[derive(Debug)]
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(addr: SocketAddr, config: SimConfig) -> std::io::Result<Simulator> {
        Self::start_with(addr, config, state::Jobs::default()).await
    }

    /// [`Simulator::start`], its jobs kept in `jobs_file` across restarts (see [`state`]): the
    /// simulator of `serve --simulate`, in its state directory.
    pub async fn start_keeping_jobs(
        addr: SocketAddr,
        config: SimConfig,
        jobs_file: &std::path::Path,
    ) -> std::io::Result<Simulator> {
        Self::start_with(addr, config, state::Jobs::kept_in(jobs_file)?).await
    }

    async fn start_with(addr: SocketAddr, config: SimConfig, jobs: state::Jobs) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            record_tokens: config.record_tokens.into(),
            tokens: Mutex::default(),
            config: Mutex::new(config),
            jobs,
            faults: faults::Faults::default(),
            images: png::ImageCache::default(),
            edits: edit::EditCache::default(),
            http: edit::loopback_client()?,
            counters: Counters::default(),
            base_url: base_url_for(addr),
            owed: billing::Owed::default(),
        });
        let app = routes::router(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender also means stop.
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::error!(%error, "simulator: server failed");
            }
        });
        tracing::info!(base_url = %shared.base_url, "simulator: listening");
        Ok(Simulator {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (a wildcard bind address is reported as loopback).
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn stats(&self) -> SimStats {
        self.shared.counters.snapshot()
    }

    /// The config new jobs get.
    pub fn config(&self) -> SimConfig {
        self.shared.config()
    }

    /// Replaces the config; jobs already submitted keep their timings.
    pub fn set_config(&self, config: SimConfig) {
        self.shared.set_config(config);
    }

    /// Adds a fault rule after the existing ones (same as `POST /__sim/faults`).
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.faults.add(rule);
    }

    /// Removes all fault rules (same as `DELETE /__sim/faults`).
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Stops accepting, lets in-flight requests finish for a moment, then stops.
    pub async fn shutdown(mut self) {
        self.stop_and_wait().await;
    }

    /// Serves until Ctrl-C (or until the server fails), then shuts down.
    pub async fn run_until_ctrl_c(mut self) {
        let Some(task) = self.task.as_mut() else {
            return;
        };
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                if let Err(error) = signal {
                    tracing::error!(%error, "simulator: cannot listen for Ctrl-C; stopping");
                }
            }
            _ = task => {
                self.task = None;
            }
        }
        self.stop_and_wait().await;
    }

    async fn stop_and_wait(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            // Graceful shutdown waits for in-flight requests; a fault with a long delay must
            // not hold the caller hostage.
            if tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err() {
                task.abort();
            }
        }
        tracing::info!("simulator: stopped");
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn base_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}
