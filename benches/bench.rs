//! `vigie-bench`: measures what the issue asks of Vigie and prints a table.
//!
//! - idle CPU and RSS of `vigie-headless` (the binary without GUI libraries)
//!   over a quiet window (60 s);
//! - RSS of the tray app with its settings window never opened, open, and
//!   closed again (the tray process alone, and with the settings window's
//!   process and the WebKit processes that one spawns);
//! - start-up time to the first badge, headless (first stdout line) and in
//!   the tray (the tray icon window appearing under a tray host).
//!
//! Everything runs in private sessions (`tests/desktop/session.rs`): a
//! session D-Bus, temporary HOME and XDG folders, and for the tray an Xvfb
//! server, trayer and a fake notification server. Every process started here
//! is stopped by PID before the bench exits.
//!
//! - the Leantime poller (`leantime.rs`): requests per hour with nothing
//!   new, hint-to-item latency, a storm of triggers.
//!
//! - the IMAP watcher (`imap.rs`) against a real Dovecot: APPEND-to-event
//!   latency beside a raw IDLE client, server restart, a burst of 500,
//!   commands per idle hour and connections per account.
//!
//! - the Rocket.Chat watcher (`rocketchat.rs`) against the local Rocket.Chat:
//!   message-to-event latency, idle traffic, a burst into 50 rooms.
//!
//! Usage: `vigie-bench [--vigie PATH] [--headless-bin PATH] [--idle-secs N] [--runs N]
//! [--samples N] [--mail-samples N] [--mail-parts LIST] [--chat-messages N] [--chat-burst N]
//! [--only PART,…]` with parts headless, tray, leantime, imap, rocketchat.
//! `scripts/bench` runs every part and writes the table into
//! `docs/benchmarks.md`.

// The test harness's Dovecot; the bench uses only part of it.
#[path = "../tests/support/dovecot.rs"]
#[allow(dead_code)]
mod dovecot;
mod imap;
mod leantime;
mod rocketchat;
#[path = "../tests/desktop/session.rs"]
mod session;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use session::Session;

/// The targets and reference point.
const TARGET_IDLE_CPU_MS_PER_MIN: f64 = 6.0;
const PYTHON_IDLE_CPU_MS_PER_MIN: f64 = 3.5;
const TARGET_HEADLESS_RSS_MIB: f64 = 15.0;
const TARGET_TRAY_CLOSED_RSS_MIB: f64 = 60.0;
const TARGET_STARTUP_MS: f64 = 300.0;

/// How long to let a process settle before a reading.
const SETTLE: Duration = Duration::from_secs(3);
/// The tray icon's X window, as tray-icon (GtkStatusIcon) names it.
const TRAY_WINDOW: &str = "tray-icon tray app main";
const SETTINGS_TITLE: &str = "Vigie — Settings";
/// A demo that stays quiet after its start-up baseline.
const IDLE_CONFIG: &str = "[demo]\nevery_secs = 86400\n";

type Res<T> = Result<T, String>;
/// The parts `--only` can pick.
const PARTS: [&str; 5] = ["headless", "tray", "leantime", "imap", "rocketchat"];
/// A child's stdout lines, each with the time it arrived.
type LineRx = mpsc::Receiver<(Instant, String)>;

struct Options {
    /// The tray app.
    vigie: PathBuf,
    /// The binary without GUI libraries, for the headless figures.
    headless_bin: PathBuf,
    idle_secs: u64,
    runs: usize,
    headless: bool,
    tray: bool,
    leantime: bool,
    imap: bool,
    rocketchat: bool,
    /// Messages, idle window and burst of the Rocket.Chat part.
    chat: rocketchat::Options,
    /// Samples of each latency figure.
    samples: usize,
    /// Mails for the IMAP latency figure.
    mail_samples: usize,
    mail_parts: imap::Parts,
}

