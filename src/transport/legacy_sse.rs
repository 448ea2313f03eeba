//! The 2024-11-05 "HTTP+SSE" transport, which many clients still speak and rmcp no longer ships:
//! `GET /sse` opens a session and an event stream whose first event (`endpoint`) names the URL to
//! POST to (`/message?sessionId=…`); every server message then arrives on that stream as a
//! `message` event, and each POST is answered `202 Accepted`.
//!
//! Each session runs the MCP server over a [`SessionTransport`] (rmcp's `Transport` trait over two
//! channels). The transport sees every message, which is how a session knows whether a call is
//! still running (for graceful shutdown and idle expiry) without the tools knowing about HTTP.
//!
//! Session ids are 128 random bits from a CSPRNG: the id is the only thing that ties a POST to a
//! stream, so it must not be guessable. A POST to an unknown (or expired) session gets 404, and so
//! does one with `--per-user-keys` from another key than the one that opened the session.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Router,
};
use futures::StreamExt;
use rmcp::{
    model::{ClientJsonRpcMessage, ClientNotification, GetExtensions, JsonRpcMessage, RequestId, ServerJsonRpcMessage},
    transport::Transport,
    RoleServer, ServerHandler, ServiceExt,
};
use serde::Deserialize;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use crate::{jobs::Caller, journal::Owner};

use super::{
    session_budget::{too_many_sessions, SessionBudget},
    shutdown::{InFlight, InFlightGuard},
};

/// Messages buffered per direction before the sender waits.
const CHANNEL_CAPACITY: usize = 64;

/// What every legacy session shares: the server to clone per session and the process-wide limits.
pub struct LegacySse<S> {
    pub server: S,
    pub budget: SessionBudget,
    /// A session with no message either way and no call running for this long is closed.
    pub idle_timeout: Duration,
    /// Cancelled at shutdown: ends every session and its stream.
    pub shutdown: CancellationToken,
    pub in_flight: InFlight,
}

struct Shared<S> {
    config: LegacySse<S>,
    sessions: Mutex<HashMap<String, Session>>,
}

/// A live session: where its messages go, and with `--per-user-keys` the owner of the key that
/// opened it, the only one who may post to it (see `session_owners`).
struct Session {
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    owner: Option<Owner>,
}

/// The caller's owner, when `--per-user-keys` has identified one.
fn owner(parts: &axum::http::request::Parts) -> Option<Owner> {
    parts.extensions.get::<Caller>().map(|caller| caller.owner().clone())
}

/// The two routes, ready to merge into the app.
pub fn router<S>(config: LegacySse<S>) -> Router
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let shared = Arc::new(Shared {
        config,
        sessions: Mutex::default(),
    });
    Router::new()
        .route("/sse", get(open::<S>))
        .route("/message", post(deliver::<S>))
        .with_state(shared)
}

async fn open<S>(State(shared): State<Arc<Shared<S>>>, parts: axum::http::request::Parts) -> Response
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let Some(permit) = shared.config.budget.try_acquire() else {
        return too_many_sessions(shared.config.budget.max());
    };
    let id = format!("{:032x}", rand::random::<u128>());
    let (to_server, from_client) = mpsc::channel(CHANNEL_CAPACITY);
    let (to_client, mut for_client) = mpsc::channel(CHANNEL_CAPACITY);
    let session_ct = shared.config.shutdown.child_token();
    let calls = Arc::new(Calls::new(shared.config.in_flight.clone()));
    let transport = SessionTransport {
        from_client,
        to_client,
        calls: calls.clone(),
    };
    let session = Session {
        to_server,
        owner: owner(&parts),
    };
    lock(&shared.sessions).insert(id.clone(), session);
    tracing::info!(session = %short(&id), "legacy SSE session opened");
    tokio::spawn(run_session(
        shared.clone(),
        id.clone(),
        transport,
        calls,
        session_ct.clone(),
        permit,
    ));

    // The client leaving drops this stream, and the guard in it ends the session.
    let on_disconnect = session_ct.drop_guard();
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/message?sessionId={id}"));
    let messages = futures::stream::poll_fn(move |cx| for_client.poll_recv(cx)).map(move |message| {
        let _ = &on_disconnect;
        Event::default().event("message").json_data(&message)
    });
    let stream = futures::stream::once(async { Ok(endpoint) }).chain(messages);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

