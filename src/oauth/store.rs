//! What sign-in keeps: registered clients, grants (a person's sealed RunComfy key, their limits
//! and confirm threshold, the client and resource it was given to), one-time authorization
//! codes, and access and refresh tokens, all by digest ([`super::secrets::stored`]). Kept in
//! the journal's database (the SQLite file, or the PostgreSQL database replicas share), so that
//! every replica honours a grant another one made, and a revocation anywhere is a revocation
//! everywhere.
//!
//! [`GrantStore`] is the interface; the statements are shared by both databases, written as the
//! journal's migrations are (`{prefix}` and `?N`, for [`crate::journal::sql::Dialect::render`]),
//! and the tables are the journal's migration 5 (and 6, the grant's confirm threshold). The
//! logic around them is written once too, in [`super::queries`], over the journal's own
//! connections and transactions. Calls block: the caller runs them off the async runtime.

use crate::journal::{Limits, Owner, StoreError};

pub(crate) const INSERT_CLIENT: &str =
    "INSERT INTO {prefix}oauth_clients (client_id, client_name, redirect_uris, created_at) VALUES (?1, ?2, ?3, ?4)";
pub(crate) const SELECT_CLIENT: &str =
    "SELECT client_id, client_name, redirect_uris FROM {prefix}oauth_clients WHERE client_id = ?1";
pub(crate) const INSERT_GRANT: &str =
    "INSERT INTO {prefix}oauth_grants (grant_id, owner, client_id, resource, sealed_key, \
     max_spend_usd_per_day, max_jobs_per_hour, created_at, confirm_above_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
pub(crate) const INSERT_CODE: &str = "INSERT INTO {prefix}oauth_codes (code_hash, grant_id, client_id, redirect_uri, \
     code_challenge, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// Read locked (`{lock_row}`): two replicas never redeem one code twice.
pub(crate) const SELECT_CODE: &str = "SELECT grant_id, client_id, redirect_uri, code_challenge, expires_at, used_at \
     FROM {prefix}oauth_codes WHERE code_hash = ?1{lock_row}";
pub(crate) const USE_CODE: &str = "UPDATE {prefix}oauth_codes SET used_at = ?1 WHERE code_hash = ?2";
pub(crate) const SELECT_GRANT: &str = "SELECT grant_id, owner, client_id, resource, sealed_key, \
     max_spend_usd_per_day, max_jobs_per_hour, confirm_above_usd FROM {prefix}oauth_grants WHERE grant_id = ?1";
pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO {prefix}oauth_tokens (token_hash, grant_id, kind, expires_at) VALUES (?1, ?2, ?3, ?4)";
pub(crate) const SELECT_TOKEN: &str =
    "SELECT grant_id, kind, expires_at, used_at FROM {prefix}oauth_tokens WHERE token_hash = ?1";
/// [`SELECT_TOKEN`] read locked, for a write: two replicas never rotate one refresh token twice.
pub(crate) const SELECT_TOKEN_LOCKED: &str =
    "SELECT grant_id, kind, expires_at, used_at FROM {prefix}oauth_tokens WHERE token_hash = ?1{lock_row}";
pub(crate) const USE_TOKEN: &str = "UPDATE {prefix}oauth_tokens SET used_at = ?1 WHERE token_hash = ?2";
pub(crate) const DELETE_GRANT: [&str; 3] = [
    "DELETE FROM {prefix}oauth_tokens WHERE grant_id = ?1",
    "DELETE FROM {prefix}oauth_codes WHERE grant_id = ?1",
    "DELETE FROM {prefix}oauth_grants WHERE grant_id = ?1",
];
pub(crate) const SELECT_OWNER_GRANTS: &str = "SELECT grant_id FROM {prefix}oauth_grants WHERE owner = ?1";
/// Forgotten: tokens and codes past their time, then grants with neither a live token nor a code
/// still to be redeemed (a consent whose code was never exchanged).
pub(crate) const PRUNE: [&str; 3] = [
    "DELETE FROM {prefix}oauth_tokens WHERE expires_at < ?1",
    "DELETE FROM {prefix}oauth_codes WHERE expires_at < ?1",
    "DELETE FROM {prefix}oauth_grants WHERE created_at < ?1 \
     AND grant_id NOT IN (SELECT grant_id FROM {prefix}oauth_tokens) \
     AND grant_id NOT IN (SELECT grant_id FROM {prefix}oauth_codes)",
];

