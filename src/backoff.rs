//! Exponential backoff with full jitter, and a token bucket: the two small
//! policies that keep us polite to servers.
//!
//! Both are pure: time comes in as an argument and randomness from an
//! injected [`fastrand::Rng`], so they are tested with tables instead of
//! clocks.

use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff with "full jitter": the n-th retry waits a uniformly
/// random time in `[floor, min(max, base * 2^n)]`.
///
/// Full jitter rather than "equal jitter" because many clients of one server
/// (everyone's laptop waking at 9:00) should spread out, not move in step.
/// The floor keeps a lucky draw from retrying in a tight loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    floor: Duration,
    base: Duration,
    max: Duration,
    failures: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A backoff growing from `base` up to `max`, never shorter than `floor`.
    pub fn new(floor: Duration, base: Duration, max: Duration) -> Self {
        Self::with_rng(floor, base, max, fastrand::Rng::new())
    }

    /// Like [`Backoff::new`] with a seeded random source, for tests.
    pub fn with_rng(floor: Duration, base: Duration, max: Duration, rng: fastrand::Rng) -> Self {
        Backoff { floor, base, max: max.max(floor), failures: 0, rng }
    }

    /// Records a failure and returns how long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let span = ceiling.saturating_sub(self.floor).as_millis();
        let span = u64::try_from(span).unwrap_or(u64::MAX);
        self.floor + Duration::from_millis(self.rng.u64(0..=span))
    }

    /// The largest delay the next failure could draw.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).clamp(self.floor, self.max)
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A token bucket: up to `capacity` requests at once, refilled at one token
/// per `refill`. It models the server's rate limit ("10 requests a minute"),
/// so a burst of triggers cannot get us locked out.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: u32,
    refill: Duration,
    tokens: u32,
    /// When the oldest missing token comes back.
    last_refill: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(capacity: u32, refill: Duration, now: Instant) -> Self {
        let capacity = capacity.max(1);
        TokenBucket { capacity, refill, tokens: capacity, last_refill: now }
    }

    /// A bucket that allows `per_minute` requests a minute, in bursts of up
    /// to `burst`.
    pub fn per_minute(per_minute: u32, burst: u32, now: Instant) -> Self {
        let per_minute = per_minute.max(1);
        TokenBucket::new(burst, Duration::from_secs(60) / per_minute, now)
    }

    fn refill_to(&mut self, now: Instant) {
        if self.tokens >= self.capacity || self.refill.is_zero() {
            self.tokens = self.capacity;
            self.last_refill = now;
            return;
        }
        let elapsed = now.saturating_duration_since(self.last_refill);
        let earned = elapsed.as_nanos() / self.refill.as_nanos();
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(self.capacity);
            self.last_refill += self.refill * earned;
            if self.tokens == self.capacity {
                self.last_refill = now;
            }
        }
    }

    /// The earliest instant at which a token is available.
    pub fn ready_at(&self, now: Instant) -> Instant {
        let mut probe = self.clone();
        probe.refill_to(now);
        if probe.tokens > 0 { now } else { probe.last_refill + probe.refill }
    }

    /// Takes a token if one is available at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill_to(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_ceiling_doubles_up_to_the_cap() {
        let mut b = Backoff::with_rng(MS(500), MS(1000), MS(8000), fastrand::Rng::with_seed(1));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay();
        }
        assert_eq!(ceilings, [1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn backoff_delays_are_jittered_within_floor_and_ceiling() {
        let mut b = Backoff::with_rng(MS(500), MS(1000), MS(60_000), fastrand::Rng::with_seed(7));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(d >= MS(500) && d <= ceiling, "{d:?} outside [500ms, {ceiling:?}]");
            seen.insert(d);
        }
        assert!(seen.len() > 30, "delays should differ, got {}", seen.len());
    }

    #[test]
    fn backoff_reset_starts_small_again() {
        let mut b = Backoff::with_rng(MS(100), MS(1000), MS(60_000), fastrand::Rng::with_seed(3));
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.next_delay() <= MS(1000));
    }

    #[test]
    fn backoff_survives_huge_failure_counts() {
        let mut b = Backoff::with_rng(MS(1), MS(1000), MS(300_000), fastrand::Rng::with_seed(9));
        for _ in 0..200 {
            assert!(b.next_delay() <= MS(300_000));
        }
    }

    #[test]
    fn bucket_allows_a_burst_then_spaces_requests() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::per_minute(10, 2, t0);
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0), "burst of 2 is spent");
        assert_eq!(bucket.ready_at(t0), t0 + Duration::from_secs(6));
        assert!(!bucket.try_take(t0 + Duration::from_secs(5)));
        assert!(bucket.try_take(t0 + Duration::from_secs(6)));
        assert_eq!(bucket.ready_at(t0 + Duration::from_secs(6)), t0 + Duration::from_secs(12));
    }

    #[test]
    fn bucket_refills_to_capacity_not_beyond() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::per_minute(60, 3, t0);
        for _ in 0..3 {
            assert!(bucket.try_take(t0));
        }
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(bucket.try_take(later));
        }
        assert!(!bucket.try_take(later));
    }
}
