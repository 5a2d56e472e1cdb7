//! A fault-injecting TCP proxy on loopback, and seeded schedules of faults
//! for it: what a bad network, a sleeping laptop or a struggling server does
//! to the connections of a watcher, switchable while they are open.
//!
//! [`FaultyProxy`] relays a new loopback port to an upstream loopback port.
//! Its faults, each switched on and off at runtime:
//!
//! - **delay**: every chunk, either way, waits this long before it is passed
//!   on (latency; with one chunk in flight per direction it also slows bulk
//!   transfers, as a long path does).
//! - **slow server**: the same, only for what the server sends.
//! - **throttle**: at most this many bytes per second, each way.
//! - **reset**: every open connection is aborted with an RST both ways
//!   (`SO_LINGER` 0, then close), as a router or a restarted server does.
//! - **blackhole** (cut without FIN): the open connections, and the ones
//!   accepted while it lasts, stop carrying bytes either way; what arrives
//!   is read and thrown away, and the sockets stay open. A connection that
//!   lost bytes stays dead after the blackhole lifts (its stream is
//!   corrupt), until the peer gives up or a reset ends it.
//! - **refuse**: new connections are closed at accept (with an RST), as by
//!   a server that is down; open ones are untouched. "New" is as the proxy
//!   sees it: a connection still in the kernel's backlog when refusing
//!   starts is refused too.
//!
//! `blackhole.rs` stays the simpler relay for tests that wait on what the
//! server said (`+ idling`); this one records nothing but counters.
//!
//! Invariants:
//! - Every task is owned: connection tasks live in a `JoinSet` owned by the
//!   accept task, which the proxy aborts when dropped, so dropping the proxy
//!   ends every relayed connection (and their sockets close).
//! - Memory is bounded: one buffer of [`CHUNK`] bytes per direction per
//!   connection, and finished connection tasks are reaped as they end.
//! - Faults apply per chunk as it is read, so switching one takes effect on
//!   the next chunk of every open connection, and a connection is never
//!   half-delivered: a chunk is either passed on whole or thrown away whole.
//! - Only loopback: the proxy binds `127.0.0.1` and connects to
//!   `127.0.0.1`.
//!
//! [`FaultPlan`] draws a schedule of faults from a seed
//! (`fastrand::Rng::with_seed`), so a failing scenario replays with the same
//! faults in the same order and for the same spans (the real clock decides
//! exactly which bytes they hit). [`FaultPlan::play`] applies it to proxies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

/// The largest chunk read and passed on at once, per direction.
pub const CHUNK: usize = 16 * 1024;

/// The faults in force. Cheap to copy: each chunk reads the current ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Faults {
    delay: Duration,
    server_delay: Duration,
    /// Bytes per second, each way.
    throttle: Option<u64>,
    refuse: bool,
    /// New connections are dead from the start.
    blackhole: bool,
    /// Connections numbered below this carry nothing.
    dead_below: u64,
    /// Connections numbered below this are aborted with an RST.
    reset_below: u64,
}

/// What the proxy has done so far, for test messages and measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted and relayed (or swallowed).
    pub accepted: u64,
    /// Connections closed at accept while refusing.
    pub refused: u64,
    /// Connections aborted with an RST.
    pub reset: u64,
    /// Chunks thrown away by a blackhole.
    pub swallowed_chunks: u64,
}

#[derive(Default)]
struct Shared {
    /// The number the next accepted connection gets.
    next_id: AtomicU64,
    accepted: AtomicU64,
    /// Woken at each accepted connection.
    accepted_now: Notify,
    refused: AtomicU64,
    reset: AtomicU64,
    swallowed: AtomicU64,
}

/// A running fault-injecting relay to a loopback port. See the module docs.
pub struct FaultyProxy {
    port: u16,
    faults: watch::Sender<Faults>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultyProxy {
    /// Relays a new loopback port to `upstream`, with no fault in force.
    pub async fn start(upstream: u16) -> FaultyProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind the faulty proxy on loopback");
        let port = listener.local_addr().expect("the proxy's address").port();
        let (faults, control) = watch::channel(Faults::default());
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(listener, upstream, control, shared.clone()));
        FaultyProxy { port, faults, shared, task }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every chunk waits `delay` before it is passed on (zero: none).
    pub fn set_delay(&self, delay: Duration) {
        self.faults.send_modify(|f| f.delay = delay);
    }

