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

use std::{
    collections::VecDeque,
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{header, HeaderValue, Request, Response, StatusCode},
    Router,
};
use http_body::{Frame, SizeHint};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// Connections let in past the cap, for `/healthz`.
pub const RESERVE: usize = 8;
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

/// The reserve's connections, oldest first, and the places they hold.
struct Reserve {
    next_id: AtomicU64,
    slots: Mutex<VecDeque<(u64, CancellationToken)>>,
    /// A place is given back only once its connection's descriptor is closed, so an evicted
    /// connection is gone before its successor is served: on a busy machine, evicting without
    /// waiting let the descriptors of connections cancelled but not yet run pile up (a CI run
    /// counted 256 open for a cap of 40 + 8).
    places: Arc<Semaphore>,
}

impl Default for Reserve {
    fn default() -> Self {
        Self {
            next_id: AtomicU64::new(0),
            slots: Mutex::default(),
            places: Arc::new(Semaphore::new(RESERVE)),
        }
    }
}

impl Reserve {
    /// A place in the reserve; when it is full, its oldest connection is dropped and this waits
    /// for that connection to close. Only the accept loop admits, so no one else takes the place.
    async fn admit(self: &Arc<Self>) -> ReserveSlot {
        let place = match self.places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                let oldest = self.slots.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                if let Some((_, oldest)) = oldest {
                    oldest.cancel();
                }
                // A connection ending on its own frees a place too; the semaphore is never closed.
                self.places
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the reserve's semaphore is never closed")
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((id, evicted.clone()));
        ReserveSlot {
            reserve: self.clone(),
            id,
            evicted,
            _place: place,
        }
    }
}

struct ReserveSlot {
    reserve: Arc<Reserve>,
    id: u64,
    /// Cancelled when a newer connection needs the place.
    evicted: CancellationToken,
    /// Released after `Drop::drop` has taken this slot off the list.
    _place: OwnedSemaphorePermit,
}

impl Drop for ReserveSlot {
    fn drop(&mut self) {
        let mut slots = self.reserve.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|(id, _)| *id != self.id);
    }
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

/// What the socket and the requests on it share: whether the connection waits for a request,
/// and how many heads have arrived on it.
struct ConnState {
    /// True from the connection's start, and from each answer's end, to the next head.
    waiting: AtomicBool,
    heads: AtomicU64,
}

impl Default for ConnState {
    fn default() -> Self {
        Self {
            waiting: AtomicBool::new(true),
            heads: AtomicU64::new(0),
        }
    }
}

impl ConnState {
    fn head_arrived(&self) {
        self.heads.fetch_add(1, Ordering::AcqRel);
        self.waiting.store(false, Ordering::Release);
    }

    fn answered(&self) {
        self.waiting.store(true, Ordering::Release);
    }
}

/// The socket, with the header deadline: armed when a connection opens and at the first byte
/// read while the connection waits for a request; disarmed once that head is in. When it passes,
/// reading fails and hyper closes the connection.
struct HeadDeadline {
    tcp: TcpStream,
    state: Arc<ConnState>,
    timeout: Duration,
    /// The deadline, and the number of heads that had arrived when it was armed.
    deadline: Option<(Pin<Box<Sleep>>, u64)>,
}

impl HeadDeadline {
    fn new(tcp: TcpStream, state: Arc<ConnState>, timeout: Duration) -> Self {
        Self {
            tcp,
            state,
            timeout,
            // A new connection gets the header timeout for its first request, counted from now.
            deadline: Some((Box::pin(tokio::time::sleep(timeout)), 0)),
        }
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let waiting = this.state.waiting.load(Ordering::Acquire);
        let heads = this.state.heads.load(Ordering::Acquire);
        // The head it was timing has arrived (whether or not its answer is done yet).
        if this
            .deadline
            .as_ref()
            .is_some_and(|(_, armed)| !waiting || *armed != heads)
        {
            this.deadline = None;
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if waiting && this.deadline.is_none() && matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.deadline = Some((Box::pin(tokio::time::sleep(this.timeout)), heads));
        }
        if let Some((deadline, _)) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request head did not arrive in time",
                )));
            }
        }
        read
    }
}

impl AsyncWrite for HeadDeadline {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// An answer's body: when it has been sent (or dropped), the connection waits for a request
/// again, and the header deadline applies to the next one's first byte.
struct Answer {
    body: Body,
    state: Arc<ConnState>,
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.state.answered();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.state.answered();
    }
}

/// The slowest a request body may arrive.
#[derive(Debug, Clone, Copy)]
struct Floor {
    grace: Duration,
    bytes_per_sec: u64,
}

/// A request body that fails once it falls behind its [`Floor`]: by `grace + n / rate` after
/// the handler started reading it, `n` bytes must have arrived.
struct FloorBody {
    body: Incoming,
    floor: Floor,
    started: Option<Instant>,
    received: u64,
    deadline: Option<Pin<Box<Sleep>>>,
    too_slow: Arc<AtomicBool>,
}

impl FloorBody {
    fn new(body: Incoming, floor: Floor, too_slow: Arc<AtomicBool>) -> Self {
        Self {
            body,
            floor,
            started: None,
            received: 0,
            deadline: None,
            too_slow,
        }
    }

    fn due(&self, started: Instant) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.floor.bytes_per_sec as f64);
        started + self.floor.grace + earned
    }
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
struct TooSlow;

impl http_body::Body for FloorBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        let due = this.due(started);
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if deadline.deadline() != due {
            deadline.as_mut().reset(due);
        }
        if deadline.as_mut().poll(cx).is_ready() {
            this.too_slow.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(TooSlow.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Raises this process's open-file limit so that `wanted` descriptors fit, if the hard limit
/// allows; returns how many fit. A cap above the limit would let accepting fail instead (and
/// new clients be refused at random) rather than be turned away by the rules above.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
pub fn ensure_descriptors(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if (limit.rlim_cur as u64) < wanted {
            let raised = libc::rlimit {
                rlim_cur: (wanted as libc::rlim_t).min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur as u64
}

#[cfg(not(unix))]
pub fn ensure_descriptors(wanted: u64) -> u64 {
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_reserve_drops_its_oldest_connection_and_serves_the_new_one_once_it_is_gone() {
        let reserve = Arc::new(Reserve::default());
        let mut first = Vec::new();
        for _ in 0..RESERVE {
            first.push(reserve.admit().await);
        }
        assert!(first.iter().all(|s| !s.evicted.is_cancelled()));
        let admitting = tokio::spawn({
            let reserve = reserve.clone();
            async move { reserve.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(first[0].evicted.is_cancelled(), "the oldest is asked to make room");
        assert!(first[1..].iter().all(|s| !s.evicted.is_cancelled()));
        assert!(
            !admitting.is_finished(),
            "the newcomer waits until the oldest is closed"
        );
        first.remove(0);
        let newcomer = tokio::time::timeout(Duration::from_secs(5), admitting)
            .await
            .expect("admitted once the oldest is gone")
            .unwrap();
        assert_eq!(reserve.slots.lock().unwrap().len(), RESERVE);
        drop(first);
        assert_eq!(reserve.slots.lock().unwrap().len(), 1);
        drop(newcomer);
        assert!(reserve.slots.lock().unwrap().is_empty());
        assert_eq!(reserve.places.available_permits(), RESERVE);
    }
}
