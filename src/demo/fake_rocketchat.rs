//! A local Rocket.Chat server for the tests, the benchmarks and the demo:
//! REST and DDP (WebSocket on `/websocket`) on `127.0.0.1:0`, speaking the
//! wire format of `tests/fixtures/rocketchat/`, with a small world the
//! caller changes while the client watches.
//!
//! The world: the user alice ([`ALICE`], token [`TOKEN`], password
//! [`PASSWORD`]) in seven rooms ([`GENERAL`], [`DM_BOB`], [`BIG`],
//! [`MENTIONS_ONLY`], [`MUTED`], [`NOTHING`]), written to by bob ([`BOB`])
//! and carol ([`CAROL`]). [`FakeRocketChat::post`] does what the server does
//! on a new message (`notifyUsersOnMessage` and `sendNotificationsOnMessage`
//! with default settings): alice's subscription gets `alert`, `open`, and
//! `unread`/`userMentions` by the default `Unread_Count` rules (DMs count
//! every message, rooms only mentions), a change that changes nothing is
//! not announced (no event, no `_updatedAt` bump), `rooms-changed` carries
//! the room with its `lastMessage`, and `notification` is sent only when
//! `shouldNotifyDesktop` holds (default preference `all`,
//! `Notifications_Max_Room_Members` = 100).
//!
//! REST: `GET /api/info`, `GET /api/v1/me`, `POST /api/v1/login` (password,
//! 2FA code, resume), `GET /api/v1/subscriptions.get[?updatedSince=]`,
//! `GET /api/v1/rooms.get?updatedSince=`, `GET /api/v1/chat.syncMessages`,
//! `POST /api/v1/subscriptions.read`. Error bodies follow the
//! [`Generation`]. DDP: `server_id` greeting, `connect`, `ping`/`pong` both
//! ways, `login` with `resume`, `sub`/`unsub` on `stream-notify-user`.
//!
//! Knobs: drop every socket, go silent on the open sockets (a dead link),
//! rate-limit REST (429 with `X-RateLimit-Reset` in epoch ms) or the DDP
//! login (`too-many-requests`), expire the token, require 2FA (also shown
//! in `/me`'s `services`), refuse one stream (`nosub`), offer no websocket
//! at all (HTTP 400 to the upgrade, as behind a proxy that drops it). Every REST request and every frame is counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// alice, the watching user.
pub const ALICE: &str = "aobEdbYhXfu5hkeqG";
/// bob.
pub const BOB: &str = "rGkD3b8sZ5JmXq2wP";
/// carol, whom alice ignores in [`GENERAL`].
pub const CAROL: &str = "cQ7wErTy8uIoP1aSd";
/// alice's personal access token.
pub const TOKEN: &str = "9HqLlyZOugoStsXCUfD_0YdwnNnunAJF8V47U3QHXSq";
/// alice's password.
pub const PASSWORD: &str = "correct horse battery staple";
/// The valid two-factor code.
pub const CODE: &str = "123456";

/// `#general`: 42 members, no room preference (so the default `all`).
pub const GENERAL: &str = "GENERAL";
/// The direct messages of alice and bob.
pub const DM_BOB: &str = "aobEdbYhXfu5hkeqGrGkD3b8sZ5JmXq2wP";
/// `#announcements`: 500 members, more than `Notifications_Max_Room_Members`.
pub const BIG: &str = "ANNOUNCEMENTS";
/// `#design`: set to "mentions" by alice.
pub const MENTIONS_ONLY: &str = "DESIGN";
/// `#ops-alerts` (private): muted by alice (`disableNotifications`).
pub const MUTED: &str = "9fLrQwXyZ2aBcDeFh";
/// `#random`: set to "nothing" by alice.
pub const NOTHING: &str = "RANDOM";
/// `#watercooler`: hidden from alice's unread badge (`hideUnreadStatus`).
pub const HIDDEN: &str = "WATERCOOLER";

/// Which server generation the fake imitates (REST error shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// 6.x: errors are `{"status":"error","message":…}` only.
    V6,
    /// 7.x: `success`, `error`, `status`, `message` (the fixtures).
    V7,
    /// 8.x in breaking-change mode: `{"success":false,"error":…}` only.
    V8,
}

impl Generation {
    fn version(self) -> &'static str {
        match self {
            Generation::V6 => "6.13.1",
            Generation::V7 => "7.4.1",
            Generation::V8 => "8.1.0",
        }
    }

    /// The body of a 401 for a missing or wrong token.
    fn not_logged_in(self) -> Value {
        let words = "You must be logged in to do this.";
        match self {
            Generation::V6 => json!({"status": "error", "message": words}),
            Generation::V7 => json!({"success": false, "error": words, "status": "error", "message": words}),
            Generation::V8 => json!({"success": false, "error": words}),
        }
    }

    /// A 401 body of `/login` for error `code` with `message` and `details`.
    fn login_error(self, code: &str, message: &str, details: Option<Value>) -> Value {
        match self {
            Generation::V8 if code == "Unauthorized" => json!({"success": false, "error": "unauthorized"}),
            Generation::V8 => json!({"success": false, "error": code, "details": details}),
            Generation::V6 | Generation::V7 => {
                let mut body = json!({"success": false, "error": code, "status": "error", "message": message});
                if let Some(details) = details {
                    body["details"] = details;
                }
                body
            }
        }
    }
}

