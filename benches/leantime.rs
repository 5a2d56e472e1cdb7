//! The Leantime poller's figures, in process: the real core and the real
//! Leantime watcher against the fake Leantime on loopback
//! (`vigie::demo::fake_leantime`), which records every request.
//!
//! - Requests and bytes per hour for an account with nothing new, user
//!   active and user away, against the seed's 30 s polling (120 requests an
//!   hour). The hour is compressed 60 times (one minute of wall clock, the
//!   account's real schedule with every duration divided by 60), which
//!   changes nothing but the clock: polls are counted, not timed.
//! - Time from a hinting mail's event to the Leantime item: the mail
//!   account publishes a mail from Leantime, the tasks account (real,
//!   uncompressed schedule) polls and announces the notification.
//! - A storm of 100 triggers in 10 s against a server limited to 10 requests
//!   a minute: requests sent, 429s received, and how soon a notification
//!   added mid-storm is announced.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use vigie::config::{AccountConfig, HintRule};
use vigie::demo::fake_leantime::{FakeLeantime, ServerVersion};
use vigie::leantime::{AuthKind, LeantimeWatcher, TasksSettings};
use vigie::model::{AccountId, Item, Source};
use vigie::scheduler::{ScheduleConfig, Trigger};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::watcher::{Update, WatchError, Watcher, WatcherContext};
use vigie::{AccountSpec, Core, CoreEvent, CoreHandle, Setup};

use super::{Res, Row};

/// p50 / p99 / max of a sample, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(values: &[f64]) -> Option<Percentiles> {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v.get(((v.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
        Some(Percentiles { p50: at(0.50)?, p99: at(0.99)?, max: *v.last()? })
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms", self.p50, self.p99, self.max)
    }
}

/// The seed polled every 30 s: 120 requests an hour.
const SEED_REQUESTS_PER_HOUR: f64 = 120.0;
const TARGET_ACTIVE_PER_HOUR: f64 = 60.0;
const TARGET_AWAY_PER_HOUR: f64 = 12.0;
const TARGET_HINT_MS: f64 = 1_000.0;
/// An hour in a minute.
const COMPRESSION: u32 = 60;
const TASKS: &str = "bench-tasks";
const MAIL: &str = "bench-mail";

/// What the Leantime part measured.
pub struct LeantimeResults {
    active: Traffic,
    away: Traffic,
    hint_ms: Option<Percentiles>,
    hint_samples: usize,
    storm: Storm,
}

/// Requests and body bytes in one compressed hour of nothing new.
struct Traffic {
    requests: usize,
    count_only: usize,
    request_bytes: usize,
    response_bytes: usize,
}

struct Storm {
    triggers: usize,
    requests: usize,
    refused: usize,
    /// From adding the notification mid-storm to its announcement.
    fresh_after: Option<Duration>,
}

/// Runs every Leantime measurement.
pub fn bench(samples: usize) -> Res<LeantimeResults> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        eprintln!("vigie-bench: leantime: an hour with nothing new, user active (1 min of wall clock)…");
        let active = idle_hour(false).await?;
        eprintln!("vigie-bench: leantime: an hour with nothing new, user away (1 min of wall clock)…");
        let away = idle_hour(true).await?;
        eprintln!("vigie-bench: leantime: hinting mail → Leantime item, {samples} samples…");
        let (hint_ms, hint_samples) = hint_latency(samples).await?;
        eprintln!("vigie-bench: leantime: a storm of 100 triggers in 10 s…");
        let storm = storm().await?;
        Ok(LeantimeResults { active, away, hint_ms, hint_samples, storm })
    })
}

fn account(fake: &FakeLeantime) -> AccountConfig {
    AccountConfig { server: Some(fake.base_url()), ..AccountConfig::new(AccountId::new(TASKS), "Bench tasks", Source::Tasks) }
}

fn tasks_spec(fake: &FakeLeantime, schedule: ScheduleConfig, settings: TasksSettings) -> Res<AccountSpec> {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets
        .set(&AccountId::new(TASKS), AuthKind::Token.secret_name(), &SecretString::from(fake.token().to_owned()))
        .map_err(|e| format!("memory secrets: {e}"))?;
    let config = AccountConfig { tasks: settings.clone(), ..account(fake) };
    let watcher = LeantimeWatcher::new(AccountId::new(TASKS), &fake.base_url(), AuthKind::Token, settings, secrets);
    Ok(AccountSpec { config, schedule, watcher: Box::new(watcher) })
}

fn start(dir: &tempfile::TempDir, accounts: Vec<AccountSpec>, hints: Vec<HintRule>) -> Res<(Core, mpsc::Receiver<CoreEvent>)> {
    let mut setup = Setup::new(dir.path().join("state.json"));
    setup.accounts = accounts;
    setup.hints = hints;
    Core::start(setup).map_err(|e| format!("core: {e}"))
}

