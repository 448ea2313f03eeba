//! In front of the MCP routes with `--oauth`: a request's access token becomes its caller (the
//! person's key, owner and limits), or the request is answered 401 with the `WWW-Authenticate`
//! challenge that sends a client to the protected resource metadata (RFC 9728 §5.1; RFC 6750
//! §3 for the error codes). A token is good only for this resource: one issued for another
//! (another `--public-url`) is refused like an expired or revoked one.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{now, secrets, OAuth};

pub async fn identify(State(oauth): State<OAuth>, mut request: Request, next: Next) -> Response {
    let Some(token) = bearer(&request) else {
        return challenge(&oauth, None);
    };
    let hash = secrets::stored(&token);
    let look_up = || {
        let hash = hash.clone();
        oauth.store(move |s| s.grant_for_access(&hash, now()))
    };
    // Once more after a failure: a read of the shared store can fail once while another
    // process holds it (the 503 first blamed on this was the session cap, filled by a test).
    let grant = match look_up().await {
        Ok(grant) => Ok(grant),
        Err(e) => {
            tracing::debug!(error = %e, "an access token check failed; trying once more");
            look_up().await
        }
    };
    let grant = match grant {
        Ok(grant) => grant,
        Err(e) => {
            tracing::warn!(error = %e, "an access token could not be checked");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the sign-in store is unavailable; try again shortly",
            )
                .into_response();
        }
    };
    let caller = grant
        .filter(|grant| grant.resource == oauth.resource())
        .and_then(|grant| oauth.caller(&grant));
    match caller {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => {
            tracing::info!(
                path = request.uri().path(),
                "request refused: unknown, expired or revoked access token"
            );
            challenge(
                &oauth,
                Some("the access token is unknown, expired or revoked, or for another resource"),
            )
        }
    }
}

/// 401 with the challenge; `error`: why the token presented is not good (none presented: none).
fn challenge(oauth: &OAuth, error: Option<&str>) -> Response {
    let body = format!(
        "Unauthorized: this server signs people in with OAuth. Add it to your MCP client as a remote server ({}) and sign in when asked; the sign-in page asks for your RunComfy API key once.\n",
        oauth.resource()
    );
    unauthorized(&oauth.resource_metadata_url(), error, body)
}

/// The bearer token a request presents, if any.
pub(super) fn bearer(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

/// 401 with `body` and the challenge naming the resource metadata at `metadata` (RFC 9728
/// §5.1); `error`: why the token presented is not good (none presented: none).
pub(super) fn unauthorized(metadata: &str, error: Option<&str>, body: String) -> Response {
    let value = match error {
        Some(why) => format!(
            r#"Bearer error="invalid_token", error_description="{}", resource_metadata="{metadata}""#,
            why.replace('"', "'")
        ),
        None => format!(r#"Bearer resource_metadata="{metadata}""#),
    };
    let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    // Answered before the request's body was read, so the connection cannot carry another
    // request; said, or the client's pool reuses it for its discovery requests and one of them
    // is cut off ("Server disconnected without sending a response", seen here once in seven).
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
