//! How slots are granted and how the rate adapts: pure functions of a stored [`PacerRow`] and the database's
//! clock, so every process applies the same rule to the same state, and tests need no clock of their own.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ferry_db::pacer::PacerRow;

/// A refusal at or above this share of the last refusal's rate is "near the quota": the rate is cut gently.
const NEAR_CEILING: f64 = 0.8;
/// The cut near the quota: the rate oscillates between this share of the quota and the quota itself.
const NEAR_CUT: f64 = 0.85;
/// The cut far below the last refusal, or before any refusal: the quota is far away, find it quickly.
const FAR_CUT: f64 = 0.5;
/// After a far cut every process holds back this long (Google's advice for 429 and the rate-limit 403s is to wait
/// a second or more before retrying): the requests already on their way when the quota was found would otherwise
/// keep hitting it until the quota's window turns over.
const FAR_CUT_PAUSE: Duration = Duration::from_secs(1);
/// Below this share of the last refusal's rate the rate recovers quickly (doubling per second) ...
const KNEE: f64 = 0.9;
const FAST_GROWTH_PER_SEC: f64 = 1.0;
/// ... and above it additively, by this share of that rate per second.
const SLOW_GROWTH_PER_SEC: f64 = 0.01;
/// Refusals reported within this long of a cut were caused by the same burst: one cut is enough.
const CUT_WINDOW: Duration = Duration::from_millis(250);
/// Recovery accrues only while slots are being leased: an idle user does not come back at full speed.
const MAX_ACCRUAL: Duration = Duration::from_secs(1);
/// The most slots one lease hands out.
const MAX_BATCH: u32 = 64;
/// The window over which the rate really leased is measured. A gap of more than two windows without leases
/// leaves nothing to measure.
const WINDOW: Duration = Duration::from_secs(1);
/// The shortest stretch a partial window's count is spread over (a burst at a window's start is not 100×).
const MIN_SPAN: Duration = Duration::from_millis(250);

/// The limits of one deployment's pacing (configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct PacerPolicy {
    /// Where a user starts and the most it is ever granted, in requests per second. Google documents 12 000
    /// queries per minute per user (200 per second).
    pub max_rate: f64,
    /// The least a user is ever granted, whatever Drive says. Refusals that have nothing to do with the user's
    /// rate (Google also throttles at random under load) would otherwise cut a busy user down to nothing; below
    /// this floor the per-call backoff and the delay tiers take over.
    pub min_rate: f64,
    /// How much of the timeline one lease takes (`rate × lease_window` slots, at least one): the longer, the fewer
    /// database round trips; the shorter, the sooner a cut reaches the other processes.
    pub lease_window: Duration,
}

impl Default for PacerPolicy {
    fn default() -> Self {
        PacerPolicy { max_rate: 200.0, min_rate: 10.0, lease_window: Duration::from_millis(50) }
    }
}

/// Slots leased to one process: `granted` requests, the first at `start_at`, then one every `interval`. Slots
/// whose time has passed are usable at once: a user idle for a while may burst up to one lease window's worth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    pub start_at: DateTime<Utc>,
    /// How long after the database's time of the lease the first slot is (zero when it is due or past).
    pub start_in: Duration,
    /// How long before the database's time of the lease the first slot was (zero when it is in the future).
    pub start_ago: Duration,
    pub interval: Duration,
    pub granted: u32,
}

impl PacerPolicy {
    /// The default policy with another `max_rate` (configuration's `reliability.drive_pacer_max_rate`).
    pub fn with_max_rate(max_rate: u32) -> Self {
        let max_rate = f64::from(max_rate.max(1));
        let default = PacerPolicy::default();
        PacerPolicy { max_rate, min_rate: default.min_rate.min(max_rate), ..default }
    }

