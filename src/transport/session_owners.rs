//! With `--per-user-keys`, a Streamable HTTP session belongs to the key that opened it, and only
//! that key may use it: post to it (requests, and notifications such as `notifications/cancelled`,
//! which would end the owner's call and cancel their job), open its `GET` stream, or `DELETE` it.
//! Any other caller gets exactly the answer an unknown session gets, so a session id alone (seen
//! in a log, guessed) never lets anyone act as its owner, nor tells them the session exists.
//!
//! The handler also checks each request against its session's owner (`mcp::caller`), but
//! notifications, streams and `DELETE` never reach it; this check, in front of rmcp, sees them all.
//! The legacy SSE transport checks its own sessions the same way (`legacy_sse`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{jobs::Caller, journal::Owner};

/// The header carrying the Streamable HTTP session id.
const SESSION_HEADER: &str = "mcp-session-id";

/// Each live session's owner, by session id. Sessions are forgotten when they end
/// (`BudgetedSessions` calls [`SessionOwners::forget`] whichever way they end).
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionOwners(Arc<Mutex<HashMap<Arc<str>, Owner>>>);

impl SessionOwners {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Owner>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bind(&self, id: &str, owner: Owner) {
        self.map().insert(id.into(), owner);
    }

    /// Whether `id` is a live session of `owner`'s (an unknown id is nobody's).
    fn belongs(&self, id: &str, owner: &Owner) -> bool {
        self.map().get(id).is_some_and(|bound| bound == owner)
    }

    pub(crate) fn forget(&self, id: &str) {
        self.map().remove(id);
    }
}

/// The axum middleware in front of `/mcp`, behind `per_user_keys::identify` (which has put the
/// caller in the request's extensions): a request naming a session passes only when the session
/// is the caller's; one that opens a session binds it to the caller.
pub(crate) async fn check(State(owners): State<SessionOwners>, request: Request, next: Next) -> Response {
    let Some(owner) = request.extensions().get::<Caller>().map(|c| c.owner().clone()) else {
        // identify answers 401 before this; reaching it means a route without that check.
        return unknown_session();
    };
    match request.headers().get(SESSION_HEADER) {
        Some(id) => {
            if !id.to_str().is_ok_and(|id| owners.belongs(id, &owner)) {
                tracing::warn!(
                    method = %request.method(),
                    caller = %owner,
                    "refused a request on a session that is not the caller's (answered as unknown)"
                );
                return unknown_session();
            }
            next.run(request).await
        }
        None => {
            let response = next.run(request).await;
            if let Some(id) = response.headers().get(SESSION_HEADER).and_then(|id| id.to_str().ok()) {
                owners.bind(id, owner);
            }
            response
        }
    }
}

/// rmcp's own answer to a session id it does not know, word for word.
fn unknown_session() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{jobs::Owners, runcomfy::ApiToken};

    #[test]
    fn a_session_belongs_to_its_owner_only_until_it_is_forgotten() {
        let owners_of = Owners::new(b"a test secret of some length");
        let alice = owners_of.owner_of(&ApiToken::new("rc-alice").unwrap());
        let bob = owners_of.owner_of(&ApiToken::new("rc-bob").unwrap());
        let sessions = SessionOwners::default();
        sessions.bind("s-1", alice.clone());
        assert!(sessions.belongs("s-1", &alice));
        assert!(!sessions.belongs("s-1", &bob));
        assert!(!sessions.belongs("s-2", &alice), "an unknown session is nobody's");
        sessions.forget("s-1");
        assert!(!sessions.belongs("s-1", &alice));
    }
}
