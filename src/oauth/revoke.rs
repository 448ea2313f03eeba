//! `POST /oauth/revoke` (RFC 7009): a client revokes a token it holds, access or refresh; the
//! whole grant goes with it — the person's sealed key and every token — so the connection is
//! gone, as the person who disconnects an app expects. Answered 200 whether or not the token
//! was known (RFC 7009 §2.2), so it tells an attacker nothing.

use std::collections::HashMap;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Form,
};

use super::{secrets, OAuth};

pub(super) async fn revoke(State(oauth): State<OAuth>, Form(form): Form<HashMap<String, String>>) -> Response {
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_request", "error_description": "token is required"})),
        )
            .into_response();
    };
    let hash = secrets::stored(token);
    match oauth.store(move |s| s.revoke(&hash)).await {
        Ok(found) => {
            if found {
                tracing::info!("a client revoked its connection");
            }
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "a revocation could not be recorded");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
