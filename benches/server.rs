//! `cargo bench --bench server`: what the server adds between an MCP client and the upstream.
//!
//! One run starts the simulator in this process on 127.0.0.1 and the release binary as child
//! processes, drives them with a minimal hand-written JSON-RPC client (stdio lines; Streamable
//! HTTP through reqwest, JSON or SSE answers, `mcp-session-id`), and prints one report: each
//! figure with its target and MET / NOT MET. Not a test: nothing here asserts a timing.
//!
//! Servers run with `--no-journal --no-preview` unless a line says "defaults": those figures are
//! about the MCP/HTTP path, not SQLite or image decoding. Counts come from the environment so a
//! quick run is possible: `BENCH_STARTS`, `BENCH_CALLS`, `BENCH_SESSIONS`, `BENCH_SECS`,
//! `BENCH_WAITS`, `BENCH_JOB_SECS`; `BENCH_BIN=PATH` runs another build of the server;
//! `BENCH_SERVER_ENV="K=V,…"` adds environment to every server (to try a setting) and
//! `BENCH_PERF=FILE` records a `perf` profile of the HTTP server under load.
//! Issue 19's targets, with the defaults and the reference server as an anchor, are in
//! [`targets`]; `BENCH_ONLY_TARGETS=1` runs just those.

#[path = "server/targets.rs"]
mod targets;

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::Stdio,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use runcomfy_mcp::{
    jobs::Backoff,
    simulator::{FaultRule, SimConfig, Simulator},
};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, Command},
    sync::oneshot,
};

/// The server binary: this build's, or `BENCH_BIN` (to compare another build in the same run).
static BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_runcomfy-mcp").to_owned())
});
const TOKEN: &str = "bench-token-7f1e";
const PROTOCOL: &str = "2025-06-18";
/// The server flags for figures about the MCP/HTTP path alone.
const LEAN: [&str; 2] = ["--no-journal", "--no-preview"];
/// The latency of the "remote upstream" throughput figure.
const UPSTREAM_LATENCY_MS: u64 = 20;

/// Sizes of the run, from `BENCH_*` variables.
struct Counts {
    starts: usize,
    calls: usize,
    sessions: usize,
    secs: f64,
    waits: usize,
    job_secs: u64,
}

impl Counts {
    fn from_env() -> Self {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
        }
        Self {
            starts: var("BENCH_STARTS", 60),
            calls: var("BENCH_CALLS", 2000),
            sessions: var("BENCH_SESSIONS", 32),
            secs: var("BENCH_SECS", 5.0),
            waits: var("BENCH_WAITS", 1000),
            job_secs: var("BENCH_JOB_SECS", 20),
        }
    }
}

/// The report, printed at the end in one piece.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
}

impl Report {
    fn figure(&mut self, name: &str, value: String, target: Option<(&str, bool)>) {
        let verdict = match target {
            Some((target, met)) => format!("{target:<22} {}", if met { "MET" } else { "NOT MET" }),
            None => String::new(),
        };
        let line = format!("{name:<58} {value:>18}   {verdict}");
        eprintln!("{line}");
        self.lines.push(line);
    }

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
        self.lines.push(text.to_owned());
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter libtest would take: ignore.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(Counts::from_env()));
}

