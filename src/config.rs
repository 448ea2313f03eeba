//! Gathers each module's flags into the commands' settings, and builds what they describe. Every
//! flag group lives with its module (`runcomfy::settings`, `jobs::settings`, `media::settings`,
//! `mcp::settings`, `journal::settings`, `transport::settings`); this only puts them together, in
//! an order that leaves nothing behind when a setting is refused.

use std::{net::SocketAddr, sync::Arc};

use clap::Args;

use crate::{
    jobs::{owners, JobService, LimitArgs, Owners, WaitArgs},
    journal::{location, JournalArgs},
    mcp::{McpArgs, RunComfyServer},
    media::{
        inputs::{InputOptions, DEFAULT_INPUT_MAX_BYTES},
        AddressPolicy, Downloader, MediaArgs, MediaOptions, OutputDir,
    },
    oauth::{settings::OAuthArgs, OAuth, OAuthParts},
    runcomfy::{settings::token_from_env, ApiToken, BalanceReader, Client, UpstreamArgs},
    simulator::{SimConfig, Simulator},
    transport::{
        guards::{HostRule, OriginRule},
        per_user_keys::PerUserKeys,
        settings::{HttpSettings, TransportArgs, TransportKind},
    },
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
    /// Boxed: `serve`'s flags would otherwise outweigh every other command's by far.
    #[command(flatten)]
    pub oauth: Box<OAuthArgs>,
}

