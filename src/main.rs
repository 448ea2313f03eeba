//! The `runcomfy-mcp` command: `serve` (the MCP server; the default), `generate` (one job from a
//! shell), `usage` (spending by day, from the job journal), `simulate` (the fake RunComfy API on
//! its own).

use std::{io::IsTerminal, net::SocketAddr};

use clap::{Parser, Subcommand};
use runcomfy_mcp::{
    config::{GenerateSettings, ServeArgs},
    dreamina::ImageRequest,
    runtime::{self, Flavor},
    simulator::{SimConfig, Simulator},
    transport::{self, settings::TransportKind},
};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "runcomfy-mcp",
    version,
    about = "MCP server for Dreamina 4.0 text-to-image and image editing on RunComfy"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

// Made once per process, from the command line: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Serve MCP over stdio (what MCP clients start; the default command) or HTTP (`--transport http`).
    // Boxed, as `generate`: each holds many settings, which would size every variant (clippy's
    // large_enum_variant).
    #[command(after_help = ENVIRONMENT_ONLY)]
    Serve(Box<ServeArgs>),
    /// Generate or edit an image from a shell: progress on stderr, saved file paths on stdout.
    #[command(after_help = ENVIRONMENT_ONLY)]
    Generate(Box<GenerateArgs>),
    /// Print jobs and spending per day (UTC) from this machine's job journal.
    #[command(after_help = ENVIRONMENT_ONLY)]
    Usage(UsageArgs),
    /// Run the fake RunComfy API alone, for trying clients and tests against it.
    Simulate(SimulateArgs),
}

/// Settings that have no flag, so that `--help` (and docs/configuration.md, made from it) names
/// them too: secrets stay off the command line, which every user of the machine sees in `ps`.
const ENVIRONMENT_ONLY: &str = "\
Environment only:
  RUNCOMFY_API_KEY  Your RunComfy API key (RUNCOMFY_API_TOKEN is read too), from the RunComfy dashboard; required unless --simulate. Never a flag: a command line is visible to every user of the machine
  RUST_LOG          What is logged, always to stderr (for example RUST_LOG=debug)";

#[derive(clap::Args, Debug)]
struct UsageArgs {
    /// How many days back to show, today included.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Report the built-in simulator's journal (the jobs of `serve --simulate`) instead.
    #[arg(long)]
    simulate: bool,
    #[command(flatten)]
    journal: runcomfy_mcp::journal::JournalArgs,
    #[command(flatten)]
    balance: runcomfy_mcp::runcomfy::settings::BalanceArgs,
}

#[derive(clap::Args, Debug)]
struct GenerateArgs {
    /// What the image should show (1 to 800 characters).
    prompt: String,
    /// Size, e.g. 2560x1440, 2560x1440(16:9) or 16:9. Left out: 2048x2048(1:1) from text, and
    /// for an edit whatever the edit model makes of its references.
    #[arg(long)]
    size: Option<String>,
    /// How strongly the prompt steers the result, 0 to 1.
    #[arg(long, default_value_t = runcomfy_mcp::dreamina::DEFAULT_SCALE)]
    scale: f64,
    /// Ask for exactly one image.
    #[arg(long)]
    force_single: bool,
    /// How many alternatives to make: that many jobs of the same request, each paid for
    /// (as the MCP tools' `count`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4))]
    count: u32,
    /// A reference image to edit or draw on (repeat for up to 10): a local file, an https://
    /// URL, or an earlier job's request_id or request_id#n. With it the job goes to Dreamina
    /// 4.0's edit endpoint.
    #[arg(long = "image", value_name = "IMAGE")]
    images: Vec<String>,
    #[command(flatten)]
    settings: GenerateSettings,
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
    /// The simulated price of one image, in US dollars (the catalogue's base_price_usd).
    #[arg(long, default_value_t = SimConfig::default().price_usd_per_image)]
    price_usd_per_image: f64,
    /// A simulated account balance in US dollars: each job is charged from it, and submits are
    /// answered HTTP 402 (error_code 400002) once it cannot pay. Unlimited when left out.
    #[arg(long)]
    balance_usd: Option<f64>,
}

