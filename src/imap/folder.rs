//! One IMAP connection watching its folders: a single folder in IDLE;
//! several folders at once with NOTIFY (the server sends `* STATUS` for any
//! change in them while we IDLE with no folder selected); or several polled
//! one after the other (the ones beyond the connection cap, or any folder of
//! a server without IDLE). In the last two cases a folder is only opened
//! when its STATUS changed.
//!
//! A sync of a folder is: which UIDs are above the folder's mark, which are
//! unseen, and (unless this is a baseline) the headers and the start of the
//! text of the new unseen ones, peeked so nothing is marked `\Seen`. A
//! baseline (no mark, or the UIDVALIDITY changed) only moves the mark: it
//! announces nothing, however big the folder. On an idling connection,
//! when all the server said since the last sync is that mail arrived, the
//! sync is a single `FETCH` of just the new messages ([`super::view`]).
//!
//! A folder the server will not open is reported ([`Report::Missing`]) and
//! left out; the connection's other folders go on, and it is tried again at
//! the next resync.
//!
//! The IDLE loop: sync until no unsolicited data came in meanwhile (the
//! EXISTS race: mail that arrives between our last command and IDLE is
//! reported to that command, not to IDLE), then IDLE until the server says
//! something, the watcher pokes us (a manual refresh, a scheduled poll),
//! the re-issue time passes, or the link has been silent so long that a
//! `DONE` must prove it alive. Every command has a deadline, so a half-open
//! connection ends in an error (and a reconnect), never in a hang.

use std::collections::BTreeSet;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::{Fetch, Flag};
use futures_util::TryStreamExt;
use jiff::Timestamp;
use tokio::sync::{Notify, mpsc};

use super::auth::Credential;
use super::connect::{self, ImapSession, Target};
use super::cursor::{Mark, uid_set};
use super::message::{HEADER_BYTES, PREVIEW_BYTES, summarize};
use super::mutf7;
use super::view::{Plan, View};
use crate::model::{AccountId, Item, Source};
use crate::watcher::WatchError;

/// Longest wait for the answer to one command.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the tagged OK after `DONE`: a live server answers at
/// once, so silence means the link is gone.
const DONE_TIMEOUT: Duration = Duration::from_secs(15);
/// At most this many new messages are fetched in one sync (the newest); the
/// rest still count, and more than a few become one summary toast anyway.
const MAX_FETCH: usize = 50;
/// Syncs in a row while the server keeps reporting changes, before IDLE
/// gets a chance (IDLE reports them too).
const MAX_RESYNCS: usize = 5;

/// A polled folder's STATUS (MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN,
/// HIGHESTMODSEQ): while it stays the same, the folder is not opened.
/// HIGHESTMODSEQ (with CONDSTORE) moves on any flag change, so it also
/// catches "one read, another marked unread", which leaves the counts alone.
type StatusSeen = (u32, Option<u32>, Option<u32>, Option<u32>, Option<u64>);

/// What every connection of one account shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub account: AccountId,
    pub target: Target,
    pub webmail_link: Option<String>,
    /// Re-issue IDLE this often.
    pub reissue: Duration,
    /// No byte at all for this long during IDLE: check the link.
    pub dead_link: Duration,
}

/// What a connection tells the watcher.
#[derive(Debug)]
pub(crate) enum Report {
    /// A folder was synced.
    Synced(Synced),
    /// A folder cannot be opened (the server does not have it, or will not
    /// let us read it): the connection's other folders are still watched,
    /// and this one is tried again at the next resync.
    Missing {
        folder: String,
        /// The server's words.
        words: String,
    },
    /// The connection made its first full pass; it pushes (IDLE) or polls.
    Up {
        /// Whether it idles (push) rather than polls.
        push: bool,
    },
}

/// The outcome of one folder sync.
#[derive(Debug)]
pub(crate) struct Synced {
    pub folder: String,
    pub mark: Mark,
    /// Every unseen UID in the folder.
    pub unseen: BTreeSet<u32>,
    /// New unseen messages since the previous mark, oldest first, with
    /// Gmail's message id where the server has one (a message with several
    /// labels shows in several folders under one X-GM-MSGID).
    pub new: Vec<(Item, Option<u64>)>,
    /// New unseen messages beyond `new`, not fetched (more than
    /// [`MAX_FETCH`] at once): counted, not listed.
    pub unlisted: usize,
}

