//! Who a job-service call is for: the person whose jobs it may see and whose RunComfy key pays
//! for it. With one server-wide key (stdio, and HTTP by default) every call is
//! [`Caller::server`]: the single-user owner and the server's own key. With `--per-user-keys`
//! the HTTP transport makes a caller per request from the RunComfy key the request carries
//! ([`super::Owners::caller`]); the job service sends that key upstream for that call only and
//! records and reads the journal as its owner, so nobody sees, follows or pays for another
//! person's jobs.

use std::{fmt, future::Future};

use super::StatusSource;
use crate::{
    journal::{Limits, Owner},
    runcomfy::{ApiError, ApiToken, CancelResponse, Client, RequestId, ResultResponse, StatusResponse},
};

#[derive(Clone)]
pub struct Caller {
    owner: Owner,
    /// `None`: the server's own key.
    key: Option<ApiToken>,
    /// The person's own spend and rate limits (an OAuth grant's); `None`: the server's.
    limits: Option<Limits>,
    /// The spend above which this person wants to be asked first (an OAuth grant's); `None`:
    /// the server's `--confirm-above-usd`.
    confirm_above_usd: Option<f64>,
}

impl Caller {
    /// The server's own key, and the single-user owner.
    pub fn server() -> Self {
        Self {
            owner: Owner::single(),
            key: None,
            limits: None,
            confirm_above_usd: None,
        }
    }

    /// A caller with a RunComfy key of their own; `owner` is that key's keyed hash.
    pub(super) fn with_key(owner: Owner, key: ApiToken) -> Self {
        Self {
            owner,
            key: Some(key),
            limits: None,
            confirm_above_usd: None,
        }
    }

    /// A person signed in through a company's identity provider (`owner` names them): their
    /// jobs are theirs alone, and the server's own key pays.
    pub(crate) fn person(owner: Owner) -> Self {
        Self {
            owner,
            key: None,
            limits: None,
            confirm_above_usd: None,
        }
    }

    /// This caller's submits are checked against `limits` instead of the server's (a person who
    /// signed in with OAuth chose their own on the consent page).
    pub(crate) fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// This person asks to confirm any call that may cost more than `usd` (chosen on the
    /// consent page; `None`: the server's setting).
    pub(crate) fn with_confirm_above_usd(mut self, usd: Option<f64>) -> Self {
        self.confirm_above_usd = usd;
        self
    }

    /// The person's own confirm threshold, when they chose one.
    pub(crate) fn confirm_above_usd(&self) -> Option<f64> {
        self.confirm_above_usd
    }

    /// The limits this caller's submits are checked against, when they are their own.
    pub(crate) fn limits(&self) -> Option<&Limits> {
        self.limits.as_ref()
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The key for this caller's upstream calls; `None`: the server's own.
    pub fn key(&self) -> Option<&ApiToken> {
        self.key.as_ref()
    }

    /// Whether this caller sees only their own jobs (they brought their own key, or signed in
    /// as a person of their own): by-id calls are checked against the journal before anything
    /// goes upstream.
    pub fn is_keyed(&self) -> bool {
        self.key.is_some() || self.owner != Owner::single()
    }
}

impl fmt::Debug for Caller {
    /// The owner's short hash only: never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Caller({})", self.owner)
    }
}

/// The RunComfy client as one caller's wait polls it: every status and cancel with their key.
pub(super) struct CallerClient<'a> {
    client: &'a Client,
    key: Option<&'a ApiToken>,
}

impl<'a> CallerClient<'a> {
    pub(super) fn new(client: &'a Client, caller: &'a Caller) -> Self {
        Self {
            client,
            key: caller.key(),
        }
    }
}

impl StatusSource for CallerClient<'_> {
    fn status(&self, id: &RequestId) -> impl Future<Output = Result<StatusResponse, ApiError>> + Send {
        self.client.status(self.key, id)
    }

    fn result(&self, id: &RequestId) -> impl Future<Output = Result<ResultResponse, ApiError>> + Send {
        self.client.result(self.key, id)
    }

    fn cancel(&self, id: &RequestId) -> impl Future<Output = Result<CancelResponse, ApiError>> + Send {
        self.client.cancel(self.key, id)
    }
}
