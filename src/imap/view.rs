//! What an idling connection knows of its selected folder between syncs,
//! so that a push of new mail costs one command after `DONE` instead of a
//! full resync.
//!
//! The server tells a session about every change of its selected folder:
//! `* n EXISTS` when mail arrives, `* n EXPUNGE` when a message goes
//! (renumbering those above it), `* n FETCH (FLAGS …)` when flags change
//! (RFC 3501 §5.2: size updates MUST be sent, flag updates SHOULD; Dovecot,
//! Gmail and Cyrus send them). So when everything heard since the last sync
//! is `EXISTS` growing from `a` to `b`, the messages numbered `a+1..b` in
//! this session are exactly the new ones, nothing else changed, and one
//! `FETCH a+1:b (UID FLAGS BODY.PEEK…)` gives their UIDs, flags and
//! headers: no search, and at most `b − a` messages fetched. Sequence
//! numbers are safe here because the server may not send `EXPUNGE` while
//! answering a plain `FETCH` (RFC 3501 §7.4.1), and we have heard every
//! expunge before it.
//!
//! When what was heard is flag changes and expunges only (mail read or
//! deleted elsewhere), nothing new can have come, and one `UID SEARCH
//! UNSEEN` is all a sync needs. Anything else (new mail together with
//! those, a manual refresh, a response async-imap may have dropped because
//! its channel of 100 was full, a growth bigger than one fetch may take)
//! means a full sync, as before.
//!
//! The count must never run ahead of what a sync looked at, or mail would be
//! skipped: a full sync records the count from *before* its commands, so a
//! message that arrives during them is looked at again by the next sync (and
//! filtered out by UID if the full sync had it already).

use std::collections::BTreeSet;

use async_imap::imap_proto::{MailboxDatum, Response, Status};
use async_imap::types::UnsolicitedResponse;

/// async-imap's channel of unsolicited responses holds this many; when it
/// is full, newer ones are dropped.
const CHANNEL_CAPACITY: usize = 100;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Messages in the folder as this session numbers them, or `None` when
    /// a response may have been lost.
    exists: Option<u32>,
    /// `exists` when the last sync took its look: every message up to it
    /// was looked at.
    synced: Option<u32>,
    /// Unseen UIDs after the last sync.
    unseen: Option<BTreeSet<u32>>,
    /// Since the last sync began: the count changed.
    grew: bool,
    /// Since the last sync began: flags changed or messages were expunged.
    flags: bool,
    /// Since the last sync began: anything else that may change the folder.
    other: bool,
}

/// How to sync now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Only `EXISTS` was heard, and it did not grow: nothing to do.
    Nothing,
    /// Only new messages, numbered `first..=last` in this session.
    New { first: u32, last: u32, unseen: BTreeSet<u32> },
    /// Only flags changed or messages went: which are unseen now.
    Unseen,
    /// A full sync.
    Full,
}

impl View {
    /// The view right after EXAMINE: `exists` messages; the first sync is full.
    pub(crate) fn selected(exists: u32) -> View {
        View { exists: Some(exists), synced: None, unseen: None, grew: false, flags: false, other: true }
    }

    /// Whether anything was heard that a sync should look at.
    pub(crate) fn changed(&self) -> bool {
        self.grew || self.flags || self.other
    }

    /// Something outside the server asks for a full look (a manual refresh).
    pub(crate) fn poked(&mut self) {
        self.other = true;
    }

    /// The count is not known any more (the session must EXAMINE again).
    pub(crate) fn count_lost(&self) -> bool {
        self.exists.is_none()
    }

    /// The folder was examined again: `exists` messages.
    pub(crate) fn reselected(&mut self, exists: u32) {
        self.exists = Some(exists);
    }

    /// Takes in every response `next` gives (a session's channel).
    pub(crate) fn hear_all(&mut self, mut next: impl FnMut() -> Option<UnsolicitedResponse>) {
        let mut heard = 0;
        while let Some(response) = next() {
            heard += 1;
            self.hear(&response);
        }
        if heard >= CHANNEL_CAPACITY {
            // The channel was full: some responses may be lost.
            self.exists = None;
            self.other = true;
        }
    }

