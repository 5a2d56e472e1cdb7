//! `cargo bench --bench rocketchat`: the Rocket.Chat watcher against the fake
//! Rocket.Chat of the tests (REST + DDP on loopback), through the real core.
//!
//! Measures what the targets are about:
//! - message-to-event latency over N messages (p50, p99, max), and its
//!   ratio to a 30 s poller's mean wait (15 s);
//! - idle traffic while live, scaled to one hour (DDP frames and bytes, REST
//!   requests);
//! - a 50-room account receiving 1,000 messages at once: time until every
//!   message is announced, number of announcements (each is at most one
//!   toast), CPU time of the process (fake server included).
//!
//! Options:
//! `--messages N` (200), `--idle-secs N` (60), `--burst N` (1000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use vigie::config::AccountConfig;
use vigie::model::{AccountId, Connectivity, Source};
use vigie::rocketchat::{ChatSettings, RocketChatWatcher, TOKEN_SECRET};
use vigie::scheduler::ScheduleConfig;
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::{AccountSpec, Core, CoreEvent, Setup};

use vigie::demo::fake_rocketchat::{ALICE, BOB, DM_BOB, FakeRocketChat, Generation, TOKEN};

const ID: &str = "chat";
const PATIENCE: Duration = Duration::from_secs(30);

struct Options {
    messages: usize,
    idle_secs: u64,
    burst: usize,
}

fn options() -> Options {
    let mut o = Options { messages: 200, idle_secs: 60, burst: 1_000 };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--messages", Some(v)) => o.messages = usize::try_from(v).unwrap_or(200),
            ("--idle-secs", Some(v)) => o.idle_secs = v,
            ("--burst", Some(v)) => o.burst = usize::try_from(v).unwrap_or(1_000),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

struct Running {
    core: Core,
    events: tokio::sync::mpsc::Receiver<CoreEvent>,
    _dir: tempfile::TempDir,
}

async fn start(fake: &FakeRocketChat) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets.set(&AccountId::new(ID), TOKEN_SECRET, &SecretString::from(TOKEN.to_owned())).expect("store");
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
    let (core, mut events) = Core::start(setup).expect("the core starts");
    loop {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(CoreEvent::Connectivity { state: Connectivity::LivePush, .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("the account did not go live: {other:?}"),
        }
    }
    Running { core, events, _dir: dir }
}

/// Waits for the announcement of `key`; returns the number of
/// announcements seen on the way.
async fn until_announced(events: &mut tokio::sync::mpsc::Receiver<CoreEvent>, keys: &mut Vec<String>) -> usize {
    let mut announcements = 0;
    while !keys.is_empty() {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(CoreEvent::NewItems { items, .. })) => {
                announcements += 1;
                keys.retain(|k| !items.iter().any(|i| &i.key == k));
            }
            Ok(Some(_)) => {}
            other => panic!("stopped waiting for {} messages: {other:?}", keys.len()),
        }
    }
    announcements
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = options();
    let mut rows: Vec<(String, String, String, String)> = Vec::new();

    // Latency: one message at a time, spaced beyond the batching window so
    // that each goes out on its own.
    {
        let fake = FakeRocketChat::start(Generation::V7).await.expect("the local Rocket.Chat starts");
        let mut run = start(&fake).await;
        let mut latencies = Vec::with_capacity(o.messages);
        for n in 0..o.messages {
            tokio::time::sleep(vigie::rocketchat::batch::WINDOW + Duration::from_millis(20)).await;
            let sent = Instant::now();
            let key = fake.post(DM_BOB, BOB, &format!("message {n}"), &[]);
            until_announced(&mut run.events, &mut vec![key]).await;
            latencies.push(sent.elapsed());
        }
        latencies.sort();
        let (p50, p99, max) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0), latencies[latencies.len() - 1]);
        println!("latency over {} messages: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", o.messages, ms(p50), ms(p99), ms(max));
        println!("  a 30 s poller waits 15 s on average: p50 is {:.6} of that", p50.as_secs_f64() / 15.0);
        rows.push(("message → event p99".into(), format!("{:.2} ms", ms(p99)), "≤ 10 ms".into(), format!("{:.2}", ms(p99) / 10.0)));
        rows.push(("p50 vs a 30 s poller (15 s mean)".into(), format!("{:.2} ms", ms(p50)), "—".into(), format!("{:.6}", p50.as_secs_f64() / 15.0)));
        run.core.stop().await;
    }

    // Idle traffic with the real heartbeat.
    {
        let fake = FakeRocketChat::start(Generation::V7).await.expect("the local Rocket.Chat starts");
        let run = start(&fake).await;
        let (frames_before, bytes_before, rest_before) = (fake.frames(), fake.bytes(), fake.requests().len());
        tokio::time::sleep(Duration::from_secs(o.idle_secs)).await;
        let (frames, bytes, rest) = (fake.frames(), fake.bytes(), fake.requests().len());
        let scale = 3_600.0 / o.idle_secs as f64;
        let frames_h = (frames.0 - frames_before.0 + frames.1 - frames_before.1) as f64 * scale;
        let bytes_h = (bytes.0 - bytes_before.0 + bytes.1 - bytes_before.1) as f64 * scale;
        let rest_n = rest - rest_before;
        println!(
            "idle {} s: {} frames in, {} out; {} bytes in, {} out; {rest_n} REST requests → {frames_h:.0} frames/h, {bytes_h:.0} bytes/h",
            o.idle_secs,
            frames.0 - frames_before.0,
            frames.1 - frames_before.1,
            bytes.0 - bytes_before.0,
            bytes.1 - bytes_before.1
        );
        rows.push(("idle REST requests while live".into(), rest_n.to_string(), "0".into(), if rest_n == 0 { "met".into() } else { "missed".into() }));
        rows.push(("idle DDP frames per hour".into(), format!("{frames_h:.0}"), "pings only".into(), "—".into()));
        rows.push(("idle DDP bytes per hour".into(), format!("{bytes_h:.0}"), "—".into(), "—".into()));
        run.core.stop().await;
    }

    // A burst into a 50-room account.
    {
        let fake = FakeRocketChat::start(Generation::V7).await.expect("the local Rocket.Chat starts");
        let rooms = fake.add_rooms(50);
        let mut run = start(&fake).await;
        let cpu_before = cpu_time();
        let started = Instant::now();
        let mut keys: Vec<String> = (0..o.burst).map(|n| fake.post(&rooms[n % rooms.len()], BOB, &format!("burst {n}"), &[])).collect();
        let announcements = until_announced(&mut run.events, &mut keys).await;
        let took = started.elapsed();
        let cpu = cpu_time() - cpu_before;
        println!("burst of {} messages in 50 rooms: all announced after {:.1} ms in {announcements} announcements, {:.1} ms CPU (fake server included)", o.burst, ms(took), ms(cpu));
        rows.push(("burst: all announced".into(), format!("{:.0} ms", ms(took)), "< 1000 ms".into(), format!("{:.2}", ms(took) / 1_000.0)));
        rows.push(("burst: announcements (toasts)".into(), announcements.to_string(), "≤ 3".into(), format!("{:.2}", announcements as f64 / 3.0)));
        rows.push(("burst: CPU time (with the fake)".into(), format!("{:.0} ms", ms(cpu)), "—".into(), "—".into()));
        run.core.stop().await;
    }

    println!();
    println!("| figure | measured | target | ratio |");
    println!("|---|---|---|---|");
    for (figure, measured, target, ratio) in rows {
        println!("| {figure} | {measured} | {target} | {ratio} |");
    }
}