impl Synced {
    /// Folds a later sync of the same folder into this one: its state wins,
    /// its new messages come after these.
    fn absorb(&mut self, later: Synced) {
        self.mark = later.mark;
        self.unseen = later.unseen;
        self.new.extend(later.new);
        self.unlisted += later.unlisted;
    }
}

/// Adds `synced` to the pending report of its folder.
fn gather(pending: &mut Option<Synced>, synced: Synced) {
    match pending {
        Some(earlier) => earlier.absorb(synced),
        None => *pending = Some(synced),
    }
}

/// The stable item key of a message.
pub(crate) fn key(folder: &str, uidvalidity: u32, uid: u32) -> String {
    format!("{folder}:{uidvalidity}:{uid}")
}

/// Splits a key made by [`key`] (folder names may contain `:`).
pub(crate) fn parse_key(key: &str) -> Option<(&str, u32, u32)> {
    let mut parts = key.rsplitn(3, ':');
    let uid = parts.next()?.parse().ok()?;
    let uidvalidity = parts.next()?.parse().ok()?;
    let folder = parts.next()?;
    Some((folder, uidvalidity, uid))
}

pub(crate) async fn bounded<T>(
    target: &Target,
    doing: &str,
    limit: Duration,
    future: impl Future<Output = async_imap::error::Result<T>>,
) -> Result<T, WatchError> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(connect::transient(target, doing, &error)),
        Err(_) => Err(WatchError::Transient(format!(
            "{}:{}: no answer to {doing} for {} s; the connection seems dead",
            target.host,
            target.port,
            limit.as_secs()
        ))),
    }
}

/// Empties async-imap's channel of unsolicited responses (it drops new ones
/// when full) into `view`.
fn drain(session: &mut ImapSession, view: &mut View) {
    view.hear_all(|| session.unsolicited_responses.try_recv().ok());
}

/// Empties the channel and says whether anything in it may mean a change
/// (not a mere keepalive), for connections that keep no [`View`].
fn drained_changes(session: &mut ImapSession) -> bool {
    let mut view = View::default();
    drain(session, &mut view);
    view.changed()
}

/// What the server offers that changes how we watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Features {
    /// IDLE (RFC 2177).
    pub idle: bool,
    /// NOTIFY (RFC 5465): one connection can hear about every folder.
    pub notify: bool,
    /// CONDSTORE (RFC 7162): STATUS can report HIGHESTMODSEQ.
    pub condstore: bool,
    /// Gmail's X-GM-EXT-1: messages carry X-GM-MSGID.
    pub gmail: bool,
    /// LIST-STATUS (RFC 5819): the STATUS of many folders in one command.
    pub list_status: bool,
}

impl Features {
    /// What `capabilities` (read after login) offer.
    pub(crate) fn of(capabilities: &async_imap::types::Capabilities) -> Features {
        Features {
            idle: capabilities.has_str("IDLE"),
            notify: capabilities.has_str("NOTIFY"),
            condstore: capabilities.has_str("CONDSTORE"),
            gmail: capabilities.has_str("X-GM-EXT-1"),
            list_status: capabilities.has_str("LIST-STATUS"),
        }
    }
}

/// Opens a session and reads what it offers (after login: the list can
/// grow once authenticated).
pub(crate) async fn open(shared: &Shared, credential: &Credential) -> Result<(ImapSession, Features), WatchError> {
    let target = &shared.target;
    let mut session = connect::open(target, credential).await?;
    let capabilities = bounded(target, "CAPABILITY", COMMAND_TIMEOUT, session.capabilities()).await?;
    Ok((session, Features::of(&capabilities)))
}

/// How one connection learns of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// IDLE in its one selected folder.
    Idle,
    /// NOTIFY for all its folders, heard during IDLE with none selected.
    Notify,
    /// Nothing: the scheduler's polls.
    Poll,
}