fn parse_options() -> Res<Options> {
    let mut vigie = None;
    let mut headless_bin = None;
    let mut idle_secs = 60;
    let mut runs = 10;
    let (mut headless, mut tray, mut leantime, mut imap, mut chat) = (true, true, true, true, true);
    let (mut chat_messages, mut chat_burst) = (200, 1_000);
    let mut samples = 20;
    let mut mail_samples = 200;
    let mut mail_parts = imap::Parts::ALL;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--vigie" => vigie = Some(PathBuf::from(value("--vigie")?)),
            "--headless-bin" => headless_bin = Some(PathBuf::from(value("--headless-bin")?)),
            "--idle-secs" => idle_secs = value("--idle-secs")?.parse().map_err(|e| format!("--idle-secs: {e}"))?,
            "--runs" => runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--samples" => samples = value("--samples")?.parse().map_err(|e| format!("--samples: {e}"))?,
            "--mail-parts" => mail_parts = imap::Parts::parse(&value("--mail-parts")?)?,
            "--mail-samples" => mail_samples = value("--mail-samples")?.parse().map_err(|e| format!("--mail-samples: {e}"))?,
            "--chat-messages" => chat_messages = value("--chat-messages")?.parse().map_err(|e| format!("--chat-messages: {e}"))?,
            "--chat-burst" => chat_burst = value("--chat-burst")?.parse().map_err(|e| format!("--chat-burst: {e}"))?,
            "--only" => {
                let only = value("--only")?;
                let parts: Vec<&str> = only.split(',').map(str::trim).collect();
                if let Some(bad) = parts.iter().find(|p| !PARTS.contains(p)) {
                    return Err(format!("--only takes a list of {}, not {bad:?}", PARTS.join(", ")));
                }
                let has = |p: &str| parts.contains(&p);
                (headless, tray, leantime, imap, chat) = (has("headless"), has("tray"), has("leantime"), has("imap"), has("rocketchat"));
            }
            "-h" | "--help" => {
                println!(
                    "usage: vigie-bench [--vigie PATH] [--headless-bin PATH] [--idle-secs N (60)] [--runs N (10)] \
                     [--samples N (20)] [--mail-samples N (200)] [--mail-parts latency,burst,restart,idle,connections] \
                     [--chat-messages N (200)] [--chat-burst N (1000)] [--only headless,tray,leantime,imap,rocketchat]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    let here = std::env::current_exe().map_err(|e| format!("cannot find my own path: {e}"))?;
    let here = here.parent().ok_or("my own path has no parent folder")?;
    let vigie = vigie.unwrap_or_else(|| here.join("vigie"));
    let headless_bin = headless_bin.unwrap_or_else(|| here.join("vigie-headless"));
    for (bin, flag, needed) in [(&vigie, "--vigie", tray), (&headless_bin, "--headless-bin", headless)] {
        if needed && !bin.is_file() {
            return Err(format!("no binary at {} (build with --bins, or pass {flag} PATH)", bin.display()));
        }
    }
    if idle_secs == 0 || runs == 0 || samples == 0 || mail_samples == 0 || chat_messages == 0 || chat_burst == 0 {
        return Err("--idle-secs, --runs, --samples, --mail-samples, --chat-messages and --chat-burst must be at least 1".into());
    }
    let chat_opts = rocketchat::Options { messages: chat_messages, idle_secs, burst: chat_burst };
    Ok(Options {
        vigie,
        headless_bin,
        idle_secs,
        runs,
        headless,
        tray,
        leantime,
        imap,
        rocketchat: chat,
        chat: chat_opts,
        samples,
        mail_samples,
        mail_parts,
    })
}

// ---------------------------------------------------------------- /proc

/// `(ppid, starttime)` of a process, from `/proc/<pid>/stat`.
fn stat_fields(pid: u32) -> Option<(u32, u64, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    // Fields after the command: state(3) ppid(4) ... starttime(22).
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let start = rest.get(19)?.parse().ok()?;
    Some((ppid, start, comm))
}

/// utime + stime in clock ticks (includes exited threads).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `kB` field of `/proc/<pid>/status` or `smaps_rollup`, in KiB.
fn kb_field(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?.split_whitespace().nth(1)?.parse().ok()
}

/// A process and its descendants, found through the ppid chain.
fn descendants(root: u32) -> Vec<(u32, u64, String)> {
    let mut by_parent: HashMap<u32, Vec<(u32, u64, String)>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if let Some((ppid, start, comm)) = stat_fields(pid) {
                by_parent.entry(ppid).or_default().push((pid, start, comm));
            }
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for child in by_parent.remove(&pid).unwrap_or_default() {
            queue.push(child.0);
            found.push(child);
        }
    }
    found
}

/// Memory of one process, KiB, and what it has mapped.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: u64,
    hwm: u64,
    pss: u64,
    /// File-backed part of the RSS (mostly shared libraries).
    file: u64,
    /// Shared libraries mapped.
    libs: usize,
    /// A Mesa/LLVM GL driver is mapped.
    gl: bool,
}

fn mem(pid: u32) -> Mem {
    let status = format!("/proc/{pid}/status");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut libs: Vec<&str> = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).filter(|p| p.contains(".so")).collect();
    libs.sort_unstable();
    libs.dedup();
    Mem {
        rss: kb_field(&status, "VmRSS").unwrap_or(0),
        hwm: kb_field(&status, "VmHWM").unwrap_or(0),
        pss: kb_field(&format!("/proc/{pid}/smaps_rollup"), "Pss").unwrap_or(0),
        file: kb_field(&status, "RssFile").unwrap_or(0),
        gl: libs.iter().any(|l| l.contains("libLLVM") || l.ends_with("_dri.so")),
        libs: libs.len(),
    }
}

/// Memory of an app process alone and with its descendants.
#[derive(Debug, Clone, Default)]
struct TreeMem {
    app: Mem,
    total_rss: u64,
    total_pss: u64,
    /// `(comm, RSS KiB)` of each descendant.
    others: Vec<(String, u64)>,
}

