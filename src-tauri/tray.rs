//! The tray icon: the badge drawn into the icon, the per-source breakdown
//! and connection state as (disabled) menu lines, and the actions.
//!
//! Linux AppIndicator shows no tooltip, so everything the user needs at a
//! glance is in the icon and the menu; the tooltip is set as well for the
//! platforms that have one.

use std::collections::BTreeMap;

use tray_icon::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{BadIcon, Icon, TrayIcon, TrayIconBuilder};
use vigie::Snapshot;
use vigie::badge::Badge;
use vigie::icon;
use vigie::model::{Connectivity, Source};

/// Id of our one tray icon.
pub const TRAY_ID: &str = "main";

/// The menu's actions; their ids are the only strings in the menu wiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuAction {
    OpenSettings,
    RefreshNow,
    PauseHour,
    PauseTomorrow,
    Resume,
    Quit,
}

impl MenuAction {
    const ALL: [MenuAction; 6] = [
        MenuAction::OpenSettings,
        MenuAction::RefreshNow,
        MenuAction::PauseHour,
        MenuAction::PauseTomorrow,
        MenuAction::Resume,
        MenuAction::Quit,
    ];

    pub fn id(self) -> &'static str {
        match self {
            MenuAction::OpenSettings => "open-settings",
            MenuAction::RefreshNow => "refresh-now",
            MenuAction::PauseHour => "pause-hour",
            MenuAction::PauseTomorrow => "pause-tomorrow",
            MenuAction::Resume => "resume",
            MenuAction::Quit => "quit",
        }
    }

    pub fn from_id(id: &str) -> Option<MenuAction> {
        MenuAction::ALL.into_iter().find(|a| a.id() == id)
    }
}

/// The header line: the total and the mode.
pub fn header_text(s: &Snapshot) -> String {
    let what = match (s.badge.count, s.badge.dot) {
        (0, false) => "nothing new".to_owned(),
        (0, true) => "something new".to_owned(),
        (1, _) => "1 unread".to_owned(),
        (n, _) => format!("{n} unread"),
    };
    let mut text = format!("Vigie — {what}");
    if s.demo {
        text.push_str(" (demo: no account configured)");
    }
    text
}

/// One line per source present: its count and its worst connection state.
pub fn source_line(source: Source, s: &Snapshot) -> Option<String> {
    let accounts: Vec<_> = s.accounts.iter().filter(|a| a.source == source).collect();
    let worst = accounts.iter().map(|a| &a.connectivity).max_by_key(|c| c.rank())?;
    let badge = s.by_source.get(&source).copied().unwrap_or_default();
    let count = match badge {
        Badge { count: 0, dot: true } => "new".to_owned(),
        Badge { count, .. } => count.to_string(),
    };
    let state = match worst {
        Connectivity::BackingOff { reason, .. } => format!("retrying: {reason}"),
        other => other.describe(),
    };
    Some(format!("{source}: {count} · {state}"))
}

/// The pause line: paused, in quiet hours, or on.
pub fn pause_text(s: &Snapshot) -> String {
    let hm = |until: jiff::Timestamp| until.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%H:%M").to_string();
    match (s.paused_until, s.quiet_until) {
        (Some(until), _) => format!("Notifications paused until {}", hm(until)),
        (None, Some(until)) => format!("Quiet hours until {}", hm(until)),
        (None, None) => "Notifications on".to_owned(),
    }
}

fn icon_image(badge: &Badge) -> Result<Icon, BadIcon> {
    let pixels = icon::render(badge);
    Icon::from_rgba(pixels.rgba, pixels.width, pixels.height)
}

