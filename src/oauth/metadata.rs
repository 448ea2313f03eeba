//! The two documents a client reads before it signs anyone in: the protected resource metadata
//! (RFC 9728), naming this server as the resource's authorization server, and the authorization
//! server metadata (RFC 8414), naming the endpoints and what they support — PKCE S256 only,
//! public clients only, Client ID Metadata Documents, and `iss` in every authorization response
//! (RFC 9207).

use axum::{extract::State, Json};
use serde_json::{json, Value};

use super::OAuth;

pub(super) async fn resource(State(oauth): State<OAuth>) -> Json<Value> {
    Json(json!({
        "resource": oauth.resource(),
        "authorization_servers": [oauth.issuer()],
        "bearer_methods_supported": ["header"],
        "resource_name": "RunComfy image generation (runcomfy-mcp)",
    }))
}

pub(super) async fn authorization_server(State(oauth): State<OAuth>) -> Json<Value> {
    let issuer = oauth.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "registration_endpoint": format!("{issuer}/oauth/register"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{issuer}/"),
    }))
}
