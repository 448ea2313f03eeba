//! Who may ask for a grant: clients registered here by dynamic registration (RFC 7591, kept in the
//! store), and clients whose id is the https URL of their own metadata document (Client ID
//! Metadata Documents, which the MCP specification and Claude's directory prefer). A metadata
//! document's URL is chosen by a stranger, so fetching it is an outbound request under the
//! download policy ([`crate::media::address`]: https only, public addresses only, checked at
//! every redirect and after DNS), bounded in size and time, and cached.
//!
//! Every client is public (PKCE, no secret): the token endpoint authenticates no one, and a
//! registration asking for a secret is given `none` instead, as RFC 7591 §3.2.1 allows.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use reqwest::Url;
use serde::Deserialize;

use super::store::RegisteredClient;
use crate::media::{
    download::{download_json, Limits},
    Downloader,
};

/// A metadata document is a few hundred bytes; this bounds what a hostile host can make us read.
const DOCUMENT_MAX_BYTES: u64 = 16 * 1024;
/// ... and how long it can make us wait.
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document is used before it is fetched again.
const CACHE_TTL: Duration = Duration::from_secs(600);
/// Documents remembered at once; past it the cache starts over.
const CACHE_MAX: usize = 256;
/// Redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 10;
const MAX_NAME_CHARS: usize = 100;

/// What a client sends to register, or its metadata document holds (the members we use).
#[derive(Debug, Deserialize)]
pub(crate) struct ClientMetadata {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub response_types: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
}

impl ClientMetadata {
    /// The client these metadata describe, under `client_id`; `Err` says what is wrong
    /// (RFC 7591's `invalid_redirect_uri` or `invalid_client_metadata`, and why).
    pub(crate) fn client(self, client_id: String) -> Result<RegisteredClient, (&'static str, String)> {
        if self.redirect_uris.is_empty() || self.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err((
                "invalid_redirect_uri",
                format!("redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs"),
            ));
        }
        for uri in &self.redirect_uris {
            redirect_uri_acceptable(uri).map_err(|why| ("invalid_redirect_uri", format!("{uri}: {why}")))?;
        }
        if let Some(types) = &self.grant_types {
            if !types.iter().any(|t| t == "authorization_code") {
                return Err((
                    "invalid_client_metadata",
                    "grant_types must include authorization_code (the only grant this server gives, with refresh_token)"
                        .to_owned(),
                ));
            }
        }
        if let Some(types) = &self.response_types {
            if !types.iter().any(|t| t == "code") {
                return Err(("invalid_client_metadata", "response_types must include code".to_owned()));
            }
        }
        let name = self
            .client_name
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_NAME_CHARS)
                    .collect::<String>()
            })
            .filter(|n| !n.trim().is_empty());
        Ok(RegisteredClient {
            client_id,
            client_name: name,
            redirect_uris: self.redirect_uris,
        })
    }
}

/// Where an authorization may be sent back to: an https URL, an http one on this machine (a
/// native app's loopback listener, RFC 8252 §7.3), or a private-use scheme (`cursor://…`, RFC
/// 8252 §7.1); never with a fragment, never a scheme that runs script.
pub(crate) fn redirect_uri_acceptable(uri: &str) -> Result<(), &'static str> {
    let url = Url::parse(uri).map_err(|_| "not an absolute URI")?;
    if url.fragment().is_some() {
        return Err("a redirect URI cannot have a fragment");
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" => match url.host_str() {
            Some("localhost" | "127.0.0.1" | "[::1]") => Ok(()),
            _ => Err("plain http is allowed only on loopback (127.0.0.1, [::1], localhost)"),
        },
        "javascript" | "data" | "vbscript" | "file" | "blob" | "about" | "ftp" | "ws" | "wss" => {
            Err("not a scheme an authorization can be sent to")
        }
        // A private-use scheme names an app on the person's device.
        _ => Ok(()),
    }
}

/// Why a client cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("this client is not registered here (its registration may have been removed): register it again")]
    Unknown,
    #[error("the client's metadata document at {url} cannot be used: {why}")]
    Document { url: String, why: String },
}

