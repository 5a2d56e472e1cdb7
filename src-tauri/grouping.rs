//! Bursts spread over several fetches. One fetch of many items is already
//! one summary toast ([`toast::compose`]); but a busy room or a mailing
//! list also brings items one or two at a time, a few seconds apart, and
//! each would be a toast of its own. Here the items of one account that
//! arrive within [`WINDOW`] of the previous ones count together: while the
//! count stays within the burst threshold each arrival gets its own toast,
//! beyond it they become one summary toast that is updated in place (the
//! notification server's `replaces_id`) as more come.
//!
//! Invariants: a group ends [`WINDOW`] after its last arrival, so memory
//! holds at most one group per account that spoke within the window; a
//! silent event (a baseline, held by pause or quiet hours) neither opens
//! nor extends a group, since the user saw nothing of it.
//!
//! [`toast::compose`]: crate::toast::compose

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use vigie::CoreEvent;
use vigie::model::{AccountId, Item, Source};

/// How long after an account's last arrival the next one still joins it.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Senders a summary remembers by name (the toast names three).
const SENDERS_KEPT: usize = 8;

/// How an event's items are toasted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// As themselves: the newest speaks for them.
    Items,
    /// As one summary of everything in the group so far.
    Summary(Summary),
}

/// What a summary toast counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub source: Source,
    /// Items in the group, fetched or only counted.
    pub count: usize,
    /// Distinct senders, first come first, at most [`SENDERS_KEPT`].
    pub senders: Vec<String>,
    /// More distinct senders than `senders` holds.
    pub more_senders: usize,
    /// The room every chat message of the group came from, if all came
    /// from one.
    pub room: Option<String>,
    /// Two items came from different rooms (or one was a direct message).
    mixed: bool,
    /// The summary toast this one updates, if one is still shown.
    pub replaces: Option<u32>,
}

impl Summary {
    /// An empty summary of `source`'s items.
    pub fn new(source: Source) -> Summary {
        Summary { source, count: 0, senders: Vec::new(), more_senders: 0, room: None, mixed: false, replaces: None }
    }

    /// Counts `items` and `unlisted` more that were counted but not fetched.
    pub fn add(&mut self, items: &[Item], unlisted: usize) {
        let first = self.count == 0;
        self.count += items.len() + unlisted;
        for (i, item) in items.iter().enumerate() {
            if !self.senders.contains(&item.sender) {
                if self.senders.len() < SENDERS_KEPT {
                    self.senders.push(item.sender.clone());
                } else {
                    self.more_senders += 1;
                }
            }
            // A direct message's "room" is named after its sender.
            let room = (item.source == Source::Chat && item.title != item.sender).then_some(&item.title);
            match room {
                Some(room) if first && i == 0 => self.room = Some(room.clone()),
                Some(room) if !self.mixed && self.room.as_ref() == Some(room) => {}
                _ => {
                    self.mixed = true;
                    self.room = None;
                }
            }
        }
    }
}

#[derive(Debug)]
struct Group {
    last: Instant,
    summary: Summary,
}

/// The open groups, one per account.
#[derive(Debug, Default)]
pub struct Grouping {
    groups: HashMap<AccountId, Group>,
}

impl Grouping {
    /// How to toast `event` arriving `now`, given the burst threshold;
    /// `None` for events that are not new items to show.
    pub fn shape(&mut self, now: Instant, event: &CoreEvent, threshold: u32) -> Option<Shape> {
        let CoreEvent::NewItems { account, items, silent: false, unlisted } = event else { return None };
        let first = items.first()?;
        self.groups.retain(|_, group| now.duration_since(group.last) <= WINDOW);
        let group =
            self.groups.entry(account.clone()).or_insert_with(|| Group { last: now, summary: Summary::new(first.source) });
        group.last = now;
        group.summary.add(items, *unlisted);
        if group.summary.count > threshold as usize { Some(Shape::Summary(group.summary.clone())) } else { Some(Shape::Items) }
    }

