//! Seeded randomized fault scenarios: each source's real watcher, through
//! the real core, reaches its server through a [`FaultyProxy`] while a
//! seeded plan of faults fires (latency, throttling, resets, blackholes,
//! refused connections, a slow server), items are put on the server at
//! random moments, the core is restarted on the same state file in the
//! middle, and the machine "sleeps" (every link goes dark) and wakes (the
//! peers have forgotten the links, and the wake trigger fires as
//! `wake::wake_loop` fires it).
//!
//! Every scenario ends with the same specification:
//! - every item put on the server was announced exactly once over all the
//!   core's runs (listed in a `NewItems`, or counted in its `unlisted`), and
//!   nothing else was announced;
//! - the final unread count of each account equals the server's;
//! - the state file reads back cleanly.
//!
//! The seed is printed at the start and in every failure;
//! `VIGIE_FAULT_SEED=<seed>` replays a run with the same plan (the real
//! clock still decides which bytes each fault hits). These run on the real
//! clock, loopback only; each takes some 10–30 s.
//!
//! [`FaultyProxy`]: crate::support::faulty::FaultyProxy

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vigie::config::AccountConfig;
use vigie::imap::MailSettings;
use vigie::leantime::{AuthKind, LeantimeWatcher, TasksSettings};
use vigie::model::{AccountId, Connectivity, Source};
use vigie::rocketchat::link::Timeouts;
use vigie::rocketchat::{ChatSettings, RocketChatWatcher, TOKEN_SECRET};
use vigie::scheduler::{ScheduleConfig, Trigger};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::store::StateStore;
use vigie::{AccountSpec, CoreEvent, Snapshot};

use crate::imap_watcher::{mail_account, plain};
use crate::support::dovecot::{Dovecot, ImapClient, PASSWORD, message};
use crate::support::fake_leantime::{FakeLeantime, ServerVersion};
use crate::support::fake_rocketchat::{ALICE, BOB, DM_BOB, FakeRocketChat, GENERAL, Generation, TOKEN};
use crate::support::faulty::{Fault, FaultKind, FaultPlan, FaultyProxy, PlanShape, seed};
use crate::support::{Rig, account_config};

/// How long the watchers may take to catch up once the faults are over:
/// the longest backoff here is 2 s, a dead IMAP link is noticed within 6 s.
const CATCH_UP: Duration = Duration::from_secs(30);
/// How long a core may take to start and sync for the first time.
const READY: Duration = Duration::from_secs(20);

