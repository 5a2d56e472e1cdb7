//! The Rocket.Chat watcher's figures, in process: the real core and the real
//! watcher against the local Rocket.Chat of the tests and the demo
//! (`vigie::demo::fake_rocketchat`, REST and DDP on loopback), which counts
//! every frame, byte and REST request.
//!
//! - Message → event latency: one direct message at a time, spaced beyond
//!   the watcher's batching window so that each goes out alone, from the
//!   fake's `post` to the core's `NewItems` event (DDP frames over loopback,
//!   judging the message, the state file's atomic rename). Against a 30 s
//!   poller's mean wait (15 s).
//! - Idle traffic while live, with the real heartbeat, scaled to an hour;
//!   REST requests against the seed's 30 s polling (120 an hour).
//! - Scale and burst: a 50-room account receives N plain messages at once,
//!   spread over the rooms: time until every one is announced, number of
//!   announcements (each is at most one toast), on-CPU time of the process
//!   (the fake included).

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::mpsc;
use vigie::config::AccountConfig;
use vigie::demo::fake_rocketchat::{ALICE, BOB, DM_BOB, FakeRocketChat, Generation, TOKEN};
use vigie::model::{AccountId, Connectivity, Source};
use vigie::rocketchat::{ChatSettings, RocketChatWatcher, TOKEN_SECRET};
use vigie::scheduler::ScheduleConfig;
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::{AccountSpec, Core, CoreEvent, Setup};

use super::leantime::Percentiles;
use super::{Res, Row};

const ID: &str = "bench-chat";
const PATIENCE: Duration = Duration::from_secs(30);
/// A 30 s poller waits 15 s on average.
const POLLER_MEAN_MS: f64 = 15_000.0;
/// The seed polled every 30 s: 120 requests an hour.
const SEED_REQUESTS_PER_HOUR: f64 = 120.0;
const TARGET_P99_MS: f64 = 10.0;
const TARGET_BURST_MS: f64 = 1_000.0;
const TARGET_BURST_TOASTS: f64 = 3.0;
/// The scale figure's rooms (the fake adds its own few).
const ROOMS: usize = 50;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub messages: usize,
    pub idle_secs: u64,
    pub burst: usize,
}

/// What the Rocket.Chat part measured.
pub struct RocketChatResults {
    messages: usize,
    latency: Option<Percentiles>,
    mean_ms: f64,
    idle_secs: u64,
    idle: Idle,
    burst: Burst,
}

struct Idle {
    frames: (u64, u64),
    bytes: (u64, u64),
    rest: usize,
}

struct Burst {
    messages: usize,
    rooms: usize,
    took: Duration,
    announcements: usize,
    cpu: Duration,
}

/// Runs every Rocket.Chat measurement.
pub fn bench(o: Options) -> Res<RocketChatResults> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        eprintln!("vigie-bench: rocketchat: message → event, {} messages…", o.messages);
        let (latencies, mean_ms) = latency(o.messages).await?;
        eprintln!("vigie-bench: rocketchat: {} s live with nothing happening…", o.idle_secs);
        let idle = idle(o.idle_secs).await?;
        eprintln!("vigie-bench: rocketchat: a burst of {} messages into {ROOMS} rooms…", o.burst);
        let burst = burst(o.burst).await?;
        Ok(RocketChatResults { messages: o.messages, latency: latencies, mean_ms, idle_secs: o.idle_secs, idle, burst })
    })
}

struct Running {
    core: Core,
    events: mpsc::Receiver<CoreEvent>,
    _dir: tempfile::TempDir,
}

async fn start(fake: &FakeRocketChat) -> Res<Running> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets
        .set(&AccountId::new(ID), TOKEN_SECRET, &SecretString::from(TOKEN.to_owned()))
        .map_err(|e| format!("secret store: {e}"))?;
    let settings = ChatSettings { user_id: Some(ALICE.to_owned()), ..ChatSettings::default() };
    let config = AccountConfig {
        server: Some(fake.base_url()),
        chat: settings.clone(),
        ..AccountConfig::new(AccountId::new(ID), "chat", Source::Chat)
    };
    let watcher = RocketChatWatcher::new(AccountId::new(ID), &fake.base_url(), settings, secrets);
    let mut setup = Setup::new(dir.path().join("state.json"));
    setup.accounts.push(AccountSpec {
        config,
        schedule: ScheduleConfig { push_resync: Some(Duration::from_secs(900)), ..ScheduleConfig::polling(Duration::from_secs(60)) },
        watcher: Box::new(watcher),
    });
    let (core, mut events) = Core::start(setup).map_err(|e| format!("the core did not start: {e}"))?;
    loop {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(CoreEvent::Connectivity { state: Connectivity::LivePush, .. })) => break,
            Ok(Some(_)) => {}
            other => return Err(format!("the account did not go live: {other:?}")),
        }
    }
    Ok(Running { core, events, _dir: dir })
}

/// Waits until every key in `keys` was announced; returns the number of
/// announcements seen on the way.
async fn until_announced(events: &mut mpsc::Receiver<CoreEvent>, keys: &mut Vec<String>) -> Res<usize> {
    let mut announcements = 0;
    while !keys.is_empty() {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(CoreEvent::NewItems { items, .. })) => {
                announcements += 1;
                keys.retain(|k| !items.iter().any(|i| &i.key == k));
            }
            Ok(Some(_)) => {}
            other => return Err(format!("stopped waiting for {} messages: {other:?}", keys.len())),
        }
    }
    Ok(announcements)
}

