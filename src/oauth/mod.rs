//! Sign-in with OAuth 2.1 (`--oauth`), for the hosts that only take remote servers that sign
//! people in: claude.ai, ChatGPT and their connector directories. The server is the protected
//! resource (RFC 9728, [`metadata`]) and its own authorization server (RFC 8414): clients
//! register by Client ID Metadata Documents or dynamic registration ([`clients`],
//! [`register`]); a person authorizes one on the consent page ([`authorize`], [`consent`],
//! [`page`]) with their RunComfy API key, which is checked upstream once and kept sealed in the
//! grant ([`seal`]); the client redeems the code with PKCE S256 for short-lived access tokens
//! and rotating refresh tokens ([`token`]), which it can revoke ([`revoke`]); the person can
//! disconnect every client at once ([`disconnect`]).
//!
//! A request to `/mcp` with an access token ([`identify`]) becomes the same [`Caller`] a
//! per-user-key request with that person's key becomes — their key pays, their journal rows,
//! tasks and sessions are theirs alone — plus the limits they chose. Nothing a client sends is
//! forwarded upstream: the access token stays here, and RunComfy only ever sees the person's key.
//! Grants and tokens live in the journal's database ([`store`]), by digest ([`secrets`]), so
//! replicas sharing PostgreSQL share them.

mod authorize;
mod clients;
pub mod company;
mod consent;
mod disconnect;
mod identify;
mod jwt;
mod metadata;
mod page;
mod pending;
mod queries;
mod register;
mod revoke;
mod seal;
mod secrets;
pub mod settings;
mod store;
mod token;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::{
    routing::{get, post},
    Router,
};

pub use identify::identify;

use self::{clients::ClientDocuments, seal::Seal, store::GrantStore};
use crate::{
    jobs::{Caller, Owners},
    journal::{Limits, StoreError},
    runcomfy::Client,
};

/// Connections of the sign-in store's own pool on a shared PostgreSQL database.
const POOL_SIZE: u32 = 4;
/// How long a code may wait to be redeemed.
const CODE_TTL: Duration = Duration::from_secs(300);
/// How long the consent page may stay open before its form is too old to take.
const CONSENT_TTL: Duration = Duration::from_secs(1800);

/// Sign-in's state, shared by every route. Cheap to clone.
#[derive(Clone)]
pub struct OAuth(Arc<Inner>);

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("issuer", &self.0.issuer.get())
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// The public base URL, without a trailing slash: the issuer, and with `/mcp` the resource.
    issuer: OnceLock<String>,
    store: Arc<dyn GrantStore>,
    seal: Seal,
    owners: Owners,
    /// Checks a person's key with one catalogue read (their key, the server's model).
    upstream: Arc<Client>,
    /// The operator's limits: the consent page's defaults and ceilings.
    operator_limits: Limits,
    /// The operator's `--confirm-above-usd`: the consent page's default and ceiling for a
    /// person's own threshold.
    operator_confirm_above_usd: Option<f64>,
    documents: ClientDocuments,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

/// What [`OAuth::new`] is built from.
pub struct OAuthParts {
    /// Set by `--public-url`; else the listening address, once known ([`OAuth::listening_at`]).
    pub public_url: Option<String>,
    pub owners: Owners,
    pub upstream: Arc<Client>,
    pub operator_limits: Limits,
    pub operator_confirm_above_usd: Option<f64>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Tests only: a loopback origin whose client metadata documents may be fetched.
    pub test_document_origin: Option<String>,
}

impl OAuth {
    /// Sign-in with its grants in the journal's SQLite file `file_name` in `dir`.
    /// The journal opens the file first (and migrates, or repairs, it); this store is its own
    /// connection to it (WAL lets the journal's and this one share the file).
    pub fn with_sqlite(parts: OAuthParts, dir: &std::path::Path, file_name: &str) -> Result<Self, String> {
        let (store, _path) = crate::journal::location::open_in(dir, file_name)?;
        Self::new(parts, Arc::new(store))
    }

    /// Sign-in with its grants in the journal's PostgreSQL database at `url`, which replicas
    /// share: a grant made through one is honoured by all.
    /// This store is a small pool of its own on the journal's database, which it needs only
    /// when called.
    pub fn with_postgres(parts: OAuthParts, url: &str) -> Result<Self, String> {
        let store = crate::journal::postgres::PgStore::lazily(url, "runcomfy-mcp oauth", POOL_SIZE)
            .map_err(|e| e.to_string())?;
        Self::new(parts, Arc::new(store))
    }

    fn new(parts: OAuthParts, store: Arc<dyn GrantStore>) -> Result<Self, String> {
        let issuer = OnceLock::new();
        if let Some(url) = parts.public_url {
            let _ = issuer.set(url.trim_end_matches('/').to_owned());
        }
        Ok(Self(Arc::new(Inner {
            issuer,
            store,
            seal: Seal::new(parts.owners.derived_key(seal::PURPOSE)),
            owners: parts.owners,
            upstream: parts.upstream,
            operator_limits: parts.operator_limits,
            operator_confirm_above_usd: parts.operator_confirm_above_usd,
            documents: ClientDocuments::new(parts.test_document_origin.as_deref())?,
            access_ttl: parts.access_ttl,
            refresh_ttl: parts.refresh_ttl,
        })))
    }

    /// Without `--public-url`, the server names itself by the address it listens on (`base`,
    /// `http://127.0.0.1:PORT`), known once it listens.
    pub fn listening_at(&self, base: &str) {
        let _ = self.0.issuer.set(base.trim_end_matches('/').to_owned());
    }

    /// The issuer identifier (RFC 8414): the public base URL.
    pub fn issuer(&self) -> &str {
        self.0.issuer.get().map(String::as_str).unwrap_or("http://127.0.0.1")
    }

    /// The protected resource (RFC 8707): the MCP endpoint's URL, which tokens are bound to.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.issuer())
    }

    /// Where the protected resource metadata is (RFC 9728 §3.1, the resource's path appended).
    fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.issuer())
    }

    /// Runs a store call off the async runtime.
    async fn store<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn GrantStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = Arc::clone(&self.0.store);
        tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .unwrap_or_else(|e| Err(StoreError::Panicked(format!("the sign-in store call: {e}"))))
    }

    /// The caller a grant stands for: its person's key, opened, their limits and their confirm
    /// threshold.
    fn caller(&self, grant: &store::Grant) -> Option<Caller> {
        let key = self.0.seal.open(&grant.sealed_key, &grant.grant_id)?;
        let key = crate::runcomfy::ApiToken::new(String::from_utf8(key).ok()?)?;
        Some(
            self.0
                .owners
                .caller(key)
                .with_limits(grant.limits)
                .with_confirm_above_usd(grant.confirm_above_usd),
        )
    }
}

/// Seconds since the epoch: what the store keeps times in.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The sign-in routes: metadata, registration, authorization and consent, tokens, revocation,
/// and the person's disconnect page. Outside the MCP routes' bearer check; behind the same
/// Host/Origin guards and body limit as every other route.
pub fn router(oauth: OAuth) -> Router {
    Router::new()
        .route("/.well-known/oauth-protected-resource", get(metadata::resource))
        .route("/.well-known/oauth-protected-resource/mcp", get(metadata::resource))
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route("/oauth/register", post(register::register))
        .route("/oauth/authorize", get(authorize::start).post(consent::answer))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(revoke::revoke))
        .route("/oauth/disconnect", get(disconnect::page).post(disconnect::disconnect))
        .with_state(oauth)
}
