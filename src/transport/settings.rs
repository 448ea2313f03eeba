//! `serve`'s transport flags (`--transport stdio|http` and the HTTP server's options), and the
//! checks that turn them into [`HttpSettings`] before anything listens: a server that would be
//! reachable from the network without authentication is refused unless the operator says so.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use clap::{Args, ValueEnum};

use super::{
    connections::ConnectionLimits,
    guards::{BearerToken, Guards, HostRule, OriginRule},
    per_user_keys::PerUserKeys,
};

/// The environment variable for the HTTP bearer token; preferred over `--auth-token`, which
/// every user of the machine can read in `ps`.
pub const AUTH_TOKEN_VAR: &str = "RUNCOMFY_MCP_AUTH_TOKEN";
/// Short tokens can be guessed; 32 random hex characters (`openssl rand -hex 16`) cannot.
const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// stdin/stdout, for clients that start the server themselves.
    Stdio,
    /// An HTTP server: Streamable HTTP at /mcp and the legacy HTTP+SSE transport at /sse.
    Http,
}

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Transport")]
pub struct TransportArgs {
    /// How clients reach the server.
    #[arg(long, env = "RUNCOMFY_MCP_TRANSPORT", value_enum, default_value_t = TransportKind::Stdio)]
    pub transport: TransportKind,

    /// HTTP: address to listen on. Loopback by default; any other address needs --auth-token
    /// (or --allow-remote-without-auth).
    #[arg(long, env = "RUNCOMFY_MCP_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// HTTP: port to listen on (0 picks a free one; the base URL is printed on stdout).
    #[arg(long, env = "RUNCOMFY_MCP_PORT", default_value_t = 8080)]
    pub port: u16,

    /// HTTP: serve Streamable HTTP without sessions, so that replicas behind a load balancer
    /// need no sticky routing. The legacy SSE transport keeps its sessions either way.
    #[arg(long, env = "RUNCOMFY_MCP_STATELESS")]
    pub stateless: bool,

    /// HTTP: bearer token clients must send (`Authorization: Bearer <token>`). Prefer the
    /// environment variable: a flag is visible to every user of the machine in `ps`.
    #[arg(long, env = AUTH_TOKEN_VAR, hide_env_values = true)]
    pub auth_token: Option<String>,

    /// HTTP: every request carries its caller's own RunComfy API key (`X-RunComfy-Api-Key`, or
    /// `Authorization: Bearer` when no --auth-token is set), used for that caller's RunComfy calls
    /// only; each caller sees and spends only their own jobs. The server needs no key of its own.
    #[arg(long, env = "RUNCOMFY_MCP_PER_USER_KEYS")]
    pub per_user_keys: bool,

    /// HTTP, with --per-user-keys: a file with the secret the owners of jobs are hashed with
    /// (or set RUNCOMFY_MCP_OWNER_SECRET) [default: made once, in the state directory].
    /// Replicas that share a journal must share it.
    #[arg(long, env = "RUNCOMFY_MCP_OWNER_SECRET_FILE", value_name = "FILE")]
    pub owner_secret_file: Option<PathBuf>,

    /// HTTP: allow listening on a non-loopback address without a token. Anyone who can reach
    /// the port can then spend your RunComfy balance: only for a trusted network or behind an
    /// authenticating proxy.
    #[arg(long)]
    pub allow_remote_without_auth: bool,

    /// HTTP: extra allowed Host header values (name or name:port, `*` for any; loopback names
    /// are always allowed). Requests with any other Host get 403.
    #[arg(long = "allowed-host", env = "RUNCOMFY_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// HTTP: extra allowed browser origins (https://app.example.com, http://host:*, or `*`;
    /// loopback origins are always allowed). Requests with any other Origin get 403.
    #[arg(long = "allowed-origin", env = "RUNCOMFY_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// HTTP: largest request body accepted, in bytes (larger gets 413).
    #[arg(long, env = "RUNCOMFY_MCP_MAX_BODY_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub max_body_bytes: u64,

