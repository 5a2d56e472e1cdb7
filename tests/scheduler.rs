//! When a source fetches: the pure `Schedule` policy (driven with explicit
//! instants) and the async `PollGate` (driven on tokio's paused clock).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigie::scheduler::{Mode, PollGate, Schedule, ScheduleConfig, Trigger};

use crate::support::{PATIENCE, if_within, ms, secs, within};

/// A config with no coalescing delay, gap or limit beyond what a test sets.
fn config(interval: Duration) -> ScheduleConfig {
    ScheduleConfig {
        interval,
        push_resync: None,
        coalesce: ms(300),
        min_gap: secs(2),
        rate_limit: None,
        backoff: (secs(1), secs(2), secs(300)),
        boost: None,
        away_interval: None,
    }
}

fn seeded(cfg: ScheduleConfig, now: Instant, seed: u64) -> Schedule {
    Schedule::with_rng(cfg, now, fastrand::Rng::with_seed(seed))
}

/// One fetch as seen by a [`Fetcher`]: when it started (relative to the
/// fetcher's start) and why.
type Fetch = (Duration, Trigger);

/// A task that fetches whenever its gate lets it (each fetch succeeds at
/// once) and reports every fetch.
struct Fetcher {
    fetches: mpsc::UnboundedReceiver<Fetch>,
    triggers: vigie::scheduler::TriggerHandle,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Fetcher {
    fn start(cfg: ScheduleConfig) -> Fetcher {
        let t0 = Instant::now();
        let cancel = CancellationToken::new();
        let schedule = seeded(cfg, t0, 1);
        let (mut gate, triggers) = PollGate::new(schedule, cancel.clone());
        let (tx, fetches) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(reason) = gate.next_poll().await {
                let _ = tx.send((t0.elapsed(), reason));
                gate.schedule().succeeded(Instant::now(), false);
            }
        });
        Fetcher { fetches, triggers, cancel, task }
    }

    async fn next(&mut self) -> Fetch {
        within(PATIENCE, "the next fetch", self.fetches.recv()).await.expect("the fetcher stopped")
    }

    /// Every fetch reported so far.
    fn drain(&mut self) -> Vec<Fetch> {
        let mut all = Vec::new();
        while let Ok(fetch) = self.fetches.try_recv() {
            all.push(fetch);
        }
        all
    }

    async fn stop(self) {
        self.cancel.cancel();
        within(secs(1), "the fetcher to stop", self.task).await.expect("the fetcher task");
    }
}

/// Fires `reason` every `every` for `span` (simulated time).
async fn storm(triggers: &vigie::scheduler::TriggerHandle, reason: Trigger, every: Duration, span: Duration) {
    let end = Instant::now() + span;
    while Instant::now() < end {
        triggers.fire(reason);
        tokio::time::sleep(every).await;
    }
}

// --- Intervals ---------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_first_poll_is_due_at_once_then_every_interval() {
    let mut fetcher = Fetcher::start(config(secs(60)));
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(fetcher.next().await);
    }
    assert_eq!(
        seen,
        [
            (secs(0), Trigger::Scheduled),
            (secs(60), Trigger::Scheduled),
            (secs(120), Trigger::Scheduled),
            (secs(180), Trigger::Scheduled),
        ]
    );
    fetcher.stop().await;
}

// --- Triggers: coalescing, gaps, rate limit ----------------------------------

#[tokio::test(start_paused = true)]
async fn triggers_within_the_coalesce_window_become_one_fetch_with_the_first_reason() {
    let mut fetcher = Fetcher::start(config(secs(600)));
    assert_eq!(fetcher.next().await, (secs(0), Trigger::Scheduled), "initial sync");

    tokio::time::sleep(secs(10)).await;
    fetcher.triggers.fire(Trigger::Hint);
    tokio::time::sleep(ms(100)).await;
    fetcher.triggers.fire(Trigger::Manual);
    tokio::time::sleep(ms(100)).await;
    fetcher.triggers.fire(Trigger::Wake);

    assert_eq!(
        fetcher.next().await,
        (secs(10) + ms(300), Trigger::Hint),
        "one fetch, one coalesce window after the first trigger, for the first trigger's reason"
    );
    assert_eq!(
        fetcher.next().await,
        (secs(10) + ms(300) + secs(600), Trigger::Scheduled),
        "the folded triggers caused no second fetch: the next one is the regular interval"
    );
    fetcher.stop().await;
}