async fn run(counts: Counts) {
    let sim = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default())
        .await
        .expect("simulator starts");
    // A job that stays queued for the whole run: every check_status does the same work.
    sim.set_config(SimConfig {
        initial_queue_position: 5,
        queue_step_ms: 3_600_000,
        ..SimConfig::default()
    });
    let http = load_client();
    let job = submit_direct(&http, &sim.base_url()).await;
    let mut report = Report::default();
    report.note(&format!(
        "runcomfy-mcp server benchmark — {} cores, binary {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        *BIN
    ));
    targets::run(&sim, &counts, &mut report).await;
    if std::env::var_os("BENCH_ONLY_TARGETS").is_some() {
        println!("\n{}", report.lines.join("\n"));
        sim.shutdown().await;
        return;
    }
    report.note("");
    report.note("servers run with --no-journal --no-preview unless the line says \"defaults\"");
    report.note("");

    // ---- start-up and idle memory (stdio) ----
    let lean_start = median(&cold_starts(&sim.base_url(), &LEAN, &[], counts.starts).await);
    report.figure(
        "start → initialize answered, stdio (median)",
        ms(lean_start),
        Some(("≤ 10 ms", lean_start <= Duration::from_millis(10))),
    );
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let default_env = [("RUNCOMFY_STATE_DIR", state_dir.as_str())];
    let default_start = median(&cold_starts(&sim.base_url(), &[], &default_env, counts.starts / 2).await);
    report.figure(
        "start → initialize answered, stdio, defaults (median)",
        ms(default_start),
        None,
    );

    let server = StdioServer::start(&sim.base_url(), &LEAN, &[]).await;
    server.initialize().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = proc_kb(server.pid(), "VmRSS");
    report.figure(
        "idle RSS after initialize, stdio",
        mb(idle),
        Some(("≤ 12 MB", idle <= 12 * 1024)),
    );

    // ---- latencies over stdio ----
    let list = latencies(counts.calls / 4, || async {
        let answer = server.request("tools/list", json!({})).await;
        assert!(
            answer["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()),
            "{answer}"
        );
    })
    .await;
    report.figure("tools/list, stdio (p50)", ms(pct(&list, 50)), None);
    let status_args = json!({ "name": "check_status", "arguments": { "request_id": job } });
    let stdio_status = latencies(counts.calls, || async {
        expect_tool_ok(&server.request("tools/call", status_args.clone()).await);
    })
    .await;
    report.figure("check_status, stdio (p50 / p99)", p50_p99(&stdio_status), None);
    server.stop().await;

    let server = StdioServer::start(&sim.base_url(), &[], &default_env).await;
    server.initialize().await;
    let default_status = latencies(counts.calls / 4, || async {
        expect_tool_ok(&server.request("tools/call", status_args.clone()).await);
    })
    .await;
    report.figure(
        "check_status, stdio, defaults (journal on) (p50 / p99)",
        p50_p99(&default_status),
        None,
    );
    server.stop().await;

    // ---- Streamable HTTP ----
    let server = HttpServer::start(&sim.base_url(), &["--max-sessions", "10000"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    report.figure(
        "idle RSS, Streamable HTTP server",
        mb(proc_kb(server.pid(), "VmRSS")),
        None,
    );
    let session = McpSession::open(&http, &server.base).await;
    let http_status = latencies(counts.calls, || async {
        expect_tool_ok(&session.call("tools/call", status_args.clone()).await);
    })
    .await;
    report.figure(
        "check_status, Streamable HTTP session (p50 / p99)",
        p50_p99(&http_status),
        None,
    );

    let mut sessions = Vec::new();
    for _ in 0..counts.sessions {
        sessions.push(Arc::new(McpSession::open(&http, &server.base).await));
    }
    let load = Load {
        http: &http,
        status_url: format!("{}/v1/requests/{job}/status", sim.base_url()),
        status_args: &status_args,
        sessions: &sessions,
        secs: counts.secs,
        server_pid: server.pid(),
    };
    let n = counts.sessions;
    let fast = load.run().await;
    report.figure(
        &format!("simulator raw status rate, {n} connections"),
        format!("{:.0} req/s", fast.raw),
        None,
    );
    report.figure(
        &format!("check_status over Streamable HTTP, {n} sessions"),
        format!("{:.0} calls/s", fast.through),
        None,
    );
    report.figure(
        "  ratio to the simulator's raw rate",
        format!("{:.0} %", 100.0 * fast.through / fast.raw),
        Some(("≥ 90 %", fast.through >= 0.9 * fast.raw)),
    );
    report.figure(
        "  server CPU per check_status call",
        format!("{:.0} µs", fast.server_cpu_per_call.as_secs_f64() * 1e6),
        None,
    );
    // A real upstream is a network away: the same with every status answer 20 ms late.
    let slow: FaultRule =
        serde_json::from_value(json!({ "endpoint": "status", "times": u32::MAX, "delay_ms": UPSTREAM_LATENCY_MS }))
            .unwrap();
    sim.add_fault(slow);
    let remote = load.run().await;
    sim.clear_faults();
    report.figure(
        &format!("same with a {UPSTREAM_LATENCY_MS} ms upstream: raw / through the server"),
        format!("{:.0} / {:.0} per s", remote.raw, remote.through),
        None,
    );
    report.figure(
        "  ratio to the simulator's raw rate",
        format!("{:.0} %", 100.0 * remote.through / remote.raw),
        Some(("≥ 90 %", remote.through >= 0.9 * remote.raw)),
    );
    report.figure(
        &format!("RSS of the HTTP server with {} sessions open", counts.sessions + 1),
        mb(proc_kb(server.pid(), "VmRSS")),
        None,
    );
    drop(sessions);
    server.stop().await;

    // ---- many concurrent waits (stdio, one session) ----
    if counts.waits > 0 {
        waits(&sim, &counts, &mut report).await;
    }

    println!("\n{}", report.lines.join("\n"));
    sim.shutdown().await;
}

/// `waits` concurrent generate_image_and_wait calls on jobs that take `job_secs`: the server's peak
/// RSS, and the status polls they cost the upstream against what the backoff schedule allows.
async fn waits(sim: &Simulator, counts: &Counts, report: &mut Report) {
    let job = Duration::from_secs(counts.job_secs);
    sim.set_config(SimConfig {
        initial_queue_position: 1,
        queue_step_ms: (job.as_millis() as u64).saturating_sub(1000),
        run_ms: 1000,
        ..SimConfig::default()
    });
    let server = Arc::new(StdioServer::start(&sim.base_url(), &LEAN, &[]).await);
    server.initialize().await;
    let before = sim.stats();
    let pid = server.pid();

    // Upstream status requests per 100 ms, for the peak rate.
    let calls_done = AtomicBool::new(false);
    let sampler = async {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut sockets = 0;
        while !calls_done.load(Ordering::Relaxed) {
            tick.tick().await;
            samples.push(sim.stats().status_calls);
            sockets = sockets.max(open_sockets(pid));
        }
        (samples, sockets)
    };
    let started = Instant::now();
    let calls = (0..counts.waits).map(|i| {
        let server = Arc::clone(&server);
        let args = json!({ "name": "generate_image_and_wait", "arguments": {
            "prompt": format!("bench image {i}"), "force_single": true,
            "max_wait_seconds": counts.job_secs * 3 + 30,
        }});
        tokio::spawn(async move { server.request("tools/call", args).await })
    });
    let calls = async {
        let answers = futures::future::join_all(calls.collect::<Vec<_>>()).await;
        calls_done.store(true, Ordering::Relaxed);
        answers
    };
    let (answers, (samples, sockets)) = tokio::join!(calls, sampler);
    let elapsed = started.elapsed();
    let succeeded = answers
        .iter()
        .filter(|a| {
            let a = a.as_ref().unwrap();
            a["result"]["isError"] != json!(true) && a["result"]["structuredContent"]["status"] == "succeeded"
        })
        .count();
    let peak = proc_kb(server.pid(), "VmHWM");
    let after = sim.stats();
    let polls = after.status_calls - before.status_calls;
    let per_job = schedule_polls(Backoff::default(), job);
    let predicted = (per_job * counts.waits) as u64;
    let peak_window = samples.windows(11).map(|w| w[10] - w[0]).max().unwrap_or(polls);
    // After the first two seconds: every call polls at once right after its submit, and again
    // 0.5 s later, whatever the schedule; from then on, calls that started together should not
    // poll together.
    let peak_100ms = samples.windows(2).skip(20).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let per_second: Vec<String> = samples
        .iter()
        .step_by(10)
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (w[1] - w[0]).to_string())
        .collect();
    let n = counts.waits;
    report.figure(
        &format!(
            "{n} concurrent generate_image_and_wait ({}s jobs): done",
            counts.job_secs
        ),
        format!("{succeeded}/{n} in {:.1} s", elapsed.as_secs_f64()),
        None,
    );
    report.figure(
        "  peak RSS of the server (VmHWM)",
        mb(peak),
        Some(("≤ 50 MB", peak <= 50 * 1024)),
    );
    report.figure("  server's open sockets at peak (sampled)", sockets.to_string(), None);
    report.figure(
        "  upstream status polls: measured / backoff schedule",
        format!("{polls} / {predicted}"),
        Some(("≤ schedule", polls <= predicted)),
    );
    report.figure(
        "  upstream status rate: mean / peak 1 s / peak 100 ms after 2 s",
        format!(
            "{:.0} / {peak_window} / {peak_100ms}",
            polls as f64 / elapsed.as_secs_f64()
        ),
        None,
    );
    report.note(&format!("  upstream status polls per second: {}", per_second.join(" ")));
    report.figure(
        "  upstream submits / results",
        format!(
            "{} / {}",
            after.submissions - before.submissions,
            after.result_calls - before.result_calls
        ),
        None,
    );
    Arc::into_inner(server).expect("all calls done").stop().await;
}

/// Polls one wait makes on a job that finishes `job` after its submit: one at once, one after each
/// delay of the schedule, the last being the first at or after the job finished.
fn schedule_polls(backoff: Backoff, job: Duration) -> usize {
    let mut at = Duration::ZERO;
    let mut polls = 1;
    for delay in backoff.delays() {
        if at >= job {
            break;
        }
        at += delay;
        polls += 1;
    }
    polls
}

// ---- measurements ----

async fn cold_starts(upstream: &str, flags: &[&str], env: &[(&str, &str)], n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let server = StdioServer::start(upstream, flags, env).await;
        server.initialize().await;
        times.push(server.started.elapsed_at_init.lock().unwrap().expect("initialized"));
        server.stop().await;
    }
    times
}

