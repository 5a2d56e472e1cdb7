//! The watcher interface the sources implement, and the supervisor that runs
//! them.
//!
//! A watcher owns its connection and its loop; the core owns everything else.
//! It asks its [`WatcherContext`] when to fetch ([`WatcherContext::next_poll`]),
//! publishes what it found ([`WatcherContext::publish`]) and says how it is
//! connected. It never deduplicates, counts the badge or touches the disk.
//!
//! [`supervise`] runs one watcher for its whole life: a watcher that returns an
//! error or panics is shown as backing off and started again after the
//! schedule's backoff; one whose credentials were refused waits for the user
//! instead of hammering the server. Neither takes the app down.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::{AccountId, Connectivity, Item, Source};
use crate::scheduler::{Mode, PollGate, Trigger};

/// Why a watcher stopped. Each variant is handled differently by the
/// supervisor; the message is shown to the user as it is.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The server refused the credentials. Retrying would not help.
    #[error("the server refused the sign-in: {0}")]
    AuthFailed(String),
    /// The server asked us to slow down.
    #[error("the server is rate-limiting us; waiting {} s as it asked", .retry_after.as_secs())]
    RateLimited {
        /// How long the server asked us to wait.
        retry_after: Duration,
    },
    /// A network or server failure that may go away by itself.
    #[error("{0}")]
    Transient(String),
    /// The account cannot work in this build or with this server.
    #[error("{0}")]
    Unsupported(String),
    /// The user must change something first (a wrong address, a missing
    /// permission, a server too old). Retried when the user asks, or when
    /// the machine wakes or the network changes (a captive portal's login
    /// page looks like a wrong address).
    #[error("{0}")]
    NeedsAttention(String),
    /// The watcher panicked; the message is the panic's.
    #[error("internal error (the watcher crashed): {0}")]
    Crashed(String),
}

impl WatchError {
    /// The server's demanded wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WatchError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The same error with `secrets` cut out of its words (see
    /// [`crate::secrets::redact`]), for errors that quote a server.
    pub fn redacted(self, secrets: &[&secrecy::SecretString]) -> WatchError {
        let cut = |words: String| crate::secrets::redact(&words, secrets);
        match self {
            WatchError::AuthFailed(words) => WatchError::AuthFailed(cut(words)),
            WatchError::Transient(words) => WatchError::Transient(cut(words)),
            WatchError::Unsupported(words) => WatchError::Unsupported(cut(words)),
            WatchError::NeedsAttention(words) => WatchError::NeedsAttention(cut(words)),
            WatchError::Crashed(words) => WatchError::Crashed(cut(words)),
            limited @ WatchError::RateLimited { .. } => limited,
        }
    }
}

/// What a watcher found in one fetch or push event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// Items the server reports as unread or new. May repeat items published
    /// before; the core deduplicates by key.
    pub items: Vec<Item>,
    /// Keys of items read elsewhere (on another device, in the web app).
    pub read: Vec<String>,
    /// The exact unread count, when the source knows it.
    pub unread: Option<u32>,
    /// "Something new without a count", for sources that cannot count.
    pub dot: Option<bool>,
    /// An opaque source-specific position to resume from after a restart
    /// (e.g. IMAP `UIDVALIDITY:UIDNEXT`). Persisted with the dedup state.
    pub cursor: Option<String>,
    /// New items beyond `items` that the source counted but did not fetch
    /// (a burst bigger than it reads at once): they count in the
    /// announcement ("500 new mails") without being listed. Counted only by
    /// the update whose cursor moves past them, so never twice.
    pub unlisted: usize,
}

/// Something the user asks to do with one item, from a toast or the window.
/// ("Open" needs no server: the shell opens [`Item::link`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Mark the item read on the server (IMAP `\Seen`, Rocket.Chat
    /// `subscriptions.read`, Leantime `markRead`).
    MarkRead,
    /// Mark a task done (Leantime), where the server allows it.
    MarkDone,
}

/// Why an [`Action`] did not happen. The message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such (enabled) account.
    #[error("there is no enabled account `{0}`")]
    UnknownAccount(String),
    /// This source, server version or item cannot do that.
    #[error("{0}")]
    Unsupported(String),
    /// The server refused or could not be reached; nothing changed.
    #[error("{0}")]
    Failed(String),
}

/// A message from a watcher to the core.
#[derive(Debug)]
pub(crate) enum Report {
    Update(Update),
    Connectivity(Connectivity),
    Notice(Option<String>),
}

/// A report tagged with the account it concerns.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub account: AccountId,
    pub report: Report,
}

/// A source's watcher. One value per account; [`Watcher::run`] is called
/// again after each failure, so per-connection state belongs inside the
/// returned future, configuration in `self`.
pub trait Watcher: Send + Sync {
    /// Runs until cancelled (return `Ok`) or until something fails.
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>>;

    /// The actions [`Watcher::act`] can do to the item `key` (offered as
    /// toast buttons). The default: none.
    fn actions(&self, key: &str) -> Vec<Action> {
        let _ = key;
        Vec::new()
    }

    /// Does `action` to the item `key` on the server, on a connection of its
    /// own (never the watching one, which may be idling). Called beside
    /// [`Watcher::run`], possibly while it is between runs. The default:
    /// this source cannot.
    fn act<'a>(&'a self, key: &'a str, action: Action) -> BoxFuture<'a, Result<(), ActionError>> {
        let _ = key;
        Box::pin(async move { Err(ActionError::Unsupported(format!("this account cannot do {action:?}"))) })
    }
}

