//! Shared helpers for the integration tests: deadlines, test data, a scripted
//! watcher the tests drive step by step, a harness around a running core, and
//! a runner for the headless binary.
//!
//! Async tests run on tokio's paused clock, so the deadlines below are
//! simulated time: waiting for something that never comes fails in
//! milliseconds of real time, and backoffs of minutes cost nothing.

#![allow(dead_code)] // Not every test module uses every helper.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::{Mutex, mpsc};
use vigie::config::AccountConfig;
use vigie::model::{AccountId, Item, Source};
use vigie::scheduler::{ScheduleConfig, Trigger};
use vigie::watcher::{Action, ActionError, Update, WatchError, Watcher, WatcherContext};
use vigie::{AccountSpec, Core, CoreEvent, CoreHandle, Setup};

pub use vigie::demo::fake_leantime;
pub use vigie::demo::fake_rocketchat;
pub mod blackhole;
pub mod dovecot;
pub mod fake_oauth;
pub mod faulty;
pub mod tls_listener;

// ---------------------------------------------------------------------------
// Time

/// How long (simulated) a test waits for something that should happen. Long
/// on purpose: on the paused clock it costs no real time, and it must outlast
/// every backoff a scenario goes through.
pub const PATIENCE: Duration = Duration::from_secs(3_600);

/// Awaits `future`, failing the test with `what` if it takes longer than
/// `limit` (simulated time when the clock is paused).
pub async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Awaits `future` for at most `limit` and returns `None` if it did not
/// finish: used to show that something does *not* happen in a span of time.
pub async fn if_within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    tokio::time::timeout(limit, future).await.ok()
}

/// Shorthand for whole seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Shorthand for milliseconds.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// Test data

/// An item of `account` with a recognisable title.
pub fn item(source: Source, account: &str, key: &str, sender: &str) -> Item {
    Item {
        source,
        account: AccountId::new(account),
        key: key.to_owned(),
        title: format!("item {key}"),
        preview: String::new(),
        sender: sender.to_owned(),
        link: None,
        time: Timestamp::now(),
    }
}

/// `n` mail items keyed `{prefix}0`, `{prefix}1`, ….
pub fn mails(account: &str, prefix: &str, n: usize) -> Vec<Item> {
    (0..n).map(|i| item(Source::Mail, account, &format!("{prefix}{i}"), "someone")).collect()
}

/// An update carrying `items` and the unread count `unread`.
pub fn update(items: Vec<Item>, unread: u32) -> Update {
    Update { items, unread: Some(unread), ..Update::default() }
}

/// An enabled, counted account.
pub fn account_config(id: &str, source: Source) -> AccountConfig {
    AccountConfig::new(AccountId::new(id), format!("{id} (test)"), source)
}

/// An account running `watcher`, polled every minute with the default
/// policy (1 s floor, 2 s base, 5 min cap backoff).
pub fn spec(id: &str, source: Source, watcher: ScriptedWatcher) -> AccountSpec {
    AccountSpec {
        config: account_config(id, source),
        schedule: ScheduleConfig::polling(secs(60)),
        watcher: Box::new(watcher),
    }
}

// ---------------------------------------------------------------------------
// The scripted watcher

/// One thing a [`ScriptedWatcher`] is told to do.
pub enum Step {
    /// Hand this update to the core.
    Publish(Update),
    /// Report push as connected (`WatcherContext::set_live`).
    Live,
    /// Report polling (`WatcherContext::set_polling`).
    Polling,
    /// Stop this run with this error.
    Fail(WatchError),
    /// Panic with this message.
    Panic(&'static str),
    /// Loop on hour-long sleeps and never look at the cancellation token:
    /// the misbehaving watcher `Core::stop` must abort.
    IgnoreCancellation,
}

/// What a [`ScriptedWatcher`] tells the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// `Watcher::run` was called for the `run`-th time (1-based).
    Started {
        /// How many times `run` has been called so far.
        run: u32,
    },
    /// The scheduler let a poll through (only for polling watchers).
    Polled(Trigger),
    /// The watcher entered [`Step::IgnoreCancellation`].
    Stuck,
}

