//! A throwaway PostgreSQL cluster for a test: `initdb` into a temporary directory, the server
//! listening on a unix socket in that directory and on a loopback port, stopped (immediately)
//! when the cluster is dropped. Debian's binaries (/usr/lib/postgresql/VERSION/bin), else those
//! on PATH. Both refuse to run as root, so as root they run as `nobody` in a directory it owns.
//!
//! Shared by the journal's unit tests (included with `#[path]`) and the integration tests, so it
//! uses nothing but the standard library and `tempfile`.
//!
//! Without PostgreSQL binaries a test is skipped with a message, except under CI (`CI=true`),
//! where .ci/run installs them: there a missing PostgreSQL is a failure, never a skip.

#![allow(dead_code)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// `nobody` when the tests run as root.
    run_as: Option<&'static str>,
    pub port: u16,
}

impl Cluster {
    /// A running cluster, or `None` (with a message on stderr) when there is no PostgreSQL here
    /// and this is not CI. `test` names the test, for the message.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = binaries() else {
            let why = "no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: {why}; CI must have them (.ci/run installs Debian's postgresql)");
            }
            eprintln!("SKIPPED {test}: {why} (apt-get install postgresql)");
            return None;
        };
        let run_as = is_root().then_some("nobody");
        let mut builder = tempfile::Builder::new();
        builder.prefix("runcomfy-pg-");
        // Under /tmp when it runs as `nobody`: a TMPDIR inside root's home would be closed to it.
        let dir = match run_as {
            Some(_) => builder.tempdir_in("/tmp"),
            None => builder.tempdir(),
        }
        .expect("a temporary directory");
        if run_as.is_some() {
            // The server's directory must be its user's, and so must the way into it.
            let status = Command::new("chown")
                .args(["nobody", &dir.path().display().to_string()])
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown nobody {}", dir.path().display());
        }
        let mut cluster = Self {
            dir,
            bin,
            run_as,
            port: free_port(),
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        );
        // The port was free a moment ago; another test may have taken it since: try another.
        for _ in 0..3 {
            if cluster.try_resume().is_ok() {
                return Some(cluster);
            }
            cluster.port = free_port();
        }
        cluster.resume();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `postgres` database over the unix socket.
    pub fn socket_url(&self) -> String {
        let dir = self.socket_dir().display().to_string().replace('/', "%2F");
        format!("postgres://postgres@{dir}:{}/postgres", self.port)
    }

    /// The `postgres` database over loopback TCP.
    pub fn tcp_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash or a network cut would look to its clients.
    pub fn pause(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts the server (again), on the same socket and port.
    pub fn resume(&self) {
        if let Err(e) = self.try_resume() {
            panic!("{e}");
        }
    }

    fn try_resume(&self) -> Result<(), String> {
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.socket_dir().display(),
            self.port
        );
        self.try_run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("server.log").display().to_string(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
    }

    fn run(&self, program: &str, args: &[&str]) {
        if let Err(e) = self.try_run(program, args) {
            panic!("{e}");
        }
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        let output = match self.run_as {
            Some(user) => Command::new("runuser")
                .args(["-u", user, "--"])
                .arg(&program)
                .args(args)
                .current_dir(self.dir.path())
                .output(),
            None => Command::new(&program).args(args).current_dir(self.dir.path()).output(),
        }
        .map_err(|e| format!("{} cannot run: {e}", program.display()))?;
        if output.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        Err(format!(
            "{} {args:?} failed: {}{}\nserver log:\n{log}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(match self.run_as {
            Some(_) => PathBuf::from("runuser"),
            None => self.bin.join("pg_ctl"),
        })
        .args(match self.run_as {
            Some(user) => vec![
                "-u".to_owned(),
                user.to_owned(),
                "--".to_owned(),
                self.bin.join("pg_ctl").display().to_string(),
            ],
            None => vec![],
        })
        .args(["-D", &self.data().display().to_string(), "-m", "immediate", "stop"])
        .output();
    }
}

/// The directory of `initdb` and `pg_ctl`: Debian's newest version, else PATH's.
fn binaries() -> Option<PathBuf> {
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    // Versions are numbers: the longest name, then the greatest, is the newest.
    debian.sort_by_key(|bin| {
        let version = bin
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (version.len(), version)
    });
    if let Some(newest) = debian.pop() {
        return Some(newest);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A loopback port nobody listens on now (the server binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