/// Waits for the first (baseline) poll: discovery and one full poll.
async fn synced(fake: &FakeLeantime) -> Res<usize> {
    let n = fake.wait_for_requests(2, Duration::from_secs(20)).await.len();
    if n < 2 { Err(format!("the watcher did not sync ({n} requests)")) } else { Ok(n) }
}

async fn idle_hour(away: bool) -> Res<Traffic> {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let schedule = vigie::sources::schedule_for(&account(&fake)).compressed(COMPRESSION);
    let (core, _events) = start(&dir, vec![tasks_spec(&fake, schedule, TasksSettings::default())?], Vec::new())?;
    let from = synced(&fake).await?;
    core.handle().set_away(away);
    tokio::time::sleep(Duration::from_secs(3_600 / u64::from(COMPRESSION))).await;
    core.stop().await;
    let hour = &fake.requests()[from..];
    Ok(Traffic {
        requests: hour.len(),
        count_only: hour.iter().filter(|r| r.calls.len() == 1 && r.calls[0].ends_with("getUnreadCount")).count(),
        request_bytes: hour.iter().map(|r| r.body_bytes).sum(),
        response_bytes: hour.iter().map(|r| r.response_bytes).sum(),
    })
}

/// A push "mail server" the bench drives: publishes what it is sent.
struct BenchMail {
    updates: Mutex<mpsc::Receiver<Update>>,
}

impl Watcher for BenchMail {
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(async move {
            ctx.set_live().await;
            let cancel = ctx.cancel_token().clone();
            let mut updates = self.updates.lock().await;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    update = updates.recv() => match update {
                        Some(update) => ctx.publish(update).await,
                        None => return Ok(()),
                    },
                }
            }
        })
    }
}

fn mail_spec() -> (AccountSpec, mpsc::Sender<Update>) {
    let (tx, rx) = mpsc::channel(8);
    let config = AccountConfig::new(AccountId::new(MAIL), "Bench mail", Source::Mail);
    let spec = AccountSpec {
        config,
        schedule: ScheduleConfig { push_resync: None, ..ScheduleConfig::polling(Duration::from_secs(3_600)) },
        watcher: Box::new(BenchMail { updates: Mutex::new(rx) }),
    };
    (spec, tx)
}


fn mail_from_leantime(n: usize) -> Update {
    let item = Item {
        source: Source::Mail,
        account: AccountId::new(MAIL),
        key: format!("m-{n}"),
        title: "[Leantime] Sam mentioned you".to_owned(),
        preview: String::new(),
        sender: "Leantime <notifications@pm.example.com>".to_owned(),
        link: None,
        time: jiff::Timestamp::now(),
    };
    Update { items: vec![item], unread: Some(u32::try_from(n).unwrap_or(u32::MAX)), ..Update::default() }
}

/// Waits for the tasks account to announce `key`.
async fn announced(events: &mut mpsc::Receiver<CoreEvent>, key: &str, limit: Duration) -> Option<Instant> {
    let wait = async {
        while let Some(event) = events.recv().await {
            if let CoreEvent::NewItems { account, items, .. } = &event
                && account.as_str() == TASKS
                && items.iter().any(|i| i.key == key)
            {
                return Some(Instant::now());
            }
        }
        None
    };
    tokio::time::timeout(limit, wait).await.ok().flatten()
}

fn leantime_hint() -> HintRule {
    HintRule { from: Source::Mail, sender_contains: "leantime".to_owned(), refresh: Source::Tasks }
}

async fn hint_latency(samples: usize) -> Res<(Option<Percentiles>, usize)> {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let schedule = vigie::sources::schedule_for(&account(&fake));
    let min_gap = schedule.min_gap;
    let (mail, mail_tx) = mail_spec();
    let tasks = tasks_spec(&fake, schedule, TasksSettings::default())?;
    let (core, mut events) = start(&dir, vec![mail, tasks], vec![leantime_hint()])?;
    synced(&fake).await?;
    let send = |update| {
        let tx = mail_tx.clone();
        async move { tx.send(update).await.map_err(|_| "the mail watcher stopped".to_owned()) }
    };
    send(Update { unread: Some(0), ..Update::default() }).await?; // the mail baseline
    let mut millis = Vec::with_capacity(samples);
    for n in 1..=samples {
        // Polls are at least `min_gap` apart; a sample must not wait on
        // the previous one's gap.
        tokio::time::sleep(min_gap + Duration::from_millis(200)).await;
        let id = fake.add_notification("Sam mentioned you in <i>Release plan</i>", "Sam Lee");
        let sent = Instant::now();
        send(mail_from_leantime(n)).await?;
        if let Some(at) = announced(&mut events, &format!("n{id}"), Duration::from_secs(10)).await {
            millis.push(at.duration_since(sent).as_secs_f64() * 1e3);
        }
    }
    core.stop().await;
    Ok((Percentiles::of(&millis), millis.len()))
}