/// A watcher that does what the test sends it, in order. The step queue
/// survives restarts, so steps sent while the supervisor backs off are
/// played by the next run.
pub struct ScriptedWatcher {
    steps: Mutex<mpsc::UnboundedReceiver<Step>>,
    seen: mpsc::UnboundedSender<Seen>,
    runs: AtomicU32,
    polls: bool,
    /// Actions asked of the watcher, and how it answers them.
    acts: Arc<StdMutex<Acts>>,
    /// Dropped with the watcher, i.e. when its supervising task is gone.
    _alive: Arc<()>,
}

/// The actions a [`ScriptedWatcher`] was asked to do.
#[derive(Default)]
struct Acts {
    done: Vec<(String, Action)>,
    refusal: Option<ActionError>,
}

/// The test's end of a [`ScriptedWatcher`].
pub struct Script {
    steps: mpsc::UnboundedSender<Step>,
    seen: mpsc::UnboundedReceiver<Seen>,
    acts: Arc<StdMutex<Acts>>,
    alive: Weak<()>,
}

impl ScriptedWatcher {
    /// A watcher that only acts on steps (it never asks the scheduler).
    pub fn new() -> (ScriptedWatcher, Script) {
        Self::build(false)
    }

    /// A watcher that also polls: it waits on `next_poll`, reports each poll
    /// as [`Seen::Polled`] and reports success, between steps.
    pub fn polling() -> (ScriptedWatcher, Script) {
        Self::build(true)
    }

    fn build(polls: bool) -> (ScriptedWatcher, Script) {
        let (step_tx, step_rx) = mpsc::unbounded_channel();
        let (seen_tx, seen_rx) = mpsc::unbounded_channel();
        let alive = Arc::new(());
        let acts = Arc::new(StdMutex::new(Acts::default()));
        let script = Script { steps: step_tx, seen: seen_rx, acts: acts.clone(), alive: Arc::downgrade(&alive) };
        let watcher = ScriptedWatcher {
            steps: Mutex::new(step_rx),
            seen: seen_tx,
            runs: AtomicU32::new(0),
            polls,
            acts,
            _alive: alive,
        };
        (watcher, script)
    }

    async fn play(&self, ctx: &mut WatcherContext) -> Result<(), WatchError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.seen.send(Seen::Started { run });
        let cancel = ctx.cancel_token().clone();
        let mut steps = self.steps.lock().await;
        loop {
            enum Next {
                Step(Option<Step>),
                Poll(Option<Trigger>),
                Cancelled,
            }
            let next = tokio::select! {
                () = cancel.cancelled() => Next::Cancelled,
                step = steps.recv() => Next::Step(step),
                poll = ctx.next_poll(), if self.polls => Next::Poll(poll),
            };
            match next {
                Next::Cancelled | Next::Poll(None) => return Ok(()),
                Next::Poll(Some(trigger)) => {
                    let _ = self.seen.send(Seen::Polled(trigger));
                    ctx.poll_succeeded(false);
                }
                // The test dropped its script: idle until the core stops.
                Next::Step(None) => {
                    cancel.cancelled().await;
                    return Ok(());
                }
                Next::Step(Some(step)) => match step {
                    Step::Publish(update) => ctx.publish(update).await,
                    Step::Live => ctx.set_live().await,
                    Step::Polling => ctx.set_polling().await,
                    Step::Fail(error) => return Err(error),
                    Step::Panic(message) => panic!("{message}"),
                    Step::IgnoreCancellation => {
                        let _ = self.seen.send(Seen::Stuck);
                        loop {
                            tokio::time::sleep(secs(3_600)).await;
                        }
                    }
                },
            }
        }
    }
}

impl Watcher for ScriptedWatcher {
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(self.play(ctx))
    }

    fn act<'a>(&'a self, key: &'a str, action: Action) -> BoxFuture<'a, Result<(), ActionError>> {
        let mut acts = self.acts.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = match &acts.refusal {
            Some(refusal) => Err(refusal.clone()),
            None => {
                acts.done.push((key.to_owned(), action));
                Ok(())
            }
        };
        Box::pin(async move { outcome })
    }
}

impl Script {
    /// From now on, actions fail with `error` (and do nothing).
    pub fn refuse_actions(&self, error: ActionError) {
        self.acts.lock().unwrap_or_else(|e| e.into_inner()).refusal = Some(error);
    }