/// One REST request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// The JSON body sent, if any.
    pub body: String,
}

/// After `skip` more, the next `times` REST requests whose path starts
/// with `path` get 429.
#[derive(Debug, Clone)]
struct RestLimit {
    path: String,
    skip: u32,
    times: u32,
    wait: Duration,
}

/// What is pushed to the open sockets.
#[derive(Debug, Clone)]
enum Push {
    Event { name: String, args: Value },
    Drop,
    Silence,
}

struct Room {
    rid: String,
    t: &'static str,
    name: String,
    users_count: u32,
    updated_at: Timestamp,
    last_message: Option<Msg>,
}

#[derive(Clone)]
struct Msg {
    id: String,
    rid: String,
    text: String,
    ts: Timestamp,
    from: &'static str,
    mentions: Vec<String>,
}

struct Sub {
    id: String,
    rid: String,
    name: String,
    fname: String,
    t: &'static str,
    open: bool,
    alert: bool,
    unread: u32,
    user_mentions: u32,
    group_mentions: u32,
    ls: Timestamp,
    updated_at: Timestamp,
    /// Preference fields as the server stores them.
    prefs: Map<String, Value>,
}

struct World {
    generation: Generation,
    token_valid: bool,
    /// Password logins need a code by this method (`totp`, `email`).
    two_factor: Option<&'static str>,
    rooms: Vec<Room>,
    subs: Vec<Sub>,
    messages: Vec<Msg>,
    next_id: u64,
    sockets: Vec<mpsc::UnboundedSender<Push>>,
    /// REST requests to refuse with 429.
    rest_limit: Option<RestLimit>,
    /// The next DDP login is refused by the rate limiter with this wait.
    ddp_limit: Option<Duration>,
    /// This stream event (`notification`, …) is refused with `nosub`.
    refused_event: Option<String>,
    server_ping_every: Duration,
    /// Ping right after the greeting, before `connected` (ddp-streamer's
    /// 30 ms first idle timer).
    ping_at_once: bool,
    /// `/websocket` answers HTTP 400, as behind a proxy that does not pass
    /// websockets on.
    no_websocket: bool,
    /// Pongs received.
    pongs: u32,
    requests: Vec<Request>,
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    logins: u32,
}

struct Shared {
    world: Mutex<World>,
    changed: Notify,
    /// Ends the sockets when the fake is dropped.
    shutdown: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A fake Rocket.Chat. Dropping it stops it (its server and its sockets).
pub struct FakeRocketChat {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    /// The serving task, when [`FakeRocketChat::start`] spawned it.
    _task: Option<JoinHandle<()>>,
}

/// The server of a [`FakeRocketChat::bind`], to be run by its owner.
pub struct Serving {
    listener: std::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
}

impl Serving {
    /// Serves until `cancel` fires or the [`FakeRocketChat`] is dropped.
    pub async fn run(self, cancel: CancellationToken) {
        let listener = match tokio::net::TcpListener::from_std(self.listener) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!("the local Rocket.Chat cannot serve: {e}");
                return;
            }
        };
        let shutdown = self.shutdown.clone();
        let signal = async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = shutdown.cancelled() => {}
            }
        };
        // Websocket servers commonly turn Nagle's algorithm off (Node's `ws`
        // does); with it on, a frame sent right after another waits for the
        // client's delayed ACK (40 ms), which no real server makes us pay. Serving only ends on the signal; accept errors
        // are retried inside axum.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, self.app).with_graceful_shutdown(signal).await;
        // The sockets end with the server.
        self.shutdown.cancel();
    }
}

