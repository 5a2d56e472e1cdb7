//! Rocket.Chat: new direct messages, mentions and (as the user's room
//! preferences allow) other messages, pushed over DDP, with the official
//! client's badge.
//!
//! One run of the watcher: read the token, ask REST for the version and the
//! user's preferences, open the DDP link ([`link`]), log in with `resume`,
//! subscribe to `<uid>/subscriptions-changed`, `<uid>/rooms-changed` and
//! `<uid>/notification`, *then* resync over REST (so nothing falls between
//! the resync and the stream), and go live. Any failure ends the run and the
//! supervisor reconnects with backoff; the next run resyncs from the cursor.
//! A server that refuses a stream (`nosub`) does not stop the account: without
//! `notification` it stays live on the other two, without either of those it
//! polls REST on the schedule instead (shown as "polling", reason logged).
//! So does a server that offers no websocket at all (its upgrade answered
//! with a plain HTTP status, as behind a proxy that drops it), until the
//! next run tries again; a websocket that cannot be reached is a failure
//! like any other.
//!
//! Invariants:
//! - The cursor is the newest server `_updatedAt` seen (subscriptions and
//!   rooms; only the rooms' move with every message). A resync asks
//!   `subscriptions.get?updatedSince=` and `rooms.get?updatedSince=` a
//!   little before it (never before the first sync's cursor, the baseline),
//!   then the messages of the rooms that moved; overlap is harmless because
//!   the item key is the message `_id`, each message is judged once and the
//!   hub never announces a key twice. A resync makes all its requests
//!   before it changes anything, so one that fails is repeated in full.
//! - Pushed events are gathered ([`batch`]): a lone message is announced at
//!   once, a flood as a few announcements.
//! - Toasts follow the server's own rule (`shouldNotifyDesktop`), decided
//!   here from the subscription's preferences so that live and resynced
//!   messages are judged alike ([`toast_rule`]); a server `notification`
//!   event is honoured too, unless the room is muted, the sender ignored or
//!   the message our own.
//! - The badge is the official one ([`badge`]): the sum of `unread` over
//!   visible rooms, or a dot when only `alert` is set.
//! - The user's per-room choices in Vigie ([`ChatSettings::rooms`]) replace
//!   the server's desktop preference of those rooms, for toasts judged
//!   live and resynced alike; the server's own `notification` events are
//!   not used for them (they follow the server's preference). A room set
//!   to "nothing" is also left out of the badge.
//! - A token only travels over TLS, or in plain HTTP to this computer
//!   ([`crate::web::refusal`]).

pub mod batch;
pub mod ddp;
pub mod link;
pub mod login;
pub mod probe;
pub mod rest;
pub mod wire;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{AccountId, Item, Source};
use crate::scheduler::Trigger;
use crate::secrets::SecretStore;
use crate::watcher::{Action, ActionError, Update, WatchError, Watcher, WatcherContext};
use batch::Batch;
use link::{Link, LinkError, Received, Timeouts};
use rest::{Rest, RestError};
use wire::{Date, DesktopNotification, Me, Message, RemovedSubscription, Room, Subscription};

/// The keyring entry of the token (personal access token or login token).
pub const TOKEN_SECRET: &str = "token";

/// The streams of `stream-notify-user` the watcher follows.
const EVENTS: [&str; 3] = ["subscriptions-changed", "rooms-changed", "notification"];

/// How far before the cursor a resync looks, for events stamped out of
/// order by the server.
const RESYNC_OVERLAP: SignedDuration = SignedDuration::from_secs(2);

/// Message ids already judged, remembered so that a message seen on two
/// streams is judged once.
const JUDGED_MEMORY: usize = 2_000;

/// Frames read in one go before the batch is looked at again.
const MAX_DRAIN: usize = 512;


/// The `[account.chat]` settings of a Rocket.Chat account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSettings {
    /// The user id (17 characters, shown next to the personal access
    /// token). When absent it is asked from the server with the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Where "Open" takes the user.
    pub open_in: OpenIn,
    /// Toast every message of every room that is not muted, whatever its
    /// desktop preference and size.
    pub notify_all_messages: bool,
    /// The server's `Notifications_Max_Room_Members`: in bigger rooms only
    /// mentions toast (0: no limit).
    pub max_room_members: u32,
    /// What toasts in a room, by the room's name (`general`; for a direct
    /// chat the other person's user name or display name): it replaces the
    /// room's desktop preference on the server (and `notify_all_messages`).
    /// A room muted on the server stays muted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rooms: BTreeMap<String, RoomPreference>,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            user_id: None,
            open_in: OpenIn::Browser,
            notify_all_messages: false,
            max_room_members: 100,
            rooms: BTreeMap::new(),
        }
    }
}

impl ChatSettings {
    /// The user's choice for `sub`'s room, if any. A name may be written
    /// with its `#` or `@`.
    pub fn room_preference(&self, sub: &Subscription) -> Option<RoomPreference> {
        if self.rooms.is_empty() {
            return None;
        }
        let named = |key: &str| {
            let key = key.trim().trim_start_matches(['#', '@']);
            !key.is_empty() && (key == sub.name || sub.fname.as_deref() == Some(key))
        };
        self.rooms.iter().find(|(key, _)| named(key)).map(|(_, pref)| *pref)
    }
}