#[tokio::test(start_paused = true)]
async fn min_gap_holds_under_a_storm_of_triggers() {
    let cfg = ScheduleConfig { min_gap: secs(5), ..config(secs(600)) };
    let mut fetcher = Fetcher::start(cfg);
    storm(&fetcher.triggers, Trigger::Manual, ms(50), secs(120)).await;
    let fetches = fetcher.drain();

    let starts: Vec<Duration> = fetches.iter().map(|f| f.0).collect();
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= secs(5), "fetches {:?} and {:?} are closer than min_gap", pair[0], pair[1]);
    }
    // Not starved either: the storm is served once per gap.
    assert!((24..=25).contains(&fetches.len()), "{} fetches in 2 min with a 5 s gap: {starts:?}", fetches.len());
    fetcher.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_token_bucket_keeps_a_trigger_storm_under_the_rate_limit() {
    let (per_minute, burst) = (6, 3);
    let cfg = ScheduleConfig { rate_limit: Some((per_minute, burst)), min_gap: secs(1), ..config(secs(600)) };
    let mut fetcher = Fetcher::start(cfg);
    storm(&fetcher.triggers, Trigger::Manual, ms(100), secs(300)).await;
    let fetches = fetcher.drain();
    let starts: Vec<Duration> = fetches.iter().map(|f| f.0).collect();

    // Over 5 minutes the server allows the burst plus 6 a minute.
    let allowed = (burst + per_minute * 5) as usize;
    assert!(fetches.len() <= allowed, "{} fetches > {allowed} allowed: {starts:?}", fetches.len());
    assert!(fetches.len() >= allowed - 1, "the limit starved the storm: {} fetches: {starts:?}", fetches.len());
    // And in no sliding minute beyond the burst plus that minute's refill.
    for (i, start) in starts.iter().enumerate() {
        let in_minute = starts[i..].iter().take_while(|s| **s < *start + secs(60)).count();
        assert!(in_minute <= (burst + per_minute) as usize, "{in_minute} fetches in the minute from {start:?}");
    }
    fetcher.stop().await;
}

// --- Failures -----------------------------------------------------------------

#[test]
fn failures_back_off_exponentially_with_jitter_within_bounds() {
    let t0 = Instant::now();
    let (floor, base, max) = (secs(1), secs(2), secs(300));
    let cfg = ScheduleConfig { backoff: (floor, base, max), ..config(secs(60)) };
    let mut schedule = seeded(cfg, t0, 42);
    let mut delays = Vec::new();
    for n in 0..12u32 {
        let now = t0 + secs(u64::from(n) * 1_000);
        schedule.start(now);
        let until = schedule.failed(now, None);
        let delay = until - now;
        let ceiling = (base * 2u32.pow(n)).min(max);
        assert!(delay >= floor && delay <= ceiling, "failure #{n}: {delay:?} outside [{floor:?}, {ceiling:?}]");
        let min_gap = secs(2);
        assert_eq!(schedule.due(now), until.max(now + min_gap), "failure #{n}: next attempt at the backoff's end (or min_gap)");
        assert_eq!(schedule.failures(), n + 1);
        delays.push(delay);
    }
    // Jittered: the capped tail does not sit on the cap.
    let tail: std::collections::BTreeSet<_> = delays[8..].iter().collect();
    assert!(tail.len() > 1, "capped delays should be spread by jitter: {delays:?}");

    let same_seed: Vec<Duration> = {
        let mut again = seeded(ScheduleConfig { backoff: (floor, base, max), ..config(secs(60)) }, t0, 42);
        (0..12u64).map(|n| {
            let now = t0 + secs(n * 1_000);
            again.failed(now, None) - now
        }).collect()
    };
    assert_eq!(delays, same_seed, "with_rng makes the jitter reproducible");
}

