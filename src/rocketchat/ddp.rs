//! DDP, Meteor's realtime protocol, as Rocket.Chat speaks it on
//! `/websocket`: the frames we send and the frames we read. No I/O.
//!
//! One WebSocket text frame is one JSON object. Frames without a `msg` field
//! (the legacy `{"server_id":"0"}` greeting) and unknown `msg` kinds are
//! skipped, never an error: servers add frames (`added` for collections we do
//! not use) and the client must not fall over them.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// A frame from the server that the client acts on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "msg", rename_all = "lowercase")]
pub enum ServerFrame {
    /// The handshake was accepted.
    Connected {
        /// The session id.
        #[serde(default)]
        session: String,
    },
    /// The handshake was refused (no common protocol version).
    Failed {
        /// The version the server proposes.
        #[serde(default)]
        version: Option<String>,
    },
    /// A heartbeat to answer with a `pong` echoing `id`.
    Ping {
        /// Echoed in the pong.
        #[serde(default)]
        id: Option<String>,
    },
    /// The answer to our ping.
    Pong {
        /// Our ping's id.
        #[serde(default)]
        id: Option<String>,
    },
    /// A method's outcome.
    Result {
        /// The method call's id.
        id: String,
        /// The value (absent for `undefined`).
        #[serde(default)]
        result: Option<Value>,
        /// The error, when it failed.
        #[serde(default)]
        error: Option<MeteorError>,
    },
    /// A subscription is live.
    Ready {
        /// The subscription ids.
        #[serde(default)]
        subs: Vec<String>,
    },
    /// A subscription was refused or ended.
    Nosub {
        /// The subscription id.
        id: String,
        /// Why, when refused.
        #[serde(default)]
        error: Option<MeteorError>,
    },
    /// A stream event.
    Changed {
        /// `stream-<name>`.
        #[serde(default)]
        collection: String,
        /// `eventName` and `args`.
        #[serde(default)]
        fields: ChangedFields,
    },
    /// A connection-level protocol error.
    Error {
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// A frame kind we do not use (`updated`, `added`, …).
    #[serde(other)]
    Other,
}

/// The `fields` of a stream event.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangedFields {
    /// `<uid>/<event>` for `stream-notify-user`.
    #[serde(default)]
    pub event_name: String,
    /// The event's arguments.
    #[serde(default)]
    pub args: Vec<Value>,
}

/// A Meteor error (`Meteor.Error#toJSON`): `error` is a string code or an
/// HTTP-like number.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeteorError {
    /// The code: `"not-allowed"`, `403`, `"too-many-requests"`, …
    #[serde(default)]
    pub error: Value,
    /// The human reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// `reason [code]`.
    #[serde(default)]
    pub message: Option<String>,
    /// Extra data (`timeToReset` for rate limits, 2FA `method`).
    #[serde(default)]
    pub details: Option<Value>,
}

impl MeteorError {
    /// The code as text (`403`, `not-allowed`).
    pub fn code(&self) -> String {
        match &self.error {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// What to show: the reason, else the message, else the code.
    pub fn describe(&self) -> String {
        self.reason
            .clone()
            .or_else(|| self.message.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("[{}]", self.code()))
    }

    /// A refused or expired login token.
    pub fn is_logged_out(&self) -> bool {
        self.code() == "403"
    }

    /// The DDP rate limiter's refusal, with the wait it asks for.
    pub fn rate_limit(&self) -> Option<Duration> {
        if self.code() != "too-many-requests" {
            return None;
        }
        let ms = self.details.as_ref().and_then(|d| d.get("timeToReset")).and_then(Value::as_u64);
        let from_text = || {
            let text = self.reason.as_deref().or(self.message.as_deref())?;
            let (_, after) = text.split_once("wait ")?;
            // Saturating: the number is the server's, and may be any size.
            after.split_whitespace().next()?.parse::<u64>().ok().map(|s| s.saturating_mul(1_000))
        };
        Some(Duration::from_millis(ms.or_else(from_text).unwrap_or(60_000)))
    }
}

/// Parses one text frame; `Ok(None)` for frames without `msg` (the
/// `server_id` greeting).
pub fn parse(text: &str) -> Result<Option<ServerFrame>, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    if value.get("msg").is_none() {
        return Ok(None);
    }
    serde_json::from_value(value).map(Some)
}

/// The handshake, exactly as `@rocket.chat/ddp-client` sends it.
pub fn connect() -> String {
    json!({"msg": "connect", "version": "1", "support": ["1", "pre2", "pre1"]}).to_string()
}

/// A heartbeat.
pub fn ping(id: &str) -> String {
    json!({"msg": "ping", "id": id}).to_string()
}

/// The answer to a server ping.
pub fn pong(id: Option<&str>) -> String {
    match id {
        Some(id) => json!({"msg": "pong", "id": id}).to_string(),
        None => json!({"msg": "pong"}).to_string(),
    }
}

/// `login` with a resume token or personal access token. The frame holds
/// the secret: it goes to the socket and nowhere else.
pub fn login_resume(id: &str, token: &str) -> String {
    json!({"msg": "method", "method": "login", "id": id, "params": [{"resume": token}]}).to_string()
}

/// A subscription to one `stream-notify-user` event of `uid`, with the
/// current object form of the options.
pub fn sub_notify_user(id: &str, uid: &str, event: &str) -> String {
    json!({
        "msg": "sub",
        "id": id,
        "name": "stream-notify-user",
        "params": [format!("{uid}/{event}"), {"useCollection": false, "args": []}],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/rocketchat/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_greeting_is_skipped_and_known_frames_parse() {
        assert_eq!(parse(&fixture("ddp-server-hello.json")).expect("json"), None);
        assert!(matches!(parse(&fixture("ddp-connected.json")), Ok(Some(ServerFrame::Connected { .. }))));
        assert!(matches!(parse(&fixture("ddp-ping-server.json")), Ok(Some(ServerFrame::Ping { id: None }))));
        assert!(matches!(parse(&fixture("ddp-updated-login.json")), Ok(Some(ServerFrame::Other))));
        let Ok(Some(ServerFrame::Changed { collection, fields })) = parse(&fixture("ddp-changed-notification.json")) else {
            panic!("a changed frame")
        };
        assert_eq!(collection, "stream-notify-user");
        assert_eq!(fields.event_name, "aobEdbYhXfu5hkeqG/notification");
    }

    #[test]
    fn errors_are_classified() {
        let Ok(Some(ServerFrame::Result { error: Some(e), .. })) = parse(&fixture("ddp-result-login-error-403.json")) else {
            panic!("an error result")
        };
        assert!(e.is_logged_out());
        let Ok(Some(ServerFrame::Result { error: Some(e), .. })) = parse(&fixture("ddp-result-error-too-many-requests.json")) else {
            panic!("an error result")
        };
        assert_eq!(e.rate_limit(), Some(Duration::from_millis(11_873)));
        let Ok(Some(ServerFrame::Nosub { error: Some(e), .. })) = parse(&fixture("ddp-nosub-not-allowed.json")) else {
            panic!("a nosub")
        };
        assert_eq!(e.code(), "not-allowed");
        assert_eq!(e.describe(), "[not-allowed]");
    }

    #[test]
    fn the_handshake_matches_the_fixture() {
        let ours: Value = serde_json::from_str(&connect()).expect("json");
        let theirs: Value = serde_json::from_str(&fixture("ddp-client-connect.json")).expect("json");
        assert_eq!(ours, theirs);
    }
}