/// Watches `folders` on one connection (`opened`, or a new one) until it
/// fails; the caller drops the future to stop it. `marks` are where each
/// folder was left.
pub(crate) async fn watch(
    shared: &Shared,
    credential: &Credential,
    opened: Option<(ImapSession, Features)>,
    folders: &[String],
    mut marks: Vec<Option<Mark>>,
    reports: mpsc::Sender<Report>,
    poke: &Notify,
) -> Result<(), WatchError> {
    let target = &shared.target;
    let (mut session, features) = match opened {
        Some(opened) => opened,
        None => open(shared, credential).await?,
    };
    let wait = match (folders.len(), features) {
        (1, Features { idle: true, .. }) => Wait::Idle,
        (_, Features { idle: true, notify: true, .. }) => Wait::Notify,
        _ => Wait::Poll,
    };
    if wait == Wait::Idle {
        let folder = &folders[0];
        let mut first = true;
        let mailbox = loop {
            match examine(target, &mut session, folder).await? {
                Ok(mailbox) => break mailbox,
                Err(words) => {
                    let missing = Report::Missing { folder: folder.clone(), words };
                    if reports.send(missing).await.is_err() {
                        return Ok(());
                    }
                    if std::mem::take(&mut first) && reports.send(Report::Up { push: true }).await.is_err() {
                        return Ok(());
                    }
                    // Nothing to idle in: log out rather than keep a silent
                    // session the server would end, and look again when
                    // asked (a manual refresh, a hint).
                    let _ = tokio::time::timeout(DONE_TIMEOUT, session.logout()).await;
                    poke.notified().await;
                    session = open(shared, credential).await?.0;
                }
            }
        };
        let uidvalidity = mailbox.uid_validity.unwrap_or(0);
        let mut mark = marks[0];
        let mut view = View::selected(mailbox.exists);
        loop {
            // Mail that keeps arriving while we sync (a burst) is synced
            // again at once, and reported once: one announcement, not one
            // per round trip. A lone mail is reported after its one sync.
            let mut pending = None;
            let started = tokio::time::Instant::now();
            let mut rounds = 0;
            for _ in 0..MAX_RESYNCS {
                rounds += 1;
                let synced = sync(shared, &mut session, features, folder, uidvalidity, &mut mark, Some(&mut view)).await?;
                gather(&mut pending, synced);
                drain(&mut session, &mut view);
                if !view.changed() {
                    break;
                }
                tracing::debug!(folder, ?view, "the server reported changes during the sync: syncing again");
            }
            tracing::debug!(folder, rounds, micros = started.elapsed().as_micros() as u64, "synced");
            if let Some(synced) = pending
                && reports.send(Report::Synced(synced)).await.is_err()
            {
                return Ok(());
            }
            if first {
                first = false;
                if reports.send(Report::Up { push: true }).await.is_err() {
                    return Ok(());
                }
            }
            loop {
                session = idle(shared, session, poke, &mut view).await?;
                if view.changed() {
                    break;
                }
            }
        }
    }
    if wait == Wait::Notify {
        // For folders other than the selected one (and we keep none selected
        // while waiting) the server sends `* STATUS` on new mail, expunges
        // and flag changes (verified with Dovecot 2.3).
        let list: Vec<String> = folders.iter().map(|f| quote(&mutf7::encode(f))).collect();
        let command = format!("NOTIFY SET (mailboxes ({}) (MessageNew MessageExpunge FlagChange))", list.join(" "));
        bounded(target, "NOTIFY SET", COMMAND_TIMEOUT, session.run_command_and_check_ok(&command)).await?;
    }
    let mut last_status: Vec<Option<StatusSeen>> = vec![None; folders.len()];
    // Folders the server refused, reported once until they come back.
    let mut missing: Vec<bool> = vec![false; folders.len()];
    let items = if features.condstore {
        "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"
    } else {
        "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"
    };
    let mut first = true;
    loop {
        let mut pending: Vec<Option<Synced>> = folders.iter().map(|_| None).collect();
        for _ in 0..MAX_RESYNCS {
            let statuses = statuses(target, &mut session, features, folders, items).await?;
            for (i, folder) in folders.iter().enumerate() {
                let opened = match &statuses[i] {
                    Ok(now) => {
                        if last_status[i] == Some(*now) {
                            continue;
                        }
                        examine(target, &mut session, folder).await?.map(|mailbox| (*now, mailbox))
                    }
                    Err(words) => Err(words.clone()),
                };
                let (now, mailbox) = match opened {
                    Ok(opened) => opened,
                    Err(words) => {
                        last_status[i] = None;
                        if !std::mem::replace(&mut missing[i], true)
                            && reports.send(Report::Missing { folder: folder.clone(), words }).await.is_err()
                        {
                            return Ok(());
                        }
                        continue;
                    }
                };
                missing[i] = false;
                let synced = sync(shared, &mut session, features, folder, mailbox.uid_validity.unwrap_or(0), &mut marks[i], None).await?;
                // STATUS is not for the selected folder (RFC 3501): leave it.
                // CLOSE on a folder opened read-only expunges nothing.
                bounded(target, "CLOSE", COMMAND_TIMEOUT, session.close()).await?;
                last_status[i] = Some(now);
                gather(&mut pending[i], synced);
            }
            // Notifications that came in during the pass were answered to
            // its commands, not to the coming IDLE: another pass.
            if !drained_changes(&mut session) || wait != Wait::Notify {
                break;
            }
        }
        for synced in pending.into_iter().flatten() {
            if reports.send(Report::Synced(synced)).await.is_err() {
                return Ok(());
            }
        }
        if first {
            first = false;
            if reports.send(Report::Up { push: wait == Wait::Notify }).await.is_err() {
                return Ok(());
            }
        }
        match wait {
            Wait::Notify => loop {
                // No folder is selected: the view only tells whether the
                // server said anything that is not a keepalive.
                let mut view = View::default();
                session = idle(shared, session, poke, &mut view).await?;
                if view.changed() {
                    break;
                }
            },
            Wait::Idle | Wait::Poll => poke.notified().await,
        }
    }
}