#[test]
fn a_success_resets_the_backoff() {
    let t0 = Instant::now();
    let cfg = ScheduleConfig { backoff: (secs(1), secs(2), secs(300)), ..config(secs(60)) };
    let mut schedule = seeded(cfg, t0, 7);
    let mut now = t0;
    for _ in 0..8 {
        now = schedule.failed(now, None);
    }
    assert_eq!(schedule.failures(), 8);

    schedule.start(now);
    schedule.succeeded(now, false);
    assert_eq!(schedule.failures(), 0);
    assert_eq!(schedule.due(now), now + secs(60), "after a success the interval applies again");
    let delay = schedule.failed(now, None) - now;
    assert!(delay <= secs(2), "the first failure after a success waits at most the base, got {delay:?}");
}

#[test]
fn a_server_retry_after_is_honoured_exactly_and_a_manual_trigger_does_not_shorten_it() {
    let t0 = Instant::now();
    let mut schedule = seeded(config(secs(60)), t0, 3);
    schedule.start(t0);
    let until = schedule.failed(t0, Some(secs(30)));
    assert_eq!(until, t0 + secs(30), "exactly the server's Retry-After");

    for (at, reason) in [(secs(5), Trigger::Manual), (secs(6), Trigger::NetworkBack), (secs(7), Trigger::Wake)] {
        schedule.trigger(t0 + at, reason);
        assert_eq!(schedule.due(t0 + at), t0 + secs(30), "{reason:?} must not cut a server's Retry-After");
    }
    assert_eq!(schedule.start(t0 + secs(30)), Trigger::Manual, "the waiting trigger is served at the end");
}

#[test]
fn a_manual_or_network_back_trigger_cuts_a_self_chosen_backoff_short() {
    for reason in [Trigger::Manual, Trigger::NetworkBack] {
        let t0 = Instant::now();
        // A floor of a minute: any backoff is at least that long.
        let cfg = ScheduleConfig { backoff: (secs(60), secs(120), secs(600)), ..config(secs(600)) };
        let mut schedule = seeded(cfg, t0, 5);
        schedule.start(t0);
        let until = schedule.failed(t0, None);
        assert!(until >= t0 + secs(60));

        schedule.trigger(t0 + secs(5), reason);
        assert_eq!(schedule.due(t0 + secs(5)), t0 + secs(5) + ms(300), "{reason:?} retries after the coalesce window");
        assert_eq!(schedule.start(t0 + secs(5) + ms(300)), reason);
    }
}

#[test]
fn a_hint_does_not_cut_a_backoff_short() {
    let t0 = Instant::now();
    let cfg = ScheduleConfig { backoff: (secs(60), secs(120), secs(600)), ..config(secs(600)) };
    let mut schedule = seeded(cfg, t0, 5);
    schedule.start(t0);
    let until = schedule.failed(t0, None);

    schedule.trigger(t0 + secs(5), Trigger::Hint);
    assert_eq!(schedule.due(t0 + secs(5)), until, "a struggling server gets its backoff");
    assert_eq!(schedule.start(until), Trigger::Hint, "the hint is served once the backoff is over");
}

// --- Push and polling -----------------------------------------------------------

/// Polls `gate` until `end`, reporting success after each fetch.
async fn fetches_until(gate: &mut PollGate, t0: Instant, end: Instant) -> Vec<Fetch> {
    let mut fetches = Vec::new();
    while let Some(Some(reason)) = if_within(end.saturating_duration_since(Instant::now()), gate.next_poll()).await {
        fetches.push((t0.elapsed(), reason));
        gate.schedule().succeeded(Instant::now(), false);
    }
    fetches
}

