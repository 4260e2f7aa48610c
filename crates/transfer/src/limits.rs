//! Pacing of Drive calls: a token bucket per connection (Google's quotas are per user), and the backoff delays
//! used between attempts (truncated exponential with jitter, as Google recommends for 429, the 403 rate-limit
//! reasons and 5xx).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::ConnectionId;
use tokio::time::Instant;

/// Token buckets keyed by connection, shared by every item attempt of one worker process. Cheap to clone.
#[derive(Clone)]
pub struct ConnectionRateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Arc<Mutex<HashMap<ConnectionId, Bucket>>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl ConnectionRateLimiter {
    /// `per_sec` requests per second per connection, with bursts of up to one second's worth.
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        ConnectionRateLimiter { per_sec, burst: per_sec, buckets: Arc::default() }
    }

    /// Waits until the connection may make one more Drive request, and takes it.
    pub async fn acquire(&self, connection: ConnectionId) {
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let now = Instant::now();
                let bucket = buckets.entry(connection).or_insert(Bucket { tokens: self.burst, updated: now });
                let refill = now.duration_since(bucket.updated).as_secs_f64() * self.per_sec;
                bucket.tokens = (bucket.tokens + refill).min(self.burst);
                bucket.updated = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    None
                } else {
                    Some(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_sec))
                }
            };
            match wait {
                None => return,
                Some(wait) => {
                    metrics::counter!("ferry_drive_rate_limited_waits_total").increment(1);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Delay before the item's next attempt after `attempts` failed ones: 2^(attempts-1) s plus up to 1 s of jitter,
/// truncated at 32 s.
pub fn item_retry_delay(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(5);
    let base = Duration::from_secs(1u64 << exponent);
    (base + jitter(Duration::from_millis(1000))).min(Duration::from_secs(32))
}

/// Delay before repeating one Drive call inside an attempt (`retry` = 0 for the first repeat): 0.5 s doubling,
/// plus up to half of that as jitter. Short, because the attempt holds a lease and a worker slot.
pub fn call_retry_delay(retry: u32) -> Duration {
    let base = Duration::from_millis(500) * (1u32 << retry.min(4));
    base + jitter(base / 2)
}

fn jitter(max: Duration) -> Duration {
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(0..millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_delays_grow_exponentially_and_are_truncated() {
        for attempts in 1..=20 {
            let delay = item_retry_delay(attempts);
            let base = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(5));
            assert!(delay >= base.min(Duration::from_secs(32)), "attempt {attempts}: {delay:?}");
            assert!(
                delay <= (base + Duration::from_secs(1)).min(Duration::from_secs(32)),
                "attempt {attempts}: {delay:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_allows_a_burst_then_paces_per_connection() {
        let limiter = ConnectionRateLimiter::new(4);
        let (a, b) = (ConnectionId::new(), ConnectionId::new());
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire(a).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "a burst of one second's worth is free");
        limiter.acquire(b).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "another connection has its own bucket");
        for _ in 0..4 {
            limiter.acquire(a).await;
        }
        // Four more at 4/s take about a second of (paused, virtual) time.
        assert!(start.elapsed() >= Duration::from_millis(990), "{:?}", start.elapsed());
    }
}