fn tree_mem(pid: u32) -> TreeMem {
    let app = mem(pid);
    let mut total = TreeMem { app, total_rss: app.rss, total_pss: app.pss, others: Vec::new() };
    for (child, _, comm) in descendants(pid) {
        let m = mem(child);
        total.total_rss += m.rss;
        total.total_pss += m.pss;
        total.others.push((comm, m.rss));
    }
    total
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One thread's share of a window: id, name, ns on CPU, context switches.
type ThreadCpu = (u32, String, u64, u64);

/// On-CPU time and context switches per thread, read from
/// `/proc/<pid>/task/*/`, summed over a window by following each thread
/// (a thread that exits between two samples loses at most one sample's
/// worth, which is why the window is sampled every second).
struct CpuWindow {
    pid: u32,
    first: HashMap<u32, (u64, u64)>,
    last: HashMap<u32, (u64, u64)>,
    names: HashMap<u32, String>,
    ticks_start: u64,
}

fn thread_sample(pid: u32) -> HashMap<u32, (u64, u64, String)> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for entry in entries.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let base = entry.path();
        let Some(ns) = std::fs::read_to_string(base.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
        else {
            continue;
        };
        let status = std::fs::read_to_string(base.join("status")).unwrap_or_default();
        let switches: u64 = status
            .lines()
            .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        let name = std::fs::read_to_string(base.join("comm")).unwrap_or_default().trim().to_owned();
        out.insert(tid, (ns, switches, name));
    }
    out
}

impl CpuWindow {
    fn start(pid: u32) -> CpuWindow {
        let sample = thread_sample(pid);
        let mut window =
            CpuWindow { pid, first: HashMap::new(), last: HashMap::new(), names: HashMap::new(), ticks_start: cpu_ticks(pid).unwrap_or(0) };
        for (tid, (ns, sw, name)) in sample {
            window.first.insert(tid, (ns, sw));
            window.last.insert(tid, (ns, sw));
            window.names.insert(tid, name);
        }
        window
    }

    fn sample(&mut self) {
        for (tid, (ns, sw, name)) in thread_sample(self.pid) {
            // A thread born during the window counts from zero.
            self.first.entry(tid).or_insert((0, 0));
            self.last.insert(tid, (ns, sw));
            self.names.insert(tid, name);
        }
    }

    /// Per thread over the window.
    fn per_thread(&self) -> Vec<ThreadCpu> {
        let mut rows: Vec<_> = self
            .last
            .iter()
            .map(|(tid, (ns, sw))| {
                let (ns0, sw0) = self.first.get(tid).copied().unwrap_or((0, 0));
                (*tid, self.names.get(tid).cloned().unwrap_or_default(), ns.saturating_sub(ns0), sw.saturating_sub(sw0))
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.2));
        rows
    }
}

// ---------------------------------------------------------------- processes

fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A process started by the bench, stopped on drop: SIGTERM, then SIGKILL
/// after a grace period, then any descendant seen earlier that is still
/// alive (same PID *and* start time) is killed too.
struct Managed {
    what: String,
    child: Child,
    seen: Vec<(u32, u64)>,
    status: Option<ExitStatus>,
}

impl Managed {
    fn new(what: impl Into<String>, child: Child) -> Managed {
        Managed { what: what.into(), child, seen: Vec::new(), status: None }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Remembers the current descendants so they can be killed later.
    fn note_descendants(&mut self) {
        for (pid, start, _) in descendants(self.pid()) {
            if !self.seen.contains(&(pid, start)) {
                self.seen.push((pid, start));
            }
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the process; returns its exit status and whether it needed a
    /// SIGKILL.
    fn stop(&mut self, grace: Duration) -> (Option<ExitStatus>, bool) {
        let mut killed = false;
        if self.exited().is_none() {
            self.note_descendants();
            send_signal(self.pid(), "TERM");
            if self.wait_exit(grace).is_none() {
                eprintln!("  {} (pid {}) ignored SIGTERM for {grace:?}: killing it", self.what, self.pid());
                let _ = self.child.kill();
                self.status = self.child.wait().ok();
                killed = true;
            }
        }
        // WebKit's helpers exit on their own when their parent goes; give
        // them a moment, then make sure.
        let deadline = Instant::now() + Duration::from_secs(3);
        for &(pid, start) in &self.seen {
            while alive_as(pid, start) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if alive_as(pid, start) {
                send_signal(pid, "KILL");
            }
        }
        (self.status, killed)
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// The process `pid` still exists and is the one that started at `start`.
fn alive_as(pid: u32, start: u64) -> bool {
    matches!(stat_fields(pid), Some((_, s, _)) if s == start)
}

/// Follows a child's stdout in a thread: each line with the time it arrived.
fn follow_lines(child: &mut Child) -> Res<LineRx> {
    let out = child.stdout.take().ok_or("the child has no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let now = Instant::now();
                    // Keep draining even when nobody listens any more.
                    let _ = tx.send((now, line.trim_end().to_owned()));
                }
            }
        }
    });
    Ok(rx)
}

fn write_config(session: &Session) -> Res<PathBuf> {
    let path = session.dir().join("config.toml");
    std::fs::write(&path, IDLE_CONFIG).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn spawn_headless(session: &Session, vigie: &Path, config: &Path) -> Res<(Managed, LineRx, Instant)> {
    let t0 = Instant::now();
    let mut child = session
        .command(vigie)
        .arg("--headless")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", vigie.display()))?;
    let lines = follow_lines(&mut child)?;
    Ok((Managed::new("vigie --headless", child), lines, t0))
}

fn spawn_app(session: &Session, vigie: &Path, config: &Path) -> Res<(Managed, Instant)> {
    let t0 = Instant::now();
    let child = session
        .command(vigie)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", vigie.display()))?;
    Ok((Managed::new("vigie (tray app)", child), t0))
}

fn badge_count(line: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    (value["type"] == "badge").then(|| value["count"].as_u64()).flatten()
}

// ---------------------------------------------------------------- stats

#[derive(Debug, Clone, Copy)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
    n: usize,
}

fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Some(Spread { min: v[0], median, max: v[n - 1], n })
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "min {:.1} / median {:.1} / max {:.1} ms over {} runs", self.min, self.median, self.max, self.n)
    }
}