    /// HTTP: most sessions open at once, both transports together (more get 503).
    #[arg(long, env = "RUNCOMFY_MCP_MAX_SESSIONS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_sessions: u64,

    /// HTTP: a session with no traffic for this many seconds is closed. Keep it above
    /// --max-wait-secs: a waiting call without progress notifications sends nothing.
    #[arg(long, env = "RUNCOMFY_MCP_SESSION_IDLE_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub session_idle_secs: u64,

    /// HTTP: most connections open at once. Past it, a few more are let in for /healthz only
    /// and others get 503; the server raises its open-file limit to fit (or lowers this to it).
    #[arg(long, env = "RUNCOMFY_MCP_MAX_CONNECTIONS", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// HTTP: a request's header must arrive complete within this many seconds of its first byte
    /// (of the connection opening, for its first request); slower connections are closed. Also
    /// the grace before --min-body-bytes-per-sec applies.
    #[arg(long, env = "RUNCOMFY_MCP_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_timeout_secs: u64,

    /// HTTP: a connection with no request in flight is closed after this many seconds. Keep it
    /// above a load balancer's own idle timeout (AWS ALB: 60 s).
    #[arg(long, env = "RUNCOMFY_MCP_IDLE_TIMEOUT_SECS", default_value_t = 75,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_secs: u64,

    /// HTTP: a request body must arrive at least this fast on average, in bytes per second
    /// (after the header timeout's worth of grace); slower ones get 408.
    #[arg(long, env = "RUNCOMFY_MCP_MIN_BODY_BYTES_PER_SEC", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub min_body_bytes_per_sec: u64,

    /// HTTP: threads that serve requests; 0 (the default) is one per CPU core, and at least two.
    /// A server many people share must not stall them all when one request holds its thread: with
    /// one thread, anything slow on it (a long computation, a blocking call) stops every caller and
    /// /healthz with it; with several, the others take over the waiting requests. 1 is the
    /// leanest for a server one person uses (fewer context switches per call).
    #[arg(long, env = "RUNCOMFY_MCP_WORKER_THREADS", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub worker_threads: u16,

    /// HTTP: on SIGINT/SIGTERM, how long calls in flight may take to finish before they are cut off.
    #[arg(long, env = "RUNCOMFY_MCP_SHUTDOWN_GRACE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_secs: u64,

    /// HTTP: the domain-verification token OpenAI gives when the server is submitted to ChatGPT's
    /// app directory; served as text at /.well-known/openai-apps-challenge (a 404 without it)
    #[arg(long, env = "RUNCOMFY_MCP_OPENAI_APPS_CHALLENGE", value_name = "TOKEN")]
    pub openai_apps_challenge: Option<String>,
}

/// The HTTP server's checked settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    pub stateless: bool,
    pub guards: Guards,
    pub max_body_bytes: usize,
    pub max_sessions: usize,
    pub session_idle: Duration,
    pub shutdown_grace: Duration,
    pub connections: ConnectionLimits,
    /// With `--per-user-keys`: how requests carry keys, and how keys become owners.
    pub per_user_keys: Option<Arc<PerUserKeys>>,
    /// ChatGPT's domain-verification token, when one is set.
    pub openai_apps_challenge: Option<Arc<str>>,
    /// With `--oauth`: sign-in, whose tokens stand for each request's caller.
    pub oauth: Option<crate::oauth::OAuth>,
    /// With `--oauth-issuer`: the company's identity provider's tokens stand for each caller.
    pub company: Option<crate::oauth::company::Company>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("refusing to listen on {0} without authentication: anyone who can reach it could spend your RunComfy balance. Set {AUTH_TOKEN_VAR} (e.g. to the output of `openssl rand -hex 32`), or pass --allow-remote-without-auth if a trusted network or an authenticating proxy protects it")]
    RemoteWithoutAuth(IpAddr),
    #[error(
        "the HTTP auth token must be at least {MIN_TOKEN_LEN} characters without spaces (try `openssl rand -hex 32`)"
    )]
    WeakToken,
    #[error("--allowed-host {0}")]
    BadHost(String),
    #[error("--allowed-origin {0}")]
    BadOrigin(String),
    #[error("{0}")]
    BadChallenge(String),
}