    /// The summary toast of `account`'s group got the notification
    /// server's `id`, which its next update replaces.
    pub fn summary_shown(&mut self, account: &AccountId, id: Option<u32>) {
        if let Some(group) = self.groups.get_mut(account) {
            group.summary.replaces = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(source: Source, key: &str, sender: &str, title: &str) -> Item {
        Item {
            source,
            account: AccountId::new("work"),
            key: key.into(),
            title: title.into(),
            preview: String::new(),
            sender: sender.into(),
            link: None,
            time: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn arrival(items: Vec<Item>, unlisted: usize) -> CoreEvent {
        CoreEvent::NewItems { account: AccountId::new("work"), items, silent: false, unlisted }
    }

    fn mail(key: &str, sender: &str) -> CoreEvent {
        arrival(vec![item(Source::Mail, key, sender, "subject")], 0)
    }

    fn summary(shape: Option<Shape>) -> Summary {
        match shape {
            Some(Shape::Summary(summary)) => summary,
            other => panic!("expected a summary, got {other:?}"),
        }
    }

    #[test]
    fn items_arriving_one_by_one_become_a_summary_past_the_threshold() {
        let mut grouping = Grouping::default();
        let start = Instant::now();
        for (i, sender) in ["Ann", "Bob", "Ann"].iter().enumerate() {
            let at = start + Duration::from_secs(i as u64 * 3);
            assert_eq!(grouping.shape(at, &mail(&i.to_string(), sender), 3), Some(Shape::Items), "arrival {i}");
        }
        let fourth = summary(grouping.shape(start + Duration::from_secs(9), &mail("3", "Cy"), 3));
        assert_eq!((fourth.count, fourth.senders.as_slice()), (4, &["Ann".to_owned(), "Bob".into(), "Cy".into()][..]));
        assert_eq!(fourth.replaces, None, "the first summary replaces nothing");
    }

    #[test]
    fn each_later_arrival_updates_the_summary_shown() {
        let mut grouping = Grouping::default();
        let now = Instant::now();
        let first = summary(grouping.shape(now, &arrival((0..5).map(|i| item(Source::Mail, &i.to_string(), "Ann", "s")).collect(), 0), 3));
        assert_eq!(first.count, 5);
        grouping.summary_shown(&AccountId::new("work"), Some(42));
        let next = summary(grouping.shape(now + Duration::from_secs(2), &mail("5", "Bob"), 3));
        assert_eq!((next.count, next.replaces), (6, Some(42)));
    }

    #[test]
    fn a_quiet_spell_longer_than_the_window_starts_afresh() {
        let mut grouping = Grouping::default();
        let now = Instant::now();
        for i in 0..4 {
            grouping.shape(now, &mail(&i.to_string(), "Ann"), 3);
        }
        let later = now + WINDOW + Duration::from_secs(1);
        assert_eq!(grouping.shape(later, &mail("4", "Ann"), 3), Some(Shape::Items));
    }

    #[test]
    fn the_window_slides_with_each_arrival() {
        let mut grouping = Grouping::default();
        let mut at = Instant::now();
        for i in 0..3 {
            grouping.shape(at, &mail(&i.to_string(), "Ann"), 3);
            at += WINDOW - Duration::from_secs(1);
        }
        assert_eq!(summary(grouping.shape(at, &mail("3", "Ann"), 3)).count, 4, "each arrival was within the window of the last");
    }

    #[test]
    fn accounts_are_grouped_apart() {
        let mut grouping = Grouping::default();
        let now = Instant::now();
        for i in 0..3 {
            grouping.shape(now, &mail(&i.to_string(), "Ann"), 3);
        }
        let other = CoreEvent::NewItems {
            account: AccountId::new("home"),
            items: vec![item(Source::Mail, "x", "Ann", "s")],
            silent: false,
            unlisted: 0,
        };
        assert_eq!(grouping.shape(now, &other, 3), Some(Shape::Items));
    }

    #[test]
    fn items_counted_but_not_fetched_count_too() {
        let mut grouping = Grouping::default();
        let shape = grouping.shape(Instant::now(), &arrival(vec![item(Source::Mail, "a", "Ann", "s")], 499), 3);
        assert_eq!(summary(shape).count, 500);
    }

    #[test]
    fn silent_events_neither_open_nor_extend_a_group() {
        let mut grouping = Grouping::default();
        let now = Instant::now();
        let baseline = CoreEvent::NewItems {
            account: AccountId::new("work"),
            items: (0..10).map(|i| item(Source::Mail, &i.to_string(), "Ann", "s")).collect(),
            silent: true,
            unlisted: 0,
        };
        assert_eq!(grouping.shape(now, &baseline, 3), None);
        assert_eq!(grouping.shape(now, &mail("10", "Ann"), 3), Some(Shape::Items));
    }

    #[test]
    fn a_summary_names_the_room_when_every_message_came_from_one() {
        let mut grouping = Grouping::default();
        let now = Instant::now();
        let message = |key: &str, sender: &str, room: &str| arrival(vec![item(Source::Chat, key, sender, room)], 0);
        for (i, sender) in ["Ann", "Bob", "Cy", "Dan"].iter().enumerate() {
            grouping.shape(now, &message(&i.to_string(), sender, "general"), 3);
        }
        assert_eq!(summary(grouping.shape(now, &message("4", "Ann", "general"), 3)).room.as_deref(), Some("general"));
        assert_eq!(summary(grouping.shape(now, &message("5", "Eve", "random"), 3)).room, None, "two rooms: none named");
    }

    #[test]
    fn a_summary_keeps_a_bounded_list_of_senders() {
        let mut grouping = Grouping::default();
        let items = (0..50).map(|i| item(Source::Mail, &i.to_string(), &format!("Sender {i}"), "s")).collect();
        let shape = summary(grouping.shape(Instant::now(), &arrival(items, 0), 3));
        assert_eq!((shape.senders.len(), shape.more_senders), (SENDERS_KEPT, 50 - SENDERS_KEPT));
    }
}
