//! The IMAP watcher's figures (`vigie-bench --only imap`): the real core and
//! the real [`ImapWatcher`] in process, against a real Dovecot started here
//! (`tests/support/dovecot.rs`: unprivileged, loopback, its own mail store;
//! stopped by PID when dropped).
//!
//! - APPEND-to-event latency: messages appended one at a time from a second
//!   connection, each timed from APPEND's tagged OK to the core's
//!   `NewItems` event; in the same run, a raw IDLE client (a plain TCP
//!   connection in IDLE, driven by hand here) is timed from the same OK to
//!   its `* n EXISTS` line. Dovecot waits ~500 ms before telling idling
//!   sessions, so the raw client is the floor; our own cost is the
//!   difference.
//! - Server restart: Dovecot stopped (clients get `* BYE`), down for a
//!   second, started again on the same port; a mail appended as soon as it
//!   greets, timed until announced. The account uses its real schedule
//!   (`sources::schedule_for`), so the reconnect backoff is the real one.
//! - A burst of 500 messages appended in one pipelined run: time from the
//!   server's first push to the unread count being right, and how many
//!   `NewItems` events (at most one toast each) it took.
//! - Idle cost: the watcher behind a counting TCP relay, its IDLE re-issue
//!   period compressed 60 times (25 min → 25 s), every command it sends
//!   counted; and how many connections 5 accounts × 4 folders open, with
//!   and without NOTIFY.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use vigie::config::AccountConfig;
use vigie::imap::{ImapWatcher, MailSettings, PASSWORD_SECRET, TlsMode};
use vigie::model::{AccountId, Connectivity, Source};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::{AccountSpec, Core, CoreEvent, CoreHandle, Setup};

use super::dovecot::{Dovecot, ImapClient, Options, PASSWORD, USER, message};
use super::leantime::Percentiles;
use super::{Res, Row};

/// The targets.
const TARGET_OVERHEAD_P99_MS: f64 = 5.0;
/// The seed polled every 30 s: at least one command each time.
const SEED_POLLS_PER_HOUR: f64 = 120.0;
const POLLER_MEAN_MS: f64 = 15_000.0;
const TARGET_RESTART_MS: f64 = 2_000.0;
const TARGET_BURST_MS: f64 = 1_000.0;
const TARGET_BURST_TOASTS: f64 = 3.0;
const TARGET_COMMANDS_PER_HOUR: f64 = 3.0;

const BURST: usize = 500;
const RESTARTS: usize = 10;
/// The idle window is compressed this many times.
const COMPRESSION: u64 = 60;
/// Wall-clock length of the idle window: two compressed hours.
const IDLE_WINDOW: Duration = Duration::from_secs(120);
/// Quiet time before each latency sample (see [`pushed`]).
const SETTLE: Duration = Duration::from_millis(700);
const PATIENCE: Duration = Duration::from_secs(30);
/// Dovecot's post-login capabilities minus NOTIFY (as `tests/imap_notify.rs`).
const WITHOUT_NOTIFY: &str =
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS MOVE LIST-STATUS ESEARCH CHILDREN NAMESPACE UNSELECT";

/// What the IMAP part measured; a part that failed (its error is printed)
/// or was not asked for is `None`.
pub struct ImapResults {
    latency: Option<Latency>,
    restarts: Option<Vec<Restart>>,
    /// The mail schedule's reconnect backoff: (floor, base, max).
    backoff: (Duration, Duration, Duration),
    /// 500 messages in one MULTIAPPEND: they appear at once.
    burst: Option<Burst>,
    /// 500 pipelined APPENDs: they appear as fast as the server stores them.
    burst_spread: Option<Burst>,
    idle: Option<Idle>,
    connections: Vec<Connections>,
}

/// Which measurements to run (`--mail-parts`).
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    latency: bool,
    burst: bool,
    restart: bool,
    idle: bool,
    connections: bool,
}

impl Parts {
    /// Every part.
    pub const ALL: Parts = Parts { latency: true, burst: true, restart: true, idle: true, connections: true };

    /// A comma-separated list of `latency`, `burst`, `restart`, `idle`,
    /// `connections`.
    pub fn parse(list: &str) -> Res<Parts> {
        let mut parts = Parts { latency: false, burst: false, restart: false, idle: false, connections: false };
        for name in list.split(',').map(str::trim) {
            match name {
                "latency" => parts.latency = true,
                "burst" => parts.burst = true,
                "restart" => parts.restart = true,
                "idle" => parts.idle = true,
                "connections" => parts.connections = true,
                other => return Err(format!("--mail-parts: unknown part {other:?} (latency, burst, restart, idle, connections)")),
            }
        }
        Ok(parts)
    }
}

/// APPEND-to-event latencies, ms, message by message.
struct Latency {
    /// APPEND OK → `NewItems`.
    watcher: Vec<f64>,
    /// APPEND OK → the raw client's `* n EXISTS`.
    raw: Vec<f64>,
    /// APPEND OK → the fetching raw client's FETCH answered.
    raw_fetch: Vec<f64>,
}

struct Restart {
    /// Server greeting again → the new mail announced.
    back_to_announced: Duration,
    /// Server greeting again → the account live again.
    back_to_live: Option<Duration>,
    /// The appended mail's OK → announced.
    appended_to_announced: Duration,
}

