//! What the settings window sees: the views of the core's state and events,
//! and the errors of its commands. Every type the UI receives is here
//! (mirrored in `ui/src/ipc.ts`); the core's domain types never cross the
//! process boundary directly.

use jiff::Timestamp;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use crate::{CoreEvent, Snapshot};
use crate::event::AccountSnapshot;
use crate::model::Connectivity;
use crate::config::edit::{EditError, FieldError};
use crate::pause::PauseChoice;
use crate::probe::ProbeStep;
use crate::settings::SettingsError;

/// Name of the event carrying a fresh [`Overview`].
pub const OVERVIEW_CHANGED: &str = "overview-changed";
/// Name of the event carrying one [`EventView`] (things that happened; the
/// states they lead to arrive with `overview-changed`).
pub const CORE_EVENT: &str = "core-event";

/// Everything the settings window shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// The built-in demo runs (no account configured, or `--demo`).
    pub demo: bool,
    /// Notifications paused until then.
    pub paused_until: Option<Timestamp>,
    /// In quiet hours until then.
    pub quiet_until: Option<Timestamp>,
    /// The unified badge.
    pub badge: BadgeView,
    /// Every account, in config order.
    pub accounts: Vec<AccountView>,
    /// Problems not tied to an account (invalid config, unwritable state).
    pub problems: Vec<String>,
}

/// The badge as the tray draws it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadgeView {
    /// Unread counted items.
    pub count: u32,
    /// Something new without a count.
    pub dot: bool,
    /// What the tray icon shows ("3", "99+", "•", "").
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
/// One account's live state.
pub struct AccountView {
    /// Its id in the config file.
    pub id: String,
    /// What the user calls it.
    pub name: String,
    /// `mail`, `chat` or `tasks`.
    pub source: &'static str,
    /// Its connection state.
    pub state: StateView,
    /// Unread items, where the account counts them.
    pub unread: Option<u32>,
    /// Something new without a count.
    pub dot: bool,
    /// When it last announced something.
    pub last_event_at: Option<Timestamp>,
    /// The last problem, in plain words.
    pub last_error: Option<String>,
    /// Something the user should know that is not an error.
    pub notice: Option<String>,
}

/// A connection state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateView {
    /// `connecting`, `live`, `polling`, `backingOff`, `rateLimited`,
    /// `needsAttention`, `authFailed` or `disabled`.
    pub kind: &'static str,
    /// Why, where the state has a reason.
    pub reason: Option<String>,
    /// The next attempt, when waiting.
    pub until: Option<Timestamp>,
}

impl From<&Connectivity> for StateView {
    fn from(state: &Connectivity) -> Self {
        let (kind, reason, until) = match state {
            Connectivity::Connecting => ("connecting", None, None),
            Connectivity::LivePush => ("live", None, None),
            Connectivity::Polling => ("polling", None, None),
            Connectivity::BackingOff { reason, until } => ("backingOff", Some(reason.clone()), Some(*until)),
            Connectivity::RateLimited { until } => ("rateLimited", None, Some(*until)),
            Connectivity::NeedsAttention { reason } => ("needsAttention", Some(reason.clone()), None),
            Connectivity::AuthFailed { reason } => ("authFailed", Some(reason.clone()), None),
            Connectivity::Disabled { reason } => ("disabled", reason.clone(), None),
        };
        StateView { kind, reason, until }
    }
}

impl From<&AccountSnapshot> for AccountView {
    fn from(a: &AccountSnapshot) -> Self {
        AccountView {
            id: a.id.to_string(),
            name: a.name.clone(),
            source: a.source.as_str(),
            state: StateView::from(&a.connectivity),
            unread: a.unread.count,
            dot: a.unread.dot,
            last_event_at: a.last_event_at,
            last_error: a.last_error.clone(),
            notice: a.notice.clone(),
        }
    }
}

