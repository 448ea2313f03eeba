//! Measures what a hostile peer or a broken upstream costs the server: the four cases of
//! "a hostile peer or a broken upstream cannot exhaust the server". Each mode starts the binary
//! under test as a child process (on 127.0.0.1 only), attacks it, and prints figures read from
//! `/proc/<pid>/status` (VmRSS, VmHWM) and `/proc/<pid>/fd`. Not a test: nothing is asserted.
//! Linux only.
//!
//! ```sh
//! cargo build --release --bin runcomfy-mcp
//! cargo run --example hostile -- slowloris 3000   # half-sent headers, then nothing
//! cargo run --example hostile -- outputs 20000    # a result listing 20,000 outputs
//! cargo run --example hostile -- fetch            # a result URL on another local port
//! cargo run --example hostile -- stdio 200        # one 200 MB line on stdin
//! ```
//!
//! `HOSTILE_BIN=path` measures another build of the binary (default `target/release/runcomfy-mcp`),
//! e.g. one built from an older commit, with the same attacks; `HOSTILE_SERVER_ENV="K=V,K=V"`
//! gives it settings (e.g. `RUNCOMFY_NO_PREVIEW=true`).
//!
//! `fetch` does not dial a link-local or private address, even against a binary that would: the
//! "forbidden" URL points at a decoy listener on another loopback port (not the upstream's), which
//! a server with an address policy must refuse just the same, and which counts what reaches it.

use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use runcomfy_mcp::simulator::{FaultRule, SimConfig, Simulator};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn bin() -> String {
    std::env::var("HOSTILE_BIN").unwrap_or_else(|_| "target/release/runcomfy-mcp".into())
}

// The tests' reader of /proc, shared by path.
#[allow(dead_code)]
#[path = "../tests/integration/common/proc.rs"]
mod proc;
use proc::{open_fds, status_kib};

fn memory(pid: u32) -> String {
    format!(
        "RSS {:.1} MB, peak {:.1} MB, open files {}",
        status_kib(pid, "VmRSS") as f64 / 1024.0,
        status_kib(pid, "VmHWM") as f64 / 1024.0,
        open_fds(pid)
    )
}

/// The child is killed when this is dropped, whatever happened.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn command(upstream: Option<&str>) -> Command {
    let mut command = Command::new(bin());
    command
        .arg("serve")
        .env_remove("RUNCOMFY_API_TOKEN")
        .env("RUNCOMFY_NO_JOURNAL", "true")
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()));
    match upstream {
        Some(url) => command
            .env("RUNCOMFY_BASE_URL", url)
            .env("RUNCOMFY_API_KEY", "hostile-token"),
        None => command.arg("--simulate"),
    };
    // `HOSTILE_SERVER_ENV="K=V,K=V"`: settings for the server under test.
    for pair in std::env::var("HOSTILE_SERVER_ENV").unwrap_or_default().split(',') {
        if let Some((k, v)) = pair.split_once('=') {
            command.env(k.trim(), v.trim());
        }
    }
    command
}

async fn simulator() -> Simulator {
    let config = SimConfig {
        initial_queue_position: 1,
        queue_step_ms: 50,
        run_ms: 100,
        ..SimConfig::default()
    };
    Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .expect("simulator starts")
}

fn rule(value: Value) -> FaultRule {
    serde_json::from_value(value).expect("a valid fault rule")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: Option<usize> = args.next().and_then(|a| a.parse().ok());
    println!("binary: {}", bin());
    match mode.as_str() {
        "slowloris" => slowloris(n.unwrap_or(3000)).await,
        "outputs" => outputs(n.unwrap_or(20_000)).await,
        "fetch" => fetch().await,
        "stdio" => stdio(n.unwrap_or(200)).await,
        _ => anyhow::bail!("usage: hostile slowloris [N] | outputs [N] | fetch | stdio [MB]"),
    }
}

// ---- 1. half-open HTTP connections ----

async fn slowloris(n: usize) -> anyhow::Result<()> {
    let mut child = command(None)
        .args(["--transport", "http", "--port", "0"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()?;
    let mut url = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut url)?;
    let server = Server(child);
    let pid = server.0.id();
    let addr: SocketAddr = url.trim().trim_start_matches("http://").parse()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("idle: {}", memory(pid));

    let started = Instant::now();
    let mut attackers = Vec::with_capacity(n);
    for _ in 0..n {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(mut stream) => {
                let _ = stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .await;
                attackers.push(stream);
            }
            Err(e) => {
                println!("connect {} failed: {e}", attackers.len());
                break;
            }
        }
    }
    println!(
        "opened {} half-sent requests in {:.1} s",
        attackers.len(),
        started.elapsed().as_secs_f64()
    );
    for at in [1u64, 5, 12, 35] {
        let wait = Duration::from_secs(at).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        let open = attackers.iter().filter(|s| still_open(s)).count();
        let probe = healthz(addr).await;
        println!(
            "t={at:>2} s: {open} of {} attacker connections still open; server {}; /healthz {probe}",
            attackers.len(),
            memory(pid)
        );
    }
    Ok(())
}