impl Drop for FakeRocketChat {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn user(id: &str) -> Value {
    match id {
        ALICE => json!({"_id": ALICE, "username": "alice", "name": "Alice Liddell"}),
        BOB => json!({"_id": BOB, "username": "bob", "name": "Bob Builder"}),
        _ => json!({"_id": CAROL, "username": "carol", "name": "Carol Danvers"}),
    }
}

fn username(id: &str) -> String {
    user(id)["username"].as_str().unwrap_or_default().to_owned()
}

/// How dates are written: REST uses ISO strings, DDP EJSON.
#[derive(Clone, Copy)]
enum Dates {
    Iso,
    Ejson,
}

impl Dates {
    fn write(self, t: Timestamp) -> Value {
        match self {
            Dates::Iso => Value::String(t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            Dates::Ejson => json!({"$date": t.as_millisecond()}),
        }
    }
}

impl Msg {
    fn to_json(&self, dates: Dates) -> Value {
        let mentions: Vec<Value> = self
            .mentions
            .iter()
            .map(|m| match m.as_str() {
                "all" | "here" => json!({"_id": m, "username": m}),
                id => user(id),
            })
            .collect();
        json!({
            "_id": self.id, "rid": self.rid, "msg": self.text, "ts": dates.write(self.ts),
            "u": user(self.from), "mentions": mentions, "channels": [], "_updatedAt": dates.write(self.ts),
        })
    }
}

impl Room {
    fn to_json(&self, dates: Dates) -> Value {
        let mut room = json!({
            "_id": self.rid, "t": self.t, "name": self.name, "fname": self.name, "usersCount": self.users_count,
            "msgs": 1, "ts": dates.write(Timestamp::UNIX_EPOCH), "_updatedAt": dates.write(self.updated_at),
        });
        if let Some(m) = &self.last_message {
            room["lastMessage"] = m.to_json(dates);
            room["lm"] = dates.write(m.ts);
        }
        room
    }
}

impl Sub {
    fn to_json(&self, dates: Dates) -> Value {
        let mut sub = json!({
            "_id": self.id, "rid": self.rid, "name": self.name, "fname": self.fname, "t": self.t,
            "u": {"_id": ALICE, "username": "alice", "name": "Alice Liddell"},
            "ts": dates.write(Timestamp::UNIX_EPOCH), "ls": dates.write(self.ls),
            "open": self.open, "alert": self.alert, "unread": self.unread,
            "userMentions": self.user_mentions, "groupMentions": self.group_mentions,
            "tunread": [], "tunreadUser": [], "tunreadGroup": [], "_updatedAt": dates.write(self.updated_at),
        });
        if let Value::Object(map) = &mut sub {
            map.extend(self.prefs.clone());
        }
        sub
    }