impl From<&Snapshot> for Overview {
    fn from(s: &Snapshot) -> Self {
        Overview {
            demo: s.demo,
            paused_until: s.paused_until,
            quiet_until: s.quiet_until,
            badge: BadgeView { count: s.badge.count, dot: s.badge.dot, label: s.badge.label() },
            accounts: s.accounts.iter().map(AccountView::from).collect(),
            problems: s.problems.clone(),
        }
    }
}

/// Something that happened, as the webview receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum EventView {
    /// A new item (one per item of a `NewItems` event).
    #[allow(missing_docs)] // The fields are the item's, as in `model::Item`.
    ItemNew {
        account: String,
        source: &'static str,
        key: String,
        title: String,
        preview: String,
        sender: String,
        link: Option<String>,
        time: Timestamp,
        /// Announced without a toast (paused, quiet hours).
        silent: bool,
    },
    /// An item read here or elsewhere.
    #[allow(missing_docs)]
    ItemRead { account: String, key: String },
    /// A problem, of one account or of none.
    #[allow(missing_docs)]
    Error { account: Option<String>, message: String },
}

impl EventView {
    /// The webview's view of `event`: one per new item; nothing for badge
    /// and connectivity changes, which `overview-changed` carries.
    pub fn from_event(event: &CoreEvent) -> Vec<EventView> {
        match event {
            CoreEvent::NewItems { account, items, silent, .. } => items
                .iter()
                .map(|item| EventView::ItemNew {
                    account: account.to_string(),
                    source: item.source.as_str(),
                    key: item.key.clone(),
                    title: item.title.clone(),
                    preview: item.preview.clone(),
                    sender: item.sender.clone(),
                    link: item.link.clone(),
                    time: item.time,
                    silent: *silent,
                })
                .collect(),
            CoreEvent::ItemRead { account, key } => {
                vec![EventView::ItemRead { account: account.to_string(), key: key.clone() }]
            }
            CoreEvent::Error { account, message } => {
                vec![EventView::Error { account: account.as_ref().map(|a| a.to_string()), message: message.clone() }]
            }
            CoreEvent::Badge { .. } | CoreEvent::Connectivity { .. } | CoreEvent::Digest { .. } => Vec::new(),
        }
    }
}

/// The `until` argument of `pause_notifications`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseArg {
    /// For an hour.
    Hour,
    /// Until tomorrow morning.
    Tomorrow,
    /// Notifications on again.
    Resume,
}

impl From<PauseArg> for PauseChoice {
    fn from(arg: PauseArg) -> Self {
        match arg {
            PauseArg::Hour => PauseChoice::Hour,
            PauseArg::Tomorrow => PauseChoice::Tomorrow,
            PauseArg::Resume => PauseChoice::Resume,
        }
    }
}

/// How Vigie starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartOptions {
    /// The OS starts Vigie at login.
    pub at_login: bool,
    /// Vigie starts in the tray only.
    pub hidden: bool,
}

/// Name of the event carrying a [`ProbeProgress`].
pub const PROBE_PROGRESS: &str = "probe-progress";

/// The steps of a running "Test connection" so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeProgress {
    /// The id the window gave the probe, so a late step of an earlier
    /// probe is not shown as this one's.
    pub probe_id: u32,
    /// Every step so far.
    pub steps: Vec<ProbeStep>,
}

/// A failed command, as the UI receives it: `{ "code": …, "message": …,
/// "fields": [{ "field": …, "message": … }] }` (`fields` only for a form
/// that was refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    /// A stable word the UI may branch on (`fields`, `keyring`, …).
    pub code: Cow<'static, str>,
    /// What went wrong, in the user's words.
    pub message: String,
    /// The form fields to mark.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl CommandError {
    /// An error with no form fields to mark.
    pub fn new(code: &'static str, message: impl Into<String>) -> CommandError {
        CommandError { code: Cow::Borrowed(code), message: message.into(), fields: Vec::new() }
    }
}

