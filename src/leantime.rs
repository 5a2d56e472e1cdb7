//! Leantime: unread notifications and the tasks assigned to the user, over
//! its JSON-RPC 2.0 API (`{base}/api/jsonrpc`).
//!
//! Leantime cannot push to an API client, so this source is polled on the
//! hybrid scheduler (intervals, hints from mail and chat, rate limits), and
//! each poll is **one** HTTP request: a batch of the unread count, the newest
//! notifications and the open tickets assigned to the user. [`rpc`] is the
//! wire layer; this module picks the calls for the server's version and turns
//! answers into items.
//!
//! Invariants: the credential is sent on every request and nothing else is
//! kept between requests (no cookies: the API is stateless); a failure never
//! loses the cursor (the highest notification id seen), since the hub only
//! stores what a successful poll published.

pub mod probe;
pub mod rpc;

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeSet;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::badge::BadgeMode;
use crate::model::{AccountId, Item, Source};
use crate::scheduler::Trigger;
use crate::secrets::SecretStore;
use crate::watcher::{Action, ActionError, Update, WatchError, Watcher, WatcherContext};
use crate::web::HttpTimeouts;
use rpc::{Call, CallError, CallErrorKind, Method, Notification, RequestError, Ticket};

/// How the account signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// A personal access token (`Authorization: Bearer`, Leantime 3.9.6+):
    /// acts as the person, so it sees their notifications. Recommended.
    Token,
    /// An API key (`x-api-key`): acts as the key's own pseudo-user, whose
    /// notifications are not the person's.
    ApiKey,
}

impl AuthKind {
    /// The keyring entry name of the secret.
    pub fn secret_name(self) -> &'static str {
        match self {
            AuthKind::Token => "token",
            AuthKind::ApiKey => "api-key",
        }
    }
}

/// The per-account Leantime settings (`[account.tasks]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TasksSettings {
    /// How tasks newly assigned to the user show until they acknowledge
    /// them ("Got it" on the toast, or marking them done): `count` adds them
    /// to the number, `dot` only lights the dot, `ignore` neither, and they
    /// are not toasted either. Notifications always count as the account's
    /// badge mode says.
    pub assigned_tasks: BadgeMode,
    /// The server's API rate limit, when its admin changed
    /// `LEAN_RATELIMIT_API`; by default it follows the version (10 a minute
    /// before 3.9.7, 120 from then on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
}

/// Where and how to reach one Leantime account.
pub struct LeantimeWatcher {
    account: AccountId,
    base_url: String,
    auth: AuthKind,
    settings: TasksSettings,
    secrets: Arc<dyn SecretStore>,
    /// How long a request may go silent, and how connections are kept.
    timeouts: HttpTimeouts,
    /// What the last connection learnt, so that an action needs no second
    /// discovery request.
    known: Mutex<Option<ServerInfo>>,
    /// Open tasks the user has acknowledged (or that were open when the
    /// account was first synced): they no longer count. `None` until known
    /// (from the saved cursor, or the first sync). Kept to open tasks only,
    /// so it stays as small as the user's to-do list.
    acknowledged: Mutex<Option<BTreeSet<i64>>>,
}

/// What the first exchange with the server told us.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServerInfo {
    /// `None` before 3.9 (no `getSystemInfo`).
    pub(crate) version: Option<(u32, u32, u32)>,
    pub(crate) user_id: i64,
    /// The credential is an API key's pseudo-user (`source: "api"`).
    pub(crate) api_user: bool,
}

impl ServerInfo {
    fn has_inbox(&self) -> bool {
        self.version.is_some_and(|v| v >= (3, 9, 5))
    }

    fn has_unread_count(&self) -> bool {
        self.version.is_some()
    }

    /// Leantime's default API rate limit for this version, per minute.
    fn default_rate_limit(&self) -> u32 {
        if self.version.is_some_and(|v| v >= (3, 9, 7)) { 120 } else { 10 }
    }

    fn describe_version(&self) -> String {
        match self.version {
            Some((major, minor, patch)) => format!("Leantime {major}.{minor}.{patch}"),
            None => "this Leantime version (before 3.9)".to_owned(),
        }
    }
}

/// Notifications fetched per poll (Leantime caps pages at 100).
const INBOX_PAGE: u32 = 50;
/// Further inbox pages, read when a whole first page is new (see
/// `LeantimeWatcher::older_new_notifications`), are Leantime's largest: as
/// few calls as the server allows for a burst.
const MORE_INBOX_PAGE: u32 = 100;
/// They are asked for this many at a time, in one batch: Leantime's rate
/// limiter counts a batch as one request (10 a minute before 3.9.7), so a
/// burst of 500 costs one request more, as one of 60 does. Pages past the
/// end come back empty and cost the server next to nothing.
const MORE_INBOX_PAGES_PER_REQUEST: u32 = 5;
/// At most this many such requests per poll: 50 + 2 × 5 × 100 = 1,050 new
/// notifications at once are all listed (a project import, a bulk edit);
/// of a bigger burst the oldest are counted but never listed.
const MORE_INBOX_REQUESTS: u32 = 2;
/// Tasks can be assigned without a notification (a muted project, an
/// admin's bulk edit); a count-only poll cannot see them, so at least every
/// this many polls one reads everything (every 5 minutes at the default
/// minute, every 25 while the user is away).
const FULL_POLL_EVERY: u32 = 5;
/// What the UI says about API keys.
const API_KEY_NOTICE: &str = "This is an API key: Leantime shows it the notifications of its own pseudo-user, not yours. \
     Use a personal access token (Leantime 3.9.6 or newer) to see your own.";

