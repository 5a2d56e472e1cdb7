//! Rocket.Chat's REST API (`/api/…`): the version probe, the user, the
//! subscription list and its delta, the messages of a room since a date,
//! "mark read" and the password login.
//!
//! Error bodies differ by server generation (6.x sends only `status` and
//! `message`, 7.x adds `success` and `error`, 8.x in breaking-change mode
//! sends only `success` and `error`), so every error is read by status first
//! and its words are taken from whichever field is there. A rate limit's wait
//! comes from `X-RateLimit-Reset`, an absolute time in epoch
//! **milliseconds**; there is no `Retry-After`.
//!
//! The credentials travel as headers on each request and are never part of
//! an error or log line.

use std::time::Duration;

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::wire::{Me, Message, Room, Subscription};

/// Why a REST call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// HTTP 401: the token is wrong or expired.
    #[error("Rocket.Chat refused the token (HTTP 401: {0})")]
    Unauthorized(String),
    /// HTTP 429.
    #[error("Rocket.Chat asks to slow down for {} s", .0.as_secs())]
    RateLimited(Duration),
    /// Another HTTP failure.
    #[error("Rocket.Chat answered HTTP {status} to {what}: {message}")]
    Http {
        /// The call.
        what: String,
        /// The status.
        status: u16,
        /// The server's words.
        message: String,
    },
    /// No answer, or not the API.
    #[error("{0}")]
    Transport(String),
    /// The answer was larger than [`crate::web::BODY_LIMIT`]; it was not
    /// read past it.
    #[error("{what}: Rocket.Chat's answer is larger than {} KiB, more than it can ever need to be", .limit / 1024)]
    TooLarge {
        /// The call.
        what: String,
        /// The limit, in bytes.
        limit: usize,
    },
}

impl RestError {
    /// The same error with `secrets` cut out of the server's words.
    pub(crate) fn redacted(self, secrets: &[&SecretString]) -> RestError {
        let cut = |words: String| crate::secrets::redact(&words, secrets);
        match self {
            RestError::Unauthorized(words) => RestError::Unauthorized(cut(words)),
            RestError::Http { what, status, message } => RestError::Http { what, status, message: cut(message) },
            RestError::Transport(words) => RestError::Transport(cut(words)),
            other @ (RestError::RateLimited(_) | RestError::TooLarge { .. }) => other,
        }
    }
}

/// One Rocket.Chat server, signed in as one user.
pub struct Rest {
    client: reqwest::Client,
    base: String,
    user_id: String,
    token: SecretString,
}

/// `subscriptions.get`: changed records and removed subscription ids.
#[derive(Debug, Default)]
pub struct SubscriptionDelta {
    /// New or changed subscriptions.
    pub update: Vec<Subscription>,
    /// Ids of subscriptions removed since then.
    pub remove: Vec<String>,
}

impl Rest {
    /// A client for `base` (e.g. `https://chat.example.org`).
    pub fn new(client: reqwest::Client, base: &str, user_id: &str, token: SecretString) -> Rest {
        Rest { client, base: base.trim_end_matches('/').to_owned(), user_id: user_id.to_owned(), token }
    }

    /// The server version (`/api/info`, no sign-in needed), e.g. `7.4.1`.
    pub async fn version(&self) -> Result<Option<String>, RestError> {
        server_version(&self.client, &self.base).await
    }

    /// The signed-in user and their preferences.
    pub async fn me(&self) -> Result<Me, RestError> {
        let body = self.get("/api/v1/me", &[]).await?;
        me(body)
    }

    /// Every subscription (`since = None`) or those changed after `since`.
    pub async fn subscriptions(&self, since: Option<&str>) -> Result<SubscriptionDelta, RestError> {
        let query: Vec<(&str, &str)> = since.map(|s| vec![("updatedSince", s)]).unwrap_or_default();
        let body = self.get("/api/v1/subscriptions.get", &query).await?;
        subscription_delta(&body)
    }

    /// Every room (`since = None`) or those changed after `since`, each
    /// with its member count and newest message.
    pub async fn rooms(&self, since: Option<&str>) -> Result<Vec<Room>, RestError> {
        let query: Vec<(&str, &str)> = since.map(|s| vec![("updatedSince", s)]).unwrap_or_default();
        let body = self.get("/api/v1/rooms.get", &query).await?;
        rooms(&body)
    }

