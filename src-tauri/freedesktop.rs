//! Toasts with buttons on Linux: `org.freedesktop.Notifications` on the
//! session bus, spoken directly with zbus, so that "Open", "Mark as read",
//! "Mark done" and "Snooze 1 h" on a toast reach the core. (The tray
//! process has no Tauri, and tauri-plugin-notification offers actions on
//! mobile only.)
//!
//! Invariants: the memory of our toasts is bounded (the oldest are
//! forgotten first; their buttons then do nothing and they are no longer
//! withdrawn); a toast's buttons are only the actions its watcher said it
//! can do; each item maps to the last toast shown about it, which is the
//! one withdrawn when the item is read.

use std::collections::{HashMap, VecDeque};

use futures_util::StreamExt;
use vigie::model::AccountId;
use vigie::watcher::Action;
use zbus::zvariant::Value;

use crate::toast::{Choice, Shown, Target};

/// Toasts whose buttons we still answer.
const REMEMBERED: usize = 64;
const DEFAULT_ACTION: &str = "default";
const SNOOZE_ACTION: &str = "snooze";

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, Value<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;

    fn close_notification(&self, id: u32) -> zbus::Result<()>;

    fn get_capabilities(&self) -> zbus::Result<Vec<String>>;

    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;
}

/// How our toasts name their source to the notification server.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The desktop file id (its name without `.desktop`), whose name and
    /// icon servers show and whose settings they apply.
    pub desktop_entry: String,
    /// The icon's name in the icon theme.
    pub icon: String,
}

/// A connection to the desktop's notification server.
pub struct Toaster {
    proxy: NotificationsProxy<'static>,
    invoked: ActionInvokedStream,
    buttons: bool,
    identity: Identity,
    /// Our recent toasts (the server tells every app about every toast's
    /// buttons), oldest first in `order`.
    shown: HashMap<u32, Shown>,
    order: VecDeque<u32>,
    /// The last toast about each single item, to withdraw it when read.
    by_item: HashMap<(AccountId, String), u32>,
}

fn action_key(action: Action) -> &'static str {
    match action {
        Action::MarkRead => "mark-read",
        Action::MarkDone => "mark-done",
    }
}

fn action_label(action: Action, acknowledges: bool) -> &'static str {
    match action {
        Action::MarkRead if acknowledges => "Got it",
        Action::MarkRead => "Mark as read",
        Action::MarkDone => "Mark done",
    }
}

impl Toaster {
    /// Connects to the session bus's notification server.
    pub async fn connect(identity: Identity) -> zbus::Result<Toaster> {
        let connection = zbus::Connection::session().await?;
        let proxy = NotificationsProxy::new(&connection).await?;
        let invoked = proxy.receive_action_invoked().await?;
        let buttons = proxy.get_capabilities().await.is_ok_and(|caps| caps.iter().any(|c| c == "actions"));
        Ok(Toaster {
            proxy,
            invoked,
            buttons,
            identity,
            shown: HashMap::new(),
            order: VecDeque::new(),
            by_item: HashMap::new(),
        })
    }

    /// Shows a toast, in place of our toast `replaces` if given (servers
    /// then update it where it is, without a second popup); its target (a
    /// single item) gets buttons. Returns the toast's id.
    pub async fn show(&mut self, shown: Shown, replaces: Option<u32>) -> zbus::Result<u32> {
        let mut actions: Vec<&str> = Vec::new();
        if self.buttons {
            actions.extend([DEFAULT_ACTION, "Open Vigie"]);
            if let Some(target) = &shown.target {
                if target.link.is_some() {
                    actions.extend(["open", "Open"]);
                }
                // Where it can also be marked done, "read" only acknowledges.
                let acknowledges = target.actions.contains(&Action::MarkDone);
                for action in &target.actions {
                    actions.extend([action_key(*action), action_label(*action, acknowledges)]);
                }
                actions.extend([SNOOZE_ACTION, "Snooze 1 h"]);
            }
        }
        let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
        hints.insert("desktop-entry", Value::from(self.identity.desktop_entry.as_str()));
        if let Some(category) = shown.toast.category {
            hints.insert("category", Value::from(category));
        }
        if shown.sound {
            hints.insert("sound-name", Value::from("message-new-instant"));
        }
        let toast = &shown.toast;
        let id = self
            .proxy
            .notify("Vigie", replaces.unwrap_or(0), &self.identity.icon, &toast.title, &toast.body, &actions, hints, -1)
            .await?;
        if let Some(old) = replaces {
            self.forget(old);
        }
        self.remember(id, shown);
        Ok(id)
    }

    /// Forgets one of our toasts (replaced by another).
    fn forget(&mut self, id: u32) {
        if let Some(Shown { target: Some(target), .. }) = self.shown.remove(&id) {
            let item = (target.account, target.key);
            if self.by_item.get(&item) == Some(&id) {
                self.by_item.remove(&item);
            }
        }
        self.order.retain(|known| *known != id);
    }

    fn remember(&mut self, id: u32, shown: Shown) {
        if self.order.len() >= REMEMBERED
            && let Some(&oldest) = self.order.front()
        {
            self.forget(oldest);
        }
        if let Some(target) = &shown.target {
            self.by_item.insert((target.account.clone(), target.key.clone()), id);
        }
        self.order.push_back(id);
        self.shown.insert(id, shown);
    }

    /// Closes the toast about this item, if one of ours is (or may still
    /// be) on screen: it was read, here or elsewhere.
    pub async fn withdraw(&mut self, account: &AccountId, key: &str) {
        let Some(id) = self.by_item.remove(&(account.clone(), key.to_owned())) else { return };
        self.shown.remove(&id);
        self.order.retain(|known| *known != id);
        // Servers answer with an error for a toast the user already closed.
        if let Err(e) = self.proxy.close_notification(id).await {
            tracing::debug!(id, "the notification server did not close the toast: {e}");
        }
    }

    /// The next button the user pressed on one of our toasts. Pending
    /// forever once the bus connection is gone.
    pub async fn next_choice(&mut self) -> Choice {
        loop {
            let Some(signal) = self.invoked.next().await else {
                return std::future::pending().await;
            };
            let Ok(args) = signal.args() else { continue };
            // Another app's toast, or one of ours we forgot.
            let Some(shown) = self.shown.get(&args.id) else { continue };
            let choice = match (args.action_key.as_str(), &shown.target) {
                (DEFAULT_ACTION | "open", Some(Target { account, link: Some(link), .. })) => {
                    Choice::Open { account: account.clone(), link: link.clone() }
                }
                (DEFAULT_ACTION, _) => Choice::OpenSettings,
                // The server takes the toast away (it is not resident); it
                // stays ours so that reading the item meanwhile closes it
                // where it was kept.
                (SNOOZE_ACTION, Some(_)) => Choice::Snooze(shown.clone()),
                (key, Some(target)) => match target.actions.iter().find(|a| action_key(**a) == key) {
                    Some(action) => Choice::Act { account: target.account.clone(), key: target.key.clone(), action: *action },
                    None => continue,
                },
                (_, None) => continue,
            };
            return choice;
        }
    }
}
