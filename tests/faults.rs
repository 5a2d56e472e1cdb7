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
//! clock, loopback only; each takes some 10–35 s.
//!
//! Beside them: a resume on a network that silently dropped the links
//! (each source reconnects at the wake, not after a timeout), a Leantime
//! link that goes silent without a wake (noticed within the silence
//! timeout, or shown as an outage when it stays silent), the proxy's own
//! faults against an echo server, and three ignored benchmarks (a long
//! run of 10,000 items and 500 faults, half-open links timed against each
//! source's keepalive, and a soak: rounds of items and faults for minutes,
//! the user reading what was announced after each, with the process's RSS,
//! sockets and tasks sampled then; see `docs/benchmarks.md`). A scenario is
//! a [`World`] (the servers, their proxies and the core) played for one
//! round; the soak plays many.
//!
//! [`FaultyProxy`]: crate::support::faulty::FaultyProxy

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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
use vigie::web::HttpTimeouts;
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
/// A burst bigger than a watcher fetches at once (mail and Leantime: 50).
const BURST: usize = 60;
/// How long a core may take to start and sync for the first time.
const READY: Duration = Duration::from_secs(20);

// Several worker threads, as the app runs the core: a stop may then land
// between any two steps of the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_over_imap_survives_random_faults_restarts_and_a_sleep_with_every_mail_announced_once() {
    scenario(&[Source::Mail], &Size::ci(40, 15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocketchat_survives_random_faults_restarts_and_a_sleep_with_every_message_announced_once() {
    scenario(&[Source::Chat], &Size::ci(40, 15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leantime_survives_random_faults_restarts_and_a_sleep_with_every_item_announced_once() {
    scenario(&[Source::Tasks], &Size::ci(30, 12)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_sources_at_once_survive_random_faults_restarts_and_a_sleep_with_every_item_announced_once() {
    scenario(&[Source::Mail, Source::Chat, Source::Tasks], &Size::ci(20, 20)).await;
}

/// After a resume on a network that silently dropped every open connection
/// (a NAT, a VPN or a Wi-Fi change while asleep), the item sent meanwhile
/// comes within seconds: the wake makes the source start over on fresh
/// connections rather than wait out a timeout on a dead one.
async fn resuming_on_a_network_that_dropped_the_links_announces_within_seconds(source: Source) {
    let mut side = Side::start(source).await;
    let proxy = FaultyProxy::start(side.upstream()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(watch::channel(Ledger::default()).0);
    // Leantime polls only when asked here, so that no timer poll can be in
    // flight on the link when it drops.
    let mut run = Run::start(&dir.path().join("state.json"), vec![side.spec_polling(proxy.port(), Duration::from_secs(3_600))], &ledger);
    run.ready(1).await.unwrap_or_else(|| panic!("{source:?} did not sync"));

    proxy.swallow_open();
    let key = side.inject(0).await;
    let woke = Instant::now();
    run.rig.handle.refresh_all(Trigger::Wake);
    let id = side.id();
    let announced = run.until(Duration::from_secs(5), |ledger, _| ledger.listed(id).contains(&key)).await;
    assert!(announced, "{source:?}: the item sent while asleep is not announced {:?} after waking", woke.elapsed());
    run.stop().await;
}

#[tokio::test]
async fn mail_resuming_on_a_network_that_dropped_the_links_is_announced_within_seconds() {
    resuming_on_a_network_that_dropped_the_links_announces_within_seconds(Source::Mail).await;
}

#[tokio::test]
async fn a_chat_message_resuming_on_a_network_that_dropped_the_links_is_announced_within_seconds() {
    resuming_on_a_network_that_dropped_the_links_announces_within_seconds(Source::Chat).await;
}

#[tokio::test]
async fn a_leantime_item_resuming_on_a_network_that_dropped_the_links_is_announced_within_seconds() {
    resuming_on_a_network_that_dropped_the_links_announces_within_seconds(Source::Tasks).await;
}

/// How far past the silence timeout a half-open Leantime link may be
/// noticed and its item announced: the request goes out some milliseconds
/// after the refresh, the retry is one round trip on loopback; the rest is
/// a busy machine's slack. Still well under the 30 s request timeout.
const SILENCE_SLACK: Duration = Duration::from_secs(5);

/// A Leantime poll over a pooled connection that went silent (a half-open
/// link: a NAT or a VPN forgot it, no sleep, no network change to say so)
/// is given up after the silence timeout, not the 30 s request timeout,
/// and asked again at once on a fresh connection: the item is announced
/// seconds after the cut, and the account never shows an outage for a
/// link it could replace.
#[tokio::test]
async fn a_half_open_leantime_link_is_noticed_within_the_silence_timeout_and_the_item_announced() {
    let silence = HttpTimeouts::default().silence;
    let mut side = Side::start(Source::Tasks).await;
    let proxy = FaultyProxy::start(side.upstream()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(watch::channel(Ledger::default()).0);
    // Polled only when asked: the poll after the cut is the one under
    // test, sent on the connection the first sync left in the pool.
    let mut run = Run::start(&dir.path().join("state.json"), vec![side.spec_polling(proxy.port(), Duration::from_secs(3_600))], &ledger);
    run.ready(1).await.expect("Leantime did not sync");
    let connections = proxy.counters().accepted;

    proxy.swallow_open();
    let key = side.inject(0).await;
    let cut = Instant::now();
    assert!(run.rig.handle.refresh(&AccountId::new(TASKS), Trigger::Manual));
    let noticed = async {
        tokio::time::timeout(silence + SILENCE_SLACK, proxy.accepted_more_than(connections)).await.ok().map(|_| cut.elapsed())
    };
    let outage = Cell::new(None);
    let announced = run.until(silence + SILENCE_SLACK, |ledger, snapshot| {
        let state = snapshot.accounts.iter().find(|a| a.id.as_str() == TASKS).map(|a| a.connectivity.clone());
        if let Some(state) = state.filter(|c| *c != Connectivity::Polling) {
            outage.set(Some(state));
        }
        ledger.listed(TASKS).contains(&key)
    });
    let (noticed, announced) = tokio::join!(noticed, announced);
    let noticed = noticed.unwrap_or_else(|| panic!("no fresh connection within {:?} of the cut", silence + SILENCE_SLACK));
    assert!(announced, "the item is not announced {:?} after the cut (silence timeout {silence:?})", cut.elapsed());
    let announced = cut.elapsed();
    eprintln!("half-open Leantime link: noticed after {noticed:.2?}, item announced after {announced:.2?}");
    assert!(noticed < silence + SILENCE_SLACK && announced < silence + SILENCE_SLACK, "noticed {noticed:?}, announced {announced:?}");
    assert_eq!(outage.take(), None, "a link replaced at once is no outage");
    assert_eq!(ledger.borrow().listed(TASKS), [key], "announced once");
    run.stop().await;
}

/// When the fresh connection is silent too (everything towards the server
/// is swallowed), the poll goes to the backoff and the account says for
/// how long nothing answered, naming the host and nothing more; once the
/// link carries again, polling resumes by itself and the item sent
/// meanwhile is announced.
#[tokio::test]
async fn a_leantime_link_that_stays_silent_backs_off_saying_no_answer_for_the_silence_timeout() {
    // Short, to keep the test quick: the behaviour does not depend on it.
    let silence = Duration::from_secs(1);
    let mut side = Side::start(Source::Tasks).await;
    let proxy = FaultyProxy::start(side.upstream()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(watch::channel(Ledger::default()).0);
    let timeouts = HttpTimeouts { silence, ..HttpTimeouts::default() };
    let spec = side.spec_timed(proxy.port(), Duration::from_secs(3_600), timeouts);
    let mut run = Run::start(&dir.path().join("state.json"), vec![spec], &ledger);
    run.ready(1).await.expect("Leantime did not sync");

    proxy.set_blackhole(true);
    assert!(run.rig.handle.refresh(&AccountId::new(TASKS), Trigger::Manual));
    let reason = Cell::new(String::new());
    let backing_off = run
        .until(READY, |_, snapshot| match snapshot.accounts.iter().find(|a| a.id.as_str() == TASKS).map(|a| &a.connectivity) {
            Some(Connectivity::BackingOff { reason: why, .. }) => {
                reason.set(why.clone());
                true
            }
            _ => false,
        })
        .await;
    assert!(backing_off, "a link silent twice is not shown as an outage");
    let reason = reason.take();
    assert_eq!(reason, format!("no answer from 127.0.0.1:{} for 1 s", proxy.port()));
    let Side::Tasks { fake, .. } = &side else { unreachable!() };
    assert!(!reason.contains(fake.token()), "{reason}");

    proxy.set_blackhole(false);
    let key = side.inject(0).await;
    let recovered = run
        .until(CATCH_UP, |ledger, snapshot| {
            let polling = snapshot.accounts.iter().any(|a| a.id.as_str() == TASKS && a.connectivity == Connectivity::Polling);
            polling && ledger.listed(TASKS).contains(&key)
        })
        .await;
    assert!(recovered, "polling did not resume once the link carried again");
    run.stop().await;
}

/// The long run, a benchmark rather than a CI test: some 10,000 items over
/// the three sources (a third each) with 500 faults, 20 restarts and 10
/// sleeps, in about ten minutes; prints what was lost or doubled per
/// account instead of failing at the first problem. `VIGIE_FAULT_ITEMS`
/// and `VIGIE_FAULT_FAULTS` change its size, `VIGIE_FAULT_SEED` replays it:
///
/// `cargo test --test integration faults::long_run -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark of about ten minutes: run it by name with --ignored --nocapture"]
async fn long_run_of_ten_thousand_items_and_five_hundred_faults() {
    let items = env_number("VIGIE_FAULT_ITEMS", 10_000);
    let faults = env_number("VIGIE_FAULT_FAULTS", 500);
    let size = Size {
        items: items.div_ceil(3),
        faults,
        max_pause: Duration::from_millis(500),
        max_span: Duration::from_millis(1_000),
        strict: false,
        catch_up: Duration::from_secs(120),
        restarts: 20..=20,
        sleeps: 10,
    };
    let outcome = scenario(&[Source::Mail, Source::Chat, Source::Tasks], &size).await;
    println!("\nlong run, seed {}: {} faults, {} core runs, {:.0?}", outcome.seed, outcome.faults, outcome.runs, outcome.took);
    println!("{:<8} {:>7} {:>7} {:>9} {:>5} {:>8} {:>8} {:>14}", "account", "put in", "listed", "unlisted", "lost", "doubled", "foreign", "count/server");
    for (id, tally, count, truth) in &outcome.accounts {
        let count = count.map_or("-".to_owned(), |c| c.to_string());
        println!(
            "{:<8} {:>7} {:>7} {:>9} {:>5} {:>8} {:>8} {:>14}",
            id.as_str(),
            tally.put_in,
            tally.listed,
            tally.unlisted,
            tally.lost,
            tally.doubled,
            tally.foreign,
            format!("{count}/{truth}")
        );
    }
}

/// How long each source takes to notice a half-open link (the open
/// connections silently carry nothing, new ones work: a NAT or a VPN that
/// forgot the flows, or a sleep the peers did not answer after), measured
/// against the keepalive it is configured with here, and how long until the
/// item sent meanwhile is announced; once left to the source alone, once
/// with the wake trigger fired at the cut (a resume). Noticed: the account
/// leaves live/polling, or a new connection is opened (Leantime asks again
/// on a fresh connection without ever leaving polling). A benchmark: prints
/// the figures.
///
/// `cargo test --test integration faults::half_open -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark of about a minute: run it by name with --ignored --nocapture"]
async fn half_open_links_noticed_against_their_keepalive() {
    let mut rows = Vec::new();
    for source in [Source::Mail, Source::Chat, Source::Tasks] {
        for wake in [false, true] {
            let mut side = Side::start(source).await;
            let proxy = FaultyProxy::start(side.upstream()).await;
            let dir = tempfile::tempdir().expect("tempdir");
            let ledger = Arc::new(watch::channel(Ledger::default()).0);
            let mut run = Run::start(&dir.path().join("state.json"), vec![side.spec(proxy.port())], &ledger);
            run.ready(1).await.unwrap_or_else(|| panic!("{source:?} did not sync"));
            // Into the idle state: IDLE sent, the websocket quiet, a
            // Leantime poll's connection back in the pool.
            tokio::time::sleep(Duration::from_secs(3)).await;

            let connections = proxy.counters().accepted;
            proxy.swallow_open();
            let cut = Instant::now();
            let key = side.inject(0).await;
            if wake {
                run.rig.handle.refresh_all(Trigger::Wake);
            }
            let id = AccountId::new(side.id());
            let mut snapshots = run.rig.handle.subscribe();
            let live = |c: &Connectivity| matches!(c, Connectivity::LivePush | Connectivity::Polling);
            let noticed = async {
                let left_live = snapshots.wait_for(|s| s.accounts.iter().any(|a| a.id == id && !live(&a.connectivity)));
                let reconnected = proxy.accepted_more_than(connections);
                let either = async {
                    tokio::select! {
                        _ = left_live => {}
                        () = reconnected => {}
                    }
                };
                tokio::time::timeout(Duration::from_secs(45), either).await.ok().map(|_| cut.elapsed())
            };
            let announced = async {
                run.until(Duration::from_secs(60), |ledger, _| ledger.listed(id.as_str()).contains(&key)).await.then(|| cut.elapsed())
            };
            let (noticed, announced) = tokio::join!(noticed, announced);
            run.stop().await;
            rows.push((source, wake, noticed, announced));
        }
    }
    let keepalive = |source: Source| match source {
        Source::Mail => "IDLE silence 6 s (Dovecot: \"still here\" every 5 s), then DONE within 6 s",
        Source::Chat => "websocket ping after 1 s of silence, dead 3 s later; REST timeout 30 s",
        Source::Tasks => "HTTP silence 10 s, then once more on a fresh connection; request timeout 30 s",
    };
    println!("\nhalf-open link: cut → noticed (connectivity leaves live/polling, or a new connection) → item announced");
    for (source, wake, noticed, announced) in rows {
        let how = if wake { "wake at cut" } else { "left alone" };
        println!("{source:<6?} {how:<12} noticed {:>8} announced {:>8}   keepalive: {}", show(noticed), show(announced), keepalive(source));
    }
}

/// A soak, a benchmark rather than a CI test: the three sources through
/// their proxies, round after round of items and faults (each round: 150
/// items per source, 150 short faults, a restart of the core and a sleep)
/// on the same servers for `VIGIE_SOAK_SECS` seconds (default 300; the round
/// under way finishes). After each round has caught up, the user reads
/// what they were told about, in another client, as a real user does: the
/// counts fall to the servers' again, and what the servers and the core
/// keep about unread items stops growing with the items put in. Once the
/// sources have settled, the test process (the core runs in it) is
/// sampled: RSS, open sockets, tokio tasks alive. The first round warms
/// up; its sample is the baseline. Fails on any item lost or doubled, a
/// count other than the server's, and on sockets, tasks or RSS at the end
/// above the baseline's bounds ([`SOCKET_SLACK`], [`TASK_SLACK`],
/// [`RSS_PER_ITEM_KIB`]). `VIGIE_SOAK_ITEMS` and
/// `VIGIE_SOAK_FAULTS` change a round's size (items per source, faults);
/// `VIGIE_FAULT_SEED` replays the plan:
///
/// `cargo test --test integration soak -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of about five minutes: run it by name with --ignored --nocapture"]
async fn soak_keeps_memory_sockets_and_tasks_flat() {
    let limit = Duration::from_secs(u64::try_from(env_number("VIGIE_SOAK_SECS", 300)).unwrap_or(300));
    // Accelerated: faults three times as dense as the long run's, so a few
    // minutes go through about a thousand of them.
    let size = Size {
        items: env_number("VIGIE_SOAK_ITEMS", 150),
        faults: env_number("VIGIE_SOAK_FAULTS", 150),
        max_pause: Duration::from_millis(150),
        max_span: Duration::from_millis(300),
        strict: false,
        catch_up: Duration::from_secs(120),
        restarts: 1..=1,
        sleeps: 1,
    };
    let mut world = World::start(&[Source::Mail, Source::Chat, Source::Tasks], false).await;
    let peaks = Peaks::watch();
    let mut samples = vec![world.settled_sample(0).await];
    let mut round = 0;
    // A warm-up round, the baseline's round, and at least one after it.
    while round < 3 || world.started.elapsed() < limit {
        round += 1;
        peaks.reset();
        world.round(&size).await;
        world.read_what_was_announced(&size).await;
        let mut sample = world.settled_sample(round).await;
        (sample.peak_sockets, sample.peak_tasks) = peaks.take();
        eprintln!("{}", sample.row());
        samples.push(sample);
    }
    let (seed, items, faults) = (world.seed, world.put_in(), world.faults);
    let outcome = world.finish(&size).await;

    println!("\nsoak, seed {seed}: {items} items (and a last one per source), {faults} faults, {} core runs, {:.0?}", outcome.runs, outcome.took);
    println!("{}", Sample::header());
    for sample in &samples {
        println!("{}", sample.row());
    }
    let (baseline, end) = (&samples[1], &samples[samples.len() - 1]);
    let growth = end.rss_mib() - baseline.rss_mib();
    println!(
        "baseline round 1 → end round {}: RSS {:+.1} MiB ({:+.1} %, {:.1} KiB per item put in since), sockets {:+}, tasks {:+}; peak RSS (VmHWM) {:.1} MiB",
        end.round,
        growth,
        growth / baseline.rss_mib() * 100.0,
        growth * 1024.0 / (end.items - baseline.items).max(1) as f64,
        end.sockets as i64 - baseline.sockets as i64,
        end.tasks as i64 - baseline.tasks as i64,
        proc_status_kib("VmHWM").unwrap_or(0) as f64 / 1024.0
    );
    let mut wrong = Vec::new();
    for (id, tally, count, truth) in &outcome.accounts {
        println!(
            "{id}: {} put in, {} listed, {} unlisted, {} lost, {} doubled, {} foreign, count {count:?} / server {truth}",
            tally.put_in, tally.listed, tally.unlisted, tally.lost, tally.doubled, tally.foreign
        );
        if tally.lost + tally.doubled + tally.foreign > 0 || *count != Some(*truth) {
            wrong.push(format!("{id}: {tally:?}, count {count:?} / server {truth}"));
        }
    }
    assert!(wrong.is_empty(), "seed {seed}: not every item announced exactly once: {wrong:?}");
    assert!(end.sockets <= baseline.sockets + SOCKET_SLACK, "seed {seed}: sockets grew from {} to {}", baseline.sockets, end.sockets);
    assert!(end.tasks <= baseline.tasks + TASK_SLACK, "seed {seed}: tasks grew from {} to {}", baseline.tasks, end.tasks);
    let allowed = (end.items - baseline.items) as f64 * RSS_PER_ITEM_KIB / 1024.0 + RSS_SLACK_MIB;
    assert!(growth <= allowed, "seed {seed}: RSS grew {growth:.1} MiB from the baseline, more than {allowed:.1} MiB for {} items", end.items - baseline.items);
}

/// Sockets the end may hold beyond the baseline, once settled: one more
/// pooled connection (the core's end, the proxy's two, the fake's end).
/// Measured: +0 in every round. A leak of one connection per restart,
/// sleep or round would pass it after a round or two.
const SOCKET_SLACK: usize = 4;
/// Tasks the end may hold beyond the baseline, once settled: that one more
/// pooled connection's tasks (the proxy's relay, the fake's connection, the
/// client's). Measured: +0.
const TASK_SLACK: usize = 4;
/// RSS growth allowed per item put in after the baseline, in KiB. The user
/// reads every item once it is announced, so what the servers answer and
/// what the watchers keep about unread items (the unseen UIDs, the chat
/// rooms' announced keys, Leantime's inbox and open tasks) stays as small
/// as at the baseline. What still grows with each item: the servers' stores
/// in this process (the fakes keep every message, notification and task,
/// read or not, as a real server does), the test's ledger of the keys put
/// in and announced, and the core's remembered keys (up to
/// `store::MAX_NOTIFIED` per account: some 1,100 each after five minutes).
/// Measured over five minutes: 0.8 and 0.7 KiB per item (seeds 1001 and
/// 2002: +2.2 and +2.0 MiB over some 2,700 items after the baseline, up to
/// 0.9 MiB in a single round as the allocator steps); 4.1 and 3.9 KiB per
/// item when nothing was read. About twice the most measured is allowed:
/// growth that follows the unread items again fails it within two rounds
/// after the baseline.
const RSS_PER_ITEM_KIB: f64 = 1.5;
/// RSS growth allowed beside the items: room for the allocator's arenas
/// and the test binary's code paged in as new paths run (its file-backed
/// pages grew 0.1 MiB after the warm-up).
const RSS_SLACK_MIB: f64 = 2.0;

// ---------------------------------------------------------------------------
// The soak's samples of the test process

/// The test process at one moment: the core, the proxies and the fakes
/// all run in it (Dovecot is a process of its own).
#[derive(Debug, Clone, Copy)]
struct Sample {
    round: usize,
    elapsed: Duration,
    items: usize,
    faults: usize,
    rss_kib: u64,
    /// Of the RSS: anonymous memory (the heaps, the stacks) and file-backed
    /// pages (the test binary's code, its libraries).
    anon_kib: u64,
    file_kib: u64,
    /// Threads of the process (tokio's blocking pool comes and goes).
    threads: u64,
    sockets: usize,
    tasks: usize,
    /// The most seen during the round, while the faults fired.
    peak_sockets: usize,
    peak_tasks: usize,
}

impl Sample {
    fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    fn header() -> String {
        format!(
            "{:>5} {:>6} {:>6} {:>6} {:>8} {:>6} {:>6} {:>7} {:>7} {:>5} {:>12} {:>10}",
            "round", "time", "items", "faults", "RSS MiB", "anon", "file", "threads", "sockets", "tasks", "peak sockets", "peak tasks"
        )
    }

    fn row(&self) -> String {
        format!(
            "{:>5} {:>5.0}s {:>6} {:>6} {:>8.1} {:>6.1} {:>6.1} {:>7} {:>7} {:>5} {:>12} {:>10}",
            self.round,
            self.elapsed.as_secs_f64(),
            self.items,
            self.faults,
            self.rss_mib(),
            self.anon_kib as f64 / 1024.0,
            self.file_kib as f64 / 1024.0,
            self.threads,
            self.sockets,
            self.tasks,
            self.peak_sockets,
            self.peak_tasks
        )
    }
}

impl World {
    /// Samples the process once the sources have settled: every account
    /// live or polling, and sockets and tasks unchanged over four looks half
    /// a second apart (connections closed by the faults are gone, the
    /// proxies have reaped their relays); at most 20 s.
    async fn settled_sample(&self, round: usize) -> Sample {
        let mut snapshots = self.run.rig.handle.subscribe();
        let live = |s: &Snapshot| s.accounts.iter().all(|a| matches!(a.connectivity, Connectivity::LivePush | Connectivity::Polling));
        let _ = tokio::time::timeout(Duration::from_secs(20), snapshots.wait_for(live)).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut same = 0;
        let mut last = (open_sockets(), alive_tasks());
        while same < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = (open_sockets(), alive_tasks());
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        Sample {
            round,
            elapsed: self.started.elapsed(),
            items: self.put_in(),
            faults: self.faults,
            rss_kib: proc_status_kib("VmRSS").unwrap_or(0),
            anon_kib: proc_status_kib("RssAnon").unwrap_or(0),
            file_kib: proc_status_kib("RssFile").unwrap_or(0),
            threads: proc_status_kib("Threads").unwrap_or(0),
            sockets: last.0,
            tasks: last.1,
            peak_sockets: last.0,
            peak_tasks: last.1,
        }
    }
}

/// The most sockets and tasks seen, looked at every 100 ms by a thread of
/// its own (not a task: it would count itself).
struct Peaks {
    most: Arc<std::sync::Mutex<(usize, usize)>>,
    _stop: std::sync::mpsc::Sender<()>,
}

impl Peaks {
    /// Starts watching; the thread ends when this is dropped.
    fn watch() -> Peaks {
        let most = Arc::new(std::sync::Mutex::new((0, 0)));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (shared, runtime) = (most.clone(), tokio::runtime::Handle::current());
        std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Duration::from_millis(100)) {
                let (sockets, tasks) = (open_sockets(), runtime.metrics().num_alive_tasks());
                let mut most = shared.lock().unwrap_or_else(|e| e.into_inner());
                *most = (most.0.max(sockets), most.1.max(tasks));
            }
        });
        Peaks { most, _stop: stop }
    }

    fn reset(&self) {
        *self.most.lock().unwrap_or_else(|e| e.into_inner()) = (0, 0);
    }

    fn take(&self) -> (usize, usize) {
        std::mem::take(&mut *self.most.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A number of `/proc/self/status`: a `kB` line (`VmRSS`, `VmHWM`) in
/// KiB, or a count (`Threads`).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// File descriptors of this process that are sockets (TCP, Unix and the
/// rest alike: all of them are what a leak would pile up).
fn open_sockets() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return 0 };
    // A descriptor closed between the listing and the look is skipped.
    entries.flatten().filter(|e| std::fs::read_link(e.path()).is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))).count()
}

/// The tasks alive on the test's runtime: the core's, the proxies'
/// relays, the fakes' connections.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

fn show(elapsed: Option<Duration>) -> String {
    elapsed.map_or("never".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------
// The scenario

/// How big a scenario is, and whether a problem fails it at once.
struct Size {
    /// Items put on each server.
    items: usize,
    /// Faults, spread over the proxies.
    faults: usize,
    /// The longest pause between faults.
    max_pause: Duration,
    /// The longest span of a lasting fault.
    max_span: Duration,
    /// Fail at the first problem (a test), or count them all (a benchmark).
    strict: bool,
    /// How long the watchers may take to catch up after the faults.
    catch_up: Duration,
    /// How many restarts of the core (drawn from this range).
    restarts: std::ops::RangeInclusive<usize>,
    /// Sleeps of the machine.
    sleeps: usize,
}

impl Size {
    /// A CI test's size: a scenario of some 15–30 s.
    fn ci(items: usize, faults: usize) -> Size {
        Size {
            items,
            faults,
            max_pause: Duration::from_millis(800),
            max_span: Duration::from_millis(1_500),
            strict: true,
            catch_up: CATCH_UP,
            restarts: 1..=3,
            sleeps: 1,
        }
    }
}

/// What a scenario found, per account.
#[derive(Debug)]
struct Outcome {
    seed: u64,
    accounts: Vec<(AccountId, Tally, Option<u32>, u32)>,
    faults: usize,
    runs: u32,
    took: Duration,
}

/// Runs the scenario over `sources` (see the module docs): one round of
/// faults on a fresh world, then the final checks.
async fn scenario(sources: &[Source], size: &Size) -> Outcome {
    let mut world = World::start(sources, size.strict).await;
    world.round(size).await;
    world.finish(size).await
}

/// The servers, their proxies and the running core a scenario plays on.
/// Kept across rounds: the soak plays many rounds on one world.
// Fields drop in order: the core before the proxies and the servers it
// talks to, the temporary folder last.
struct World {
    run: Run,
    proxies: Vec<FaultyProxy>,
    sides: Vec<Side>,
    ledger: Arc<watch::Sender<Ledger>>,
    ids: Vec<AccountId>,
    /// The keys put in, per side, over every round.
    injected: Vec<Vec<String>>,
    /// How many of them (the first ones) the user has read, per side.
    read: Vec<usize>,
    /// Items the rounds planned so far (they number the next ones; the
    /// bursts at restarts come on top).
    items: usize,
    /// Faults played so far.
    faults: usize,
    seed: u64,
    rng: fastrand::Rng,
    started: Instant,
    log: Timeline,
    state_file: PathBuf,
    _dir: tempfile::TempDir,
    _replay: ReplayHint,
}

impl World {
    /// Starts the servers of `sources`, a proxy in front of each and the
    /// core, and waits for its first sync.
    async fn start(sources: &[Source], strict: bool) -> World {
        let seed = seed();
        eprintln!("fault scenario over {sources:?}: seed {seed} (replay with VIGIE_FAULT_SEED={seed})");
        let started = Instant::now();
        let mut log = Timeline::new(seed, strict);
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
        let run = Run::start(&state_file, specs(&sides, &proxies), &ledger);
        let Some(ready) = run.ready(sides.len()).await else {
            log.fail(&format!("the accounts did not sync within {READY:?}: {:#?}", run.rig.handle.snapshot()))
        };
        for side in &mut sides {
            side.note_baseline(&ready).await;
        }
        log.note(format!("ready after {:?}", started.elapsed()));
        let ids = sides.iter().map(|s| AccountId::new(s.id())).collect();
        World {
            run,
            proxies,
            injected: vec![Vec::new(); sides.len()],
            read: vec![0; sides.len()],
            sides,
            ledger,
            ids,
            items: 0,
            faults: 0,
            seed,
            rng: fastrand::Rng::with_seed(seed),
            started,
            log,
            state_file,
            _dir: dir,
            _replay: ReplayHint(seed),
        }
    }

    /// One round: `size.items` items per source put in at random moments
    /// while `size.faults` faults fire, with restarts and sleeps; then the
    /// faults are lifted and the watchers catch up (every item so far
    /// announced or counted, every count right).
    async fn round(&mut self, size: &Size) {
        let World { run, proxies, sides, injected, items: first, faults: played, rng, started, log, state_file, .. } = self;
        let started = *started;
        let first = *first;
        // The plan and the moments of the restarts and of the sleeps.
        let shape = PlanShape {
            count: size.faults,
            proxies: proxies.len(),
            kinds: FaultKind::ALL.to_vec(),
            max_pause: size.max_pause,
            max_span: size.max_span,
        };
        let plan = FaultPlan::draw(rng, &shape);
        let total = size.items * sides.len();
        // At each restart, the item is put in while the core is stopped, or
        // just before it stops (while its watcher is fetching it).
        let restarts: BTreeMap<usize, bool> =
            (0..rng.usize(size.restarts.clone())).map(|_| (rng.usize(1..total), rng.bool())).collect();
        let sleeps: BTreeSet<usize> =
            (0..size.sleeps).map(|_| rng.usize(1..total)).filter(|at| !restarts.contains_key(at)).collect();
        // Injections spread over about as long as the plan plays.
        let max_pause = plan.duration() * 2 / u32::try_from(total).unwrap_or(u32::MAX);
        let order: Vec<usize> = (0..total).map(|i| i % sides.len()).collect();
        log.note(format!(
            "{:>7.2?} round from item {first}, plan: {} faults over {:?}; restarts before items {restarts:?}; sleeps at items {sleeps:?}",
            started.elapsed(),
            plan.faults.len(),
            plan.duration()
        ));

        let proxy_refs: Vec<&FaultyProxy> = proxies.iter().collect();
        let fault_log = std::sync::Mutex::new(Vec::new());
        let play = plan.play(&proxy_refs, |index, planned| {
            fault_log.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                "{:>7.2?} fault #{}: {:?} on proxy {} for {:?}",
                started.elapsed(),
                *played + index,
                planned.fault,
                planned.proxy,
                planned.lasts
            ));
        });
        let inject = async {
            for (i, &which) in order.iter().enumerate() {
                let n = first + i;
                tokio::time::sleep(Duration::from_millis(rng.u64(0..=u64::try_from(max_pause.as_millis()).unwrap_or(1000)))).await;
                if let Some(&mid_sync) = restarts.get(&i) {
                    if mid_sync {
                        let key = sides[which].inject(n).await;
                        injected[which].push(key);
                        let after = Duration::from_millis(rng.u64(0..=60));
                        tokio::time::sleep(after).await;
                        run.stop().await;
                        log.note(format!("{:>7.2?} restart {after:?} after item {n} was put in", started.elapsed()));
                    } else {
                        run.stop().await;
                        // Something arrives while the app is closed,
                        // sometimes a burst bigger than one fetch (mail:
                        // announced with the rest counted as `unlisted`;
                        // Leantime: more than one inbox page).
                        let burst = if rng.bool() { BURST } else { 1 };
                        let keys = sides[which].inject_burst(n, burst).await;
                        log.note(format!("{:>7.2?} restart ({} items put in while stopped)", started.elapsed(), keys.len()));
                        injected[which].extend(keys);
                    }
                    run.start_next(state_file, specs(sides, proxies));
                    continue;
                }
                if sleeps.contains(&i) {
                    // Asleep: every link goes dark; mail keeps arriving.
                    for proxy in proxies.iter() {
                        proxy.set_blackhole(true);
                    }
                    let key = sides[which].inject(n).await;
                    injected[which].push(key);
                    let slept = Duration::from_millis(rng.u64(500..=3_000));
                    tokio::time::sleep(slept).await;
                    // Awake: the peers forgot the links (an RST answers the
                    // first segment), and the wake detector fires.
                    for proxy in proxies.iter() {
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
        for proxy in proxies.iter() {
            proxy.clear();
        }
        self.items += total;
        self.faults += plan.faults.len();
        self.log.note(format!("{:>7.2?} faults over, {} items put in; catching up", started.elapsed(), self.put_in()));

        // Every item announced (or counted), every count right.
        let truth = self.truth().await;
        let caught_up = self.run.until(size.catch_up, |ledger, snapshot| {
            self.ids.iter().zip(&self.injected).zip(&truth).all(|((id, keys), truth)| {
                ledger.covers(id.as_str(), keys) && count_of(snapshot, id) == Some(*truth)
            })
        });
        if !caught_up.await {
            let snapshot = self.run.rig.handle.snapshot();
            let mut why = String::new();
            for ((id, keys), truth) in self.ids.iter().zip(&self.injected).zip(&truth) {
                let _ = writeln!(why, "{id}: count {:?}, server {truth}; {}", count_of(&snapshot, id), self.ledger.borrow().describe(id.as_str(), keys));
            }
            self.log.problem(&format!("not caught up {:?} after the faults:\n{why}{snapshot:#?}", size.catch_up));
        } else {
            self.log.note(format!("{:>7.2?} caught up", started.elapsed()));
        }
    }

    /// The user reads what they were told about, in another client (see
    /// [`Side::read`]), while no fault fires: each side's items put in since
    /// the last read, once the ledger covers them all (each listed, or
    /// counted in an announcement's `unlisted`: "and 10 more"). Then the
    /// core's counts fall to the servers'.
    async fn read_what_was_announced(&mut self, size: &Size) {
        let mut read = 0;
        for (i, side) in self.sides.iter_mut().enumerate() {
            let keys = &self.injected[i];
            // An item read before it was announced would never be: not lost
            // by the core, but by the test. Such items wait for the next time.
            if !self.ledger.borrow().covers(self.ids[i].as_str(), keys) {
                self.log.note(format!("{:>7.2?} {}: not all announced yet, nothing read", self.started.elapsed(), self.ids[i]));
                continue;
            }
            side.read(&keys[self.read[i]..]).await;
            read += keys.len() - self.read[i];
            self.read[i] = keys.len();
        }
        let truth = self.truth().await;
        let fell = self.run.until(size.catch_up, |_, snapshot| {
            self.ids.iter().zip(&truth).all(|(id, truth)| count_of(snapshot, id) == Some(*truth))
        });
        if fell.await {
            self.log.note(format!("{:>7.2?} {read} items read, counts at the servers' {truth:?}", self.started.elapsed()));
        } else {
            let snapshot = self.run.rig.handle.snapshot();
            let counts: Vec<Option<u32>> = self.ids.iter().map(|id| count_of(&snapshot, id)).collect();
            let limit = size.catch_up;
            self.log.problem(&format!("{read} items read, the counts {counts:?} did not fall to the servers' {truth:?} within {limit:?}"));
        }
    }

    /// Items put on the servers so far, bursts included.
    fn put_in(&self) -> usize {
        self.injected.iter().map(Vec::len).sum()
    }

    /// The unread count each server holds now.
    async fn truth(&mut self) -> Vec<u32> {
        let mut truth = Vec::new();
        for side in &mut self.sides {
            truth.push(side.truth().await);
        }
        truth
    }

    /// Puts a last item on each server (a late repeat of an earlier one
    /// would have shown before it), stops the core and checks that every
    /// item was announced exactly once over every run.
    async fn finish(mut self, size: &Size) -> Outcome {
        let total = self.items;
        for (i, side) in self.sides.iter_mut().enumerate() {
            let key = side.inject(total + i).await;
            self.injected[i].push(key);
        }
        let truth = self.truth().await;
        let last_seen = self.run.until(size.catch_up, |ledger, snapshot| {
            self.ids.iter().zip(&self.injected).zip(&truth).all(|((id, keys), truth)| {
                keys.last().is_some_and(|last| ledger.listed(id.as_str()).contains(last)) && count_of(snapshot, id) == Some(*truth)
            })
        });
        if !last_seen.await {
            self.log.problem(&format!("the last items were not announced and counted: {:#?}", self.run.rig.handle.snapshot()));
        }
        let last_counts: Vec<Option<u32>> = self.ids.iter().map(|id| count_of(&self.run.rig.handle.snapshot(), id)).collect();
        self.run.stop().await;
        self.log.note(format!("{:>7.2?} stopped after {} runs of the core", self.started.elapsed(), self.run.number));

        // Exactly once, over every run.
        let ledger = self.ledger.borrow();
        let mut wrong = String::new();
        for (id, keys) in self.ids.iter().zip(&self.injected) {
            if let Some(problem) = ledger.exactly_once(id.as_str(), keys) {
                let _ = writeln!(wrong, "{id}: {problem}");
            }
        }
        if !wrong.is_empty() {
            self.log.problem(&format!("items lost or doubled:\n{wrong}"));
        }
        if let Err(problem) = state_file_reads_back(&self.state_file) {
            self.log.problem(&problem);
        }
        let accounts = self
            .ids
            .iter()
            .zip(&self.injected)
            .zip(last_counts.into_iter().zip(truth))
            .map(|((id, keys), (count, truth))| (id.clone(), ledger.tally(id.as_str(), keys), count, truth))
            .collect();
        let outcome = Outcome { seed: self.seed, accounts, faults: self.faults, runs: self.run.number, took: self.started.elapsed() };
        if size.strict {
            eprintln!("{}", self.log.render());
        }
        eprintln!("seed {}: {total} items, {} faults, {} core runs, in {:?}", self.seed, outcome.faults, outcome.runs, outcome.took);
        outcome
    }
}

/// The accounts as the core runs them, each reaching its server through
/// its proxy.
fn specs(sides: &[Side], proxies: &[FaultyProxy]) -> Vec<AccountSpec> {
    sides.iter().zip(proxies).map(|(side, proxy)| side.spec(proxy.port())).collect()
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

    /// How the announcements of `account` compare with `keys`.
    fn tally(&self, account: &str, keys: &[String]) -> Tally {
        let wanted: BTreeSet<&String> = keys.iter().collect();
        let mut seen = BTreeSet::new();
        let doubled = self.listed(account).iter().filter(|k| !seen.insert(*k)).count();
        let foreign = seen.iter().filter(|k| !wanted.contains(*k)).count();
        let missing = keys.iter().filter(|k| !seen.contains(k)).count();
        let unlisted = self.unlisted(account);
        Tally {
            put_in: keys.len(),
            listed: seen.len() - foreign,
            unlisted,
            doubled: doubled + unlisted.saturating_sub(missing),
            foreign,
            lost: missing.saturating_sub(unlisted),
        }
    }

    fn describe(&self, account: &str, keys: &[String]) -> String {
        let listed: BTreeSet<&String> = self.listed(account).iter().collect();
        let missing: Vec<&String> = keys.iter().filter(|k| !listed.contains(k)).collect();
        format!("{} put in, {} listed, {} unlisted; not listed: {missing:?}", keys.len(), self.listed(account).len(), self.unlisted(account))
    }
}

/// Announcements against items put in, for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    /// Items put on the server.
    put_in: usize,
    /// Of those, how many were listed in a `NewItems`.
    listed: usize,
    /// Items counted in `unlisted`.
    unlisted: usize,
    /// Announcements beyond the first of an item (listed again, or counted
    /// unlisted beyond what was not listed).
    doubled: usize,
    /// Keys announced that were never put in.
    foreign: usize,
    /// Items neither listed nor covered by an unlisted count.
    lost: usize,
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
    Tasks { fake: FakeLeantime, put_in: u32, read: u32, baseline: u32 },
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
            Source::Tasks => Side::Tasks { fake: FakeLeantime::start(ServerVersion::V3_9_6).await, put_in: 0, read: 0, baseline: 0 },
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
        // Polled every second, as a busy user's "Refresh" would.
        self.spec_polling(port, Duration::from_secs(1))
    }

    /// The same, Leantime polled every `poll` (the other sources push).
    fn spec_polling(&self, port: u16, poll: Duration) -> AccountSpec {
        self.spec_timed(port, poll, HttpTimeouts::default())
    }

    /// The same, Leantime's requests with `timeouts` (the other sources
    /// keep theirs).
    fn spec_timed(&self, port: u16, poll: Duration, timeouts: HttpTimeouts) -> AccountSpec {
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
                let watcher =
                    LeantimeWatcher::new(AccountId::new(TASKS), &base, AuthKind::Token, TasksSettings::default(), secrets).with_timeouts(timeouts);
                AccountSpec { config, schedule: quick_retries(poll), watcher: Box::new(watcher) }
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

    /// Puts `count` items on the server at once (mail: one pipelined
    /// burst); returns their keys.
    async fn inject_burst(&mut self, n: usize, count: usize) -> Vec<String> {
        match self {
            Side::Chat { fake, .. } if count > 1 => (0..count).map(|i| fake.post(DM_BOB, BOB, &format!("burst {n}.{i}"), &[])).collect(),
            Side::Tasks { fake, put_in, .. } if count > 1 => {
                *put_in += u32::try_from(count).unwrap_or(u32::MAX);
                (0..count).map(|i| format!("n{}", fake.add_notification(&format!("Burst {n}.{i}"), "Sam Lee"))).collect()
            }
            Side::Mail { client, validity, .. } if count > 1 => {
                let next = client.uid_state("INBOX").await.1;
                let mails: Vec<String> =
                    (0..count).map(|i| message(&format!("b{n}-{i}@example.test"), &format!("Burst {n}.{i}"), "x")).collect();
                client.append_many("INBOX", &mails).await;
                // Only this client appends: the burst took the next UIDs.
                (0..count).map(|i| format!("INBOX:{validity}:{}", next + u32::try_from(i).unwrap_or(u32::MAX))).collect()
            }
            _ => vec![self.inject(n).await],
        }
    }

    /// The unread count the server holds now.
    async fn truth(&mut self) -> u32 {
        match self {
            Side::Mail { client, .. } => client.unseen("INBOX").await,
            Side::Chat { fake, others } => *others + fake.unread(DM_BOB) + fake.unread(GENERAL),
            // What was unread at the first sync, and every notification and
            // task put in since (new tasks count until acknowledged), less
            // those the user read or closed.
            Side::Tasks { put_in, read, baseline, .. } => *baseline + *put_in - *read,
        }
    }

    /// The user reads `keys` (items put in and announced) in another
    /// client, which changes the server as it would: the mails get `\Seen`,
    /// the chat rooms they came to are marked read (Rocket.Chat reads a
    /// room, not a message; the server pushes the subscription's change),
    /// the Leantime notifications are read and the tasks moved to Done in
    /// its web app.
    async fn read(&mut self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        match self {
            Side::Mail { client, .. } => {
                let uid = |key: &String| key.rsplit(':').next().and_then(|uid| uid.parse().ok());
                let uids: Vec<u32> = keys.iter().map(|k| uid(k).unwrap_or_else(|| panic!("not a mail key: {k}"))).collect();
                client.mark_all_seen("INBOX", &uids).await;
            }
            Side::Chat { fake, .. } => {
                for room in [DM_BOB, GENERAL] {
                    if fake.unread(room) > 0 {
                        fake.read_elsewhere(room);
                    }
                }
            }
            Side::Tasks { fake, read, .. } => {
                for key in keys {
                    // `t<id>` a task, `n<id>` a notification (see `inject`).
                    let id = key[1..].parse().unwrap_or_else(|_| panic!("not a Leantime key: {key}"));
                    if key.starts_with('t') {
                        fake.close_ticket_elsewhere(id);
                    } else {
                        fake.mark_read_elsewhere(id);
                    }
                }
                *read += u32::try_from(keys.len()).unwrap_or(u32::MAX);
            }
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
    strict: bool,
    lines: Vec<String>,
}

impl Timeline {
    fn new(seed: u64, strict: bool) -> Timeline {
        Timeline { seed, strict, lines: Vec::new() }
    }

    /// A problem: fails a strict scenario, is noted in a benchmark's.
    fn problem(&mut self, why: &str) {
        if self.strict {
            self.fail(why);
        }
        eprintln!("seed {}: {why}", self.seed);
        self.lines.push(format!("PROBLEM: {why}"));
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

// ---------------------------------------------------------------------------
// The proxy itself

/// An echo server on loopback; its task ends with the test's runtime.
async fn echo_server() -> u16 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind the echo server");
    let port = listener.local_addr().expect("its address").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    port
}

/// Sends `text` and reads the echo, or what happened instead.
async fn echo(stream: &mut tokio::net::TcpStream, text: &str) -> std::io::Result<Option<String>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(text.as_bytes()).await?;
    let mut buffer = vec![0; text.len()];
    match tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut buffer)).await {
        Ok(read) => read.map(|_| Some(String::from_utf8_lossy(&buffer).into_owned())),
        Err(_) => Ok(None),
    }
}

async fn connect(proxy: &FaultyProxy) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(("127.0.0.1", proxy.port())).await.expect("connect to the proxy")
}

#[tokio::test]
async fn the_proxy_relays_both_ways_and_a_reset_reaches_the_client_as_one() {
    let proxy = FaultyProxy::start(echo_server().await).await;
    let mut stream = connect(&proxy).await;
    assert_eq!(echo(&mut stream, "ping").await.expect("relayed"), Some("ping".to_owned()));
    proxy.reset_open();
    let mut later = connect(&proxy).await;
    let mut answer = echo(&mut stream, "again").await;
    // The RST may come back on the write or the read after it.
    if let Ok(Some(_)) = &answer {
        answer = echo(&mut stream, "again").await;
    }
    let error = answer.expect_err("the reset connection fails");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    assert_eq!(echo(&mut later, "new").await.expect("relayed"), Some("new".to_owned()), "connections opened after pass");
}

#[tokio::test]
async fn a_blackhole_carries_nothing_keeps_sockets_open_and_its_victims_are_reset_when_it_lifts() {
    let proxy = FaultyProxy::start(echo_server().await).await;
    let mut before = connect(&proxy).await;
    assert_eq!(echo(&mut before, "ping").await.expect("relayed"), Some("ping".to_owned()));
    proxy.apply(Fault::Blackhole);
    let mut during = connect(&proxy).await;
    assert_eq!(echo(&mut before, "lost").await.expect("still open"), None, "nothing comes back, no FIN either");
    assert_eq!(echo(&mut during, "lost").await.expect("still open"), None, "a new connection goes nowhere too");
    proxy.lift(Fault::Blackhole);
    assert!(echo(&mut before, "x").await.is_err() || echo(&mut before, "x").await.is_err(), "reset when it lifts");
    let mut after = connect(&proxy).await;
    assert_eq!(echo(&mut after, "back").await.expect("relayed"), Some("back".to_owned()));
    assert!(proxy.counters().swallowed_chunks >= 2, "{:?}", proxy.counters());
}

#[tokio::test]
async fn a_refusing_proxy_closes_new_connections_at_accept_and_keeps_the_open_ones() {
    let proxy = FaultyProxy::start(echo_server().await).await;
    let mut open = connect(&proxy).await;
    // Accepted by the proxy (not only by the kernel's backlog) once relayed.
    assert_eq!(echo(&mut open, "first").await.expect("relayed"), Some("first".to_owned()));
    proxy.set_refuse(true);
    // The RST may even beat the end of `connect`.
    if let Ok(mut refused) = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port())).await {
        assert!(echo(&mut refused, "hello").await.map_or(true, |answer| answer.is_none()), "nothing relayed");
    }
    assert_eq!(echo(&mut open, "still").await.expect("relayed"), Some("still".to_owned()));
    proxy.set_refuse(false);
    assert_eq!(echo(&mut connect(&proxy).await, "again").await.expect("relayed"), Some("again".to_owned()));
    assert_eq!(proxy.counters().refused, 1);
}

#[tokio::test]
async fn a_throttled_and_delayed_proxy_delivers_everything_in_order_only_later() {
    let proxy = FaultyProxy::start(echo_server().await).await;
    let mut stream = connect(&proxy).await;
    proxy.set_throttle(Some(20_000));
    proxy.set_slow_server(Duration::from_millis(50));
    let text: String = (0..4_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let started = Instant::now();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut back = vec![0; text.len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back)).await.expect("in time").expect("read");
    assert_eq!(String::from_utf8_lossy(&back), text);
    // 4 kB each way at 20 kB/s is at least 0.2 s each way, plus the delay.
    assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());
}

#[test]
fn the_same_seed_draws_the_same_plan() {
    let shape = PlanShape {
        count: 50,
        proxies: 3,
        kinds: FaultKind::ALL.to_vec(),
        max_pause: Duration::from_secs(1),
        max_span: Duration::from_secs(2),
    };
    let one = FaultPlan::draw(&mut fastrand::Rng::with_seed(42), &shape);
    let two = FaultPlan::draw(&mut fastrand::Rng::with_seed(42), &shape);
    let other = FaultPlan::draw(&mut fastrand::Rng::with_seed(43), &shape);
    assert_eq!(one, two);
    assert_ne!(one, other);
    for kind in FaultKind::ALL {
        assert!(one.faults.iter().any(|p| FaultKind::of(p.fault) == kind), "{kind:?} is drawn");
    }
}

