//! The reserve: a few connections let in past the cap for `/healthz` only, so a probe always
//! gets in however many stale connections fill the cap. When the reserve is full its oldest
//! connection is dropped for the newcomer, which is served once that one's descriptor is closed,
//! so the reserve costs a fixed handful of descriptors however many a peer opens.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Connections let in past the cap, for `/healthz`.
pub const RESERVE: usize = 8;

/// The reserve's connections, oldest first, and the places they hold.
pub(super) struct Reserve {
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
    pub(super) async fn admit(self: &Arc<Self>) -> ReserveSlot {
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

pub(super) struct ReserveSlot {
    reserve: Arc<Reserve>,
    id: u64,
    /// Cancelled when a newer connection needs the place.
    pub(super) evicted: CancellationToken,
    /// Released after `Drop::drop` has taken this slot off the list.
    _place: OwnedSemaphorePermit,
}

impl Drop for ReserveSlot {
    fn drop(&mut self) {
        let mut slots = self.reserve.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    #[tokio::test]
    async fn the_reserve_drops_its_oldest_connection_and_serves_the_new_one_once_it_is_gone() {
        let reserve = Arc::new(Reserve::default());
        let mut first = Vec::new();
        for _ in 0..RESERVE {
            first.push(reserve.admit().await);
        }
        assert!(first.iter().all(|s| !s.evicted.is_cancelled()));
        // Polled by hand, so that the test sees each step as it happens: no waiting on time.
        let mut admitting = pin!(reserve.admit());
        assert!(
            futures::poll!(admitting.as_mut()).is_pending(),
            "the newcomer waits until the oldest is closed"
        );
        assert!(first[0].evicted.is_cancelled(), "the oldest is asked to make room");
        assert!(first[1..].iter().all(|s| !s.evicted.is_cancelled()));
        assert!(
            futures::poll!(admitting.as_mut()).is_pending(),
            "still waiting while the oldest is open"
        );
        first.remove(0);
        let futures::task::Poll::Ready(newcomer) = futures::poll!(admitting.as_mut()) else {
            panic!("admitted as soon as the oldest is gone");
        };
        assert_eq!(reserve.slots.lock().unwrap().len(), RESERVE);
        drop(first);
        assert_eq!(reserve.slots.lock().unwrap().len(), 1);
        drop(newcomer);
        assert!(reserve.slots.lock().unwrap().is_empty());
        assert_eq!(reserve.places.available_permits(), RESERVE);
    }
}