/// What toasts in a room the user chose in Vigie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomPreference {
    /// Every message, whatever the room's size.
    All,
    /// Mentions of the user (and @all/@here) only; in a direct chat every
    /// message is one.
    Mentions,
    /// Nothing, and the room is left out of the badge.
    Nothing,
}

impl RoomPreference {
    /// The server's word for the same preference.
    fn as_server_pref(self) -> &'static str {
        match self {
            RoomPreference::All => "all",
            RoomPreference::Mentions => "mentions",
            RoomPreference::Nothing => "nothing",
        }
    }
}

/// Where "Open" takes the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OpenIn {
    /// The web app, at the message.
    #[default]
    Browser,
    /// The Rocket.Chat desktop app, through its `rocketchat://` link.
    DesktopApp,
}

/// Watches one Rocket.Chat account.
pub struct RocketChatWatcher {
    account: AccountId,
    base_url: String,
    settings: ChatSettings,
    secrets: Arc<dyn SecretStore>,
    timeouts: Timeouts,
    state: Mutex<State>,
}

/// What the watcher knows between runs (in memory only; the cursor is
/// persisted by the core).
#[derive(Default)]
struct State {
    /// Subscriptions by room id; `None` until a full list was read.
    subs: Option<BTreeMap<String, Subscription>>,
    /// Members per room id.
    room_sizes: HashMap<String, u32>,
    /// Keys announced per room and not read yet.
    shown: HashMap<String, Vec<String>>,
    /// The room of each announced key, for "mark read".
    key_rooms: HashMap<String, String>,
    judged: HashSet<String>,
    judged_order: VecDeque<String>,
    cursor: Option<Timestamp>,
    /// The cursor of the very first sync: what came before it is the
    /// baseline, never judged, so a resync must not look back past it
    /// (the overlap would bring its last messages back as new).
    floor: Option<Timestamp>,
    me: Me,
    /// The token's user, when not configured (asked once per process).
    user_id: Option<String>,
}

impl RocketChatWatcher {
    /// A watcher for the server at `base_url` (e.g.
    /// `https://chat.example.org`), reading its token from `secrets`.
    pub fn new(account: AccountId, base_url: &str, settings: ChatSettings, secrets: Arc<dyn SecretStore>) -> Self {
        RocketChatWatcher {
            account,
            base_url: base_url.trim_end_matches('/').to_owned(),
            settings,
            secrets,
            timeouts: Timeouts::default(),
            state: Mutex::new(State::default()),
        }
    }

    /// The same with other heartbeat timeouts (tests use short ones).
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn token(&self) -> Result<SecretString, WatchError> {
        let (secrets, account) = (self.secrets.clone(), self.account.clone());
        let found = tokio::task::spawn_blocking(move || secrets.get(&account, TOKEN_SECRET))
            .await
            .map_err(|e| WatchError::Transient(format!("the keyring lookup failed: {e}")))?
            .map_err(|e| WatchError::Transient(e.to_string()))?;
        found.ok_or_else(|| {
            WatchError::AuthFailed(format!(
                "no token is stored for this account; create a personal access token in Rocket.Chat \
                 (My Account → Personal Access Tokens) and add it in the settings or with `vigie --set-secret {} {TOKEN_SECRET}`",
                self.account
            ))
        })
    }

    async fn rest(&self, token: &SecretString) -> Result<Rest, WatchError> {
        // Every use of the token (REST, the websocket, "mark read") starts
        // here.
        if let Some(why) = crate::web::refusal(&self.base_url, "token") {
            return Err(WatchError::NeedsAttention(why));
        }
        let client = http_client()?;
        let known = self.settings.user_id.clone().or_else(|| self.state().user_id.clone());
        let user_id = match known {
            Some(id) => id,
            None => {
                let id = login::user_id_of(&client, &self.base_url, token).await.map_err(rest_error)?;
                self.state().user_id = Some(id.clone());
                id
            }
        };
        Ok(Rest::new(client, &self.base_url, &user_id, token.clone()))
    }

    /// The signed-in user: the first signed-in call.
    async fn me(&self, rest: &Rest) -> Result<Me, WatchError> {
        rest.me().await.map_err(|e| match (rest_error(e), &self.settings.user_id) {
            // A configured user id that is not the token's owner is refused
            // the same way as a bad token.
            (WatchError::AuthFailed(reason), Some(id)) => {
                WatchError::AuthFailed(format!("{reason} (or `user_id = \"{id}\"` in [account.chat] is not the token's owner)"))
            }
            (other, _) => other,
        })
    }

