//! `--per-user-keys`: every MCP request carries its caller's own RunComfy API key, which this
//! guard turns into a [`Caller`] (the key, and its keyed hash as the owner of the caller's
//! jobs) in the request's extensions, for the MCP handler to pass to the job service. A request
//! without a key is answered 401 here, before any MCP processing.
//!
//! The key travels in its own header, `X-RunComfy-Api-Key`, always. When the server has no
//! `--auth-token` of its own, `Authorization: Bearer <key>` is read as the key too, for clients
//! that can only send a bearer; with an `--auth-token` the bearer is the server's own credential
//! (checked by [`super::guards`]) and never a RunComfy key. The key is forwarded to RunComfy for
//! this caller's calls only, never logged and never stored (see docs/http-and-teams.md).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    jobs::{Caller, Owners},
    runcomfy::ApiToken,
};

/// The header that carries a caller's RunComfy key.
pub const KEY_HEADER: &str = "x-runcomfy-api-key";

/// How requests carry their keys, and how keys become owners.
#[derive(Debug, Clone)]
pub struct PerUserKeys {
    pub owners: Owners,
    /// No `--auth-token`: a bearer is the caller's RunComfy key.
    pub bearer_is_key: bool,
}

impl PerUserKeys {
    /// The caller of a request with these headers; `None` when it carries no key.
    fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let own_header = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok());
        let bearer = || {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, key)| key)
        };
        let raw = own_header.or_else(|| self.bearer_is_key.then(bearer).flatten())?;
        ApiToken::new(raw).map(|key| self.owners.caller(key))
    }

    fn missing(&self) -> Response {
        let how = if self.bearer_is_key {
            "send yours as `X-RunComfy-Api-Key: <key>` (or `Authorization: Bearer <key>`)"
        } else {
            "send yours as `X-RunComfy-Api-Key: <key>`, next to the server's own token in `Authorization`"
        };
        let mut response = (
            StatusCode::UNAUTHORIZED,
            format!(
                "Unauthorized: this server runs every job with the RunComfy API key of the person who asks for it, and this request carried none: {how}. Your key is on the RunComfy dashboard under API Keys."
            ),
        )
            .into_response();
        let challenge = if self.bearer_is_key {
            r#"Bearer realm="runcomfy-mcp""#
        } else {
            r#"X-RunComfy-Api-Key realm="runcomfy-mcp""#
        };
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        response
    }
}

/// The axum middleware in front of the MCP routes: the caller into the request's extensions, or
/// 401. Never logs the key (the owner's short hash at most).
pub async fn identify(State(keys): State<Arc<PerUserKeys>>, mut request: Request, next: Next) -> Response {
    match keys.caller(request.headers()) {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => {
            tracing::warn!(
                path = request.uri().path(),
                "request refused: no RunComfy key (--per-user-keys)"
            );
            keys.missing()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bearer_is_key: bool) -> PerUserKeys {
        PerUserKeys {
            owners: Owners::new(b"a test secret of some length"),
            bearer_is_key,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_key_comes_from_its_header_or_from_the_bearer_only_without_a_server_token() {
        let open = keys(true);
        let alice = open.owners.owner_of(&ApiToken::new("rc-alice").unwrap());
        let by_header = open.caller(&headers(&[(KEY_HEADER, "rc-alice")])).unwrap();
        assert_eq!(by_header.owner(), &alice);
        let by_bearer = open.caller(&headers(&[("authorization", "Bearer rc-alice")])).unwrap();
        assert_eq!(by_bearer.owner(), &alice);
        // Both: the header wins.
        let both = open
            .caller(&headers(&[
                (KEY_HEADER, "rc-alice"),
                ("authorization", "Bearer rc-bob"),
            ]))
            .unwrap();
        assert_eq!(both.owner(), &alice);
        assert!(open.caller(&headers(&[(KEY_HEADER, "  ")])).is_none(), "blank is none");
        assert!(open.caller(&HeaderMap::new()).is_none());

        // With a server token, the bearer is the server's credential, not a RunComfy key.
        let guarded = keys(false);
        assert!(guarded
            .caller(&headers(&[("authorization", "Bearer the-servers-own-token")]))
            .is_none());
        assert!(guarded.caller(&headers(&[(KEY_HEADER, "rc-alice")])).is_some());
        assert_eq!(guarded.missing().status(), StatusCode::UNAUTHORIZED);
    }
}
