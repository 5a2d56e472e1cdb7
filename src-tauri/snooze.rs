//! Snoozed toasts: "Snooze 1 h" puts a toast here and it is shown again
//! when its time comes, unless its item was read meanwhile.
//!
//! A toast that comes due while notifications are held (pause, quiet
//! hours) waits again until they end: the user asked to be reminded, not
//! woken.
//!
//! Invariants: the queue is in due order and only its front is timed; at
//! most [`MAX_SNOOZED`] wait (the soonest due gives way); one item waits at
//! most once (snoozing it again moves it to the back). The queue is plain data owned by the toast loop:
//! nothing runs in the background, so it ends with the loop.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;
use vigie::model::AccountId;

use crate::toast::Shown;

/// Snoozes kept at once.
pub const MAX_SNOOZED: usize = 32;

/// How long "Snooze 1 h" waits, unless told otherwise (`--snooze-secs`).
pub const DEFAULT_DELAY: Duration = Duration::from_secs(3600);

/// Toasts waiting to be shown again.
#[derive(Debug)]
pub struct Snoozes {
    delay: Duration,
    queue: VecDeque<(Instant, Shown)>,
}

fn is_about(shown: &Shown, account: &AccountId, key: &str) -> bool {
    shown.target.as_ref().is_some_and(|t| &t.account == account && t.key == key)
}

impl Snoozes {
    /// No snooze yet; each will wait `delay`.
    pub fn new(delay: Duration) -> Snoozes {
        Snoozes { delay, queue: VecDeque::new() }
    }

    /// Shows `shown` again after the delay. Only toasts about one item can
    /// be snoozed (their button is the only one).
    pub fn snooze(&mut self, shown: Shown) {
        let Some(target) = &shown.target else { return };
        let (account, key) = (target.account.clone(), target.key.clone());
        self.cancel(&account, &key);
        if self.queue.len() >= MAX_SNOOZED {
            self.queue.pop_front();
        }
        self.queue.push_back((Instant::now() + self.delay, shown));
    }

    /// Puts a toast that came due back in line until `due`: toasts are
    /// held now.
    pub fn hold(&mut self, shown: Shown, due: Instant) {
        if self.queue.len() >= MAX_SNOOZED {
            self.queue.pop_front();
        }
        let at = self.queue.partition_point(|(other, _)| *other <= due);
        self.queue.insert(at, (due, shown));
    }

    /// Forgets the snooze of this item: it was read.
    pub fn cancel(&mut self, account: &AccountId, key: &str) {
        self.queue.retain(|(_, shown)| !is_about(shown, account, key));
    }

    /// How many wait.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// The next toast whose time has come; pending while none waits.
    /// Cancel-safe: nothing is taken off the queue before it resolves.
    pub async fn next_due(&mut self) -> Shown {
        let Some((due, _)) = self.queue.front() else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(*due).await;
        match self.queue.pop_front() {
            Some((_, shown)) => shown,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toast::{Target, Toast};
    use vigie::watcher::Action;

    fn about(key: &str) -> Shown {
        Shown {
            toast: Toast { title: format!("toast {key}"), body: String::new(), category: Some("email.arrived") },
            sound: false,
            target: Some(Target { account: AccountId::new("work"), key: key.into(), link: None, actions: vec![Action::MarkRead] }),
        }
    }

    async fn due_within(snoozes: &mut Snoozes, limit: Duration) -> Option<Shown> {
        tokio::time::timeout(limit, snoozes.next_due()).await.ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_snoozed_toast_comes_back_after_the_delay_and_not_before() {
        let mut snoozes = Snoozes::new(Duration::from_secs(3600));
        snoozes.snooze(about("a"));
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(3599)).await, None);
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(2)).await, Some(about("a")));
        assert_eq!(snoozes.len(), 0, "shown once");
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_read_meanwhile_does_not_come_back() {
        let mut snoozes = Snoozes::new(Duration::from_secs(60));
        snoozes.snooze(about("a"));
        snoozes.snooze(about("b"));
        snoozes.cancel(&AccountId::new("work"), "a");
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(61)).await, Some(about("b")));
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(3600)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn snoozes_are_bounded_and_the_oldest_gives_way() {
        let mut snoozes = Snoozes::new(Duration::from_secs(60));
        for i in 0..=MAX_SNOOZED {
            snoozes.snooze(about(&i.to_string()));
        }
        assert_eq!(snoozes.len(), MAX_SNOOZED);
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(61)).await, Some(about("1")), "\"0\" was dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn snoozing_an_item_again_keeps_one_snooze_from_the_last_press() {
        let mut snoozes = Snoozes::new(Duration::from_secs(60));
        snoozes.snooze(about("a"));
        tokio::time::advance(Duration::from_secs(30)).await;
        snoozes.snooze(about("a"));
        assert_eq!(snoozes.len(), 1);
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(59)).await, None);
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(2)).await, Some(about("a")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_toast_held_when_due_comes_back_when_the_hold_ends_in_due_order() {
        let mut snoozes = Snoozes::new(Duration::from_secs(60));
        snoozes.snooze(about("a"));
        tokio::time::advance(Duration::from_secs(30)).await;
        snoozes.snooze(about("b"));
        let due = due_within(&mut snoozes, Duration::from_secs(31)).await.expect("a is due");
        // Quiet hours for the next 10 minutes: "a" waits until then, after "b".
        snoozes.hold(due, Instant::now() + Duration::from_secs(600));
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(31)).await, Some(about("b")));
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(568)).await, None, "held until the end");
        assert_eq!(due_within(&mut snoozes, Duration::from_secs(2)).await, Some(about("a")));
    }

    #[test]
    fn a_summary_cannot_be_snoozed() {
        let mut snoozes = Snoozes::new(Duration::from_secs(60));
        snoozes.snooze(Shown { target: None, ..about("a") });
        assert_eq!(snoozes.len(), 0);
    }
}
