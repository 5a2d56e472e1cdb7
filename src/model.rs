//! The vocabulary every source shares: what an account is, what an item is,
//! and how connected an account is.
//!
//! These are plain domain types with no wire format: the headless JSON lines
//! (`headless`) and the Tauri IPC types map them at the edge, so a change of
//! wire format never ripples into the watchers. The one exception is
//! [`Source`]'s lower-case name, which the config file uses as is.

use std::fmt;

use jiff::Timestamp;

/// The kind of service an account watches. Ordered so that iteration (and so
/// the tray breakdown) is always mail, chat, tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// IMAP mail.
    Mail,
    /// Rocket.Chat.
    Chat,
    /// Leantime notifications and assigned tasks.
    Tasks,
}

impl Source {
    /// All sources, in display order.
    pub const ALL: [Source; 3] = [Source::Mail, Source::Chat, Source::Tasks];

    /// The stable lower-case name used in config files and wire formats.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mail => "mail",
            Source::Chat => "chat",
            Source::Tasks => "tasks",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Mail => "Mail",
            Source::Chat => "Chat",
            Source::Tasks => "Tasks",
        })
    }
}

/// The user-chosen identifier of an account, unique within the config file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// Wraps an identifier. Validation (non-empty, no odd characters) happens
    /// when the config is loaded.
    pub fn new(id: impl Into<String>) -> Self {
        AccountId(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something a source reports as new: a mail, a chat message, a notification
/// or a task.
///
/// `key` is stable for the lifetime of the item on its server (an IMAP
/// `UIDVALIDITY:UID`, a Rocket.Chat message id, a Leantime notification id),
/// so deduplication across reconnects and restarts is a set lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Which kind of service it came from.
    pub source: Source,
    /// Which account it belongs to.
    pub account: AccountId,
    /// Stable identity on the server; unique within the account.
    pub key: String,
    /// One-line headline (mail subject, room name, task title).
    pub title: String,
    /// A short preview of the body; may be empty.
    pub preview: String,
    /// Who sent or assigned it, as the server names them.
    pub sender: String,
    /// Where the user reads it (a web link or a `mailto:`/custom scheme).
    pub link: Option<String>,
    /// When the server says it happened.
    pub time: Timestamp,
}

/// How an account is connected right now, from the user's point of view.
///
/// Variants are ordered from "worst" to "best" news for the tray summary, see
/// [`Connectivity::rank`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connectivity {
    /// Connecting or logging in.
    Connecting,
    /// Connected and the server pushes changes to us.
    LivePush,
    /// Polling: the source cannot push, or push is down and polling fills in.
    Polling,
    /// The last attempt failed; the next one is at `until`.
    BackingOff {
        /// What went wrong, in words the user can act on.
        reason: String,
        /// When the next attempt happens.
        until: Timestamp,
    },
    /// The server asked us to wait (HTTP 429, a rate-limit error); the next
    /// attempt is at `until`, not a moment earlier.
    RateLimited {
        /// When the server lets us try again.
        until: Timestamp,
    },
    /// The account cannot work until the user changes something: a wrong
    /// server address, a missing permission, a server too old for what is
    /// asked. Retried only when the user asks (or the network changes).
    NeedsAttention {
        /// What is wrong and what to do, naming the permission or version.
        reason: String,
    },
    /// The server refused the credentials; retrying would not help until the
    /// user acts (or asks for a retry).
    AuthFailed {
        /// The server's own words where it gave any.
        reason: String,
    },
    /// Turned off by the user, or not available in this build.
    Disabled {
        /// Why, when it is not simply the user's choice.
        reason: Option<String>,
    },
}

impl Connectivity {
    /// How much attention this state needs: higher is worse. Used to pick the
    /// one state the tray shows for a source with several accounts.
    pub fn rank(&self) -> u8 {
        match self {
            Connectivity::LivePush => 0,
            Connectivity::Disabled { .. } => 1,
            Connectivity::Polling => 2,
            Connectivity::Connecting => 3,
            Connectivity::RateLimited { .. } => 4,
            Connectivity::BackingOff { .. } => 5,
            Connectivity::NeedsAttention { .. } => 6,
            Connectivity::AuthFailed { .. } => 7,
        }
    }

    /// A short English description for logs and the tray menu.
    pub fn describe(&self) -> String {
        match self {
            Connectivity::Connecting => "connecting…".to_owned(),
            Connectivity::LivePush => "live".to_owned(),
            Connectivity::Polling => "polling".to_owned(),
            Connectivity::BackingOff { reason, until } => {
                let secs = until.duration_since(Timestamp::now()).as_secs().max(0);
                format!("retrying in {secs} s: {reason}")
            }
            Connectivity::RateLimited { until } => {
                let secs = until.duration_since(Timestamp::now()).as_secs().max(0);
                format!("rate-limited by the server: next try in {secs} s")
            }
            Connectivity::NeedsAttention { reason } => format!("needs attention: {reason}"),
            Connectivity::AuthFailed { reason } => format!("sign-in failed: {reason}"),
            Connectivity::Disabled { reason: None } => "disabled".to_owned(),
            Connectivity::Disabled { reason: Some(r) } => format!("disabled: {r}"),
        }
    }
}
