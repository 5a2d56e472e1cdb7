//! The Rocket.Chat records a notifier reads (subscriptions, rooms, messages,
//! desktop notifications), shared by the REST and the DDP layers.
//!
//! The same record arrives over both transports with different date
//! encodings: REST sends ISO-8601 strings, DDP sends EJSON `{"$date": ms}`.
//! [`Date`] accepts both, so the rest of the watcher never sees the
//! difference. Every field a server version may leave out is optional or
//! defaulted: an unexpected absence must not drop a whole event.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A server date, from an ISO string (REST) or an EJSON `{"$date": ms}`
/// (DDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub Timestamp);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_date(&value).map(Date).ok_or_else(|| serde::de::Error::custom(format!("not a date: {value}")))
    }
}

/// Reads an ISO string, an EJSON date or a bare epoch-milliseconds number.
pub fn parse_date(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64().and_then(|ms| Timestamp::from_millisecond(ms).ok()),
        Value::Object(map) => map.get("$date").and_then(parse_date),
        _ => None,
    }
}

impl Date {
    /// The ISO-8601 form with milliseconds that `updatedSince` expects.
    pub fn iso(self) -> String {
        iso(self.0)
    }
}

/// `2024-05-01T10:00:12.345Z`.
pub fn iso(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A user as messages and notifications name them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct UserRef {
    /// The user id.
    #[serde(rename = "_id", default)]
    pub id: String,
    /// The login name.
    #[serde(default)]
    pub username: String,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
}

impl UserRef {
    /// The name to show: the display name, else the login name.
    pub fn display(&self) -> &str {
        self.name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.username)
    }
}

/// One user's membership of one room, with its unread state and its
/// notification preferences (`ISubscription`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The subscription id (not the room id).
    #[serde(rename = "_id")]
    pub id: String,
    /// The room id.
    #[serde(default)]
    pub rid: String,
    /// Room name; for a DM the other user's login name.
    #[serde(default)]
    pub name: String,
    /// Display name of the room.
    #[serde(default)]
    pub fname: Option<String>,
    /// Room type: `c`, `p`, `d`, `l`.
    #[serde(default)]
    pub t: String,
    /// Shown in the sidebar (`false`: hidden).
    #[serde(default)]
    pub open: Option<bool>,
    /// "Something new" in the room.
    #[serde(default)]
    pub alert: Option<bool>,
    /// Unread counter (what it counts depends on the server's settings).
    #[serde(default)]
    pub unread: u32,
    /// Direct @mentions since last read.
    #[serde(default)]
    pub user_mentions: u32,
    /// The room is archived.
    #[serde(default)]
    pub archived: Option<bool>,
    /// The user hides this room's unread badge.
    #[serde(default)]
    pub hide_unread_status: Option<bool>,
    /// The user muted every notification of this room.
    #[serde(default)]
    pub disable_notifications: Option<bool>,
    /// @all / @here do not notify.
    #[serde(default)]
    pub mute_group_mentions: Option<bool>,
    /// Per-room desktop preference: `all`, `mentions`, `nothing`, `default`.
    #[serde(default)]
    pub desktop_notifications: Option<String>,
    /// Where that preference came from: `subscription` or `user`.
    #[serde(default)]
    pub desktop_pref_origin: Option<String>,
    /// Per-room "show unread alert": `default`, `all`, `mentions`, `nothing`.
    #[serde(default)]
    pub unread_alert: Option<String>,
    /// Users whose messages are ignored here.
    #[serde(default)]
    pub ignored: Vec<String>,
    /// Words that count as a mention.
    #[serde(default)]
    pub user_highlights: Vec<String>,
    /// When the user last read the room.
    #[serde(default)]
    pub ls: Option<Date>,
    /// Last change of this record: the `updatedSince` cursor.
    #[serde(rename = "_updatedAt", default)]
    pub updated_at: Option<Date>,
}

