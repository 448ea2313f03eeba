//! `GET /oauth/authorize`: the authorization request (OAuth 2.1 §4.1.1). A request whose client
//! or redirect URI cannot be trusted is answered here with an error page, never sent anywhere
//! (RFC 6749 §4.1.2.1); other faults go back to the client's redirect URI with `error`, `state`
//! and `iss`. PKCE S256 and the `resource` (RFC 8707, this server's MCP endpoint) are required.
//! A good request gets the consent page.

use axum::{
    extract::{Query, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    clients::{ClientDocuments, ClientError},
    page,
    pending::Pending,
    secrets,
    store::RegisteredClient,
    OAuth,
};

#[derive(Debug, Default, Deserialize)]
pub(super) struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    resource: Option<String>,
}

pub(super) async fn start(State(oauth): State<OAuth>, Query(query): Query<AuthorizeQuery>) -> Response {
    let Some(client_id) = query.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return page::problem(
            StatusCode::BAD_REQUEST,
            "The request names no client (client_id). Start connecting again from your app.",
        );
    };
    let client = match find_client(&oauth, client_id).await {
        Ok(client) => client,
        Err(e) => return page::problem(StatusCode::BAD_REQUEST, &format!("This app cannot sign in here: {e}.")),
    };
    let Some(redirect_uri) = query
        .redirect_uri
        .as_deref()
        .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
    else {
        tracing::warn!(
            client = client_id,
            "authorization refused: redirect_uri is not one the client registered"
        );
        return page::problem(
            StatusCode::BAD_REQUEST,
            "The app asked to be answered at an address (redirect_uri) it did not register. Nothing was sent to it.",
        );
    };
    let back = |error: &str, why: &str| error_redirect(&oauth, redirect_uri, query.state.as_deref(), error, why);
    if query.response_type.as_deref() != Some("code") {
        return back("unsupported_response_type", "only response_type=code is supported");
    }
    let challenge = match (&query.code_challenge, query.code_challenge_method.as_deref()) {
        (Some(c), Some("S256")) if secrets::is_s256_challenge(c) => c.clone(),
        _ => {
            return back(
                "invalid_request",
                "PKCE is required: code_challenge with code_challenge_method=S256",
            )
        }
    };
    let resource = oauth.resource();
    match query.resource.as_deref() {
        Some(r) if r.trim_end_matches('/') == resource => {}
        Some(_) => return back("invalid_target", "tokens here are only for this server's MCP endpoint"),
        None => return back("invalid_target", "the resource parameter (RFC 8707) is required"),
    }
    let pending = Pending::new(
        client.client_id,
        client.client_name,
        redirect_uri.to_owned(),
        query.state,
        challenge,
        resource,
    );
    let mut response = page::consent(&oauth, &pending, None, None, StatusCode::OK);
    let secure = oauth.issuer().starts_with("https://");
    if let Ok(cookie) = HeaderValue::from_str(&pending.cookie(secure)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The client with this id: its metadata document's, or registered here.
pub(super) async fn find_client(oauth: &OAuth, client_id: &str) -> Result<RegisteredClient, ClientError> {
    if ClientDocuments::is_document_id(client_id) {
        return oauth.0.documents.client(client_id).await;
    }
    let id = client_id.to_owned();
    match oauth.store(move |s| s.client(&id)).await {
        Ok(Some(client)) => Ok(client),
        Ok(None) => Err(ClientError::Unknown),
        Err(e) => Err(ClientError::Document {
            url: "this server's store".to_owned(),
            why: e.to_string(),
        }),
    }
}

/// Back to the client with `params` added to its redirect URI, and `iss` (RFC 9207).
pub(super) fn redirect_with(oauth: &OAuth, redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = reqwest::Url::parse(redirect_uri) else {
        return page::problem(StatusCode::BAD_REQUEST, "The app's redirect address is not a URL.");
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        query.append_pair("iss", oauth.issuer());
    }
    // 303: the browser follows with a GET, whatever the request was (the consent form's POST).
    Redirect::to(url.as_str()).into_response()
}

/// An error sent back to the client (RFC 6749 §4.1.2.1), with its `state`.
pub(super) fn error_redirect(
    oauth: &OAuth,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    why: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", why)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    redirect_with(oauth, redirect_uri, &params)
}