struct Burst {
    messages: usize,
    /// One MULTIAPPEND rather than pipelined APPENDs.
    together: bool,
    /// The 500 APPENDs, first written → last OK.
    delivery: Duration,
    /// The last APPEND's OK → the unread count right, ms.
    ok_to_done: Option<f64>,
    /// The last APPEND's OK → the raw client's EXISTS with the final count, ms.
    ok_to_last_push: Option<f64>,
    /// The raw client's first EXISTS of the burst → the unread count right,
    /// ms (negative: the watcher was done before the raw client heard).
    first_push_to_done: Option<f64>,
    /// The raw client's EXISTS with the final count → the unread count
    /// right, ms (negative likewise).
    last_push_to_done: Option<f64>,
    announcements: usize,
    items: usize,
    sizes: Vec<usize>,
    unread: Option<u32>,
    expected: u32,
}

struct Idle {
    window: Duration,
    reissue: Duration,
    commands: BTreeMap<String, usize>,
    done_lines: usize,
    keepalives: usize,
    cpu: Duration,
}

struct Connections {
    notify: bool,
    accounts: usize,
    folders: usize,
    relay: usize,
    doveadm: usize,
}

/// Runs the IMAP measurements in `parts`.
pub fn bench(samples: usize, parts: Parts) -> Res<ImapResults> {
    // The harness panics on a broken server; keep that a failed part.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        runtime.block_on(run(samples, parts))
    })
    .join()
    .map_err(|_| "the IMAP bench panicked (see above)".to_owned())?
}

/// A part's result, its error printed.
fn part<T>(name: &str, result: Res<T>) -> Option<T> {
    result.map_err(|e| eprintln!("vigie-bench: imap: {name}: {e}")).ok()
}

async fn run(samples: usize, parts: Parts) -> Res<ImapResults> {
    let backoff = vigie::sources::schedule_for(&AccountConfig::new(AccountId::new("mail"), "mail", Source::Mail)).backoff;
    let mut results =
        ImapResults { latency: None, restarts: None, backoff, burst: None, burst_spread: None, idle: None, connections: Vec::new() };
    if parts.latency || parts.burst || parts.restart {
        let mut dovecot = Dovecot::start().await;
        if parts.latency || parts.burst {
            (results.latency, results.burst, results.burst_spread) =
                part("push", pushed(&dovecot, samples, parts).await).unwrap_or((None, None, None));
        }
        if parts.restart {
            eprintln!("vigie-bench: imap: {RESTARTS} server restarts…");
            results.restarts = part("restart", restarts(&mut dovecot).await);
        }
    }
    if parts.idle {
        eprintln!(
            "vigie-bench: imap: idle cost, {} s of wall clock for {} compressed hours…",
            IDLE_WINDOW.as_secs(),
            IDLE_WINDOW.as_secs() * COMPRESSION / 3_600
        );
        results.idle = part("idle", idle_cost().await);
    }
    if parts.connections {
        for notify in [true, false] {
            eprintln!("vigie-bench: imap: connections for 5 accounts × 4 folders, server {} NOTIFY…", if notify { "with" } else { "without" });
            results.connections.extend(part("connections", connections(notify).await));
        }
    }
    Ok(results)
}

/// The latency and burst parts: one watcher and a raw IDLE client on
/// `dovecot`'s INBOX.
async fn pushed(dovecot: &Dovecot, samples: usize, parts: Parts) -> Res<(Option<Latency>, Option<Burst>, Option<Burst>)> {
    let mut feeder = dovecot.client().await;
    feeder.append("INBOX", &message("old@example.test", "Already there", "old"), false).await;
    let mut raw = RawIdle::start(dovecot.port(), "INBOX", OnExists::Listen).await?;
    let mut raw_fetch =
        if parts.latency { Some(RawIdle::start(dovecot.port(), "INBOX", OnExists::Fetch).await?) } else { None };
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let (core, mut events) = start(&dir, vec![mail_account("mail", plain(dovecot.port(), &["INBOX"]))?])?;
    live(&mut events).await?;
    let validity = feeder.uid_state("INBOX").await.0;
    let mut latency = None;
    if parts.latency {
        eprintln!("vigie-bench: imap: APPEND → event, {samples} messages, watcher and raw IDLE client side by side…");
        let mut measured = Latency {
            watcher: Vec::with_capacity(samples),
            raw: Vec::with_capacity(samples),
            raw_fetch: Vec::with_capacity(samples),
        };
        let mut sample = async || -> Res<()> {
            for n in 0..samples {
                // Dovecot starts a session's 500 ms notification timer on
                // the first change it sees (our own fetch of the previous
                // sample writes its cache file) and reports when it fires:
                // let every timer run out, so that both clients' timers
                // start with this APPEND.
                tokio::time::sleep(SETTLE).await;
                let uid = feeder.append("INBOX", &message("bench@example.test", &format!("Sample {n}"), "Hello"), false).await;
                let ok = Instant::now();
                let key = format!("INBOX:{validity}:{uid}");
                let at = announced(&mut events, &[key], PATIENCE).await?.done;
                measured.watcher.push(ms(at - ok));
                let count = uid_count(&mut feeder).await;
                let seen = raw.exists_at_least(count, PATIENCE).await?;
                measured.raw.push(ms(seen.saturating_duration_since(ok)));
                if let Some(raw_fetch) = raw_fetch.as_mut() {
                    let fetched = raw_fetch.exists_at_least(count, PATIENCE).await?;
                    measured.raw_fetch.push(ms(fetched.saturating_duration_since(ok)));
                }
            }
            Ok(())
        };
        latency = part("latency", sample().await).map(|()| measured);
    }
    // Its fetches would load Dovecot during the bursts.
    drop(raw_fetch);
    let (mut burst, mut spread) = (None, None);
    if parts.burst {
        eprintln!("vigie-bench: imap: a burst of {BURST} messages in one MULTIAPPEND…");
        burst = part("burst", self::burst(&mut feeder, &mut raw, &core.handle(), &mut events, true).await);
        eprintln!("vigie-bench: imap: a burst of {BURST} pipelined APPENDs…");
        spread = part("burst", self::burst(&mut feeder, &mut raw, &core.handle(), &mut events, false).await);
    }
    core.stop().await;
    Ok((latency, burst, spread))
}

