//! One adaptive Drive request pacer per Google user, shared by every process that calls Drive (importers,
//! exporters, gateways).
//!
//! The state lives in Postgres (`drive_pacers`, see [`ferry_db::pacer`]): a timeline of request slots at the
//! user's current rate. A process leases a batch of slots at a time (about [`PacerPolicy::lease_window`] of the
//! timeline), so the pacer costs one short transaction per batch, not per request, and two processes never get
//! the same slot. The rate starts generous and adapts ([`policy`]): a refusal for rate cuts it for everyone
//! (hard while the quota is far, gently near it) and `Retry-After` holds every process back; it then recovers,
//! quickly up to near the last refusal and additively above it. When Postgres cannot answer within
//! [`DB_DEADLINE`], a process paces its own requests at the configured fallback rate instead of waiting.

pub mod policy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::ConnectionId;
use ferry_db::Db;
use ferry_db::pacer::PacerKey;
use tokio::time::Instant;

pub use policy::{Grant, PacerPolicy};

/// The longest a lease or a refusal report waits for Postgres before the process paces on its own.
pub const DB_DEADLINE: Duration = Duration::from_secs(2);

/// The pacer of one process. Cheap to clone; clones share their leased slots.
#[derive(Clone)]
pub struct DrivePacer {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    policy: PacerPolicy,
    /// The spacing used while Postgres does not answer.
    fallback_interval: Duration,
    lanes: Mutex<HashMap<ConnectionId, Arc<LaneEntry>>>,
}

struct LaneEntry {
    /// Requests waiting for this lane's lock: how many slots the next lease asks for.
    waiting: AtomicU32,
    lane: tokio::sync::Mutex<Lane>,
}

/// Slots this process holds for one connection's user: the next at `next`, then one every `interval`.
struct Lane {
    next: Instant,
    remaining: u32,
    interval: Duration,
}

impl DrivePacer {
    /// `fallback_per_sec`: this process's own rate for a user while Postgres does not answer.
    pub fn new(db: Db, policy: PacerPolicy, fallback_per_sec: u32) -> Self {
        let fallback_interval = Duration::from_secs_f64(1.0 / f64::from(fallback_per_sec.max(1)));
        DrivePacer { inner: Arc::new(Inner { db, policy, fallback_interval, lanes: Mutex::default() }) }
    }

    /// Waits for the next slot of the connection's Google user, and takes it.
    pub async fn acquire(&self, connection: ConnectionId) {
        let entry = self.lane(connection);
        let slot = {
            entry.waiting.fetch_add(1, Ordering::Relaxed);
            let mut lane = entry.lane.lock().await;
            let wanted = entry.waiting.fetch_sub(1, Ordering::Relaxed);
            // Slots well in the past were not used in time; spending them now would burst past the rate.
            if lane.remaining > 0 && lane.next + self.inner.policy.lease_window < Instant::now() {
                lane.remaining = 0;
            }
            if lane.remaining == 0 {
                self.refill(connection, &mut lane, wanted).await;
            }
            let slot = lane.next;
            let interval = lane.interval;
            lane.next += interval;
            lane.remaining -= 1;
            slot
        };
        let now = Instant::now();
        if slot > now {
            metrics::counter!("ferry_drive_pacer_waits_total").increment(1);
            // How long requests wait for their user's slot: when this grows, the user's quota bounds the work.
            metrics::histogram!("ferry_drive_pacer_wait_seconds").record((slot - now).as_secs_f64());
            tokio::time::sleep_until(slot).await;
        }
    }

    /// Reports that Drive refused a request of the connection's user for rate (429, or 403
    /// `userRateLimitExceeded` / `rateLimitExceeded`), with the answer's `Retry-After` if it had one. Every
    /// process sees the cut at its next lease; this one drops the slots it holds at once.
    pub async fn refused(&self, connection: ConnectionId, retry_after: Option<Duration>) {
        metrics::counter!("ferry_drive_pacer_refusals_total").increment(1);
        {
            let entry = self.lane(connection);
            let mut lane = entry.lane.lock().await;
            lane.remaining = 0;
            if let Some(wait) = retry_after {
                lane.next = lane.next.max(Instant::now() + wait);
            }
        }
        let policy = &self.inner.policy;
        let report = self.inner.db.change_drive_pacer(PacerKey::Connection(connection), policy.max_rate, |row, now| {
            policy.refuse(row, now, retry_after)
        });
        match tokio::time::timeout(DB_DEADLINE, report).await {
            Ok(Ok(Some(Some(rate)))) => {
                tracing::info!(%connection, ?retry_after, rate, "Drive refused a request for rate; the user's rate was cut")
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::warn!(%connection, error = %err, "cannot record a Drive refusal in the pacer"),
            Err(_) => tracing::warn!(%connection, "the pacer's database did not answer; the refusal stays local"),
        }
    }

    fn lane(&self, connection: ConnectionId) -> Arc<LaneEntry> {
        let mut lanes = self.inner.lanes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        lanes
            .entry(connection)
            .or_insert_with(|| {
                Arc::new(LaneEntry {
                    waiting: AtomicU32::new(0),
                    lane: tokio::sync::Mutex::new(Lane {
                        next: Instant::now(),
                        remaining: 0,
                        interval: self.inner.fallback_interval,
                    }),
                })
            })
            .clone()
    }

    /// Leases as many slots as requests are waiting here (`wanted`): a process never holds back slots another one
    /// could use.
    async fn refill(&self, connection: ConnectionId, lane: &mut Lane, wanted: u32) {
        let policy = &self.inner.policy;
        let lease = self.inner.db.change_drive_pacer(PacerKey::Connection(connection), policy.max_rate, |row, now| {
            policy.lease(row, now, wanted)
        });
        let leased = match tokio::time::timeout(DB_DEADLINE, lease).await {
            Ok(Ok(Some(grant))) => Some(grant),
            Ok(Ok(None)) => {
                tracing::warn!(%connection, "no such connection for the pacer; pacing locally");
                None
            }
            Ok(Err(err)) => {
                tracing::warn!(%connection, error = %err, "cannot lease Drive request slots; pacing locally");
                None
            }
            Err(_) => {
                tracing::warn!(%connection, waited = ?DB_DEADLINE, "the pacer's database did not answer; pacing locally");
                None
            }
        };
        let now = Instant::now();
        match leased {
            Some(grant) => {
                metrics::counter!("ferry_drive_pacer_leases_total").increment(1);
                lane.next = (now + grant.start_in).checked_sub(grant.start_ago).unwrap_or(now);
                lane.interval = grant.interval;
                lane.remaining = grant.granted;
            }
            None => {
                metrics::counter!("ferry_drive_pacer_local_slots_total").increment(1);
                // About a second of local slots, so a database that is down is not asked before every request.
                lane.next = lane.next.max(now);
                lane.interval = self.inner.fallback_interval;
                lane.remaining = (1.0 / self.inner.fallback_interval.as_secs_f64()).ceil().max(1.0) as u32;
            }
        }
    }
}
