//! Toasts with buttons on Linux: `org.freedesktop.Notifications` on the
//! session bus, spoken directly with zbus, so that "Open", "Mark as read"
//! and "Mark done" on a toast reach the core. (tauri-plugin-notification
//! offers actions on mobile only.)
//!
//! Invariants: the map from toast id to item is bounded (the oldest toasts
//! are forgotten first; their buttons then do nothing), and a toast's
//! buttons are only the actions its watcher said it can do.

use std::collections::{HashMap, VecDeque};

use futures_util::StreamExt;
use vigie::watcher::Action;
use zbus::zvariant::Value;

use crate::toast::{Choice, Target};

/// Toasts whose buttons we still answer.
const REMEMBERED: usize = 64;
const DEFAULT_ACTION: &str = "default";

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

    fn get_capabilities(&self) -> zbus::Result<Vec<String>>;

    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;
}

/// A connection to the desktop's notification server.
pub struct Toaster {
    proxy: NotificationsProxy<'static>,
    invoked: ActionInvokedStream,
    buttons: bool,
    /// Our recent toasts (the server tells every app about every toast's
    /// buttons), with the item each one is about, if a single one.
    targets: HashMap<u32, Option<Target>>,
    order: VecDeque<u32>,
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
    pub async fn connect() -> zbus::Result<Toaster> {
        let connection = zbus::Connection::session().await?;
        let proxy = NotificationsProxy::new(&connection).await?;
        let invoked = proxy.receive_action_invoked().await?;
        let buttons = proxy.get_capabilities().await.is_ok_and(|caps| caps.iter().any(|c| c == "actions"));
        Ok(Toaster { proxy, invoked, buttons, targets: HashMap::new(), order: VecDeque::new() })
    }

    /// Shows a toast; `target` (a single item) gets its buttons.
    pub async fn show(&mut self, title: &str, body: &str, sound: bool, target: Option<Target>) -> zbus::Result<()> {
        let mut actions: Vec<&str> = Vec::new();
        if self.buttons {
            actions.extend([DEFAULT_ACTION, "Open Vigie"]);
            if let Some(target) = &target {
                if target.link.is_some() {
                    actions.extend(["open", "Open"]);
                }
                // Where it can also be marked done, "read" only acknowledges.
                let acknowledges = target.actions.contains(&Action::MarkDone);
                for action in &target.actions {
                    actions.extend([action_key(*action), action_label(*action, acknowledges)]);
                }
            }
        }
        let mut hints: HashMap<&str, Value<'_>> = HashMap::new();
        hints.insert("desktop-entry", Value::from("vigie"));
        if sound {
            hints.insert("sound-name", Value::from("message-new-instant"));
        }
        let id = self.proxy.notify("Vigie", 0, "mail-unread", title, body, &actions, hints, -1).await?;
        self.remember(id, target);
        Ok(())
    }

    fn remember(&mut self, id: u32, target: Option<Target>) {
        if self.order.len() == REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.targets.remove(&oldest);
        }
        self.order.push_back(id);
        self.targets.insert(id, target);
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
            let Some(target) = self.targets.get(&args.id) else { continue };
            let choice = match (args.action_key.as_str(), target) {
                (DEFAULT_ACTION | "open", Some(Target { link: Some(link), .. })) => Choice::Open { link: link.clone() },
                (DEFAULT_ACTION, _) => Choice::OpenSettings,
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