/// What one poll reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollKind {
    /// The unread count only: the cheap "anything new?" check.
    CountOnly,
    /// Count, newest notifications and open tickets, in one batch.
    Full,
}

impl LeantimeWatcher {
    /// A watcher for `base_url` (without `/api/jsonrpc`), reading its secret
    /// from `secrets` at each (re)connect.
    pub fn new(
        account: AccountId,
        base_url: &str,
        auth: AuthKind,
        settings: TasksSettings,
        secrets: Arc<dyn SecretStore>,
    ) -> Self {
        LeantimeWatcher {
            account,
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth,
            settings,
            secrets,
            timeouts: HttpTimeouts::default(),
            known: Mutex::new(None),
            acknowledged: Mutex::new(None),
        }
    }

    /// The same watcher with other timeouts (tests shorten them).
    pub fn with_timeouts(mut self, timeouts: HttpTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    fn http_client(&self) -> Result<reqwest::Client, WatchError> {
        crate::web::http_client(&self.timeouts).map_err(|e| WatchError::Transient(format!("cannot set up HTTPS: {e}")))
    }

    async fn secret(&self) -> Result<SecretString, WatchError> {
        let (secrets, account, name) = (self.secrets.clone(), self.account.clone(), self.auth.secret_name());
        let found = tokio::task::spawn_blocking(move || secrets.get(&account, name))
            .await
            .map_err(|e| WatchError::Transient(format!("the keyring lookup failed: {e}")))?
            .map_err(|e| WatchError::Transient(e.to_string()))?;
        found.ok_or_else(|| {
            WatchError::AuthFailed(format!(
                "no {name} is stored for this account; add it in the settings or with `vigie --set-secret {} {name}`",
                self.account
            ))
        })
    }

    async fn call(&self, client: &reqwest::Client, secret: &SecretString, calls: &[Call]) -> Result<Vec<rpc::CallResult>, WatchError> {
        self.exchange(client, secret, calls).await.map_err(WatchError::from)
    }

    /// A poll's request. A connection that went silent (most likely a
    /// pooled one that died without a word: a NAT, a VPN or a Wi-Fi change
    /// forgot it) is given up after the silence timeout and the request
    /// sent once more at once on a fresh client, so a dead connection
    /// costs seconds, not a backoff and a poll. A second silence, on a
    /// connection just opened, is an outage: it goes to the backoff.
    /// Polls only read, so sending one twice is harmless.
    async fn poll_request(&self, client: &mut reqwest::Client, secret: &SecretString, calls: &[Call]) -> Result<Vec<rpc::CallResult>, WatchError> {
        match self.exchange(client, secret, calls).await {
            Err(silent @ CallFailure::Silent { .. }) => {
                tracing::info!(account = %self.account, "{silent}; asking again at once on a fresh connection");
                // Dropping the old client closes its pool, the dead
                // connection with it.
                *client = self.http_client()?;
                self.call(client, secret, calls).await
            }
            other => other.map_err(WatchError::from),
        }
    }

    /// One request with `calls`, a silent connection told apart.
    async fn exchange(&self, client: &reqwest::Client, secret: &SecretString, calls: &[Call]) -> Result<Vec<rpc::CallResult>, CallFailure> {
        // Checked before every request: the secret goes with each one.
        if let Some(why) = crate::web::refusal(&self.base_url, "token or API key") {
            return Err(WatchError::NeedsAttention(why).into());
        }
        let url = format!("{}{}", self.base_url, rpc::ENDPOINT);
        let mut request = client.post(&url).header("Content-Type", "application/json").body(rpc::batch_body(calls));
        request = match self.auth {
            AuthKind::Token => request.bearer_auth(secret.expose_secret()),
            AuthKind::ApiKey => request.header("x-api-key", secret.expose_secret()),
        };
        let sent = std::time::Instant::now();
        let response = request.send().await.map_err(|e| self.transport_error(&e, sent.elapsed()))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = crate::web::read_body(response, crate::web::BODY_LIMIT).await.map_err(|e| match e {
            crate::web::BodyError::TooLarge { limit } => request_error(RequestError::TooLarge { limit }).into(),
            crate::web::BodyError::Transport(e) => self.transport_error(&e, sent.elapsed()),
        })?;
        // A refusal may quote the request, credential included.
        rpc::parse_batch(status, retry_after.as_deref(), &String::from_utf8_lossy(&body), calls.len())
            .map_err(|e| request_error(e).redacted(&[secret]).into())
    }

    /// A failed request in words for the user, `elapsed` after it was sent.
    fn transport_error(&self, e: &reqwest::Error, elapsed: Duration) -> CallFailure {
        if self.timeouts.is_silence(e, elapsed) {
            return CallFailure::Silent { host: host_of(&self.base_url), silence: self.timeouts.silence };
        }
        let what = if e.is_connect() && e.is_timeout() {
            format!("cannot connect (no answer within {})", crate::web::seconds(self.timeouts.connect))
        } else if e.is_timeout() {
            format!("the answer did not finish within {}", crate::web::seconds(self.timeouts.total))
        } else if e.is_connect() {
            format!("cannot connect ({})", root_cause(e))
        } else {
            root_cause(e)
        };
        WatchError::Transient(format!("{}: {what}", self.base_url)).into()
    }

    /// The first exchange: the version and the credential's user, in one
    /// request.
    async fn discover(&self, client: &reqwest::Client, secret: &SecretString) -> Result<ServerInfo, WatchError> {
        let mut results = self.call(client, secret, &discovery_calls()).await?.into_iter();
        let version = read_version(results.next())?;
        let (user_id, api_user) = read_user(results.next().as_ref())?;
        if api_user {
            tracing::warn!(account = %self.account, "an API key sees its own pseudo-user's notifications, not a person's");
        }
        let info = ServerInfo { version, user_id, api_user };
        *lock(&self.known) = Some(info.clone());
        Ok(info)
    }

    pub(crate) fn poll_calls(&self, info: &ServerInfo, kind: PollKind) -> Vec<Call> {
        let mut calls = Vec::with_capacity(3);
        if kind == PollKind::CountOnly && info.has_unread_count() {
            calls.push(Call::new(Method::GetUnreadCount, json!({})));
            return calls;
        }
        if info.has_inbox() {
            calls.push(Call::new(Method::GetUnreadCount, json!({})));
            calls.push(Call::new(Method::GetInbox, json!({ "showNewOnly": 1, "limitStart": 0, "limitEnd": INBOX_PAGE })));
        } else if info.has_unread_count() {
            calls.push(Call::new(Method::GetUnreadCount, json!({})));
        } else {
            calls.push(Call::new(
                Method::GetAllNotifications,
                json!({ "userId": info.user_id, "showNewOnly": 1, "limitStart": 0, "limitEnd": INBOX_PAGE }),
            ));
        }
        if self.settings.assigned_tasks != BadgeMode::Ignore {
            calls.push(Call::new(Method::GetAllOpenUserTickets, json!({ "userId": info.user_id })));
        }
        calls
    }

    /// Whether this poll must read everything, or a count check will do.
    /// `last` is the last full poll: how many polls ago, and the count seen.
    fn poll_kind(&self, info: &ServerInfo, reason: Trigger, last: Option<(u32, u32)>) -> PollKind {
        let Some((polls_ago, _)) = last else { return PollKind::Full };
        let tasks_stale = self.settings.assigned_tasks != BadgeMode::Ignore && polls_ago + 1 >= FULL_POLL_EVERY;
        // Anything but the timer means "something probably changed".
        if !info.has_unread_count() || reason != Trigger::Scheduled || tasks_stale {
            PollKind::Full
        } else {
            PollKind::CountOnly
        }
    }

    /// One full poll's update from the batch answer, and the notification
    /// count in it.
    /// `older`: unread notifications beyond the first inbox page
    /// ([`Self::older_new_notifications`]).
    pub(crate) fn update(&self, calls: &[Call], results: Vec<rpc::CallResult>, older: Vec<Notification>) -> Result<(Update, u32), WatchError> {
        let mut notifications: Vec<Notification> = Vec::new();
        let mut tickets: Vec<Ticket> = Vec::new();
        let mut count = None;
        for (call, result) in calls.iter().zip(results) {
            let value = result.map_err(|e| call_error(call.method, "poll", e))?;
            match call.method {
                Method::GetUnreadCount => count = rpc::unread_count(&value),
                Method::GetInbox | Method::GetAllNotifications => notifications = rows(&value, call.method)?,
                Method::GetAllOpenUserTickets => tickets = rows(&value, call.method)?,
                _ => {}
            }
        }
        notifications.extend(older);
        notifications.retain(Notification::is_unread);
        let count = count.unwrap_or_else(|| u32::try_from(notifications.len()).unwrap_or(u32::MAX));
        let mut items: Vec<Item> = notifications.iter().rev().map(|n| self.notification_item(n)).collect();
        items.extend(tickets.iter().map(|t| self.ticket_item(t)));
        let open: BTreeSet<i64> = tickets.iter().map(|t| t.id).collect();
        let mut acknowledged = lock(&self.acknowledged);
        let acknowledged = acknowledged.get_or_insert_with(|| open.clone());
        acknowledged.retain(|id| open.contains(id));
        let new_tasks = u32::try_from(open.difference(acknowledged).count()).unwrap_or(u32::MAX);
        let (unread, dot) = match self.settings.assigned_tasks {
            BadgeMode::Count => (count.saturating_add(new_tasks), false),
            BadgeMode::Dot => (count, new_tasks > 0),
            BadgeMode::Ignore => (count, false),
        };
        let newest = notifications.iter().map(|n| n.id).max();
        let cursor = Cursor { newest_notification: newest, acknowledged: Some(acknowledged.clone()) };
        let update = Update { items, unread: Some(unread), dot: Some(dot), cursor: Some(cursor.to_string()), ..Update::default() };
        Ok((update, count))
    }

    /// The unread notifications beyond the first inbox page that are newer
    /// than `seen` (the highest id seen before), when that page is full and
    /// all new: more than a page arrived since the last poll (the app was
    /// closed, the network down). Without them the older ones would never
    /// be listed: lost. Pages are fetched until one reaches what was seen,
    /// [`MORE_INBOX_PAGES_PER_REQUEST`] to a request and at most
    /// [`MORE_INBOX_REQUESTS`] requests (each one outside the scheduler's
    /// rate budget). Not on the first sync, which announces nothing.
    async fn older_new_notifications(
        &self,
        client: &reqwest::Client,
        secret: &SecretString,
        calls: &[Call],
        results: &[rpc::CallResult],
        seen: Option<i64>,
    ) -> Result<Vec<Notification>, WatchError> {
        let Some(seen) = seen else { return Ok(Vec::new()) };
        let first = calls.iter().zip(results).find_map(|(call, result)| match (call.method, result) {
            (Method::GetInbox, Ok(value)) => Some(value),
            _ => None,
        });
        let Some(first) = first else { return Ok(Vec::new()) };
        let mut page: Vec<Notification> = rows(first, Method::GetInbox)?;
        // A full page whose oldest is still new: there is more beyond it.
        let more_beyond = |page: &[Notification], size: u32| {
            page.len() >= usize::try_from(size).unwrap_or(usize::MAX) && page.iter().map(|n| n.id).min().is_some_and(|oldest| oldest > seen)
        };
        let mut size = INBOX_PAGE;
        let mut start = INBOX_PAGE;
        let mut older = Vec::new();
        'requests: for request in 1..=MORE_INBOX_REQUESTS {
            if !more_beyond(&page, size) {
                break;
            }
            let pages: Vec<Call> = (0..MORE_INBOX_PAGES_PER_REQUEST)
                .map(|i| {
                    let params = json!({ "showNewOnly": 1, "limitStart": start + i * MORE_INBOX_PAGE, "limitEnd": MORE_INBOX_PAGE });
                    Call::new(Method::GetInbox, params)
                })
                .collect();
            start += MORE_INBOX_PAGES_PER_REQUEST * MORE_INBOX_PAGE;
            size = MORE_INBOX_PAGE;
            let answers = self.call(client, secret, &pages).await?;
            tracing::debug!(account = %self.account, request, pages = pages.len(), "more new notifications than one inbox page");
            for answer in answers {
                page = match answer {
                    Ok(value) => rows(&value, Method::GetInbox)?,
                    Err(e) => return Err(call_error(Method::GetInbox, "poll", e)),
                };
                older.extend(page.iter().filter(|n| n.id > seen).cloned());
                if !more_beyond(&page, size) {
                    break 'requests;
                }
            }
        }
        Ok(older)
    }