    /// The actions done so far, in order.
    pub fn actions_done(&self) -> Vec<(String, Action)> {
        self.acts.lock().unwrap_or_else(|e| e.into_inner()).done.clone()
    }

    /// Queues a step.
    pub fn send(&self, step: Step) {
        self.steps.send(step).unwrap_or_else(|_| panic!("the scripted watcher is gone"));
    }

    /// Queues a [`Step::Publish`].
    pub fn publish(&self, update: Update) {
        self.send(Step::Publish(update));
    }

    /// Waits for the watcher's next report.
    pub async fn next_seen(&mut self, what: &str) -> Seen {
        within(PATIENCE, what, self.seen.recv()).await.expect("the scripted watcher is gone")
    }

    /// Waits up to `limit` for a report; `None` if there was none.
    pub async fn seen_within(&mut self, limit: Duration) -> Option<Seen> {
        if_within(limit, self.seen.recv()).await.flatten()
    }

    /// Waits for the `run`-th start of the watcher, skipping other reports.
    pub async fn started(&mut self, run: u32) {
        loop {
            if self.next_seen(&format!("run #{run} of the watcher")).await == (Seen::Started { run }) {
                return;
            }
        }
    }

    /// Whether the watcher still exists (its supervising task is alive).
    pub fn watcher_alive(&self) -> bool {
        self.alive.upgrade().is_some()
    }
}

// ---------------------------------------------------------------------------
// A running core

/// A started core with its event stream, and the folder of its state file.
pub struct Rig {
    core: Option<Core>,
    /// The core's handle.
    pub handle: CoreHandle,
    /// The event stream.
    pub events: mpsc::Receiver<CoreEvent>,
    /// Where the state file lives.
    pub state_file: PathBuf,
}

impl Rig {
    /// Starts a core over `accounts` with `configure` applied to the setup
    /// (hints, extra accounts), storing its state at `state_file`.
    pub fn start_with(state_file: &Path, accounts: Vec<AccountSpec>, configure: impl FnOnce(&mut Setup)) -> Rig {
        let mut setup = Setup::new(state_file.to_owned());
        setup.accounts = accounts;
        configure(&mut setup);
        let (core, events) = Core::start(setup).expect("the core starts");
        Rig { handle: core.handle(), core: Some(core), events, state_file: state_file.to_owned() }
    }

    /// Starts a core over `accounts`, storing its state at `state_file`.
    pub fn start(state_file: &Path, accounts: Vec<AccountSpec>) -> Rig {
        Self::start_with(state_file, accounts, |_| {})
    }

    /// The next event.
    pub async fn next_event(&mut self) -> CoreEvent {
        within(PATIENCE, "the next core event", self.events.recv()).await.expect("the event stream ended")
    }

    /// Every event up to and including the first one matching `wanted`.
    pub async fn events_until(&mut self, what: &str, wanted: impl Fn(&CoreEvent) -> bool) -> Vec<CoreEvent> {
        let mut seen = Vec::new();
        let collect = async {
            loop {
                let event = self.events.recv().await.expect("the event stream ended");
                let done = wanted(&event);
                seen.push(event);
                if done {
                    return;
                }
            }
        };
        if tokio::time::timeout(PATIENCE, collect).await.is_err() {
            panic!("timed out waiting for {what}; saw {seen:#?}");
        }
        seen
    }

    /// Waits for the next `NewItems` and returns its items and its `silent`
    /// flag, failing if `account` is not the one announced.
    pub async fn next_new_items(&mut self, account: &str) -> (Vec<Item>, bool) {
        let events = self.events_until("new items", |e| matches!(e, CoreEvent::NewItems { .. })).await;
        match events.last() {
            Some(CoreEvent::NewItems { account: got, items, silent, .. }) => {
                assert_eq!(got.as_str(), account, "new items announced for the wrong account");
                (items.clone(), *silent)
            }
            _ => unreachable!("events_until ends with the match"),
        }
    }

    /// Waits for the `ItemRead` of `key`, which a scripted watcher publishes
    /// as a fence: everything published before it has been applied. Returns
    /// the events that came before it.
    pub async fn until_fence(&mut self, key: &str) -> Vec<CoreEvent> {
        let mut events = self
            .events_until(&format!("fence {key}"), |e| matches!(e, CoreEvent::ItemRead { key: k, .. } if k == key))
            .await;
        events.pop();
        events
    }