    /// What the server sends waits `delay` per chunk (zero: none).
    pub fn set_slow_server(&self, delay: Duration) {
        self.faults.send_modify(|f| f.server_delay = delay);
    }

    /// At most `bytes_per_sec` each way (`None`: unlimited).
    pub fn set_throttle(&self, bytes_per_sec: Option<u64>) {
        self.faults.send_modify(|f| f.throttle = bytes_per_sec.map(|b| b.max(1)));
    }

    /// While `on`, new connections are closed at accept with an RST.
    pub fn set_refuse(&self, on: bool) {
        self.faults.send_modify(|f| f.refuse = on);
    }

    /// Aborts every open connection with an RST both ways.
    pub fn reset_open(&self) {
        let next = self.shared.next_id.load(Ordering::SeqCst);
        self.faults.send_modify(|f| f.reset_below = next);
    }

    /// The connections open now carry nothing from now on, and stay open
    /// (connections opened later pass normally).
    pub fn swallow_open(&self) {
        let next = self.shared.next_id.load(Ordering::SeqCst);
        self.faults.send_modify(|f| f.dead_below = f.dead_below.max(next));
    }

    /// While `on`, no connection carries anything: those open now and those
    /// accepted meanwhile. Switching it off lets new connections pass; the
    /// ones it caught stay dead (see the module docs).
    pub fn set_blackhole(&self, on: bool) {
        let next = self.shared.next_id.load(Ordering::SeqCst);
        self.faults.send_modify(|f| {
            // On: the open ones die. Off: so do those accepted while it
            // was on (already swallowed); a blackhole that was not on
            // kills nothing.
            if on || f.blackhole {
                f.dead_below = f.dead_below.max(next);
            }
            f.blackhole = on;
        });
    }

    /// Lifts every fault; connections already dead stay dead.
    pub fn clear(&self) {
        self.set_blackhole(false);
        self.faults.send_modify(|f| {
            f.delay = Duration::ZERO;
            f.server_delay = Duration::ZERO;
            f.throttle = None;
            f.refuse = false;
        });
    }

    /// What the proxy has done so far.
    pub fn counters(&self) -> Counters {
        Counters {
            accepted: self.shared.accepted.load(Ordering::SeqCst),
            refused: self.shared.refused.load(Ordering::SeqCst),
            reset: self.shared.reset.load(Ordering::SeqCst),
            swallowed_chunks: self.shared.swallowed.load(Ordering::SeqCst),
        }
    }

    /// Waits until the proxy has accepted more than `count` connections
    /// in all ([`Counters::accepted`]): a client that gave up on a link
    /// and opened a new one.
    pub async fn accepted_more_than(&self, count: u64) {
        loop {
            // Registered before the check, so an accept in between wakes it.
            let accepted = self.shared.accepted_now.notified();
            tokio::pin!(accepted);
            accepted.as_mut().enable();
            if self.shared.accepted.load(Ordering::SeqCst) > count {
                return;
            }
            accepted.await;
        }
    }

    /// Applies `fault`.
    pub fn apply(&self, fault: Fault) {
        match fault {
            Fault::Delay(d) => self.set_delay(d),
            Fault::SlowServer(d) => self.set_slow_server(d),
            Fault::Throttle(rate) => self.set_throttle(Some(rate)),
            Fault::Reset => self.reset_open(),
            Fault::Blackhole => self.set_blackhole(true),
            Fault::Refuse => self.set_refuse(true),
        }
    }

    /// Ends `fault`. A blackhole ends with an RST to the connections it
    /// caught, as the peer answers the first segment that reaches it again
    /// once it has forgotten the connection; the watchers' own detection of
    /// half-open links is what a blackhole that never lifts measures
    /// (`FaultyProxy::set_blackhole` alone).
    pub fn lift(&self, fault: Fault) {
        match fault {
            Fault::Delay(_) => self.set_delay(Duration::ZERO),
            Fault::SlowServer(_) => self.set_slow_server(Duration::ZERO),
            Fault::Throttle(_) => self.set_throttle(None),
            Fault::Reset => {}
            Fault::Blackhole => {
                self.set_blackhole(false);
                self.reset_open_dead();
            }
            Fault::Refuse => self.set_refuse(false),
        }
    }