impl Subscription {
    /// The name to show for the room.
    pub fn display_name(&self) -> &str {
        self.fname.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.name)
    }

    /// Counted by the official badge: visible, not hidden, not archived.
    pub fn counts_for_badge(&self) -> bool {
        self.open != Some(false) && self.hide_unread_status != Some(true) && self.archived != Some(true)
    }

    /// Nothing unread and no alert.
    pub fn is_read(&self) -> bool {
        self.unread == 0 && self.alert != Some(true)
    }

    /// The user silenced this room: muted, set to "nothing", or hidden
    /// from the unread badge (`hideUnreadStatus`; a room the user keeps
    /// out of the badge should not ping either).
    pub fn is_silenced(&self) -> bool {
        self.disable_notifications == Some(true)
            || self.desktop_notifications.as_deref() == Some("nothing")
            || self.hide_unread_status == Some(true)
    }

    /// The explicit per-room desktop preference, if any (`default` means
    /// none).
    pub fn desktop_pref(&self) -> Option<&str> {
        self.desktop_notifications.as_deref().filter(|p| *p != "default")
    }
}

/// A subscription as `subscriptions-changed` `removed` carries it (a slim
/// record from the trash).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RemovedSubscription {
    /// The subscription id.
    #[serde(rename = "_id", default)]
    pub id: String,
    /// The room id, when sent.
    #[serde(default)]
    pub rid: Option<String>,
}

/// A mention inside a message.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Mention {
    /// A user id, or `all` / `here` for group mentions.
    #[serde(rename = "_id", default)]
    pub id: String,
}

/// A chat message (`IMessage`), as far as a notifier needs it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The message id: the item key.
    #[serde(rename = "_id")]
    pub id: String,
    /// The room id.
    #[serde(default)]
    pub rid: String,
    /// The raw markdown text.
    #[serde(default)]
    pub msg: String,
    /// When it was sent.
    #[serde(default)]
    pub ts: Option<Date>,
    /// The sender.
    #[serde(default)]
    pub u: UserRef,
    /// Who is mentioned.
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// A system message type (user joined, …); absent for chat messages.
    #[serde(default)]
    pub t: Option<String>,
    /// Thread parent, for replies.
    #[serde(default)]
    pub tmid: Option<String>,
    /// A thread reply also shown in the room.
    #[serde(default)]
    pub tshow: Option<bool>,
    /// Set when the message was edited.
    #[serde(default)]
    pub edited_at: Option<Date>,
    /// End-to-end encrypted: `msg` is not readable.
    #[serde(default)]
    pub e2e: Option<String>,
    /// Attachments, for a placeholder preview when there is no text.
    #[serde(default)]
    pub attachments: Vec<Value>,
}

impl Message {
    /// A chat message in the room (not a system message, not a hidden
    /// thread reply, not an edit).
    pub fn is_plain_new(&self) -> bool {
        self.t.is_none() && (self.tmid.is_none() || self.tshow == Some(true)) && self.edited_at.is_none()
    }

    /// A toast's preview text.
    pub fn preview(&self) -> String {
        if self.e2e.is_some() {
            "(encrypted message)".to_owned()
        } else if self.msg.trim().is_empty() && !self.attachments.is_empty() {
            "(attachment)".to_owned()
        } else {
            self.msg.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    }
}

/// A room (`IRoom`), as far as a notifier needs it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// The room id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Room type.
    #[serde(default)]
    pub t: String,
    /// Room name.
    #[serde(default)]
    pub name: Option<String>,
    /// Members.
    #[serde(default)]
    pub users_count: Option<u32>,
    /// The newest message (when the server stores it).
    #[serde(default)]
    pub last_message: Option<Message>,
    /// Last change of the room; moves with every message.
    #[serde(rename = "_updatedAt", default)]
    pub updated_at: Option<Date>,
}

/// The ready-made desktop toast of the `<uid>/notification` stream
/// (`INotificationDesktop`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DesktopNotification {
    /// `#room` or the sender for a DM.
    #[serde(default)]
    pub title: String,
    /// `sender: text`, or the text for a DM.
    #[serde(default)]
    pub text: String,
    /// What it is about.
    #[serde(default)]
    pub payload: NotificationPayload,
}