/// Folders asked about in one LIST-STATUS command: its answer (a LIST and
/// a STATUS line each) must fit async-imap's channel of 100 responses.
const LIST_STATUS_FOLDERS: usize = 40;

/// The STATUS of each of `folders` (`Err`: the server's words for one it
/// will not give): with LIST-STATUS, one command for all of them; else one
/// STATUS each.
async fn statuses(
    target: &Target,
    session: &mut ImapSession,
    features: Features,
    folders: &[String],
    items: &str,
) -> Result<Vec<Result<StatusSeen, String>>, WatchError> {
    let mut found: Vec<Option<Result<StatusSeen, String>>> = folders.iter().map(|_| None).collect();
    // A wildcard in a name would list more than the folder itself.
    let listable = |f: &String| !f.contains(['*', '%']);
    if features.list_status && folders.iter().filter(|f| listable(f)).count() > 1 {
        let wanted: Vec<usize> = (0..folders.len()).filter(|i| listable(&folders[*i])).collect();
        for chunk in wanted.chunks(LIST_STATUS_FOLDERS) {
            let names: Vec<String> = chunk.iter().map(|i| mutf7::encode(&folders[*i])).collect();
            let patterns: Vec<String> = names.iter().map(|n| quote(n)).collect();
            let command = format!("LIST \"\" ({}) RETURN (STATUS {items})", patterns.join(" "));
            // Whatever waits in the channel is older than this answer.
            drained_changes(session);
            match bounded(target, "LIST-STATUS", COMMAND_TIMEOUT, async { Ok(session.run_command_and_check_ok(&command).await) }).await? {
                Ok(()) => {}
                // Refused after all: STATUS each, below.
                Err(async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_)) => break,
                Err(error) => return Err(connect::transient(target, "LIST-STATUS", &error)),
            }
            while let Ok(response) = session.unsolicited_responses.try_recv() {
                let async_imap::types::UnsolicitedResponse::Status { mailbox, attributes } = response else { continue };
                let at = names.iter().position(|n| *n == mailbox || (n.eq_ignore_ascii_case("INBOX") && mailbox == "INBOX"));
                if let Some(at) = at {
                    found[chunk[at]] = Some(Ok(status_seen(&attributes)));
                }
            }
        }
    }
    // Folders LIST-STATUS did not answer for (not listed, or \Noselect):
    // STATUS says why in the server's words.
    let mut out = Vec::with_capacity(folders.len());
    for (folder, found) in folders.iter().zip(found) {
        if let Some(found) = found {
            out.push(found);
            continue;
        }
        let status = bounded(target, "STATUS", COMMAND_TIMEOUT, async { Ok(session.status(mutf7::encode(folder), items).await) });
        out.push(match status.await? {
            Ok(s) => Ok((s.exists, s.uid_next, s.uid_validity, s.unseen, s.highest_modseq)),
            Err(async_imap::error::Error::No(raw)) => Err(connect::server_words(&raw)),
            Err(error) => return Err(connect::transient(target, &format!("STATUS {folder}"), &error)),
        });
    }
    Ok(out)
}

