//! Starting and stopping the notifier core.
//!
//! [`Core::start`] loads the state file, spawns one supervised task per
//! enabled account, the hub task and the wake detector, and returns at once
//! with the last known badge already in [`CoreHandle::snapshot`], before any
//! network. [`Core::stop`] is the shutdown protocol: cancel, wait a bounded
//! time for tasks to finish, then abort and await the stragglers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{AccountConfig, HintRule};
use crate::event::{CoreEvent, Snapshot};
use crate::hub::Hub;
use crate::links::{LinkRefused, Origins};
use crate::model::AccountId;
use crate::pause::QuietHours;
use crate::scheduler::{PollGate, Schedule, ScheduleConfig, Trigger, TriggerHandle};
use crate::store::{StateStore, StoreError};
use crate::{netwatch, presence, wake};
use crate::watcher::{Action, ActionError, Envelope, Watcher, WatcherContext, supervise};

/// Reports in flight from watchers to the hub. Small: the hub is fast, and a
/// full channel makes a flooding watcher wait rather than grow memory.
const REPORT_BUFFER: usize = 64;
/// Events in flight to the shell or stdout.
const EVENT_BUFFER: usize = 256;
/// How long [`Core::stop`] waits for tasks to wind down before aborting them.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How often the wake detector compares the clocks.
const WAKE_CHECK_EVERY: Duration = Duration::from_secs(15);
/// A wall-clock jump larger than this over one check counts as a wake.
const WAKE_THRESHOLD: Duration = Duration::from_secs(10);

/// One account to run.
pub struct AccountSpec {
    /// Its configuration.
    pub config: AccountConfig,
    /// Its fetch policy.
    pub schedule: ScheduleConfig,
    /// Its watcher.
    pub watcher: Box<dyn Watcher>,
}

/// A task that runs beside the watchers until its token is cancelled (the
/// demo's simulated servers).
pub type BackgroundTask = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// Everything [`Core::start`] needs.
pub struct Setup {
    /// Where the state file lives.
    pub state_file: PathBuf,
    /// Cross-source refresh rules.
    pub hints: Vec<HintRule>,
    /// Whether these are the built-in demo accounts.
    pub demo: bool,
    /// The accounts.
    pub accounts: Vec<AccountSpec>,
    /// Tasks to run beside the watchers.
    pub background: Vec<BackgroundTask>,
    /// Problems found before the core started (e.g. an invalid config file),
    /// shown in the snapshot and announced as the first events.
    pub problems: Vec<String>,
    /// Daily quiet hours: toasts held, one digest when they end.
    pub quiet_hours: Option<QuietHours>,
    /// Follow the desktop session's lock and idle state ([`presence`]), so
    /// polling slows while the user is away. Off in tests, which drive
    /// [`CoreHandle::set_away`] themselves.
    pub follow_presence: bool,
}

impl Setup {
    /// An empty setup storing its state at `state_file`.
    pub fn new(state_file: PathBuf) -> Self {
        Setup {
            state_file,
            hints: Vec::new(),
            demo: false,
            accounts: Vec::new(),
            background: Vec::new(),
            problems: Vec::new(),
            quiet_hours: None,
            follow_presence: false,
        }
    }
}

enum Command {
    Pause(Option<Timestamp>),
    QuietHours(Option<QuietHours>),
    /// An action succeeded on the server: tell the UI the item is read.
    Acted { account: AccountId, key: String },
}

/// How long an action may take before the user is told it failed.
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// A cheap, cloneable handle to a running core. It stays valid across
/// [`Core::reload`]: it always reaches the accounts running now.
#[derive(Clone)]
pub struct CoreHandle {
    live: Arc<RwLock<Arc<Live>>>,
    snapshot: watch::Receiver<Snapshot>,
    away: Arc<watch::Sender<bool>>,
}

/// The parts of a handle that change when the core reloads.
struct Live {
    triggers: BTreeMap<AccountId, TriggerHandle>,
    /// Weak: a handle must not keep a stopped core's watchers alive.
    watchers: BTreeMap<AccountId, Weak<dyn Watcher>>,
    /// Where each account's item links may lead.
    origins: BTreeMap<AccountId, Origins>,
    commands: mpsc::Sender<Command>,
}

