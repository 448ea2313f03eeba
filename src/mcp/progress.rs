//! MCP progress notifications for a long call. Updates are queued and sent in order by one
//! forwarding task, so the waiting loop never blocks on the client, and `finish` flushes them all
//! before the call's result goes out.

use std::time::Duration;

use rmcp::{
    model::{ProgressNotificationParam, ProgressToken},
    Peer, RoleServer,
};
use tokio::{sync::mpsc, task::JoinHandle};

pub struct ProgressReporter {
    tx: mpsc::UnboundedSender<(f64, String)>,
    forwarder: JoinHandle<()>,
    last: f64,
}

impl ProgressReporter {
    pub fn new(peer: Peer<RoleServer>, token: ProgressToken) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(f64, String)>();
        let forwarder = tokio::spawn(async move {
            while let Some((progress, message)) = rx.recv().await {
                let params = ProgressNotificationParam::new(token.clone(), progress).with_message(message);
                if let Err(e) = peer.notify_progress(params).await {
                    // The client went away: nothing more to tell it.
                    tracing::debug!(error = %e, "progress notification not delivered");
                    break;
                }
            }
        });
        Self {
            tx,
            forwarder,
            last: 0.0,
        }
    }

    /// `progress` is the seconds waited so far: it grows with every notification, as the spec
    /// asks, and means something to a person; there is no total, a job's length is unknown.
    pub fn report(&mut self, elapsed: Duration, message: String) {
        let mut progress = (elapsed.as_secs_f64() * 10.0).round() / 10.0;
        if progress <= self.last {
            progress = self.last + 0.01;
        }
        self.last = progress;
        let _ = self.tx.send((progress, message));
    }

    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.forwarder.await;
    }
}