    /// Messages of `rid` created or changed after `since`.
    pub async fn messages_since(&self, rid: &str, since: &str) -> Result<Vec<Message>, RestError> {
        let body = self.get("/api/v1/chat.syncMessages", &[("roomId", rid), ("lastUpdate", since)]).await?;
        synced_messages(&body)
    }

    /// The room of message `id` (`chat.getMessage`).
    pub async fn room_of(&self, id: &str) -> Result<String, RestError> {
        let body = self.get("/api/v1/chat.getMessage", &[("msgId", id)]).await?;
        room_of_message(&body, id)
    }

    /// Marks room `rid` read for the user (on every device).
    pub async fn mark_read(&self, rid: &str) -> Result<(), RestError> {
        self.post("/api/v1/subscriptions.read", &serde_json::json!({ "rid": rid })).await.map(|_| ())
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, RestError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| RestError::Transport(format!("{}: not a valid server address ({e})", self.base)))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let request = self.client.get(url);
        self.send(path, request).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, RestError> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        self.send(path, request).await
    }

    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Value, RestError> {
        let mut token = reqwest::header::HeaderValue::from_str(self.token.expose_secret())
            .map_err(|_| RestError::Unauthorized("the stored token contains characters a token cannot have".to_owned()))?;
        // Kept out of any debug output of the request.
        token.set_sensitive(true);
        let request = request.header("X-User-Id", &self.user_id).header("X-Auth-Token", token);
        let response = request.send().await.map_err(|e| transport(&self.base, &e))?;
        read_response(what, response).await.map_err(|e| e.redacted(&[&self.token]))
    }
}

/// The version of the server at `base` (`/api/info`), asked without
/// credentials: `None` when it does not tell.
pub async fn server_version(client: &reqwest::Client, base: &str) -> Result<Option<String>, RestError> {
    let base = base.trim_end_matches('/');
    let response = client.get(format!("{base}/api/info")).send().await.map_err(|e| transport(base, &e))?;
    let body = read_response("/api/info", response).await?;
    Ok(body.get("version").and_then(Value::as_str).map(str::to_owned))
}

/// Reads a response into its JSON body, or the error its status and body
/// describe.
pub(crate) async fn read_response(what: &str, response: reqwest::Response) -> Result<Value, RestError> {
    let status = response.status().as_u16();
    let reset = response.headers().get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = read_body(what, response).await?;
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    classify(what, status, reset.as_deref(), body, Timestamp::now())
}

/// The body of `response`, up to [`crate::web::BODY_LIMIT`].
pub(crate) async fn read_body(what: &str, response: reqwest::Response) -> Result<Vec<u8>, RestError> {
    crate::web::read_body(response, crate::web::BODY_LIMIT).await.map_err(|e| match e {
        crate::web::BodyError::TooLarge { limit } => RestError::TooLarge { what: what.to_owned(), limit },
        crate::web::BodyError::Transport(e) => RestError::Transport(format!("{what}: {e}")),
    })
}

/// The outcome of one HTTP exchange (status, `X-RateLimit-Reset`, the body
/// if it is JSON): the body, or the error they describe. Pure.
pub fn classify(what: &str, status: u16, reset: Option<&str>, body: Option<Value>, now: Timestamp) -> Result<Value, RestError> {
    let words = body.as_ref().map(error_words).unwrap_or_default();
    match status {
        200..=299 => match body {
            Some(body) => Ok(body),
            None => Err(RestError::Transport(format!(
                "{what}: the answer is not JSON; is the server address that of Rocket.Chat?"
            ))),
        },
        401 => Err(RestError::Unauthorized(if words.is_empty() { "unauthorized".to_owned() } else { words })),
        429 => Err(RestError::RateLimited(rate_limit_wait(reset, &words, now))),
        status => Err(RestError::Http { what: what.to_owned(), status, message: if words.is_empty() { "no details".to_owned() } else { words } }),
    }
}

