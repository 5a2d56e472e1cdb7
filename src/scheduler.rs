//! The hybrid scheduler: decides *when* a source fetches.
//!
//! Every account has a [`Schedule`] (pure policy, time passed in) wrapped in a
//! [`PollGate`] (the async side its watcher awaits). The rules, in order:
//!
//! 1. A polled source fetches every `interval`; a live push source only every
//!    `push_resync` (a safety net), since the server tells it about changes.
//! 2. Anyone may [`TriggerHandle::fire`] a refresh (the user, a hint from
//!    another source, wake from sleep, network back). Triggers arriving within
//!    `coalesce` of the first one are folded into a single fetch: the trigger
//!    channel only wakes the gate, the gate remembers the *first* pending one.
//! 3. Two fetches are never closer than `min_gap`, and a token bucket keeps the
//!    source under its server's rate limit, whatever the triggers say.
//! 4. After a failure the next attempt waits an exponential backoff with full
//!    jitter, or exactly the server's `Retry-After`. The user or "network back"
//!    may cut a backoff short, never a server's `Retry-After`.
//! 5. After a fetch that found something new, poll faster (`boost`) for a
//!    while: activity tends to come in bursts.
//! 6. While the user is away (screen locked, idle), a polled source slows to
//!    `away_interval`; when they return it fetches at once, so what they see
//!    first is fresh.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, TokenBucket};

/// Why a fetch happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The regular interval (or the first sync at start).
    Scheduled,
    /// The user asked ("Refresh now").
    Manual,
    /// Another source saw something that suggests this one changed.
    Hint,
    /// The machine woke from sleep.
    Wake,
    /// The network came back.
    NetworkBack,
    /// The user came back (unlocked the screen, touched the input).
    Returned,
}

impl Trigger {
    /// Whether this trigger may cut short a backoff that we chose ourselves.
    /// A hint may not: a struggling server is not helped by more requests.
    fn overrides_backoff(self) -> bool {
        matches!(self, Trigger::Manual | Trigger::Wake | Trigger::NetworkBack | Trigger::Returned)
    }
}

/// Whether the source currently relies on push or on polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fetch on the interval.
    Polling,
    /// The server pushes; fetch only on triggers and the safety resync.
    PushLive,
}

/// The knobs of one account's schedule.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    /// Base interval between fetches while polling.
    pub interval: Duration,
    /// Safety resync while push is live; `None` for never.
    pub push_resync: Option<Duration>,
    /// Triggers within this window of the first become one fetch.
    pub coalesce: Duration,
    /// Smallest gap between two fetch starts.
    pub min_gap: Duration,
    /// Server rate limit: (requests per minute, burst).
    pub rate_limit: Option<(u32, u32)>,
    /// Backoff (floor, base, max) after failures.
    pub backoff: (Duration, Duration, Duration),
    /// After a change: (faster interval, for how long).
    pub boost: Option<(Duration, Duration)>,
    /// Interval while the user is away; `None` polls as usual.
    pub away_interval: Option<Duration>,
}

impl ScheduleConfig {
    /// Defaults for a source polled every `interval`.
    pub fn polling(interval: Duration) -> Self {
        ScheduleConfig {
            interval,
            push_resync: None,
            coalesce: Duration::from_millis(300),
            min_gap: Duration::from_secs(2),
            rate_limit: None,
            backoff: (Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(300)),
            boost: None,
            away_interval: None,
        }
    }
}

impl ScheduleConfig {
    /// The same policy with every duration divided by `factor`: time runs
    /// `factor` times faster (benchmarks compress an hour into a minute).
    /// Rate limits stay per minute of the compressed clock.
    pub fn compressed(&self, factor: u32) -> ScheduleConfig {
        let f = factor.max(1);
        let scale = |d: Duration| d / f;
        ScheduleConfig {
            interval: scale(self.interval),
            push_resync: self.push_resync.map(scale),
            coalesce: scale(self.coalesce),
            min_gap: scale(self.min_gap),
            rate_limit: self.rate_limit,
            backoff: (scale(self.backoff.0), scale(self.backoff.1), scale(self.backoff.2)),
            boost: self.boost.map(|(fast, length)| (scale(fast), scale(length))),
            away_interval: self.away_interval.map(scale),
        }
    }
}

/// Used as "never" for instants: far enough to not matter, near enough not to
/// overflow `Instant` arithmetic on any platform.
const FAR: Duration = Duration::from_secs(86_400 * 365);

#[derive(Debug, Clone, Copy)]
struct Hold {
    until: Instant,
    /// Set by the server (Retry-After): no trigger may shorten it.
    hard: bool,
}