fn status_seen(attributes: &[async_imap::imap_proto::StatusAttribute]) -> StatusSeen {
    use async_imap::imap_proto::StatusAttribute as A;
    let mut seen: StatusSeen = (0, None, None, None, None);
    for attribute in attributes {
        match attribute {
            A::Messages(n) => seen.0 = *n,
            A::UidNext(n) => seen.1 = Some(*n),
            A::UidValidity(n) => seen.2 = Some(*n),
            A::Unseen(n) => seen.3 = Some(*n),
            A::HighestModSeq(n) => seen.4 = Some(*n),
            _ => {}
        }
    }
    seen
}

/// Opens `folder` read-only; a folder the server refuses (NO) is `Err`
/// with the server's words.
async fn examine(
    target: &Target,
    session: &mut ImapSession,
    folder: &str,
) -> Result<Result<async_imap::types::Mailbox, String>, WatchError> {
    let doing = format!("EXAMINE {folder}");
    match bounded(target, &doing, COMMAND_TIMEOUT, async { Ok(session.examine(mutf7::encode(folder)).await) }).await? {
        Ok(mailbox) => Ok(Ok(mailbox)),
        Err(async_imap::error::Error::No(raw)) => Ok(Err(connect::server_words(&raw))),
        Err(error) => Err(connect::transient(target, &doing, &error)),
    }
}

fn missing_folder(folder: &str, words: &str) -> WatchError {
    WatchError::Transient(format!("the folder \"{folder}\" cannot be opened ({words})"))
}

/// An IMAP quoted string.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One IDLE round: returns the session, with what the server said (or a
/// poke) in `view`, or an error if the link is gone.
async fn idle(shared: &Shared, session: ImapSession, poke: &Notify, view: &mut View) -> Result<ImapSession, WatchError> {
    let target = &shared.target;
    let pending = session.unsolicited_responses.clone();
    let mut handle = session.idle();
    // `+ idling` comes at once from a live server.
    bounded(target, "IDLE", COMMAND_TIMEOUT.min(shared.dead_link), handle.init()).await?;
    enum Woke {
        Data,
        Poked,
        Silent,
        Reissue,
        Closed,
    }
    // Whatever the server sent before `+ idling` went to the channel, not to
    // the IDLE stream: it must not wait for the next change.
    view.hear_all(|| pending.try_recv().ok());
    let woke = if !view.changed() {
        let (wait, _stop) = handle.wait_with_timeout(shared.dead_link);
        tokio::select! {
            answer = wait => match answer {
                Ok(IdleResponse::NewData(data)) => {
                    tracing::trace!("IDLE: the server spoke");
                    view.hear_parsed(data.parsed());
                    Woke::Data
                }
                Ok(IdleResponse::Timeout) => Woke::Silent,
                // `_stop` is alive, so this is the stream ending (EOF).
                Ok(IdleResponse::ManualInterrupt) => Woke::Closed,
                Err(error) => return Err(connect::transient(target, "IDLE", &error)),
            },
            () = poke.notified() => Woke::Poked,
            () = tokio::time::sleep(shared.reissue) => Woke::Reissue,
        }
    } else {
        Woke::Data
    };
    match woke {
        Woke::Closed => {
            return Err(WatchError::Transient(format!("{}:{}: the server closed the connection", target.host, target.port)));
        }
        Woke::Poked => view.poked(),
        Woke::Data | Woke::Silent | Woke::Reissue => {}
    }
    // After a silent spell, DONE is the liveness probe: no longer patience
    // for it than for the silence itself.
    let mut session = match tokio::time::timeout(DONE_TIMEOUT.min(shared.dead_link), handle.done()).await {
        Ok(Ok(session)) => session,
        Ok(Err(error)) => return Err(connect::transient(target, "IDLE", &error)),
        Err(_) => {
            return Err(WatchError::Transient(format!(
                "{}:{}: the server stopped answering; the connection seems dead",
                target.host, target.port
            )));
        }
    };
    tracing::trace!("IDLE: DONE answered");
    drain(&mut session, view);
    Ok(session)
}

