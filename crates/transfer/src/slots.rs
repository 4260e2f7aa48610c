//! Transfer slots: how many large files one worker process moves at once. Items in flight (the queue prefetch)
//! may be many more; a small file's bytes fit in one buffer, so it moves without a slot and never queues behind
//! a large transfer, while the slots keep memory bounded however many items are in flight.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::attempt::Progress;

/// How often an attempt waiting for a slot tells its watchdog it is waiting, not stalled.
const WAITING_TICK: Duration = Duration::from_secs(1);

/// The large-transfer slots of one process. Cheap to clone; clones share the slots.
#[derive(Clone, Debug)]
pub struct TransferSlots {
    large: Arc<Semaphore>,
    small_file_bytes: u64,
}

impl TransferSlots {
    /// `large` transfers of files over `small_file_bytes` at once (at least one).
    pub fn new(large: usize, small_file_bytes: u64) -> Self {
        TransferSlots { large: Arc::new(Semaphore::new(large.max(1))), small_file_bytes }
    }

    /// Waits for a slot when the file is large or its size unknown; a small file goes at once (`None`). The wait
    /// keeps `progress` fresh: it ends when another transfer does, and each of those has its own watchdog.
    pub(crate) async fn acquire(&self, size: Option<u64>, progress: &Progress) -> Option<OwnedSemaphorePermit> {
        if size.is_some_and(|size| size <= self.small_file_bytes) {
            return None;
        }
        let acquire = self.large.clone().acquire_owned();
        tokio::pin!(acquire);
        loop {
            tokio::select! {
                permit = &mut acquire => return permit.ok(),
                () = tokio::time::sleep(WAITING_TICK) => progress.touch(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_files_need_no_slot_and_large_ones_wait_for_one() {
        let slots = TransferSlots::new(1, 1024);
        let progress = Progress::new();
        assert!(slots.acquire(Some(1024), &progress).await.is_none(), "a small file goes without a slot");
        let held = slots.acquire(Some(1025), &progress).await.expect("the one slot");
        assert!(slots.acquire(Some(10), &progress).await.is_none(), "small files pass while the slot is held");
        let waiting = tokio::spawn({
            let (slots, progress) = (slots.clone(), progress.clone());
            async move { slots.acquire(None, &progress).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "an unknown size waits for the slot");
        drop(held);
        assert!(waiting.await.expect("the waiter"), "and gets it when the slot is freed");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_slot_is_not_a_stall() {
        let slots = TransferSlots::new(1, 0);
        let progress = Progress::new();
        let _held = slots.acquire(Some(1), &progress).await;
        let waiting = tokio::spawn({
            let (slots, progress) = (slots.clone(), progress.clone());
            async move { slots.acquire(Some(1), &progress).await }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(progress.idle() <= WAITING_TICK, "idle {:?}", progress.idle());
        waiting.abort();
    }
}