    async fn run_once(&self, ctx: &mut WatcherContext) -> Result<Ended, WatchError> {
        if let Some(why) = crate::web::refusal(&self.base_url, "token") {
            return Err(WatchError::NeedsAttention(why));
        }
        let token = self.token().await?;
        let rest = self.rest(&token).await?;
        let version = rest.version().await.map_err(rest_error)?;
        let me = self.me(&rest).await?;
        {
            let mut state = self.state();
            if state.cursor.is_none() {
                // "<cursor> <floor>" (see `State::floor`).
                let mut parts = ctx.cursor().unwrap_or_default().split_whitespace().map(|p| p.parse::<Timestamp>().ok());
                state.cursor = parts.next().flatten();
                state.floor = parts.next().flatten();
            }
            state.me = me.clone();
        }
        tracing::info!(account = %self.account, version = version.as_deref().unwrap_or("unknown"), "connecting to Rocket.Chat");

        let mut link = match Link::open(&self.base_url, self.timeouts).await {
            Ok(link) => link,
            // Not a drop: this address has no websocket (a proxy that does
            // not pass it on). REST works, so polling keeps the account
            // useful until the next run tries again.
            Err(why @ LinkError::NoWebSocket(_)) => return self.poll_instead(ctx, &rest, &why).await.map(|()| Ended::Stop),
            Err(e) => return Err(link_error(e)),
        };
        let uid = link.login(&token).await.map_err(link_error)?;
        if uid != me.id {
            return Err(WatchError::AuthFailed(format!(
                "the token belongs to user {uid}, but the REST API answered for user {}; check `user_id` in [account.chat]",
                me.id
            )));
        }
        let refused = link.subscribe(&uid, &EVENTS).await.map_err(link_error)?;
        // Without `notification` the other two streams still tell every
        // message (the toast rule is ours); without either of those, live
        // updates would miss things, so REST polling takes over.
        for why in &refused {
            tracing::warn!(account = %self.account, "{why}");
        }
        let essential = |e: &LinkError| matches!(e, LinkError::Refused { event, .. } if !event.ends_with("/notification"));
        if let Some(why) = refused.iter().find(|e| essential(e)) {
            link.close().await;
            return self.poll_instead(ctx, &rest, why).await.map(|()| Ended::Stop);
        }
        self.resync(ctx, &rest).await?;
        // A good connection ends the backoff of earlier failures.
        ctx.poll_succeeded(false);
        ctx.set_live().await;
        tracing::info!(account = %self.account, "Rocket.Chat is live");

        let cancel = ctx.cancel_token().clone();
        let mut batch = Batch::default();
        let outcome = self.live(ctx, &rest, &mut link, &mut batch, &cancel).await;
        // What was gathered is published even when the link failed: the
        // cursor already moved past it, so a resync would not find it again.
        // (Not when stopping: the core no longer listens.)
        if !cancel.is_cancelled()
            && let Some(update) = batch.take(tokio::time::Instant::now())
        {
            ctx.publish(update).await;
        }
        link.close().await;
        outcome
    }

    /// The live loop: stream events (gathered by [`Batch`]), heartbeat,
    /// resyncs when the scheduler asks, until cancelled or failed.
    async fn live(
        &self,
        ctx: &mut WatcherContext,
        rest: &Rest,
        link: &mut Link,
        batch: &mut Batch,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<Ended, WatchError> {
        loop {
            while let Some((collection, fields)) = link.take_pending() {
                if let Some(update) = self.on_event(&collection, &fields.event_name, &fields.args) {
                    batch.add(update, tokio::time::Instant::now());
                }
            }
            let now = tokio::time::Instant::now();
            if let Some(update) = batch.take_due(now) {
                ctx.publish(update).await;
            }
            let deadline = link.deadline();
            let flush_at = batch.due(now);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(Ended::Stop),
                message = link.recv() => {
                    // Read on while frames are ready, so a flood is judged
                    // as one batch.
                    let mut next = Some(message);
                    let mut read = 0;
                    while let Some(message) = next.take() {
                        if let Received::Event(collection, fields) = link.handle(message).await.map_err(link_error)?
                            && let Some(update) = self.on_event(&collection, &fields.event_name, &fields.args)
                        {
                            batch.add(update, tokio::time::Instant::now());
                        }
                        read += 1;
                        if read < MAX_DRAIN {
                            next = link.recv().now_or_never();
                        }
                    }
                }
                () = tokio::time::sleep_until(flush_at.unwrap_or(deadline)), if flush_at.is_some() => {}
                () = tokio::time::sleep_until(deadline) => link.heartbeat().await.map_err(link_error)?,
                poll = ctx.next_poll() => match poll {
                    None => return Ok(Ended::Stop),
                    // The old socket and the pooled REST connection may be
                    // dead without a word (a NAT, a VPN or the Wi-Fi forgot
                    // them while asleep): a resync over them would wait out
                    // the REST timeout (30 s) with the heartbeat stalled
                    // behind it. Start over on fresh ones, as IMAP does.
                    Some(Trigger::Wake | Trigger::NetworkBack) => return Ok(Ended::Reconnect),
                    Some(reason) => {
                        tracing::debug!(account = %self.account, ?reason, "resyncing Rocket.Chat");
                        if let Some(update) = batch.take(tokio::time::Instant::now()) {
                            ctx.publish(update).await;
                        }
                        self.resync(ctx, rest).await?;
                        ctx.poll_succeeded(false);
                    }
                },
            }
        }
    }