    fn notification_item(&self, n: &Notification) -> Item {
        let author = format!("{} {}", n.firstname, n.lastname).trim().to_owned();
        Item {
            source: Source::Tasks,
            account: self.account.clone(),
            key: format!("n{}", n.id),
            title: plain_text(&n.message),
            preview: String::new(),
            sender: if author.is_empty() { "Leantime".to_owned() } else { author },
            link: (!n.url.is_empty()).then(|| n.url.clone()),
            time: Timestamp::now(),
        }
    }

    fn ticket_item(&self, t: &Ticket) -> Item {
        let mut preview = format!("Assigned to you in {}", t.project_name);
        if !t.date_to_finish.is_empty() && !t.date_to_finish.starts_with("0000") {
            preview.push_str(&format!(", due {}", t.date_to_finish.get(..10).unwrap_or(&t.date_to_finish)));
        }
        Item {
            source: Source::Tasks,
            account: self.account.clone(),
            key: format!("t{}", t.id),
            title: t.headline.clone(),
            preview,
            sender: "Leantime".to_owned(),
            link: Some(format!("{}/dashboard/home#/tickets/showTicket/{}", self.base_url, t.id)),
            time: Timestamp::now(),
        }
    }

    async fn run_once(&self, ctx: &mut WatcherContext) -> Result<(), WatchError> {
        let secret = self.secret().await?;
        let mut client = self.http_client()?;
        let info = self.discover(&client, &secret).await?;
        let per_minute = self.settings.requests_per_minute.unwrap_or_else(|| info.default_rate_limit()).max(1);
        ctx.set_rate_limit(per_minute, (per_minute / 3).clamp(1, 10));
        ctx.set_notice(info.api_user.then(|| API_KEY_NOTICE.to_owned())).await;
        ctx.set_polling().await;
        tracing::info!(account = %self.account, version = ?info.version, api_user = info.api_user, per_minute, "connected to Leantime");

        let saved = ctx.cursor().map(Cursor::parse).unwrap_or_default();
        let mut newest = saved.newest_notification;
        {
            let mut acknowledged = lock(&self.acknowledged);
            if acknowledged.is_none() {
                *acknowledged = saved.acknowledged;
            }
        }
        // How many polls ago the last full poll was, and the notification
        // count it saw.
        let mut last_full: Option<(u32, u32)> = None;
        while let Some(reason) = ctx.next_poll().await {
            if matches!(reason, Trigger::Wake | Trigger::NetworkBack) {
                // After a sleep or a network change the pooled connection
                // may be dead without a word (a NAT, a VPN or the Wi-Fi
                // forgot it): a request on it would wait out the silence
                // timeout before the retry. Start afresh.
                client = self.http_client()?;
            }
            let kind = self.poll_kind(&info, reason, last_full);
            tracing::debug!(account = %self.account, ?reason, ?kind, "polling Leantime");
            let calls = self.poll_calls(&info, kind);
            let results = self.poll_request(&mut client, &secret, &calls).await?;
            if kind == PollKind::CountOnly {
                let count = match results.into_iter().next() {
                    Some(Ok(value)) => rpc::unread_count(&value),
                    Some(Err(e)) => return Err(call_error(Method::GetUnreadCount, "poll", e)),
                    None => None,
                };
                let changed = count != last_full.map(|(_, count)| count);
                if let Some((polls_ago, _)) = &mut last_full {
                    *polls_ago += 1;
                }
                if changed {
                    // Read what changed at once, within the rate limit.
                    ctx.fetch_again_soon();
                }
                ctx.poll_succeeded(changed);
                continue;
            }
            let older = self.older_new_notifications(&client, &secret, &calls, &results, newest).await?;
            let (mut update, count) = self.update(&calls, results, older)?;
            let polled_newest = update.cursor.as_deref().map(Cursor::parse).and_then(|c| c.newest_notification);
            // The first sync of an account is a baseline, not a change to
            // speed up for.
            let changed = newest.is_some() && polled_newest > newest;
            newest = newest.max(polled_newest);
            // Keep the highest id ever seen, not just the newest unread one.
            update.cursor = update.cursor.as_deref().map(|c| Cursor { newest_notification: newest, ..Cursor::parse(c) }.to_string());
            last_full = Some((0, count));
            ctx.publish(update).await;
            ctx.poll_succeeded(changed);
        }
        Ok(())
    }