async fn storm() -> Res<Storm> {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    // A server whose admin kept Leantime's old default of 10 a minute, and
    // an account told so.
    fake.set_rate_limit(10, 60);
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let settings = TasksSettings { requests_per_minute: Some(10), ..TasksSettings::default() };
    let schedule = vigie::sources::schedule_for(&account(&fake));
    let (core, mut events) = start(&dir, vec![tasks_spec(&fake, schedule, settings)?], Vec::new())?;
    let from = synced(&fake).await?;
    let handle: CoreHandle = core.handle();
    let id = AccountId::new(TASKS);
    let began = Instant::now();
    let mut added = None;
    for n in 0..100 {
        if n == 50 {
            added = Some((fake.add_notification("Sam assigned you a To-Do", "Sam Lee"), Instant::now()));
        }
        handle.refresh(&id, if n % 2 == 0 { Trigger::Hint } else { Trigger::Manual });
        tokio::time::sleep_until(began + Duration::from_millis(100 * (n + 1))).await;
    }
    let requests: Vec<_> = fake.requests()[from..].to_vec();
    let fresh_after = match added {
        Some((note, at)) => announced(&mut events, &format!("n{note}"), Duration::from_secs(60)).await.map(|t| t.duration_since(at)),
        None => None,
    };
    core.stop().await;
    Ok(Storm {
        triggers: 100,
        requests: requests.len(),
        refused: requests.iter().filter(|r| r.status == 429).count(),
        fresh_after,
    })
}

fn per_hour(n: usize) -> f64 {
    n as f64
}

/// Prints the details.
pub fn print(r: &LeantimeResults) {
    println!();
    println!("Leantime poller (real watcher and core, fake Leantime 3.9.8 on loopback):");
    for (label, t) in [("user active", &r.active), ("user away", &r.away)] {
        println!(
            "  an hour with nothing new, {label}: {} requests ({} count-only), {} B sent and {} B received in JSON bodies \
             ({:.0} B per request on average, HTTP headers not counted)",
            t.requests,
            t.count_only,
            t.request_bytes,
            t.response_bytes,
            (t.request_bytes + t.response_bytes) as f64 / t.requests.max(1) as f64
        );
    }
    match &r.hint_ms {
        Some(s) => println!("  hinting mail → Leantime item ({} samples): {s}", r.hint_samples),
        None => println!("  hinting mail → Leantime item: no sample arrived"),
    }
    let s = &r.storm;
    println!(
        "  storm: {} triggers in 10 s against a 10/min server: {} requests, {} refused with 429; \
         a notification added mid-storm announced after {}",
        s.triggers,
        s.requests,
        s.refused,
        s.fresh_after.map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
    );
}

/// The table rows.
pub fn rows(r: Option<&LeantimeResults>) -> Vec<Row> {
    vec![
        Row {
            metric: "Leantime requests/hour, nothing new, user active".into(),
            measured: r.map(|r| per_hour(r.active.requests)),
            unit: "req/h",
            target: Some(TARGET_ACTIVE_PER_HOUR),
            reference: false,
        },
        Row {
            metric: "Leantime requests/hour, user active, vs the seed's 30 s polling".into(),
            measured: r.map(|r| per_hour(r.active.requests)),
            unit: "req/h",
            target: Some(SEED_REQUESTS_PER_HOUR),
            reference: true,
        },
        Row {
            metric: "Leantime requests/hour, nothing new, user away".into(),
            measured: r.map(|r| per_hour(r.away.requests)),
            unit: "req/h",
            target: Some(TARGET_AWAY_PER_HOUR),
            reference: false,
        },
        Row {
            metric: "Leantime requests/hour, user away, vs the seed's 30 s polling".into(),
            measured: r.map(|r| per_hour(r.away.requests)),
            unit: "req/h",
            target: Some(SEED_REQUESTS_PER_HOUR),
            reference: true,
        },
        Row {
            metric: "hinting mail → Leantime item (max)".into(),
            measured: r.and_then(|r| r.hint_ms.map(|s| s.max)),
            unit: "ms",
            target: Some(TARGET_HINT_MS),
            reference: false,
        },
        Row {
            metric: "storm of 100 triggers: requests refused with 429".into(),
            measured: r.map(|r| r.storm.refused as f64),
            unit: "429s",
            target: Some(0.0),
            reference: false,
        },
    ]
}
