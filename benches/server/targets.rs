//! Issue 19's targets, with the server's defaults (journal on, previews on, the default log level),
//! measured side by side with the official reference server, `@modelcontextprotocol/server-everything`
//! on node (installed by `scripts/bench-setup`), as the in-run anchor: its figures come from the
//! same machine in the same minute, so a loaded machine moves both. Three interleaved repetitions,
//! medians. CPU is the server process's own (all its threads, from `/proc/PID/task/*/schedstat`,
//! nanoseconds), over `calls` sequential calls after a warm-up.

use super::*;

/// Where `scripts/bench-setup` installs the reference server.
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/reference/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
);
const REPETITIONS: usize = 3;
/// Issue 19's CPU targets per `check_status`, stdio and Streamable HTTP with 8 sessions, in
/// microseconds of the host it measured them on.
const STDIO_TARGET_US: u64 = 60;
const HTTP_TARGET_US: u64 = 150;
/// The reference server's CPU per `echo` on that host, from the issue's own table (0.094 ms). A
/// target over it is what the issue asks of the server relative to the anchor: a ratio that still
/// means something on a slower or busier host, where both servers' figures rise (this machine
/// kind has read 153 to 378 µs for the same `echo`, which puts the absolute targets at 0.16 to
/// 0.40 of the anchor instead of the 0.64 they were set at).
const ISSUE_REFERENCE_US: u64 = 94;
/// HTTP sessions open at once for the "light load" figure, called round-robin, one call at a time.
const HTTP_SESSIONS: usize = 8;

/// One repetition's figures for one server.
#[derive(Default)]
struct Samples {
    start: Vec<Duration>,
    idle_kb: Vec<u64>,
    loaded_kb: Vec<u64>,
    cpu_per_call: Vec<Duration>,
    user_per_call: Vec<Duration>,
    system_per_call: Vec<Duration>,
}

impl Samples {
    fn start(&self) -> Duration {
        median(&self.start)
    }
    fn idle_kb(&self) -> u64 {
        median_u64(&self.idle_kb)
    }
    fn loaded_kb(&self) -> u64 {
        median_u64(&self.loaded_kb)
    }
    fn cpu(&self) -> Duration {
        median(&self.cpu_per_call)
    }
    fn user_system(&self) -> String {
        format!(
            "{} · {}",
            us(median(&self.user_per_call)),
            us(median(&self.system_per_call))
        )
    }
}

