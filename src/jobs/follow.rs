//! Keeping a job's journal row current while a call waits on it. The wait hears of every change of
//! status and queue position; writing each one inline would hold the wait (and its progress
//! messages) up behind SQLite and other processes' locks. So changes go to one writer task per
//! wait, which always writes the newest state and skips states overtaken before it got to them: a
//! row never goes back in time, and a dead process leaves the last state it saw, not the one at
//! submit.

use tokio::{sync::watch, task::JoinHandle};

use super::Event;
use crate::{
    journal::{JobUpdate, Journal, Owner},
    runcomfy::RequestId,
};

pub(super) struct Follower {
    latest: watch::Sender<Option<JobUpdate>>,
    writer: Option<JoinHandle<()>>,
}

impl Follower {
    pub(super) fn start(journal: &Journal, owner: &Owner, id: &RequestId) -> Self {
        let (latest, mut seen) = watch::channel(None::<JobUpdate>);
        let writer = journal.may_record().then(|| {
            let (journal, owner, id) = (journal.clone(), owner.clone(), id.clone());
            tokio::spawn(async move {
                // `changed` still reports a value sent just before the sender went away.
                while seen.changed().await.is_ok() {
                    let update = seen.borrow_and_update().clone();
                    if let Some(update) = update {
                        journal.record(&owner, &id, update).await;
                    }
                }
            })
        });
        Self { latest, writer }
    }

    /// Hands a change of status or queue position to the writer; heartbeats carry nothing new.
    pub(super) fn saw(&self, event: &Event) {
        if let (true, Some(status)) = (event.changed, &event.status) {
            self.latest
                .send_replace(Some(JobUpdate::status(status, event.queue_position)));
        }
    }

    /// Waits until the newest state seen is written, so that what is recorded about the
    /// outcome comes after it.
    pub(super) async fn finish(self) {
        let Self { latest, writer } = self;
        drop(latest);
        if let Some(writer) = writer {
            if let Err(e) = writer.await {
                tracing::warn!(error = %e, "the journal's writer for a waiting call failed");
            }
        }
    }
}
