//! The cap on live MCP sessions, shared by Streamable HTTP and the legacy SSE transport: each
//! session holds a server task, channels and buffers, so an unbounded number of them is a way to
//! exhaust the process. A session takes a permit when it is created and gives it back when it
//! ends, whichever way it ends (closed by the client, idle expiry, shutdown).
//!
//! rmcp's `LocalSessionManager` has no cap, so [`BudgetedSessions`] wraps any `SessionManager`
//! and refuses to create a session past the cap.

use std::{collections::HashMap, sync::Arc};

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use futures::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::{
        common::server_side_http::ServerSseMessage,
        streamable_http_server::{SessionId, SessionManager},
    },
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::session_owners::SessionOwners;

/// How many sessions may be live at once, across both HTTP transports.
#[derive(Debug, Clone)]
pub struct SessionBudget {
    permits: Arc<Semaphore>,
    max: usize,
}

impl SessionBudget {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A permit for one more session, or `None` when the cap is reached.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    pub fn is_full(&self) -> bool {
        self.permits.available_permits() == 0
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// The answer to a client that would open one session too many.
pub fn too_many_sessions(max: usize) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "10")],
        format!("Service Unavailable: the server already has its maximum of {max} sessions; try again later"),
    )
        .into_response()
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError<E: std::error::Error> {
    #[error("the server already has its maximum of {0} sessions; close one or try again later")]
    Full(usize),
    #[error(transparent)]
    Inner(E),
}

/// A session manager that takes a [`SessionBudget`] permit per session, and forgets the
/// session's owner ([`SessionOwners`]) when it ends.
pub struct BudgetedSessions<M> {
    inner: M,
    budget: SessionBudget,
    permits: std::sync::Mutex<HashMap<SessionId, OwnedSemaphorePermit>>,
    owners: SessionOwners,
}

impl<M> BudgetedSessions<M> {
    pub(crate) fn new(inner: M, budget: SessionBudget, owners: SessionOwners) -> Self {
        Self {
            inner,
            budget,
            permits: Default::default(),
            owners,
        }
    }

    fn release(&self, id: &SessionId) {
        self.permits.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        self.owners.forget(id);
    }
}

impl<M: SessionManager> SessionManager for BudgetedSessions<M> {
    type Error = BudgetError<M::Error>;
    type Transport = M::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let permit = self.budget.try_acquire().ok_or(BudgetError::Full(self.budget.max()))?;
        let (id, transport) = self.inner.create_session().await.map_err(BudgetError::Inner)?;
        self.permits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), permit);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner
            .initialize_session(id, message)
            .await
            .map_err(BudgetError::Inner)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await.map_err(BudgetError::Inner)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        let closed = self.inner.close_session(id).await.map_err(BudgetError::Inner);
        self.release(id);
        closed
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await.map_err(BudgetError::Inner)
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await.map_err(BudgetError::Inner)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner
            .create_standalone_stream(id)
            .await
            .map_err(BudgetError::Inner)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await.map_err(BudgetError::Inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_run_out_and_come_back() {
        let budget = SessionBudget::new(2);
        let a = budget.try_acquire().expect("first");
        let _b = budget.try_acquire().expect("second");
        assert!(budget.is_full());
        assert!(budget.try_acquire().is_none());
        drop(a);
        assert!(!budget.is_full());
        assert!(budget.try_acquire().is_some());
    }
}