fn main() -> std::process::ExitCode {
    runcomfy_mcp::jobs::limits::unset_blank_env();
    let cli = Cli::parse();
    // At a shell, info lines would scroll the progress spinner away: only warnings by default.
    let quiet = matches!(cli.command, Some(Command::Generate(_) | Command::Usage(_)));
    init_logging(if quiet { "warn" } else { "runcomfy_mcp=info,warn" });
    let command = cli.command.unwrap_or_else(|| Command::Serve(Box::new(default_serve())));
    let flavor = match &command {
        Command::Serve(args) if args.transport.transport == TransportKind::Stdio => Flavor::CurrentThread,
        Command::Serve(args) => Flavor::Workers(args.transport.worker_threads.into()),
        // A shell command waits on a few jobs: on one thread, every poll's answer is read where
        // it is awaited, instead of a worker waking the main thread for it.
        Command::Generate(_) | Command::Usage(_) => Flavor::CurrentThread,
        Command::Simulate(_) => Flavor::MultiThread,
    };
    let outcome = match runtime::build(flavor) {
        Ok(runtime) => runtime.block_on(async {
            match command {
                Command::Serve(args) => serve(*args).await,
                Command::Generate(args) => generate(*args).await,
                Command::Usage(args) => usage(args).await,
                Command::Simulate(args) => simulate(args).await,
            }
        }),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One plain line, not a log line besides it: at a shell the log repeated it.
            eprintln!("runcomfy-mcp: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `runcomfy-mcp` with no subcommand means `serve` with its defaults (and environment).
fn default_serve() -> ServeArgs {
    #[derive(Parser)]
    struct Bare {
        #[command(flatten)]
        serve: ServeArgs,
    }
    Bare::parse_from(["runcomfy-mcp"]).serve
}

/// Logs go to stderr only: in stdio mode stdout belongs to JSON-RPC.
fn init_logging(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A client may close our stderr. tracing would then report the failed write with
        // `eprintln!`, which panics on a broken pipe and would take the server down with it.
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// What a person who starts `serve` over stdio in a terminal sees: a server waiting in silence
/// looks hung. It names the command as they typed it, `--simulate` included.
fn terminal_hint(simulated: bool) -> String {
    let command = if simulated {
        "runcomfy-mcp serve --simulate"
    } else {
        "runcomfy-mcp serve"
    };
    format!(
        "{command} speaks MCP over stdio and is waiting for a client: attach one with the command `{command}` \
         (the README has each client's entry), or try it from the shell with \
         `runcomfy-mcp generate --simulate \"a lighthouse at dusk\"`. Ctrl-D ends it."
    )
}

async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    args.upstream.settle_simulation();
    let simulated = args.upstream.simulate;
    // Fields moved out one by one: the rest (the in-process simulator) lives until we return.
    let serve = args.build().await?;
    match serve.http {
        None => {
            // Clients start us with pipes; a terminal on stdin means a person, who gets one
            // line, on stderr (stdout stays JSON-RPC's even here).
            if std::io::stdin().is_terminal() {
                eprintln!("{}", terminal_hint(simulated));
            }
            transport::stdio::serve(serve.server).await
        }
        Some(settings) => {
            let journal = serve.server.journal().clone();
            let database: transport::http::DatabaseHealth = std::sync::Arc::new(move || {
                let journal = journal.clone();
                Box::pin(async move { journal.database_health().await })
            });
            transport::http::serve(serve.server, settings, database).await
        }
    }
}

async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    // The same parsing and rules as the MCP tool, so the shell and the model see the same errors.
    // Files named here are the user's own choice: their directories become readable for this run.
    let (images, input_dirs) = runcomfy_mcp::generate::local_images(&args.images)?;
    let mut arguments = serde_json::json!({
        "prompt": args.prompt, "scale": args.scale, "force_single": args.force_single, "images": images,
    });
    // Sent only when chosen, as the tools do.
    if let Some(size) = args.size {
        arguments["size"] = size.into();
    }
    let request: ImageRequest = serde_json::from_value(arguments).map_err(|e| anyhow::anyhow!("{e}"))?;
    request.validate()?;
    // Keep the in-process simulator alive for as long as the jobs run.
    let (jobs, _simulator) = args.settings.build(&input_dirs).await?;
    runcomfy_mcp::generate::run(&jobs, &request, args.count, |path| println!("{}", path.display())).await
}

async fn usage(args: UsageArgs) -> anyhow::Result<()> {
    let journal = args.journal.open(args.simulate).await;
    let balance = runcomfy_mcp::usage::balance(&args.balance, args.simulate).await?;
    print!("{}", runcomfy_mcp::usage::report(&journal, args.days, &balance).await?);
    Ok(())
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let config = SimConfig {
        initial_queue_position: args.initial_queue_position,
        queue_step_ms: args.queue_step_ms,
        run_ms: args.run_ms,
        price_usd_per_image: args.price_usd_per_image,
        balance_usd: args.balance_usd,
        ..SimConfig::default()
    };
    let simulator = Simulator::start(SocketAddr::new(args.host, args.port), config).await?;
    // Printed to stdout on purpose: this is not the stdio transport, and scripts read the URL.
    println!("{}", simulator.base_url());
    tracing::info!(url = %simulator.base_url(), "simulator listening; Ctrl-C to stop");
    simulator.run_until_ctrl_c().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