    fn pref(&self, key: &str) -> Option<&Value> {
        self.prefs.get(key)
    }
}

fn seeded(generation: Generation) -> World {
    let start = Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let room = |rid: &str, t, name: &str, users_count| Room {
        rid: rid.to_owned(),
        t,
        name: name.to_owned(),
        users_count,
        updated_at: start,
        last_message: None,
    };
    let rooms = vec![
        room(GENERAL, "c", "general", 42),
        room(DM_BOB, "d", "bob", 2),
        room(BIG, "c", "announcements", 500),
        room(MENTIONS_ONLY, "c", "design", 8),
        room(MUTED, "p", "ops-alerts", 5),
        room(NOTHING, "c", "random", 12),
        room(HIDDEN, "c", "watercooler", 20),
    ];
    let prefs = |pairs: Value| match pairs {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let sub = |n: u32, rid: &str, name: &str, fname: &str, t, prefs: Map<String, Value>| Sub {
        id: format!("sub{n:014}"),
        rid: rid.to_owned(),
        name: name.to_owned(),
        fname: fname.to_owned(),
        t,
        open: true,
        alert: false,
        unread: 0,
        user_mentions: 0,
        group_mentions: 0,
        ls: start,
        updated_at: start,
        prefs,
    };
    let subs = vec![
        sub(1, GENERAL, "general", "general", "c", prefs(json!({"ignored": [CAROL]}))),
        sub(2, DM_BOB, "bob", "Bob Builder", "d", Map::new()),
        sub(3, BIG, "announcements", "announcements", "c", Map::new()),
        sub(4, MENTIONS_ONLY, "design", "design", "c", prefs(json!({"desktopNotifications": "mentions", "desktopPrefOrigin": "subscription"}))),
        sub(5, MUTED, "ops-alerts", "ops-alerts", "p", prefs(json!({"disableNotifications": true, "muteGroupMentions": true}))),
        sub(6, NOTHING, "random", "random", "c", prefs(json!({"desktopNotifications": "nothing", "desktopPrefOrigin": "subscription"}))),
        sub(7, HIDDEN, "watercooler", "watercooler", "c", prefs(json!({"hideUnreadStatus": true}))),
    ];
    World {
        generation,
        token_valid: true,
        two_factor: None,
        rooms,
        subs,
        messages: Vec::new(),
        next_id: 0,
        sockets: Vec::new(),
        rest_limit: None,
        ddp_limit: None,
        refused_event: None,
        server_ping_every: Duration::from_secs(15),
        ping_at_once: false,
        no_websocket: false,
        pongs: 0,
        requests: Vec::new(),
        frames_in: 0,
        frames_out: 0,
        bytes_in: 0,
        bytes_out: 0,
        logins: 0,
    }
}

impl World {
    fn push(&mut self, push: Push) {
        self.sockets.retain(|s| s.send(push.clone()).is_ok());
    }

    fn event(&mut self, kind: &str, args: Value) {
        self.push(Push::Event { name: format!("{ALICE}/{kind}"), args });
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("M{:016}", self.next_id)
    }

    /// `readMessages`: resets alice's counters in `rid`; announces it.
    fn read(&mut self, rid: &str) -> bool {
        let now = Timestamp::now();
        let Some(sub) = self.subs.iter_mut().find(|s| s.rid == rid) else { return false };
        sub.alert = false;
        sub.unread = 0;
        sub.user_mentions = 0;
        sub.group_mentions = 0;
        sub.ls = now;
        sub.updated_at = now;
        let record = sub.to_json(Dates::Ejson);
        self.event("subscriptions-changed", json!(["updated", record]));
        true
    }
}

impl FakeRocketChat {
    /// Binds a fake imitating `generation` to a free loopback port; it
    /// answers once its [`Serving`] runs. Needs no runtime (the demo's
    /// setup is synchronous).
    pub fn bind(generation: Generation) -> std::io::Result<(FakeRocketChat, Serving)> {
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared { world: Mutex::new(seeded(generation)), changed: Notify::new(), shutdown: shutdown.clone() });
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/websocket", get(upgrade)).fallback(rest).with_state(Arc::clone(&shared));
        let serving = Serving { listener, app, shutdown: shutdown.clone() };
        Ok((FakeRocketChat { shared, addr, shutdown, _task: None }, serving))
    }

    /// Binds and serves a fake imitating `generation` on a free loopback
    /// port, until dropped.
    pub async fn start(generation: Generation) -> std::io::Result<FakeRocketChat> {
        let (mut fake, serving) = Self::bind(generation)?;
        let cancel = fake.shutdown.clone();
        fake._task = Some(tokio::spawn(serving.run(cancel)));
        Ok(fake)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes ids of messages posted from now on start above `first`: a demo
    /// that restarts with a fresh server must not reuse the message ids (and
    /// so the item keys) an earlier run announced.
    pub fn number_new_messages_from(&self, first: u64) {
        let mut world = self.shared.lock();
        world.next_id = world.next_id.max(first);
    }

    /// Posts `text` from `from` to room `rid`, mentioning the user ids (or
    /// `all`/`here`) in `mentions`; returns the message id.
    pub fn post(&self, rid: &str, from: &'static str, text: &str, mentions: &[&str]) -> String {
        self.post_at(rid, from, text, mentions, Timestamp::now())
    }

    /// [`FakeRocketChat::post`] with the server's clock at `now` (to stamp
    /// a message in the past, as if posted before the client started).
    pub fn post_at(&self, rid: &str, from: &'static str, text: &str, mentions: &[&str], now: Timestamp) -> String {
        let mut world = self.shared.lock();
        let id = world.id();
        let message = Msg {
            id: id.clone(),
            rid: rid.to_owned(),
            text: text.to_owned(),
            ts: now,
            from,
            mentions: mentions.iter().map(|m| (*m).to_owned()).collect(),
        };
        world.messages.push(message.clone());
        let Some(room) = world.rooms.iter_mut().find(|r| r.rid == rid) else {
            tracing::warn!("the local Rocket.Chat has no room {rid}");
            return id;
        };
        room.updated_at = now;
        room.last_message = Some(message.clone());
        let (room_t, room_size, room_json) = (room.t, room.users_count, room.to_json(Dates::Ejson));
        if from != ALICE
            && let Some(sub) = world.subs.iter_mut().find(|s| s.rid == rid)
        {
            let direct = mentions.contains(&ALICE);
            let group = mentions.iter().any(|m| *m == "all" || *m == "here");
            let counts = room_t == "d" || direct || group;
            let before = (sub.alert, sub.open, sub.unread, sub.user_mentions, sub.group_mentions);
            sub.alert = true;
            sub.open = true;
            sub.unread += u32::from(counts);
            sub.user_mentions += u32::from(direct);
            sub.group_mentions += u32::from(group);
            let changed = before != (sub.alert, sub.open, sub.unread, sub.user_mentions, sub.group_mentions);
            if changed {
                sub.updated_at = now;
            }
            let ignored = sub.pref("ignored").and_then(Value::as_array).is_some_and(|a| a.iter().any(|u| u == from));
            let muted = sub.pref("disableNotifications") == Some(&Value::Bool(true));
            let pref = sub.pref("desktopNotifications").and_then(Value::as_str).map(str::to_owned);
            let record = sub.to_json(Dates::Ejson);
            let sub_name = sub.name.clone();
            if changed {
                world.event("subscriptions-changed", json!(["updated", record]));
            }
            world.event("rooms-changed", json!(["updated", room_json]));
            // shouldNotifyDesktop with default settings.
            let oversized = room_size > 100;
            let notify = !ignored
                && !muted
                && match pref.as_deref() {
                    Some("nothing") => false,
                    Some("mentions") => room_t == "d" || direct || (group && !oversized),
                    Some(_) => true,
                    None => !oversized || room_t == "d" || direct,
                };
            if notify {
                let (title, body) = if room_t == "d" {
                    (username(from), text.to_owned())
                } else {
                    (format!("#{sub_name}"), format!("{}: {text}", username(from)))
                };
                let payload = json!({
                    "_id": id, "rid": rid, "sender": user(from), "type": room_t,
                    "message": {"msg": text}, "name": sub_name,
                });
                world.event("notification", json!([{"title": title, "text": body, "duration": 0, "payload": payload}]));
            }
        } else {
            world.event("rooms-changed", json!(["updated", room_json]));
        }
        drop(world);
        self.shared.changed.notify_waiters();
        id
    }

    /// alice reads `rid` on another device; `false` if she is not in it.
    pub fn read_elsewhere(&self, rid: &str) -> bool {
        self.shared.lock().read(rid)
    }

    /// Closes every open socket at once (a network drop).
    pub fn drop_sockets(&self) {
        self.shared.lock().push(Push::Drop);
    }

    /// The open sockets stop sending and answering anything (a dead
    /// link); new sockets behave.
    pub fn go_silent(&self) {
        self.shared.lock().push(Push::Silence);
    }

    /// The next `times` REST requests get HTTP 429 with a reset `wait`
    /// ahead.
    pub fn rate_limit_rest(&self, times: u32, wait: Duration) {
        self.rate_limit_rest_path("/api/v1/", 0, times, wait);
    }

    /// Of the REST requests whose path starts with `path`, lets `skip`
    /// through, then answers the next `times` with HTTP 429 and a reset
    /// `wait` ahead.
    pub fn rate_limit_rest_path(&self, path: &str, skip: u32, times: u32, wait: Duration) {
        self.shared.lock().rest_limit = Some(RestLimit { path: path.to_owned(), skip, times, wait });
    }

    /// The next DDP login is refused by the rate limiter with `wait`.
    pub fn rate_limit_ddp_login(&self, wait: Duration) {
        self.shared.lock().ddp_limit = Some(wait);
    }

    /// The token stops working (REST 401, DDP 403).
    pub fn expire_token(&self) {
        self.shared.lock().token_valid = false;
    }

    /// Password logins need a two-factor code ([`CODE`]) from an
    /// authenticator app.
    pub fn require_2fa(&self) {
        self.shared.lock().two_factor = Some("totp");
    }

    /// Password logins need a two-factor code ([`CODE`]) sent by e-mail.
    pub fn require_2fa_by_email(&self) {
        self.shared.lock().two_factor = Some("email");
    }

    /// Subscriptions to `<uid>/<event>` are refused with `nosub`.
    pub fn refuse_subscription(&self, event: &str) {
        self.shared.lock().refused_event = Some(event.to_owned());
    }

    /// New sockets get a ping right after the greeting, before the
    /// handshake, as ddp-streamer sends it.
    pub fn ping_at_once(&self) {
        self.shared.lock().ping_at_once = true;
    }

    /// `/websocket` stops opening websockets (HTTP 400), as behind a
    /// proxy that does not pass them on; REST still works.
    pub fn refuse_websocket(&self) {
        self.shared.lock().no_websocket = true;
    }

    /// Pongs received so far.
    pub fn pongs(&self) -> u32 {
        self.shared.lock().pongs
    }

    /// The server pings after this much silence (15 s by default).
    pub fn set_server_ping_every(&self, every: Duration) {
        self.shared.lock().server_ping_every = every;
    }

    /// alice's unread counter in `rid`.
    pub fn unread(&self, rid: &str) -> u32 {
        self.shared.lock().subs.iter().find(|s| s.rid == rid).map_or(0, |s| s.unread)
    }

    /// Every REST request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// DDP frames received and sent so far.
    pub fn frames(&self) -> (u64, u64) {
        let world = self.shared.lock();
        (world.frames_in, world.frames_out)
    }

    /// DDP payload bytes received and sent so far.
    pub fn bytes(&self) -> (u64, u64) {
        let world = self.shared.lock();
        (world.bytes_in, world.bytes_out)
    }

    /// Adds `n` small public channels (10 members, default preferences)
    /// that alice is in; returns their room ids.
    pub fn add_rooms(&self, n: usize) -> Vec<String> {
        let mut world = self.shared.lock();
        let start = Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let mut rids = Vec::with_capacity(n);
        for i in 0..n {
            let rid = format!("ROOM{i:013}");
            let name = format!("room-{i}");
            world.rooms.push(Room { rid: rid.clone(), t: "c", name: name.clone(), users_count: 10, updated_at: start, last_message: None });
            let number = world.subs.len() + 1;
            world.subs.push(Sub {
                id: format!("sub{number:014}"),
                rid: rid.clone(),
                name: name.clone(),
                fname: name,
                t: "c",
                open: true,
                alert: false,
                unread: 0,
                user_mentions: 0,
                group_mentions: 0,
                ls: start,
                updated_at: start,
                prefs: Map::new(),
            });
            rids.push(rid);
        }
        rids
    }

    /// DDP logins accepted so far.
    pub fn logins(&self) -> u32 {
        self.shared.lock().logins
    }

    /// Waits until `pred` holds for the world, re-checking after each
    /// request, frame or message; `false` if it still does not after
    /// `limit`.
    pub async fn wait_until(&self, limit: Duration, pred: impl Fn(&FakeRocketChat) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            if pred(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return pred(self);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// REST

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn query(uri: &Uri) -> HashMap<String, String> {
    match reqwest::Url::parse(&format!("http://fake{uri}")) {
        Ok(url) => url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        Err(_) => HashMap::new(),
    }
}

async fn rest(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let (status, response) = {
        let mut world = shared.lock();
        let (status, response) = answer(&mut world, &method, &uri, &headers, &text);
        world.requests.push(Request { method: method.to_string(), path: uri.to_string(), status: status.as_u16(), body: text });
        (status, response)
    };
    shared.changed.notify_waiters();
    response.unwrap_or_else(|| json_response(status, &json!({})))
}

fn answer(world: &mut World, method: &Method, uri: &Uri, headers: &HeaderMap, body: &str) -> (StatusCode, Option<Response>) {
    let path = uri.path();
    let reply = |status: StatusCode, body: Value| (status, Some(json_response(status, &body)));
    if path == "/api/info" {
        return reply(StatusCode::OK, json!({"version": world.generation.version(), "success": true}));
    }
    if let Some(limit) = world.rest_limit.as_mut()
        && path.starts_with(&limit.path)
        && limit.skip > 0
    {
        limit.skip -= 1;
    } else if let Some(RestLimit { path: limited, skip: _, times, wait }) = world.rest_limit.clone()
        && path.starts_with(&limited)
    {
        world.rest_limit = (times > 1).then(|| RestLimit { path: limited, skip: 0, times: times - 1, wait });
        let reset = Timestamp::now().as_millisecond() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        let body = json!({"success": false, "error": format!(
            "Error, too many requests. Please slow down. You must wait {} seconds before trying this endpoint again. [error-too-many-requests]",
            wait.as_secs()
        )});
        let response = Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-RateLimit-Limit", "10")
            .header("X-RateLimit-Remaining", "0")
            .header("X-RateLimit-Reset", reset.to_string())
            .body(Body::from(body.to_string()))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        return (StatusCode::TOO_MANY_REQUESTS, Some(response));
    }
    if path == "/api/v1/login" && method == Method::POST {
        return login(world, body).map_or_else(|(s, b)| reply(s, b), |b| reply(StatusCode::OK, b));
    }
    let signed_in = world.token_valid
        && headers.get("x-user-id").is_some_and(|v| v == ALICE)
        && headers.get("x-auth-token").is_some_and(|v| v == TOKEN);
    if !signed_in {
        return reply(StatusCode::UNAUTHORIZED, world.generation.not_logged_in());
    }
    let q = query(uri);
    let since = |key: &str| q.get(key).and_then(|s| s.parse::<Timestamp>().ok());
    match (method.as_str(), path) {
        ("GET", "/api/v1/me") => reply(StatusCode::OK, me(true, world.two_factor)),
        ("GET", "/api/v1/subscriptions.get") => {
            let since = since("updatedSince");
            let update: Vec<Value> =
                world.subs.iter().filter(|s| since.is_none_or(|t| s.updated_at > t)).map(|s| s.to_json(Dates::Iso)).collect();
            reply(StatusCode::OK, json!({"update": update, "remove": [], "success": true}))
        }
        ("GET", "/api/v1/rooms.get") => {
            let since = since("updatedSince");
            let update: Vec<Value> =
                world.rooms.iter().filter(|r| since.is_none_or(|t| r.updated_at > t)).map(|r| r.to_json(Dates::Iso)).collect();
            reply(StatusCode::OK, json!({"update": update, "remove": [], "success": true}))
        }
        ("GET", "/api/v1/chat.syncMessages") => {
            let (Some(rid), Some(since)) = (q.get("roomId"), since("lastUpdate")) else {
                return reply(StatusCode::BAD_REQUEST, json!({"success": false, "error": "The required \"roomId\" or \"lastUpdate\" param provided does not match any channel [error-roomId-param-invalid]", "errorType": "error-roomId-param-invalid"}));
            };
            let updated: Vec<Value> =
                world.messages.iter().filter(|m| &m.rid == rid && m.ts > since).map(|m| m.to_json(Dates::Iso)).collect();
            reply(StatusCode::OK, json!({"result": {"updated": updated, "deleted": []}, "success": true}))
        }
        ("GET", "/api/v1/chat.getMessage") => {
            let id = q.get("msgId").cloned().unwrap_or_default();
            match world.messages.iter().find(|m| m.id == id) {
                Some(m) => reply(StatusCode::OK, json!({"message": m.to_json(Dates::Iso), "success": true})),
                None => reply(StatusCode::BAD_REQUEST, json!({"success": false, "error": "error-not-allowed", "errorType": "error-not-allowed"})),
            }
        }
        ("POST", "/api/v1/subscriptions.read") => {
            let body: Value = serde_json::from_str(body).unwrap_or_default();
            let rid = body.get("rid").or_else(|| body.get("roomId")).and_then(Value::as_str).unwrap_or_default().to_owned();
            if world.read(&rid) {
                reply(StatusCode::OK, json!({"success": true}))
            } else {
                reply(StatusCode::BAD_REQUEST, json!({"success": false, "error": "error-invalid-subscription", "errorType": "error-invalid-subscription"}))
            }
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"success": false, "error": "Resource not found"})),
    }
}

/// alice's `me`; `two_factor` is the method her password logins need.
fn me(with_success: bool, two_factor: Option<&str>) -> Value {
    let mut me = json!({
        "_id": ALICE, "username": "alice", "name": "Alice Liddell",
        "emails": [{"address": "alice@example.org", "verified": true}],
        "status": "online", "statusConnection": "online", "utcOffset": 2, "active": true, "roles": ["user"],
        "email": "alice@example.org",
        "settings": {"profile": {}, "preferences": {"desktopNotifications": "all", "unreadAlert": true, "idleTimeLimit": 300}},
        "services": {
            "password": {"exists": true},
            "totp": {"enabled": two_factor == Some("totp")},
            "email2fa": {"enabled": two_factor == Some("email")},
        },
        "avatarUrl": "https://chat.example.org/avatar/alice",
    });
    if with_success {
        me["success"] = Value::Bool(true);
    }
    me
}

/// `POST /api/v1/login`: password (with 2FA) or resume.
fn login(world: &mut World, body: &str) -> Result<Value, (StatusCode, Value)> {
    let body: Value = serde_json::from_str(body).unwrap_or_default();
    let generation = world.generation;
    let two_factor = world.two_factor;
    let refused = || (StatusCode::UNAUTHORIZED, generation.login_error("Unauthorized", "Unauthorized", None));
    let ok = || json!({"status": "success", "data": {"userId": ALICE, "authToken": TOKEN, "me": me(false, two_factor)}, "success": true});
    if let Some(token) = body.get("resume").and_then(Value::as_str) {
        return if token == TOKEN && world.token_valid { Ok(ok()) } else { Err(refused()) };
    }
    let who = body.get("user").or_else(|| body.get("username")).or_else(|| body.get("email")).and_then(Value::as_str);
    let password = body.get("password").and_then(Value::as_str);
    if !matches!(who, Some("alice" | "alice@example.org")) || password != Some(PASSWORD) {
        return Err(refused());
    }
    if let Some(method) = world.two_factor {
        let mut details = json!({"method": method, "availableMethods": [method]});
        if method == "email" {
            // The server mails a code when it asks for one.
            details["codeGenerated"] = Value::Bool(true);
        }
        match body.get("code").and_then(Value::as_str) {
            None => return Err((StatusCode::UNAUTHORIZED, generation.login_error("totp-required", "TOTP Required", Some(details)))),
            Some(code) if code != CODE => {
                return Err((StatusCode::UNAUTHORIZED, generation.login_error("totp-invalid", "TOTP Invalid", Some(json!({"method": method})))));
            }
            Some(_) => {}
        }
    }
    world.token_valid = true;
    Ok(ok())
}

// ---------------------------------------------------------------------------
// DDP

async fn upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    if shared.lock().no_websocket {
        let body = Body::from("Can \"Upgrade\" only to \"WebSocket\".");
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    ws.on_upgrade(move |socket| session(shared, socket))
}

struct Session {
    shared: Arc<Shared>,
    socket: WebSocket,
    connected: bool,
    user: Option<&'static str>,
    /// Subscribed event name → subscription id.
    subs: HashMap<String, String>,
}

impl Session {
    async fn send(&mut self, frame: Value) -> bool {
        let text = frame.to_string();
        {
            let mut world = self.shared.lock();
            world.frames_out += 1;
            world.bytes_out += text.len() as u64;
        }
        self.socket.send(WsMessage::Text(text.into())).await.is_ok()
    }
}

async fn session(shared: Arc<Shared>, socket: WebSocket) {
    let (tx, mut pushes) = mpsc::unbounded_channel();
    let (ping_every, ping_at_once) = {
        let mut world = shared.lock();
        world.sockets.push(tx);
        (world.server_ping_every, world.ping_at_once)
    };
    let stop = shared.shutdown.clone();
    let mut s = Session { shared, socket, connected: false, user: None, subs: HashMap::new() };
    if !s.send(json!({"server_id": "0"})).await {
        return;
    }
    if ping_at_once && !s.send(json!({"msg": "ping"})).await {
        return;
    }
    let mut silent = false;
    let mut last_rx = tokio::time::Instant::now();
    let mut pinged = false;
    loop {
        let ping_at = last_rx + if pinged { ping_every * 2 } else { ping_every };
        tokio::select! {
            () = stop.cancelled() => return,
            message = s.socket.recv() => {
                let Some(Ok(message)) = message else { return };
                {
                    let mut world = s.shared.lock();
                    world.frames_in += 1;
                    world.bytes_in += message.clone().into_data().len() as u64;
                }
                s.shared.changed.notify_waiters();
                if silent {
                    continue;
                }
                last_rx = tokio::time::Instant::now();
                pinged = false;
                let WsMessage::Text(text) = message else { continue };
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                    let _ = s.socket.send(WsMessage::Close(None)).await;
                    return;
                };
                if !on_frame(&mut s, frame).await {
                    return;
                }
            }
            push = pushes.recv() => match push {
                None | Some(Push::Drop) => return,
                Some(Push::Silence) => silent = true,
                Some(Push::Event { name, args }) => {
                    if !silent && s.subs.contains_key(&name) {
                        let frame = json!({"msg": "changed", "collection": "stream-notify-user", "id": "id", "fields": {"eventName": name, "args": args}});
                        if !s.send(frame).await {
                            return;
                        }
                    }
                }
            },
            () = tokio::time::sleep_until(ping_at), if !silent => {
                if pinged {
                    // Meteor closes a session that did not answer its ping.
                    return;
                }
                pinged = true;
                if !s.send(json!({"msg": "ping"})).await {
                    return;
                }
            }
        }
    }
}

/// Handles one client frame; `false` ends the session.
async fn on_frame(s: &mut Session, frame: Value) -> bool {
    let kind = frame.get("msg").and_then(Value::as_str).unwrap_or_default().to_owned();
    if kind == "connect" {
        let ok = frame.get("version").and_then(Value::as_str) == Some("1")
            && frame.get("support").and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v == "1"));
        if !ok {
            let _ = s.send(json!({"msg": "failed", "version": "1"})).await;
            return false;
        }
        s.connected = true;
        return s.send(json!({"msg": "connected", "session": "RWRgpPXyZK7gHdLXb"})).await;
    }
    if !s.connected {
        return s.send(json!({"msg": "error", "reason": "Must connect first", "offendingMessage": frame})).await;
    }
    let id = frame.get("id").cloned().unwrap_or(Value::Null);
    match kind.as_str() {
        "ping" => {
            let mut pong = json!({"msg": "pong"});
            if !id.is_null() {
                pong["id"] = id;
            }
            s.send(pong).await
        }
        "pong" => {
            s.shared.lock().pongs += 1;
            true
        }
        "method" if frame.get("method").and_then(Value::as_str) == Some("login") => {
            let token = frame.pointer("/params/0/resume").and_then(Value::as_str).unwrap_or_default().to_owned();
            let (limit, valid) = {
                let mut world = s.shared.lock();
                (world.ddp_limit.take(), world.token_valid && token == TOKEN)
            };
            if let Some(wait) = limit {
                let secs = wait.as_secs().max(1);
                let reason = format!("Error, too many requests. Please slow down. You must wait {secs} seconds before trying again.");
                let error = json!({"isClientSafe": true, "error": "too-many-requests", "reason": reason, "details": {"timeToReset": wait.as_millis()}, "message": format!("{reason} [too-many-requests]"), "errorType": "Meteor.Error"});
                return s.send(json!({"msg": "result", "id": id, "error": error})).await;
            }
            if !valid {
                let reason = "You've been logged out by the server. Please log in again.";
                let error = json!({"isClientSafe": true, "error": 403, "reason": reason, "message": format!("{reason} [403]"), "errorType": "Meteor.Error"});
                return s.send(json!({"msg": "result", "id": id, "error": error})).await;
            }
            s.user = Some(ALICE);
            s.shared.lock().logins += 1;
            let result = json!({"id": ALICE, "token": TOKEN, "tokenExpires": {"$date": 1_893_456_000_000_i64}, "type": "resume"});
            s.send(json!({"msg": "result", "id": id, "result": result})).await
                && s.send(json!({"msg": "updated", "methods": [id]})).await
        }
        "method" => {
            let name = frame.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
            let error = json!({"isClientSafe": true, "error": 404, "reason": format!("Method '{name}' not found"), "errorType": "Meteor.Error"});
            s.send(json!({"msg": "result", "id": id, "error": error})).await
        }
        "sub" => {
            let name = frame.get("name").and_then(Value::as_str).unwrap_or_default();
            let event = frame.pointer("/params/0").and_then(Value::as_str).unwrap_or_default().to_owned();
            let options_ok = matches!(frame.pointer("/params/1"), Some(Value::Bool(false)) | Some(Value::Object(_)) | None);
            let refused = s.shared.lock().refused_event.clone();
            let allowed = name == "stream-notify-user"
                && options_ok
                && s.user.is_some_and(|u| event.starts_with(&format!("{u}/")))
                && refused.is_none_or(|r| !event.ends_with(&format!("/{r}")));
            if allowed {
                s.subs.insert(event, id.as_str().unwrap_or_default().to_owned());
                s.send(json!({"msg": "ready", "subs": [id]})).await
            } else {
                let error = json!({"isClientSafe": true, "error": "not-allowed", "message": "[not-allowed]", "errorType": "Meteor.Error"});
                s.send(json!({"msg": "nosub", "id": id, "error": error})).await
            }
        }
        "unsub" => {
            s.subs.retain(|_, sub| Value::String(sub.clone()) != id);
            s.send(json!({"msg": "nosub", "id": id})).await
        }
        _ => s.send(json!({"msg": "error", "reason": "Bad request", "offendingMessage": frame})).await,
    }
}