pub async fn run(sim: &Simulator, counts: &Counts, report: &mut Report) {
    let upstream = sim.base_url();
    let reference = std::env::var("BENCH_REFERENCE").unwrap_or_else(|_| REFERENCE.to_owned());
    let reference = std::path::Path::new(&reference).exists().then_some(reference);
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let (mut ours, mut lean, mut theirs) = (Samples::default(), Samples::default(), Samples::default());
    let (mut http, mut http_lean) = (Vec::new(), Vec::new());
    let mut deletes = Vec::new();
    let mut stateless = Vec::new();
    let starts = (counts.starts / REPETITIONS).max(3);
    let cpu_before = HostCpu::read();
    for _ in 0..REPETITIONS {
        stdio(&mut ours, starts, counts.calls, || defaults(&upstream, &state_dir, &[])).await;
        stdio(&mut lean, 1, counts.calls, || {
            defaults(&upstream, &state_dir, &["--no-journal"])
        })
        .await;
        if let Some(reference) = &reference {
            stdio(&mut theirs, starts, counts.calls, || everything(reference)).await;
        }
        let (cpu, statuses) = http_light(&upstream, &state_dir, &[], counts.calls).await;
        http.push(cpu);
        deletes.extend(statuses);
        http_lean.push(
            http_light(&upstream, &state_dir, &["--no-journal"], counts.calls)
                .await
                .0,
        );
        stateless.push(http_stateless(&upstream, &state_dir, counts.calls).await);
    }
    let stateless_load = stateless_rates(sim, &state_dir, counts).await;
    let steal = HostCpu::read()
        .zip(cpu_before)
        .map(|(after, before)| after.steal_share_since(&before));

    report.note("");
    report.note(&format!(
        "issue 19 targets: the server's defaults (journal on, previews on), {REPETITIONS} interleaved \
         repetitions, medians; CPU is the server's own, over {} sequential calls",
        counts.calls
    ));
    let (stdio_cpu, http_cpu) = (ours.cpu(), median(&http));
    report.figure(
        "server CPU per check_status, stdio",
        us(stdio_cpu),
        Some((
            &format!("≤ {STDIO_TARGET_US} µs"),
            stdio_cpu <= Duration::from_micros(STDIO_TARGET_US),
        )),
    );
    // The split says where a slow run's time went: a busy host inflates the kernel's share
    // (wake-ups across CPUs) far more than the server's own user-space work.
    report.figure("  of which user · system (10 ms ticks)", ours.user_system(), None);
    report.figure(
        &format!("server CPU per check_status, Streamable HTTP, {HTTP_SESSIONS} sessions"),
        us(http_cpu),
        Some((
            &format!("≤ {HTTP_TARGET_US} µs"),
            http_cpu <= Duration::from_micros(HTTP_TARGET_US),
        )),
    );
    let stateless_cpu = median(&stateless);
    // Issue 18 states its target "beside the simulator's raw rate", against the 130 µs per call
    // that sessions cost then under the same load: the saturating run, not the one-at-a-time calls
    // (which also pay a wake-up of the server per call, printed above it for comparison).
    report.figure(
        &format!("server CPU per check_status, --stateless, {HTTP_SESSIONS} clients in turn"),
        us(stateless_cpu),
        None,
    );
    report.figure(
        &format!("--stateless under load, {STATELESS_CLIENTS} clients: simulator raw / through the server"),
        format!("{:.0} / {:.0} per s", stateless_load.raw, stateless_load.through),
        None,
    );
    let loaded_cpu = stateless_load.server_cpu_per_call;
    report.figure(
        "  --stateless under load: server CPU per check_status",
        us(loaded_cpu),
        Some(("≤ 60 µs (issue 18)", loaded_cpu <= Duration::from_micros(60))),
    );
    let stdio_share = stdio_cpu.saturating_sub(lean.cpu());
    let http_share = http_cpu.saturating_sub(median(&http_lean));
    report.figure(
        "  the journal's share, stdio (defaults − --no-journal)",
        us(stdio_share),
        Some(("≤ 20 µs", stdio_share <= Duration::from_micros(20))),
    );
    report.figure(
        "  the journal's share, Streamable HTTP",
        us(http_share),
        Some(("≤ 20 µs", http_share <= Duration::from_micros(20))),
    );
    report.figure(
        "idle RSS after initialize, stdio",
        mb(ours.idle_kb()),
        Some(("≤ 8 MB", ours.idle_kb() <= 8 * 1024)),
    );
    report.figure("  RSS after the calls, stdio", mb(ours.loaded_kb()), None);
    report.figure(
        "start → initialize answered, stdio",
        ms(ours.start()),
        Some(("≤ 4 ms", ours.start() <= Duration::from_millis(4))),
    );
    let deletes_ok = !deletes.is_empty() && deletes.iter().all(|s| *s == 200 || *s == 204);
    let mut answered: Vec<u16> = deletes.clone();
    answered.sort();
    answered.dedup();
    report.figure(
        "DELETE /mcp of a session answers",
        format!("{answered:?}"),
        Some(("200 or 204", deletes_ok)),
    );

    let Some(reference) = reference else {
        report.note(&format!(
            "reference server not installed ({REFERENCE}): run scripts/bench-setup for the anchor"
        ));
        return;
    };
    report.note(&format!(
        "in-run anchor: server-everything on {} (echo tool, no upstream call), {reference}",
        node_version()
    ));
    report.figure("  reference: server CPU per echo call", us(theirs.cpu()), None);
    report.figure("    of which user · system (10 ms ticks)", theirs.user_system(), None);
    report.figure("  reference: idle RSS after initialize", mb(theirs.idle_kb()), None);
    report.figure("  reference: start → initialize answered", ms(theirs.start()), None);
    // Two decimals would print a start-up hundreds of times quicker than the reference's as 0.00×.
    let ratio = |a: f64, b: f64| {
        let r = a / b.max(f64::MIN_POSITIVE);
        if r >= 0.1 {
            format!("{r:.2}×")
        } else {
            format!("{r:.4}× (1/{:.0})", 1.0 / r.max(f64::MIN_POSITIVE))
        }
    };
    // The CPU targets judged once more, against the anchor (see ISSUE_REFERENCE_US): the absolute
    // verdicts above stay the issue's; these say whether the server is as far ahead of the
    // reference as the targets asked, whatever the host's speed today.
    against_anchor(
        report,
        "  ours / reference: CPU per call, stdio",
        stdio_cpu,
        theirs.cpu(),
        STDIO_TARGET_US,
    );
    against_anchor(
        report,
        &format!("  ours / reference: CPU per call, HTTP, {HTTP_SESSIONS} sessions"),
        http_cpu,
        theirs.cpu(),
        HTTP_TARGET_US,
    );
    report.figure(
        "  ours / reference: idle RSS",
        ratio(ours.idle_kb() as f64, theirs.idle_kb() as f64),
        None,
    );
    report.figure(
        "  ours / reference: start-up",
        ratio(ours.start().as_secs_f64(), theirs.start().as_secs_f64()),
        None,
    );
    // A task's CPU time (schedstat) includes the moments the host takes its CPU away from the VM
    // while it runs: on a busy host every CPU figure above reads high, ours and the reference's
    // alike. This says how busy the host was, so a reader can tell a slow run from a slow server.
    if let Some(steal) = steal {
        report.figure(
            "host steal time in the run, share of busy CPU",
            format!("{:.1} %", steal * 100.0),
            None,
        );
    }
}