/// Why the tray could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum TrayError {
    /// The menu refused an item.
    #[error("the tray menu: {0}")]
    Menu(#[from] tray_icon::menu::Error),
    /// The icon host refused the icon.
    #[error("the tray icon: {0}")]
    Icon(#[from] tray_icon::Error),
    /// The badge could not be drawn as an icon.
    #[error("the tray icon's picture: {0}")]
    Picture(#[from] BadIcon),
}

/// The tray and the menu lines it updates. Lives on the GTK main thread.
pub struct Tray {
    icon: TrayIcon,
    header: MenuItem,
    pause: MenuItem,
    lines: BTreeMap<Source, MenuItem>,
    menu: Menu,
    badge: Badge,
}

impl Tray {
    /// Builds the tray showing `snapshot` (the last known badge, before any
    /// network). With `no_settings`, the settings window cannot be opened,
    /// and the menu says why in place of "Open settings…".
    pub fn create(snapshot: &Snapshot, no_settings: Option<&str>) -> Result<Tray, TrayError> {
        let header = MenuItem::with_id("header", header_text(snapshot), false, None);
        let mut lines = BTreeMap::new();
        for source in Source::ALL {
            if let Some(text) = source_line(source, snapshot) {
                lines.insert(source, MenuItem::with_id(format!("line-{}", source.as_str()), text, false, None));
            }
        }
        let pause = MenuItem::with_id("pause-state", pause_text(snapshot), false, None);
        let item = |action: MenuAction, text: &str| MenuItem::with_id(action.id(), text, true, None);
        let pause_menu = Submenu::with_items(
            "Pause notifications",
            true,
            &[&item(MenuAction::PauseHour, "For 1 hour"), &item(MenuAction::PauseTomorrow, "Until tomorrow"), &item(MenuAction::Resume, "Resume")],
        )?;
        let menu = Menu::new();
        menu.append(&header)?;
        for line in lines.values() {
            menu.append(line)?;
        }
        menu.append(&pause)?;
        menu.append(&PredefinedMenuItem::separator())?;
        match no_settings {
            None => menu.append(&item(MenuAction::OpenSettings, "Open settings…"))?,
            Some(why) => menu.append(&MenuItem::with_id("no-settings", format!("Settings unavailable: {why}"), false, None))?,
        }
        menu.append(&item(MenuAction::RefreshNow, "Refresh now"))?;
        menu.append(&pause_menu)?;
        menu.append(&PredefinedMenuItem::separator())?;
        menu.append(&item(MenuAction::Quit, "Quit Vigie"))?;

        let icon = TrayIconBuilder::new()
            .with_id(TRAY_ID)
            .with_icon(icon_image(&snapshot.badge)?)
            .with_tooltip(header_text(snapshot))
            .with_menu(Box::new(menu.clone()))
            .with_menu_on_left_click(true)
            .build()?;
        Ok(Tray { icon, header, pause, lines, menu, badge: snapshot.badge })
    }

    /// Redraws what changed.
    pub fn update(&mut self, snapshot: &Snapshot) -> Result<(), TrayError> {
        if snapshot.badge != self.badge {
            self.icon.set_icon(Some(icon_image(&snapshot.badge)?))?;
            self.badge = snapshot.badge;
        }
        let header = header_text(snapshot);
        self.header.set_text(&header);
        // Unsupported on Linux AppIndicator; harmless there.
        let _ = self.icon.set_tooltip(Some(&header));
        self.pause.set_text(pause_text(snapshot));
        let wanted: Vec<(Source, String)> =
            Source::ALL.into_iter().filter_map(|source| source_line(source, snapshot).map(|text| (source, text))).collect();
        if wanted.iter().map(|(source, _)| *source).ne(self.lines.keys().copied()) {
            // Accounts were added or removed in the settings: the lines
            // below the header follow.
            for line in std::mem::take(&mut self.lines).into_values() {
                self.menu.remove(&line)?;
            }
            for (position, (source, text)) in wanted.iter().enumerate() {
                let line = MenuItem::with_id(format!("line-{}", source.as_str()), text, false, None);
                self.menu.insert(&line, position + 1)?;
                self.lines.insert(*source, line);
            }
            return Ok(());
        }
        for (source, text) in wanted {
            if let Some(line) = self.lines.get(&source) {
                line.set_text(text);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie::badge::{BadgeMode, Unread};
    use vigie::event::AccountSnapshot;
    use vigie::model::AccountId;

    fn account(id: &str, source: Source, connectivity: Connectivity) -> AccountSnapshot {
        AccountSnapshot {
            id: AccountId::new(id),
            name: id.into(),
            source,
            badge_mode: BadgeMode::Count,
            connectivity,
            unread: Unread::default(),
            last_event_at: None,
            last_error: None,
            notice: None,
        }
    }

    #[test]
    fn menu_ids_round_trip() {
        for action in MenuAction::ALL {
            assert_eq!(MenuAction::from_id(action.id()), Some(action));
        }
        assert_eq!(MenuAction::from_id("header"), None);
    }

    #[test]
    fn header_says_demo_and_count() {
        let s = Snapshot { demo: true, badge: Badge { count: 4, dot: false }, ..Snapshot::default() };
        assert_eq!(header_text(&s), "Vigie — 4 unread (demo: no account configured)");
        assert_eq!(header_text(&Snapshot::default()), "Vigie — nothing new");
    }

    #[test]
    fn source_line_shows_the_worst_state_of_its_accounts() {
        let mut s = Snapshot::default();
        s.accounts.push(account("a", Source::Mail, Connectivity::LivePush));
        s.accounts.push(account("b", Source::Mail, Connectivity::AuthFailed { reason: "bad password".into() }));
        s.by_source.insert(Source::Mail, Badge { count: 2, dot: false });
        assert_eq!(source_line(Source::Mail, &s).as_deref(), Some("Mail: 2 · sign-in failed: bad password"));
        assert_eq!(source_line(Source::Chat, &s), None, "no chat account, no chat line");
    }
}