/// The HTTP settings with `--oauth`: sign-in is the authentication, so the server may listen
/// beyond loopback without a token, and its public address is an allowed Host and Origin (the
/// consent form posts from it).
fn oauth_http_settings(transport: &TransportArgs, oauth: &OAuthArgs) -> anyhow::Result<HttpSettings> {
    let mode = if oauth.oauth { "--oauth" } else { "--oauth-issuer" };
    if transport.auth_token.is_some() {
        anyhow::bail!("{mode} and --auth-token (RUNCOMFY_MCP_AUTH_TOKEN) are two ways to authenticate: use one");
    }
    if transport.per_user_keys {
        anyhow::bail!("{mode} and --per-user-keys are two ways to say who pays for each person's jobs: use one");
    }
    let mut settings = TransportArgs {
        allow_remote_without_auth: true,
        ..transport.clone()
    }
    .http_settings()?;
    if let Some(url) = oauth.public_url(transport.host.is_loopback())? {
        let url = reqwest::Url::parse(&url)?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        settings.guards.hosts.push(HostRule::Host {
            host: host.clone(),
            port: url.port(),
        });
        settings.guards.origins.push(OriginRule::Origin {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port_or_known_default(),
        });
    }
    Ok(settings)
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
    /// The company mode's state: the provider's issuer, the audience (by default the resource,
    /// so --public-url or --oauth-audience must say it), its key set, and each person's limits.
    fn company(&self, owners: Owners) -> anyhow::Result<crate::oauth::company::Company> {
        let public_url = self.oauth.public_url(self.transport.host.is_loopback())?;
        let resource = public_url.as_ref().map(|u| format!("{u}/mcp"));
        if resource.is_none() && self.oauth.oauth_audience.is_none() {
            anyhow::bail!("--oauth-issuer needs the audience its tokens are for: set --oauth-audience, or --public-url (then the audience is {{public URL}}/mcp)");
        }
        let (issuer, audience, jwks_url) = self
            .oauth
            .company(resource.as_deref().unwrap_or_default())?
            .ok_or_else(|| anyhow::anyhow!("--oauth-issuer is empty"))?;
        crate::oauth::company::Company::new(crate::oauth::company::CompanyParts {
            issuer,
            audience,
            jwks_url,
            public_url,
            owners,
            limits: self.limits.limits(),
            test_jwks_origin: self.oauth.test_jwks_origin()?,
        })
        .map_err(anyhow::Error::msg)
    }

    pub async fn build(self) -> anyhow::Result<Serve> {
        // Checked before anything starts, so a refused setting costs nothing.
        let per_user_keys = self.transport.per_user_keys;
        let oauth = self.oauth.oauth;
        // Either way each caller brings their own RunComfy key, and the server needs none.
        let keyed = per_user_keys || oauth;
        // The company mode: people sign in elsewhere, the operator's key pays, and each person
        // is still an owner of their own.
        let company = self.oauth.oauth_issuer.is_some();
        let apart = keyed || company;
        let mut http = match self.transport.transport {
            TransportKind::Stdio if per_user_keys => anyhow::bail!(
                "--per-user-keys needs --transport http: over stdio there is one client, which starts the server with its own RUNCOMFY_API_KEY"
            ),
            TransportKind::Stdio if oauth => anyhow::bail!(
                "--oauth needs --transport http: people sign in to a server they reach over the network"
            ),
            TransportKind::Stdio if company => anyhow::bail!(
                "--oauth-issuer needs --transport http: people sign in to a server they reach over the network"
            ),
            TransportKind::Stdio => None,
            TransportKind::Http if oauth || company => Some(oauth_http_settings(&self.transport, &self.oauth)?),
            TransportKind::Http => Some(self.transport.http_settings()?),
        };
        if apart && self.journal.no_journal {
            anyhow::bail!(
                "{} keeps each person's jobs apart in the job journal: drop --no-journal (RUNCOMFY_NO_JOURNAL) to use it",
                if oauth { "--oauth" } else if company { "--oauth-issuer" } else { "--per-user-keys" }
            );
        }
        let mut media = self.media.options().map_err(anyhow::Error::msg)?;
        self.journal.check()?;
        // Uploads from the app view are kept beside the journal (nowhere with --no-journal and
        // no --state-dir, which keeps nothing on disk).
        if let Some(dir) = state_dir(&self.journal) {
            media.uploads = crate::media::uploads::Uploads::in_dir(dir.join("uploads"));
        }
        if let Ok(origin) = std::env::var(crate::media::host_files::TEST_ORIGIN_VAR) {
            media.host_file_policy = AddressPolicy::for_upstream(&origin);
            if media.host_file_policy.allows_local_upstream() {
                tracing::warn!(%origin, "test-only: files a host hands over may also come from this loopback origin");
            }
        }
        self.limits.check_with_journal(self.journal.no_journal)?;
        let test_origin = self.oauth.test_origin()?;
        let state_dir = self.journal.state_dir.clone().or_else(location::default_state_dir);
        let owners = match apart {
            true => Some(
                Owners::load(
                    std::env::var(owners::SECRET_VAR).ok(),
                    self.transport.owner_secret_file.as_deref(),
                    state_dir.as_deref(),
                )
                .map_err(anyhow::Error::msg)?,
            ),
            false => None,
        };
        if let (Some(http), Some(owners)) = (http.as_mut().filter(|_| per_user_keys), &owners) {
            http.per_user_keys = Some(std::sync::Arc::new(PerUserKeys {
                owners: owners.clone(),
                bearer_is_key: http.guards.token.is_none(),
            }));
        }
        let kept = simulator_jobs(&self.journal, self.upstream.simulate);
        let (client, balance, downloader, simulator) = upstream_client(&self.upstream, keyed, kept).await?;
        crate::jobs::check_models(&client, &self.upstream.models())
            .await
            .map_err(anyhow::Error::msg)?;
        // Opened last: a start refused for its settings leaves nothing behind on disk.
        let journal = self.journal.open(self.upstream.simulate).await;
        if let (Some(http), Some(owners), true) = (http.as_mut(), owners.clone(), oauth) {
            let parts = OAuthParts {
                public_url: self.oauth.public_url(self.transport.host.is_loopback())?,
                owners,
                upstream: Arc::clone(&client),
                operator_limits: self.limits.limits(),
                operator_confirm_above_usd: self.mcp.confirm_above_usd,
                access_ttl: self.oauth.access_ttl(),
                refresh_ttl: self.oauth.refresh_ttl(),
                test_document_origin: test_origin,
            };
            // Grants live where the journal does: the database replicas share, or its file.
            let signed_in = match self.journal.database_url() {
                Some(url) => OAuth::with_postgres(parts, url),
                None => {
                    let dir = state_dir.ok_or_else(|| {
                        anyhow::anyhow!(
                            "--oauth keeps its grants in the state directory: set --state-dir (RUNCOMFY_STATE_DIR)"
                        )
                    })?;
                    let file = if self.upstream.simulate {
                        location::SIMULATED_FILE_NAME
                    } else {
                        location::FILE_NAME
                    };
                    OAuth::with_sqlite(parts, &dir, file)
                }
            };
            http.oauth = Some(signed_in.map_err(anyhow::Error::msg)?);
        }
        if let (Some(http), Some(owners), true) = (http.as_mut(), &owners, company) {
            http.company = Some(self.company(owners.clone())?);
        }
        let mut jobs = JobService::new(client, downloader, journal, self.wait.policy(), media)
            .with_balance(balance)
            .with_models(self.upstream.models())
            .with_limits(self.limits.limits());
        if let Some(path) = catalogue_copy(&self.journal, self.upstream.simulate) {
            jobs = jobs.with_catalogue_copy(path);
        }
        Ok(Serve {
            server: RunComfyServer::new(jobs, self.mcp.structured_content)
                .with_per_user_keys(apart)
                .with_confirm_above_usd(self.mcp.confirm_above_usd),
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
        let kept = simulator_jobs(&self.journal, self.upstream.simulate);
        let (client, balance, downloader, simulator) = upstream_client(&self.upstream, false, kept).await?;
        crate::jobs::check_models(&client, &self.upstream.models())
            .await
            .map_err(anyhow::Error::msg)?;
        let journal = self.journal.open(self.upstream.simulate).await;
        let jobs = JobService::new(client, downloader, journal, self.wait.policy(), media)
            .with_balance(balance)
            .with_models(self.upstream.models())
            .with_limits(self.limits.limits());
        Ok((jobs, simulator))
    }
}

/// Where the model catalogue's copy is kept: the state directory, beside the journal (the
/// simulator's catalogue in a file of its own, as its journal is). With `--no-journal` and no
/// `--state-dir` nothing is written to the default state directory: the copy stays in memory, so
/// that one run's catalogue (another upstream's, say) never answers for the next.
fn catalogue_copy(journal: &crate::journal::JournalArgs, simulated: bool) -> Option<std::path::PathBuf> {
    if journal.no_journal && journal.state_dir.is_none() {
        return None;
    }
    let dir = journal
        .state_dir
        .clone()
        .or_else(crate::journal::location::default_state_dir)?;
    Some(dir.join(if simulated {
        "catalogue-simulated.json"
    } else {
        "catalogue.json"
    }))
}

/// The state directory this run may write to: none with `--no-journal` and no `--state-dir`.
fn state_dir(journal: &crate::journal::JournalArgs) -> Option<std::path::PathBuf> {
    if journal.no_journal && journal.state_dir.is_none() {
        return None;
    }
    journal
        .state_dir
        .clone()
        .or_else(crate::journal::location::default_state_dir)
}

/// Where the built-in simulator keeps its jobs across restarts: beside its journal, in the state
/// directory (nowhere with `--no-journal`, which keeps nothing on disk).
fn simulator_jobs(journal: &crate::journal::JournalArgs, simulated: bool) -> Option<std::path::PathBuf> {
    if !simulated || journal.no_journal {
        return None;
    }
    let dir = journal
        .state_dir
        .clone()
        .or_else(crate::journal::location::default_state_dir)?;
    Some(dir.join("simulator-jobs.jsonl"))
}

/// The upstream client, pointed at RunComfy or, with `--simulate`, at a simulator started here,
/// and the client for its result files: public `https` addresses only, plus the upstream's own
/// origin when that is on this machine (the simulator, a loopback `--base-url`). `per_user_keys`:
/// the client has no key of its own (each call brings its caller's). Also the reader of the
/// account balance, unless it is turned off (`--balance-base-url off`).
async fn upstream_client(
    args: &UpstreamArgs,
    per_user_keys: bool,
    kept_jobs: Option<std::path::PathBuf>,
) -> anyhow::Result<(Arc<Client>, Option<BalanceReader>, Downloader, Option<Simulator>)> {
    let (config, simulator) = if args.simulate {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let simulator = match &kept_jobs {
            Some(file) => Simulator::start_keeping_jobs(addr, SimConfig::default(), file).await?,
            None => Simulator::start(addr, SimConfig::default()).await?,
        };
        tracing::info!(url = %simulator.base_url(), "using the built-in simulator (no RunComfy traffic, no token needed)");
        let token = ApiToken::new("simulator").expect("a non-empty literal");
        (
            // With per-user keys the simulator sees each caller's key, as RunComfy would.
            args.client_config(
                (!per_user_keys).then_some(token),
                Some(simulator.base_url()),
                per_user_keys,
            )?,
            Some(simulator),
        )
    } else {
        (args.client_config(token_from_env(), None, per_user_keys)?, None)
    };
    let policy = AddressPolicy::for_upstream(&config.base_url);
    if policy.allows_local_upstream() {
        tracing::info!(base_url = %config.base_url, "result files may also come from the local upstream itself");
    }
    let downloader = Downloader::new(policy).map_err(anyhow::Error::msg)?;
    let balance = args
        .balance
        .base_url(Some(&config.base_url))?
        .map(|url| BalanceReader::new(&url, config.token.as_ref(), config.timeout))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let client = Client::new(config).map_err(anyhow::Error::msg)?;
    Ok((Arc::new(client), balance, downloader, simulator))
}