/// `ours / reference` beside the target's own ratio to the reference on the day it was set.
fn against_anchor(report: &mut Report, name: &str, ours: Duration, reference: Duration, target_us: u64) {
    let ratio = ours.as_secs_f64() / reference.as_secs_f64().max(f64::MIN_POSITIVE);
    let limit = target_us as f64 / ISSUE_REFERENCE_US as f64;
    report.figure(
        name,
        format!("{ratio:.2}×"),
        Some((
            &format!("≤ {limit:.2}× ({target_us}/{ISSUE_REFERENCE_US} µs)"),
            ratio <= limit,
        )),
    );
}

/// The machine's CPU time counters, all CPUs (`/proc/stat`'s first line, in ticks).
struct HostCpu {
    busy: u64,
    steal: u64,
}

impl HostCpu {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = fields[..] else {
            return None;
        };
        Some(Self {
            busy: user + nice + system + irq + softirq + steal,
            steal,
        })
    }

    fn steal_share_since(&self, before: &Self) -> f64 {
        let busy = self.busy.saturating_sub(before.busy).max(1);
        self.steal.saturating_sub(before.steal) as f64 / busy as f64
    }
}

/// Our server as a client starts it: its defaults, its default log level (stderr discarded).
fn defaults(upstream: &str, state_dir: &str, flags: &[&str]) -> (Command, Call) {
    let mut command = ours(
        &[&["serve"], flags].concat(),
        upstream,
        &[("RUNCOMFY_STATE_DIR", state_dir)],
    );
    command.stderr(Stdio::null());
    (command, Call::CheckStatus)
}

fn everything(path: &str) -> (Command, Call) {
    let node = std::env::var("BENCH_NODE").unwrap_or_else(|_| "node".to_owned());
    let mut command = Command::new(node);
    command.args([path, "stdio"]).stderr(Stdio::null());
    (command, Call::Echo)
}

