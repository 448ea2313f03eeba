//! Whose request this is, as the handler sees it. With one server-wide key every request is
//! [`Caller::server`]'s. With per-user keys the HTTP transport has already turned the request's
//! RunComfy key into a [`Caller`] (or answered 401) and put it in the HTTP request's extensions,
//! which rmcp hands on as `http::request::Parts` (the legacy SSE transport puts it on each
//! message itself); this reads it there.
//!
//! A session belongs to the key that opened it: each session has its own clone of the handler,
//! and the first request (`initialize`) binds that clone to its caller's owner. A later request on
//! the session with another key is refused, so that a session id alone (seen in a log, guessed)
//! never lets anyone act as the person who opened it. In stateless mode every request is its own
//! handler clone, so each is checked alone.

use std::sync::OnceLock;

use axum::http::request::Parts;
use rmcp::{
    handler::server::{common::FromContextPart, tool::ToolCallContext},
    model::Extensions,
    ErrorData,
};

use super::RunComfyServer;
use crate::{jobs::Caller, journal::Owner};

/// A tool's `caller: Caller` parameter: the caller `call_tool` resolved and put in the request's
/// extensions with per-user keys, else the server's (nothing is put there then, so that the
/// default path allocates nothing for it).
impl FromContextPart<ToolCallContext<'_, RunComfyServer>> for Caller {
    fn from_context_part(context: &mut ToolCallContext<'_, RunComfyServer>) -> Result<Self, ErrorData> {
        match context.request_context.extensions.remove::<Caller>() {
            Some(caller) => Ok(caller),
            None if !context.service.per_user_keys => Ok(Caller::server()),
            None => Err(ErrorData::internal_error(
                "the caller of this tool call was not resolved",
                None,
            )),
        }
    }
}

/// The owner a session's handler is bound to: set by its first request. A clone of an unbound
/// handler (a new session's) starts unbound.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionOwner(OnceLock<Owner>);

impl RunComfyServer {
    /// The caller of the request with these extensions; `Err` when per-user keys are on and the
    /// request carries none, or carries another key than the one its session was opened with.
    pub(super) fn caller(&self, extensions: &Extensions) -> Result<Caller, ErrorData> {
        if !self.per_user_keys {
            return Ok(Caller::server());
        }
        let caller = extensions
            .get::<Caller>()
            .or_else(|| {
                extensions
                    .get::<Parts>()
                    .and_then(|parts| parts.extensions.get::<Caller>())
            })
            .cloned()
            .ok_or_else(|| {
                // The transport answers 401 before this; reaching it means a route without the check.
                ErrorData::invalid_request(
                    "this server needs your RunComfy API key with every request (the X-RunComfy-Api-Key header)",
                    None,
                )
            })?;
        let bound = self.session_owner.0.get_or_init(|| caller.owner().clone());
        if bound != caller.owner() {
            tracing::warn!(session_owner = %bound, caller = %caller.owner(), "refused a request with another key than its session's");
            return Err(ErrorData::invalid_request(
                "this session was opened with another RunComfy API key: open a new session with this key",
                None,
            ));
        }
        Ok(caller)
    }
}
