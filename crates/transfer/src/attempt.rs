//! One guarded attempt at an item. While the attempt runs, one background task renews its lease (fenced by the
//! claim) and watches its progress; the attempt is aborted when the lease turns out lost (another worker holds
//! the item now) or when no bytes moved for the stall timeout. The task is owned by a drop guard, so it ends
//! with the attempt however the attempt ends: success, error, panic or cancellation.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_db::jobs::Claim;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::outcome::ItemFailure;
use crate::worker::TransferContext;

/// When an attempt last moved bytes (or finished a Drive call). Cheap to clone; clones share the clock.
#[derive(Clone, Debug)]
pub struct Progress {
    inner: Arc<ProgressClock>,
}

#[derive(Debug)]
struct ProgressClock {
    started: Instant,
    /// Milliseconds after `started` of the last progress.
    last_ms: AtomicU64,
}

impl Progress {
    pub fn new() -> Self {
        Progress { inner: Arc::new(ProgressClock { started: Instant::now(), last_ms: AtomicU64::new(0) }) }
    }

    /// Records that the attempt moved forward now.
    pub fn touch(&self) {
        let elapsed = u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.inner.last_ms.fetch_max(elapsed, Ordering::Relaxed);
    }

    /// How long since the attempt last moved forward.
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.inner.last_ms.load(Ordering::Relaxed));
        self.inner.started.elapsed().saturating_sub(last)
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// Why the guard stopped an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    /// A heartbeat found the item no longer held by this claim.
    LeaseLost,
    /// No progress for this long.
    Stalled(Duration),
}

/// Owns the heartbeat/watchdog task of one attempt; dropping it stops the task.
struct AttemptGuard {
    task: tokio::task::JoinHandle<()>,
    aborted: watch::Receiver<Option<Abort>>,
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AttemptGuard {
    fn start(ctx: &TransferContext, claim: &Claim, progress: Progress) -> Self {
        let (abort, aborted) = watch::channel(None);
        let (db, claim, lease, stall) = (ctx.db.clone(), claim.clone(), ctx.lease, ctx.stall_timeout);
        let renew_every = lease / 3;
        // Checks often enough to notice a stall within about a quarter of the timeout.
        let tick = (stall / 4).min(renew_every).max(Duration::from_millis(100));
        let task = tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(tick).await;
                let idle = progress.idle();
                if idle >= stall {
                    let _ = abort.send(Some(Abort::Stalled(idle)));
                    return;
                }
                if renewed.elapsed() < renew_every {
                    continue;
                }
                // Bounded: a database that does not answer must not hold the heartbeat past the next renewal.
                match tokio::time::timeout(renew_every, db.extend_lease(&claim, lease)).await {
                    Ok(Ok(true)) => renewed = Instant::now(),
                    Ok(Ok(false)) => {
                        let _ = abort.send(Some(Abort::LeaseLost));
                        return;
                    }
                    Ok(Err(err)) => tracing::warn!(item_id = %claim.item_id, error = %err, "cannot extend the lease"),
                    Err(_) => tracing::warn!(item_id = %claim.item_id, "extending the lease timed out"),
                }
            }
        });
        AttemptGuard { task, aborted }
    }

    async fn aborted(&mut self) -> Abort {
        loop {
            if let Some(abort) = *self.aborted.borrow_and_update() {
                return abort;
            }
            if self.aborted.changed().await.is_err() {
                // The task ended without a verdict (it cannot, short of a panic): never abort for that.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Runs `attempt` under a lease heartbeat and a progress watchdog (`ctx.progress` is the attempt's clock). A lost
/// lease ends it with [`ItemFailure::LeaseLost`]; a stall with a transient `transfer_stalled`, so the item is
/// released and retried through the delay tiers. Dropping the attempt's future cancels its transfer.
pub(crate) async fn guarded<T>(
    ctx: &TransferContext,
    claim: &Claim,
    attempt: impl Future<Output = Result<T, ItemFailure>>,
) -> Result<T, ItemFailure> {
    ctx.progress.touch();
    let mut guard = AttemptGuard::start(ctx, claim, ctx.progress.clone());
    tokio::select! {
        result = attempt => result,
        abort = guard.aborted() => Err(match abort {
            Abort::LeaseLost => ItemFailure::LeaseLost,
            Abort::Stalled(idle) => {
                metrics::counter!("ferry_transfer_stalls_total").increment(1);
                ItemFailure::transient(
                    "transfer_stalled",
                    format!("no bytes moved for {} s; the attempt was aborted", idle.as_secs()),
                )
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[tokio::test(start_paused = true)]
    async fn progress_measures_idle_time_since_the_last_touch() {
        let progress = Progress::new();
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        assert!(progress.idle() >= std::time::Duration::from_secs(5));
        progress.clone().touch();
        assert!(progress.idle() < std::time::Duration::from_secs(1));
    }
}
