//! `POST /oauth/token`: codes and refresh tokens for tokens (OAuth 2.1 §3.2). A code is good once,
//! for the client it was given to, with the exact redirect URI and the PKCE verifier of its
//! challenge; a code presented a second time revokes what the first one got. A refresh token is
//! good once too: each use gives a new one (rotation), and a used one presented again revokes
//! the grant. Tokens are only for this server's MCP endpoint (`resource`, RFC 8707).

use std::collections::HashMap;

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Form, Json,
};
use serde_json::json;

use super::{
    now, seconds, secrets,
    store::{Issued, Redeemed},
    OAuth,
};

pub(super) async fn token(State(oauth): State<OAuth>, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(resource) = field("resource") {
        if resource.trim_end_matches('/') != oauth.resource() {
            return refused("invalid_target", "tokens here are only for this server's MCP endpoint");
        }
    }
    match field("grant_type") {
        Some("authorization_code") => {
            let (Some(code), Some(verifier), Some(client_id), Some(redirect_uri)) = (
                field("code"),
                field("code_verifier"),
                field("client_id"),
                field("redirect_uri"),
            ) else {
                return refused(
                    "invalid_request",
                    "code, code_verifier, client_id and redirect_uri are required",
                );
            };
            exchange_code(&oauth, code, verifier, client_id, redirect_uri).await
        }
        Some("refresh_token") => {
            let (Some(refresh), Some(client_id)) = (field("refresh_token"), field("client_id")) else {
                return refused("invalid_request", "refresh_token and client_id are required");
            };
            refresh_tokens(&oauth, refresh, client_id).await
        }
        _ => refused(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

async fn exchange_code(oauth: &OAuth, code: &str, verifier: &str, client_id: &str, redirect_uri: &str) -> Response {
    let hash = secrets::stored(code);
    let redeemed = match oauth.store(move |s| s.redeem_code(&hash, now())).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let (code, grant) = match redeemed {
        Redeemed::Fresh(found) => found,
        Redeemed::Reused => {
            tracing::warn!(client = client_id, "a code was presented twice: its grant is revoked");
            return refused(
                "invalid_grant",
                "this code was already used; the tokens it gave are revoked",
            );
        }
        Redeemed::Unknown => return refused("invalid_grant", "the code is unknown or expired"),
    };
    let problem = if code.client_id != client_id {
        Some("the code was issued to another client")
    } else if code.redirect_uri != redirect_uri {
        Some("redirect_uri is not the one the code was issued for")
    } else if !secrets::pkce_matches(verifier, &code.code_challenge) {
        Some("code_verifier does not match the code_challenge")
    } else {
        None
    };
    if let Some(why) = problem {
        // The code is used up either way; its grant, never redeemed, goes with it.
        let grant_id = grant.grant_id;
        if let Err(e) = oauth.store(move |s| s.delete_grant(&grant_id)).await {
            tracing::warn!(error = %e, "a refused code's grant could not be deleted; it expires unredeemed");
        }
        tracing::warn!(client = client_id, why, "a code exchange was refused");
        return refused("invalid_grant", why);
    }
    let (issued, answer) = new_tokens(oauth);
    let grant_id = grant.grant_id;
    match oauth.store(move |s| s.issue(&grant_id, &issued)).await {
        Ok(()) => answer,
        Err(e) => unavailable(&e),
    }
}

async fn refresh_tokens(oauth: &OAuth, refresh: &str, client_id: &str) -> Response {
    let hash = secrets::stored(refresh);
    let (issued, answer) = new_tokens(oauth);
    let client = client_id.to_owned();
    let refreshed = oauth.store(move |s| s.refresh(&hash, &client, &issued, now())).await;
    match refreshed {
        Ok(Redeemed::Fresh(_)) => answer,
        Ok(Redeemed::Reused) => {
            tracing::warn!(
                client = client_id,
                "a used refresh token was presented again: its grant is revoked"
            );
            refused(
                "invalid_grant",
                "this refresh token was already used; the connection is revoked",
            )
        }
        Ok(Redeemed::Unknown) => refused("invalid_grant", "the refresh token is unknown, expired or revoked"),
        Err(e) => unavailable(&e),
    }
}

/// A new access and refresh token, and the answer that hands them out.
fn new_tokens(oauth: &OAuth) -> (Issued, Response) {
    let access = secrets::new_secret(secrets::ACCESS_PREFIX);
    let refresh = secrets::new_secret(secrets::REFRESH_PREFIX);
    let now = now();
    let issued = Issued {
        access_hash: secrets::stored(&access),
        access_expires_at: now + seconds(oauth.0.access_ttl),
        refresh_hash: secrets::stored(&refresh),
        refresh_expires_at: now + seconds(oauth.0.refresh_ttl),
    };
    let body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": oauth.0.access_ttl.as_secs(),
        "refresh_token": refresh,
    });
    (issued, no_store(StatusCode::OK, Json(body)))
}

fn no_store(status: StatusCode, body: impl IntoResponse) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        body,
    )
        .into_response()
}

fn refused(error: &str, why: &str) -> Response {
    no_store(
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": why})),
    )
}

fn unavailable(e: &crate::journal::StoreError) -> Response {
    tracing::warn!(error = %e, "the sign-in store is unavailable");
    no_store(
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "temporarily_unavailable", "error_description": "try again shortly"})),
    )
}