#[tokio::test(start_paused = true)]
async fn push_live_stops_interval_polling_and_falling_back_to_polling_resumes_it() {
    let t0 = Instant::now();
    let cfg = ScheduleConfig { push_resync: Some(secs(1_800)), ..config(secs(60)) };
    let (mut gate, _triggers) = PollGate::new(seeded(cfg, t0, 1), CancellationToken::new());
    assert_eq!(gate.next_poll().await, Some(Trigger::Scheduled), "initial sync");
    gate.schedule().set_mode(Instant::now(), Mode::PushLive);
    assert_eq!(gate.schedule().mode(), Mode::PushLive);

    // 65 minutes live; polling every 60 s would have fetched 65 times.
    let live = fetches_until(&mut gate, t0, t0 + secs(3_900)).await;
    assert_eq!(live, [(secs(1_800), Trigger::Scheduled), (secs(3_600), Trigger::Scheduled)], "only the safety resyncs");

    // Push goes down.
    gate.schedule().set_mode(Instant::now(), Mode::Polling);
    let down = t0.elapsed();
    let polling = fetches_until(&mut gate, t0, t0 + down + secs(200)).await;
    assert_eq!(
        polling,
        [
            (down + secs(60), Trigger::Scheduled),
            (down + secs(120), Trigger::Scheduled),
            (down + secs(180), Trigger::Scheduled),
        ],
        "back to polling: every interval from the fallback"
    );
}

#[tokio::test(start_paused = true)]
async fn while_push_is_live_without_resync_only_triggers_fetch() {
    let t0 = Instant::now();
    let (mut gate, triggers) = PollGate::new(seeded(config(secs(60)), t0, 1), CancellationToken::new());
    assert_eq!(gate.next_poll().await, Some(Trigger::Scheduled), "initial sync");
    gate.schedule().set_mode(Instant::now(), Mode::PushLive);

    assert_eq!(if_within(secs(86_400), gate.next_poll()).await, None, "no fetch in a day of live push");

    let asked = Instant::now();
    triggers.fire(Trigger::Manual);
    assert_eq!(gate.next_poll().await, Some(Trigger::Manual), "a trigger still fetches");
    assert_eq!(asked.elapsed(), ms(300), "after the coalesce window");
}

// --- Boost ----------------------------------------------------------------------

#[test]
fn after_a_change_polls_come_every_fast_interval_for_the_boost_then_settle_back() {
    let t0 = Instant::now();
    let cfg = ScheduleConfig { boost: Some((secs(10), secs(60))), min_gap: secs(1), ..config(secs(300)) };
    let mut schedule = seeded(cfg, t0, 1);
    assert_eq!(schedule.start(t0), Trigger::Scheduled);
    schedule.succeeded(t0, true);

    let mut now = t0;
    let mut polls = Vec::new();
    for _ in 0..8 {
        now = schedule.due(now);
        schedule.start(now);
        schedule.succeeded(now, false);
        polls.push((now - t0).as_secs());
    }
    assert_eq!(polls, [10, 20, 30, 40, 50, 60, 360, 660]);
}

#[test]
fn a_fetch_without_change_does_not_boost() {
    let t0 = Instant::now();
    let cfg = ScheduleConfig { boost: Some((secs(10), secs(60))), ..config(secs(300)) };
    let mut schedule = seeded(cfg, t0, 1);
    schedule.start(t0);
    schedule.succeeded(t0, false);
    assert_eq!(schedule.due(t0), t0 + secs(300));
}

// --- Away -----------------------------------------------------------------------

#[test]
fn while_the_user_is_away_polls_come_every_away_interval_and_returning_fetches_at_once() {
    let t0 = Instant::now();
    let cfg = ScheduleConfig { away_interval: Some(secs(300)), ..config(secs(60)) };
    let mut schedule = seeded(cfg, t0, 1);
    schedule.start(t0);
    schedule.succeeded(t0, false);

    schedule.set_away(t0 + secs(10), true);
    assert_eq!(schedule.due(t0 + secs(10)), t0 + secs(300), "the planned poll moves out to the away interval");
    let polled = schedule.due(t0);
    schedule.start(polled);
    schedule.succeeded(polled, false);
    assert_eq!(schedule.due(polled), polled + secs(300), "and stays there while away");

    let back = polled + secs(42);
    schedule.set_away(back, false);
    assert_eq!(schedule.due(back), back + ms(300), "one coalesce window after the user is back");
    assert_eq!(schedule.start(back + ms(300)), Trigger::Returned);
    schedule.succeeded(back + ms(300), false);
    assert_eq!(schedule.due(back + ms(300)), back + ms(300) + secs(60), "then the usual interval");
}

