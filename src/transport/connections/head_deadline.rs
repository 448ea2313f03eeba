//! The header deadline: a request's head must be complete within the header timeout of its
//! first byte (of the connection opening, for its first request). The socket ([`HeadDeadline`])
//! and the answers on it ([`Answer`]) share a [`ConnState`] that says whether the connection is
//! waiting for a request, so the deadline runs only then: a long answer or a slow handler is not
//! a slow head.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Sleep,
};

/// What the socket and the requests on it share: whether the connection waits for a request,
/// and how many heads have arrived on it.
pub(super) struct ConnState {
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
    pub(super) fn head_arrived(&self) {
        self.heads.fetch_add(1, Ordering::AcqRel);
        self.waiting.store(false, Ordering::Release);
    }

    pub(super) fn answered(&self) {
        self.waiting.store(true, Ordering::Release);
    }
}

/// The socket, with the header deadline: armed when a connection opens and at the first byte
/// read while the connection waits for a request; disarmed once that head is in. When it passes,
/// reading fails and hyper closes the connection.
pub(super) struct HeadDeadline<S> {
    tcp: S,
    state: Arc<ConnState>,
    timeout: Duration,
    /// The deadline, and the number of heads that had arrived when it was armed.
    deadline: Option<(Pin<Box<Sleep>>, u64)>,
}

impl<S> HeadDeadline<S> {
    pub(super) fn new(tcp: S, state: Arc<ConnState>, timeout: Duration) -> Self {
        Self {
            tcp,
            state,
            timeout,
            // A new connection gets the header timeout for its first request, counted from now.
            deadline: Some((Box::pin(tokio::time::sleep(timeout)), 0)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadDeadline<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<S> {
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
pub(super) struct Answer {
    pub(super) body: Body,
    pub(super) state: Arc<ConnState>,
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn socket() -> (
        HeadDeadline<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        Arc<ConnState>,
    ) {
        let (ours, peer) = tokio::io::duplex(1024);
        let state = Arc::new(ConnState::default());
        (HeadDeadline::new(ours, state.clone(), TIMEOUT), peer, state)
    }

    fn timed_out(read: io::Result<usize>) -> bool {
        read.is_err_and(|e| e.kind() == io::ErrorKind::TimedOut)
    }

    /// Under tokio's paused clock, time moves only when every task waits: the deadline passes
    /// exactly when nothing else can happen, with no real waiting.
    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_cut_off_at_the_header_timeout() {
        let (mut socket, _peer, _state) = socket();
        let started = tokio::time::Instant::now();
        let mut buf = [0; 64];
        assert!(timed_out(socket.read(&mut buf).await));
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_arrived_stops_the_deadline_until_its_answer_is_sent() {
        let (mut socket, mut peer, state) = socket();
        let mut buf = [0; 64];
        peer.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(socket.read(&mut buf).await.unwrap() > 0);
        state.head_arrived();
        // The handler takes longer than the header timeout: not the head's fault.
        tokio::time::advance(TIMEOUT * 3).await;
        peer.write_all(b"body").await.unwrap();
        assert_eq!(socket.read(&mut buf).await.unwrap(), 4);

        // Answered: the connection waits for a request, and nothing starts the clock until
        // the next head's first byte.
        state.answered();
        let mut read = std::pin::pin!(socket.read(&mut buf));
        tokio::time::advance(TIMEOUT * 3).await;
        assert!(futures::poll!(read.as_mut()).is_pending(), "idle is not a slow head");
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_heads_first_byte_starts_its_deadline() {
        let (mut socket, mut peer, state) = socket();
        let mut buf = [0; 64];
        state.head_arrived();
        state.answered();
        peer.write_all(b"GET").await.unwrap();
        assert_eq!(socket.read(&mut buf).await.unwrap(), 3);
        let started = tokio::time::Instant::now();
        assert!(
            timed_out(socket.read(&mut buf).await),
            "the rest of the head never came"
        );
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test]
    async fn an_answer_sent_or_dropped_puts_the_connection_back_to_waiting() {
        use http_body_util::BodyExt;
        let state = Arc::new(ConnState::default());
        state.head_arrived();
        let answer = Answer {
            body: Body::from("ok"),
            state: state.clone(),
        };
        assert!(!state.waiting.load(Ordering::Acquire));
        let mut answer = std::pin::pin!(answer);
        assert_eq!(answer.frame().await.unwrap().unwrap().into_data().unwrap(), "ok");
        assert!(
            !state.waiting.load(Ordering::Acquire),
            "not while the body is being sent"
        );
        assert!(answer.frame().await.is_none());
        assert!(state.waiting.load(Ordering::Acquire));

        state.head_arrived();
        drop(Answer {
            body: Body::from("never sent"),
            state: state.clone(),
        });
        assert!(state.waiting.load(Ordering::Acquire));
    }
}