/// Runs `op` `n` times one after another (after a short warm-up) and returns the sorted times.
async fn latencies<F, Fut>(n: usize, op: F) -> Vec<Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..(n / 10).clamp(5, 100) {
        op().await;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let t = Instant::now();
        op().await;
        times.push(t.elapsed());
    }
    times.sort();
    times
}

/// The throughput comparison: the simulator's raw status rate, then check_status through the
/// server, with the same number of concurrent clients.
struct Load<'a> {
    http: &'a reqwest::Client,
    status_url: String,
    status_args: &'a Value,
    sessions: &'a [Arc<McpSession>],
    secs: f64,
    server_pid: u32,
}

struct Rates {
    raw: f64,
    through: f64,
    server_cpu_per_call: Duration,
}

impl Load<'_> {
    async fn run(&self) -> Rates {
        let raw = saturate(self.sessions.len(), self.secs, |_| {
            let (http, url) = (self.http.clone(), self.status_url.clone());
            move || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let response = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
                    assert!(response.status().is_success());
                    response.bytes().await.unwrap();
                }
            }
        })
        .await;
        let cpu_before = proc_cpu(self.server_pid);
        // BENCH_PERF=FILE records a profile of the server under this load (`perf report -i FILE`).
        let profiler = std::env::var("BENCH_PERF").ok().map(|out| {
            std::process::Command::new("perf")
                .args([
                    "record",
                    "-F",
                    "1999",
                    "-g",
                    "-o",
                    &out,
                    "-p",
                    &self.server_pid.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("perf starts")
        });
        let (through, measured) = saturate_timed(self.sessions.len(), self.secs, |i| {
            let (session, args) = (Arc::clone(&self.sessions[i]), self.status_args.clone());
            move || {
                let (session, args) = (Arc::clone(&session), args.clone());
                async move { expect_tool_ok(&session.call("tools/call", args).await) }
            }
        })
        .await;
        let server_cpu = proc_cpu(self.server_pid) - cpu_before;
        if let Some(perf) = profiler {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &perf.id().to_string()])
                .status();
            let _ = perf.wait_with_output();
        }
        Rates {
            raw,
            through,
            server_cpu_per_call: server_cpu.div_f64(measured.max(1) as f64),
        }
    }
}

