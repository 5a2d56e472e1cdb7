//! Gathers the updates of pushed events into few publications, so that a
//! flood of messages becomes a few announcements (one summary toast each)
//! instead of one toast per message, while a lone message still goes out at
//! once.
//!
//! The rule: items are published at once if no items were published in the
//! last [`WINDOW`]; otherwise they wait until that window is over, gathering
//! everything that comes meanwhile. Updates without items (badge, reads)
//! wait [`STATE_DELAY`], so that the subscription change that comes just
//! before a message's room change goes out with it, in one write of the
//! state file instead of two. Pure: every method takes `now`.

use std::time::Duration;

use tokio::time::Instant;

use crate::watcher::Update;

/// The shortest time between two publications carrying items.
pub const WINDOW: Duration = Duration::from_millis(500);

/// How long an update without items waits for company.
pub const STATE_DELAY: Duration = Duration::from_millis(5);

/// Updates waiting to be published.
#[derive(Debug, Default)]
pub struct Batch {
    waiting: Option<Update>,
    /// When the waiting update was begun.
    since: Option<Instant>,
    last_items: Option<Instant>,
}

impl Batch {
    /// Adds the update of one event: items and reads add up, counts and
    /// cursor are the newest.
    pub fn add(&mut self, update: Update, now: Instant) {
        match &mut self.waiting {
            None => {
                self.waiting = Some(update);
                self.since = Some(now);
            }
            Some(waiting) => {
                waiting.items.extend(update.items);
                waiting.read.extend(update.read);
                waiting.unread = update.unread.or(waiting.unread);
                waiting.dot = update.dot.or(waiting.dot);
                waiting.cursor = update.cursor.or(waiting.cursor.take());
            }
        }
    }

    /// Items waiting.
    pub fn items(&self) -> usize {
        self.waiting.as_ref().map_or(0, |w| w.items.len())
    }

    /// When the waiting update should be published (`None`: nothing waits).
    pub fn due(&self, now: Instant) -> Option<Instant> {
        let waiting = self.waiting.as_ref()?;
        if waiting.items.is_empty() {
            return Some(self.since.map_or(now, |since| since + STATE_DELAY));
        }
        match self.last_items {
            Some(last) if now < last + WINDOW => Some(last + WINDOW),
            _ => Some(now),
        }
    }

    /// The update to publish now, if one is due.
    pub fn take_due(&mut self, now: Instant) -> Option<Update> {
        if self.due(now)? > now {
            return None;
        }
        self.take(now)
    }

    /// The waiting update, whether due or not (before a resync or an exit).
    pub fn take(&mut self, now: Instant) -> Option<Update> {
        let update = self.waiting.take()?;
        self.since = None;
        if !update.items.is_empty() {
            self.last_items = Some(now);
        }
        Some(update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountId, Item, Source};

    fn with_item(key: &str) -> Update {
        let item = Item {
            source: Source::Chat,
            account: AccountId::new("a"),
            key: key.to_owned(),
            title: String::new(),
            preview: String::new(),
            sender: String::new(),
            link: None,
            time: jiff::Timestamp::UNIX_EPOCH,
        };
        Update { items: vec![item], unread: Some(1), ..Update::default() }
    }

    #[test]
    fn a_lone_message_goes_out_at_once_and_a_flood_waits_for_the_window() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        batch.add(with_item("1"), t0);
        assert_eq!(batch.take_due(t0).map(|u| u.items.len()), Some(1), "the first at once");
        let t1 = t0 + Duration::from_millis(10);
        for key in ["2", "3", "4"] {
            batch.add(with_item(key), t1);
        }
        assert!(batch.take_due(t1).is_none(), "the rest waits");
        assert_eq!(batch.due(t1), Some(t0 + WINDOW));
        let gathered = batch.take_due(t0 + WINDOW).expect("due at the window's end");
        assert_eq!(gathered.items.len(), 3);
        // Long after, a lone message goes out at once again.
        batch.add(with_item("5"), t0 + WINDOW * 3);
        assert!(batch.take_due(t0 + WINDOW * 3).is_some());
    }

    #[test]
    fn counts_wait_briefly_for_the_message_they_belong_to() {
        let t0 = Instant::now();
        let mut batch = Batch::default();
        batch.add(Update { unread: Some(1), ..Update::default() }, t0);
        assert!(batch.take_due(t0).is_none(), "a count waits a moment");
        batch.add(with_item("1"), t0 + Duration::from_millis(1));
        let both = batch.take_due(t0 + Duration::from_millis(1)).expect("the message goes out at once");
        assert_eq!((both.items.len(), both.unread), (1, Some(1)));
        // Alone, a count goes out after the short delay.
        batch.add(Update { unread: Some(0), ..Update::default() }, t0 + WINDOW);
        assert!(batch.take_due(t0 + WINDOW).is_none());
        assert_eq!(batch.take_due(t0 + WINDOW + STATE_DELAY).and_then(|u| u.unread), Some(0));
    }
}