    /// The server refused a stream (`nosub`): keep the account useful by
    /// polling REST, and say why in the log.
    async fn poll_instead(&self, ctx: &mut WatcherContext, rest: &Rest, why: &LinkError) -> Result<(), WatchError> {
        tracing::warn!(account = %self.account, "{why}; polling instead of live updates");
        ctx.set_polling().await;
        self.resync(ctx, rest).await?;
        ctx.poll_succeeded(false);
        while ctx.next_poll().await.is_some() {
            self.resync(ctx, rest).await?;
            ctx.poll_succeeded(false);
        }
        Ok(())
    }

    /// Catches up over REST from the cursor and publishes the result.
    ///
    /// Every request is made before anything is changed: a resync that
    /// fails half-way (a rate limit, a drop) leaves the cursor and the
    /// judged messages as they were, so the next attempt fetches the same
    /// span again instead of skipping the rooms it did not reach.
    async fn resync(&self, ctx: &mut WatcherContext, rest: &Rest) -> Result<(), WatchError> {
        let (since, have_full) = {
            let state = self.state();
            (state.since(), state.subs.is_some())
        };
        let since_iso = since.map(wire::iso);
        let delta = rest.subscriptions(if have_full { since_iso.as_deref() } else { None }).await.map_err(rest_error)?;
        // Also on the very first sync: the rooms' dates move with every
        // message (a subscription's do not when it already had `alert`),
        // so only they put the cursor after what is already there.
        let rooms = rest.rooms(since_iso.as_deref()).await.map_err(rest_error)?;
        let mut messages: Vec<Message> = Vec::new();
        if let (Some(since), Some(since_iso)) = (since, &since_iso) {
            for room in &rooms {
                // The room's subscription as it will be after this resync.
                let sub = delta.update.iter().find(|s| s.rid == room.id).cloned().or_else(|| self.state().sub(&room.id).cloned());
                // Muted rooms and rooms read since need no messages.
                let Some(sub) = sub.filter(|s| !silenced(s, &self.settings) && !s.is_read()) else { continue };
                let seen_until = sub.ls.map(|d| d.0);
                let fetched = rest.messages_since(&room.id, since_iso).await.map_err(rest_error)?;
                messages.extend(fetched.into_iter().filter(|m| {
                    m.ts.is_some_and(|Date(ts)| ts > since && seen_until.is_none_or(|ls| ts > ls))
                }));
            }
        }
        let mut read = Vec::new();
        {
            let mut state = self.state();
            if !have_full {
                state.subs = Some(BTreeMap::new());
            }
            for sub in &delta.update {
                read.extend(state.upsert(sub.clone()));
            }
            for id in &delta.remove {
                read.extend(state.remove(&RemovedSubscription { id: id.clone(), rid: None }));
            }
            for room in &rooms {
                state.note_room(room);
            }
            if since.is_none() {
                state.floor = state.cursor;
            }
        }
        messages.sort_by_key(|m| m.ts);
        let items = messages.iter().filter_map(|m| self.judge_message(m)).collect();
        let mut update = self.state_update();
        update.items = items;
        update.read.extend(read);
        ctx.publish(update).await;
        Ok(())
    }

    /// One stream event.
    pub(crate) fn on_event(&self, collection: &str, event: &str, args: &[Value]) -> Option<Update> {
        let mut update = self.event_update(collection, event, args)?;
        let state_update = self.state_update();
        update.unread = state_update.unread;
        update.dot = state_update.dot;
        update.cursor = state_update.cursor;
        Some(update)
    }