fn node_version() -> String {
    let node = std::env::var("BENCH_NODE").unwrap_or_else(|_| "node".to_owned());
    std::process::Command::new(&node)
        .arg("--version")
        .output()
        .map(|o| format!("node {}", String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or(node)
}

/// The call a server is measured on.
#[derive(Clone, Copy)]
enum Call {
    /// On a job the server submitted itself (so its journal knows it), queued for the whole run.
    CheckStatus,
    Echo,
}

/// `starts` cold starts (spawn → initialize answered), then, on the last one, idle RSS, `calls`
/// calls with their CPU, and RSS after them.
async fn stdio(samples: &mut Samples, starts: usize, calls: usize, command: impl Fn() -> (Command, Call)) {
    for i in 0..starts {
        let (command, call) = command();
        let server = StdioServer::spawn(command);
        server.initialize().await;
        samples
            .start
            .push(server.started.elapsed_at_init.lock().unwrap().expect("initialized"));
        if i + 1 < starts {
            server.stop().await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        samples.idle_kb.push(proc_kb(server.pid(), "VmRSS"));
        let args = match call {
            Call::CheckStatus => {
                let job = submit(|m, p| server.request(m, p)).await;
                json!({ "name": "check_status", "arguments": { "request_id": job } })
            }
            Call::Echo => json!({ "name": "echo", "arguments": { "message": "benchmark" } }),
        };
        let cpu = cpu_per_call(server.pid(), calls, || async {
            expect_tool_ok(&server.request("tools/call", args.clone()).await);
        })
        .await;
        samples.cpu_per_call.push(cpu.total);
        samples.user_per_call.push(cpu.user);
        samples.system_per_call.push(cpu.system);
        samples.loaded_kb.push(proc_kb(server.pid(), "VmRSS"));
        server.stop().await;
    }
}

/// Server CPU per check_status over Streamable HTTP with [`HTTP_SESSIONS`] sessions, called
/// round-robin one at a time; and what each session's DELETE was answered.
async fn http_light(upstream: &str, state_dir: &str, flags: &[&str], calls: usize) -> (Duration, Vec<u16>) {
    let server = http_defaults(upstream, state_dir, flags).await;
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let mut sessions = Vec::new();
    for _ in 0..HTTP_SESSIONS {
        sessions.push(McpSession::open(&client, &server.base).await);
    }
    let cpu = round_robin_cpu(server.pid(), calls, &sessions).await;
    let mut deletes = Vec::new();
    for session in &sessions {
        deletes.push(session.delete().await);
    }
    server.stop().await;
    (cpu, deletes)
}

/// Server CPU per check_status from a `--stateless` server (defaults otherwise), called
/// round-robin from [`HTTP_SESSIONS`] clients one at a time, each request on its own.
async fn http_stateless(upstream: &str, state_dir: &str, calls: usize) -> Duration {
    let server = http_defaults(upstream, state_dir, &["--stateless"]).await;
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let clients: Vec<_> = (0..HTTP_SESSIONS)
        .map(|_| McpSession::stateless(&client, &server.base))
        .collect();
    let cpu = round_robin_cpu(server.pid(), calls, &clients).await;
    server.stop().await;
    cpu
}

/// Our HTTP server with its defaults and `flags`, its log discarded.
async fn http_defaults(upstream: &str, state_dir: &str, flags: &[&str]) -> HttpServer {
    let args = [&["serve", "--transport", "http", "--port", "0"], flags].concat();
    let mut command = ours(&args, upstream, &[("RUNCOMFY_STATE_DIR", state_dir)]);
    command.stderr(Stdio::null());
    HttpServer::spawn(command).await
}

/// Server CPU per check_status on a job submitted through the first client, the calls going
/// round-robin over `clients`, one at a time.
async fn round_robin_cpu(pid: u32, calls: usize, clients: &[McpSession]) -> Duration {
    let job = submit(|m, p| clients[0].call(m, p)).await;
    let args = json!({ "name": "check_status", "arguments": { "request_id": job } });
    let next = AtomicU64::new(0);
    cpu_per_call(pid, calls, || async {
        let i = next.fetch_add(1, Ordering::Relaxed) as usize % clients.len();
        expect_tool_ok(&clients[i].call("tools/call", args.clone()).await);
    })
    .await
    .total
}

/// Concurrent clients of the saturating `--stateless` run (as many as the main section's sessions).
const STATELESS_CLIENTS: usize = 32;

/// The simulator's raw status rate beside check_status through a `--stateless` server (defaults),
/// both with [`STATELESS_CLIENTS`] clients back to back, and the server's CPU per call under it.
async fn stateless_rates(sim: &Simulator, state_dir: &str, counts: &Counts) -> Rates {
    let server = http_defaults(&sim.base_url(), state_dir, &["--stateless"]).await;
    let http = load_client();
    let clients: Vec<_> = (0..STATELESS_CLIENTS)
        .map(|_| Arc::new(McpSession::stateless(&http, &server.base)))
        .collect();
    let job = submit(|m, p| clients[0].call(m, p)).await;
    let status_args = json!({ "name": "check_status", "arguments": { "request_id": job } });
    let rates = Load {
        http: &http,
        status_url: format!("{}/v1/requests/{job}/status", sim.base_url()),
        status_args: &status_args,
        sessions: &clients,
        secs: counts.secs,
        server_pid: server.pid(),
    }
    .run()
    .await;
    server.stop().await;
    rates
}

/// Submits one job through the server (generate_image): its request id.
async fn submit<F, Fut>(call: F) -> String
where
    F: Fn(&'static str, Value) -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let answer = call(
        "tools/call",
        json!({ "name": "generate_image", "arguments": { "prompt": "benchmark", "force_single": true } }),
    )
    .await;
    expect_tool_ok(&answer);
    answer["result"]["structuredContent"]["request_id"]
        .as_str()
        .expect("request_id")
        .to_owned()
}

/// A server's CPU per call: the total from schedstat (nanoseconds), and its user and system
/// parts from `/proc/PID/stat` (clock ticks, so coarse: ±10 ms over the whole run).
struct CpuPerCall {
    total: Duration,
    user: Duration,
    system: Duration,
}

/// The server's CPU per `op`, over `calls` of them after a warm-up of a tenth as many.
async fn cpu_per_call<F, Fut>(pid: u32, calls: usize, op: F) -> CpuPerCall
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..(calls / 10).clamp(5, 200) {
        op().await;
    }
    let before = (proc_cpu_ns(pid), proc_ticks(pid));
    for _ in 0..calls.max(1) {
        op().await;
    }
    let after = (proc_cpu_ns(pid), proc_ticks(pid));
    let calls = calls.max(1) as u64;
    // Linux's USER_HZ is 100: a tick is 10 ms.
    let per_call = |ticks: u64| Duration::from_micros(ticks * 10_000 / calls);
    CpuPerCall {
        total: Duration::from_nanos(after.0.saturating_sub(before.0) / calls),
        user: per_call(after.1 .0.saturating_sub(before.1 .0)),
        system: per_call(after.1 .1.saturating_sub(before.1 .1)),
    }
}

/// Nanoseconds on a CPU so far, summed over the process's threads (a thread that exits takes its
/// share with it; the servers here keep theirs for the run).
fn proc_cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

fn median_u64(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}
