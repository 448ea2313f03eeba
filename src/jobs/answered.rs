//! The image URLs of jobs this process has just answered for, kept a short while. The app view
//! reads each image's preview right after the answer that listed it; asking RunComfy's `/result`
//! again for a URL the answer carried a moment ago costs a request and a round trip, and came
//! 4 ms after the poll that saw the job end (the bench's least gap between a job's requests).
//! By owner: one person's URLs are never another's answer.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::{journal::Owner, runcomfy::RequestId};

/// Long enough for the view's reads after an answer; short enough that a URL is as fresh as
/// RunComfy's own answer would be.
const KEEP: Duration = Duration::from_secs(120);
/// Jobs remembered at most (a batch is 8): the oldest goes first.
const CAPACITY: usize = 64;

#[derive(Debug, Default)]
pub(super) struct Answered {
    recent: Mutex<VecDeque<Entry>>,
}

#[derive(Debug)]
struct Entry {
    owner: Owner,
    id: RequestId,
    at: Instant,
    images: Vec<String>,
}

impl Answered {
    /// Remembers job `id`'s images, as an answer to `owner` listed them.
    pub(super) fn keep(&self, owner: &Owner, id: &RequestId, images: &[String]) {
        if images.is_empty() {
            return;
        }
        let mut recent = self.lock();
        recent.retain(|e| e.at.elapsed() < KEEP && !(e.owner == *owner && e.id == *id));
        if recent.len() >= CAPACITY {
            recent.pop_front();
        }
        recent.push_back(Entry {
            owner: owner.clone(),
            id: id.clone(),
            at: Instant::now(),
            images: images.to_vec(),
        });
    }

    /// Job `id`'s images, if an answer to `owner` listed them lately.
    pub(super) fn images(&self, owner: &Owner, id: &RequestId) -> Option<Vec<String>> {
        self.lock()
            .iter()
            .find(|e| e.owner == *owner && e.id == *id && e.at.elapsed() < KEEP)
            .map(|e| e.images.clone())
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> RequestId {
        RequestId::parse(&format!("job-{n}")).unwrap()
    }

    #[test]
    fn a_jobs_images_are_its_owners_alone_and_the_oldest_go_first() {
        let answered = Answered::default();
        let (alice, bob) = (Owner::single(), Owner::from_stored("bob"));
        answered.keep(&alice, &id(0), &["https://a/0.png".into()]);
        assert_eq!(
            answered.images(&alice, &id(0)),
            Some(vec!["https://a/0.png".to_owned()])
        );
        assert_eq!(answered.images(&bob, &id(0)), None, "another owner's job is unknown");
        assert_eq!(answered.images(&alice, &id(1)), None);
        // Kept again: the newer listing wins, once.
        answered.keep(&alice, &id(0), &["https://a/0b.png".into()]);
        assert_eq!(
            answered.images(&alice, &id(0)),
            Some(vec!["https://a/0b.png".to_owned()])
        );
        for n in 1..=CAPACITY {
            answered.keep(&alice, &id(n), &[format!("https://a/{n}.png")]);
        }
        assert_eq!(answered.images(&alice, &id(0)), None, "the oldest went first");
        assert!(answered.images(&alice, &id(CAPACITY)).is_some());
        assert_eq!(answered.lock().len(), CAPACITY);
    }
}