/// Clients by id, with the documents fetched for URL ids.
pub(crate) struct ClientDocuments {
    downloader: Downloader,
    cache: Mutex<HashMap<String, (Instant, RegisteredClient)>>,
}

impl ClientDocuments {
    /// `test_origin`: a loopback origin (`http://127.0.0.1:PORT`) whose documents may be fetched
    /// too; only tests set it.
    pub(crate) fn new(test_origin: Option<&str>) -> Result<Self, String> {
        let policy = match test_origin {
            Some(origin) => crate::media::AddressPolicy::for_upstream(origin),
            None => crate::media::AddressPolicy::public_only(),
        };
        Ok(Self {
            downloader: Downloader::new(policy)?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `client_id` is a metadata document's URL rather than a registered id (a plain
    /// http one too: the download policy refuses it, saying why).
    pub(crate) fn is_document_id(client_id: &str) -> bool {
        client_id.starts_with("https://") || client_id.starts_with("http://")
    }

    /// The client whose metadata document is at `url`: from the cache, else fetched and checked.
    pub(crate) async fn client(&self, url: &str) -> Result<RegisteredClient, ClientError> {
        if let Some((at, client)) = self.lock().get(url) {
            if at.elapsed() < CACHE_TTL {
                return Ok(client.clone());
            }
        }
        let refused = |why: String| ClientError::Document {
            url: crate::text::ellipsis(url, 200),
            why,
        };
        let parsed = Url::parse(url).map_err(|_| refused("not a URL".into()))?;
        // The specification's rules for a client id URL: a path, no fragment, no credentials.
        if parsed.path() == "/" || parsed.fragment().is_some() || !parsed.username().is_empty() {
            return Err(refused(
                "a client id URL needs a path, and no fragment or credentials".into(),
            ));
        }
        let limits = Limits {
            max_bytes: DOCUMENT_MAX_BYTES,
            timeout: DOCUMENT_TIMEOUT,
        };
        let body = download_json(&self.downloader, url, limits)
            .await
            .map_err(|e| refused(e.to_string()))?;
        let metadata: ClientMetadata =
            serde_json::from_slice(&body).map_err(|e| refused(format!("not a client metadata document ({e})")))?;
        if metadata.client_id.as_deref() != Some(url) {
            return Err(refused("its client_id is not its own URL".into()));
        }
        if metadata
            .token_endpoint_auth_method
            .as_deref()
            .is_some_and(|m| m != "none")
        {
            return Err(refused(
                "this server signs in public clients only (token_endpoint_auth_method none)".into(),
            ));
        }
        let client = metadata.client(url.to_owned()).map_err(|(_, why)| refused(why))?;
        let mut cache = self.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(url.to_owned(), (Instant::now(), client.clone()));
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, RegisteredClient)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_an_apps_own_scheme() {
        for good in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost:8080/cb",
            "http://[::1]:9/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ] {
            assert_eq!(redirect_uri_acceptable(good), Ok(()), "{good}");
        }
        for bad in [
            "http://evil.example/cb",
            "https://claude.ai/cb#frag",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/relative",
        ] {
            assert!(redirect_uri_acceptable(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registration_metadata_is_checked() {
        let meta = |json: &str| serde_json::from_str::<ClientMetadata>(json).unwrap();
        let ok = meta(r#"{"redirect_uris":["http://127.0.0.1:5/cb"],"client_name":"Test\u0007 app","token_endpoint_auth_method":"client_secret_post"}"#)
            .client("id".into())
            .unwrap();
        assert_eq!(ok.client_name.as_deref(), Some("Test app"));
        assert_eq!(
            meta(r#"{"redirect_uris":[]}"#).client("id".into()).unwrap_err().0,
            "invalid_redirect_uri"
        );
        assert_eq!(
            meta(r#"{"redirect_uris":["http://a.example/cb"]}"#)
                .client("id".into())
                .unwrap_err()
                .0,
            "invalid_redirect_uri"
        );
        assert_eq!(
            meta(r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#)
                .client("id".into())
                .unwrap_err()
                .0,
            "invalid_client_metadata"
        );
    }
}