    /// Aborts the connections that carry nothing any more.
    fn reset_open_dead(&self) {
        self.faults.send_modify(|f| f.reset_below = f.reset_below.max(f.dead_below));
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every
        // connection task and so closes every relayed socket.
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: u16, control: watch::Receiver<Faults>, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Reap finished connections so the set stays as small as the
            // number of open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((client, _)) = accepted else { continue };
        let faults = *control.borrow();
        if faults.refuse {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            abort(&client);
            continue;
        }
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.accepted_now.notify_waiters();
        let (control, shared) = (control.clone(), shared.clone());
        connections.spawn(async move {
            if faults.blackhole {
                // As if the SYN-ACK had come back but nothing after it: the
                // client waits on a connection that goes nowhere.
                swallow(client, id, control, shared).await;
                return;
            }
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                abort(&client);
                return;
            };
            carry(client, server, id, control, shared).await;
        });
    }
}

/// Closes `stream` with an RST rather than a FIN.
// Deprecated because a lingering close blocks the thread on drop; with a
// zero timeout the kernel aborts at once instead, which never blocks.
#[allow(deprecated)]
fn abort(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

/// Relays one connection until either side closes or fails, or a reset.
async fn carry(mut client: TcpStream, mut server: TcpStream, id: u64, control: watch::Receiver<Faults>, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let reset = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let up = pump(client_read, server_write, id, false, control.clone(), &shared);
        let down = pump(server_read, client_write, id, true, control.clone(), &shared);
        let mut control = control;
        tokio::select! {
            _ = async { tokio::try_join!(up, down) } => false,
            _ = control.wait_for(|f| f.reset_below > id) => true,
        }
    };
    if reset {
        shared.reset.fetch_add(1, Ordering::SeqCst);
        abort(&client);
        abort(&server);
    }
}

/// A connection accepted during a blackhole: read and drop everything
/// until the client leaves or a reset.
async fn swallow(mut client: TcpStream, id: u64, mut control: watch::Receiver<Faults>, shared: Arc<Shared>) {
    let mut buffer = vec![0; CHUNK];
    let reset = loop {
        tokio::select! {
            read = client.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break false,
                Ok(_) => { shared.swallowed.fetch_add(1, Ordering::SeqCst); }
            },
            _ = control.wait_for(|f| f.reset_below > id) => break true,
        }
    };
    if reset {
        shared.reset.fetch_add(1, Ordering::SeqCst);
        abort(&client);
    }
}

/// Carries one direction chunk by chunk, applying the faults in force when
/// each chunk arrives. Ends with `Ok` at end of stream (after passing the
/// half-close on) and `Err` on a socket error, which ends the connection.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    id: u64,
    from_server: bool,
    control: watch::Receiver<Faults>,
    shared: &Shared,
) -> Result<(), ()> {
    let mut buffer = vec![0; CHUNK];
    loop {
        let faults = *control.borrow();
        // Under a throttle, small reads keep the pace smooth (a tenth of a
        // second's worth at a time).
        let most = faults.throttle.map_or(CHUNK, |rate| usize::try_from(rate / 10).unwrap_or(CHUNK).clamp(1, CHUNK));
        let n = match from.read(&mut buffer[..most]).await {
            Ok(0) => {
                let _ = to.shutdown().await;
                return Ok(());
            }
            Ok(n) => n,
            Err(_) => return Err(()),
        };
        let faults = *control.borrow();
        let mut wait = faults.delay;
        if from_server {
            wait += faults.server_delay;
        }
        if let Some(rate) = faults.throttle {
            wait += Duration::from_secs_f64(n as f64 / rate as f64);
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        // Looked at after the delay too: a chunk in flight when the link
        // went dark is lost with it.
        if control.borrow().dead_below > id {
            shared.swallowed.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return Err(());
        }
    }
}

// ---------------------------------------------------------------------------
// Seeded schedules

/// One fault, as [`FaultyProxy::apply`] and [`FaultyProxy::lift`] take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Latency per chunk, both ways.
    Delay(Duration),
    /// Latency per chunk, server to client only.
    SlowServer(Duration),
    /// Bytes per second, each way.
    Throttle(u64),
    /// An RST to every open connection (instantaneous).
    Reset,
    /// Nothing carried, sockets kept open; lifted with an RST to what it
    /// caught.
    Blackhole,
    /// New connections closed at accept.
    Refuse,
}