impl From<SettingsError> for CommandError {
    fn from(error: SettingsError) -> Self {
        let code = match &error {
            SettingsError::Edit(EditError::Fields(_)) => "fields",
            SettingsError::Edit(EditError::UnknownAccount(_)) => "unknown-account",
            SettingsError::Edit(_) => "config",
            SettingsError::Secret(_) => "keyring",
            SettingsError::Reload(_) => "reload",
            SettingsError::Stopped => "stopped",
        };
        tracing::warn!(code, "settings change refused: {error}");
        CommandError { code: Cow::Borrowed(code), message: error.to_string(), fields: error.fields().to_vec() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::badge::{Badge, BadgeMode, Unread};
    use crate::model::{AccountId, Source};

    #[test]
    fn overview_serializes_in_the_shape_the_ui_expects() {
        let snapshot = Snapshot {
            demo: true,
            badge: Badge { count: 3, dot: false },
            accounts: vec![AccountSnapshot {
                id: AccountId::new("demo-mail"),
                name: "Demo mail".into(),
                source: Source::Mail,
                badge_mode: BadgeMode::Count,
                connectivity: Connectivity::AuthFailed { reason: "bad password".into() },
                unread: Unread { count: Some(3), dot: false },
                last_event_at: None,
                last_error: Some("bad password".into()),
                notice: None,
            }],
            ..Snapshot::default()
        };
        let json = serde_json::to_value(Overview::from(&snapshot)).expect("serializes");
        assert_eq!(json["demo"], true);
        assert_eq!(json["pausedUntil"], serde_json::Value::Null);
        assert_eq!(json["badge"]["label"], "3");
        let account = &json["accounts"][0];
        assert_eq!(account["source"], "mail");
        assert_eq!(account["state"]["kind"], "authFailed");
        assert_eq!(account["state"]["reason"], "bad password");
        assert_eq!(account["lastError"], "bad password");
        assert_eq!(account["unread"], 3);
    }

    #[test]
    fn core_events_serialize_tagged_by_kind_in_camel_case() {
        let event = CoreEvent::NewItems {
            unlisted: 0,
            account: AccountId::new("work"),
            items: vec![crate::model::Item {
                source: Source::Chat,
                account: AccountId::new("work"),
                key: "m1".into(),
                title: "#general".into(),
                preview: "hi".into(),
                sender: "bob".into(),
                link: None,
                time: Timestamp::UNIX_EPOCH,
            }],
            silent: true,
        };
        let views = EventView::from_event(&event);
        let json = serde_json::to_value(&views[0]).expect("serializes");
        assert_eq!(json["kind"], "itemNew");
        assert_eq!(json["source"], "chat");
        assert_eq!(json["silent"], true);
        let read = EventView::from_event(&CoreEvent::ItemRead { account: AccountId::new("work"), key: "m1".into() });
        assert_eq!(serde_json::to_value(&read[0]).expect("serializes")["kind"], "itemRead");
        let badge = CoreEvent::Badge { badge: Badge::default(), by_source: Default::default() };
        assert!(EventView::from_event(&badge).is_empty(), "states travel in overview-changed");
    }

    #[test]
    fn errors_serialize_as_code_and_message() {
        let e = CommandError::new("keyring", "no keyring");
        assert_eq!(serde_json::to_string(&e).expect("serializes"), r#"{"code":"keyring","message":"no keyring"}"#);
        let refused = CommandError::from(SettingsError::Edit(EditError::Fields(vec![FieldError {
            field: "server".into(),
            message: "enter the host".into(),
        }])));
        let json = serde_json::to_value(&refused).expect("serializes");
        assert_eq!(json["code"], "fields");
        assert_eq!(json["fields"][0]["field"], "server");
    }

    #[test]
    fn pause_arguments_parse_from_the_ui_words() {
        for (word, arg) in [("hour", PauseArg::Hour), ("tomorrow", PauseArg::Tomorrow), ("resume", PauseArg::Resume)] {
            assert_eq!(serde_json::from_str::<PauseArg>(&format!("\"{word}\"")).expect("parses"), arg);
        }
    }
}