    async fn act_on(&self, key: &str, action: Action) -> Result<(), ActionError> {
        let item = ItemRef::parse(key).ok_or_else(|| ActionError::Unsupported(format!("`{key}` is not a Leantime item")))?;
        let failed = |e: WatchError| ActionError::Failed(e.to_string());
        let secret = self.secret().await.map_err(failed)?;
        let client = self.http_client().map_err(failed)?;
        let known = lock(&self.known).clone();
        let info = match known {
            Some(info) => info,
            None => self.discover(&client, &secret).await.map_err(failed)?,
        };
        let (call, what) = match (item, action) {
            (ItemRef::Notification(id), Action::MarkRead) if info.has_unread_count() => {
                (Call::new(Method::MarkRead, json!({ "id": id })), "mark notifications read")
            }
            (ItemRef::Notification(id), Action::MarkRead) => (
                Call::new(Method::MarkNotificationRead, json!({ "id": id, "userId": info.user_id })),
                "mark notifications read",
            ),
            (ItemRef::Ticket(id), Action::MarkDone) => (Call::new(Method::MarkTicketDone, json!({ "id": id })), "mark tasks done"),
            // A task has no "read" on the server: acknowledging it is ours.
            (ItemRef::Ticket(id), Action::MarkRead) => {
                lock(&self.acknowledged).get_or_insert_with(BTreeSet::new).insert(id);
                return Ok(());
            }
            (ItemRef::Notification(_), Action::MarkDone) => {
                return Err(ActionError::Unsupported("only tasks can be marked done".to_owned()));
            }
        };
        let method = call.method;
        let result = self.call(&client, &secret, &[call]).await.map_err(failed)?.into_iter().next();
        match result {
            // `false` from markRead means "already read, or not yours":
            // either way there is nothing left to do.
            Some(Ok(_)) if action == Action::MarkRead => Ok(()),
            Some(Ok(value)) if truthy(&value) => Ok(()),
            Some(Ok(_)) => Err(ActionError::Failed(
                "Leantime did not mark the task done: it is done already, was deleted, or its project has no Done status".to_owned(),
            )),
            Some(Err(e)) if e.kind == CallErrorKind::MethodNotFound => Err(ActionError::Unsupported(format!(
                "{} cannot {what} over its API (the method {} is missing)",
                info.describe_version(),
                method.name()
            ))),
            Some(Err(e)) if e.kind == CallErrorKind::PermissionDenied => Err(ActionError::Failed(format!(
                "permission missing: Leantime does not let this account {what} here ({})",
                e.message
            ))),
            Some(Err(e)) => Err(ActionError::Failed(e.to_string())),
            None => Err(ActionError::Failed("Leantime gave no answer".to_owned())),
        }
    }
}