impl TransportArgs {
    pub fn http_settings(&self) -> Result<HttpSettings, SettingsError> {
        let token = match self.auth_token.as_deref().map(str::trim) {
            None => None,
            Some(t) if t.len() < MIN_TOKEN_LEN || t.contains(char::is_whitespace) => {
                return Err(SettingsError::WeakToken)
            }
            Some(t) => Some(BearerToken::new(t)),
        };
        if !self.host.is_loopback() && token.is_none() && !self.allow_remote_without_auth {
            return Err(SettingsError::RemoteWithoutAuth(self.host));
        }
        let mut hosts = self
            .allowed_hosts
            .iter()
            .map(|h| h.parse::<HostRule>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(SettingsError::BadHost)?;
        // Clients that reach the server by the address it listens on are expected.
        if !self.host.is_unspecified() {
            hosts.push(HostRule::Host {
                host: self.host.to_string(),
                port: None,
            });
        }
        let origins = self
            .allowed_origins
            .iter()
            .map(|o| o.parse::<OriginRule>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(SettingsError::BadOrigin)?;
        Ok(HttpSettings {
            addr: SocketAddr::new(self.host, self.port),
            stateless: self.stateless,
            guards: Guards { hosts, origins, token },
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            max_sessions: usize::try_from(self.max_sessions).unwrap_or(usize::MAX),
            session_idle: Duration::from_secs(self.session_idle_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            connections: ConnectionLimits {
                max: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
                header_timeout: Duration::from_secs(self.header_timeout_secs),
                idle_timeout: Duration::from_secs(self.idle_timeout_secs),
                body_min_rate: self.min_body_bytes_per_sec,
            },
            // Filled in by `serve`'s start, which knows where the owner secret is kept.
            per_user_keys: None,
            openai_apps_challenge: super::apps_challenge::parse(self.openai_apps_challenge.as_deref())
                .map_err(SettingsError::BadChallenge)?,
            oauth: None,
            company: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        transport: TransportArgs,
    }

    fn settings(args: &[&str]) -> Result<HttpSettings, SettingsError> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).expect("flags parse");
        cli.transport.http_settings()
    }

    #[test]
    fn loopback_needs_no_token_but_other_addresses_do() {
        assert!(settings(&["--transport", "http"]).unwrap().guards.token.is_none());
        assert!(settings(&["--host", "::1"]).is_ok());
        assert_eq!(
            settings(&["--host", "0.0.0.0"]).unwrap_err(),
            SettingsError::RemoteWithoutAuth("0.0.0.0".parse().unwrap())
        );
        assert!(settings(&["--host", "0.0.0.0", "--allow-remote-without-auth"]).is_ok());
        let with_token = settings(&["--host", "0.0.0.0", "--auth-token", "0123456789abcdef0123"]).unwrap();
        assert!(with_token.guards.token.is_some());
    }

    #[test]
    fn weak_tokens_and_bad_rules_are_start_up_errors() {
        assert_eq!(
            settings(&["--auth-token", "short"]).unwrap_err(),
            SettingsError::WeakToken
        );
        assert_eq!(
            settings(&["--auth-token", "has spaces in the token"]).unwrap_err(),
            SettingsError::WeakToken
        );
        assert!(matches!(
            settings(&["--allowed-host", "a@b"]),
            Err(SettingsError::BadHost(_))
        ));
        assert!(matches!(
            settings(&["--allowed-origin", "example.com"]),
            Err(SettingsError::BadOrigin(_))
        ));
        let ok = settings(&[
            "--allowed-host",
            "mcp.example.com,10.1.2.3:8080",
            "--allowed-origin",
            "https://a.example",
        ]);
        let ok = ok.unwrap();
        assert_eq!(ok.guards.hosts.len(), 3, "two configured plus the listening address");
        assert_eq!(ok.guards.origins.len(), 1);
    }
}
