//! Which jobs changed, for the event streams: one LISTEN connection per gateway (Postgres notifies on every job
//! row change, see the `job_change_notify` migration) fanned out to every open stream, so a stream reads its job
//! when it changed rather than on a timer.

use std::time::Duration;

use ferry_core::JobId;
use ferry_db::jobs::JobChangeListener;
use ferry_queue::CancellationToken;
use tokio::sync::broadcast;

/// What a stream hears: a job changed, or anything may have changed (the listener reconnected, or the stream
/// fell behind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobChange {
    Job(JobId),
    Anything,
}

/// Subscriptions to job changes. Cheap to clone.
#[derive(Clone)]
pub struct JobChanges {
    sender: broadcast::Sender<JobChange>,
}

impl Default for JobChanges {
    fn default() -> Self {
        JobChanges { sender: broadcast::channel(1024).0 }
    }
}

impl JobChanges {
    pub fn subscribe(&self) -> broadcast::Receiver<JobChange> {
        self.sender.subscribe()
    }

    /// Listens on `database_url` until `shutdown`, reconnecting with backoff; after each (re)connection every
    /// stream is told that anything may have changed.
    pub async fn run(self, database_url: String, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            let connected = tokio::select! {
                () = shutdown.cancelled() => return,
                connected = tokio::time::timeout(Duration::from_secs(10), JobChangeListener::connect(&database_url)) => connected,
            };
            let mut listener = match connected {
                Ok(Ok(listener)) => listener,
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "job change listener cannot connect; retrying");
                    wait(&shutdown, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                Err(_) => {
                    tracing::warn!("job change listener did not connect within 10 s; retrying");
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            // Changes committed while nobody listened are caught by this.
            let _ = self.sender.send(JobChange::Anything);
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = listener.next(Duration::from_secs(30)) => next,
                };
                match next {
                    Ok(Some(job)) => {
                        // No subscriber is not an error: nobody is watching.
                        let _ = self.sender.send(JobChange::Job(job));
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "job change listener lost its connection; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

async fn wait(shutdown: &CancellationToken, delay: Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(delay) => {}
    }
}