impl Watcher for LeantimeWatcher {
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(self.run_once(ctx))
    }

    fn actions(&self, key: &str) -> Vec<Action> {
        match ItemRef::parse(key) {
            Some(ItemRef::Notification(_)) => vec![Action::MarkRead],
            // "Mark read" on a task acknowledges it (it stops counting).
            Some(ItemRef::Ticket(_)) => vec![Action::MarkRead, Action::MarkDone],
            None => Vec::new(),
        }
    }

    fn act<'a>(&'a self, key: &'a str, action: Action) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(self.act_on(key, action))
    }
}

/// The resume position saved with the dedup state:
/// `n<newest notification id> ack:<acknowledged open task ids>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Cursor {
    newest_notification: Option<i64>,
    /// `None` in a cursor saved before tasks were acknowledged.
    acknowledged: Option<BTreeSet<i64>>,
}

impl Cursor {
    /// Reads a saved cursor leniently: what cannot be read is unknown.
    fn parse(text: &str) -> Cursor {
        let mut cursor = Cursor::default();
        for part in text.split_whitespace() {
            if let Some(ids) = part.strip_prefix("ack:") {
                cursor.acknowledged = Some(ids.split(',').filter_map(|id| id.parse().ok()).collect());
            } else if let Some(id) = part.strip_prefix('n') {
                cursor.newest_notification = id.parse().ok();
            }
        }
        cursor
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(id) = self.newest_notification {
            parts.push(format!("n{id}"));
        }
        if let Some(ids) = &self.acknowledged {
            parts.push(format!("ack:{}", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")));
        }
        f.write_str(&parts.join(" "))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// An item key, taken apart: `n<id>` is a notification, `t<id>` a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemRef {
    Notification(i64),
    Ticket(i64),
}

impl ItemRef {
    fn parse(key: &str) -> Option<ItemRef> {
        let (kind, id) = key.split_at_checked(1)?;
        let id = id.parse().ok()?;
        match kind {
            "n" => Some(ItemRef::Notification(id)),
            "t" => Some(ItemRef::Ticket(id)),
            _ => None,
        }
    }
}

/// The calls of the first exchange, answered in this order by
/// [`read_version`] and [`read_user`].
pub(crate) fn discovery_calls() -> [Call; 2] {
    [Call::new(Method::GetSystemInfo, json!({})), Call::new(Method::GetUser, json!({}))]
}

/// The version from `getSystemInfo`'s answer: `None` before 3.9, which has
/// no such method (the old code path).
pub(crate) fn read_version(answer: Option<rpc::CallResult>) -> Result<Option<(u32, u32, u32)>, WatchError> {
    match answer {
        Some(Ok(value)) => Ok(rpc::version(&value)),
        Some(Err(e)) if e.kind == CallErrorKind::MethodNotFound => Ok(None),
        Some(Err(e)) => Err(call_error(Method::GetSystemInfo, "read the server's version", e)),
        None => Ok(None),
    }
}

/// The credential's user from `getUser`'s answer: its id, and whether it
/// is an API key's pseudo-user (`source: "api"`).
pub(crate) fn read_user(answer: Option<&rpc::CallResult>) -> Result<(i64, bool), WatchError> {
    let user = match answer {
        Some(Ok(user)) => user,
        Some(Err(e)) => return Err(call_error(Method::GetUser, "read who the token belongs to", e.clone())),
        None => return Err(WatchError::Transient("Leantime did not say who the token belongs to".to_owned())),
    };
    let user_id = user
        .get("id")
        .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .ok_or_else(|| WatchError::Transient("Leantime's user record has no id".to_owned()))?;
    Ok((user_id, user.get("source").and_then(Value::as_str) == Some("api")))
}

/// Leantime's booleans: `true`, `1`, `"1"`, and before 3.8 a scalar wrapped
/// in an array.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "0" && s != "false",
        Value::Array(items) => items.first().is_some_and(truthy),
        _ => false,
    }
}

fn rows<T: serde::de::DeserializeOwned>(value: &Value, method: Method) -> Result<Vec<T>, WatchError> {
    match value {
        // Leantime answers an empty list as `[]`, some versions as `false`.
        Value::Null | Value::Bool(false) => Ok(Vec::new()),
        // Read in place: a clone of every open ticket's JSON would double
        // the poll's peak memory, which glibc then keeps.
        other => <Vec<T> as serde::Deserialize>::deserialize(other)
            .map_err(|e| WatchError::Transient(format!("{}: unexpected answer from Leantime ({e})", method.name()))),
    }
}

/// Why a request to Leantime failed. A silent connection is told apart
/// from the rest, since a poll asks again at once on a fresh one.
#[derive(Debug, thiserror::Error)]
enum CallFailure {
    /// Nothing came back for the silence timeout: the connection is dead
    /// or the server stalled.
    #[error("no answer from {host} for {}", crate::web::seconds(*.silence))]
    Silent {
        /// The server's host (and port), never the whole address.
        host: String,
        /// The silence timeout that ran out.
        silence: Duration,
    },
    /// Anything else, already in the watcher's terms.
    #[error(transparent)]
    Other(#[from] WatchError),
}

impl From<CallFailure> for WatchError {
    fn from(failure: CallFailure) -> WatchError {
        match failure {
            silent @ CallFailure::Silent { .. } => WatchError::Transient(silent.to_string()),
            CallFailure::Other(e) => e,
        }
    }
}

/// The host and port of `base_url`, for messages: the path and anything
/// else an address may carry stay out of them.
fn host_of(base_url: &str) -> String {
    match reqwest::Url::parse(base_url) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => "the server".to_owned(),
        },
        Err(_) => "the server".to_owned(),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn request_error(e: RequestError) -> WatchError {
    match e {
        RequestError::Unauthorized(_) => WatchError::AuthFailed(e.to_string()),
        RequestError::RateLimited { retry_after } => WatchError::RateLimited { retry_after },
        RequestError::TooManyFailedSignIns => WatchError::RateLimited { retry_after: Duration::from_secs(60) },
        RequestError::NotJsonRpc(_) => WatchError::NeedsAttention(e.to_string()),
        RequestError::Http { status: 404 | 405 } => WatchError::NeedsAttention(format!(
            "this address is not a Leantime API (no {} there: {e}); check the server URL",
            rpc::ENDPOINT
        )),
        RequestError::Http { .. } | RequestError::TooLarge { .. } => WatchError::Transient(e.to_string()),
    }
}

/// A refused call: a missing permission or method needs the user (or their
/// admin); anything else may pass.
fn call_error(method: Method, doing: &str, e: CallError) -> WatchError {
    let short = method.name().rsplit('.').next().unwrap_or(method.name());
    match e.kind {
        CallErrorKind::PermissionDenied => WatchError::NeedsAttention(format!(
            "permission missing: Leantime refuses `{short}` to this account ({}); ask an admin for the role that allows it",
            e.message
        )),
        CallErrorKind::MethodNotFound => WatchError::NeedsAttention(format!(
            "server too old: this Leantime does not offer `{short}` ({e}); Vigie needs Leantime 3.8 or newer"
        )),
        _ => WatchError::Transient(format!("could not {doing} (`{short}`): {e}")),
    }
}

/// Notification messages may contain HTML (`<br/>`, `<i>`); a toast shows
/// plain text.
fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let text = out.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#039;", "'").replace("&nbsp;", " ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_in_messages_becomes_plain_text() {
        assert_eq!(plain_text("Sam added a new To-Do: <i>'Fix&amp;ship'</i><br/>now "), "Sam added a new To-Do: 'Fix&ship' now");
    }