#[test]
fn away_slows_even_a_boosted_schedule() {
    let t0 = Instant::now();
    let cfg = ScheduleConfig { away_interval: Some(secs(300)), boost: Some((secs(10), secs(600))), ..config(secs(60)) };
    let mut schedule = seeded(cfg, t0, 1);
    schedule.start(t0);
    schedule.succeeded(t0, true);
    assert_eq!(schedule.due(t0), t0 + secs(10), "boosted");

    schedule.set_away(t0, true);
    assert_eq!(schedule.due(t0), t0 + secs(300));
}

#[tokio::test(start_paused = true)]
async fn a_gate_follows_the_presence_it_is_given() {
    let cfg = ScheduleConfig { away_interval: Some(secs(300)), ..config(secs(60)) };
    let (mut gate, _triggers) = PollGate::new(seeded(cfg, Instant::now(), 1), CancellationToken::new());
    let (away, presence) = tokio::sync::watch::channel(false);
    gate.follow_presence(presence);
    assert_eq!(gate.next_poll().await, Some(Trigger::Scheduled), "initial sync");
    gate.schedule().succeeded(Instant::now(), false);
    away.send_replace(true);

    let t0 = Instant::now();
    let waiting = tokio::spawn(async move {
        let first = gate.next_poll().await;
        gate.schedule().succeeded(Instant::now(), false);
        let first_at = Instant::now();
        (gate, first, first_at)
    });
    let (mut gate, first, first_at) = within(secs(600), "the away poll", waiting).await.expect("gate task");
    assert_eq!((first, first_at - t0), (Some(Trigger::Scheduled), secs(300)));

    let returning = tokio::spawn(async move { (gate.next_poll().await, Instant::now()) });
    tokio::time::sleep(secs(20)).await;
    let back = Instant::now();
    away.send_replace(false);
    let (poll, at) = within(secs(5), "the poll on return", returning).await.expect("gate task");
    assert_eq!((poll, at - back), (Some(Trigger::Returned), ms(300)));
}

// --- The gate -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_cancelled_gate_returns_none_at_once() {
    let cancel = CancellationToken::new();
    let (mut gate, _triggers) = PollGate::new(seeded(config(secs(3_600)), Instant::now(), 1), cancel.clone());
    assert_eq!(gate.next_poll().await, Some(Trigger::Scheduled), "initial sync");

    let waiting = tokio::spawn(async move {
        let asked = Instant::now();
        (gate.next_poll().await, asked.elapsed())
    });
    tokio::time::sleep(secs(10)).await;
    cancel.cancel();
    let (poll, waited) = within(secs(1), "the cancelled gate to return", waiting).await.expect("gate task");
    assert_eq!(poll, None, "cancelled: no fetch");
    assert_eq!(waited, secs(10), "returned when cancelled, not at the hour-long interval");
}

#[tokio::test(start_paused = true)]
async fn a_trigger_wakes_a_gate_waiting_on_a_long_interval() {
    let cfg = ScheduleConfig { min_gap: secs(1), ..config(secs(86_400)) };
    let (mut gate, triggers) = PollGate::new(seeded(cfg, Instant::now(), 1), CancellationToken::new());
    assert_eq!(gate.next_poll().await, Some(Trigger::Scheduled), "initial sync");

    let waiting = tokio::spawn(async move {
        let asked = Instant::now();
        (gate.next_poll().await, asked.elapsed())
    });
    tokio::time::sleep(secs(30)).await;
    triggers.fire(Trigger::Manual);
    let (poll, waited) = within(secs(5), "the woken gate", waiting).await.expect("gate task");
    assert_eq!(poll, Some(Trigger::Manual));
    assert_eq!(waited, secs(30) + ms(300), "fetched one coalesce window after the trigger, not after a day");
}
