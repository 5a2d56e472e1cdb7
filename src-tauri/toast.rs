//! Native toasts for new items. The wording lives in [`compose`], one pure
//! function with tests; [`Toaster`] hands the result to the desktop's
//! notification server (`freedesktop`), with buttons that reach the core
//! and withdrawal once the item is read. Without a notification server on
//! the session bus, toasts are logged as not shown: the badge still counts.

use vigie::CoreEvent;
use vigie::config::Notifications;
use vigie::model::{AccountId, Item, Source};
use vigie::watcher::{Action, ActionError};

use crate::grouping::Summary;

/// The item a toast is about, and what its buttons may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub account: AccountId,
    pub key: String,
    pub link: Option<String>,
    pub actions: Vec<Action>,
}

/// What the user chose on a toast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Clicked the toast, or "Open": show the item where it is read.
    Open { account: AccountId, link: String },
    /// Clicked a toast with no link (a summary, an error).
    OpenSettings,
    /// "Mark as read", "Got it", "Mark done".
    Act { account: AccountId, key: String, action: Action },
    /// "Snooze 1 h": show this toast again later, unless read meanwhile.
    Snooze(Shown),
}

/// A toast as shown, enough to show it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub toast: Toast,
    pub sound: bool,
    /// The single item it is about, if any; only such toasts have buttons.
    pub target: Option<Target>,
}

/// Shows toasts and reports the buttons pressed on them.
pub struct Toaster {
    #[cfg(target_os = "linux")]
    bus: Option<crate::freedesktop::Toaster>,
}

impl Toaster {
    /// Reaches the desktop's notification server.
    pub async fn connect() -> Toaster {
        #[cfg(target_os = "linux")]
        {
            // The names the package installs: `Vigie.desktop` (tauri-bundler
            // names it after the product), and its icon under the binary's
            // name.
            let identity = crate::freedesktop::Identity { desktop_entry: "Vigie".to_owned(), icon: "vigie".to_owned() };
            let bus = crate::freedesktop::Toaster::connect(identity)
                .await
                .map_err(|e| tracing::warn!("no toasts: no notification server on the session bus ({e})"))
                .ok();
            Toaster { bus }
        }
        #[cfg(not(target_os = "linux"))]
        {
            tracing::warn!("no toasts: this build shows them on Linux only");
            Toaster {}
        }
    }

    /// Shows `toast`; `target` is the single item it is about, if any.
    pub async fn show(&mut self, toast: &Toast, sound: bool, target: Option<Target>) {
        self.present(Shown { toast: toast.clone(), sound, target }, None).await;
    }

    /// Shows a toast (again, after a snooze).
    pub async fn show_again(&mut self, shown: Shown) {
        self.present(shown, None).await;
    }

    /// Shows a summary toast in place of the one with id `replaces` (the
    /// same summary, counting more); returns its id where toasts have ids
    /// we can replace.
    pub async fn show_summary(&mut self, toast: &Toast, sound: bool, replaces: Option<u32>) -> Option<u32> {
        self.present(Shown { toast: toast.clone(), sound, target: None }, replaces).await
    }

    async fn present(&mut self, shown: Shown, replaces: Option<u32>) -> Option<u32> {
        #[cfg(target_os = "linux")]
        if let Some(bus) = &mut self.bus {
            match bus.show(shown, replaces).await {
                Ok(id) => return Some(id),
                Err(e) => {
                    tracing::warn!("the notification server refused a toast: {e}");
                    return None;
                }
            }
        }
        let _ = (shown, replaces);
        None
    }

    /// Takes the toast about this item off the screen: it was read.
    pub async fn withdraw(&mut self, account: &AccountId, key: &str) {
        #[cfg(target_os = "linux")]
        if let Some(bus) = &mut self.bus {
            bus.withdraw(account, key).await;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (account, key);
    }

    /// The next button pressed on one of our toasts; never resolves where
    /// toasts have no buttons.
    pub async fn next_choice(&mut self) -> Choice {
        #[cfg(target_os = "linux")]
        if let Some(bus) = &mut self.bus {
            return bus.next_choice().await;
        }
        std::future::pending().await
    }
}

/// The one item a toast for `event` is about, when it is not a summary.
pub fn single_item<'a>(event: &'a CoreEvent, settings: &Notifications) -> Option<&'a Item> {
    match event {
        CoreEvent::NewItems { items, silent: false, unlisted, .. }
            if items.len() + unlisted <= settings.burst_threshold as usize =>
        {
            items.last()
        }
        _ => None,
    }
}

