//! The `runcomfy-mcp` command: `serve` (the MCP server; the default), `simulate` (the fake
//! RunComfy API on its own).

use std::{io::IsTerminal, net::SocketAddr, sync::Arc};

use clap::{Parser, Subcommand};
use runcomfy_mcp::{
    config::{self, UpstreamArgs, WaitSettings},
    mcp::RunComfyServer,
    runcomfy::{ApiToken, Client},
    simulator::{SimConfig, Simulator},
    transport::{
        self,
        settings::{TransportArgs, TransportKind},
    },
};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "runcomfy-mcp",
    version,
    about = "MCP server for Dreamina 4.0 text-to-image on RunComfy"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve MCP over stdio (what MCP clients start; the default command) or HTTP (`--transport http`).
    Serve(ServeArgs),
    /// Run the fake RunComfy API alone, for trying clients and tests against it.
    Simulate(SimulateArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    #[command(flatten)]
    wait: WaitSettings,
    #[command(flatten)]
    transport: TransportArgs,
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    /// Address to listen on. Loopback by default: the simulator has no authentication of its own.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Queue position a new job starts at.
    #[arg(long, default_value_t = SimConfig::default().initial_queue_position)]
    initial_queue_position: u32,
    /// Milliseconds for a job to move up one place in the queue.
    #[arg(long, default_value_t = SimConfig::default().queue_step_ms)]
    queue_step_ms: u64,
    /// Milliseconds a job spends in progress.
    #[arg(long, default_value_t = SimConfig::default().run_ms)]
    run_ms: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logging();
    let cli = Cli::parse();
    let outcome = match cli.command.unwrap_or(Command::Serve(ServeArgs::parse_default())) {
        Command::Serve(args) => serve(args).await,
        Command::Simulate(args) => simulate(args).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("runcomfy-mcp: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

impl ServeArgs {
    /// `runcomfy-mcp` with no subcommand means `serve` with its defaults (and environment).
    fn parse_default() -> Self {
        #[derive(Parser)]
        struct Bare {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Bare::parse_from(["runcomfy-mcp"]).serve
    }
}

/// Logs go to stderr only: in stdio mode stdout belongs to JSON-RPC.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("runcomfy_mcp=info,warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Checked before anything starts, so a refused setting costs nothing.
    let http = match args.transport.transport {
        TransportKind::Stdio => None,
        TransportKind::Http => Some(args.transport.http_settings()?),
    };
    // Keep the in-process simulator alive for as long as the server runs.
    let (client, _simulator) = upstream_client(&args.upstream).await?;
    let server = RunComfyServer::new(client, args.wait.server_options());
    match http {
        None => transport::stdio::serve(server).await,
        Some(settings) => transport::http::serve(server, settings).await,
    }
}

/// The upstream client, pointed at RunComfy or, with `--simulate`, at a simulator started here.
async fn upstream_client(args: &UpstreamArgs) -> anyhow::Result<(Arc<Client>, Option<Simulator>)> {
    let (config, simulator) = if args.simulate {
        let simulator = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default()).await?;
        tracing::info!(url = %simulator.base_url(), "using the built-in simulator (no RunComfy traffic, no token needed)");
        let token = ApiToken::new("simulator").expect("a non-empty literal");
        (
            args.client_config(Some(token), Some(simulator.base_url()))?,
            Some(simulator),
        )
    } else {
        (args.client_config(config::token_from_env(), None)?, None)
    };
    let client = Client::new(config).map_err(anyhow::Error::msg)?;
    Ok((Arc::new(client), simulator))
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        queue_step_ms: args.queue_step_ms,
        run_ms: args.run_ms,
        ..SimConfig::default()
    };
    let simulator = Simulator::start(SocketAddr::new(args.host, args.port), config).await?;
    // Printed to stdout on purpose: this is not the stdio transport, and scripts read the URL.
    println!("{}", simulator.base_url());
    tracing::info!(url = %simulator.base_url(), "simulator listening; Ctrl-C to stop");
    simulator.run_until_ctrl_c().await;
    Ok(())
}