    /// Takes in one response.
    pub(crate) fn hear(&mut self, response: &UnsolicitedResponse) {
        match response {
            UnsolicitedResponse::Exists(n) => self.exists_now(*n),
            UnsolicitedResponse::Expunge(_) => self.expunged(),
            UnsolicitedResponse::Recent(_) => {}
            UnsolicitedResponse::Other(data) => self.hear_parsed(data.parsed()),
            _ => self.other = true,
        }
    }

    /// Takes in a response as the IDLE stream hands it over.
    pub(crate) fn hear_parsed(&mut self, response: &Response<'_>) {
        match response {
            Response::MailboxData(MailboxDatum::Exists(n)) => self.exists_now(*n),
            Response::MailboxData(MailboxDatum::Recent(_)) => {}
            Response::Expunge(_) => self.expunged(),
            // Flags changed elsewhere (our own fetches' answers do not come
            // this way).
            Response::Fetch(..) => self.flags = true,
            // A keepalive (`* OK Still here`) changes nothing: resyncing for
            // one that crossed our `DONE` would cost a round of commands
            // every few re-issues of an idle folder.
            Response::Data { status: Status::Ok, outcome } if outcome.code.is_none() => {}
            _ => self.other = true,
        }
    }

    fn exists_now(&mut self, n: u32) {
        if self.exists != Some(n) {
            self.grew = true;
        }
        self.exists = Some(n);
    }

    fn expunged(&mut self) {
        self.exists = self.exists.and_then(|n| n.checked_sub(1));
        self.flags = true;
    }

    /// How the next sync should go, and from now on, responses count for
    /// the sync after it. `known` is whether the folder has a mark (else
    /// it is a baseline, which is always full); `most` is the most new
    /// messages one fetch may take.
    pub(crate) fn plan(&mut self, known: bool, most: u32) -> Plan {
        let plan = match (self.exists, self.synced, &self.unseen) {
            (Some(_), Some(_), Some(_)) if known && !self.other && !self.grew && self.flags => Plan::Unseen,
            (Some(now), Some(before), Some(unseen)) if known && !self.other && !self.flags && now >= before => {
                if now == before {
                    Plan::Nothing
                } else if now - before <= most {
                    Plan::New { first: before + 1, last: now, unseen: unseen.clone() }
                } else {
                    Plan::Full
                }
            }
            _ => Plan::Full,
        };
        match plan {
            // Everything up to the count as it is now is looked at.
            Plan::Full | Plan::Unseen => self.begin_full(),
            Plan::Nothing | Plan::New { .. } => {
                self.grew = false;
                self.other = false;
            }
        }
        plan
    }

    /// A full sync begins now (whatever [`View::plan`] said).
    pub(crate) fn begin_full(&mut self) {
        self.grew = false;
        self.flags = false;
        self.other = false;
        self.synced = self.exists;
    }

    /// The unseen UIDs after the last sync (empty before the first).
    pub(crate) fn unseen(&self) -> BTreeSet<u32> {
        self.unseen.clone().unwrap_or_default()
    }

    /// A full sync found `unseen`.
    pub(crate) fn synced_full(&mut self, unseen: &BTreeSet<u32>) {
        self.unseen = Some(unseen.clone());
    }

    /// A fetch of the new messages up to `last` found the folder's unseen
    /// UIDs to be `unseen`.
    pub(crate) fn synced_new(&mut self, last: u32, unseen: &BTreeSet<u32>) {
        self.synced = Some(last);
        self.unseen = Some(unseen.clone());
    }