async fn latency(messages: usize) -> Res<(Option<Percentiles>, f64)> {
    let fake = FakeRocketChat::start(Generation::V7).await.map_err(|e| format!("the local Rocket.Chat: {e}"))?;
    let mut run = start(&fake).await?;
    let mut samples = Vec::with_capacity(messages);
    for n in 0..messages {
        tokio::time::sleep(vigie::rocketchat::batch::WINDOW + Duration::from_millis(20)).await;
        let sent = Instant::now();
        let key = fake.post(DM_BOB, BOB, &format!("message {n}"), &[]);
        until_announced(&mut run.events, &mut vec![key]).await?;
        samples.push(ms(sent.elapsed()));
    }
    run.core.stop().await;
    let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    Ok((Percentiles::of(&samples), mean))
}

async fn idle(secs: u64) -> Res<Idle> {
    let fake = FakeRocketChat::start(Generation::V7).await.map_err(|e| format!("the local Rocket.Chat: {e}"))?;
    let run = start(&fake).await?;
    let (frames_before, bytes_before, rest_before) = (fake.frames(), fake.bytes(), fake.requests().len());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (frames, bytes, rest) = (fake.frames(), fake.bytes(), fake.requests().len());
    run.core.stop().await;
    Ok(Idle {
        frames: (frames.0 - frames_before.0, frames.1 - frames_before.1),
        bytes: (bytes.0 - bytes_before.0, bytes.1 - bytes_before.1),
        rest: rest - rest_before,
    })
}

async fn burst(messages: usize) -> Res<Burst> {
    let fake = FakeRocketChat::start(Generation::V7).await.map_err(|e| format!("the local Rocket.Chat: {e}"))?;
    let rooms = fake.add_rooms(ROOMS);
    let mut run = start(&fake).await?;
    let cpu_before = cpu_time();
    let started = Instant::now();
    let mut keys: Vec<String> = (0..messages).map(|n| fake.post(&rooms[n % rooms.len()], BOB, &format!("burst {n}"), &[])).collect();
    let announcements = until_announced(&mut run.events, &mut keys).await?;
    let took = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    run.core.stop().await;
    Ok(Burst { messages, rooms: rooms.len(), took, announcements, cpu })
}

/// On-CPU time of every thread of this process.
fn cpu_time() -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn per_hour(n: f64, secs: u64) -> f64 {
    n * 3_600.0 / secs.max(1) as f64
}

/// Prints the details.
pub fn print(r: &RocketChatResults) {
    println!();
    println!("Rocket.Chat watcher (real watcher and core, the local Rocket.Chat on loopback):");
    match &r.latency {
        Some(p) => println!(
            "  post → NewItems event, {} messages one at a time: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (mean {:.2} ms)",
            r.messages, p.p50, p.p99, p.max, r.mean_ms
        ),
        None => println!("  post → NewItems event: no sample"),
    }
    let i = &r.idle;
    println!(
        "  idle {} s live: {} frames in, {} out; {} B in, {} B out; {} REST requests → {:.0} frames/h, {:.0} B/h",
        r.idle_secs,
        i.frames.0,
        i.frames.1,
        i.bytes.0,
        i.bytes.1,
        i.rest,
        per_hour((i.frames.0 + i.frames.1) as f64, r.idle_secs),
        per_hour((i.bytes.0 + i.bytes.1) as f64, r.idle_secs),
    );
    let b = &r.burst;
    println!(
        "  burst of {} messages over {} rooms: all announced after {:.1} ms in {} announcement(s), {:.1} ms CPU (the fake included)",
        b.messages,
        b.rooms,
        ms(b.took),
        b.announcements,
        ms(b.cpu)
    );
}

/// The table rows.
pub fn rows(r: Option<&RocketChatResults>) -> Vec<Row> {
    let p = r.and_then(|r| r.latency);
    vec![
        Row { metric: "Rocket.Chat message → event (p50)".into(), measured: p.map(|p| p.p50), unit: "ms", target: None, reference: false },
        Row {
            metric: "Rocket.Chat message → event (p99)".into(),
            measured: p.map(|p| p.p99),
            unit: "ms",
            target: Some(TARGET_P99_MS),
            reference: false,
        },
        Row {
            metric: "Rocket.Chat message → event (mean) vs a 30 s poller's mean".into(),
            measured: r.map(|r| r.mean_ms),
            unit: "ms",
            target: Some(POLLER_MEAN_MS),
            reference: true,
        },
        Row {
            metric: "Rocket.Chat idle REST requests/hour while live vs the seed's 30 s polling".into(),
            measured: r.map(|r| per_hour(r.idle.rest as f64, r.idle_secs)),
            unit: "req/h",
            target: Some(SEED_REQUESTS_PER_HOUR),
            reference: true,
        },
        Row {
            metric: "Rocket.Chat idle DDP frames/hour (heartbeat)".into(),
            measured: r.map(|r| per_hour((r.idle.frames.0 + r.idle.frames.1) as f64, r.idle_secs)),
            unit: "frames/h",
            target: None,
            reference: false,
        },
        Row {
            metric: format!("Rocket.Chat burst into {ROOMS} rooms: all announced"),
            measured: r.map(|r| ms(r.burst.took)),
            unit: "ms",
            target: Some(TARGET_BURST_MS),
            reference: false,
        },
        Row {
            metric: format!("Rocket.Chat burst into {ROOMS} rooms: announcements (toasts)"),
            measured: r.map(|r| r.burst.announcements as f64),
            unit: "events",
            target: Some(TARGET_BURST_TOASTS),
            reference: false,
        },
        Row {
            metric: format!("Rocket.Chat burst into {ROOMS} rooms: CPU time (the fake included)"),
            measured: r.map(|r| ms(r.burst.cpu)),
            unit: "ms",
            target: None,
            reference: false,
        },
    ]
}