    /// Leases the next slots of the user's timeline at `now` (recovering the rate first): as many as `wanted`
    /// (the requests waiting in the calling process), at most one lease window's worth. The timeline may lag `now`
    /// by one lease window (unused capacity a burst may spend, as a token bucket's), never more.
    pub fn lease(&self, row: &mut PacerRow, now: DateTime<Utc>, wanted: u32) -> Grant {
        self.recover(row, now);
        roll_window(row, now);
        let mut start_at = row.next_slot_at.max(now - delta(self.lease_window));
        match row.blocked_until {
            Some(until) if until > now => start_at = start_at.max(until),
            Some(_) => row.blocked_until = None,
            None => {}
        }
        let interval = Duration::from_secs_f64(1.0 / row.rate);
        let batch = (row.rate * self.lease_window.as_secs_f64()).floor();
        // The float is finite and positive (rate ≥ min_rate > 0), and clamped before the cast.
        let granted = (batch.clamp(1.0, f64::from(MAX_BATCH)) as u32).min(wanted.max(1));
        row.next_slot_at = start_at + delta(interval * granted);
        row.leased += i64::from(granted);
        row.window_leased += i64::from(granted);
        let start_in = (start_at - now).to_std().unwrap_or_default();
        let start_ago = (now - start_at).to_std().unwrap_or_default();
        Grant { start_at, start_in, start_ago, interval, granted }
    }

    /// Records a refusal for rate (429, or 403 `userRateLimitExceeded` / `rateLimitExceeded`) seen at `now`:
    /// honours `retry_after` for every process, and cuts the rate once per burst. Returns the new rate when it
    /// cut.
    pub fn refuse(&self, row: &mut PacerRow, now: DateTime<Utc>, retry_after: Option<Duration>) -> Option<f64> {
        roll_window(row, now);
        row.refusals += 1;
        row.window_refused += 1;
        if let Some(wait) = retry_after {
            hold_back(row, now + delta(wait));
        }
        if row.cut_at.is_some_and(|cut| now - cut < delta(CUT_WINDOW)) {
            return None;
        }
        // Cut from what Drive really accepted: a granted rate nobody used says nothing of the quota.
        let base = used_rate(row, now).map_or(row.rate, |used| used.min(row.rate));
        let near = row.ceiling.is_some_and(|ceiling| base >= NEAR_CEILING * ceiling);
        row.ceiling = Some(base);
        let before = row.rate;
        row.rate = (base * if near { NEAR_CUT } else { FAR_CUT }).max(self.min_rate);
        // At the floor a cut changes nothing, and Google also refuses at random under load: holding everyone back
        // for those would only slow a user down (the per-call backoff still applies).
        if !near && before > self.min_rate {
            hold_back(row, now + delta(FAR_CUT_PAUSE));
        }
        row.cut_at = Some(now);
        row.adjusted_at = now;
        Some(row.rate)
    }

    /// Grows the rate for the time since it last changed (at most [`MAX_ACCRUAL`] of it): quickly up to
    /// [`KNEE`] of the last refusal's rate, additively above it; never past `max_rate`.
    fn recover(&self, row: &mut PacerRow, now: DateTime<Utc>) {
        let elapsed = (now - row.adjusted_at).to_std().unwrap_or_default().min(MAX_ACCRUAL).as_secs_f64();
        row.adjusted_at = now.max(row.adjusted_at);
        if let Some(ceiling) = row.ceiling {
            let knee = KNEE * ceiling;
            row.rate = if row.rate < knee {
                (row.rate * (1.0 + FAST_GROWTH_PER_SEC * elapsed)).min(knee)
            } else {
                row.rate + SLOW_GROWTH_PER_SEC * ceiling * elapsed
            };
        }
        row.rate = row.rate.clamp(self.min_rate, self.max_rate);
    }
}

/// Holds every process's next slot back until `until` (or longer, if it is held back longer already).
fn hold_back(row: &mut PacerRow, until: DateTime<Utc>) {
    row.blocked_until = Some(row.blocked_until.map_or(until, |current| current.max(until)));
}

/// Starts a new measuring window when the current one is over, keeping the rate accepted over it.
fn roll_window(row: &mut PacerRow, now: DateTime<Utc>) {
    let span = (now - row.window_started_at).to_std().unwrap_or_default();
    if span < WINDOW {
        return;
    }
    row.observed_rate = (span <= 2 * WINDOW).then(|| accepted(row) / span.as_secs_f64());
    row.window_started_at = now;
    row.window_leased = 0;
    row.window_refused = 0;
}

fn accepted(row: &PacerRow) -> f64 {
    (row.window_leased - row.window_refused).max(0) as f64
}