    /// The fetch of new messages did not give what it should (the server
    /// numbered things otherwise): the next look is a full sync.
    pub(crate) fn distrust(&mut self) {
        self.other = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synced_at(exists: u32, unseen: &[u32]) -> View {
        let mut view = View::selected(exists);
        assert_eq!(view.plan(true, 50), Plan::Full, "the first sync is full");
        view.synced_full(&unseen.iter().copied().collect());
        view
    }

    #[test]
    fn new_mail_alone_is_fetched_by_its_numbers() {
        let mut view = synced_at(10, &[9]);
        view.hear(&UnsolicitedResponse::Exists(12));
        view.hear(&UnsolicitedResponse::Recent(2));
        assert!(view.changed());
        assert_eq!(view.plan(true, 50), Plan::New { first: 11, last: 12, unseen: [9].into() });
        view.synced_new(12, &[9, 30].into());
        assert!(!view.changed());
        view.hear(&UnsolicitedResponse::Exists(13));
        assert_eq!(view.plan(true, 50), Plan::New { first: 13, last: 13, unseen: [9, 30].into() });
    }

    #[test]
    fn expunges_alone_need_only_the_unseen_search_and_are_counted_down() {
        let mut view = synced_at(10, &[9]);
        view.hear(&UnsolicitedResponse::Expunge(3));
        view.hear(&UnsolicitedResponse::Expunge(3));
        view.hear_parsed(&Response::Fetch(4, Vec::new()));
        assert!(view.changed());
        assert_eq!(view.plan(true, 50), Plan::Unseen);
        view.synced_full(&[9].into());
        view.hear(&UnsolicitedResponse::Exists(9));
        assert_eq!(view.plan(true, 50), Plan::New { first: 9, last: 9, unseen: [9].into() }, "10 − 2 + 1");
    }

    #[test]
    fn new_mail_with_an_expunge_or_a_poke_or_anything_unknown_means_a_full_sync() {
        let mut view = synced_at(10, &[]);
        view.hear(&UnsolicitedResponse::Expunge(3));
        view.hear(&UnsolicitedResponse::Exists(10));
        assert_eq!(view.plan(true, 50), Plan::Full);
        let mut view = synced_at(10, &[]);
        view.poked();
        assert_eq!(view.plan(true, 50), Plan::Full);
        let mut view = synced_at(10, &[]);
        view.hear(&UnsolicitedResponse::Status { mailbox: "INBOX".into(), attributes: Vec::new() });
        assert_eq!(view.plan(true, 50), Plan::Full);
    }

    #[test]
    fn a_big_growth_or_a_baseline_or_a_full_channel_means_a_full_sync() {
        let mut view = synced_at(10, &[]);
        view.hear(&UnsolicitedResponse::Exists(61));
        assert_eq!(view.plan(true, 50), Plan::Full);
        let mut view = synced_at(10, &[]);
        view.hear(&UnsolicitedResponse::Exists(11));
        assert_eq!(view.plan(false, 50), Plan::Full);
        let mut view = synced_at(10, &[]);
        let mut flood = (0..CHANNEL_CAPACITY as u32).map(|i| UnsolicitedResponse::Exists(11 + i));
        view.hear_all(|| flood.next());
        assert!(view.count_lost());
        assert_eq!(view.plan(true, 500), Plan::Full);
    }

    #[test]
    fn mail_that_arrives_during_a_full_sync_is_looked_at_again() {
        let mut view = View::selected(10);
        assert_eq!(view.plan(true, 50), Plan::Full);
        // Heard while the full sync's commands ran: it may or may not have
        // been in their answers.
        view.hear(&UnsolicitedResponse::Exists(11));
        view.synced_full(&BTreeSet::new());
        assert!(view.changed());
        assert_eq!(view.plan(true, 50), Plan::New { first: 11, last: 11, unseen: BTreeSet::new() });
    }

    #[test]
    fn the_same_count_again_needs_nothing() {
        let mut view = synced_at(10, &[]);
        view.hear(&UnsolicitedResponse::Exists(10));
        assert!(!view.changed());
        view.hear(&UnsolicitedResponse::Recent(0));
        assert_eq!(view.plan(true, 50), Plan::Nothing);
    }
}
