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

pub mod rpc;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::model::{AccountId, Item, Source};
use crate::secrets::SecretStore;
use crate::watcher::{Update, WatchError, Watcher, WatcherContext};
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

/// Where and how to reach one Leantime account.
pub struct LeantimeWatcher {
    account: AccountId,
    base_url: String,
    auth: AuthKind,
    secrets: Arc<dyn SecretStore>,
}

/// What the first exchange with the server told us.
#[derive(Debug, Clone, PartialEq)]
struct ServerInfo {
    /// `None` before 3.9 (no `getSystemInfo`).
    version: Option<(u32, u32, u32)>,
    user_id: i64,
    /// The credential is an API key's pseudo-user (`source: "api"`).
    api_user: bool,
}

impl ServerInfo {
    fn has_inbox(&self) -> bool {
        self.version.is_some_and(|v| v >= (3, 9, 5))
    }

    fn has_unread_count(&self) -> bool {
        self.version.is_some()
    }
}

/// Requests in flight may take this long before we call the server dead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Notifications fetched per poll (Leantime caps pages at 100).
const INBOX_PAGE: u32 = 50;

impl LeantimeWatcher {
    /// A watcher for `base_url` (without `/api/jsonrpc`), reading its secret
    /// from `secrets` at each (re)connect.
    pub fn new(account: AccountId, base_url: &str, auth: AuthKind, secrets: Arc<dyn SecretStore>) -> Self {
        LeantimeWatcher { account, base_url: base_url.trim_end_matches('/').to_owned(), auth, secrets }
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
        let url = format!("{}{}", self.base_url, rpc::ENDPOINT);
        let mut request = client.post(&url).header("Content-Type", "application/json").body(rpc::batch_body(calls));
        request = match self.auth {
            AuthKind::Token => request.bearer_auth(secret.expose_secret()),
            AuthKind::ApiKey => request.header("x-api-key", secret.expose_secret()),
        };
        let response = request.send().await.map_err(|e| transport_error(&self.base_url, &e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.map_err(|e| transport_error(&self.base_url, &e))?;
        rpc::parse_batch(status, retry_after.as_deref(), &body, calls.len()).map_err(request_error)
    }

    async fn discover(&self, client: &reqwest::Client, secret: &SecretString) -> Result<ServerInfo, WatchError> {
        let calls = [Call::new(Method::GetSystemInfo, json!({})), Call::new(Method::GetUser, json!({}))];
        let mut results = self.call(client, secret, &calls).await?.into_iter();
        let (info, user) = (results.next(), results.next());
        let version = match info {
            Some(Ok(value)) => rpc::version(&value),
            // Before 3.9 there is no getSystemInfo: the old code path.
            Some(Err(e)) if e.kind == CallErrorKind::MethodNotFound => None,
            Some(Err(e)) => return Err(call_error("reading the server version", e)),
            None => None,
        };
        let user = match user {
            Some(Ok(user)) => user,
            Some(Err(e)) => return Err(call_error("reading who the token belongs to", e)),
            None => return Err(WatchError::Transient("Leantime did not say who the token belongs to".to_owned())),
        };
        let user_id = user
            .get("id")
            .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
            .ok_or_else(|| WatchError::Transient("Leantime's user record has no id".to_owned()))?;
        let api_user = user.get("source").and_then(Value::as_str) == Some("api");
        if api_user {
            tracing::warn!(account = %self.account, "an API key sees its own pseudo-user's notifications, not a person's");
        }
        Ok(ServerInfo { version, user_id, api_user })
    }

    fn poll_calls(info: &ServerInfo) -> Vec<Call> {
        let mut calls = Vec::with_capacity(3);
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
        calls.push(Call::new(Method::GetAllOpenUserTickets, json!({ "userId": info.user_id })));
        calls
    }

    /// One poll's update from the batch answer.
    fn update(&self, calls: &[Call], results: Vec<rpc::CallResult>) -> Result<Update, WatchError> {
        let mut notifications: Vec<Notification> = Vec::new();
        let mut tickets: Vec<Ticket> = Vec::new();
        let mut count = None;
        for (call, result) in calls.iter().zip(results) {
            let value = result.map_err(|e| call_error(call.method.name(), e))?;
            match call.method {
                Method::GetUnreadCount => count = rpc::unread_count(&value),
                Method::GetInbox | Method::GetAllNotifications => notifications = rows(&value, call.method)?,
                Method::GetAllOpenUserTickets => tickets = rows(&value, call.method)?,
                Method::GetSystemInfo | Method::GetUser | Method::MarkRead => {}
            }
        }
        notifications.retain(Notification::is_unread);
        let count = count.unwrap_or_else(|| u32::try_from(notifications.len()).unwrap_or(u32::MAX));
        let mut items: Vec<Item> = notifications.iter().rev().map(|n| self.notification_item(n)).collect();
        items.extend(tickets.iter().map(|t| self.ticket_item(t)));
        let cursor = notifications.iter().map(|n| n.id).max().map(|id| format!("n{id}"));
        Ok(Update { items, unread: Some(count), cursor, ..Update::default() })
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
        let client = http_client()?;
        ctx.set_polling().await;
        let info = self.discover(&client, &secret).await?;
        tracing::info!(account = %self.account, version = ?info.version, api_user = info.api_user, "connected to Leantime");
        let calls = Self::poll_calls(&info);
        let mut seen_max: Option<String> = ctx.cursor().map(str::to_owned);
        while let Some(reason) = ctx.next_poll().await {
            tracing::debug!(account = %self.account, ?reason, "polling Leantime");
            let results = self.call(&client, &secret, &calls).await?;
            let update = self.update(&calls, results)?;
            let changed = update.cursor.is_some() && update.cursor != seen_max;
            seen_max = update.cursor.clone().or(seen_max);
            ctx.publish(update).await;
            ctx.poll_succeeded(changed);
        }
        Ok(())
    }
}

impl Watcher for LeantimeWatcher {
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(self.run_once(ctx))
    }
}

fn rows<T: serde::de::DeserializeOwned>(value: &Value, method: Method) -> Result<Vec<T>, WatchError> {
    match value {
        // Leantime answers an empty list as `[]`, some versions as `false`.
        Value::Null | Value::Bool(false) => Ok(Vec::new()),
        other => serde_json::from_value(other.clone())
            .map_err(|e| WatchError::Transient(format!("{}: unexpected answer from Leantime ({e})", method.name()))),
    }
}

/// The HTTP client: rustls with the ring provider (it builds without cmake)
/// and the platform's certificate verifier.
fn http_client() -> Result<reqwest::Client, WatchError> {
    // reqwest needs a process-wide provider when built without its own; a
    // second install is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("Vigie/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| WatchError::Transient(format!("cannot set up HTTPS: {e}")))
}

fn transport_error(base_url: &str, e: &reqwest::Error) -> WatchError {
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        format!("cannot connect ({})", root_cause(e))
    } else {
        root_cause(e)
    };
    WatchError::Transient(format!("{base_url}: {what}"))
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
        RequestError::Http { .. } | RequestError::NotJsonRpc(_) => WatchError::Transient(e.to_string()),
    }
}

fn call_error(what: &str, e: CallError) -> WatchError {
    WatchError::Transient(format!("{what}: {e}"))
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

    #[test]
    fn the_version_picks_the_calls_of_one_poll() {
        let names = |version| {
            let info = ServerInfo { version, user_id: 7, api_user: false };
            LeantimeWatcher::poll_calls(&info).iter().map(|c| c.method).collect::<Vec<_>>()
        };
        assert_eq!(names(Some((3, 9, 8))), [Method::GetUnreadCount, Method::GetInbox, Method::GetAllOpenUserTickets]);
        assert_eq!(names(Some((3, 9, 2))), [Method::GetUnreadCount, Method::GetAllOpenUserTickets]);
        assert_eq!(names(None), [Method::GetAllNotifications, Method::GetAllOpenUserTickets]);
    }
}
