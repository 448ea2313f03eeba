//! The body floor: once the handler reads a request body, it must arrive at a least rate on
//! average after a grace period; a body that falls behind fails, and the connection answers 408
//! and closes. A peer trickling a body a byte at a time cannot hold a handler forever.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The slowest a request body may arrive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Floor {
    pub(super) grace: Duration,
    pub(super) bytes_per_sec: u64,
}

/// A request body that fails once it falls behind its [`Floor`]: by `grace + n / rate` after
/// the handler started reading it, `n` bytes must have arrived.
pub(super) struct FloorBody<B> {
    body: B,
    floor: Floor,
    started: Option<Instant>,
    received: u64,
    deadline: Option<Pin<Box<Sleep>>>,
    too_slow: Arc<AtomicBool>,
}

impl<B> FloorBody<B> {
    pub(super) fn new(body: B, floor: Floor, too_slow: Arc<AtomicBool>) -> Self {
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

impl<B> http_body::Body for FloorBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::{channel::mpsc, SinkExt};
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    type Chunks = mpsc::Sender<Result<Frame<Bytes>, Infallible>>;

    const FLOOR: Floor = Floor {
        grace: Duration::from_secs(10),
        bytes_per_sec: 100,
    };

    type Trickle = FloorBody<StreamBody<mpsc::Receiver<Result<Frame<Bytes>, Infallible>>>>;

    fn body() -> (Trickle, Chunks, Arc<AtomicBool>) {
        let (chunks, stream) = mpsc::channel(4);
        let too_slow = Arc::new(AtomicBool::new(false));
        (
            FloorBody::new(StreamBody::new(stream), FLOOR, too_slow.clone()),
            chunks,
            too_slow,
        )
    }

    async fn send(chunks: &mut Chunks, bytes: usize) {
        chunks
            .send(Ok(Frame::data(Bytes::from(vec![b'x'; bytes]))))
            .await
            .unwrap();
    }

    /// Each byte earns its time: `grace + n / rate` after the first read, n bytes are due.
    /// Under tokio's paused clock, time moves only when every task waits: no real waiting.
    #[tokio::test(start_paused = true)]
    async fn a_body_that_falls_behind_fails_when_its_bytes_are_due() {
        let (mut body, mut chunks, too_slow) = body();
        let started = Instant::now();
        send(&mut chunks, 200).await; // earns 2 s past the grace
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap().len(), 200);
        assert!(body.frame().await.unwrap().is_err(), "nothing more came");
        assert_eq!(started.elapsed(), FLOOR.grace + Duration::from_secs(2));
        assert!(too_slow.load(Ordering::Acquire), "the connection is told why");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_at_the_floor_rate_arrives_whole() {
        let (mut body, mut chunks, too_slow) = body();
        let sender = tokio::spawn(async move {
            for _ in 0..30 {
                // 100 bytes a second, the floor exactly, for longer than the grace.
                tokio::time::sleep(Duration::from_secs(1)).await;
                send(&mut chunks, 100).await;
            }
        });
        let mut received = 0;
        while let Some(frame) = body.frame().await {
            received += frame.unwrap().into_data().unwrap().len();
        }
        sender.await.unwrap();
        assert_eq!(received, 3000);
        assert!(!too_slow.load(Ordering::Acquire));
    }
}