/// The human words of an error body of any generation.
pub fn error_words(body: &Value) -> String {
    ["message", "error", "reason"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or_default()
        .to_owned()
}

/// The wait a 429 asks for: until `X-RateLimit-Reset` (epoch ms), else the
/// seconds in the message, else a minute; at least one second.
pub fn rate_limit_wait(reset: Option<&str>, words: &str, now: Timestamp) -> Duration {
    let from_reset = reset
        .and_then(|r| r.trim().parse::<i64>().ok())
        // Saturating: the header is the server's, and may be any number.
        .map(|ms| Duration::from_millis(u64::try_from(ms.saturating_sub(now.as_millisecond())).unwrap_or(0)));
    let from_text = || {
        let (_, after) = words.split_once("wait ")?;
        after.split_whitespace().next()?.parse::<u64>().ok().map(Duration::from_secs)
    };
    from_reset.or_else(from_text).unwrap_or(Duration::from_secs(60)).max(Duration::from_secs(1))
}

/// `subscriptions.get`'s body.
pub fn subscription_delta(body: &Value) -> Result<SubscriptionDelta, RestError> {
    let update = decode("subscriptions.get", body.get("update").cloned().unwrap_or(Value::Array(Vec::new())))?;
    let remove = body
        .get("remove")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|s| s.get("_id").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default();
    Ok(SubscriptionDelta { update, remove })
}

/// `rooms.get`'s body.
pub fn rooms(body: &Value) -> Result<Vec<Room>, RestError> {
    decode("rooms.get", body.get("update").cloned().unwrap_or(Value::Array(Vec::new())))
}

/// `chat.syncMessages`'s body.
pub fn synced_messages(body: &Value) -> Result<Vec<Message>, RestError> {
    let updated = body.get("result").and_then(|r| r.get("updated")).cloned().unwrap_or(Value::Array(Vec::new()));
    decode("chat.syncMessages", updated)
}

/// `chat.getMessage`'s body: the room of message `id`.
pub fn room_of_message(body: &Value, id: &str) -> Result<String, RestError> {
    body.get("message")
        .and_then(|m| m.get("rid"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| RestError::Transport(format!("chat.getMessage: no room for message {id}")))
}

/// `me`'s body.
pub fn me(body: Value) -> Result<Me, RestError> {
    decode("/api/v1/me", body)
}

fn decode<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, RestError> {
    serde_json::from_value(value).map_err(|e| RestError::Transport(format!("{what}: unexpected answer from Rocket.Chat ({e})")))
}

pub(crate) fn transport(base: &str, e: &reqwest::Error) -> RestError {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_timeout() { "timed out".to_owned() } else { format!("cannot reach the server ({cause})") };
    RestError::Transport(format!("{base}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/rocketchat/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).expect("json")
    }

    #[tokio::test]
    async fn an_answer_of_50_mb_is_refused_with_the_limit() {
        for announced in [true, false] {
            let (base, _) = crate::web::huge::serve(200, announced).await;
            let rest = Rest::new(crate::web::huge::client(), &base, "u1", SecretString::from("t"));
            let refused = rest.me().await.expect_err("too large");
            assert_eq!(refused, RestError::TooLarge { what: "/api/v1/me".to_owned(), limit: crate::web::BODY_LIMIT });
        }
    }

    #[test]
    fn a_429_waits_until_the_reset_in_epoch_milliseconds() {
        let now = Timestamp::from_millisecond(1_714_557_612_321).expect("time");
        let body = fixture("rest-too-many-requests.429.json");
        let err = classify("x", 429, Some("1714557654321"), Some(body.clone()), now).expect_err("limited");
        assert_eq!(err, RestError::RateLimited(Duration::from_secs(42)));
        // Without the header, the message's seconds.
        let err = classify("x", 429, None, Some(body), now).expect_err("limited");
        assert_eq!(err, RestError::RateLimited(Duration::from_secs(42)));
    }

    #[test]
    fn unauthorized_bodies_of_every_generation_are_read() {
        let now = Timestamp::now();
        let v7 = fixture("rest-unauthorized.401.json");
        let v6 = serde_json::json!({"status": "error", "message": "You must be logged in to do this."});
        let v8 = serde_json::json!({"success": false, "error": "unauthorized"});
        for (body, words) in [(v7, "You must be logged in to do this."), (v6, "You must be logged in to do this."), (v8, "unauthorized")] {
            assert_eq!(classify("x", 401, None, Some(body), now), Err(RestError::Unauthorized(words.to_owned())));
        }
    }
}