/// Everything a watcher may use: its schedule, its report channel and its
/// cancellation token.
#[derive(Debug)]
pub struct WatcherContext {
    account: AccountId,
    source: Source,
    gate: PollGate,
    reports: mpsc::Sender<Envelope>,
    cursor: Option<String>,
    cancel: CancellationToken,
}

impl WatcherContext {
    pub(crate) fn new(
        account: AccountId,
        source: Source,
        gate: PollGate,
        reports: mpsc::Sender<Envelope>,
        cursor: Option<String>,
        cancel: CancellationToken,
    ) -> Self {
        WatcherContext { account, source, gate, reports, cursor, cancel }
    }

    /// The account this watcher serves.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The kind of source.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The last cursor published (or restored from disk at start).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Cancelled when the core stops or the account is removed.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Waits until the scheduler says fetch. `None` means stop now.
    pub async fn next_poll(&mut self) -> Option<Trigger> {
        self.gate.next_poll().await
    }

    /// Reports the outcome of a fetch to the scheduler.
    pub fn poll_succeeded(&mut self, changed: bool) {
        self.gate.schedule().succeeded(Instant::now(), changed);
    }

    /// Hands an update to the core. Waits if the core is busy (the channel is
    /// bounded), so a flood of pushes slows the watcher instead of memory.
    pub async fn publish(&mut self, update: Update) {
        if let Some(cursor) = &update.cursor {
            self.cursor = Some(cursor.clone());
        }
        self.send(Report::Update(update)).await;
    }

    /// Replaces the server's rate limit, once the watcher knows it (e.g.
    /// from the server's version): (requests per minute, burst).
    pub fn set_rate_limit(&mut self, per_minute: u32, burst: u32) {
        self.gate.schedule().set_rate_limit(Instant::now(), Some((per_minute, burst)));
    }

    /// Asks for another fetch soon, within the schedule's limits (gap, rate
    /// limit): e.g. a cheap check saw a change that a full fetch must read.
    pub fn fetch_again_soon(&mut self) {
        self.gate.schedule().trigger(Instant::now(), Trigger::Hint);
    }

    /// A standing remark on the account that is not an error (e.g. "this API
    /// key sees its own notifications, not yours"); `None` clears it.
    pub async fn set_notice(&mut self, notice: Option<String>) {
        self.send(Report::Notice(notice)).await;
    }

    /// Push is connected: stop interval polling, show "live".
    pub async fn set_live(&mut self) {
        self.gate.schedule().set_mode(Instant::now(), Mode::PushLive);
        self.send(Report::Connectivity(Connectivity::LivePush)).await;
    }

    /// Polling (the source has no push, or push is down): show "polling".
    pub async fn set_polling(&mut self) {
        self.gate.schedule().set_mode(Instant::now(), Mode::Polling);
        self.send(Report::Connectivity(Connectivity::Polling)).await;
    }

    async fn set_connectivity(&self, state: Connectivity) {
        self.send(Report::Connectivity(state)).await;
    }

    async fn send(&self, report: Report) {
        let envelope = Envelope { account: self.account.clone(), report };
        // The receiver only goes away when the core is stopping; nothing is
        // left to tell then.
        let _ = self.reports.send(envelope).await;
    }
}

/// Runs `watcher` until its context is cancelled, restarting it after errors
/// and panics.
pub(crate) async fn supervise(watcher: Arc<dyn Watcher>, mut ctx: WatcherContext) {
    loop {
        ctx.set_connectivity(Connectivity::Connecting).await;
        let outcome = AssertUnwindSafe(watcher.run(&mut ctx)).catch_unwind().await;
        if ctx.cancel.is_cancelled() {
            return;
        }
        let error = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error,
            Err(panic) => WatchError::Crashed(panic_message(panic.as_ref())),
        };
        tracing::warn!(account = %ctx.account, source = %ctx.source, "watcher stopped: {error}");
        match error {
            WatchError::AuthFailed(reason) => {
                ctx.set_connectivity(Connectivity::AuthFailed { reason }).await;
                // Only the user can fix this; a manual refresh retries. A
                // hint or a wake-up would only resend refused credentials
                // (and servers lock accounts for that).
                loop {
                    match ctx.gate.wait_for_trigger().await {
                        None => return,
                        Some(Trigger::Manual) => break,
                        Some(_) => {}
                    }
                }
            }
            WatchError::NeedsAttention(reason) => {
                ctx.set_connectivity(Connectivity::NeedsAttention { reason }).await;
                loop {
                    match ctx.gate.wait_for_trigger().await {
                        None => return,
                        Some(Trigger::Manual | Trigger::Wake | Trigger::NetworkBack) => break,
                        Some(_) => {}
                    }
                }
            }
            WatchError::Unsupported(reason) => {
                ctx.set_connectivity(Connectivity::Disabled { reason: Some(reason) }).await;
                ctx.cancel.cancelled().await;
                return;
            }
            error => {
                let now = Instant::now();
                let until = ctx.gate.schedule().failed(now, error.retry_after());
                let until = wall_clock(until, now);
                let state = match error {
                    WatchError::RateLimited { .. } => Connectivity::RateLimited { until },
                    error => Connectivity::BackingOff { reason: error.to_string(), until },
                };
                ctx.set_connectivity(state).await;
                if ctx.gate.wait_until_due().await.is_none() {
                    return;
                }
            }
        }
    }
}

/// Converts a monotonic deadline into the wall-clock time shown to the user.
fn wall_clock(deadline: Instant, now: Instant) -> Timestamp {
    let ahead = deadline.saturating_duration_since(now);
    Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(ahead).unwrap_or(jiff::SignedDuration::ZERO))
        .unwrap_or(Timestamp::MAX)
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}