// ---------------------------------------------------------------- headless

struct HeadlessResults {
    startup: Option<Spread>,
    first_badge: Option<u64>,
    cold_first_line_ms: Option<f64>,
    idle_cpu_ms_per_min: f64,
    idle_ticks_ms_per_min: f64,
    idle_switches_per_min: f64,
    idle_window: Duration,
    idle_mem: Mem,
    idle_threads: Vec<(u32, String, u64, u64)>,
    idle_lines: usize,
    exit: String,
}

fn bench_headless(opts: &Options) -> Res<HeadlessResults> {
    let session = Session::bus_only().map_err(|e| format!("private session bus: {e}"))?;
    let config = write_config(&session)?;
    let state_file = session.state_dir().join("state.json");

    // Prime: a first run creates the state file, so later runs start from a
    // non-zero last known badge.
    eprintln!("headless: priming the state file");
    let (mut prime, lines, t0) = spawn_headless(&session, &opts.headless_bin, &config)?;
    let cold = lines.recv_timeout(Duration::from_secs(10)).ok().map(|(at, _)| at.duration_since(t0).as_secs_f64() * 1e3);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_count = false;
    while !(saw_count && state_file.is_file()) {
        if Instant::now() > deadline {
            return Err(format!("no non-zero badge and state file {} within 30 s", state_file.display()));
        }
        if let Ok((_, line)) = lines.recv_timeout(Duration::from_millis(100)) {
            saw_count |= badge_count(&line).is_some_and(|c| c > 0);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    prime.stop(Duration::from_secs(10));

    // (a) start-up to the first line, which is the last known badge.
    eprintln!("headless: {} start-up runs", opts.runs);
    let mut times = Vec::new();
    let mut first_badge = None;
    for run in 0..opts.runs {
        let (mut app, lines, t0) = spawn_headless(&session, &opts.headless_bin, &config)?;
        match lines.recv_timeout(Duration::from_secs(10)) {
            Ok((at, line)) => {
                times.push(at.duration_since(t0).as_secs_f64() * 1e3);
                let count = badge_count(&line);
                if count.is_none() {
                    eprintln!("  run {run}: the first line is not a badge: {line}");
                }
                first_badge = first_badge.or(count);
            }
            Err(_) => eprintln!("  run {run}: no output within 10 s"),
        }
        app.stop(Duration::from_secs(10));
    }

    // Idle CPU and memory.
    eprintln!("headless: idle for {} s (+{} s settle)", opts.idle_secs, SETTLE.as_secs());
    let (mut app, lines, _) = spawn_headless(&session, &opts.headless_bin, &config)?;
    lines.recv_timeout(Duration::from_secs(10)).map_err(|_| "the idle headless app printed nothing within 10 s".to_owned())?;
    std::thread::sleep(SETTLE);
    while lines.try_recv().is_ok() {}
    let pid = app.pid();
    let mut window = CpuWindow::start(pid);
    let started = Instant::now();
    let end = started + Duration::from_secs(opts.idle_secs);
    let mut idle_lines = 0;
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
        if lines.recv_timeout(left).is_ok() {
            idle_lines += 1;
        }
        window.sample();
        if app.exited().is_some() {
            return Err("the headless app exited during the idle window".into());
        }
    }
    window.sample();
    let elapsed = started.elapsed();
    let ticks = cpu_ticks(pid).unwrap_or(0).saturating_sub(window.ticks_start);
    let idle_mem = mem(pid);
    let threads = window.per_thread();
    let per_min = 60.0 / elapsed.as_secs_f64();
    let ns: u64 = threads.iter().map(|t| t.2).sum();
    let switches: u64 = threads.iter().map(|t| t.3).sum();
    let (status, killed) = app.stop(Duration::from_secs(10));
    let exit = match (status, killed) {
        (_, true) => "needed SIGKILL".to_owned(),
        (Some(s), false) if s.success() => "clean exit on SIGTERM".to_owned(),
        (s, false) => format!("exit on SIGTERM: {s:?}"),
    };
    Ok(HeadlessResults {
        startup: spread(&times),
        first_badge,
        cold_first_line_ms: cold,
        idle_cpu_ms_per_min: ns as f64 / 1e6 * per_min,
        idle_ticks_ms_per_min: ticks as f64 * 1e3 / clock_ticks_per_sec() * per_min,
        idle_switches_per_min: switches as f64 * per_min,
        idle_window: elapsed,
        idle_mem,
        idle_threads: threads,
        idle_lines,
        exit,
    })
}

// ---------------------------------------------------------------- tray

struct TrayResults {
    first_client: TreeMem,
    closed: TreeMem,
    open: TreeMem,
    after_close: TreeMem,
    cold_ms: Option<f64>,
    startup: Option<Spread>,
    poll_ms: Option<Spread>,
    exits: Vec<String>,
    /// On-CPU time of the app process (every thread) with the window never
    /// opened, per minute of an idle window.
    idle_cpu_ms_per_min: f64,
    idle_window: Duration,
    /// Every thread of that window.
    idle_threads: Vec<ThreadCpu>,
}

/// On-CPU time of every thread of `app` over `secs` of idling, sampled every
/// second; scaled to one minute.
fn idle_cpu(app: &mut Managed, secs: u64) -> Res<(f64, Duration, Vec<ThreadCpu>)> {
    let mut window = CpuWindow::start(app.pid());
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    while Instant::now() < end {
        std::thread::sleep(end.saturating_duration_since(Instant::now()).min(Duration::from_secs(1)));
        window.sample();
        if app.exited().is_some() {
            return Err("the app exited during the idle window".into());
        }
    }
    let elapsed = started.elapsed();
    let threads = window.per_thread();
    let ns: u64 = threads.iter().map(|t| t.2).sum();
    Ok((ns as f64 / 1e6 * 60.0 / elapsed.as_secs_f64(), elapsed, threads))
}

/// Polls the window tree every ~5 ms until `pred` holds; returns when it
/// first held, and the time each `xwininfo` call took.
fn poll_window(session: &Session, timeout: Duration, pred: impl Fn(&str) -> bool, poll_costs: &mut Vec<f64>) -> Res<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let before = Instant::now();
        let tree = session.window_tree().map_err(|e| format!("xwininfo: {e}"))?;
        let after = Instant::now();
        poll_costs.push(after.duration_since(before).as_secs_f64() * 1e3);
        if pred(&tree) {
            return Ok(after);
        }
        if after > deadline {
            return Err(format!("window not seen within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_window(session: &Session, timeout: Duration, pred: impl Fn(&str) -> bool) -> Res<()> {
    session.wait_for_window(timeout, pred).map(|_| ()).map_err(|e| e.to_string().lines().next().unwrap_or_default().to_owned())
}

/// Waits `SETTLE`, then until the app's RSS stops moving (±1 % over 0.5 s,
/// at most 10 s more), and reads the memory of the app and its descendants.
fn settled_mem(app: &mut Managed) -> TreeMem {
    std::thread::sleep(SETTLE);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut prev = tree_mem(app.pid());
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = tree_mem(app.pid());
        let stable = (now.total_rss as f64 - prev.total_rss as f64).abs() <= prev.total_rss as f64 * 0.01;
        prev = now;
        if stable || Instant::now() > deadline {
            app.note_descendants();
            return prev;
        }
    }
}

fn bench_tray(opts: &Options) -> Res<TrayResults> {
    let mut session = Session::desktop().map_err(|e| format!("private desktop session: {e}"))?;
    let _toasts = session.start_notifyd().map_err(|e| format!("notification server: {e}"))?;
    let config = write_config(&session)?;
    let state_file = session.state_dir().join("state.json");
    let tray_present = |t: &str| t.contains(TRAY_WINDOW);
    let mut poll_costs = Vec::new();

    let mut exits = Vec::new();

    // First launch on a fresh X server, with no state file: GTK 3 probes
    // GLX to pick its visuals (loading the Mesa driver) and caches the
    // answer in the root window's GDK_VISUALS property, so only the first
    // GTK 3 client of an X session pays for it. Measured apart.
    eprintln!("tray: first launch on a fresh X server");
    let (mut app, t0) = spawn_app(&session, &opts.vigie, &config)?;
    let seen = poll_window(&session, Duration::from_secs(30), tray_present, &mut poll_costs)?;
    let cold_ms = Some(seen.duration_since(t0).as_secs_f64() * 1e3);
    let first_client = settled_mem(&mut app);
    exits.push(describe_exit(app.stop(Duration::from_secs(15))));
    drop(app);
    wait_window(&session, Duration::from_secs(15), |t| !tray_present(t))?;
    if !state_file.is_file() {
        eprintln!("  warning: no state file after the first launch; start-up runs will show an empty badge");
    }

    // (b) start-up to the tray icon, with the last known badge in the state.
    eprintln!("tray: {} start-up runs", opts.runs);
    let mut times = Vec::new();
    let budget = Instant::now() + Duration::from_secs(120);
    for run in 0..opts.runs {
        if Instant::now() > budget {
            eprintln!("  stopping after {run} runs: over the 120 s budget");
            break;
        }
        let (mut app, t0) = spawn_app(&session, &opts.vigie, &config)?;
        match poll_window(&session, Duration::from_secs(30), tray_present, &mut poll_costs) {
            Ok(seen) => times.push(seen.duration_since(t0).as_secs_f64() * 1e3),
            Err(e) => eprintln!("  run {run}: {e}"),
        }
        exits.push(describe_exit(app.stop(Duration::from_secs(15))));
        drop(app);
        wait_window(&session, Duration::from_secs(15), |t| !tray_present(t))?;
    }

    // Memory with the window never opened, open, and closed again.
    eprintln!("tray: memory with the window closed, open, closed again");
    let (mut app, _) = spawn_app(&session, &opts.vigie, &config)?;
    wait_window(&session, Duration::from_secs(30), tray_present)?;
    let closed = settled_mem(&mut app);
    eprintln!("tray: idle for {} s with the window never opened", opts.idle_secs);
    let (idle_cpu_ms_per_min, idle_window, idle_threads) = idle_cpu(&mut app, opts.idle_secs)?;

    // Open the settings window: a second launch hands over to the first.
    let (mut second, _) = spawn_app(&session, &opts.vigie, &config)?;
    match second.wait_exit(Duration::from_secs(20)) {
        Some(status) if status.success() => {}
        other => eprintln!("  warning: the second launch did not exit cleanly: {other:?}"),
    }
    drop(second);
    wait_window(&session, Duration::from_secs(30), |t| t.contains(&format!("\"{SETTINGS_TITLE}\"")))?;
    let open = settled_mem(&mut app);

    // Close it the way a window manager does.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/close_window.py");
    let closed_ok = session
        .command("/usr/bin/python3")
        .arg(&script)
        .arg(SETTINGS_TITLE)
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !closed_ok {
        return Err("close_window.py could not ask the settings window to close (apt install python3-xlib)".into());
    }
    wait_window(&session, Duration::from_secs(15), |t| !t.contains(SETTINGS_TITLE))?;
    let after_close = settled_mem(&mut app);
    exits.push(describe_exit(app.stop(Duration::from_secs(15))));
    drop(app);
    Ok(TrayResults {
        first_client,
        closed,
        open,
        after_close,
        cold_ms,
        startup: spread(&times),
        poll_ms: spread(&poll_costs),
        exits,
        idle_cpu_ms_per_min,
        idle_window,
        idle_threads,
    })
}

fn describe_exit((status, killed): (Option<ExitStatus>, bool)) -> String {
    match (status, killed) {
        (_, true) => "needed SIGKILL".to_owned(),
        (Some(s), false) if s.success() => "clean".to_owned(),
        (s, false) => format!("{s:?}"),
    }
}

// ---------------------------------------------------------------- report

struct Row {
    metric: String,
    measured: Option<f64>,
    unit: &'static str,
    target: Option<f64>,
    /// The target is a reference point to compare with, not a limit.
    reference: bool,
}

fn print_table(rows: &[Row]) {
    println!("| metric | measured | target | measured/target | result |");
    println!("|---|---:|---:|---:|---|");
    for row in rows {
        let measured = row.measured.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1} {}", row.unit));
        let (target, ratio, verdict) = match (row.measured, row.target) {
            (Some(m), Some(t)) if row.reference => (format!("{t} {} (reference)", row.unit), format!("{:.2}", m / t), "info".to_owned()),
            (Some(m), Some(t)) => (format!("≤ {t} {}", row.unit), format!("{:.2}", m / t), if m <= t { "PASS" } else { "FAIL" }.to_owned()),
            (None, Some(t)) => (format!("≤ {t} {}", row.unit), "n/a".to_owned(), "not measured".to_owned()),
            (_, None) => ("—".to_owned(), "—".to_owned(), "info".to_owned()),
        };
        println!("| {} | {measured} | {target} | {ratio} | {verdict} |", row.metric);
    }
}

fn print_tree_mem(label: &str, m: &TreeMem) {
    println!(
        "  {label}: app RSS {:.1} MiB (peak {:.1}, PSS {:.1}, file-backed {:.1}; {} shared libraries{}); \
         with {} descendant(s): RSS {:.1} MiB, PSS {:.1} MiB",
        mib(m.app.rss),
        mib(m.app.hwm),
        mib(m.app.pss),
        mib(m.app.file),
        m.app.libs,
        if m.app.gl { ", Mesa GL driver loaded" } else { "" },
        m.others.len(),
        mib(m.total_rss),
        mib(m.total_pss)
    );
    let mut groups: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for (comm, rss) in &m.others {
        let entry = groups.entry(comm.as_str()).or_default();
        entry.0 += 1;
        entry.1 += rss;
    }
    for (comm, (n, rss)) in groups {
        println!("      {n} × {comm}: RSS {:.1} MiB", mib(rss));
    }
}

fn main() -> ExitCode {
    // The in-process parts (leantime, imap, rocketchat) run the real core:
    // VIGIE_BENCH_LOG=vigie=debug shows what it did, on stderr.
    if let Ok(filter) = std::env::var("VIGIE_BENCH_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_writer(std::io::stderr).try_init();
    }
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("vigie-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let began = Instant::now();
    eprintln!("vigie-bench: {} (idle window {} s, {} start-up runs)", opts.vigie.display(), opts.idle_secs, opts.runs);

    let headless = if opts.headless { bench_headless(&opts).map_err(|e| eprintln!("vigie-bench: headless: {e}")).ok() } else { None };
    let tray = if opts.tray { bench_tray(&opts).map_err(|e| eprintln!("vigie-bench: tray: {e}")).ok() } else { None };
    let leantime =
        if opts.leantime { leantime::bench(opts.samples).map_err(|e| eprintln!("vigie-bench: leantime: {e}")).ok() } else { None };
    let imap = if opts.imap { imap::bench(opts.mail_samples, opts.mail_parts).map_err(|e| eprintln!("vigie-bench: imap: {e}")).ok() } else { None };
    let chat = if opts.rocketchat { rocketchat::bench(opts.chat).map_err(|e| eprintln!("vigie-bench: rocketchat: {e}")).ok() } else { None };

    println!();
    println!("vigie-bench — {}", opts.vigie.display());
    println!("cores: {}", std::thread::available_parallelism().map_or(0, |n| n.get()));
    if let Some(h) = &headless {
        println!();
        println!("idle `vigie --headless` (demo every 86400 s, after a {} s settle):", SETTLE.as_secs());
        println!(
            "  window {:.1} s: {:.2} ms CPU per minute (schedstat, per thread); {:.1} ms per minute by utime+stime ticks",
            h.idle_window.as_secs_f64(),
            h.idle_cpu_ms_per_min,
            h.idle_ticks_ms_per_min
        );
        println!(
            "  {:.0} context switches per minute; {} stdout line(s) during the window; {}",
            h.idle_switches_per_min, h.idle_lines, h.exit
        );
        println!(
            "  RSS {:.1} MiB (peak {:.1} MiB, PSS {:.1} MiB, file-backed {:.1} MiB; {} shared libraries mapped)",
            mib(h.idle_mem.rss),
            mib(h.idle_mem.hwm),
            mib(h.idle_mem.pss),
            mib(h.idle_mem.file),
            h.idle_mem.libs
        );
        for (tid, name, ns, sw) in &h.idle_threads {
            println!("      thread {tid} {name:<16} {:>8.3} ms CPU, {sw} switches", *ns as f64 / 1e6);
        }
        println!("start-up to the first badge line, headless (spawn → first stdout line):");
        if let Some(ms) = h.cold_first_line_ms {
            println!("  first launch (no state file): {ms:.1} ms");
        }
        match h.startup {
            Some(s) => println!("  with a state file: {s}; badge count on the first line: {:?}", h.first_badge),
            None => println!("  no run produced a line"),
        }
    }
    if let Some(t) = &tray {
        println!();
        println!(
            "idle tray app, window never opened: {:.2} ms CPU per minute over {:.1} s (schedstat, every thread of the app process)",
            t.idle_cpu_ms_per_min,
            t.idle_window.as_secs_f64()
        );
        for (tid, name, ns, sw) in t.idle_threads.iter().filter(|t| t.2 > 0) {
            println!("      thread {tid} {name:<16} {:>8.3} ms CPU, {sw} switches", *ns as f64 / 1e6);
        }
        println!("tray app memory (Xvfb + trayer, demo every 86400 s):");
        print_tree_mem("first GTK 3 client on a fresh X server (window never opened)", &t.first_client);
        print_tree_mem("window closed (never opened)", &t.closed);
        print_tree_mem("settings window open", &t.open);
        print_tree_mem("window closed again", &t.after_close);
        println!("start-up to the tray icon (spawn → icon window seen by xwininfo; includes X/GTK start-up,");
        println!("xwininfo polling every ~5 ms plus the cost of each xwininfo call, on the same cores):");
        if let Some(ms) = t.cold_ms {
            println!("  first launch (fresh X server, no state file): {ms:.1} ms");
        }
        match t.startup {
            Some(s) => println!("  with a state file: {s}"),
            None => println!("  no run saw the tray icon"),
        }
        if let Some(p) = t.poll_ms {
            println!("  one xwininfo call: median {:.1} ms (max {:.1})", p.median, p.max);
        }
        println!("  exits on SIGTERM: {}", t.exits.join(", "));
    }

    if let Some(l) = &leantime {
        leantime::print(l);
    }
    if let Some(i) = &imap {
        imap::print(i);
    }
    if let Some(c) = &chat {
        rocketchat::print(c);
    }

    println!();
    let mut rows = vec![
        Row {
            metric: "idle `--headless` CPU".into(),
            measured: headless.as_ref().map(|h| h.idle_cpu_ms_per_min),
            unit: "ms/min",
            target: Some(TARGET_IDLE_CPU_MS_PER_MIN),
            reference: false,
        },
        Row {
            metric: "idle `--headless` CPU vs the Python IDLE notifier".into(),
            measured: headless.as_ref().map(|h| h.idle_cpu_ms_per_min),
            unit: "ms/min",
            target: Some(PYTHON_IDLE_CPU_MS_PER_MIN),
            reference: true,
        },
        Row {
            metric: "idle `--headless` RSS".into(),
            measured: headless.as_ref().map(|h| mib(h.idle_mem.rss)),
            unit: "MiB",
            target: Some(TARGET_HEADLESS_RSS_MIB),
            reference: false,
        },
        Row {
            metric: "idle tray app CPU, window never opened".into(),
            measured: tray.as_ref().map(|t| t.idle_cpu_ms_per_min),
            unit: "ms/min",
            target: Some(TARGET_IDLE_CPU_MS_PER_MIN),
            reference: false,
        },
        Row {
            metric: "tray app RSS, window never opened, first GTK 3 client of the X server".into(),
            measured: tray.as_ref().map(|t| mib(t.first_client.app.rss)),
            unit: "MiB",
            target: Some(TARGET_TRAY_CLOSED_RSS_MIB),
            reference: false,
        },
        Row {
            metric: "tray app RSS, window never opened".into(),
            measured: tray.as_ref().map(|t| mib(t.closed.app.rss)),
            unit: "MiB",
            target: Some(TARGET_TRAY_CLOSED_RSS_MIB),
            reference: false,
        },
        Row {
            metric: "tray app RSS, window open (tray process)".into(),
            measured: tray.as_ref().map(|t| mib(t.open.app.rss)),
            unit: "MiB",
            target: None,
            reference: false,
        },
        Row {
            metric: "tray app RSS, window open (+ the settings window and its WebKit processes)".into(),
            measured: tray.as_ref().map(|t| mib(t.open.total_rss)),
            unit: "MiB",
            target: None,
            reference: false,
        },
        Row {
            metric: "tray app RSS, window closed after opening (tray process)".into(),
            measured: tray.as_ref().map(|t| mib(t.after_close.app.rss)),
            unit: "MiB",
            target: Some(TARGET_TRAY_CLOSED_RSS_MIB),
            reference: false,
        },
        Row {
            metric: "tray app RSS, window closed after opening (+ descendants)".into(),
            measured: tray.as_ref().map(|t| mib(t.after_close.total_rss)),
            unit: "MiB",
            target: None,
            reference: false,
        },
        Row {
            metric: "start-up to first badge, headless (median)".into(),
            measured: headless.as_ref().and_then(|h| h.startup).map(|s| s.median),
            unit: "ms",
            target: Some(TARGET_STARTUP_MS),
            reference: false,
        },
        Row {
            metric: "start-up to badge on the tray (median)".into(),
            measured: tray.as_ref().and_then(|t| t.startup).map(|s| s.median),
            unit: "ms",
            target: Some(TARGET_STARTUP_MS),
            reference: false,
        },
    ];
    if opts.leantime {
        rows.extend(leantime::rows(leantime.as_ref()));
    }
    if opts.imap {
        rows.extend(imap::rows(imap.as_ref()));
    }
    if opts.rocketchat {
        rows.extend(rocketchat::rows(chat.as_ref()));
    }
    rows.retain(|r| r.measured.is_some());
    print_table(&rows);
    println!("(MiB = 1,048,576 bytes; the targets' MB are read as MiB. Start-up rows pass on the median.)");
    println!("bench time: {:.0} s", began.elapsed().as_secs_f64());

    let all_pass = rows.iter().filter(|r| !r.reference && r.measured.is_some()).all(|r| match (r.measured, r.target) {
        (Some(m), Some(t)) => m <= t,
        (None, Some(_)) => false,
        _ => true,
    });
    if (opts.headless && headless.is_none()) || (opts.tray && tray.is_none()) || (opts.leantime && leantime.is_none())
        || (opts.imap && imap.is_none())
        || (opts.rocketchat && chat.is_none())
    {
        ExitCode::from(2)
    } else if all_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
