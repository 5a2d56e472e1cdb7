//! What the core tells the outside world.
//!
//! Two channels leave the core: a stream of [`CoreEvent`]s (things that
//! happened, in order, each delivered once: toasts and JSON lines are made
//! from these) and a [`Snapshot`] in a `watch` channel (the latest state of
//! everything: the tray and the settings window redraw from it).

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::badge::{Badge, BadgeMode, Unread};
use crate::model::{AccountId, Connectivity, Item, Source};

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreEvent {
    /// Items never notified before. One event per fetch or push, so a burst
    /// (mail that arrived while offline) can become one summary toast.
    NewItems {
        /// The account they belong to.
        account: AccountId,
        /// The new items, oldest first as the source reported them.
        items: Vec<Item>,
        /// Notifications are paused: count them, show no toast.
        silent: bool,
    },
    /// An item was read elsewhere.
    ItemRead {
        /// The account.
        account: AccountId,
        /// The item's key.
        key: String,
    },
    /// The unified badge changed.
    Badge {
        /// The badge.
        badge: Badge,
        /// Its split by source.
        by_source: BTreeMap<Source, Badge>,
    },
    /// An account's connectivity changed.
    Connectivity {
        /// The account.
        account: AccountId,
        /// Its source.
        source: Source,
        /// The new state.
        state: Connectivity,
    },
    /// Toasts were held back (paused, or quiet hours) and that has ended:
    /// how many new items came meanwhile, per source. Announced once.
    Digest {
        /// New items per source while held.
        held: BTreeMap<Source, u32>,
    },
    /// Something the user should know that is not tied to one state (a
    /// corrupt state file, a full disk).
    Error {
        /// The account concerned, if any.
        account: Option<AccountId>,
        /// What happened and what it means, in plain words.
        message: String,
    },
}

/// The latest state of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSnapshot {
    /// Id from the config.
    pub id: AccountId,
    /// Display name.
    pub name: String,
    /// Kind of service.
    pub source: Source,
    /// How it counts in the badge.
    pub badge_mode: BadgeMode,
    /// Connection state.
    pub connectivity: Connectivity,
    /// What is unread.
    pub unread: Unread,
    /// When the last new item arrived.
    pub last_event_at: Option<Timestamp>,
    /// The last failure's message, until the next success.
    pub last_error: Option<String>,
    /// A standing remark that is not an error (e.g. an API key's
    /// pseudo-user sees only its own notifications).
    pub notice: Option<String>,
}

/// The latest state of everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Running the built-in demo accounts.
    pub demo: bool,
    /// Notifications are paused until then.
    pub paused_until: Option<Timestamp>,
    /// Quiet hours hold toasts now, until then.
    pub quiet_until: Option<Timestamp>,
    /// The unified badge.
    pub badge: Badge,
    /// The badge split by source.
    pub by_source: BTreeMap<Source, Badge>,
    /// Every account, in config order.
    pub accounts: Vec<AccountSnapshot>,
    /// Errors not tied to an account (e.g. the state file could not be
    /// saved), newest last; cleared when the problem goes away.
    pub problems: Vec<String>,
}