/// `to − from` in ms, negative if `to` came first.
fn signed_ms(from: Instant, to: Instant) -> f64 {
    if to >= from { ms(to - from) } else { -ms(from - to) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Plaintext to the loopback `port`, watching `folders`.
fn plain(port: u16, folders: &[&str]) -> MailSettings {
    MailSettings {
        folders: folders.iter().map(|f| (*f).to_owned()).collect(),
        port: Some(port),
        tls: TlsMode::None,
        allow_plaintext_on_loopback: true,
        ..MailSettings::default()
    }
}

/// A mail account as the core runs it, with its real schedule.
fn mail_account(id: &str, settings: MailSettings) -> Res<AccountSpec> {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    // Memory secrets cannot fail; an error would show as a refused login.
    let _ = secrets.set(&AccountId::new(id), PASSWORD_SECRET, &SecretString::from(PASSWORD.to_owned()));
    let config = AccountConfig {
        server: Some("127.0.0.1".to_owned()),
        username: Some(USER.to_owned()),
        mail: Some(settings),
        ..AccountConfig::new(AccountId::new(id), id, Source::Mail)
    };
    let schedule = vigie::sources::schedule_for(&config);
    let watcher = ImapWatcher::from_config(&config, secrets).map_err(|e| format!("mail settings refused: {e}"))?;
    Ok(AccountSpec { config, schedule, watcher: Box::new(watcher) })
}

fn start(dir: &tempfile::TempDir, accounts: Vec<AccountSpec>) -> Res<(Core, mpsc::Receiver<CoreEvent>)> {
    let mut setup = Setup::new(dir.path().join("state.json"));
    setup.accounts = accounts;
    Core::start(setup).map_err(|e| format!("core: {e}"))
}

/// Waits until every account of the core is live (IDLE or NOTIFY on all
/// its folders after the first sync).
async fn live_all(events: &mut mpsc::Receiver<CoreEvent>, accounts: usize) -> Res<()> {
    let mut live = std::collections::BTreeSet::new();
    let wait = async {
        while live.len() < accounts {
            match events.recv().await {
                Some(CoreEvent::Connectivity { account, state: Connectivity::LivePush, .. }) => {
                    live.insert(account);
                }
                Some(_) => {}
                None => return Err("the core stopped".to_owned()),
            }
        }
        Ok(())
    };
    tokio::time::timeout(PATIENCE, wait).await.map_err(|_| "the accounts did not go live".to_owned())?
}

async fn live(events: &mut mpsc::Receiver<CoreEvent>) -> Res<()> {
    live_all(events, 1).await
}

/// What [`announced`] saw.
struct Seen {
    /// When the last awaited key was announced.
    done: Instant,
    /// When the account went live on the way, if it did.
    live: Option<Instant>,
    /// Items per `NewItems` event on the way.
    sizes: Vec<usize>,
}

/// Waits until every key in `keys` was announced.
async fn announced(events: &mut mpsc::Receiver<CoreEvent>, keys: &[String], limit: Duration) -> Res<Seen> {
    let mut missing: Vec<&String> = keys.iter().collect();
    let mut seen = Seen { done: Instant::now(), live: None, sizes: Vec::new() };
    let wait = async {
        while !missing.is_empty() {
            match events.recv().await {
                Some(CoreEvent::NewItems { items, .. }) => {
                    seen.sizes.push(items.len());
                    missing.retain(|k| !items.iter().any(|i| &i.key == *k));
                }
                Some(CoreEvent::Connectivity { state: Connectivity::LivePush, .. }) => {
                    seen.live.get_or_insert_with(Instant::now);
                }
                Some(_) => {}
                None => return Err("the core stopped".to_owned()),
            }
        }
        seen.done = Instant::now();
        Ok(())
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(Ok(())) => Ok(seen),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("{} of {} mails not announced within {limit:?}", missing.len(), keys.len())),
    }
}

/// The number of messages in INBOX (what the next `* n EXISTS` says).
async fn uid_count(client: &mut ImapClient) -> u32 {
    let answer = client.run("STATUS \"INBOX\" (MESSAGES)").await;
    answer
        .untagged
        .iter()
        .find_map(|l| l.split("MESSAGES ").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- raw IDLE

/// What a raw client does when the server reports new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnExists {
    /// Nothing: the time the `* n EXISTS` line was read is the event.
    Listen,
    /// What any notifier must do to show a toast, with no processing: DONE,
    /// FETCH of the new messages' header and first text bytes (the items
    /// the watcher asks for), IDLE again; the FETCH's OK is the event. Its
    /// difference to the watcher is our own cost, with Dovecot's cost of a
    /// session that fetches on both sides.
    Fetch,
}

/// A minimal IDLE client on a plain TCP connection: LOGIN, SELECT, IDLE,
/// then every `* n EXISTS` line with the time it was read (or its FETCH
/// answered, see [`OnExists`]).
struct RawIdle {
    exists: mpsc::UnboundedReceiver<(Instant, u32)>,
    /// The last count reported.
    count: u32,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawIdle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawIdle {
    async fn start(port: u16, folder: &str, on_exists: OnExists) -> Res<RawIdle> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("raw client: {e}"))?;
        let mut stream = BufReader::new(stream);
        expect_line(&mut stream, None, "* OK").await?;
        expect_line(&mut stream, Some(&format!("a LOGIN \"{USER}\" \"{PASSWORD}\"\r\n")), "a OK").await?;
        expect_line(&mut stream, Some(&format!("b SELECT \"{folder}\"\r\n")), "b OK").await?;
        expect_line(&mut stream, Some("c IDLE\r\n"), "+ ").await?;
        let (tx, exists) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut line = String::new();
            let mut fetched = None;
            for round in 0u64.. {
                line.clear();
                match stream.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let mut at = Instant::now();
                let mut words = line.split_whitespace();
                let (Some("*"), Some(n), Some("EXISTS")) = (words.next(), words.next(), words.next()) else { continue };
                let Ok(n) = n.parse::<u32>() else { continue };
                if on_exists == OnExists::Fetch {
                    let first = fetched.map_or(1, |last: u32| last + 1);
                    match fetch_and_idle(&mut stream, round, first, n).await {
                        Ok(done) => at = done,
                        Err(_) => return,
                    }
                    fetched = Some(n);
                }
                if tx.send((at, n)).is_err() {
                    return;
                }
            }
        });
        Ok(RawIdle { exists, count: 0, task })
    }

    /// When the count first reached `n` (waiting for it if needed).
    async fn exists_at_least(&mut self, n: u32, limit: Duration) -> Res<Instant> {
        let wait = async {
            while let Some((at, count)) = self.exists.recv().await {
                self.count = count;
                if count >= n {
                    return Ok(at);
                }
            }
            Err("raw client: connection closed".to_owned())
        };
        tokio::time::timeout(limit, wait).await.map_err(|_| format!("raw client: no EXISTS {n} within {limit:?}"))?
    }
}