/// The toast saying a button's action failed, and why.
pub fn action_failed(action: Action, error: &ActionError) -> Toast {
    let title = match action {
        Action::MarkRead => "Could not mark it as read",
        Action::MarkDone => "Could not mark the task done",
    };
    Toast { title: title.to_owned(), body: error.to_string(), category: None }
}

/// Longest preview shown in a toast, in characters.
const PREVIEW_CHARS: usize = 140;

/// What one toast says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub title: String,
    pub body: String,
    /// The freedesktop notification category (the kind of event), for
    /// servers that group or style toasts by it.
    pub category: Option<&'static str>,
}

/// The freedesktop category of a new item from `source`.
pub fn category(source: Source) -> &'static str {
    match source {
        Source::Mail => "email.arrived",
        Source::Chat => "im.received",
        // No standard category fits; `x-vendor.class` is the spec's form.
        Source::Tasks => "x-vigie.task",
    }
}

fn noun(source: Source, n: usize) -> &'static str {
    match (source, n) {
        (Source::Mail, 1) => "new mail",
        (Source::Mail, _) => "new mails",
        (Source::Chat, 1) => "new message",
        (Source::Chat, _) => "new messages",
        (Source::Tasks, 1) => "new task or notification",
        (Source::Tasks, _) => "new tasks and notifications",
    }
}

