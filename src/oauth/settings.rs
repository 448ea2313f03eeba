//! `serve`'s sign-in flags, and their checks before anything listens.

use std::time::Duration;

use clap::Args;

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "OAuth sign-in")]
pub struct OAuthArgs {
    /// HTTP: people sign in with OAuth 2.1 (what claude.ai, ChatGPT and their connector
    /// directories need): this server is the protected resource and its own authorization
    /// server. On its consent page each person gives their RunComfy API key once; it is checked
    /// with RunComfy, kept encrypted in the job journal's database, and pays for their jobs only.
    /// Excludes --auth-token and --per-user-keys; needs the journal.
    #[arg(long, env = "RUNCOMFY_MCP_OAUTH")]
    pub oauth: bool,

    /// HTTP, with --oauth: the https address people and clients reach this server at
    /// (https://mcp.example.com, behind TLS). It names the OAuth issuer, and {URL}/mcp is the
    /// resource tokens are bound to [default: http://HOST:PORT, when listening on loopback].
    #[arg(long, env = "RUNCOMFY_MCP_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// HTTP, with --oauth: how long an access token lasts, in seconds; clients refresh it.
    #[arg(long, env = "RUNCOMFY_MCP_OAUTH_ACCESS_TOKEN_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub oauth_access_token_secs: u64,

    /// HTTP, with --oauth: how long a refresh token lasts unused, in days (each use gives a new one).
    #[arg(long, env = "RUNCOMFY_MCP_OAUTH_REFRESH_TOKEN_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=365))]
    pub oauth_refresh_token_days: u64,

    /// HTTP, the company mode: people sign in with the company's identity provider at this
    /// issuer URL (https), whose access tokens (JWTs) this server checks; it is only the
    /// protected resource. The operator's RUNCOMFY_API_KEY pays; each person sees only their
    /// own jobs and has the daily limits (--max-spend-usd-per-day, --max-jobs-per-hour) to
    /// themselves. Excludes --oauth, --auth-token and --per-user-keys; needs the journal.
    #[arg(
        long,
        env = "RUNCOMFY_MCP_OAUTH_ISSUER",
        value_name = "URL",
        conflicts_with = "oauth"
    )]
    pub oauth_issuer: Option<String>,

    /// HTTP, with --oauth-issuer: the audience (`aud`) the provider's tokens must be for
    /// [default: the resource, {public URL}/mcp].
    #[arg(
        long,
        env = "RUNCOMFY_MCP_OAUTH_AUDIENCE",
        value_name = "AUD",
        requires = "oauth_issuer"
    )]
    pub oauth_audience: Option<String>,

    /// HTTP, with --oauth-issuer: where the provider publishes its signing keys (JWKS, https)
    /// [default: the jwks_uri of the issuer's metadata (OpenID Connect discovery, then RFC 8414),
    /// else {issuer}/.well-known/jwks.json].
    #[arg(
        long,
        env = "RUNCOMFY_MCP_OAUTH_JWKS_URL",
        value_name = "URL",
        requires = "oauth_issuer"
    )]
    pub oauth_jwks_url: Option<String>,

    /// Tests only: the provider's key set may also be fetched from this loopback origin.
    /// Hidden; refused for anything but loopback.
    #[arg(long, hide = true)]
    pub oauth_test_jwks_origin: Option<String>,

    /// Tests only: client metadata documents may also be fetched from this loopback origin
    /// (http://127.0.0.1:PORT). Hidden; refused for anything but loopback.
    #[arg(long, hide = true)]
    pub oauth_test_client_metadata_origin: Option<String>,
}

impl OAuthArgs {
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.oauth_access_token_secs)
    }

    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.oauth_refresh_token_days * 86_400)
    }

    /// The public URL, checked: https, or http on loopback; no path, query or fragment. `None`
    /// when not set. `listening_on_loopback`: without it, it must be set.
    pub fn public_url(&self, listening_on_loopback: bool) -> anyhow::Result<Option<String>> {
        let Some(raw) = self.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            if !listening_on_loopback {
                anyhow::bail!("--oauth on an address other than loopback needs --public-url (RUNCOMFY_MCP_PUBLIC_URL): the https address people reach this server at, e.g. https://mcp.example.com");
            }
            return Ok(None);
        };
        let url = reqwest::Url::parse(raw).map_err(|e| anyhow::anyhow!("--public-url {raw:?} is not a URL ({e})"))?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            anyhow::bail!("--public-url must be an https URL (plain http only on loopback): OAuth sends codes and tokens through it");
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            anyhow::bail!("--public-url is the server's base address, without a path (the MCP endpoint is its /mcp)");
        }
        Ok(Some(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The company mode's issuer, audience and key set URL, when it is on. `resource`: the
    /// resource's URL, the default audience.
    pub fn company(&self, resource: &str) -> anyhow::Result<Option<(String, String, Option<String>)>> {
        let Some(issuer) = self.oauth_issuer.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let issuer = issuer.to_owned();
        reqwest::Url::parse(&issuer).map_err(|e| anyhow::anyhow!("--oauth-issuer {issuer:?} is not a URL ({e})"))?;
        let audience = self.oauth_audience.clone().unwrap_or_else(|| resource.to_owned());
        let jwks = self.oauth_jwks_url.clone();
        if let Some(jwks) = &jwks {
            reqwest::Url::parse(jwks).map_err(|e| anyhow::anyhow!("--oauth-jwks-url {jwks:?} is not a URL ({e})"))?;
        }
        Ok(Some((issuer, audience, jwks)))
    }

    /// The test-only key set origin, refused unless it is on loopback.
    pub fn test_jwks_origin(&self) -> anyhow::Result<Option<String>> {
        let Some(origin) = &self.oauth_test_jwks_origin else {
            return Ok(None);
        };
        if !crate::media::AddressPolicy::for_upstream(origin).allows_local_upstream() {
            anyhow::bail!("--oauth-test-jwks-origin must be a loopback origin");
        }
        Ok(Some(origin.clone()))
    }

    /// The test-only origin, refused unless it is on loopback.
    pub fn test_origin(&self) -> anyhow::Result<Option<String>> {
        let Some(origin) = &self.oauth_test_client_metadata_origin else {
            return Ok(None);
        };
        if !crate::media::AddressPolicy::for_upstream(origin).allows_local_upstream() {
            anyhow::bail!("--oauth-test-client-metadata-origin must be a loopback origin");
        }
        Ok(Some(origin.clone()))
    }
}