    /// What one stream event changes; `None` for events of no interest.
    fn event_update(&self, collection: &str, event: &str, args: &[Value]) -> Option<Update> {
        if collection != "stream-notify-user" {
            return None;
        }
        let kind = event.rsplit('/').next().unwrap_or_default();
        let action = args.first().and_then(Value::as_str).unwrap_or_default();
        let record = args.get(1).cloned().unwrap_or_default();
        let mut update = Update::default();
        match (kind, action) {
            ("subscriptions-changed", "removed") => {
                let Ok(removed) = serde_json::from_value::<RemovedSubscription>(record) else { return None };
                update.read = self.state().remove(&removed);
            }
            ("subscriptions-changed", _) => match serde_json::from_value::<Subscription>(record) {
                Ok(sub) => update.read = self.state().upsert(sub),
                Err(e) => {
                    tracing::warn!(account = %self.account, "unreadable subscription change: {e}");
                    return None;
                }
            },
            ("rooms-changed", "removed") => return None,
            ("rooms-changed", _) => {
                let Ok(room) = serde_json::from_value::<Room>(record) else { return None };
                let since = {
                    let mut state = self.state();
                    let since = state.since();
                    state.note_room(&room);
                    since
                };
                let message = room.last_message?;
                // A room change that is not a new message repeats an old
                // lastMessage: only messages after the cursor are new.
                let fresh = match (message.ts, since) {
                    (Some(ts), Some(since)) => ts.0 > since,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if fresh && let Some(item) = self.judge_message(&message) {
                    update.items.push(item);
                }
            }
            ("notification", _) => {
                let Ok(notification) = serde_json::from_value::<DesktopNotification>(action_or_first(args)) else { return None };
                if let Some(item) = self.judge_notification(&notification) {
                    update.items.push(item);
                }
            }
            _ => return None,
        }
        Some(update)
    }

    /// Whether `message` toasts, and its item if so; each message is judged
    /// once.
    fn judge_message(&self, message: &Message) -> Option<Item> {
        let mut state = self.state();
        if !state.first_judgement(&message.id) {
            return None;
        }
        let sub = state.sub(&message.rid)?.clone();
        let size = state.room_sizes.get(&message.rid).copied();
        if !toast_rule(message, &sub, size, &state.me, &self.settings) {
            return None;
        }
        let item = self.item(&sub, &message.id, message.u.display(), message.preview(), message.ts.map(|d| d.0));
        state.announced(&item.key, &sub.rid);
        Some(item)
    }

    /// A server-made toast, unless the user silenced its room or sender.
    fn judge_notification(&self, n: &DesktopNotification) -> Option<Item> {
        let p = &n.payload;
        if p.id.is_empty() {
            return None;
        }
        let mut state = self.state();
        let sub = state.sub(&p.rid)?.clone();
        if p.sender.id == state.me.id || silenced(&sub, &self.settings) || sub.ignored.contains(&p.sender.id) {
            return None;
        }
        // The server sent it by its own preference for the room, which the
        // user replaced in Vigie: the room change is judged instead.
        if self.settings.room_preference(&sub).is_some() {
            return None;
        }
        // Already announced from its room change: nothing to add (and a
        // repeat would hold the next message back, see `batch`). The
        // server's word wins over a "no" judged from the room change.
        if state.key_rooms.contains_key(&p.id) {
            return None;
        }
        state.first_judgement(&p.id);
        let item = self.item(&sub, &p.id, p.sender.display(), p.message.msg.clone(), None);
        state.announced(&item.key, &sub.rid);
        Some(item)
    }

    fn item(&self, sub: &Subscription, id: &str, sender: &str, preview: String, time: Option<Timestamp>) -> Item {
        let title = match sub.t.as_str() {
            "c" | "p" => format!("#{}", sub.display_name()),
            _ => sub.display_name().to_owned(),
        };
        Item {
            source: Source::Chat,
            account: self.account.clone(),
            key: id.to_owned(),
            title,
            preview,
            sender: sender.to_owned(),
            link: Some(self.link(sub, id)),
            time: time.unwrap_or_else(Timestamp::now),
        }
    }

    /// Where "Open" goes: the room at the message.
    fn link(&self, sub: &Subscription, message_id: &str) -> String {
        let path = match sub.t.as_str() {
            "c" => format!("channel/{}", sub.name),
            "p" => format!("group/{}", sub.name),
            "l" => format!("live/{}", sub.rid),
            _ => format!("direct/{}", sub.rid),
        };
        let path = format!("{path}?msg={message_id}");
        match self.settings.open_in {
            OpenIn::Browser => format!("{}/{path}", self.base_url),
            OpenIn::DesktopApp => {
                // The desktop app (`deepLinks`: `room?host&rid&path`) adds
                // `https://` to a bare host; a plain-HTTP server keeps its
                // scheme so it is not turned into HTTPS.
                let host = self.base_url.strip_prefix("https://").unwrap_or(&self.base_url);
                let mut url = reqwest::Url::parse("rocketchat://room").unwrap_or_else(|_| unreachable!("a valid constant URL"));
                url.query_pairs_mut().append_pair("host", host).append_pair("rid", &sub.rid).append_pair("path", &path);
                url.to_string()
            }
        }
    }

    /// Badge and cursor from the current state.
    fn state_update(&self) -> Update {
        let state = self.state();
        let subs: Vec<&Subscription> = state
            .subs
            .iter()
            .flat_map(|m| m.values())
            .filter(|s| self.settings.room_preference(s) != Some(RoomPreference::Nothing))
            .collect();
        let (unread, dot) = badge(subs.iter().copied(), state.me.settings.preferences.unread_alert != Some(false));
        let cursor = match (state.cursor, state.floor) {
            (Some(cursor), Some(floor)) => Some(format!("{} {}", wire::iso(cursor), wire::iso(floor))),
            (cursor, _) => cursor.map(wire::iso),
        };
        Update { unread: Some(unread), dot: Some(dot), cursor, ..Update::default() }
    }

    async fn mark_read(&self, key: &str) -> Result<(), ActionError> {
        let known = self.state().key_rooms.get(key).cloned();
        let token = self.token().await.map_err(|e| ActionError::Failed(e.to_string()))?;
        let rest = self.rest(&token).await.map_err(|e| ActionError::Failed(e.to_string()))?;
        // After a restart (or once read elsewhere) the room is asked for.
        let rid = match known {
            Some(rid) => rid,
            None => rest.room_of(key).await.map_err(|e| ActionError::Failed(e.to_string()))?,
        };
        rest.mark_read(&rid).await.map_err(|e| ActionError::Failed(e.to_string()))
    }
}

impl State {
    /// Where a resync starts: a little before the cursor, never before the
    /// floor.
    fn since(&self) -> Option<Timestamp> {
        let since = self.cursor.map(|c| c.saturating_sub(RESYNC_OVERLAP).unwrap_or(c))?;
        Some(self.floor.map_or(since, |floor| since.max(floor)))
    }

    fn sub(&self, rid: &str) -> Option<&Subscription> {
        self.subs.as_ref()?.get(rid)
    }

