//! The backoff delays used between attempts (truncated exponential with jitter, as Google recommends for 429,
//! the 403 rate-limit reasons and 5xx). Pacing itself is the shared [`ferry_pacer::DrivePacer`].

use std::time::Duration;

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
}