    fn watcher(assigned_tasks: BadgeMode) -> LeantimeWatcher {
        let settings = TasksSettings { assigned_tasks, requests_per_minute: None };
        let secrets: Arc<dyn SecretStore> = Arc::new(crate::secrets::MemorySecrets::default());
        LeantimeWatcher::new(AccountId::new("pm"), "https://pm.example.com/", AuthKind::Token, settings, secrets)
    }

    #[tokio::test]
    async fn an_answer_of_50_mb_is_refused_with_the_limit() {
        for announced in [true, false] {
            let (base, _) = crate::web::huge::serve(200, announced).await;
            let settings = TasksSettings { assigned_tasks: BadgeMode::Count, requests_per_minute: None };
            let secrets: Arc<dyn SecretStore> = Arc::new(crate::secrets::MemorySecrets::default());
            let watcher = LeantimeWatcher::new(AccountId::new("pm"), &base, AuthKind::Token, settings, secrets);
            let refused = watcher.call(&crate::web::huge::client(), &SecretString::from("t"), &discovery_calls()).await;
            let expected = RequestError::TooLarge { limit: crate::web::BODY_LIMIT }.to_string();
            assert!(matches!(&refused, Err(WatchError::Transient(words)) if *words == expected), "{refused:?}");
        }
    }