/// Syncs the selected `folder` against `mark` and moves the mark. With a
/// `view` (an idling connection), mail that is all that changed since the
/// last sync is fetched in one command ([`View`]).
async fn sync(
    shared: &Shared,
    session: &mut ImapSession,
    features: Features,
    folder: &str,
    uidvalidity: u32,
    mark: &mut Option<Mark>,
    mut view: Option<&mut View>,
) -> Result<Synced, WatchError> {
    let target = &shared.target;
    let known = mark.filter(|m| m.uidvalidity == uidvalidity);
    let from = known.map_or(0, |m| m.highest);
    let mut discard = View::default();
    drain(session, view.as_deref_mut().unwrap_or(&mut discard));
    if let Some(view) = view.as_deref_mut() {
        let most = u32::try_from(MAX_FETCH).unwrap_or(u32::MAX);
        match view.plan(known.is_some(), most) {
            Plan::Nothing => {
                let (mark, unseen) = (known.unwrap_or(Mark { uidvalidity, highest: from }), view.unseen());
                return Ok(Synced { folder: folder.to_owned(), mark, unseen, new: Vec::new(), unlisted: 0 });
            }
            Plan::New { first, last, unseen } => {
                if let Some(synced) = fetch_new(shared, session, features, folder, uidvalidity, from, (first, last), unseen, view).await? {
                    *mark = Some(synced.mark);
                    return Ok(synced);
                }
                tracing::debug!(account = %shared.account, folder, "the new messages did not add up: full sync");
                view.begin_full();
            }
            Plan::Unseen => {
                let unseen: BTreeSet<u32> =
                    bounded(target, "UID SEARCH UNSEEN", COMMAND_TIMEOUT, session.uid_search("UNSEEN")).await?.into_iter().collect();
                view.synced_full(&unseen);
                let mark = known.unwrap_or(Mark { uidvalidity, highest: from });
                return Ok(Synced { folder: folder.to_owned(), mark, unseen, new: Vec::new(), unlisted: 0 });
            }
            Plan::Full => {}
        }
        if view.count_lost() {
            // Some response was lost: number the messages afresh.
            let mailbox = examine(target, session, folder).await?.map_err(|words| missing_folder(folder, &words))?;
            if mailbox.uid_validity.unwrap_or(0) != uidvalidity {
                return Err(WatchError::Transient(format!("{}: the folder {folder} was rebuilt on the server", target.place())));
            }
            view.reselected(mailbox.exists);
            view.begin_full();
        }
    }
    // `N:*` always matches the last message, even below N: filter.
    let above = bounded(target, "UID SEARCH", COMMAND_TIMEOUT, session.uid_search(format!("UID {}:*", from.saturating_add(1))))
        .await?;
    let mut newer: Vec<u32> = above.into_iter().filter(|uid| *uid > from).collect();
    newer.sort_unstable();
    let highest = newer.last().copied().unwrap_or(from);
    let unseen: BTreeSet<u32> =
        bounded(target, "UID SEARCH UNSEEN", COMMAND_TIMEOUT, session.uid_search("UNSEEN")).await?.into_iter().collect();
    if let Some(view) = view {
        view.synced_full(&unseen);
    }
    let mut new = Vec::new();
    let mut unlisted = 0;
    if known.is_some() {
        let fresh: Vec<u32> = newer.iter().copied().filter(|uid| unseen.contains(uid)).collect();
        unlisted = fresh.len().saturating_sub(MAX_FETCH);
        let fresh = &fresh[unlisted..];
        if !fresh.is_empty() {
            let fetches = bounded(target, "UID FETCH", COMMAND_TIMEOUT, async {
                session.uid_fetch(uid_set(fresh), fetch_items(features)).await?.try_collect::<Vec<Fetch>>().await
            })
            .await?;
            new = items(shared, folder, uidvalidity, &fetches, |f| f.uid.is_some_and(|uid| fresh.contains(&uid)));
        }
    } else {
        tracing::info!(account = %shared.account, folder, uidvalidity, highest, unseen = unseen.len(), "baseline: nothing announced");
    }
    let synced_mark = Mark { uidvalidity, highest };
    *mark = Some(synced_mark);
    Ok(Synced { folder: folder.to_owned(), mark: synced_mark, unseen, new, unlisted })
}