/// One account's fetch policy. Pure: every method takes `now`.
#[derive(Debug)]
pub struct Schedule {
    cfg: ScheduleConfig,
    mode: Mode,
    planned: Instant,
    pending: Option<(Instant, Trigger)>,
    last_start: Option<Instant>,
    hold: Option<Hold>,
    bucket: Option<TokenBucket>,
    backoff: Backoff,
    boost_until: Option<Instant>,
    away: bool,
}

impl Schedule {
    /// A schedule whose first fetch (the initial sync) is due at `now`.
    pub fn new(cfg: ScheduleConfig, now: Instant) -> Self {
        Self::with_rng(cfg, now, fastrand::Rng::new())
    }

    /// Like [`Schedule::new`] with seeded jitter, for tests.
    pub fn with_rng(cfg: ScheduleConfig, now: Instant, rng: fastrand::Rng) -> Self {
        let (floor, base, max) = cfg.backoff;
        Schedule {
            bucket: cfg.rate_limit.map(|(per_min, burst)| TokenBucket::per_minute(per_min, burst, now)),
            backoff: Backoff::with_rng(floor, base, max, rng),
            cfg,
            mode: Mode::Polling,
            planned: now,
            pending: None,
            last_start: None,
            hold: None,
            boost_until: None,
            away: false,
        }
    }

    /// When the next fetch may start.
    pub fn due(&self, now: Instant) -> Instant {
        let mut at = self.planned;
        if let Some((first, _)) = self.pending {
            at = at.min(first + self.cfg.coalesce);
        }
        if let Some(hold) = self.hold {
            at = at.max(hold.until);
        }
        if let Some(last) = self.last_start {
            at = at.max(last + self.cfg.min_gap);
        }
        if let Some(bucket) = &self.bucket {
            at = at.max(bucket.ready_at(now));
        }
        at
    }

    /// Records a trigger; later ones fold into the first pending one.
    pub fn trigger(&mut self, now: Instant, reason: Trigger) {
        if self.pending.is_none() {
            self.pending = Some((now, reason));
        }
        if reason.overrides_backoff() && self.hold.is_some_and(|h| !h.hard) {
            self.hold = None;
        }
    }

    /// A fetch starts now; returns why.
    pub fn start(&mut self, now: Instant) -> Trigger {
        let reason = self.pending.take().map_or(Trigger::Scheduled, |(_, r)| r);
        self.last_start = Some(now);
        if let Some(bucket) = &mut self.bucket {
            bucket.try_take(now);
        }
        self.planned = now + self.interval(now);
        reason
    }

    /// The fetch worked; `changed` says whether it found anything new.
    pub fn succeeded(&mut self, now: Instant, changed: bool) {
        self.backoff.reset();
        self.hold = None;
        if changed {
            self.boost_until = self.cfg.boost.map(|(_, length)| now + length);
        }
        self.planned = now + self.interval(now);
    }

    /// The fetch (or connection) failed. Returns when the next attempt is.
    /// `retry_after` is the server's demand and is honoured exactly, up to
    /// [`FAR`].
    pub fn failed(&mut self, now: Instant, retry_after: Option<Duration>) -> Instant {
        let (delay, hard) = match retry_after {
            Some(wait) => {
                self.backoff.next_delay();
                // A server may ask for any wait (Leantime's Retry-After is a
                // u64 of seconds): past `FAR`, `now + wait` would overflow
                // the clock and panic.
                (wait.min(FAR), true)
            }
            None => (self.backoff.next_delay(), false),
        };
        let until = now + delay;
        self.hold = Some(Hold { until, hard });
        self.planned = until;
        self.pending = None;
        until
    }

    /// Switches between push and polling.
    pub fn set_mode(&mut self, now: Instant, mode: Mode) {
        if self.mode == mode {
            return;
        }
        self.mode = mode;
        let next = now + self.interval(now);
        self.planned = match mode {
            // Push just went down: the next regular poll should not wait for
            // a resync timer that was set for the push case.
            Mode::Polling => self.planned.min(next),
            Mode::PushLive => next,
        };
    }

    /// The user left (`true`) or came back (`false`). Leaving stretches the
    /// next poll to the away interval; coming back fetches at once.
    pub fn set_away(&mut self, now: Instant, away: bool) {
        if self.away == away {
            return;
        }
        self.away = away;
        if away {
            // Before the first fetch there is nothing to slow down: the
            // initial sync still happens at once.
            if let Some(last) = self.last_start {
                self.planned = self.planned.max(last + self.interval(now));
            }
        } else {
            self.trigger(now, Trigger::Returned);
        }
    }

