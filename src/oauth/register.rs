//! Dynamic client registration (RFC 7591): a client sends its metadata and gets a client id. It
//! is a public client (no secret: PKCE protects its codes), whatever authentication it asked for.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use super::{clients::ClientMetadata, now, secrets, OAuth};

pub(super) async fn register(State(oauth): State<OAuth>, body: axum::body::Bytes) -> Response {
    let metadata: ClientMetadata = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return refused("invalid_client_metadata", &format!("not client metadata: {e}")),
    };
    let client = match metadata.client(secrets::new_secret(secrets::CLIENT_PREFIX)) {
        Ok(client) => client,
        Err((error, why)) => return refused(error, &why),
    };
    let issued_at = now();
    let saved = client.clone();
    if let Err(e) = oauth.store(move |s| s.save_client(&saved, issued_at)).await {
        tracing::warn!(error = %e, "client registration could not be saved");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the sign-in store is unavailable; try again",
        )
            .into_response();
    }
    tracing::info!(client = ?client.client_name, "registered an OAuth client");
    let mut answer = json!({
        "client_id": client.client_id,
        "client_id_issued_at": issued_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if let Some(name) = client.client_name {
        answer["client_name"] = name.into();
    }
    (StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

fn refused(error: &str, why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": why})),
    )
        .into_response()
}