impl CoreHandle {
    fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The latest state.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes on every state change.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }

    /// Asks every account to refresh.
    pub fn refresh_all(&self, reason: Trigger) {
        for trigger in self.live().triggers.values() {
            trigger.fire(reason);
        }
    }

    /// Asks one account to refresh. Returns `false` for an unknown (or
    /// disabled) account.
    pub fn refresh(&self, account: &AccountId, reason: Trigger) -> bool {
        self.live().triggers.get(account).map(|t| t.fire(reason)).is_some()
    }

    /// Pauses notifications until `until` (`None` resumes them). Items still
    /// count in the badge while paused; they only show no toast.
    pub async fn pause(&self, until: Option<Timestamp>) {
        let commands = self.live().commands.clone();
        let _ = commands.send(Command::Pause(until)).await;
    }

    /// Sets the daily quiet hours (`None`: none); items held back while
    /// they last are announced as one digest when they end.
    pub async fn set_quiet_hours(&self, quiet: Option<QuietHours>) {
        let commands = self.live().commands.clone();
        let _ = commands.send(Command::QuietHours(quiet)).await;
    }

    /// Tells the scheduler whether the user is away (screen locked, idle):
    /// polled sources slow down while away and refresh when they return.
    pub fn set_away(&self, away: bool) {
        if self.away.send_replace(away) != away {
            tracing::info!(away, "the user's presence changed");
        }
    }

    /// The actions `account`'s watcher offers for item `key` (none for an
    /// unknown account).
    pub fn actions_for(&self, account: &AccountId, key: &str) -> Vec<Action> {
        self.live().watchers.get(account).and_then(Weak::upgrade).map(|w| w.actions(key)).unwrap_or_default()
    }

    /// `link`, an item of `account`'s, if it may be opened: see
    /// [`crate::links`].
    pub fn link_to_open(&self, account: &AccountId, link: &str) -> Result<reqwest::Url, LinkRefused> {
        self.live().origins.get(account).cloned().unwrap_or_default().check(link)
    }

    /// Does `action` to item `key` of `account` on its server and, when it
    /// worked, announces the item as read and refreshes the account so its
    /// count follows. Runs on the caller's task; nothing is left behind if
    /// the caller gives up.
    pub async fn act(&self, account: &AccountId, key: &str, action: Action) -> Result<(), ActionError> {
        let live = self.live();
        let watcher = live
            .watchers
            .get(account)
            .and_then(Weak::upgrade)
            .ok_or_else(|| ActionError::UnknownAccount(account.to_string()))?;
        match tokio::time::timeout(ACTION_TIMEOUT, watcher.act(key, action)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%account, ?action, "action failed: {error}");
                return Err(error);
            }
            Err(_) => {
                let error = ActionError::Failed(format!("the server did not answer within {} s", ACTION_TIMEOUT.as_secs()));
                tracing::warn!(%account, ?action, "action failed: {error}");
                return Err(error);
            }
        }
        tracing::info!(%account, ?action, "action done");
        let _ = live.commands.send(Command::Acted { account: account.clone(), key: key.to_owned() }).await;
        self.refresh(account, Trigger::Manual);
        Ok(())
    }
}

/// The running core. Dropping it without [`Core::stop`] leaves the tasks to
/// the runtime's own shutdown; call `stop` for an orderly one.
pub struct Core {
    handle: CoreHandle,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    /// Outlive each run, so a reload keeps the shell's subscriptions.
    events: mpsc::Sender<CoreEvent>,
    snapshot: Arc<watch::Sender<Snapshot>>,
}

impl Core {
    /// Starts the core; must be called within a tokio runtime. Returns the
    /// core and its event stream.
    pub fn start(setup: Setup) -> Result<(Core, mpsc::Receiver<CoreEvent>), StoreError> {
        let (store, recovered) = StateStore::load(&setup.state_file)?;
        let (event_tx, event_rx) = mpsc::channel(EVENT_BUFFER);
        let away = Arc::new(watch::channel(false).0);
        let configs: Vec<AccountConfig> = setup.accounts.iter().map(|a| a.config.clone()).collect();
        let hub = Hub::new(store, recovered, &configs, setup.hints.clone(), setup.demo, setup.problems.clone());
        let snapshot = Arc::new(watch::channel(hub.snapshot()).0);
        let run = Run::spawn(setup, hub, &event_tx, &snapshot, &away);
        let handle = CoreHandle {
            live: Arc::new(RwLock::new(Arc::new(run.live))),
            snapshot: snapshot.subscribe(),
            away,
        };
        if run.follow_presence {
            let presence = handle.clone();
            let mut tasks = run.tasks;
            tasks.spawn(presence::follow_logind(move |away| presence.set_away(away), run.cancel.clone()));
            return Ok((Core { handle, cancel: run.cancel, tasks, events: event_tx, snapshot }, event_rx));
        }
        Ok((Core { handle, cancel: run.cancel, tasks: run.tasks, events: event_tx, snapshot }, event_rx))
    }

    /// A handle for triggering refreshes and reading state.
    pub fn handle(&self) -> CoreHandle {
        self.handle.clone()
    }

