//! The company mode (`--oauth-issuer`): this server is only a protected resource behind the
//! company's own identity provider, which signs people in and issues the access tokens (JWTs,
//! checked in [`super::jwt`]). No consent page and no RunComfy key per person: the operator's
//! key pays for every job. Each person — the token's `sub`, namespaced by its issuer — is an
//! owner of their own (a keyed hash, like a per-user key's), so they see only their own jobs,
//! and their daily limits are counted apart: the operator's limits apply to each person.

use std::sync::{Arc, OnceLock};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
    routing::get,
    Json, Router,
};
use serde_json::json;

use super::jwt::Verifier;
use crate::{
    jobs::{Caller, Owners},
    journal::Limits,
};

/// The company mode's state. Cheap to clone.
#[derive(Clone)]
pub struct Company(Arc<Inner>);

impl std::fmt::Debug for Company {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Company")
            .field("issuer", &self.0.verifier.issuer)
            .finish_non_exhaustive()
    }
}

struct Inner {
    verifier: Verifier,
    /// This server's public base URL; with `/mcp` the resource.
    base: OnceLock<String>,
    owners: Owners,
    /// The operator's limits, each person's own.
    limits: Limits,
}

/// What [`Company::new`] is built from.
pub struct CompanyParts {
    pub issuer: String,
    pub audience: String,
    /// `None`: found in the issuer's metadata.
    pub jwks_url: Option<String>,
    pub public_url: Option<String>,
    pub owners: Owners,
    pub limits: Limits,
    /// Tests only: a loopback origin the key set may be fetched from.
    pub test_jwks_origin: Option<String>,
}

impl Company {
    pub fn new(parts: CompanyParts) -> Result<Self, String> {
        let base = OnceLock::new();
        if let Some(url) = parts.public_url {
            let _ = base.set(url.trim_end_matches('/').to_owned());
        }
        let verifier = Verifier::new(
            parts.issuer,
            parts.audience,
            parts.jwks_url,
            parts.test_jwks_origin.as_deref(),
        )?;
        Ok(Self(Arc::new(Inner {
            verifier,
            base,
            owners: parts.owners,
            limits: parts.limits,
        })))
    }

    /// Without `--public-url`, the listening address names the resource once known.
    pub fn listening_at(&self, base: &str) {
        let _ = self.0.base.set(base.trim_end_matches('/').to_owned());
    }

    fn base(&self) -> &str {
        self.0.base.get().map(String::as_str).unwrap_or("http://127.0.0.1")
    }

    fn resource(&self) -> String {
        format!("{}/mcp", self.base())
    }

    fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base())
    }
}

/// In front of the MCP routes: a valid token becomes its person's caller; anything else a 401
/// with the challenge pointing at the protected resource metadata (RFC 9728 §5.1).
pub async fn identify(State(company): State<Company>, mut request: Request, next: Next) -> Response {
    let Some(token) = super::identify::bearer(&request) else {
        return challenge(&company, None);
    };
    match company.0.verifier.verify(&token, super::now()).await {
        Ok(person) => {
            let owner = company.0.owners.owner_of_person(&person.issuer, &person.subject);
            request
                .extensions_mut()
                .insert(Caller::person(owner).with_limits(company.0.limits));
            next.run(request).await
        }
        Err(why) => {
            tracing::info!(path = request.uri().path(), %why, "request refused: access token not accepted");
            challenge(&company, Some(&why))
        }
    }
}

fn challenge(company: &Company, error: Option<&str>) -> Response {
    let body = format!(
        "Unauthorized: this server signs people in through {}. Add it to your MCP client as a remote server ({}) and sign in with your company account when asked.\n",
        company.0.verifier.issuer,
        company.resource()
    );
    super::identify::unauthorized(&company.resource_metadata_url(), error, body)
}

/// The protected resource metadata (RFC 9728), naming the company's identity provider as the
/// resource's authorization server.
pub fn router(company: Company) -> Router {
    let metadata = |State(company): State<Company>| async move {
        Json(json!({
            "resource": company.resource(),
            "authorization_servers": [company.0.verifier.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "RunComfy image generation (runcomfy-mcp)",
        }))
    };
    Router::new()
        .route("/.well-known/oauth-protected-resource", get(metadata))
        .route("/.well-known/oauth-protected-resource/mcp", get(metadata))
        .with_state(company)
}