    /// Stores `sub`; returns the keys read by this change.
    fn upsert(&mut self, sub: Subscription) -> Vec<String> {
        self.advance(sub.updated_at);
        let read = if sub.is_read() { self.forget_shown(&sub.rid) } else { Vec::new() };
        self.subs.get_or_insert_default().insert(sub.rid.clone(), sub);
        read
    }

    /// Forgets a subscription (left the room); its announced keys are gone.
    fn remove(&mut self, removed: &RemovedSubscription) -> Vec<String> {
        let Some(subs) = self.subs.as_mut() else { return Vec::new() };
        let rid = removed.rid.clone().or_else(|| subs.values().find(|s| s.id == removed.id).map(|s| s.rid.clone()));
        let Some(rid) = rid else { return Vec::new() };
        subs.remove(&rid);
        self.forget_shown(&rid)
    }

    /// The announced keys of `rid`, now read or gone.
    fn forget_shown(&mut self, rid: &str) -> Vec<String> {
        let keys = self.shown.remove(rid).unwrap_or_default();
        for key in &keys {
            self.key_rooms.remove(key);
        }
        keys
    }

    fn note_room(&mut self, room: &Room) {
        self.advance(room.updated_at);
        if let Some(size) = room.users_count {
            self.room_sizes.insert(room.id.clone(), size);
        }
    }

    fn advance(&mut self, at: Option<Date>) {
        if let Some(Date(at)) = at
            && self.cursor.is_none_or(|c| at > c)
        {
            self.cursor = Some(at);
        }
    }

    /// True the first time `id` is asked about.
    fn first_judgement(&mut self, id: &str) -> bool {
        if !self.judged.insert(id.to_owned()) {
            return false;
        }
        self.judged_order.push_back(id.to_owned());
        if self.judged_order.len() > JUDGED_MEMORY
            && let Some(old) = self.judged_order.pop_front()
        {
            self.judged.remove(&old);
        }
        true
    }

    fn announced(&mut self, key: &str, rid: &str) {
        self.shown.entry(rid.to_owned()).or_default().push(key.to_owned());
        self.key_rooms.insert(key.to_owned(), rid.to_owned());
    }
}

/// The notification event's record is its first argument.
fn action_or_first(args: &[Value]) -> Value {
    args.first().cloned().unwrap_or_default()
}

/// Whether the user silenced `sub`'s room: muted or hidden on the server,
/// or set to "nothing" (in Vigie, else on the server).
fn silenced(sub: &Subscription, settings: &ChatSettings) -> bool {
    match settings.room_preference(sub) {
        Some(RoomPreference::Nothing) => true,
        Some(_) => sub.disable_notifications == Some(true) || sub.hide_unread_status == Some(true),
        None => sub.is_silenced(),
    }
}

/// Whether a new message toasts, mirroring the server's
/// `shouldNotifyDesktop` for this user: own, system, edited and hidden
/// thread messages never; muted, "nothing" and hidden rooms and ignored
/// senders never (hidden, `hideUnreadStatus`, goes beyond the server); direct messages and mentions always; other messages when the
/// room's preference (the user's choice in Vigie, else the server's, else
/// the user's default, `all` by default) is `all` and the room is not
/// bigger than `max_room_members` (unless the room was set to `all`
/// explicitly).
pub fn toast_rule(message: &Message, sub: &Subscription, room_size: Option<u32>, me: &Me, settings: &ChatSettings) -> bool {
    if message.u.id == me.id || !message.is_plain_new() || silenced(sub, settings) || sub.ignored.contains(&message.u.id) {
        return false;
    }
    let chosen = settings.room_preference(sub);
    if settings.notify_all_messages && chosen.is_none() {
        return true;
    }
    let direct = sub.t == "d";
    let mentioned = message.mentions.iter().any(|m| m.id == me.id)
        || sub.user_highlights.iter().any(|w| !w.is_empty() && message.msg.to_lowercase().contains(&w.to_lowercase()));
    let oversized = settings.max_room_members > 0 && room_size.is_some_and(|n| n > settings.max_room_members);
    let group = !oversized
        && sub.mute_group_mentions != Some(true)
        && message.mentions.iter().any(|m| m.id == "all" || m.id == "here");
    if direct || mentioned || group {
        return true;
    }
    let explicit = chosen.map(RoomPreference::as_server_pref).or_else(|| sub.desktop_pref());
    let pref = explicit.or(me.settings.preferences.desktop_notifications.as_deref()).unwrap_or("all");
    match pref {
        "all" if oversized => chosen.is_some() || (explicit == Some("all") && sub.desktop_pref_origin.as_deref() != Some("user")),
        "all" => true,
        _ => false,
    }
}

/// The official badge over `subs`: (sum of `unread` over visible rooms,
/// "a dot": nothing counted but some visible room has `alert`, which the
/// room's and the user's unread-alert preferences allow).
pub fn badge<'a>(subs: impl IntoIterator<Item = &'a Subscription>, user_unread_alert: bool) -> (u32, bool) {
    let mut count = 0u32;
    let mut alert = false;
    for sub in subs.into_iter().filter(|s| s.counts_for_badge()) {
        if sub.alert == Some(true) || sub.unread > 0 {
            count = count.saturating_add(sub.unread);
        }
        let room_alert = sub.unread_alert.as_deref().unwrap_or("default");
        if sub.alert == Some(true) && room_alert != "nothing" && (room_alert == "all" || user_unread_alert) {
            alert = true;
        }
    }
    (count, count == 0 && alert)
}