    /// Replaces the running accounts with `setup`'s (the config changed):
    /// stops every task as [`Core::stop`] does, so the state file holds
    /// everything notified so far, then starts again from it. The event
    /// stream, the snapshot receivers and every [`CoreHandle`] carry on;
    /// nothing notified before is notified again, and state of accounts no
    /// longer configured is dropped. On error (the state file cannot be
    /// read) the core keeps running with no account and says why.
    pub async fn reload(&mut self, setup: Setup) -> Result<(), StoreError> {
        self.stop_tasks().await;
        let (hub, result) = match StateStore::load(&setup.state_file) {
            Ok((store, recovered)) => {
                let configs: Vec<AccountConfig> = setup.accounts.iter().map(|a| a.config.clone()).collect();
                (Hub::new(store, recovered, &configs, setup.hints.clone(), setup.demo, setup.problems.clone()), Ok(()))
            }
            Err(e) => {
                tracing::error!("reload: {e}");
                let store = StateStore::empty(&setup.state_file);
                (Hub::new(store, None, &[], Vec::new(), false, vec![e.to_string()]), Err(e))
            }
        };
        let setup = if result.is_ok() { setup } else { Setup { accounts: Vec::new(), background: Vec::new(), ..setup } };
        let run = Run::spawn(setup, hub, &self.events, &self.snapshot, &self.handle.away);
        let follow_presence = run.follow_presence;
        *self.handle.live.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(run.live);
        self.cancel = run.cancel;
        self.tasks = run.tasks;
        if follow_presence {
            let presence = self.handle.clone();
            self.tasks.spawn(presence::follow_logind(move |away| presence.set_away(away), self.cancel.clone()));
        }
        tracing::info!("reloaded the accounts");
        result
    }

    /// Stops every task: cancel, wait up to a few seconds, then abort the
    /// rest and wait for them, so no task outlives the core.
    pub async fn stop(mut self) {
        self.stop_tasks().await;
    }

    async fn stop_tasks(&mut self) {
        self.cancel.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
            tracing::warn!(remaining = self.tasks.len(), "tasks did not stop in time; aborting them");
            self.tasks.shutdown().await;
        }
    }
}

/// One run of the accounts: what [`Core::start`] and [`Core::reload`] spawn.
struct Run {
    live: Live,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    follow_presence: bool,
}

impl Run {
    fn spawn(
        setup: Setup,
        mut hub: Hub,
        events: &mpsc::Sender<CoreEvent>,
        snapshot: &Arc<watch::Sender<Snapshot>>,
        away: &watch::Sender<bool>,
    ) -> Run {
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (report_tx, report_rx) = mpsc::channel(REPORT_BUFFER);
        let mut triggers = BTreeMap::new();
        let mut watchers: BTreeMap<AccountId, Weak<dyn Watcher>> = BTreeMap::new();
        let mut origins = BTreeMap::new();
        let now = Instant::now();
        for spec in setup.accounts {
            let config = spec.config;
            if !config.enabled {
                continue;
            }
            origins.insert(config.id.clone(), Origins::of(&config));
            let (mut gate, trigger) = PollGate::new(Schedule::new(spec.schedule, now), cancel.clone());
            gate.follow_presence(away.subscribe());
            hub.add_trigger(config.id.clone(), trigger.clone());
            triggers.insert(config.id.clone(), trigger);
            let ctx = WatcherContext::new(
                config.id.clone(),
                config.source,
                gate,
                report_tx.clone(),
                hub.cursor(&config.id),
                cancel.clone(),
            );
            let watcher: Arc<dyn Watcher> = Arc::from(spec.watcher);
            watchers.insert(config.id.clone(), Arc::downgrade(&watcher));
            tasks.spawn(supervise(watcher, ctx));
        }
        drop(report_tx);
        for task in setup.background {
            tasks.spawn(task(cancel.clone()));
        }

        let (command_tx, command_rx) = mpsc::channel(8);
        let mut released = Vec::new();
        hub.set_quiet_hours(setup.quiet_hours, &mut released);
        for event in hub.startup_events().into_iter().chain(released) {
            let _ = events.try_send(event);
        }
        snapshot.send_replace(hub.snapshot());
        tasks.spawn(hub_loop(hub, report_rx, command_rx, events.clone(), snapshot.clone(), cancel.clone()));
        let wake_triggers: Vec<TriggerHandle> = triggers.values().cloned().collect();
        tasks.spawn(wake::wake_loop(WAKE_CHECK_EVERY, WAKE_THRESHOLD, cancel.clone(), move |slept| {
            tracing::info!("woke after about {} s asleep: resyncing every account", slept.as_secs());
            for trigger in &wake_triggers {
                trigger.fire(Trigger::Wake);
            }
        }));
        let net_triggers: Vec<TriggerHandle> = triggers.values().cloned().collect();
        tasks.spawn(netwatch::netwatch_loop(cancel.clone(), move || {
            for trigger in &net_triggers {
                trigger.fire(Trigger::NetworkBack);
            }
        }));
        Run {
            live: Live { triggers, watchers, origins, commands: command_tx },
            cancel,
            tasks,
            follow_presence: setup.follow_presence,
        }
    }
}