/// A client registered by dynamic registration (RFC 7591), or read from its metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegisteredClient {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
}

/// What a person allowed one client: their RunComfy key (sealed), the resource the tokens are
/// for, their limits, and the spend above which they want to be asked first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grant {
    pub grant_id: String,
    pub owner: Owner,
    pub client_id: String,
    pub resource: String,
    pub sealed_key: String,
    pub limits: Limits,
    /// Their own `--confirm-above-usd` (journal migration 6); `None`: the server's.
    pub confirm_above_usd: Option<f64>,
}

/// An authorization code, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Code {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: i64,
}

/// A pair of tokens to record, by digest.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub access_hash: String,
    pub access_expires_at: i64,
    pub refresh_hash: String,
    pub refresh_expires_at: i64,
}

/// How redeeming a code (or a refresh token) went.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Redeemed<T> {
    /// Good, now used up.
    Fresh(T),
    /// Used before: an attacker may hold it, so the grant is revoked (RFC 6749 §4.1.2; OAuth 2.1
    /// refresh token rotation).
    Reused,
    /// Unknown, expired, or revoked.
    Unknown,
}

pub(crate) const ACCESS: &str = "access";
pub(crate) const REFRESH: &str = "refresh";

pub(crate) trait GrantStore: Send + Sync + 'static {
    fn save_client(&self, client: &RegisteredClient, now: i64) -> Result<(), StoreError>;
    fn client(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError>;
    /// Records a grant and the code that redeems it, together.
    fn begin_grant(&self, grant: &Grant, code: &Code, now: i64) -> Result<(), StoreError>;
    /// Uses up the code: the code and its grant the first time.
    fn redeem_code(&self, code_hash: &str, now: i64) -> Result<Redeemed<(Code, Grant)>, StoreError>;
    /// Records the first tokens of a grant.
    fn issue(&self, grant_id: &str, tokens: &Issued) -> Result<(), StoreError>;
    /// Uses up a refresh token of `client_id`'s and records its successors, together. Another
    /// client's refresh token is `Unknown` and left as it is (it proves nothing, and must not
    /// burn the rightful client's).
    fn refresh(
        &self,
        refresh_hash: &str,
        client_id: &str,
        tokens: &Issued,
        now: i64,
    ) -> Result<Redeemed<Grant>, StoreError>;
    /// The grant of a live access token.
    fn grant_for_access(&self, access_hash: &str, now: i64) -> Result<Option<Grant>, StoreError>;
    /// Deletes a grant, its sealed key and all its tokens.
    fn delete_grant(&self, grant_id: &str) -> Result<(), StoreError>;
    /// Deletes the grant a token (access or refresh) belongs to; false when none does.
    fn revoke(&self, token_hash: &str) -> Result<bool, StoreError>;
    /// Deletes every grant of `owner` (the person disconnecting); how many there were.
    fn revoke_owner(&self, owner: &Owner) -> Result<usize, StoreError>;
    /// Forgets what has expired; grants older than `grant_cutoff` with nothing live go too.
    fn prune(&self, now: i64, grant_cutoff: i64) -> Result<(), StoreError>;
}

/// `["a","b"]` as stored.
pub(crate) fn uris_to_text(uris: &[String]) -> String {
    serde_json::to_string(uris).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn uris_from_text(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Limits as stored (`None` is no limit).
pub(crate) fn limits_from(spend: Option<f64>, jobs: Option<i64>) -> Limits {
    Limits {
        max_spend_usd_per_day: spend,
        max_jobs_per_hour: jobs.and_then(|n| u32::try_from(n).ok()),
    }
}
