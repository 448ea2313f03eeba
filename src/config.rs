//! Gathers each module's flags into the commands' settings, and builds what they describe. Every
//! flag group lives with its module (`runcomfy::settings`, `jobs::settings`, `media::settings`,
//! `mcp::settings`, `journal::settings`, `transport::settings`); this only puts them together, in
//! an order that leaves nothing behind when a setting is refused.

use std::{net::SocketAddr, sync::Arc};

use clap::Args;

use crate::{
    jobs::{JobService, LimitArgs, WaitArgs},
    journal::JournalArgs,
    mcp::{McpArgs, RunComfyServer},
    media::{
        inputs::{InputOptions, DEFAULT_INPUT_MAX_BYTES},
        AddressPolicy, Downloader, MediaArgs, MediaOptions, OutputDir,
    },
    runcomfy::{settings::token_from_env, ApiToken, Client, UpstreamArgs},
    simulator::{SimConfig, Simulator},
    transport::settings::{HttpSettings, TransportArgs, TransportKind},
};

/// `serve`'s settings.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub media: MediaArgs,
    #[command(flatten)]
    pub mcp: McpArgs,
    #[command(flatten)]
    pub journal: JournalArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub transport: TransportArgs,
}

/// `generate`'s settings besides the image itself.
#[derive(Args, Debug)]
pub struct GenerateSettings {
    /// Directory to save the images in.
    #[arg(long, default_value = ".")]
    pub out: std::path::PathBuf,
    /// Largest local reference image, in MiB.
    #[arg(long, env = "RUNCOMFY_INPUT_MAX_MB", default_value_t = DEFAULT_INPUT_MAX_BYTES / (1024 * 1024),
          value_parser = clap::value_parser!(u64).range(1..=47))]
    pub input_max_mb: u64,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub journal: JournalArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// A built server and how to serve it. Holds the in-process simulator, if any, for as long as
/// it is kept.
pub struct Serve {
    pub server: RunComfyServer,
    /// `None`: stdio.
    pub http: Option<HttpSettings>,
    _simulator: Option<Simulator>,
}

impl ServeArgs {
    pub async fn build(self) -> anyhow::Result<Serve> {
        // Checked before anything starts, so a refused setting costs nothing.
        let http = match self.transport.transport {
            TransportKind::Stdio => None,
            TransportKind::Http => Some(self.transport.http_settings()?),
        };
        let media = self.media.options().map_err(anyhow::Error::msg)?;
        self.journal.check()?;
        self.limits.check_with_journal(self.journal.no_journal)?;
        let (client, downloader, simulator) = upstream_client(&self.upstream).await?;
        // Opened last: a start refused for its settings leaves nothing behind on disk.
        let journal = self.journal.open(self.upstream.simulate).await;
        let jobs = JobService::new(client, downloader, journal, self.wait.policy(), media)
            .with_models(self.upstream.models())
            .with_limits(self.limits.limits());
        Ok(Serve {
            server: RunComfyServer::new(jobs, self.mcp.structured_content),
            http,
            _simulator: simulator,
        })
    }
}

impl GenerateSettings {
    /// The job service for a shell: images saved to `--out`, no previews, and the local files
    /// named on the command line (`input_dirs`: their directories) readable as reference images.
    /// Also returns the in-process simulator, if any, to keep alive while it runs.
    pub async fn build(self, input_dirs: &[String]) -> anyhow::Result<(JobService, Option<Simulator>)> {
        let media = MediaOptions {
            inputs: InputOptions::new(input_dirs, self.input_max_mb * 1024 * 1024).map_err(anyhow::Error::msg)?,
            // Relative to where the command was typed, which is what a person means (no warning).
            output_dir: Some(
                OutputDir::prepare(&std::path::absolute(&self.out)?.to_string_lossy()).map_err(anyhow::Error::msg)?,
            ),
            previews: false,
            ..MediaOptions::default()
        };
        self.journal.check()?;
        self.limits.check_with_journal(self.journal.no_journal)?;
        let (client, downloader, simulator) = upstream_client(&self.upstream).await?;
        let journal = self.journal.open(self.upstream.simulate).await;
        let jobs = JobService::new(client, downloader, journal, self.wait.policy(), media)
            .with_models(self.upstream.models())
            .with_limits(self.limits.limits());
        Ok((jobs, simulator))
    }
}

/// The upstream client, pointed at RunComfy or, with `--simulate`, at a simulator started here,
/// and the client for its result files: public `https` addresses only, plus the upstream's own
/// origin when that is on this machine (the simulator, a loopback `--base-url`).
async fn upstream_client(args: &UpstreamArgs) -> anyhow::Result<(Arc<Client>, Downloader, Option<Simulator>)> {
    let (config, simulator) = if args.simulate {
        let simulator = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default()).await?;
        tracing::info!(url = %simulator.base_url(), "using the built-in simulator (no RunComfy traffic, no token needed)");
        let token = ApiToken::new("simulator").expect("a non-empty literal");
        (
            args.client_config(Some(token), Some(simulator.base_url()))?,
            Some(simulator),
        )
    } else {
        (args.client_config(token_from_env(), None)?, None)
    };
    let policy = AddressPolicy::for_upstream(&config.base_url);
    if policy.allows_local_upstream() {
        tracing::info!(base_url = %config.base_url, "result files may also come from the local upstream itself");
    }
    let downloader = Downloader::new(policy).map_err(anyhow::Error::msg)?;
    let client = Client::new(config).map_err(anyhow::Error::msg)?;
    Ok((Arc::new(client), downloader, simulator))
}
