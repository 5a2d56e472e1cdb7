//! The wire types between the Rust shell and the settings webview. Every type
//! the UI sees is here (mirrored in `ui/src/ipc.ts`); the core's domain types
//! never cross the IPC boundary directly.

use jiff::Timestamp;
use serde::{Deserialize, Serialize, Serializer};
use vigie::{CoreEvent, Snapshot};
use vigie::event::AccountSnapshot;
use vigie::model::Connectivity;
use vigie::config::edit::{EditError, FieldError};
use vigie::pause::PauseChoice;
use vigie::probe::ProbeStep;
use vigie::settings::SettingsError;

/// Name of the event carrying a fresh [`Overview`].
pub const OVERVIEW_CHANGED: &str = "overview-changed";
/// Name of the event carrying one [`EventView`] (things that happened; the
/// states they lead to arrive with `overview-changed`).
pub const CORE_EVENT: &str = "core-event";

/// Everything the settings window shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub demo: bool,
    pub paused_until: Option<Timestamp>,
    pub quiet_until: Option<Timestamp>,
    pub badge: BadgeView,
    pub accounts: Vec<AccountView>,
    /// Problems not tied to an account (invalid config, unwritable state).
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadgeView {
    pub count: u32,
    pub dot: bool,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub source: &'static str,
    pub state: StateView,
    pub unread: Option<u32>,
    pub dot: bool,
    pub last_event_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateView {
    pub kind: &'static str,
    pub reason: Option<String>,
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
    ItemNew {
        account: String,
        source: &'static str,
        key: String,
        title: String,
        preview: String,
        sender: String,
        link: Option<String>,
        time: Timestamp,
        silent: bool,
    },
    ItemRead {
        account: String,
        key: String,
    },
    Error {
        account: Option<String>,
        message: String,
    },
}

impl EventView {
    /// The webview's view of `event`: one per new item; nothing for badge
    /// and connectivity changes, which `overview-changed` carries.
    pub fn from_event(event: &CoreEvent) -> Vec<EventView> {
        match event {
            CoreEvent::NewItems { account, items, silent } => items
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
    Hour,
    Tomorrow,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcError {
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl IpcError {
    pub fn new(code: &'static str, message: impl Into<String>) -> IpcError {
        IpcError { code, message: message.into(), fields: Vec::new() }
    }
}

impl From<SettingsError> for IpcError {
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
        IpcError { code, message: error.to_string(), fields: error.fields().to_vec() }
    }
}

impl Serialize for IpcError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("IpcError", 3)?;
        s.serialize_field("code", self.code)?;
        s.serialize_field("message", &self.message)?;
        if !self.fields.is_empty() {
            s.serialize_field("fields", &self.fields)?;
        }
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie::badge::{Badge, BadgeMode, Unread};
    use vigie::model::{AccountId, Source};

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
            account: AccountId::new("work"),
            items: vec![vigie::model::Item {
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
        let e = IpcError::new("keyring", "no keyring");
        assert_eq!(serde_json::to_string(&e).expect("serializes"), r#"{"code":"keyring","message":"no keyring"}"#);
        let refused = IpcError::from(SettingsError::Edit(EditError::Fields(vec![FieldError {
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
