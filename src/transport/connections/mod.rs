//! The HTTP server's connections: how many may be open, and how long each may take to say
//! what it wants. `axum::serve` bounds neither, so a peer that opens connections and sends half
//! a request header (or nothing) holds a socket, a file descriptor and a task forever. Here the
//! router is served by hyper directly, with these bounds:
//!
//! - **Header timeout**: a request's head must be complete within `header_timeout` of its first
//!   byte (of the connection opening, for its first request).
//! - **Idle timeout**: a connection with no request in flight is closed after `idle_timeout`
//!   (hyper's header-read timer, which runs whenever it waits for a request). Longer than the
//!   header timeout on purpose: behind a load balancer, the server must not close a pooled
//!   connection before the balancer does (AWS ALB keeps them 60 s).
//! - **Body floor**: once the handler reads a body, it must arrive at `body_min_rate` bytes per
//!   second on average after a grace of `header_timeout`; slower gets 408 and the connection
//!   is closed.
//! - **Connection cap**: at most `max` connections are served. Past that, up to [`RESERVE`] more
//!   are let in for `/healthz` only (anything else gets 503) and answered once; when the reserve
//!   is full the *oldest* of them is dropped for the newcomer, and the newcomer is served once
//!   that one's descriptor is closed. So a probe always gets in — the stale connections filling
//!   the cap cannot starve it — while those connections cost a fixed handful of descriptors
//!   (`max` + [`RESERVE`] + the one being accepted), however many a peer opens and however busy
//!   the machine is. A connection beyond the cap is never left
//!   waiting in the kernel's backlog (the client could not tell a busy server from a dead one).
//!
//! Graceful shutdown is hyper's: on the stop signal the listener is closed (new connections are
//! refused), idle connections close, and each busy one closes after its answer.

mod body_floor;
mod descriptors;
mod head_deadline;
mod reserve;

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    pin::pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{header, HeaderValue, Request, Response, StatusCode},
    Router,
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use body_floor::{Floor, FloorBody};
pub(crate) use descriptors::ensure_descriptors;
use head_deadline::{Answer, ConnState, HeadDeadline};
pub use reserve::RESERVE;
use reserve::{Reserve, ReserveSlot};

/// The path a reserve connection may ask for.
const HEALTH_PATH: &str = "/healthz";
/// hyper's read buffer, and so the largest request head: far above any MCP client's (a few
/// hundred bytes), far below hyper's default (~400 KB), which a slow peer could fill on every
/// connection.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// The bounds on connections (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Bytes per second, on average, after the grace of `header_timeout`.
    pub body_min_rate: u64,
}

/// Serves `app` on `listener` until `stop` fires, then closes the listener and waits for every
/// connection to finish (idle ones at once, busy ones after their answer).
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, stop: CancellationToken) {
    let regular = Arc::new(Semaphore::new(limits.max));
    let reserve = Arc::new(Reserve::default());
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let full = AtomicBool::new(false);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) {
                    // Out of descriptors, most likely: wait for some to be freed instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        // Without TCP_NODELAY, an SSE answer written in several small pieces waits on Nagle's
        // algorithm and the client's delayed ACK: ~40 ms per call, measured.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let slot = match regular.clone().try_acquire_owned() {
            Ok(permit) => {
                if full.swap(false, Ordering::Relaxed) {
                    tracing::info!("open connections are below the cap again");
                }
                Slot::Regular(permit)
            }
            Err(_) => {
                if !full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        max = limits.max,
                        "the connection cap is reached: new connections get /healthz only (--max-connections)"
                    );
                }
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    slot = reserve.admit() => Slot::Reserve(slot),
                }
            }
        };
        connections.spawn(connection(tcp, peer, app.clone(), limits, slot, closing.clone()));
    }
    drop(listener);
    closing.cancel();
    connections.close();
    connections.wait().await;
}

/// What lets a connection in, released when it ends.
enum Slot {
    Regular(#[allow(dead_code)] OwnedSemaphorePermit),
    Reserve(ReserveSlot),
}

/// One connection, from accept to close.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    slot: Slot,
    closing: CancellationToken,
) {
    let (reserved, evicted) = match &slot {
        Slot::Regular(_) => (false, CancellationToken::new()),
        Slot::Reserve(r) => (true, r.evicted.clone()),
    };
    let state = Arc::new(ConnState::default());
    let io = TokioIo::new(HeadDeadline::new(tcp, state.clone(), limits.header_timeout));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        handle(request, app.clone(), limits, reserved, state.clone())
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Runs whenever hyper waits for a request: the idle timeout. A reserve connection gets
        // one answer and no more time than a head takes.
        .header_read_timeout(if reserved {
            limits.header_timeout
        } else {
            limits.idle_timeout
        })
        .keep_alive(!reserved)
        .max_buf_size(MAX_BUF_BYTES);
    // In a block so that the socket is closed before the slot is given back.
    let outcome = {
        let mut conn = pin!(builder.serve_connection(io, service));
        tokio::select! {
            outcome = conn.as_mut() => outcome,
            _ = evicted.cancelled() => {
                tracing::debug!(%peer, "dropped a reserve connection for a newer one");
                Ok(())
            }
            _ = closing.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    };
    if let Err(e) = outcome {
        // Timeouts, resets and garbage are a peer's doing, not the server's: debug, not warn.
        tracing::debug!(%peer, error = %e, "connection closed");
    }
    drop(slot);
}

/// One request: the reserve's rule, the body floor, and the connection's waiting state.
async fn handle(
    request: Request<Incoming>,
    app: Router,
    limits: ConnectionLimits,
    reserved: bool,
    state: Arc<ConnState>,
) -> Result<Response<Body>, Infallible> {
    // The head is in: the header deadline stops until this answer has been sent.
    state.head_arrived();
    let response = if reserved && request.uri().path() != HEALTH_PATH {
        too_many_connections()
    } else {
        let too_slow = Arc::new(AtomicBool::new(false));
        let floor = Floor {
            grace: limits.header_timeout,
            bytes_per_sec: limits.body_min_rate.max(1),
        };
        let request = request.map(|body| Body::new(FloorBody::new(body, floor, too_slow.clone())));
        let response = match app.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if too_slow.load(Ordering::Acquire) {
            body_too_slow(floor)
        } else {
            response
        }
    };
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, Body::new(Answer { body, state })))
}

fn too_many_connections() -> Response<Body> {
    let mut response = Response::new(Body::from(
        "Service Unavailable: the server has too many open connections (--max-connections); try again shortly",
    ));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn body_too_slow(floor: Floor) -> Response<Body> {
    let mut response = Response::new(Body::from(format!(
        "Request Timeout: the request body arrived slower than {} bytes per second",
        floor.bytes_per_sec
    )));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    // The rest of the body is unread: the connection cannot carry another request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn past_the_cap_a_request_is_told_to_come_back_and_its_connection_closes() {
        let response = too_many_connections();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert!(text(response).await.contains("--max-connections"));
    }

    #[tokio::test]
    async fn a_body_below_the_floor_gets_408_naming_the_rate_and_closes() {
        let response = body_too_slow(Floor {
            grace: Duration::from_secs(1),
            bytes_per_sec: 512,
        });
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert!(text(response).await.contains("slower than 512 bytes per second"));
    }
}