    /// Stops the core.
    pub async fn stop(&mut self) {
        if let Some(core) = self.core.take() {
            core.stop().await;
        }
    }

    /// Reloads the core with `accounts`, as after a config change.
    pub async fn reload(&mut self, accounts: Vec<AccountSpec>) {
        let mut setup = Setup::new(self.state_file.clone());
        setup.accounts = accounts;
        let core = self.core.as_mut().expect("the core is still running");
        within(PATIENCE, "the reload", core.reload(setup)).await.expect("the reload reads the state file");
    }

    /// Takes the core out, e.g. to time `Core::stop`.
    pub fn take_core(&mut self) -> Core {
        self.core.take().expect("the core is still running")
    }
}

/// An update that changes nothing but is answered with an `ItemRead` of
/// `key`: publish it after other steps and wait with [`Rig::until_fence`].
/// Only for accounts past their baseline (any update sets the baseline).
pub fn fence(key: &str) -> Update {
    Update { read: vec![key.to_owned()], ..Update::default() }
}

/// The keys of `items`.
pub fn keys(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.key.as_str()).collect()
}

/// Whether any of `events` announces new items.
pub fn any_new_items(events: &[CoreEvent]) -> bool {
    events.iter().any(|e| matches!(e, CoreEvent::NewItems { .. }))
}

// ---------------------------------------------------------------------------
// The headless binary

/// The schema every headless line must satisfy.
pub fn events_schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.schema.json");
    let text = std::fs::read_to_string(&path).expect("docs/events.schema.json is readable");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).expect("the schema is a valid Draft 2020-12 schema")
}

/// Parses `line` and checks it against `schema`, failing with every
/// violation listed.
pub fn assert_schema_valid(schema: &jsonschema::Validator, line: &str) -> serde_json::Value {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    let errors: Vec<String> = schema.iter_errors(&value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "line violates docs/events.schema.json: {errors:?}\n{line}");
    value
}

/// A home folder for one run of the binary: every XDG variable points into
/// it, so runs never see the real user's files or each other's.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    /// A fresh, empty home.
    pub fn new() -> Home {
        Home { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// The home folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where the binary keeps its state file under this home (Linux layout).
    pub fn state_file(&self) -> PathBuf {
        self.path().join("state/vigie/state.json")
    }

    /// Writes `text` as a config file and returns its path.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.path().join("config.toml");
        std::fs::write(&path, text).expect("write the config");
        path
    }

    /// Starts `vigie-headless --headless --config <config>` in this home
    /// (the binary without GUI libraries that headless users run).
    pub fn spawn(&self, config: &Path) -> Headless {
        let home = self.path();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigie-headless"))
            .arg("--headless")
            .arg("--config")
            .arg(config)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_RUNTIME_DIR", home.join("runtime"))
            .env_remove("VIGIE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the vigie binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        // Lines are handed over as they arrive; the channel closes at EOF.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        // Drained continuously so the child never blocks on a full pipe.
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Headless { child, lines, stderr: Some(stderr) }
    }
}

/// A running `vigie --headless`, killed when dropped.
pub struct Headless {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// How a headless run ended.
pub struct Ended {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote on stderr.
    pub stderr: String,
}

impl Headless {
    /// The process id, for looking at it in `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, or `None` at EOF or once `deadline` passes.
    pub fn next_line(&self, deadline: std::time::Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        self.lines.recv_timeout(left).ok()
    }

    /// Every stdout line until EOF; fails if EOF does not come by `deadline`.
    pub fn lines_until_exit(&self, deadline: std::time::Instant) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("vigie did not exit in time; it printed {lines:#?}")
                }
            }
        }
    }

    /// Waits for the process (whose stdout has closed) and collects stderr.
    pub fn wait(mut self) -> Ended {
        let status = self.child.wait().expect("wait for vigie");
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        Ended { status, stderr }
    }

    /// Kills the process (by its PID, through its handle) and reaps it.
    pub fn kill(mut self) -> Ended {
        let _ = self.child.kill();
        self.wait()
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        // Only if a test failed half-way: never leave the child running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