    /// Replaces the server's rate limit (learnt from its version, or set by
    /// the user): (requests per minute, burst). The bucket starts full.
    pub fn set_rate_limit(&mut self, now: Instant, rate_limit: Option<(u32, u32)>) {
        self.cfg.rate_limit = rate_limit;
        self.bucket = rate_limit.map(|(per_min, burst)| TokenBucket::per_minute(per_min, burst, now));
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    fn interval(&self, now: Instant) -> Duration {
        match self.mode {
            Mode::PushLive => self.cfg.push_resync.unwrap_or(FAR),
            Mode::Polling => match (self.cfg.boost, self.boost_until, self.cfg.away_interval) {
                (_, _, Some(away)) if self.away => away.max(self.cfg.interval),
                (Some((fast, _)), Some(until), _) if now < until => fast.min(self.cfg.interval),
                _ => self.cfg.interval,
            },
        }
    }
}

/// Fires triggers at one account's gate. Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub struct TriggerHandle(mpsc::Sender<Trigger>);

impl TriggerHandle {
    /// Asks for a refresh. If the gate's buffer is full, a refresh is already
    /// pending and this one would have been coalesced into it anyway.
    pub fn fire(&self, reason: Trigger) {
        let _ = self.0.try_send(reason);
    }
}

/// Triggers buffered per gate. More than this many unconsumed triggers can
/// only mean the gate is busy fetching, and they would coalesce anyway.
const TRIGGER_BUFFER: usize = 8;

/// The async side of a [`Schedule`]: what a watcher awaits between fetches.
#[derive(Debug)]
pub struct PollGate {
    schedule: Schedule,
    triggers: mpsc::Receiver<Trigger>,
    /// Whether the user is away; `None` when nobody reports presence.
    presence: Option<watch::Receiver<bool>>,
    /// Keeps the channel open so `recv` never returns `None` in a loop.
    _keepalive: mpsc::Sender<Trigger>,
    cancel: CancellationToken,
}

impl PollGate {
    /// A gate over `schedule`, and the handle that triggers it.
    pub fn new(schedule: Schedule, cancel: CancellationToken) -> (PollGate, TriggerHandle) {
        let (tx, rx) = mpsc::channel(TRIGGER_BUFFER);
        let gate = PollGate { schedule, triggers: rx, presence: None, _keepalive: tx.clone(), cancel };
        (gate, TriggerHandle(tx))
    }

    /// Follows the user's presence (`true` = away) from now on.
    pub fn follow_presence(&mut self, mut away: watch::Receiver<bool>) {
        let now_away = *away.borrow_and_update();
        self.schedule.set_away(Instant::now(), now_away);
        self.presence = Some(away);
    }

    /// Waits until the next fetch is due and starts it. `None` once cancelled.
    pub async fn next_poll(&mut self) -> Option<Trigger> {
        self.wait_until_due().await?;
        Some(self.schedule.start(Instant::now()))
    }

    /// Waits until a fetch would be due without starting one (used to sit out
    /// a backoff before reconnecting). `None` once cancelled.
    pub async fn wait_until_due(&mut self) -> Option<()> {
        loop {
            let due = self.schedule.due(Instant::now());
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return None,
                Some(reason) = self.triggers.recv() => {
                    self.schedule.trigger(Instant::now(), reason);
                }
                Some(away) = presence_change(&mut self.presence) => {
                    self.schedule.set_away(Instant::now(), away);
                }
                () = sleep_until(due) => return Some(()),
            }
        }
    }

    /// Waits for a trigger only (no timer): used while retrying would not help,
    /// e.g. after the server rejected the credentials. `None` once cancelled.
    pub async fn wait_for_trigger(&mut self) -> Option<Trigger> {
        tokio::select! {
            () = self.cancel.cancelled() => None,
            reason = self.triggers.recv() => {
                let reason = reason?;
                self.schedule.trigger(Instant::now(), reason);
                Some(reason)
            }
        }
    }

    /// The policy, to report outcomes and switch modes.
    pub fn schedule(&mut self) -> &mut Schedule {
        &mut self.schedule
    }
}

/// The next presence change; never resolves without a presence source (or
/// once it is gone).
async fn presence_change(presence: &mut Option<watch::Receiver<bool>>) -> Option<bool> {
    if let Some(rx) = presence {
        if rx.changed().await.is_ok() {
            return Some(*rx.borrow_and_update());
        }
        *presence = None;
    }
    std::future::pending().await
}