/// Open means the server has neither closed nor reset it.
fn still_open(stream: &tokio::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.try_read(&mut byte) {
        Ok(0) => false,
        Ok(_) => false, // an answer (408, 503): the server is done with it
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

async fn healthz(addr: SocketAddr) -> String {
    let started = Instant::now();
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(answer)) if answer.starts_with(b"HTTP/1.1 200") => {
            format!("200 in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0)
        }
        Ok(Ok(answer)) => format!(
            "answered {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(12)])
        ),
        Ok(Err(e)) => format!("failed: {e}"),
        Err(_) => "no answer within 5 s".into(),
    }
}

// ---- stdio JSON-RPC helpers ----

struct StdioServer {
    server: Server,
    stdin: std::process::ChildStdin,
    answers: std::sync::mpsc::Receiver<String>,
}

impl StdioServer {
    fn start(upstream: Option<&str>, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = command(upstream);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut this = Self {
            server: Server(child),
            stdin,
            answers,
        };
        this.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "0"}}}))?;
        this.answer(0, Duration::from_secs(30))?;
        this.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(this)
    }

    fn pid(&self) -> u32 {
        self.server.0.id()
    }

    fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        writeln!(self.stdin, "{message}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// The first line answering `id` (lines for other ids, or none, are skipped).
    fn answer(&self, id: u64, within: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.answers.recv_timeout(left)?;
            let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if value["id"] == json!(id) {
                return Ok(line);
            }
        }
    }
}

// ---- 2. a result with many outputs ----

async fn outputs(n: usize) -> anyhow::Result<()> {
    let sim = simulator().await;
    let mut server = StdioServer::start(Some(&sim.base_url()), &[])?;
    sim.add_fault(rule(json!({"endpoint": "result", "kind": "many_outputs", "count": n})));
    let started = Instant::now();
    server.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "generate_image_and_wait", "arguments": {"prompt": "many", "size": "1024x1024", "force_single": true}}}))?;
    let pid = server.pid();
    // A server that downloads every output may take far longer than anyone waits for an answer:
    // past this, the figures are taken as they stand.
    let patience = Duration::from_secs(120);
    let (answer, server) = tokio::task::spawn_blocking(move || (server.answer(1, patience), server)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    match answer {
        Ok(answer) => {
            let value: Value = serde_json::from_str(&answer)?;
            let images_inline = value["result"]["content"]
                .as_array()
                .map_or(0, |c| c.iter().filter(|b| b["type"] == "image").count());
            println!(
                "a result listing {n} outputs: answered in {elapsed:.1} s, {} bytes ({:.2} MB; {images_inline} inline images), {} downloads; server {}",
                answer.len(),
                answer.len() as f64 / 1e6,
                sim.stats().image_calls,
                memory(pid)
            );
        }
        Err(_) => println!(
            "a result listing {n} outputs: no answer after {elapsed:.0} s, {} downloads so far; server {}",
            sim.stats().image_calls,
            memory(pid)
        ),
    }
    drop(server);
    Ok(())
}

// ---- 3. a result URL the server must not fetch ----

async fn fetch() -> anyhow::Result<()> {
    let sim = simulator().await;
    let decoy = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let decoy_url = format!("http://{}/latest/meta-data/iam.png", decoy.local_addr()?);
    let reached = Arc::new(AtomicU64::new(0));
    tokio::spawn({
        let reached = reached.clone();
        async move {
            while let Ok((mut stream, _)) = decoy.accept().await {
                reached.fetch_add(1, Ordering::Relaxed);
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nsecret!")
                    .await;
            }
        }
    });
    let mut server = StdioServer::start(Some(&sim.base_url()), &[])?;
    sim.add_fault(rule(json!({"endpoint": "result", "status": 200, "body": {
        "request_id": "00000000-0000-4000-8000-000000000001", "status": "succeeded",
        "output": {"images": [decoy_url]}}})));
    server.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "get_result", "arguments": {"request_id": "00000000-0000-4000-8000-000000000001"}}}))?;
    let answer = tokio::task::spawn_blocking(move || server.answer(1, Duration::from_secs(60))).await??;
    let value: Value = serde_json::from_str(&answer)?;
    let problem = value["result"]["structuredContent"]["outputs"][0]["problem"].clone();
    println!(
        "result URL {decoy_url} (a local service that is not the upstream): {} connection(s) reached it; the answer lists it with problem {problem}",
        reached.load(Ordering::Relaxed)
    );
    Ok(())
}

// ---- 4. one huge stdio line ----

async fn stdio(mb: usize) -> anyhow::Result<()> {
    let mut server = StdioServer::start(None, &[])?;
    let pid = server.pid();
    std::thread::sleep(Duration::from_millis(300));
    let idle_peak = status_kib(pid, "VmHWM");
    println!("idle: {}", memory(pid));

    let started = Instant::now();
    let head =
        br#"{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":""#;
    server.stdin.write_all(head)?;
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..mb {
        server.stdin.write_all(&chunk)?;
    }
    server.stdin.write_all(b"\"}}}\n")?;
    server.send(&json!({"jsonrpc": "2.0", "id": 42, "method": "tools/list"}))?;
    let written = started.elapsed();
    let (too_large, next, peak) = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.len() < 2 {
            let Ok(line) = server
                .answers
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                break;
            };
            seen.push(line);
        }
        let peak = status_kib(server.pid(), "VmHWM");
        (seen.first().cloned(), seen.get(1).cloned(), peak)
    })
    .await?;
    let short = |l: Option<String>| l.map(|l| l.chars().take(120).collect::<String>());
    println!(
        "a {mb} MB line written in {:.1} s; answers: {:?} then {:?}",
        written.as_secs_f64(),
        short(too_large),
        short(next)
    );
    println!(
        "peak RSS: idle {:.1} MB -> {:.1} MB after the line (+{:.1} MB)",
        idle_peak as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(idle_peak) as f64 / 1024.0
    );
    Ok(())
}