    #[tokio::test]
    async fn a_silent_poll_is_asked_again_once_on_a_fresh_connection_then_says_no_answer_for_how_long() {
        let (base, accepted) = crate::web::counting::serve(false).await;
        let settings = TasksSettings { assigned_tasks: BadgeMode::Count, requests_per_minute: None };
        let secrets: Arc<dyn SecretStore> = Arc::new(crate::secrets::MemorySecrets::default());
        let silence = Duration::from_millis(300);
        let watcher = LeantimeWatcher::new(AccountId::new("pm"), &base, AuthKind::Token, settings, secrets)
            .with_timeouts(HttpTimeouts { silence, ..HttpTimeouts::default() });
        let mut client = watcher.http_client().expect("client");
        let started = std::time::Instant::now();
        let failed = watcher.poll_request(&mut client, &SecretString::from("a-secret-token"), &discovery_calls()).await;
        let host = base.trim_start_matches("http://");
        let expected = format!("no answer from {host} for 0.3 s");
        assert!(matches!(&failed, Err(WatchError::Transient(words)) if *words == expected), "{failed:?}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2, "one retry, on a fresh connection");
        assert!(started.elapsed() < Duration::from_secs(5), "two silences, not the total timeout: {:?}", started.elapsed());
    }

    #[test]
    fn messages_name_the_host_and_port_only() {
        assert_eq!(host_of("https://pm.example.com"), "pm.example.com");
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(host_of("https://user:secret@pm.example.com/leantime"), "pm.example.com");
        assert_eq!(host_of("not an address"), "the server");
    }

    fn methods(watcher: &LeantimeWatcher, version: Option<(u32, u32, u32)>, kind: PollKind) -> Vec<Method> {
        let info = ServerInfo { version, user_id: 7, api_user: false };
        watcher.poll_calls(&info, kind).iter().map(|c| c.method).collect()
    }

    #[test]
    fn the_version_picks_the_calls_of_a_full_poll() {
        let w = watcher(BadgeMode::Count);
        assert_eq!(methods(&w, Some((3, 9, 8)), PollKind::Full), [Method::GetUnreadCount, Method::GetInbox, Method::GetAllOpenUserTickets]);
        assert_eq!(methods(&w, Some((3, 9, 2)), PollKind::Full), [Method::GetUnreadCount, Method::GetAllOpenUserTickets]);
        assert_eq!(methods(&w, None, PollKind::Full), [Method::GetAllNotifications, Method::GetAllOpenUserTickets]);
    }

    #[test]
    fn a_count_only_poll_is_one_call_where_the_server_can_count() {
        let w = watcher(BadgeMode::Count);
        assert_eq!(methods(&w, Some((3, 9, 8)), PollKind::CountOnly), [Method::GetUnreadCount]);
        assert_eq!(methods(&w, None, PollKind::CountOnly), [Method::GetAllNotifications, Method::GetAllOpenUserTickets]);
    }

    #[test]
    fn ignored_tasks_are_not_even_fetched() {
        let w = watcher(BadgeMode::Ignore);
        assert_eq!(methods(&w, Some((3, 9, 8)), PollKind::Full), [Method::GetUnreadCount, Method::GetInbox]);
    }

    #[test]
    fn the_rate_limit_follows_the_version() {
        let info = |version| ServerInfo { version, user_id: 1, api_user: false };
        assert_eq!(info(None).default_rate_limit(), 10);
        assert_eq!(info(Some((3, 9, 6))).default_rate_limit(), 10);
        assert_eq!(info(Some((3, 9, 7))).default_rate_limit(), 120);
    }

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_tolerates_old_ones() {
        let cursor = Cursor { newest_notification: Some(1290), acknowledged: Some([412, 7].into()) };
        assert_eq!(cursor.to_string(), "n1290 ack:7,412");
        assert_eq!(Cursor::parse(&cursor.to_string()), cursor);
        assert_eq!(Cursor::parse("n1290"), Cursor { newest_notification: Some(1290), acknowledged: None });
        assert_eq!(Cursor::parse("ack:"), Cursor { newest_notification: None, acknowledged: Some(BTreeSet::new()) });
        assert_eq!(Cursor::parse("garbage"), Cursor::default());
    }

    #[test]
    fn the_tasks_settings_write_back_what_they_read() {
        let settings = TasksSettings { assigned_tasks: BadgeMode::Dot, requests_per_minute: Some(30) };
        let written = toml::to_string(&settings).expect("serializes");
        assert!(written.contains("assigned_tasks = \"dot\""), "{written}");
        assert!(written.contains("requests_per_minute = 30"), "{written}");
        assert_eq!(toml::from_str::<TasksSettings>(&written).expect("reads back"), settings);
        let default = toml::to_string(&TasksSettings::default()).expect("serializes");
        assert!(!default.contains("requests_per_minute"), "an unset limit is left out: {default}");
    }

    #[test]
    fn item_keys_name_notifications_and_tickets() {
        assert_eq!(ItemRef::parse("n1287"), Some(ItemRef::Notification(1287)));
        assert_eq!(ItemRef::parse("t42"), Some(ItemRef::Ticket(42)));
        assert_eq!(ItemRef::parse("x1"), None);
        assert_eq!(ItemRef::parse("n"), None);
        assert_eq!(ItemRef::parse(""), None);
    }
}