/// The rate Drive accepted lately: the last whole window's, or the current one's if higher.
fn used_rate(row: &PacerRow, now: DateTime<Utc>) -> Option<f64> {
    let span = (now - row.window_started_at).to_std().unwrap_or_default().max(MIN_SPAN);
    let current = (row.window_leased > 0).then(|| accepted(row) / span.as_secs_f64());
    match (row.observed_rate, current) {
        (Some(last), Some(current)) => Some(last.max(current)),
        (last, current) => last.or(current),
    }
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + millis).expect("a valid time")
    }

    fn fresh(policy: &PacerPolicy) -> PacerRow {
        PacerRow {
            drive_user: "google:1".into(),
            rate: policy.max_rate,
            ceiling: None,
            next_slot_at: at(0),
            blocked_until: None,
            adjusted_at: at(0),
            cut_at: None,
            window_started_at: at(0),
            window_leased: 0,
            window_refused: 0,
            observed_rate: None,
            refusals: 0,
            leased: 0,
        }
    }

    fn policy() -> PacerPolicy {
        PacerPolicy { max_rate: 200.0, min_rate: 1.0, lease_window: Duration::from_millis(100) }
    }

    #[test]
    fn leases_follow_one_timeline_whoever_takes_them() {
        let policy = policy();
        let mut row = fresh(&policy);
        let first = policy.lease(&mut row, at(0), 100);
        assert_eq!((first.start_at, first.granted, first.interval), (at(0), 20, Duration::from_millis(5)));
        // A second process leasing at the same moment gets the slots after the first one's.
        let second = policy.lease(&mut row, at(0), 100);
        assert_eq!((second.start_at, second.start_in), (at(100), Duration::from_millis(100)));
        // Nobody leases for a while: the timeline restarts one window before now (a burst may spend it), no earlier.
        let later = policy.lease(&mut row, at(5_000), 100);
        assert_eq!(
            (later.start_at, later.start_in, later.start_ago),
            (at(4_900), Duration::ZERO, Duration::from_millis(100))
        );
        assert_eq!(row.leased, 60);
        // A process with two requests waiting leases two slots, not the whole window.
        let small = policy.lease(&mut row, at(5_000), 2);
        assert_eq!((small.start_at, small.granted), (at(5_000), 2));
    }

    #[test]
    fn a_configured_rate_below_the_floor_lowers_the_floor() {
        let policy = PacerPolicy::with_max_rate(4);
        assert_eq!((policy.max_rate, policy.min_rate), (4.0, 4.0));
        let mut row = fresh(&policy);
        policy.refuse(&mut row, at(0), None);
        assert_eq!(row.rate, 4.0);
    }

    #[test]
    fn a_slow_rate_still_leases_one_slot_at_a_time() {
        let policy = PacerPolicy { max_rate: 2.0, ..policy() };
        let mut row = fresh(&policy);
        let grant = policy.lease(&mut row, at(0), 10);
        assert_eq!((grant.granted, grant.interval), (1, Duration::from_millis(500)));
        assert_eq!(policy.lease(&mut row, at(0), 10).start_at, at(500));
    }

    #[test]
    fn retry_after_holds_every_lease_back() {
        let policy = policy();
        let mut row = fresh(&policy);
        policy.refuse(&mut row, at(0), Some(Duration::from_secs(3)));
        let grant = policy.lease(&mut row, at(10), 1);
        assert_eq!((grant.start_at, grant.start_in), (at(3_000), Duration::from_millis(2_990)));
        // Once it has passed, it is forgotten.
        policy.lease(&mut row, at(10_000), 1);
        assert_eq!(row.blocked_until, None);
    }

    #[test]
    fn a_burst_of_refusals_cuts_once_and_the_first_cuts_hard() {
        let policy = policy();
        let mut row = fresh(&policy);
        assert!(policy.refuse(&mut row, at(0), None).is_some());
        assert_eq!((row.rate, row.ceiling), (100.0, Some(200.0)));
        // Other processes report the same burst: counted, not cut again.
        assert!(policy.refuse(&mut row, at(100), None).is_none());
        assert!(policy.refuse(&mut row, at(200), None).is_none());
        assert_eq!((row.rate, row.refusals), (100.0, 3));
        // Still refused after the window: still far below the last refusal, so halve again.
        assert!(policy.refuse(&mut row, at(300), None).is_some());
        assert_eq!((row.rate, row.ceiling), (50.0, Some(100.0)));
    }

    #[test]
    fn a_far_cut_holds_everyone_back_for_a_second_and_a_near_one_does_not() {
        let policy = policy();
        let mut row = fresh(&policy);
        policy.refuse(&mut row, at(0), None);
        let held = policy.lease(&mut row, at(10), 1);
        assert_eq!((held.start_at, held.start_in), (at(1_000), Duration::from_millis(990)));
        // Near the last refusal the rate is trimmed and requests keep flowing.
        let mut near = PacerRow { rate: 41.0, ceiling: Some(42.0), ..fresh(&policy) };
        policy.refuse(&mut near, at(0), None);
        assert_eq!(near.blocked_until, None);
        assert_eq!(policy.lease(&mut near, at(10), 1).start_in, Duration::ZERO);
        // At the floor (random refusals keep coming) nobody is held back for nothing.
        let mut floor = PacerRow { rate: policy.min_rate, ceiling: Some(40.0), ..fresh(&policy) };
        policy.refuse(&mut floor, at(0), None);
        assert_eq!(floor.blocked_until, None);
        // A longer Retry-After is kept.
        let mut told = fresh(&policy);
        policy.refuse(&mut told, at(0), Some(Duration::from_secs(5)));
        assert_eq!(told.blocked_until, Some(at(5_000)));
    }

    #[test]
    fn the_cut_starts_from_the_rate_really_used_not_the_rate_granted() {
        let policy = policy();
        // 200/s granted, but the processes leased only 34 slots over the last second, and 4 were refused.
        let mut row = PacerRow { window_leased: 34, window_refused: 4, ..fresh(&policy) };
        assert!(policy.refuse(&mut row, at(1_000), None).is_some());
        assert_eq!(row.ceiling, Some(30.0));
        assert_eq!(row.rate, 15.0);
        // A minute later with no leases in between, nothing is measured: the cut starts from the granted rate.
        let mut idle = PacerRow { rate: 80.0, ceiling: Some(90.0), window_leased: 3, ..fresh(&policy) };
        assert!(policy.refuse(&mut idle, at(60_000), None).is_some());
        assert_eq!(idle.ceiling, Some(80.0));
    }

    #[test]
    fn near_the_quota_the_cut_is_gentle() {
        let policy = policy();
        let mut row = PacerRow { rate: 41.0, ceiling: Some(42.0), ..fresh(&policy) };
        assert!(policy.refuse(&mut row, at(0), None).is_some());
        assert!((row.rate - 41.0 * 0.85).abs() < 1e-9, "{}", row.rate);
        assert_eq!(row.ceiling, Some(41.0));
    }

    #[test]
    fn recovery_is_fast_to_the_knee_then_additive() {
        let policy = policy();
        let mut row = PacerRow { rate: 20.0, ceiling: Some(40.0), ..fresh(&policy) };
        // Half a second doubles... by half: 20 → 30.
        policy.lease(&mut row, at(500), 1);
        assert!((row.rate - 30.0).abs() < 1e-9, "{}", row.rate);
        // Capped at the knee (0.9 × 40 = 36).
        policy.lease(&mut row, at(1_500), 1);
        assert!((row.rate - 36.0).abs() < 1e-9, "{}", row.rate);
        // Then 1% of the ceiling per second: +0.4 in one second.
        policy.lease(&mut row, at(2_500), 1);
        assert!((row.rate - 36.4).abs() < 1e-9, "{}", row.rate);
    }

    #[test]
    fn idle_time_does_not_accrue_and_the_rate_stays_within_bounds() {
        let policy = policy();
        let mut row = PacerRow { rate: 36.0, ceiling: Some(40.0), ..fresh(&policy) };
        // An hour without leases counts as one second.
        policy.lease(&mut row, at(3_600_000), 1);
        assert!((row.rate - 36.4).abs() < 1e-9, "{}", row.rate);
        let mut row = PacerRow { rate: 199.0, ceiling: Some(400.0), ..fresh(&policy) };
        policy.lease(&mut row, at(1_000), 1);
        assert_eq!(row.rate, 200.0);
        let mut row = PacerRow { rate: 1.5, ..fresh(&policy) };
        policy.refuse(&mut row, at(0), None);
        assert_eq!(row.rate, 1.0);
    }
}
