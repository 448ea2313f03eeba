//! [`Bin`]: the one way a test runs the `runcomfy-mcp` binary (stdio server, HTTP server, the
//! `generate` command), and [`Output`], which reads a child's pipe as it is written.
//!
//! Every command starts from the same environment: no `RUNCOMFY_*` variable from the shell that
//! runs the tests (a developer's token, `RUNCOMFY_SIMULATE`, state or output directory would
//! otherwise change what a test sees, or where it writes), the journal off, and `RUST_LOG` passed
//! through (`warn` when unset), so that `RUST_LOG=trace scripts/test` logs every server at trace
//! level for the secret scan. A test adds only what it is about.

use std::{
    ffi::OsStr,
    io::Write,
    path::Path,
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use rmcp::{service::RunningService, transport::TokioChildProcess, ClientHandler, RoleClient, ServiceExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::{eventually, BIN, TOKEN};

/// `runcomfy-mcp` with its arguments and environment, built up by a test.
pub struct Bin {
    command: std::process::Command,
}

impl Bin {
    /// `runcomfy-mcp ARGS` in the tests' clean environment (see the module doc), stdin closed.
    pub fn new<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Self {
        let mut command = std::process::Command::new(BIN);
        command.args(args);
        // Every variable the binary reads is named RUNCOMFY_* (`env = "RUNCOMFY_…"` in src/):
        // removing the prefix covers each of them, and any added later.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("RUNCOMFY_") {
                command.env_remove(name);
            }
        }
        command
            .env("RUNCOMFY_NO_JOURNAL", "true")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null());
        Self { command }
    }

    /// `runcomfy-mcp serve` (stdio).
    pub fn serve() -> Self {
        Self::new(["serve"])
    }

    /// `runcomfy-mcp serve --transport http --port 0`.
    pub fn serve_http() -> Self {
        Self::new(["serve", "--transport", "http", "--port", "0"])
    }

    /// Talks to the RunComfy API at `base_url` (a test's simulator) with the tests' token.
    pub fn upstream(self, base_url: &str) -> Self {
        self.env("RUNCOMFY_API_KEY", TOKEN).env("RUNCOMFY_BASE_URL", base_url)
    }

    /// Keeps its job journal in `dir`.
    pub fn journal_in(self, dir: &Path) -> Self {
        self.env("RUNCOMFY_NO_JOURNAL", "false").env("RUNCOMFY_STATE_DIR", dir)
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.command.args(args);
        self
    }

    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        self.command.envs(vars.iter().copied());
        self
    }

    pub fn env_remove(mut self, name: &str) -> Self {
        self.command.env_remove(name);
        self
    }

    /// The command, for a test that drives the process with blocking calls.
    pub fn std(self) -> std::process::Command {
        self.command
    }

    /// The command for tokio; the child is killed if the test drops it.
    pub fn tokio(self) -> tokio::process::Command {
        let mut command = tokio::process::Command::from(self.command);
        command.kill_on_drop(true);
        command
    }
}

/// A stdio MCP server started from a [`Bin`], with the test's client connected to it.
pub struct StdioServer<H: ClientHandler> {
    pub client: RunningService<RoleClient, H>,
    pub pid: u32,
    /// The server's stderr (also copied to the test's stderr, where the secret scan reads it).
    pub stderr: Output,
}

/// Starts `bin` as a stdio MCP server and connects `handler` to it (`initialize` done).
pub async fn start_stdio<H: ClientHandler>(handler: H, bin: Bin) -> StdioServer<H> {
    let (transport, stderr) = TokioChildProcess::builder(bin.tokio())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let pid = transport.id().expect("a running child");
    let stderr = Output::follow(stderr.expect("stderr is piped"), true);
    let client = handler.serve(transport).await.expect("initialize succeeds");
    StdioServer { client, pid, stderr }
}

/// What a child writes to one pipe, read line by line by a task as it comes, so that a full pipe
/// never blocks the child, and kept for the test to wait on and inspect.
#[derive(Clone, Default)]
pub struct Output {
    lines: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
}

impl Output {
    /// Follows `pipe` until it closes; with `echo`, every line is also written to this process's
    /// stderr, as if the child had inherited it (the secret scan reads the suite's output).
    pub fn follow(pipe: impl AsyncRead + Unpin + Send + 'static, echo: bool) -> Self {
        let output = Self::default();
        let (lines, closed) = (output.lines.clone(), output.closed.clone());
        tokio::spawn(async move {
            let mut reader = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if echo {
                    // Straight to fd 2, as an inherited stderr would be, not through `eprintln!`:
                    // the test harness keeps (and, for a passing test, drops) what a test prints.
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
                lines.lock().unwrap().push(line);
            }
            closed.store(true, Ordering::SeqCst);
        });
        output
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Everything read so far, one line per line.
    pub fn text(&self) -> String {
        self.lines().iter().map(|l| format!("{l}\n")).collect()
    }

    /// Waits for the first line for which `wanted` is true, and returns it.
    pub async fn line(&self, wanted: impl Fn(&str) -> bool, what: &str) -> String {
        eventually(
            async || {
                let lines = self.lines.lock().unwrap();
                match lines.iter().find(|l| wanted(l)) {
                    Some(line) => Ok(line.clone()),
                    None if self.closed.load(Ordering::SeqCst) => {
                        panic!("the pipe closed before {what}:\n{}", lines.join("\n"))
                    }
                    None => Err(format!("{} lines", lines.len())),
                }
            },
            what,
        )
        .await
    }

    /// Waits until the child has closed the pipe (it exited); returns every line.
    pub async fn closed(&self) -> Vec<String> {
        eventually(
            async || self.closed.load(Ordering::SeqCst).then(|| self.lines()),
            "the pipe to close",
        )
        .await
    }
}