/// What is fetched of a new message: enough for its toast.
fn fetch_items(features: Features) -> String {
    let gmail = if features.gmail { " X-GM-MSGID" } else { "" };
    format!("(UID FLAGS{gmail} BODY.PEEK[HEADER]<0.{HEADER_BYTES}> BODY.PEEK[TEXT]<0.{PREVIEW_BYTES}>)")
}

/// The messages numbered `first..=last` in this session, which the view
/// says are all the new mail, in one `FETCH`; `None` if the answer does not
/// add up (then a full sync is due).
#[allow(clippy::too_many_arguments)]
async fn fetch_new(
    shared: &Shared,
    session: &mut ImapSession,
    features: Features,
    folder: &str,
    uidvalidity: u32,
    from: u32,
    (first, last): (u32, u32),
    mut unseen: BTreeSet<u32>,
    view: &mut View,
) -> Result<Option<Synced>, WatchError> {
    let fetches = bounded(&shared.target, "FETCH", COMMAND_TIMEOUT, async {
        session.fetch(format!("{first}:{last}"), fetch_items(features)).await?.try_collect::<Vec<Fetch>>().await
    })
    .await?;
    let in_range = |f: &Fetch| (first..=last).contains(&f.message) && f.header().is_some() && f.uid.is_some();
    // Anything else in the answer is the server telling of a flag change
    // meanwhile: fine now, a full look next time.
    if fetches.iter().any(|f| !in_range(f)) {
        view.distrust();
    }
    let mut numbers: Vec<u32> = fetches.iter().filter(|f| in_range(f)).map(|f| f.message).collect();
    numbers.sort_unstable();
    numbers.dedup();
    if numbers.len() != usize::try_from(last - first + 1).unwrap_or(usize::MAX) {
        return Ok(None);
    }
    let mut highest = from;
    for fetch in fetches.iter().filter(|f| in_range(f)) {
        let uid = fetch.uid.unwrap_or_default();
        if uid > from {
            highest = highest.max(uid);
            if !fetch.flags().any(|flag| flag == Flag::Seen) {
                unseen.insert(uid);
            }
        }
    }
    let new = items(shared, folder, uidvalidity, &fetches, |f| in_range(f) && f.uid.is_some_and(|uid| uid > from));
    view.synced_new(last, &unseen);
    let mark = Mark { uidvalidity, highest };
    Ok(Some(Synced { folder: folder.to_owned(), mark, unseen, new, unlisted: 0 }))
}

/// The new unseen messages among `fetches` that `wanted` accepts, oldest
/// first, each once.
fn items(
    shared: &Shared,
    folder: &str,
    uidvalidity: u32,
    fetches: &[Fetch],
    wanted: impl Fn(&Fetch) -> bool,
) -> Vec<(Item, Option<u64>)> {
    let mut items: Vec<(u32, Item, Option<u64>)> = fetches
        .iter()
        .filter_map(|f| {
            let uid = f.uid?;
            // Read in the meantime: not new any more.
            if !wanted(f) || f.header().is_none() || f.flags().any(|flag| flag == Flag::Seen) {
                return None;
            }
            Some((uid, item(shared, folder, uidvalidity, uid, f), f.gmail_msg_id().copied()))
        })
        .collect();
    items.sort_by_key(|(uid, _, _)| *uid);
    items.dedup_by_key(|(uid, _, _)| *uid);
    items.into_iter().map(|(_, item, msgid)| (item, msgid)).collect()
}