async fn hub_loop(
    mut hub: Hub,
    mut reports: mpsc::Receiver<Envelope>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<CoreEvent>,
    snapshot: Arc<watch::Sender<Snapshot>>,
    cancel: CancellationToken,
) {
    let mut out = Vec::new();
    let mut disk = DiskSync::new(hub.state_file().to_owned());
    'run: loop {
        // When a pause or quiet hours end (or quiet hours start) the
        // snapshot must say so even if nothing else happens; wake up then.
        let pause_ends = hub.next_wake().map(|at| {
            let left = at.duration_since(Timestamp::now()).unsigned_abs();
            Instant::now() + left
        });
        let sync_due = disk.due_at();
        tokio::select! {
            biased;
            () = cancel.cancelled() => break 'run,
            Some(envelope) = reports.recv() => hub.apply(envelope, &mut out),
            Some(command) = commands.recv() => match command {
                Command::Pause(until) => hub.pause(until, &mut out),
                Command::QuietHours(quiet) => hub.set_quiet_hours(quiet, &mut out),
                Command::Acted { account, key } => out.push(CoreEvent::ItemRead { account, key }),
            },
            () = sleep_until_opt(pause_ends) => hub.tick(&mut out),
            () = sleep_until_opt(sync_due) => disk.start(),
            Some(outcome) = disk.finished() => disk.done(outcome),
            else => break 'run,
        }
        if hub.take_saved() {
            disk.saved();
        }
        for event in out.drain(..) {
            // The state file already counts these items as announced, so
            // the event must go out even if a stop raced in meanwhile (a
            // reload keeps the same stream, and no later run would announce
            // them): while there is room, hand it over without looking at
            // the token. (Waiting on both, tokio picks a ready branch at
            // random and dropped the event half the time.)
            let event = match events.try_send(event) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(event)) => event,
                // Nobody listens any more (the shell is shutting down).
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            };
            // A stalled consumer must not keep the core from stopping.
            let sent = tokio::select! {
                () = cancel.cancelled() => break 'run,
                sent = events.send(event) => sent,
            };
            if sent.is_err() {
                break;
            }
        }
        let next = hub.snapshot();
        snapshot.send_if_modified(|current| {
            let changed = *current != next;
            if changed {
                *current = next;
            }
            changed
        });
    }
    disk.flush().await;
}

/// How long after a save the state file is made durable: saves in a burst
/// share one `fsync`, and no announcement waits for the disk.
const SYNC_DELAY: Duration = Duration::from_millis(500);

/// Makes the state file durable off the announcement path. [`Hub`] saves
/// with an atomic rename (safe against an app crash at once); this syncs it
/// to disk soon after (safe against an OS crash or power cut too), on a
/// blocking thread, one sync at a time.
struct DiskSync {
    path: PathBuf,
    /// A save happened that no finished sync covers yet.
    pending: bool,
    due: Option<Instant>,
    running: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
}

impl DiskSync {
    fn new(path: PathBuf) -> DiskSync {
        DiskSync { path, pending: false, due: None, running: None }
    }

    /// The file was just saved.
    fn saved(&mut self) {
        self.pending = true;
        self.due.get_or_insert_with(|| Instant::now() + SYNC_DELAY);
    }

    /// When a sync should start (never while one runs).
    fn due_at(&self) -> Option<Instant> {
        self.due.filter(|_| self.running.is_none())
    }

    fn start(&mut self) {
        self.due = None;
        self.pending = false;
        let path = self.path.clone();
        self.running = Some(tokio::task::spawn_blocking(move || crate::store::sync_to_disk(&path)));
    }

    /// The running sync's outcome, once it ends.
    async fn finished(&mut self) -> Option<Result<(), StoreError>> {
        let running = self.running.as_mut()?;
        let outcome = running.await;
        self.running = None;
        Some(outcome.unwrap_or_else(|e| Err(StoreError::Write { path: self.path.clone(), source: std::io::Error::other(e) })))
    }

    fn done(&mut self, outcome: Result<(), StoreError>) {
        if let Err(e) = outcome {
            // The file itself was written; only its durability across an
            // OS crash is in doubt. The next save tries again.
            tracing::warn!("the state file could not be synced to disk: {e}");
        }
        if self.pending {
            self.due.get_or_insert_with(|| Instant::now() + SYNC_DELAY);
        }
    }

    /// At shutdown: waits for a running sync, then syncs what is left.
    async fn flush(mut self) {
        if let Some(outcome) = self.finished().await {
            self.done(outcome);
        }
        if self.pending {
            self.start();
            if let Some(outcome) = self.finished().await {
                self.done(outcome);
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