/// Leaves IDLE, fetches messages `first..=last` as the watcher does, idles
/// again; returns when the FETCH was answered.
async fn fetch_and_idle(stream: &mut BufReader<TcpStream>, round: u64, first: u32, last: u32) -> Res<Instant> {
    use vigie::imap::message::{HEADER_BYTES, PREVIEW_BYTES};
    expect_line(stream, Some("DONE\r\n"), "c").await?;
    let fetch = format!(
        "f{round} FETCH {first}:{last} (UID FLAGS BODY.PEEK[HEADER]<0.{HEADER_BYTES}> BODY.PEEK[TEXT]<0.{PREVIEW_BYTES}>)\r\n"
    );
    stream.get_mut().write_all(fetch.as_bytes()).await.map_err(|e| format!("raw client: {e}"))?;
    let tag = format!("f{round} OK");
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.map_err(|e| format!("raw client: {e}"))? == 0 {
            return Err("raw client: connection closed".to_owned());
        }
        if line.starts_with(&tag) {
            break;
        }
        // A literal's bytes may hold anything, line ends included.
        if let Some(size) = line.trim_end().strip_suffix('}').and_then(|l| l.rsplit_once('{')).and_then(|(_, n)| n.parse::<usize>().ok()) {
            let mut literal = vec![0; size];
            stream.read_exact(&mut literal).await.map_err(|e| format!("raw client: {e}"))?;
        }
    }
    let done = Instant::now();
    expect_line(stream, Some("c IDLE\r\n"), "+ ").await?;
    Ok(done)
}

/// Sends `send` (if any), then reads lines until one starts with `until`;
/// a tagged answer other than that is an error.
async fn expect_line(stream: &mut BufReader<TcpStream>, send: Option<&str>, until: &str) -> Res<()> {
    if let Some(send) = send {
        stream.get_mut().write_all(send.as_bytes()).await.map_err(|e| format!("raw client: {e}"))?;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.map_err(|e| format!("raw client: {e}"))? == 0 {
            return Err("raw client: connection closed".to_owned());
        }
        if line.starts_with(until) {
            return Ok(());
        }
        if !line.starts_with('*') {
            return Err(format!("raw client: {}", line.trim_end()));
        }
    }
}