/// The kinds of fault a plan draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// [`Fault::Delay`].
    Delay,
    /// [`Fault::SlowServer`].
    SlowServer,
    /// [`Fault::Throttle`].
    Throttle,
    /// [`Fault::Reset`].
    Reset,
    /// [`Fault::Blackhole`].
    Blackhole,
    /// [`Fault::Refuse`].
    Refuse,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 6] =
        [FaultKind::Delay, FaultKind::SlowServer, FaultKind::Throttle, FaultKind::Reset, FaultKind::Blackhole, FaultKind::Refuse];

    /// The kind of `fault`.
    pub fn of(fault: Fault) -> FaultKind {
        match fault {
            Fault::Delay(_) => FaultKind::Delay,
            Fault::SlowServer(_) => FaultKind::SlowServer,
            Fault::Throttle(_) => FaultKind::Throttle,
            Fault::Reset => FaultKind::Reset,
            Fault::Blackhole => FaultKind::Blackhole,
            Fault::Refuse => FaultKind::Refuse,
        }
    }
}

/// One planned fault: after a pause, on one proxy, for a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// The pause before it, after the previous one was lifted.
    pub after: Duration,
    /// Which of the played proxies it hits (an index into the slice given
    /// to [`FaultPlan::play`]).
    pub proxy: usize,
    /// The fault.
    pub fault: Fault,
    /// How long it lasts before it is lifted.
    pub lasts: Duration,
}

/// A seeded schedule of faults: the same seed, the same plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    /// The faults, in order.
    pub faults: Vec<Planned>,
}

/// The bounds a plan is drawn within.
#[derive(Debug, Clone)]
pub struct PlanShape {
    /// How many faults.
    pub count: usize,
    /// How many proxies they are spread over.
    pub proxies: usize,
    /// The kinds to draw from (uniformly).
    pub kinds: Vec<FaultKind>,
    /// The longest pause between faults.
    pub max_pause: Duration,
    /// The longest span of a lasting fault.
    pub max_span: Duration,
}

impl FaultPlan {
    /// Draws a plan of `shape` from `rng`.
    pub fn draw(rng: &mut fastrand::Rng, shape: &PlanShape) -> FaultPlan {
        let between = |rng: &mut fastrand::Rng, most: Duration| {
            let ms = u64::try_from(most.as_millis()).unwrap_or(u64::MAX).max(1);
            Duration::from_millis(rng.u64(0..=ms))
        };
        let faults = (0..shape.count)
            .map(|_| {
                let kind = shape.kinds[rng.usize(0..shape.kinds.len())];
                let fault = match kind {
                    FaultKind::Delay => Fault::Delay(Duration::from_millis(rng.u64(5..=150))),
                    FaultKind::SlowServer => Fault::SlowServer(Duration::from_millis(rng.u64(20..=400))),
                    FaultKind::Throttle => Fault::Throttle(rng.u64(2_000..=64_000)),
                    FaultKind::Reset => Fault::Reset,
                    FaultKind::Blackhole => Fault::Blackhole,
                    FaultKind::Refuse => Fault::Refuse,
                };
                let lasts = if fault == Fault::Reset { Duration::ZERO } else { between(rng, shape.max_span) };
                Planned { after: between(rng, shape.max_pause), proxy: rng.usize(0..shape.proxies.max(1)), fault, lasts }
            })
            .collect();
        FaultPlan { faults }
    }

    /// How long playing the plan takes (pauses and spans).
    pub fn duration(&self) -> Duration {
        self.faults.iter().map(|p| p.after + p.lasts).sum()
    }

    /// Plays the plan on `proxies`, one fault at a time (the pauses between
    /// them are the scenario, not a synchronisation), lifting each at the
    /// end of its span. Calls `on_fault` with each fault's index as it
    /// starts. Everything is lifted when it returns.
    pub async fn play(&self, proxies: &[&FaultyProxy], mut on_fault: impl FnMut(usize, &Planned)) {
        for (index, planned) in self.faults.iter().enumerate() {
            tokio::time::sleep(planned.after).await;
            let proxy = proxies[planned.proxy % proxies.len()];
            on_fault(index, planned);
            proxy.apply(planned.fault);
            tokio::time::sleep(planned.lasts).await;
            proxy.lift(planned.fault);
        }
        for proxy in proxies {
            proxy.clear();
        }
    }
}

/// The seed of a randomized scenario: `VIGIE_FAULT_SEED` when set (to
/// replay a failure), else a fresh random one. Printed by the caller.
pub fn seed() -> u64 {
    match std::env::var("VIGIE_FAULT_SEED") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("VIGIE_FAULT_SEED is not a number: {text:?}")),
        Err(_) => fastrand::u64(..),
    }
}
