//! An authorization request waiting for the person's answer on the consent page. It travels in
//! the page's form, sealed ([`super::seal`]), so that it needs no table, cannot be changed on the
//! way, and any replica can take the answer. Its anti-forgery value is in it, in the form, and in
//! a cookie (`SameSite=Strict`) set with the page: an answer is taken only when all three agree,
//! so a form posted from another site, or without the value, is refused.

use serde::{Deserialize, Serialize};

use super::{now, seconds, OAuth, CONSENT_TTL};

/// The cookie that carries the anti-forgery value.
pub(super) const COOKIE: &str = "rcm_consent";
/// What the sealed request is sealed for (so that no other sealed value can pass as one).
const CONTEXT: &str = "consent request";

/// A checked authorization request: its client is known and its redirect URI is the client's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Pending {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub resource: String,
    pub csrf: String,
    pub expires_at: i64,
}

impl Pending {
    pub(super) fn new(
        client_id: String,
        client_name: Option<String>,
        redirect_uri: String,
        state: Option<String>,
        code_challenge: String,
        resource: String,
    ) -> Self {
        let csrf: [u8; 32] = rand::random();
        Self {
            client_id,
            client_name,
            redirect_uri,
            state,
            code_challenge,
            resource,
            csrf: csrf.iter().map(|b| format!("{b:02x}")).collect(),
            expires_at: now() + seconds(CONSENT_TTL),
        }
    }

    pub(super) fn seal(&self, oauth: &OAuth) -> String {
        let json = serde_json::to_vec(self).expect("a pending request serializes");
        oauth.0.seal.seal(&json, CONTEXT)
    }

    /// The request sealed in `sealed`, if it is one of ours and not too old.
    pub(super) fn open(oauth: &OAuth, sealed: &str) -> Option<Self> {
        let json = oauth.0.seal.open(sealed, CONTEXT)?;
        let pending: Self = serde_json::from_slice(&json).ok()?;
        (pending.expires_at >= now()).then_some(pending)
    }

    /// The `Set-Cookie` value that goes with the page.
    pub(super) fn cookie(&self, secure: bool) -> String {
        format!(
            "{COOKIE}={}; Path=/oauth; Max-Age={}; HttpOnly; SameSite=Strict{}",
            self.csrf,
            seconds(CONSENT_TTL),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// The anti-forgery cookie's value in a request's headers.
pub(super) fn cookie_value(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}