async fn saturate<M, G, Fut>(workers: usize, secs: f64, make: M) -> f64
where
    M: Fn(usize) -> G,
    G: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    saturate_timed(workers, secs, make).await.0
}

/// `workers` loops each running its operation back to back for `secs` (after a warm-up second):
/// completed operations per second, and all operations completed (warm-up and wind-down too).
async fn saturate_timed<M, G, Fut>(workers: usize, secs: f64, make: M) -> (f64, u64)
where
    M: Fn(usize) -> G,
    G: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            let (op, done, stop) = (make(i), Arc::clone(&done), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    op().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (from, t) = (done.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let rate = (done.load(Ordering::Relaxed) - from) as f64 / t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    (rate, done.load(Ordering::Relaxed))
}

/// The client of the load runs: a connection per concurrent client, kept.
fn load_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .unwrap()
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// "p50 / p99" of latency samples, in milliseconds.
fn p50_p99(samples: &[Duration]) -> String {
    format!("{} / {}", ms(pct(samples, 50)), ms(pct(samples, 99)))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

/// A `/proc/PID/status` field in KiB (VmRSS, VmHWM).
fn proc_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Our server with `args`, a clean environment pointed at the simulator, `env`, and then
/// `BENCH_SERVER_ENV`.
fn ours(args: &[&str], upstream: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(&*BIN);
    command
        .args(args)
        .env_clear()
        .env("RUNCOMFY_API_KEY", TOKEN)
        .env("RUNCOMFY_BASE_URL", upstream)
        .envs(env.iter().copied())
        .envs(extra_env());
    command
}

/// `BENCH_SERVER_ENV="K=V,K=V"`: extra environment for every server started, to try a setting.
fn extra_env() -> Vec<(String, String)> {
    std::env::var("BENCH_SERVER_ENV")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Sockets a process holds: its upstream connections, here.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// User plus system CPU time a process has used so far.
fn proc_cpu(pid: u32) -> Duration {
    let (user, system) = proc_ticks(pid);
    Duration::from_millis((user + system) * 10)
}

/// User and system CPU time a process (all its threads) has used so far, in clock ticks of
/// 1/100 s on Linux.
fn proc_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3 on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15.
    (ticks(11), ticks(12))
}

fn expect_tool_ok(answer: &Value) {
    assert!(
        answer["result"].is_object() && answer["result"]["isError"] != json!(true),
        "tool call failed: {answer}"
    );
}

async fn submit_direct(http: &reqwest::Client, sim: &str) -> String {
    let answer: Value = http
        .post(format!("{sim}/v1/models/bytedance/dreamina-4-0/text-to-image"))
        .bearer_auth(TOKEN)
        .json(&json!({ "prompt": "benchmark", "force_single": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["request_id"].as_str().expect("request_id").to_owned()
}

// ---- a minimal JSON-RPC client over stdio ----

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

struct Started {
    at: Instant,
    /// Spawn → answer to `initialize`.
    elapsed_at_init: Mutex<Option<Duration>>,
}

struct StdioServer {
    child: Child,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
    started: Started,
}

impl StdioServer {
    async fn start(upstream: &str, flags: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = ours(
            &[&["serve"], flags].concat(),
            upstream,
            &[&[("RUST_LOG", "warn")], env].concat(),
        );
        command.stderr(Stdio::inherit());
        Self::spawn(command)
    }

    /// Any MCP server over stdio (ours, or the reference server).
    fn spawn(mut command: Command) -> Self {
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).kill_on_drop(true);
        let at = Instant::now();
        let mut child = command.spawn().expect("the server starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let pending: Pending = Arc::default();
        tokio::spawn({
            let pending = Arc::clone(&pending);
            async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Ok(message) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    // Answers only; notifications (progress, logging) are not waited on here.
                    if let Some(id) = message["id"].as_u64().filter(|_| message.get("method").is_none()) {
                        if let Some(tx) = pending.lock().unwrap().remove(&id) {
                            let _ = tx.send(message);
                        }
                    }
                }
            }
        });
        Self {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            next_id: AtomicU64::new(1),
            started: Started {
                at,
                elapsed_at_init: Mutex::new(None),
            },
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    async fn initialize(&self) {
        let answer = self
            .request(
                "initialize",
                json!({ "protocolVersion": PROTOCOL, "capabilities": {},
                        "clientInfo": { "name": "bench", "version": "0" } }),
            )
            .await;
        *self.started.elapsed_at_init.lock().unwrap() = Some(self.started.at.elapsed());
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
        self.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
    }

    async fn request(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        rx.await.expect("the server answers")
    }

    async fn send(&self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        stdin.write_all(&line).await.expect("stdin open");
        stdin.flush().await.unwrap();
    }

    /// Closes stdin (the server's cue to exit) and waits for the exit.
    async fn stop(self) {
        let Self { mut child, stdin, .. } = self;
        drop(stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
}

// ---- a minimal Streamable HTTP client ----

struct HttpServer {
    child: Child,
    base: String,
}

impl HttpServer {
    async fn start(upstream: &str, flags: &[&str]) -> Self {
        let args = [&["serve", "--transport", "http", "--port", "0"], &LEAN[..], flags].concat();
        let mut command = ours(&args, upstream, &[("RUST_LOG", "warn")]);
        command.stderr(Stdio::inherit());
        Self::spawn(command).await
    }

    /// Our server over HTTP, however started: it prints its URL on stdout once listening.
    async fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .await
            .unwrap();
        Self {
            child,
            // The server prints its MCP endpoint; the bench builds its paths on the base.
            base: line.trim().trim_end_matches("/mcp").to_owned(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

struct McpSession {
    http: reqwest::Client,
    url: String,
    session: String,
    next_id: AtomicU64,
}

impl McpSession {
    async fn open(http: &reqwest::Client, base: &str) -> Self {
        let url = format!("{base}/mcp");
        let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": { "name": "bench", "version": "0" } } });
        let response = http
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&init)
            .send()
            .await
            .unwrap();
        let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        answer_in(response, 0).await;
        let this = Self {
            http: http.clone(),
            url,
            session,
            next_id: AtomicU64::new(1),
        };
        let response = this
            .post(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        assert!(response.status().is_success());
        this
    }

    /// A client of a `--stateless` server: no `initialize`, no session id, every request alone.
    fn stateless(http: &reqwest::Client, base: &str) -> Self {
        Self {
            http: http.clone(),
            url: format!("{base}/mcp"),
            session: String::new(),
            next_id: AtomicU64::new(1),
        }
    }

    async fn post(&self, body: &Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL);
        if !self.session.is_empty() {
            request = request.header("mcp-session-id", &self.session);
        }
        request.json(body).send().await.unwrap()
    }

    /// Ends the session: the status DELETE was answered with.
    async fn delete(&self) -> u16 {
        self.http
            .delete(&self.url)
            .header("mcp-session-id", &self.session)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let response = self
            .post(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        answer_in(response, id).await
    }
}

/// The answer with `id` from a plain JSON body or an SSE stream.
async fn answer_in(response: reqwest::Response, id: u64) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    if let Ok(one) = serde_json::from_str::<Value>(&body) {
        return one;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|m| m["id"] == json!(id))
        .unwrap_or_else(|| panic!("no answer to {id} in {body}"))
}
