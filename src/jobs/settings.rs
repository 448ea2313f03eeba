//! How long waiting calls wait and how often they poll: the flags, their defaults (written here
//! once, and read by clap, the code and the tool descriptions alike), and the checked policy.

use std::time::Duration;

use clap::Args;

use super::Backoff;

/// How long generate_image_and_wait waits when the call does not say: well inside the ~60 s
/// after which Claude Desktop abandons a tool call.
pub const DEFAULT_WAIT_SECS: u64 = 40;
/// The most a call may ask to wait, unless the server is started with another bound.
pub const MAX_WAIT_SECS: u64 = 300;
/// The first delay between status polls; each later one is half as long again.
pub const POLL_FIRST_MS: u64 = 500;
/// The longest delay between status polls.
pub const POLL_MAX_MS: u64 = 5000;
/// The delay between polls where the model's past runs say a job is likely to finish: the
/// answer comes at most this long after RunComfy finished the image (half of it on average).
pub const POLL_DENSE_MS: u64 = 300;
/// The most polls per second all waits of one server send RunComfy together.
pub const POLL_MAX_RATE: u32 = 200;

/// Flags of the commands that wait for jobs.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    /// Seconds generate_image_and_wait waits when the call does not say (keep it under the ~60 s
    /// after which Claude Desktop abandons a call).
    #[arg(long, env = "RUNCOMFY_WAIT_SECS", default_value_t = DEFAULT_WAIT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub wait_secs: u64,

    /// The most seconds a call may ask generate_image_and_wait to wait.
    #[arg(long, env = "RUNCOMFY_MAX_WAIT_SECS", default_value_t = MAX_WAIT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_wait_secs: u64,

    /// First delay between status polls, in milliseconds; later delays grow by half each time.
    #[arg(long, env = "RUNCOMFY_POLL_FIRST_MS", default_value_t = POLL_FIRST_MS, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub poll_first_ms: u64,

    /// Longest delay between status polls, in milliseconds.
    #[arg(long, env = "RUNCOMFY_POLL_MAX_MS", default_value_t = POLL_MAX_MS, value_parser = clap::value_parser!(u64).range(10..=300_000))]
    pub poll_max_ms: u64,

    /// Delay between polls, in milliseconds, where the model's past jobs (in the journal) say a
    /// job is likely to finish; the first and longest delays apply to a model without history.
    #[arg(long, env = "RUNCOMFY_POLL_DENSE_MS", default_value_t = POLL_DENSE_MS, value_parser = clap::value_parser!(u64).range(250..=60_000))]
    pub poll_dense_ms: u64,

    /// The most status and result polls per second that all waiting calls together send RunComfy.
    #[arg(long, env = "RUNCOMFY_POLL_MAX_RATE", default_value_t = POLL_MAX_RATE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub poll_max_rate: u32,
}

/// The checked wait settings.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    pub default_wait: Duration,
    pub max_wait: Duration,
    pub backoff: Backoff,
    /// Between polls where a job is likely to finish.
    pub dense: Duration,
    /// Polls per second, all waits together.
    pub max_rate: u32,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            default_wait: Duration::from_secs(DEFAULT_WAIT_SECS),
            max_wait: Duration::from_secs(MAX_WAIT_SECS),
            backoff: Backoff::default(),
            dense: Duration::from_millis(POLL_DENSE_MS),
            max_rate: POLL_MAX_RATE,
        }
    }
}

impl WaitPolicy {
    /// The wait a call asked for (in seconds; `None`: the default), within the bound.
    pub fn wait_for(&self, asked_seconds: Option<u32>) -> Duration {
        asked_seconds
            .map(|s| Duration::from_secs(s.into()))
            .unwrap_or(self.default_wait)
            .min(self.max_wait)
    }
}

impl WaitArgs {
    pub fn policy(&self) -> WaitPolicy {
        WaitPolicy {
            default_wait: Duration::from_secs(self.wait_secs.min(self.max_wait_secs)),
            max_wait: Duration::from_secs(self.max_wait_secs),
            backoff: Backoff {
                first: Duration::from_millis(self.poll_first_ms),
                max: Duration::from_millis(self.poll_max_ms.max(self.poll_first_ms)),
                ..Backoff::default()
            },
            dense: Duration::from_millis(self.poll_dense_ms),
            max_rate: self.poll_max_rate,
        }
    }
}
