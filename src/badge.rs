//! The unified badge: one number (or a dot) for the tray, derived from every
//! account's unread state and the user's per-account badge choice.
//!
//! Invariant: the badge is a pure function of the account states; nothing
//! increments or decrements it directly, so it cannot drift from the counts
//! the user sees per account.

use std::collections::BTreeMap;

use crate::model::Source;

/// How an account contributes to the badge, chosen per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BadgeMode {
    /// Its unread count adds to the number.
    #[default]
    Count,
    /// Anything unread only lights the dot.
    Dot,
    /// It never touches the badge.
    Ignore,
}

/// What one account has unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unread {
    /// Exact unread count, when the source can tell.
    pub count: Option<u32>,
    /// "Something new" for sources (or modes) without a count.
    pub dot: bool,
}

/// The unified badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Badge {
    /// Sum of the counted accounts' unread counts.
    pub count: u32,
    /// Something is new that has no count.
    pub dot: bool,
}

/// Largest count drawn as digits; above it the badge reads "99+".
pub const MAX_SHOWN: u32 = 99;

impl Badge {
    /// Combines accounts into one badge.
    pub fn combine<'a>(accounts: impl IntoIterator<Item = (BadgeMode, &'a Unread)>) -> Badge {
        let mut badge = Badge::default();
        for (mode, unread) in accounts {
            let has_any = unread.dot || unread.count.is_some_and(|c| c > 0);
            match mode {
                BadgeMode::Count => match unread.count {
                    Some(c) => badge.count = badge.count.saturating_add(c),
                    None => badge.dot |= unread.dot,
                },
                BadgeMode::Dot => badge.dot |= has_any,
                BadgeMode::Ignore => {}
            }
        }
        badge
    }

    /// What the tray draws: empty, `1`…`99`, `99+`, or `•` when only a dot.
    pub fn label(&self) -> String {
        match self.count {
            0 if self.dot => "•".to_owned(),
            0 => String::new(),
            c if c > MAX_SHOWN => format!("{MAX_SHOWN}+"),
            c => c.to_string(),
        }
    }

    /// True when the badge shows nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && !self.dot
    }
}

/// The badge split by source, for the tray menu and the headless `badge` line.
pub fn by_source<'a>(
    accounts: impl IntoIterator<Item = (Source, BadgeMode, &'a Unread)>,
) -> BTreeMap<Source, Badge> {
    let mut grouped: BTreeMap<Source, Vec<(BadgeMode, &Unread)>> = BTreeMap::new();
    for (source, mode, unread) in accounts {
        grouped.entry(source).or_default().push((mode, unread));
    }
    grouped
        .into_iter()
        .map(|(source, list)| (source, Badge::combine(list)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unread(count: Option<u32>, dot: bool) -> Unread {
        Unread { count, dot }
    }

    #[test]
    fn counted_accounts_add_up() {
        let a = unread(Some(3), false);
        let b = unread(Some(4), false);
        let badge = Badge::combine([(BadgeMode::Count, &a), (BadgeMode::Count, &b)]);
        assert_eq!(badge, Badge { count: 7, dot: false });
        assert_eq!(badge.label(), "7");
    }

    #[test]
    fn dot_mode_turns_a_count_into_a_dot() {
        let a = unread(Some(5), false);
        let badge = Badge::combine([(BadgeMode::Dot, &a)]);
        assert_eq!(badge, Badge { count: 0, dot: true });
        assert_eq!(badge.label(), "•");
    }

    #[test]
    fn ignored_accounts_do_not_touch_the_badge() {
        let a = unread(Some(5), true);
        let badge = Badge::combine([(BadgeMode::Ignore, &a)]);
        assert!(badge.is_empty());
        assert_eq!(badge.label(), "");
    }

    #[test]
    fn a_source_without_count_shows_a_dot_beside_numbers() {
        let counted = unread(Some(2), false);
        let uncounted = unread(None, true);
        let badge = Badge::combine([(BadgeMode::Count, &counted), (BadgeMode::Count, &uncounted)]);
        assert_eq!(badge, Badge { count: 2, dot: true });
        assert_eq!(badge.label(), "2", "a number wins over the dot in the label");
    }

    #[test]
    fn labels_cap_at_99_plus() {
        for (count, label) in [(1, "1"), (9, "9"), (10, "10"), (99, "99"), (100, "99+"), (u32::MAX, "99+")] {
            assert_eq!(Badge { count, dot: false }.label(), label, "count {count}");
        }
    }

    #[test]
    fn counts_saturate_instead_of_overflowing() {
        let a = unread(Some(u32::MAX), false);
        let b = unread(Some(10), false);
        assert_eq!(Badge::combine([(BadgeMode::Count, &a), (BadgeMode::Count, &b)]).count, u32::MAX);
    }

    #[test]
    fn breakdown_groups_by_source() {
        let a = unread(Some(1), false);
        let b = unread(Some(2), false);
        let c = unread(None, true);
        let split = by_source([
            (Source::Mail, BadgeMode::Count, &a),
            (Source::Mail, BadgeMode::Count, &b),
            (Source::Tasks, BadgeMode::Count, &c),
        ]);
        assert_eq!(split[&Source::Mail], Badge { count: 3, dot: false });
        assert_eq!(split[&Source::Tasks], Badge { count: 0, dot: true });
        assert!(!split.contains_key(&Source::Chat));
    }
}