/// How a connection ended without an error.
enum Ended {
    /// The watcher is stopping.
    Stop,
    /// The machine woke or the network changed: connect again at once.
    Reconnect,
}

impl Watcher for RocketChatWatcher {
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(async move {
            while let Ended::Reconnect = self.run_once(ctx).await? {
                tracing::info!(account = %self.account, "woke up or the network changed: reconnecting");
            }
            Ok(())
        })
    }

    fn actions(&self, _key: &str) -> Vec<Action> {
        vec![Action::MarkRead]
    }

    fn act<'a>(&'a self, key: &'a str, action: Action) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            match action {
                Action::MarkRead => self.mark_read(key).await,
                Action::MarkDone => Err(ActionError::Unsupported("chat messages cannot be marked done".to_owned())),
            }
        })
    }
}

/// The REST client: rustls with the ring provider and the platform's
/// verifier, and the same timeouts as Leantime's polls (`web`): a resync
/// that meets a dead connection fails after 10 s of silence, not 30 s.
pub(crate) fn http_client() -> Result<reqwest::Client, WatchError> {
    crate::web::http_client(&crate::web::HttpTimeouts::default()).map_err(|e| WatchError::Transient(format!("cannot set up HTTPS: {e}")))
}

/// Adds up to a tenth (at most 5 s) to a server's wait, so that clients
/// told the same reset do not all return at the same instant.
fn with_jitter(wait: Duration) -> Duration {
    let spread = (wait / 10).min(Duration::from_secs(5));
    wait + spread.mul_f64(fastrand::f64())
}

fn rest_error(e: RestError) -> WatchError {
    match e {
        RestError::Unauthorized(words) => WatchError::AuthFailed(format!(
            "Rocket.Chat refused the token (HTTP 401: {words}); it may have expired or been revoked: create a new personal access token"
        )),
        RestError::RateLimited(wait) => WatchError::RateLimited { retry_after: with_jitter(wait) },
        e @ (RestError::Http { .. } | RestError::Transport(_) | RestError::TooLarge { .. }) => WatchError::Transient(e.to_string()),
    }
}

