//! Sleep/resume detection: the monotonic clock stops while the machine
//! sleeps, the wall clock does not, so a jump between the two over one check
//! means we were asleep. Every connection is then suspect (the server may
//! have dropped it long ago) and every source resyncs.
//!
//! Linux (`CLOCK_MONOTONIC`) and macOS (`CLOCK_UPTIME_RAW`) stop their
//! monotonic clock in sleep; on Windows it keeps running, so this detects
//! nothing there and a power-event hook is needed instead.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Compares successive readings of both clocks.
#[derive(Debug, Clone)]
pub struct WakeDetector {
    wall: SystemTime,
    mono: Instant,
    threshold: Duration,
}

impl WakeDetector {
    /// Starts from one reading of both clocks.
    pub fn new(wall: SystemTime, mono: Instant, threshold: Duration) -> Self {
        WakeDetector { wall, mono, threshold }
    }

    /// Takes a new reading; returns roughly how long we slept if the wall
    /// clock ran ahead of the monotonic one by more than the threshold. A
    /// wall clock set *back* is not a sleep.
    pub fn observe(&mut self, wall: SystemTime, mono: Instant) -> Option<Duration> {
        let mono_elapsed = mono.saturating_duration_since(self.mono);
        let wall_elapsed = wall.duration_since(self.wall).unwrap_or(Duration::ZERO);
        self.wall = wall;
        self.mono = mono;
        let gap = wall_elapsed.saturating_sub(mono_elapsed);
        (gap > self.threshold).then_some(gap)
    }
}

/// Checks the clocks every `every` until cancelled, calling `on_wake` after
/// each detected sleep.
pub async fn wake_loop(
    every: Duration,
    threshold: Duration,
    cancel: CancellationToken,
    on_wake: impl Fn(Duration) + Send + 'static,
) {
    let mut detector = WakeDetector::new(SystemTime::now(), Instant::now(), threshold);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {
                if let Some(slept) = detector.observe(SystemTime::now(), Instant::now()) {
                    on_wake(slept);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn clocks_moving_together_are_not_a_wake() {
        let (wall, mono) = (SystemTime::UNIX_EPOCH + S(1_000_000), Instant::now());
        let mut d = WakeDetector::new(wall, mono, S(10));
        assert_eq!(d.observe(wall + S(15), mono + S(15)), None);
        assert_eq!(d.observe(wall + S(35), mono + S(30)), None, "5 s of drift is below the threshold");
    }

    #[test]
    fn wall_clock_running_ahead_is_a_wake() {
        let (wall, mono) = (SystemTime::UNIX_EPOCH + S(1_000_000), Instant::now());
        let mut d = WakeDetector::new(wall, mono, S(10));
        assert_eq!(d.observe(wall + S(3615), mono + S(15)), Some(S(3600)));
        assert_eq!(d.observe(wall + S(3630), mono + S(30)), None, "one wake is reported once");
    }

    #[test]
    fn wall_clock_set_back_is_not_a_wake() {
        let (wall, mono) = (SystemTime::UNIX_EPOCH + S(1_000_000), Instant::now());
        let mut d = WakeDetector::new(wall, mono, S(10));
        assert_eq!(d.observe(wall - S(3600), mono + S(15)), None);
    }
}