// Several worker threads, as the app runs the core: a stop may then land
// between any two steps of the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_over_imap_survives_random_faults_restarts_and_a_sleep_with_every_mail_announced_once() {
    scenario(&[Source::Mail], 40, 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketchat_survives_random_faults_restarts_and_a_sleep_with_every_message_announced_once() {
    scenario(&[Source::Chat], 40, 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leantime_survives_random_faults_restarts_and_a_sleep_with_every_item_announced_once() {
    scenario(&[Source::Tasks], 30, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_sources_at_once_survive_random_faults_restarts_and_a_sleep_with_every_item_announced_once() {
    scenario(&[Source::Mail, Source::Chat, Source::Tasks], 20, 20).await;
}

// ---------------------------------------------------------------------------
// The scenario

/// Runs the scenario over `sources`: `items` items put on each server, and
/// `faults` faults spread over their proxies.
async fn scenario(sources: &[Source], items: usize, faults: usize) {
    let seed = seed();
    let _replay = ReplayHint(seed);
    eprintln!("fault scenario over {sources:?}: seed {seed} (replay with VIGIE_FAULT_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut log = Timeline::new(seed);

    let mut sides = Vec::new();
    let mut proxies = Vec::new();
    for &source in sources {
        let side = Side::start(source).await;
        proxies.push(FaultyProxy::start(side.upstream()).await);
        sides.push(side);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let state_file = dir.path().join("state.json");
    let ledger = Arc::new(watch::channel(Ledger::default()).0);
    let specs = |sides: &[Side], proxies: &[FaultyProxy]| -> Vec<AccountSpec> {
        sides.iter().zip(proxies).map(|(side, proxy)| side.spec(proxy.port())).collect()
    };

    let mut run = Run::start(&state_file, specs(&sides, &proxies), &ledger);
    let ready = run.ready(sides.len()).await;
    let Some(ready) = ready else { log.fail(&format!("the accounts did not sync within {READY:?}: {:#?}", run.rig.handle.snapshot())) };
    for side in &mut sides {
        side.note_baseline(&ready).await;
    }
    log.note(format!("ready after {:?}", started.elapsed()));

    // The plan and the moments of the restarts and of the sleep.
    let shape = PlanShape {
        count: faults,
        proxies: proxies.len(),
        kinds: FaultKind::ALL.to_vec(),
        max_pause: Duration::from_millis(800),
        max_span: Duration::from_millis(1_500),
    };
    let plan = FaultPlan::draw(&mut rng, &shape);
    let total = items * sides.len();
    // At each restart, the item is put in while the core is stopped, or
    // just before it stops (while its watcher is fetching it).
    let restarts: BTreeMap<usize, bool> = (0..rng.usize(1..=3)).map(|_| (rng.usize(1..total), rng.bool())).collect();
    let sleep_at = loop {
        let at = rng.usize(1..total);
        if !restarts.contains_key(&at) {
            break at;
        }
    };
    // Injections spread over about as long as the plan plays.
    let max_pause = plan.duration() * 2 / u32::try_from(total).unwrap_or(u32::MAX);
    let order: Vec<usize> = (0..total).map(|i| i % sides.len()).collect();
    let mut injected: Vec<Vec<String>> = vec![Vec::new(); sides.len()];
    log.note(format!("plan: {} faults over {:?}; restarts before items {restarts:?}; sleep at item {sleep_at}", plan.faults.len(), plan.duration()));

    let proxy_refs: Vec<&FaultyProxy> = proxies.iter().collect();
    let fault_log = std::sync::Mutex::new(Vec::new());
    let play = plan.play(&proxy_refs, |index, planned| {
        fault_log.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
            "{:>7.2?} fault #{index}: {:?} on proxy {} for {:?}",
            started.elapsed(),
            planned.fault,
            planned.proxy,
            planned.lasts
        ));
    });
    let inject = async {
        for (n, &which) in order.iter().enumerate() {
            tokio::time::sleep(Duration::from_millis(rng.u64(0..=u64::try_from(max_pause.as_millis()).unwrap_or(1000)))).await;
            if let Some(&mid_sync) = restarts.get(&n) {
                if mid_sync {
                    let key = sides[which].inject(n).await;
                    injected[which].push(key);
                    let after = Duration::from_millis(rng.u64(0..=60));
                    tokio::time::sleep(after).await;
                    run.stop().await;
                    log.note(format!("{:>7.2?} restart {after:?} after item {n} was put in", started.elapsed()));
                } else {
                    run.stop().await;
                    // Something arrives while the app is closed.
                    let key = sides[which].inject(n).await;
                    injected[which].push(key);
                    log.note(format!("{:>7.2?} restart (item {n} put in while stopped)", started.elapsed()));
                }
                run.start_next(&state_file, specs(&sides, &proxies));
                continue;
            }
            if n == sleep_at {
                // Asleep: every link goes dark; mail keeps arriving.
                for proxy in &proxies {
                    proxy.set_blackhole(true);
                }
                let key = sides[which].inject(n).await;
                injected[which].push(key);
                let slept = Duration::from_millis(rng.u64(500..=3_000));
                tokio::time::sleep(slept).await;
                // Awake: the peers forgot the links (an RST answers the
                // first segment), and the wake detector fires.
                for proxy in &proxies {
                    proxy.lift(Fault::Blackhole);
                }
                run.rig.handle.refresh_all(Trigger::Wake);
                log.note(format!("{:>7.2?} slept {slept:?} (item {n} put in meanwhile), woke", started.elapsed()));
                continue;
            }
            let key = sides[which].inject(n).await;
            injected[which].push(key);
        }
    };
    tokio::join!(play, inject);
    log.extend(fault_log.into_inner().unwrap_or_else(|e| e.into_inner()));
    for proxy in &proxies {
        proxy.clear();
    }
    log.note(format!("{:>7.2?} faults over, {total} items put in; catching up", started.elapsed()));

    // Every item announced (or counted), every count right.
    let mut truth = Vec::new();
    for side in &mut sides {
        truth.push(side.truth().await);
    }
    let ids: Vec<AccountId> = sides.iter().map(|s| AccountId::new(s.id())).collect();
    let caught_up = run.until(CATCH_UP, |ledger, snapshot| {
        ids.iter().zip(&injected).zip(&truth).all(|((id, keys), truth)| {
            ledger.covers(id.as_str(), keys) && count_of(snapshot, id) == Some(*truth)
        })
    });
    if !caught_up.await {
        let snapshot = run.rig.handle.snapshot();
        let mut why = String::new();
        for ((id, keys), truth) in ids.iter().zip(&injected).zip(&truth) {
            let _ = writeln!(why, "{id}: count {:?}, server {truth}; {}", count_of(&snapshot, id), ledger.borrow().describe(id.as_str(), keys));
        }
        log.fail(&format!("not caught up {CATCH_UP:?} after the faults:\n{why}{snapshot:#?}"));
    }
    log.note(format!("{:>7.2?} caught up", started.elapsed()));

    // A last item each, so that a late repeat of an earlier one would have
    // shown before it.
    for (i, side) in sides.iter_mut().enumerate() {
        let key = side.inject(total + i).await;
        injected[i].push(key);
    }
    let mut truth = Vec::new();
    for side in &mut sides {
        truth.push(side.truth().await);
    }
    let last_seen = run.until(CATCH_UP, |ledger, snapshot| {
        ids.iter().zip(&injected).zip(&truth).all(|((id, keys), truth)| {
            keys.last().is_some_and(|last| ledger.listed(id.as_str()).contains(last)) && count_of(snapshot, id) == Some(*truth)
        })
    });
    if !last_seen.await {
        log.fail(&format!("the last items were not announced and counted: {:#?}", run.rig.handle.snapshot()));
    }
    run.stop().await;
    log.note(format!("{:>7.2?} stopped after {} runs of the core", started.elapsed(), run.number));

    // Exactly once, over every run.
    let ledger = ledger.borrow();
    let mut wrong = String::new();
    for (id, keys) in ids.iter().zip(&injected) {
        if let Some(problem) = ledger.exactly_once(id.as_str(), keys) {
            let _ = writeln!(wrong, "{id}: {problem}");
        }
    }
    if !wrong.is_empty() {
        log.fail(&format!("items lost or doubled:\n{wrong}"));
    }
    if let Err(problem) = state_file_reads_back(&state_file) {
        log.fail(&problem);
    }
    eprintln!("{}", log.render());
    eprintln!("seed {seed}: {total} items, {} faults, {} core runs, all announced once, in {:?}", plan.faults.len(), run.number, started.elapsed());
}

/// The unread count the core shows for `id`.
fn count_of(snapshot: &Snapshot, id: &AccountId) -> Option<u32> {
    snapshot.accounts.iter().find(|a| &a.id == id).and_then(|a| a.unread.count)
}

/// Whether the state file loads without being set aside as corrupt.
fn state_file_reads_back(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("the state file cannot be read: {e}"))?;
    serde_json::from_str::<serde_json::Value>(&text).map_err(|e| format!("the state file is not JSON ({e}): {text}"))?;
    match StateStore::load(path) {
        Ok((_, None)) => Ok(()),
        Ok((_, Some(recovered))) => Err(format!("the state file was set aside: {recovered}")),
        Err(e) => Err(format!("the state file cannot be loaded: {e}")),
    }
}

// ---------------------------------------------------------------------------
// What was announced

/// Everything announced, over every run of the core: the keys listed (in
/// order, repeats kept) and the items counted without a key, per account.
#[derive(Debug, Default)]
struct Ledger {
    listed: BTreeMap<String, Vec<String>>,
    unlisted: BTreeMap<String, usize>,
}

impl Ledger {
    fn record(&mut self, event: &CoreEvent) {
        if let CoreEvent::NewItems { account, items, unlisted, .. } = event {
            let listed = self.listed.entry(account.to_string()).or_default();
            listed.extend(items.iter().map(|i| i.key.clone()));
            *self.unlisted.entry(account.to_string()).or_default() += unlisted;
        }
    }

    fn listed(&self, account: &str) -> &[String] {
        self.listed.get(account).map_or(&[], Vec::as_slice)
    }

    fn unlisted(&self, account: &str) -> usize {
        self.unlisted.get(account).copied().unwrap_or(0)
    }

    /// Whether every one of `keys` was listed or may be among the unlisted.
    fn covers(&self, account: &str, keys: &[String]) -> bool {
        let listed: BTreeSet<&String> = self.listed(account).iter().collect();
        let missing = keys.iter().filter(|k| !listed.contains(k)).count();
        missing <= self.unlisted(account)
    }

    /// Why the announcements of `account` are not exactly `keys` once each.
    fn exactly_once(&self, account: &str, keys: &[String]) -> Option<String> {
        let wanted: BTreeSet<&String> = keys.iter().collect();
        let mut seen = BTreeSet::new();
        let doubled: Vec<&String> = self.listed(account).iter().filter(|k| !seen.insert(*k)).collect();
        let foreign: Vec<&String> = seen.iter().filter(|k| !wanted.contains(*k)).copied().collect();
        let missing = keys.iter().filter(|k| !seen.contains(k)).count();
        let unlisted = self.unlisted(account);
        let mut problems = Vec::new();
        if !doubled.is_empty() {
            problems.push(format!("announced twice: {doubled:?}"));
        }
        if !foreign.is_empty() {
            problems.push(format!("announced but never put in: {foreign:?}"));
        }
        if missing > unlisted {
            problems.push(format!("lost: {} of {} never announced ({} counted unlisted)", missing - unlisted, keys.len(), unlisted));
        }
        if unlisted > missing {
            problems.push(format!("counted twice: {unlisted} unlisted but only {missing} not listed"));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    fn describe(&self, account: &str, keys: &[String]) -> String {
        let listed: BTreeSet<&String> = self.listed(account).iter().collect();
        let missing: Vec<&String> = keys.iter().filter(|k| !listed.contains(k)).collect();
        format!("{} put in, {} listed, {} unlisted; not listed: {missing:?}", keys.len(), self.listed(account).len(), self.unlisted(account))
    }
}

/// One run of the core, its events recorded into the shared ledger.
struct Run {
    rig: Rig,
    ledger: Arc<watch::Sender<Ledger>>,
    collector: JoinHandle<()>,
    /// 1 for the first run, 2 after the first restart, …
    number: u32,
}

impl Run {
    fn start(state_file: &Path, specs: Vec<AccountSpec>, ledger: &Arc<watch::Sender<Ledger>>) -> Run {
        Self::start_numbered(state_file, specs, ledger, 1)
    }

    fn start_numbered(state_file: &Path, specs: Vec<AccountSpec>, ledger: &Arc<watch::Sender<Ledger>>, number: u32) -> Run {
        let mut rig = Rig::start(state_file, specs);
        let (_, closed) = mpsc::channel(1);
        let mut events = std::mem::replace(&mut rig.events, closed);
        let recorder = ledger.clone();
        // Drains the events as they come (a full channel would stall the
        // core) until the core is gone and the channel closes.
        let collector = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                recorder.send_modify(|l| l.record(&event));
            }
        });
        Run { rig, ledger: ledger.clone(), collector, number }
    }

    /// Starts the next run on the same state file, once this one stopped.
    fn start_next(&mut self, state_file: &Path, specs: Vec<AccountSpec>) {
        *self = Run::start_numbered(state_file, specs, &self.ledger, self.number + 1);
    }

    /// Stops the core and waits until every event it sent is recorded.
    async fn stop(&mut self) {
        self.rig.stop().await;
        let drained = tokio::time::timeout(Duration::from_secs(10), &mut self.collector).await;
        assert!(drained.is_ok(), "the events of a stopped core did not end");
    }

    /// Waits until each of `accounts` accounts has synced once (a count and
    /// a working connection); `None` if not within [`READY`].
    async fn ready(&self, accounts: usize) -> Option<Snapshot> {
        let mut snapshots = self.rig.handle.subscribe();
        let synced = |s: &Snapshot| {
            s.accounts.len() == accounts
                && s.accounts.iter().all(|a| {
                    a.unread.count.is_some() && matches!(a.connectivity, Connectivity::LivePush | Connectivity::Polling)
                })
        };
        let snapshot = tokio::time::timeout(READY, snapshots.wait_for(synced)).await.ok()?.ok()?.clone();
        Some(snapshot)
    }

    /// Waits until `done` holds of the ledger and the snapshot, looking
    /// again at each change of either; `false` if not within `limit`.
    async fn until(&self, limit: Duration, done: impl Fn(&Ledger, &Snapshot) -> bool) -> bool {
        let mut snapshots = self.rig.handle.subscribe();
        let mut ledger = self.ledger.subscribe();
        let wait = async {
            loop {
                if done(&ledger.borrow_and_update(), &snapshots.borrow_and_update()) {
                    return;
                }
                tokio::select! {
                    changed = snapshots.changed() => if changed.is_err() { return std::future::pending().await },
                    _ = ledger.changed() => {}
                }
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.collector.abort();
    }
}

// ---------------------------------------------------------------------------
// The servers

/// One source's server side: the server, a way to put items on it, and its
/// truth about the unread count.
enum Side {
    /// The real Dovecot; mail is appended to INBOX over a direct connection.
    Mail { dovecot: Dovecot, client: ImapClient, validity: u32 },
    /// The fake Rocket.Chat; bob sends alice direct messages and mentions
    /// her in #general.
    Chat { fake: FakeRocketChat, others: u32 },
    /// The fake Leantime; Sam mentions Jane and assigns her tasks.
    Tasks { fake: FakeLeantime, put_in: u32, baseline: u32 },
}

/// The account ids (the mail one is `imap_watcher`'s).
const MAIL: &str = "mail";
const CHAT: &str = "chat";
const TASKS: &str = "tasks";

impl Side {
    async fn start(source: Source) -> Side {
        match source {
            Source::Mail => {
                let dovecot = Dovecot::start().await;
                let mut client = dovecot.client().await;
                let validity = client.uid_state("INBOX").await.0;
                Side::Mail { dovecot, client, validity }
            }
            Source::Chat => {
                let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
                Side::Chat { fake, others: 0 }
            }
            Source::Tasks => Side::Tasks { fake: FakeLeantime::start(ServerVersion::V3_9_6).await, put_in: 0, baseline: 0 },
        }
    }

    fn id(&self) -> &'static str {
        match self {
            Side::Mail { .. } => MAIL,
            Side::Chat { .. } => CHAT,
            Side::Tasks { .. } => TASKS,
        }
    }

    /// The loopback port the proxy relays to.
    fn upstream(&self) -> u16 {
        let url = match self {
            Side::Mail { dovecot, .. } => return dovecot.port(),
            Side::Chat { fake, .. } => fake.base_url(),
            Side::Tasks { fake, .. } => fake.base_url(),
        };
        url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port in {url}"))
    }

    /// The account as the core runs it, reaching the server through `port`.
    fn spec(&self, port: u16) -> AccountSpec {
        match self {
            Side::Mail { dovecot, .. } => {
                // Dovecot says "still here" every 5 s in IDLE: 6 s of
                // silence is a dead link.
                let settings = MailSettings { port: Some(port), idle_silence_secs: 6, ..plain(dovecot, &["INBOX"]) };
                mail_account(settings, PASSWORD)
            }
            Side::Chat { .. } => {
                let base = format!("http://127.0.0.1:{port}");
                let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
                secrets.set(&AccountId::new(CHAT), TOKEN_SECRET, &SecretString::from(TOKEN.to_owned())).expect("store");
                let settings = ChatSettings { user_id: Some(ALICE.to_owned()), ..ChatSettings::default() };
                let config = AccountConfig { server: Some(base.clone()), chat: settings.clone(), ..account_config(CHAT, Source::Chat) };
                // Quick to call a silent link dead, patient enough for the
                // delays of the plan.
                let timeouts = Timeouts { connect: Duration::from_secs(5), ping_after: Duration::from_secs(1), dead_after: Duration::from_secs(3) };
                let watcher = RocketChatWatcher::new(AccountId::new(CHAT), &base, settings, secrets).with_timeouts(timeouts);
                AccountSpec { config, schedule: quick_retries(Duration::from_secs(3_600)), watcher: Box::new(watcher) }
            }
            Side::Tasks { fake, .. } => {
                let base = format!("http://127.0.0.1:{port}");
                let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
                secrets.set(&AccountId::new(TASKS), AuthKind::Token.secret_name(), &SecretString::from(fake.token().to_owned())).expect("store");
                let config = AccountConfig { server: Some(base.clone()), auth: AuthKind::Token, ..account_config(TASKS, Source::Tasks) };
                let watcher = LeantimeWatcher::new(AccountId::new(TASKS), &base, AuthKind::Token, TasksSettings::default(), secrets);
                // Polled every second, as a busy user's "Refresh" would.
                AccountSpec { config, schedule: quick_retries(Duration::from_secs(1)), watcher: Box::new(watcher) }
            }
        }
    }

    /// Learns, from the first sync, what the scenario leaves alone.
    async fn note_baseline(&mut self, ready: &Snapshot) {
        let counted = count_of(ready, &AccountId::new(self.id())).unwrap_or(0);
        match self {
            Side::Mail { .. } => {}
            // Rooms the scenario does not post to keep their count.
            Side::Chat { fake, others } => *others = counted.saturating_sub(fake.unread(DM_BOB) + fake.unread(GENERAL)),
            Side::Tasks { baseline, .. } => *baseline = counted,
        }
    }

    /// Puts item `n` on the server; returns its key.
    async fn inject(&mut self, n: usize) -> String {
        match self {
            Side::Mail { client, validity, .. } => {
                let uid = client.append("INBOX", &message(&format!("s{n}@example.test"), &format!("Mail {n}"), "x"), false).await;
                format!("INBOX:{validity}:{uid}")
            }
            Side::Chat { fake, .. } => {
                if n % 3 == 2 {
                    fake.post(GENERAL, BOB, &format!("@alice look at {n}"), &[ALICE])
                } else {
                    fake.post(DM_BOB, BOB, &format!("message {n}"), &[])
                }
            }
            Side::Tasks { fake, put_in, .. } => {
                *put_in += 1;
                if n % 3 == 2 {
                    format!("t{}", fake.assign_ticket(&format!("Task {n}")))
                } else {
                    format!("n{}", fake.add_notification(&format!("Sam mentioned you in task {n}"), "Sam Lee"))
                }
            }
        }
    }

    /// The unread count the server holds now.
    async fn truth(&mut self) -> u32 {
        match self {
            Side::Mail { client, .. } => client.unseen("INBOX").await,
            Side::Chat { fake, others } => *others + fake.unread(DM_BOB) + fake.unread(GENERAL),
            // Nothing is read in the scenario: what was unread at the first
            // sync, and every notification and task put in since (new tasks
            // count until acknowledged).
            Side::Tasks { put_in, baseline, .. } => *baseline + *put_in,
        }
    }
}

/// Fetches on `interval` or when asked; retries within two seconds at most.
fn quick_retries(interval: Duration) -> ScheduleConfig {
    ScheduleConfig {
        coalesce: Duration::from_millis(20),
        min_gap: Duration::ZERO,
        backoff: (Duration::from_millis(200), Duration::from_millis(400), Duration::from_secs(2)),
        ..ScheduleConfig::polling(interval)
    }
}

// ---------------------------------------------------------------------------
// Reporting

/// What happened, in order, for the failure message.
struct Timeline {
    seed: u64,
    lines: Vec<String>,
}

impl Timeline {
    fn new(seed: u64) -> Timeline {
        Timeline { seed, lines: Vec::new() }
    }

    fn note(&mut self, line: String) {
        self.lines.push(line);
    }

    fn extend(&mut self, lines: Vec<String>) {
        self.lines.extend(lines);
        // Faults were logged apart; elapsed times sort them in.
        self.lines.sort_by(|a, b| leading_secs(a).total_cmp(&leading_secs(b)));
    }

    fn render(&self) -> String {
        self.lines.join("\n")
    }

    fn fail(&self, why: &str) -> ! {
        panic!("seed {seed}: {why}\n--- timeline ---\n{}\n(replay with VIGIE_FAULT_SEED={seed})", self.render(), seed = self.seed)
    }
}

fn leading_secs(line: &str) -> f64 {
    let text = line.trim_start();
    let number: String = text.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let value: f64 = number.parse().unwrap_or(0.0);
    if text[number.len()..].starts_with("ms") { value / 1_000.0 } else { value }
}

/// Prints how to replay a scenario that panicked anywhere (a helper's
/// `expect` included), not only in its own assertions.
struct ReplayHint(u64);

impl Drop for ReplayHint {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the fault scenario failed: replay with VIGIE_FAULT_SEED={}", self.0);
        }
    }
}