fn link_error(e: LinkError) -> WatchError {
    match e {
        LinkError::LoggedOut(words) => {
            WatchError::AuthFailed(format!("Rocket.Chat refused the token (DDP 403): {words}; create a new personal access token"))
        }
        LinkError::RateLimited(wait) => WatchError::RateLimited { retry_after: with_jitter(wait) },
        e => WatchError::Transient(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(t: &str) -> Subscription {
        Subscription { id: "s".into(), rid: "R".into(), name: "general".into(), t: t.into(), open: Some(true), ..Subscription::default() }
    }

    fn me() -> Me {
        Me { id: "ME".into(), username: "alice".into(), ..Me::default() }
    }

    fn message(from: &str, mentions: &[&str]) -> Message {
        Message {
            id: "M".into(),
            rid: "R".into(),
            msg: "hello".into(),
            u: wire::UserRef { id: from.into(), username: from.into(), name: None },
            mentions: mentions.iter().map(|m| wire::Mention { id: (*m).into() }).collect(),
            ..Message::default()
        }
    }

    #[test]
    fn the_toast_rule_follows_the_server() {
        let settings = ChatSettings::default();
        let plain = message("BOB", &[]);
        assert!(toast_rule(&plain, &sub("c"), Some(5), &me(), &settings), "default 'all' in a small room");
        assert!(!toast_rule(&plain, &sub("c"), Some(500), &me(), &settings), "oversized room");
        assert!(toast_rule(&message("BOB", &["ME"]), &sub("c"), Some(500), &me(), &settings), "mention in a big room");
        let mentions_only = Subscription { desktop_notifications: Some("mentions".into()), ..sub("c") };
        assert!(!toast_rule(&plain, &mentions_only, Some(5), &me(), &settings));
        assert!(toast_rule(&plain, &Subscription { desktop_notifications: Some("mentions".into()), ..sub("d") }, None, &me(), &settings));
        let muted = Subscription { disable_notifications: Some(true), ..sub("d") };
        assert!(!toast_rule(&plain, &muted, None, &me(), &settings));
        let ignoring = Subscription { ignored: vec!["BOB".into()], ..sub("d") };
        assert!(!toast_rule(&plain, &ignoring, None, &me(), &settings));
        assert!(!toast_rule(&message("ME", &[]), &sub("d"), None, &me(), &settings), "own message");
    }

    #[test]
    fn the_chat_settings_are_read_from_the_account_sub_table() {
        let text = "[[account]]\nid = \"team\"\nsource = \"chat\"\nserver = \"https://chat.example.org\"\n\n\
                    [account.chat]\nuser_id = \"aobEdbYhXfu5hkeqG\"\nopen_in = \"desktop-app\"\n";
        let config = crate::config::Config::parse(std::path::Path::new("config.toml"), text).expect("valid");
        let chat = config.accounts[0].chat.clone();
        assert_eq!(chat.user_id.as_deref(), Some("aobEdbYhXfu5hkeqG"));
        assert_eq!(chat.open_in, OpenIn::DesktopApp);
        assert_eq!(chat.max_room_members, 100, "the server default");
        assert!(!chat.notify_all_messages);
        let typo = text.replace("open_in", "opne_in");
        let err = crate::config::Config::parse(std::path::Path::new("config.toml"), &typo).expect_err("refused");
        assert!(err.to_string().contains("opne_in"), "{err}");
    }

    #[test]
    fn a_room_choice_in_vigie_replaces_the_servers_preference() {
        let choose = |room: &str, pref| ChatSettings { rooms: [(room.to_owned(), pref)].into(), ..ChatSettings::default() };
        let plain = message("BOB", &[]);
        let mention = message("BOB", &["ME"]);
        let mentions_on_server = Subscription { desktop_notifications: Some("mentions".into()), ..sub("c") };
        assert!(!toast_rule(&plain, &mentions_on_server, Some(5), &me(), &ChatSettings::default()));
        assert!(toast_rule(&plain, &mentions_on_server, Some(5), &me(), &choose("general", RoomPreference::All)));
        assert!(toast_rule(&plain, &sub("c"), Some(500), &me(), &choose("#general", RoomPreference::All)), "beats the size limit");
        let nothing_on_server = Subscription { desktop_notifications: Some("nothing".into()), ..sub("c") };
        assert!(toast_rule(&plain, &nothing_on_server, Some(5), &me(), &choose("general", RoomPreference::All)));
        let mentions = choose("general", RoomPreference::Mentions);
        assert!(!toast_rule(&plain, &sub("c"), Some(5), &me(), &mentions));
        assert!(toast_rule(&mention, &sub("c"), Some(5), &me(), &mentions));
        let all_messages = ChatSettings { notify_all_messages: true, ..mentions };
        assert!(!toast_rule(&plain, &sub("c"), Some(5), &me(), &all_messages), "the room's choice wins");
        let nothing = choose("general", RoomPreference::Nothing);
        assert!(!toast_rule(&mention, &sub("c"), Some(5), &me(), &nothing));
        let muted = Subscription { disable_notifications: Some(true), ..sub("c") };
        assert!(!toast_rule(&mention, &muted, Some(5), &me(), &choose("general", RoomPreference::All)), "still muted");
        let other_room = choose("random", RoomPreference::Nothing);
        assert!(toast_rule(&plain, &sub("c"), Some(5), &me(), &other_room));
    }

    #[test]
    fn a_direct_chat_is_chosen_by_the_other_persons_user_or_display_name() {
        let dm = Subscription { name: "bob".into(), fname: Some("Bob Builder".into()), ..sub("d") };
        for key in ["bob", "@bob", "Bob Builder"] {
            let settings = ChatSettings { rooms: [(key.to_owned(), RoomPreference::Nothing)].into(), ..ChatSettings::default() };
            assert_eq!(settings.room_preference(&dm), Some(RoomPreference::Nothing), "{key}");
        }
    }

    #[test]
    fn the_chat_settings_write_back_what_they_read() {
        let text = "[[account]]\nid = \"team\"\nsource = \"chat\"\nserver = \"https://chat.example.org\"\n\n\
                    [account.chat]\nopen_in = \"desktop-app\"\nmax_room_members = 50\n\n\
                    [account.chat.rooms]\ngeneral = \"mentions\"\nrandom = \"nothing\"\n\"Bob Builder\" = \"all\"\n";
        let config = crate::config::Config::parse(std::path::Path::new("config.toml"), text).expect("valid");
        let chat = config.accounts[0].chat.clone();
        assert_eq!(chat.rooms.get("general"), Some(&RoomPreference::Mentions));
        assert_eq!(chat.rooms.get("Bob Builder"), Some(&RoomPreference::All));
        let written = toml::to_string(&chat).expect("serializes");
        assert!(written.contains("open_in = \"desktop-app\""), "{written}");
        assert!(written.contains("random = \"nothing\""), "{written}");
        assert!(!written.contains("user_id"), "an absent user id is left out: {written}");
        let back: ChatSettings = toml::from_str(&written).expect("reads back");
        assert_eq!(back, chat);
        let wrong = text.replace("\"mentions\"", "\"some\"");
        assert!(crate::config::Config::parse(std::path::Path::new("config.toml"), &wrong).is_err());
    }

    #[test]
    fn the_badge_is_the_official_clients() {
        let general = Subscription { alert: Some(true), unread: 0, ..sub("c") };
        let dm = Subscription { rid: "D".into(), alert: Some(true), unread: 3, ..sub("d") };
        let hidden = Subscription { rid: "H".into(), alert: Some(true), unread: 7, hide_unread_status: Some(true), ..sub("p") };
        assert_eq!(badge([&general, &dm, &hidden], true), (3, false));
        assert_eq!(badge([&general, &hidden], true), (0, true), "only an alert: the dot");
        assert_eq!(badge([&general], false), (0, false), "the user turned the unread alert off");
    }
}