// ---------------------------------------------------------------- burst

/// 500 messages appended in one MULTIAPPEND command (RFC 3502: they
/// appear together), or in pipelined APPENDs (one after the other, as fast
/// as the server stores them).
async fn burst(
    feeder: &mut ImapClient,
    raw: &mut RawIdle,
    handle: &CoreHandle,
    events: &mut mpsc::Receiver<CoreEvent>,
    together: bool,
) -> Res<Burst> {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_count = uid_count(feeder).await;
    let before_unread = handle.snapshot().accounts[0].unread.count.unwrap_or(0);
    let expected = before_unread + u32::try_from(BURST).unwrap_or(u32::MAX);
    let total = before_count + u32::try_from(BURST).unwrap_or(u32::MAX);
    while raw.exists.try_recv().is_ok() {}
    let messages: Vec<String> = (0..BURST).map(|n| message("burst@example.test", &format!("Burst {n}"), "Hello")).collect();
    let mut snapshots = handle.subscribe();
    let began = Instant::now();
    let deliver = async {
        if together {
            let mut command = "APPEND \"INBOX\"".to_owned();
            for message in &messages {
                command.push_str(&format!(" {{{}+}}\r\n{message}", message.len()));
            }
            let answer = feeder.run(&command).await;
            if !answer.done.starts_with("OK") {
                eprintln!("vigie-bench: imap: MULTIAPPEND refused: {}", answer.done);
            }
        } else {
            feeder.append_many("INBOX", &messages).await;
        }
        Instant::now()
    };
    let mut sizes = Vec::new();
    let mut pushes: (Option<Instant>, Option<Instant>) = (None, None);
    let watch = async {
        let deadline = Instant::now() + PATIENCE;
        let mut done = None;
        loop {
            let unread = snapshots.borrow_and_update().accounts[0].unread.count;
            if done.is_none() && unread == Some(expected) {
                done = Some(Instant::now());
            }
            // Count announcements for a while after the count is right:
            // a late one would still be a toast.
            if done.is_some_and(|d| d.elapsed() > Duration::from_secs(2)) || Instant::now() > deadline {
                return (done, unread);
            }
            tokio::select! {
                event = events.recv() => {
                    if let Some(CoreEvent::NewItems { items, .. }) = event {
                        sizes.push(items.len());
                    }
                }
                _ = snapshots.changed() => {},
                Some((at, n)) = raw.exists.recv() => {
                    pushes.0.get_or_insert(at);
                    if n >= total && pushes.1.is_none() { pushes.1 = Some(at) }
                },
                () = tokio::time::sleep(Duration::from_millis(100)) => {},
            }
        }
    };
    let (delivered, (done, unread)) = tokio::join!(deliver, watch);
    Ok(Burst {
        messages: BURST,
        together,
        delivery: delivered - began,
        ok_to_done: done.map(|d| signed_ms(delivered, d)),
        ok_to_last_push: pushes.1.map(|p| signed_ms(delivered, p)),
        first_push_to_done: done.zip(pushes.0).map(|(d, p)| signed_ms(p, d)),
        last_push_to_done: done.zip(pushes.1).map(|(d, p)| signed_ms(p, d)),
        announcements: sizes.len(),
        items: sizes.iter().sum(),
        sizes,
        unread,
        expected,
    })
}

// ---------------------------------------------------------------- restart

async fn restarts(dovecot: &mut Dovecot) -> Res<Vec<Restart>> {
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let (core, mut events) = start(&dir, vec![mail_account("mail", plain(dovecot.port(), &["INBOX"]))?])?;
    live(&mut events).await?;
    let mut out = Vec::new();
    for n in 0..RESTARTS {
        dovecot.stop().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        dovecot.restart().await;
        let back = Instant::now();
        let mut client = dovecot.client().await;
        let uid = client.append("INBOX", &message("back@example.test", &format!("After restart {n}"), "Hi"), false).await;
        let appended = Instant::now();
        let validity = client.uid_state("INBOX").await.0;
        let seen = announced(&mut events, &[format!("INBOX:{validity}:{uid}")], PATIENCE).await?;
        // The mail can be announced by the reconnect's sync before the
        // connectivity event: wait for live too.
        let live_at = match seen.live {
            Some(at) => Some(at),
            None => live(&mut events).await.ok().map(|()| Instant::now()),
        };
        out.push(Restart {
            back_to_announced: seen.done - back,
            back_to_live: live_at.map(|at| at - back),
            appended_to_announced: seen.done - appended,
        });
    }
    core.stop().await;
    Ok(out)
}

// ---------------------------------------------------------------- idle cost

/// A TCP relay to a loopback port that counts connections and the commands
/// clients send (by verb; `DONE` apart), and the keepalives servers send.
struct Relay {
    port: u16,
    open: Arc<AtomicUsize>,
    commands: Arc<Mutex<BTreeMap<String, usize>>>,
    done_lines: Arc<AtomicUsize>,
    keepalives: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts the pipes.
        self.task.abort();
    }
}