/// The `payload` of a [`DesktopNotification`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NotificationPayload {
    /// The message id (empty for omnichannel).
    #[serde(rename = "_id", default)]
    pub id: String,
    /// The room id.
    #[serde(default)]
    pub rid: String,
    /// The thread id, if a thread reply.
    #[serde(default)]
    pub tmid: Option<String>,
    /// The sender.
    #[serde(default)]
    pub sender: UserRef,
    /// Room type.
    #[serde(rename = "type", default)]
    pub room_type: String,
    /// The room name (absent on newer servers).
    #[serde(default)]
    pub name: Option<String>,
    /// The message text.
    #[serde(default)]
    pub message: NotificationMessage,
}

/// The message part of a notification payload.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NotificationMessage {
    /// The text.
    #[serde(default)]
    pub msg: String,
}

/// The logged-in user (`/api/v1/me`), with the preferences that decide
/// notifications and the badge.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Me {
    /// The user id.
    #[serde(rename = "_id", default)]
    pub id: String,
    /// The login name.
    #[serde(default)]
    pub username: String,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Settings, with the server defaults merged in.
    #[serde(default)]
    pub settings: MeSettings,
    /// Which sign-in methods are set up (only their flags, never secrets).
    #[serde(default)]
    pub services: Services,
}

/// `services` of [`Me`]: what `/api/v1/me` tells of the sign-in methods.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Services {
    /// Codes from an authenticator app.
    #[serde(default)]
    pub totp: Option<Enabled>,
    /// Codes sent by e-mail.
    #[serde(default)]
    pub email2fa: Option<Enabled>,
}

/// A sign-in method's `{"enabled": bool}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Enabled {
    /// Whether it is on.
    #[serde(default)]
    pub enabled: bool,
}

impl Services {
    /// The two-factor methods that are on, in words ("an authenticator
    /// app", "codes by e-mail"); `None` when the server did not say.
    pub fn two_factor(&self) -> Option<Vec<&'static str>> {
        if self.totp.is_none() && self.email2fa.is_none() {
            return None;
        }
        let mut on = Vec::new();
        if self.totp.is_some_and(|m| m.enabled) {
            on.push("an authenticator app");
        }
        if self.email2fa.is_some_and(|m| m.enabled) {
            on.push("codes by e-mail");
        }
        Some(on)
    }
}

/// `settings` of [`Me`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MeSettings {
    /// `settings.preferences`.
    #[serde(default)]
    pub preferences: Preferences,
}

/// The user's preferences that matter here.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    /// Default desktop notification preference (`all` on a default server).
    #[serde(default)]
    pub desktop_notifications: Option<String>,
    /// Show the unread dot for rooms without a count.
    #[serde(default)]
    pub unread_alert: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_from_iso_strings_and_ejson_alike() {
        let iso: Date = serde_json::from_str("\"2024-05-01T10:00:12.345Z\"").expect("iso");
        let ejson: Date = serde_json::from_str("{\"$date\":1714557612345}").expect("ejson");
        assert_eq!(iso, ejson);
        assert_eq!(ejson.iso(), "2024-05-01T10:00:12.345Z");
    }

    #[test]
    fn me_from_the_fixture_says_two_factor_authentication_is_off() {
        let text = include_str!("../../tests/fixtures/rocketchat/rest-me.response.json");
        let me: Me = serde_json::from_str(text).expect("me");
        assert_eq!(me.services.two_factor(), Some(Vec::new()));
        assert_eq!(Me::default().services.two_factor(), None, "not told");
        let on = Services { totp: Some(Enabled { enabled: true }), email2fa: Some(Enabled { enabled: false }) };
        assert_eq!(on.two_factor(), Some(vec!["an authenticator app"]));
    }

    #[test]
    fn a_subscription_from_the_fixture_reads_its_preferences() {
        let text = include_str!("../../tests/fixtures/rocketchat/rest-subscriptions-get.response.json");
        let body: Value = serde_json::from_str(text).expect("json");
        let subs: Vec<Subscription> = serde_json::from_value(body["update"].clone()).expect("subscriptions");
        assert_eq!(subs.len(), 3);
        assert_eq!(subs[0].user_mentions, 1);
        assert!(subs[2].is_silenced());
        assert!(!subs[2].counts_for_badge());
        assert_eq!(subs[1].display_name(), "Bob Builder");
    }
}