async fn run_session<S>(
    shared: Arc<Shared<S>>,
    id: String,
    transport: SessionTransport,
    calls: Arc<Calls>,
    ct: CancellationToken,
    _permit: OwnedSemaphorePermit,
) where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let serve = async {
        match shared.config.server.clone().serve_with_ct(transport, ct.clone()).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => tracing::debug!(session = %short(&id), error = %e, "legacy SSE session ended before initialize"),
        }
        ct.cancel();
    };
    let idle = shared.config.idle_timeout;
    let watchdog = async {
        let tick = (idle / 10).clamp(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = ct.cancelled() => break,
                _ = tokio::time::sleep(tick) => {
                    if calls.idle_for() >= idle {
                        tracing::info!(session = %short(&id), idle_secs = idle.as_secs(), "legacy SSE session expired (idle)");
                        ct.cancel();
                        break;
                    }
                }
            }
        }
    };
    tokio::join!(serve, watchdog);
    lock(&shared.sessions).remove(&id);
    tracing::info!(session = %short(&id), "legacy SSE session closed");
}

#[derive(Deserialize)]
struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `parts`: the POST's headers and extensions, handed to the server with the message as rmcp's
/// Streamable HTTP does, so that the handler sees the same request context (the caller of
/// `--per-user-keys`) whichever transport brought it.
async fn deliver<S>(
    State(shared): State<Arc<Shared<S>>>,
    Query(query): Query<SessionQuery>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let Some(id) = query.session_id else {
        return (
            StatusCode::BAD_REQUEST,
            "Bad Request: missing sessionId query parameter",
        )
            .into_response();
    };
    // Another caller's session is answered as one that does not exist.
    let caller = owner(&parts);
    let to_server = lock(&shared.sessions)
        .get(&id)
        .filter(|session| session.owner == caller)
        .map(|session| session.to_server.clone());
    let Some(to_server) = to_server else {
        tracing::debug!(session = %short(&id), "a message for an unknown session, or another caller's");
        return unknown_session();
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Bad Request: not a JSON-RPC message: {e}"),
            )
                .into_response()
        }
    };
    match &mut message {
        JsonRpcMessage::Request(request) => {
            request.request.extensions_mut().insert(parts);
        }
        JsonRpcMessage::Notification(notification) => {
            notification.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    match to_server.send(message).await {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(_) => unknown_session(),
    }
}

fn unknown_session() -> Response {
    (
        StatusCode::NOT_FOUND,
        "Not Found: no such session (it may have expired); open a new one with GET /sse",
    )
        .into_response()
}

/// The calls a session has received and not yet answered, and when it last saw any message.
struct Calls {
    in_flight: InFlight,
    running: Mutex<HashMap<RequestId, InFlightGuard>>,
    last_activity: Mutex<Instant>,
}

impl Calls {
    fn new(in_flight: InFlight) -> Self {
        Self {
            in_flight,
            running: Mutex::default(),
            last_activity: Mutex::new(Instant::now()),
        }
    }

    fn touch(&self) {
        *lock(&self.last_activity) = Instant::now();
    }

    fn start(&self, id: RequestId) {
        let guard = self.in_flight.start();
        lock(&self.running).insert(id, guard);
    }

    fn finish(&self, id: &RequestId) {
        lock(&self.running).remove(id);
    }

    /// How long the session has been idle: zero while a call is running.
    fn idle_for(&self) -> Duration {
        if lock(&self.running).is_empty() {
            lock(&self.last_activity).elapsed()
        } else {
            Duration::ZERO
        }
    }
}

/// One session's end of the channels, as an rmcp transport.
struct SessionTransport {
    from_client: mpsc::Receiver<ClientJsonRpcMessage>,
    to_client: mpsc::Sender<ServerJsonRpcMessage>,
    calls: Arc<Calls>,
}

impl Transport<RoleServer> for SessionTransport {
    type Error = mpsc::error::SendError<ServerJsonRpcMessage>;

    fn send(
        &mut self,
        message: ServerJsonRpcMessage,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let to_client = self.to_client.clone();
        let calls = self.calls.clone();
        async move {
            let answered = match &message {
                JsonRpcMessage::Response(response) => Some(response.id.clone()),
                JsonRpcMessage::Error(error) => error.id.clone(),
                _ => None,
            };
            calls.touch();
            let sent = to_client.send(message).await;
            // Released once the answer is on its way, so shutdown waits for it to be handed over.
            if let Some(id) = answered {
                calls.finish(&id);
            }
            sent
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        let message = self.from_client.recv().await?;
        self.calls.touch();
        match &message {
            JsonRpcMessage::Request(request) => self.calls.start(request.id.clone()),
            // A cancelled call may never be answered: stop counting it as running.
            JsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) = &notification.notification {
                    if let Some(id) = &cancelled.params.request_id {
                        self.calls.finish(id);
                    }
                }
            }
            _ => {}
        }
        Some(message)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.from_client.close();
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Enough of a session id to follow it in logs without making the log a way to hijack it.
fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}