fn item(shared: &Shared, folder: &str, uidvalidity: u32, uid: u32, fetch: &Fetch) -> Item {
    let summary = summarize(fetch.header().unwrap_or_default(), fetch.text().unwrap_or_default());
    Item {
        source: Source::Mail,
        account: shared.account.clone(),
        key: key(folder, uidvalidity, uid),
        title: if summary.subject.is_empty() { "(no subject)".to_owned() } else { summary.subject },
        preview: summary.preview,
        sender: if summary.sender.is_empty() { "(unknown sender)".to_owned() } else { summary.sender },
        link: link(shared.webmail_link.as_deref(), folder, uidvalidity, uid, summary.message_id.as_deref()),
        time: summary.date.unwrap_or_else(Timestamp::now),
    }
}

/// Where "Open" goes: the account's webmail template with `{folder}`,
/// `{uid}`, `{uidvalidity}` and `{message_id}` filled in (folder and id
/// percent-encoded), else an RFC 2392 `mid:` URL (for whichever mail client
/// handles the scheme), or nothing without a Message-ID.
pub(crate) fn link(template: Option<&str>, folder: &str, uidvalidity: u32, uid: u32, message_id: Option<&str>) -> Option<String> {
    match template {
        Some(template) => Some(
            template
                .replace("{folder}", &percent_encode(folder))
                .replace("{uidvalidity}", &uidvalidity.to_string())
                .replace("{uid}", &uid.to_string())
                .replace("{message_id}", &percent_encode(message_id.unwrap_or_default())),
        ),
        None => message_id.filter(|id| !id.is_empty()).map(|id| format!("mid:{}", percent_encode(id))),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters and `@`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_message_is_fetched_only_in_part_header_and_text_alike() {
        let features = Features { idle: true, notify: false, condstore: false, gmail: false, list_status: false };
        let items = fetch_items(features);
        assert!(items.contains(&format!("BODY.PEEK[HEADER]<0.{HEADER_BYTES}>")), "{items}");
        assert!(items.contains(&format!("BODY.PEEK[TEXT]<0.{PREVIEW_BYTES}>")), "{items}");
    }

    #[test]
    fn syncs_in_a_row_fold_into_one_report_with_the_latest_state_and_every_new_mail() {
        let synced = |uids: &[u32], unseen: &[u32]| Synced {
            folder: "INBOX".into(),
            mark: Mark { uidvalidity: 7, highest: *uids.last().unwrap_or(&0) },
            unseen: unseen.iter().copied().collect(),
            new: uids.iter().map(|&uid| (test_item(uid), None)).collect(),
            unlisted: 0,
        };
        let mut pending = None;
        gather(&mut pending, synced(&[1, 2], &[1, 2]));
        gather(&mut pending, synced(&[3], &[2, 3]));
        let folded = pending.expect("one report");
        assert_eq!(folded.mark.highest, 3);
        assert_eq!(folded.unseen, [2, 3].into());
        assert_eq!(folded.new.iter().map(|(i, _)| i.key.as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
    }

    fn test_item(uid: u32) -> Item {
        Item {
            source: crate::model::Source::Mail,
            account: crate::model::AccountId::new("m"),
            key: uid.to_string(),
            title: String::new(),
            preview: String::new(),
            sender: String::new(),
            link: None,
            time: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn folder_names_are_quoted_for_notify() {
        assert_eq!(quote("INBOX"), "\"INBOX\"");
        assert_eq!(quote("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
    }

    #[test]
    fn keys_round_trip_even_with_colons_in_the_folder() {
        for folder in ["INBOX", "Work/Q3: plans", ""] {
            let k = key(folder, 17, 42);
            assert_eq!(parse_key(&k), Some((folder, 17, 42)), "{k}");
        }
        assert_eq!(parse_key("INBOX:x:1"), None);
        assert_eq!(parse_key("42"), None);
    }

    #[test]
    fn links_fill_the_webmail_template_or_fall_back_to_mid() {
        let template = "https://mail.example.test/#/{folder}/{uid}?v={uidvalidity}&id={message_id}";
        assert_eq!(
            link(Some(template), "Work/Q3", 7, 42, Some("a+b@x.test")).as_deref(),
            Some("https://mail.example.test/#/Work%2FQ3/42?v=7&id=a%2Bb@x.test")
        );
        assert_eq!(link(None, "INBOX", 7, 42, Some("a b@x.test")).as_deref(), Some("mid:a%20b@x.test"));
        assert_eq!(link(None, "INBOX", 7, 42, None), None);
    }
}