impl Relay {
    async fn start(upstream: u16) -> Res<Relay> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| format!("relay: {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("relay: {e}"))?.port();
        let open = Arc::new(AtomicUsize::new(0));
        let commands = Arc::new(Mutex::new(BTreeMap::new()));
        let done_lines = Arc::new(AtomicUsize::new(0));
        let keepalives = Arc::new(AtomicUsize::new(0));
        let (o, c, d, k) = (open.clone(), commands.clone(), done_lines.clone(), keepalives.clone());
        let task = tokio::spawn(async move {
            let mut pipes = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let (o, c, d, k) = (o.clone(), c.clone(), d.clone(), k.clone());
                pipes.spawn(async move {
                    o.fetch_add(1, Ordering::SeqCst);
                    let (client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = async {
                        let mut lines = BufReader::new(client_read);
                        let mut line = Vec::new();
                        loop {
                            line.clear();
                            match lines.read_until(b'\n', &mut line).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            let text = String::from_utf8_lossy(&line);
                            let mut words = text.split_whitespace();
                            match (words.next(), words.next()) {
                                (Some(w), None) if w.eq_ignore_ascii_case("DONE") => {
                                    d.fetch_add(1, Ordering::SeqCst);
                                }
                                (Some(_tag), Some(verb)) => {
                                    let mut verb = verb.to_ascii_uppercase();
                                    if verb == "UID" {
                                        verb = format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase());
                                    }
                                    if let Ok(mut map) = c.lock() {
                                        *map.entry(verb).or_insert(0) += 1;
                                    }
                                }
                                _ => {}
                            }
                            if server_write.write_all(&line).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match server_read.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let chunk = &buf[..n];
                            k.fetch_add(chunk.windows(13).filter(|w| w == b"* OK Still he").count(), Ordering::SeqCst);
                            if client_write.write_all(chunk).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! { () = up => {}, () = down => {} }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Relay { port, open, commands, done_lines, keepalives, task })
    }

    fn reset(&self) {
        if let Ok(mut map) = self.commands.lock() {
            map.clear();
        }
        self.done_lines.store(0, Ordering::SeqCst);
        self.keepalives.store(0, Ordering::SeqCst);
    }
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

async fn idle_cost() -> Res<Idle> {
    let dovecot = Dovecot::start().await;
    let relay = Relay::start(dovecot.port()).await?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let reissue_secs = MailSettings::default().idle_reissue_secs / COMPRESSION;
    let settings = MailSettings { idle_reissue_secs: reissue_secs, ..plain(relay.port, &["INBOX"]) };
    let (core, mut events) = start(&dir, vec![mail_account("mail", settings)?])?;
    live(&mut events).await?;
    relay.reset();
    let cpu = cpu_time();
    tokio::time::sleep(IDLE_WINDOW).await;
    let cpu = cpu_time().saturating_sub(cpu);
    let commands = relay.commands.lock().map(|m| m.clone()).unwrap_or_default();
    let idle = Idle {
        window: IDLE_WINDOW,
        reissue: Duration::from_secs(reissue_secs),
        commands,
        done_lines: relay.done_lines.load(Ordering::SeqCst),
        keepalives: relay.keepalives.load(Ordering::SeqCst),
        cpu,
    };
    core.stop().await;
    Ok(idle)
}

async fn connections(notify: bool) -> Res<Connections> {
    // Five accounts of the one test user: above Dovecot's 10 connections
    // per user and address without NOTIFY (five users would each have
    // their own 10).
    let capability = (!notify).then(|| WITHOUT_NOTIFY.to_owned());
    let dovecot = Dovecot::start_with(Options { capability, user_connections: Some(50), ..Options::default() }).await;
    let folders = ["INBOX", "Work", "Lists", "Archive"];
    {
        let mut client = dovecot.client().await;
        for folder in &folders[1..] {
            client.create(folder).await;
        }
    }
    let relay = Relay::start(dovecot.port()).await?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let accounts = (1..=5).map(|n| mail_account(&format!("mail-{n}"), plain(relay.port, &folders))).collect::<Res<Vec<_>>>()?;
    let (core, mut events) = start(&dir, accounts)?;
    live_all(&mut events, 5).await?;
    let counted = Connections {
        notify,
        accounts: 5,
        folders: folders.len(),
        relay: relay.open.load(Ordering::SeqCst),
        doveadm: dovecot.sessions(),
    };
    core.stop().await;
    Ok(counted)
}

// ---------------------------------------------------------------- report

fn overhead(l: &Latency) -> Option<(Percentiles, Percentiles, Percentiles)> {
    let diffs: Vec<f64> = l.watcher.iter().zip(&l.raw).map(|(w, raw)| w - raw).collect();
    Some((Percentiles::of(&l.watcher)?, Percentiles::of(&l.raw)?, Percentiles::of(&diffs)?))
}

/// The fetching raw client's latencies, and the watcher's minus them.
fn fetching_overhead(l: &Latency) -> Option<(Percentiles, Percentiles)> {
    let diffs: Vec<f64> = l.watcher.iter().zip(&l.raw_fetch).map(|(w, f)| w - f).collect();
    Some((Percentiles::of(&l.raw_fetch)?, Percentiles::of(&diffs)?))
}

/// The two raw clients against each other, same mail (fetching −
/// listening): how far Dovecot's per-session timers alone set two clients
/// apart, the floor under any per-mail difference.
fn raw_spread(l: &Latency) -> Option<Percentiles> {
    let diffs: Vec<f64> = l.raw_fetch.iter().zip(&l.raw).map(|(f, r)| f - r).collect();
    Percentiles::of(&diffs)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn commands_per_hour(idle: &Idle) -> f64 {
    let total: usize = idle.commands.values().sum();
    let hours = idle.window.as_secs_f64() * COMPRESSION as f64 / 3_600.0;
    total as f64 / hours
}

/// Prints the details.
pub fn print(r: &ImapResults) {
    println!();
    println!("IMAP watcher (real watcher and core, real Dovecot {} on loopback):", dovecot_version());
    if let Some(l) = &r.latency
        && let Some((w, raw, diff)) = overhead(l)
    {
        let n = l.watcher.len();
        println!("  APPEND OK → NewItems event, {n} messages one at a time: {w} (mean {:.1} ms)", mean(&l.watcher).unwrap_or(0.0));
        println!("  APPEND OK → raw IDLE client's `* n EXISTS`, same messages: {raw} (mean {:.1} ms)", mean(&l.raw).unwrap_or(0.0));
        println!("  our cost, per message (watcher − raw): {diff}; p99 watcher − p99 raw = {:.1} ms", w.p99 - raw.p99);
        if let Some((f, fdiff)) = fetching_overhead(l) {
            println!(
                "  APPEND OK → FETCH answered, raw client doing DONE + the watcher's FETCH + IDLE: {f} (mean {:.1} ms)",
                mean(&l.raw_fetch).unwrap_or(0.0)
            );
            println!(
                "  our own cost, per message (watcher − fetching raw client): {fdiff}; p99 − p99 = {:.1} ms",
                w.p99 - f.p99
            );
        }
        if let Some(spread) = raw_spread(l) {
            println!("  the two raw clients apart, per message (fetching − listening): {spread}");
        }
    }
    let (floor, base, max) = r.backoff;
    let restarts = r.restarts.as_deref().unwrap_or_default();
    if r.restarts.is_some() {
        println!(
            "  server restart ({} times; down ~1 s; reconnect backoff: full jitter, first retry after {:.2}–{:.2} s, doubling, at most {:.0} s):",
            restarts.len(),
            floor.as_secs_f64(),
            base.as_secs_f64(),
            max.as_secs_f64()
        );
    }
    for (n, s) in restarts.iter().enumerate() {
        println!(
            "    #{}: server back → live {}, → new mail announced {:.0} ms (its APPEND OK → announced {:.0} ms)",
            n + 1,
            s.back_to_live.map_or("(not seen before the mail)".to_owned(), |d| format!("{:.0} ms", ms(d))),
            ms(s.back_to_announced),
            ms(s.appended_to_announced)
        );
    }
    for b in r.burst.iter().chain(&r.burst_spread) {
        println!(
        "  burst of {} ({}, delivered in {:.0} ms): unread {:?} (expected {}); last APPEND OK → count right {}, \
         → raw client's final EXISTS {}; first push → count right {}, last push → count right {}; \
         {} NewItems event(s) carrying {} items (sizes {:?})",
        b.messages,
        if b.together { "one MULTIAPPEND" } else { "pipelined APPENDs" },
        ms(b.delivery),
        b.unread,
        b.expected,
        b.ok_to_done.map_or("n/a".to_owned(), |d| format!("{d:.0} ms")),
        b.ok_to_last_push.map_or("n/a".to_owned(), |d| format!("{d:.0} ms")),
        b.first_push_to_done.map_or("n/a".to_owned(), |d| format!("{d:.0} ms")),
        b.last_push_to_done.map_or("n/a".to_owned(), |d| format!("{d:.0} ms")),
        b.announcements,
        b.items,
        b.sizes
        );
    }
    if let Some(i) = &r.idle {
        println!(
        "  idle, one folder, {} s of wall clock with IDLE re-issued every {} s (25 min ÷ {COMPRESSION}): commands {:?}, {} DONE, \
         {} server keepalives (Dovecot here: every 5 s); {:.1} commands per compressed hour; process CPU {:.1} ms",
        i.window.as_secs(),
        i.reissue.as_secs(),
        i.commands,
        i.done_lines,
        i.keepalives,
        commands_per_hour(i),
        ms(i.cpu)
        );
    }
    for c in &r.connections {
        println!(
            "  {} accounts × {} folders, server {} NOTIFY: {} connections through the relay; doveadm who: {} sessions",
            c.accounts,
            c.folders,
            if c.notify { "with" } else { "without" },
            c.relay,
            c.doveadm
        );
    }
}

fn dovecot_version() -> String {
    std::process::Command::new("dovecot")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap_or("").to_owned())
        .unwrap_or_default()
}

/// The table rows.
pub fn rows(r: Option<&ImapResults>) -> Vec<Row> {
    let o = r.and_then(|r| r.latency.as_ref()).and_then(overhead);
    let fetching = r.and_then(|r| r.latency.as_ref()).and_then(fetching_overhead);
    let worst_restart = r.and_then(|r| r.restarts.as_ref()?.iter().map(|s| ms(s.back_to_announced)).max_by(f64::total_cmp));
    let notify = r.and_then(|r| r.connections.iter().find(|c| c.notify));
    let without = r.and_then(|r| r.connections.iter().find(|c| !c.notify));
    vec![
        Row {
            metric: "IMAP APPEND → event, watcher (p50)".into(),
            measured: o.map(|(w, _, _)| w.p50),
            unit: "ms",
            target: None,
            reference: false,
        },
        Row {
            metric: "IMAP APPEND → event, watcher (p99)".into(),
            measured: o.map(|(w, _, _)| w.p99),
            unit: "ms",
            target: None,
            reference: false,
        },
        Row {
            metric: "IMAP APPEND → `EXISTS`, raw IDLE client (p99)".into(),
            measured: o.map(|(_, raw, _)| raw.p99),
            unit: "ms",
            target: None,
            reference: false,
        },
        Row {
            metric: "IMAP our cost: p99 watcher − p99 raw IDLE client".into(),
            measured: o.map(|(w, raw, _)| w.p99 - raw.p99),
            unit: "ms",
            target: Some(TARGET_OVERHEAD_P99_MS),
            reference: false,
        },
        Row {
            metric: "IMAP our cost per mail: p99 of (watcher − raw), same mail".into(),
            measured: o.map(|(_, _, diff)| diff.p99),
            unit: "ms",
            target: Some(TARGET_OVERHEAD_P99_MS),
            reference: false,
        },
        Row {
            metric: "IMAP APPEND → FETCH answered, raw client that fetches too (p99)".into(),
            measured: fetching.map(|(f, _)| f.p99),
            unit: "ms",
            target: None,
            reference: false,
        },
        Row {
            metric: "IMAP our own cost: p99 watcher − p99 raw client that fetches too".into(),
            measured: o.zip(fetching).map(|((w, _, _), (f, _))| w.p99 - f.p99),
            unit: "ms",
            target: None,
            reference: false,
        },
        Row {
            metric: "IMAP our own cost per mail: p99 of (watcher − fetching raw client), same mail".into(),
            measured: fetching.map(|(_, diff)| diff.p99),
            unit: "ms",
            target: None,
            reference: false,
        },
        Row {
            metric: "IMAP two raw clients apart per mail: p99 of (fetching − listening), same mail".into(),
            measured: r.and_then(|r| raw_spread(r.latency.as_ref()?)).map(|p| p.p99),
            unit: "ms",
            target: None,
            reference: false,
        },
        Row {
            metric: "IMAP APPEND → event (mean) vs a 30 s poller's mean".into(),
            measured: r.and_then(|r| mean(&r.latency.as_ref()?.watcher)),
            unit: "ms",
            target: Some(POLLER_MEAN_MS),
            reference: true,
        },
        Row {
            metric: "IMAP server back → first new mail announced (worst of restarts)".into(),
            measured: worst_restart,
            unit: "ms",
            target: Some(TARGET_RESTART_MS),
            reference: false,
        },
        Row {
            metric: "IMAP 500 in one MULTIAPPEND: push → unread count right".into(),
            measured: r.and_then(|r| r.burst.as_ref()?.first_push_to_done),
            unit: "ms",
            target: Some(TARGET_BURST_MS),
            reference: false,
        },
        Row {
            metric: "IMAP 500 in one MULTIAPPEND: announcements (NewItems events)".into(),
            measured: r.and_then(|r| Some(r.burst.as_ref()?.announcements as f64)),
            unit: "events",
            target: Some(TARGET_BURST_TOASTS),
            reference: false,
        },
        Row {
            metric: "IMAP 500 pipelined APPENDs: last APPEND OK → unread count right".into(),
            measured: r.and_then(|r| r.burst_spread.as_ref()?.ok_to_done),
            unit: "ms",
            target: Some(TARGET_BURST_MS),
            reference: false,
        },
        Row {
            metric: "IMAP 500 pipelined APPENDs: announcements (NewItems events)".into(),
            measured: r.and_then(|r| Some(r.burst_spread.as_ref()?.announcements as f64)),
            unit: "events",
            target: Some(TARGET_BURST_TOASTS),
            reference: false,
        },
        Row {
            metric: "IMAP commands/hour, one idle folder".into(),
            measured: r.and_then(|r| Some(commands_per_hour(r.idle.as_ref()?))),
            unit: "cmd/h",
            target: Some(TARGET_COMMANDS_PER_HOUR),
            reference: false,
        },
        Row {
            metric: "IMAP commands/hour, one idle folder, vs the seed's 30 s polling".into(),
            measured: r.and_then(|r| Some(commands_per_hour(r.idle.as_ref()?))),
            unit: "cmd/h",
            target: Some(SEED_POLLS_PER_HOUR),
            reference: true,
        },
        Row {
            metric: "IMAP connections, 5 accounts × 4 folders, server with NOTIFY".into(),
            measured: notify.map(|c| c.relay as f64),
            unit: "conn",
            target: None,
            reference: false,
        },
        Row {
            metric: "IMAP connections, 5 accounts × 4 folders, server without NOTIFY".into(),
            measured: without.map(|c| c.relay as f64),
            unit: "conn",
            target: None,
            reference: false,
        },
    ]
}