fn shorten(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The toast for `event`, or `None` when it shows none (not a new item,
/// paused). More items than the burst threshold become one summary.
pub fn compose(event: &CoreEvent, account_name: &str, settings: &Notifications) -> Option<Toast> {
    match event {
        CoreEvent::NewItems { items, silent: false, unlisted, .. } if !items.is_empty() => {
            let source = items[0].source;
            // Counted but not fetched (a burst bigger than one fetch) still
            // count in what the toast says.
            let n = items.len() + unlisted;
            if n > settings.burst_threshold as usize {
                let mut burst = Summary::new(source);
                burst.add(items, *unlisted);
                return Some(summary(&burst, account_name, settings));
            }
            // Several small items: the newest one speaks for the batch.
            let item: &Item = items.last()?;
            if !settings.previews {
                return Some(Toast {
                    title: format!("{} {}", capitalized(noun(source, n)), in_(account_name)),
                    body: String::new(),
                    category: Some(category(source)),
                });
            }
            let title = match source {
                // Where it arrived, unless the inbox, where mail goes.
                Source::Mail => match vigie::imap::folder_of(&item.key).filter(|f| !f.eq_ignore_ascii_case("INBOX")) {
                    Some(folder) => format!("{} in {folder} — {}", item.sender, item.title),
                    None => format!("{} — {}", item.sender, item.title),
                },
                // A direct message's room is named after the sender.
                Source::Chat if item.sender == item.title => item.sender.clone(),
                Source::Chat => format!("{} in {}", item.sender, item.title),
                Source::Tasks => item.title.clone(),
            };
            let mut body = shorten(&item.preview);
            if n > 1 {
                body = format!("{body}\n(+{} more {})", n - 1, noun(source, n - 1));
            }
            Some(Toast { title, body, category: Some(category(source)) })
        }
        CoreEvent::Digest { held } if !held.is_empty() => {
            let parts: Vec<String> =
                held.iter().map(|(source, n)| format!("{n} {}", noun(*source, *n as usize))).collect();
            Some(Toast { title: "While notifications were held".to_owned(), body: parts.join(", "), category: None })
        }
        CoreEvent::Error { message, .. } => {
            Some(Toast { title: "Vigie needs your attention".to_owned(), body: message.clone(), category: None })
        }
        _ => None,
    }
}

/// The one toast for many items: how many, where, and from whom.
pub fn summary(summary: &Summary, account_name: &str, settings: &Notifications) -> Toast {
    let n = summary.count;
    let place = match &summary.room {
        // The room's name is content: private mode names the account only.
        Some(room) if settings.previews => room.as_str(),
        _ => account_name,
    };
    let body = if settings.previews && !summary.senders.is_empty() {
        let shown = summary.senders.iter().take(3).map(String::as_str).collect::<Vec<_>>().join(", ");
        let more = summary.senders.len().saturating_sub(3) + summary.more_senders;
        if more > 0 { format!("From {shown} and {more} more") } else { format!("From {shown}") }
    } else {
        String::new()
    };
    Toast { title: format!("{n} {} in {place}", noun(summary.source, n)), body, category: Some(category(summary.source)) }
}

fn in_(account_name: &str) -> String {
    format!("in {account_name}")
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie::model::AccountId;

    fn mail(sender: &str, subject: &str, preview: &str) -> Item {
        Item {
            source: Source::Mail,
            account: AccountId::new("work"),
            key: format!("{sender}-{subject}"),
            title: subject.into(),
            preview: preview.into(),
            sender: sender.into(),
            link: None,
            time: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn new_items(items: Vec<Item>, silent: bool) -> CoreEvent {
        CoreEvent::NewItems { account: AccountId::new("work"), items, silent, unlisted: 0 }
    }

    #[test]
    fn one_mail_shows_sender_subject_and_preview() {
        let toast = compose(&new_items(vec![mail("Alice", "Figures", "Here  are\nthe numbers")], false), "Work", &Notifications::default());
        assert_eq!(
            toast,
            Some(Toast { title: "Alice — Figures".into(), body: "Here are the numbers".into(), category: Some("email.arrived") })
        );
    }

    #[test]
    fn a_mail_outside_the_inbox_says_which_folder_it_arrived_in() {
        let in_folder = |folder: &str| Item { key: format!("{folder}:7:42"), ..mail("Alice", "Figures", "numbers") };
        let title = |item| compose(&new_items(vec![item], false), "Work", &Notifications::default()).expect("toast").title;
        assert_eq!(title(in_folder("Projects/Q3: plans")), "Alice in Projects/Q3: plans — Figures");
        assert_eq!(title(in_folder("INBOX")), "Alice — Figures");
    }

    #[test]
    fn private_mode_hides_sender_and_preview() {
        let settings = Notifications { previews: false, ..Notifications::default() };
        let toast = compose(&new_items(vec![mail("Alice", "Secret plan", "details")], false), "Work", &settings).expect("toast");
        assert_eq!(toast.title, "New mail in Work");
        assert!(!toast.title.contains("Alice") && !toast.body.contains("details"));
    }

    #[test]
    fn a_burst_becomes_one_summary() {
        let items = (0..5).map(|i| mail(&format!("S{i}"), "x", "y")).collect();
        let toast = compose(&new_items(items, false), "Work", &Notifications { burst_threshold: 3, ..Notifications::default() }).expect("toast");
        assert_eq!(toast.title, "5 new mails in Work");
        assert_eq!(toast.body, "From S0, S1, S2 and 2 more");
    }

    #[test]
    fn a_toast_of_a_few_items_has_buttons_for_the_newest_and_a_summary_has_none() {
        let settings = Notifications { burst_threshold: 3, ..Notifications::default() };
        let few = new_items(vec![mail("A", "old", "x"), mail("B", "new", "y")], false);
        assert_eq!(single_item(&few, &settings).map(|i| i.title.as_str()), Some("new"));
        let burst = new_items((0..4).map(|i| mail(&format!("S{i}"), "x", "y")).collect(), false);
        assert_eq!(single_item(&burst, &settings), None);
        assert_eq!(single_item(&new_items(vec![mail("A", "B", "C")], true), &settings), None, "paused: no toast at all");
    }

    #[test]
    fn a_failed_button_says_what_failed_in_the_server_s_words() {
        let toast = action_failed(Action::MarkDone, &ActionError::Failed("permission missing: editing tasks".into()));
        assert_eq!(
            toast,
            Toast { title: "Could not mark the task done".into(), body: "permission missing: editing tasks".into(), category: None }
        );
    }

    #[test]
    fn a_direct_message_is_titled_by_its_sender_and_a_room_message_by_both() {
        let chat = |sender: &str, room: &str| Item { source: Source::Chat, title: room.into(), ..mail(sender, room, "hi") };
        let title = |item| compose(&new_items(vec![item], false), "Team", &Notifications::default()).map(|t| t.title);
        assert_eq!(title(chat("Bob Builder", "Bob Builder")).as_deref(), Some("Bob Builder"));
        assert_eq!(title(chat("Bob Builder", "general")).as_deref(), Some("Bob Builder in general"));
    }

    #[test]
    fn each_source_s_toast_carries_its_freedesktop_category_even_in_private_mode() {
        let of = |source: Source, previews: bool| {
            let item = Item { source, ..mail("A", "B", "C") };
            let settings = Notifications { previews, ..Notifications::default() };
            compose(&new_items(vec![item], false), "Work", &settings).and_then(|t| t.category)
        };
        assert_eq!(of(Source::Mail, true), Some("email.arrived"));
        assert_eq!(of(Source::Chat, true), Some("im.received"));
        assert_eq!(of(Source::Tasks, false), Some("x-vigie.task"));
        let burst = (0..5).map(|i| Item { source: Source::Chat, ..mail(&format!("S{i}"), "x", "y") }).collect();
        let summary = compose(&new_items(burst, false), "Team", &Notifications::default()).expect("toast");
        assert_eq!(summary.category, Some("im.received"));
    }

    #[test]
    fn paused_items_show_no_toast() {
        assert_eq!(compose(&new_items(vec![mail("A", "B", "C")], true), "Work", &Notifications::default()), None);
    }

    #[test]
    fn long_previews_are_cut() {
        let long = "word ".repeat(100);
        let toast = compose(&new_items(vec![mail("A", "B", &long)], false), "Work", &Notifications::default()).expect("toast");
        assert!(toast.body.chars().count() <= PREVIEW_CHARS + 1 && toast.body.ends_with('…'));
    }

    #[test]
    fn a_digest_says_what_came_per_source_in_one_toast() {
        let held = [(Source::Mail, 3), (Source::Tasks, 1)].into_iter().collect();
        let toast = compose(&CoreEvent::Digest { held }, "", &Notifications::default()).expect("a toast");
        assert_eq!(toast.title, "While notifications were held");
        assert_eq!(toast.body, "3 new mails, 1 new task or notification");
    }

    #[test]
    fn a_burst_counts_what_was_not_fetched_too() {
        let items: Vec<Item> = (0..50).map(|i| mail("Alice", &format!("n{i}"), "")).collect();
        let event = CoreEvent::NewItems { account: AccountId::new("work"), items, silent: false, unlisted: 450 };
        let toast = compose(&event, "Work", &Notifications::default()).expect("a toast");
        assert_eq!(toast.title, "500 new mails in Work");
        let one_more = CoreEvent::NewItems {
            account: AccountId::new("work"),
            items: vec![mail("Bob", "Hello", "hi")],
            silent: false,
            unlisted: 1,
        };
        let toast = compose(&one_more, "Work", &Notifications::default()).expect("a toast");
        assert_eq!(toast.title, "Bob — Hello");
        assert!(toast.body.ends_with("(+1 more new mail)"), "{}", toast.body);
    }

    fn message(sender: &str, room: &str) -> Item {
        Item { source: Source::Chat, title: room.into(), key: format!("{sender}-{room}"), ..mail(sender, room, "hi") }
    }

    #[test]
    fn a_summary_of_one_room_is_named_after_the_room_except_in_private_mode() {
        let mut burst = Summary::new(Source::Chat);
        burst.add(&[message("Ann", "#general"), message("Bob", "#general")], 3);
        let toast = summary(&burst, "Team chat", &Notifications::default());
        assert_eq!((toast.title.as_str(), toast.body.as_str()), ("5 new messages in #general", "From Ann, Bob"));
        let private = summary(&burst, "Team chat", &Notifications { previews: false, ..Notifications::default() });
        assert_eq!((private.title.as_str(), private.body.as_str()), ("5 new messages in Team chat", ""));
    }

    #[test]
    fn a_summary_of_several_rooms_is_named_after_the_account() {
        let mut burst = Summary::new(Source::Chat);
        burst.add(&[message("Ann", "#general"), message("Bob", "#random"), message("Cy", "#general"), message("Dan", "Dan")], 0);
        assert_eq!(summary(&burst, "Team chat", &Notifications::default()).title, "4 new messages in Team chat");
    }
}
