//! The IMAP watcher against a real Dovecot (`support::dovecot`), through the
//! real core: what is announced, what is counted, and how failures show.
//!
//! These run on the real clock (real sockets, a real server). Mail is put
//! in from a second IMAP connection (or `doveadm save` while the server is
//! down); the watcher learns of it by IDLE unless a test says otherwise.
//! "Ready" is the account going live: the watcher reports it after its
//! first sync of every folder, so mail added after it is new mail.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use vigie::config::AccountConfig;
use vigie::imap::{ImapWatcher, MailSettings, PASSWORD_SECRET, TlsMode};
use vigie::model::{AccountId, Connectivity, Item, Source};
use vigie::scheduler::{ScheduleConfig, Trigger};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::watcher::Action;
use vigie::{AccountSpec, CoreEvent};

use crate::support::blackhole::Blackhole;
use crate::support::dovecot::{Dovecot, ImapClient, Options, PASSWORD, USER, message};
use crate::support::{Rig, account_config, any_new_items, if_within, keys, within};

const ID: &str = "mail";
const PATIENCE: Duration = Duration::from_secs(30);

/// Fetches only when the watcher or the test asks, and retries quickly.
pub fn on_demand() -> ScheduleConfig {
    ScheduleConfig {
        coalesce: Duration::from_millis(20),
        min_gap: Duration::ZERO,
        backoff: (Duration::from_millis(200), Duration::from_millis(400), Duration::from_secs(1)),
        ..ScheduleConfig::polling(Duration::from_secs(3_600))
    }
}

/// Plaintext to the loopback Dovecot, watching `folders`.
pub fn plain(dovecot: &Dovecot, folders: &[&str]) -> MailSettings {
    MailSettings {
        folders: folders.iter().map(|f| (*f).to_owned()).collect(),
        port: Some(dovecot.port()),
        tls: TlsMode::None,
        allow_plaintext_on_loopback: true,
        ..MailSettings::default()
    }
}

/// The mail account as the core runs it, signing in with `password`.
pub fn mail_account(settings: MailSettings, password: &str) -> AccountSpec {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets.set(&AccountId::new(ID), PASSWORD_SECRET, &SecretString::from(password.to_owned())).expect("store");
    let config = AccountConfig {
        server: Some("127.0.0.1".to_owned()),
        username: Some(USER.to_owned()),
        mail: Some(settings),
        ..account_config(ID, Source::Mail)
    };
    let watcher = ImapWatcher::from_config(&config, secrets).expect("valid mail settings");
    AccountSpec { config, schedule: on_demand(), watcher: Box::new(watcher) }
}

/// Waits until the account's connectivity matches `wanted`; returns it.
pub async fn connectivity(rig: &mut Rig, what: &str, wanted: impl Fn(&Connectivity) -> bool) -> Connectivity {
    let events = within(
        PATIENCE,
        what,
        rig.events_until(what, |e| matches!(e, CoreEvent::Connectivity { state, .. } if wanted(state))),
    )
    .await;
    match events.last() {
        Some(CoreEvent::Connectivity { state, .. }) => state.clone(),
        other => panic!("expected a connectivity event, got {other:?}"),
    }
}

/// Waits for the account to go live (IDLE on every folder after the first
/// sync); returns the events before it.
pub async fn live(rig: &mut Rig) -> Vec<CoreEvent> {
    within(
        PATIENCE,
        "the account going live",
        rig.events_until("live push", |e| matches!(e, CoreEvent::Connectivity { state: Connectivity::LivePush, .. })),
    )
    .await
}

/// A core watching `settings` with the right password, live.
async fn watching(settings: MailSettings, dir: &tempfile::TempDir) -> Rig {
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(settings, PASSWORD)]);
    live(&mut rig).await;
    rig
}

/// The next announced items.
pub async fn announced(rig: &mut Rig, what: &str) -> Vec<Item> {
    let (items, silent) = within(PATIENCE, what, rig.next_new_items(ID)).await;
    assert!(!silent, "notifications are not paused");
    items
}

/// Waits until the account's unread count is `count`.
pub async fn count_becomes(rig: &mut Rig, count: u32) {
    let mut snapshots = rig.handle.subscribe();
    let reached = |s: &vigie::Snapshot| s.accounts[0].unread.count == Some(count);
    let wait = async {
        loop {
            if reached(&snapshots.borrow_and_update()) {
                return;
            }
            snapshots.changed().await.expect("the core is running");
        }
    };
    let shown = rig.handle.snapshot().accounts[0].unread.count;
    if tokio::time::timeout(PATIENCE, wait).await.is_err() {
        panic!("the unread count stayed {shown:?}, expected {count}");
    }
}

fn unread_count(rig: &Rig) -> Option<u32> {
    rig.handle.snapshot().accounts[0].unread.count
}

async fn uidvalidity(client: &mut ImapClient, folder: &str) -> u32 {
    client.uid_state(folder).await.0
}

#[tokio::test]
async fn a_new_mail_in_inbox_is_announced_once_with_decoded_sender_subject_and_preview() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    client.append("INBOX", &message("old@example.test", "Already there", "old"), false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;
    assert_eq!(unread_count(&rig), Some(1), "the mail already there is counted, not announced");

    let uid = client
        .append("INBOX", &message("=?UTF-8?Q?Zo=C3=A9_Martin?= <zoe@example.test>", "Lunch on Friday?", "Hi!\r\nThe usual place at noon?"), false)
        .await;
    let items = announced(&mut rig, "the new mail").await;
    let validity = uidvalidity(&mut client, "INBOX").await;
    assert_eq!(keys(&items), [format!("INBOX:{validity}:{uid}").as_str()]);
    assert_eq!(items[0].sender, "Zoé Martin");
    assert_eq!(items[0].title, "Lunch on Friday?");
    assert_eq!(items[0].preview, "Hi! The usual place at noon?");
    assert!(items[0].link.as_deref().is_some_and(|l| l.starts_with("mid:")), "{:?}", items[0].link);
    count_becomes(&mut rig, 2).await;
    assert!(!client.flags("INBOX", uid).await.contains("\\Seen"), "watching never marks mail read");

    // A resync sees the same mail again; only the next new one is announced.
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    let next = client.append("INBOX", &message("b@example.test", "Second", "two"), false).await;
    let items = announced(&mut rig, "the second mail").await;
    assert_eq!(keys(&items), [format!("INBOX:{validity}:{next}").as_str()]);
}

#[tokio::test]
async fn a_new_mail_in_a_second_folder_is_announced() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    client.create("Work").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX", "Work"]), &dir).await;

    let uid = client.append("Work", &message("boss@example.test", "Quarterly plan", "see attached"), false).await;
    let items = announced(&mut rig, "the mail in Work").await;
    let validity = uidvalidity(&mut client, "Work").await;
    assert_eq!(keys(&items), [format!("Work:{validity}:{uid}").as_str()]);
    assert_eq!(items[0].title, "Quarterly plan");
    client.append("INBOX", &message("a@example.test", "Hello", "hi"), false).await;
    let items = announced(&mut rig, "the mail in INBOX").await;
    assert!(items[0].key.starts_with("INBOX:"), "{items:?}");
    count_becomes(&mut rig, 2).await;
}

#[tokio::test]
async fn reading_a_mail_elsewhere_lowers_the_count_and_names_it_read() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let first = client.append("INBOX", &message("a@example.test", "One", "1"), false).await;
    client.append("INBOX", &message("b@example.test", "Two", "2"), false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;
    assert_eq!(unread_count(&rig), Some(2));

    client.mark_seen("INBOX", first).await;
    let validity = uidvalidity(&mut client, "INBOX").await;
    let key = format!("INBOX:{validity}:{first}");
    within(
        PATIENCE,
        "the mail read elsewhere",
        rig.events_until("item read", |e| matches!(e, CoreEvent::ItemRead { key: k, .. } if *k == key)),
    )
    .await;
    count_becomes(&mut rig, 1).await;
}

#[tokio::test]
async fn an_expunged_mail_lowers_the_count() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    client.append("INBOX", &message("a@example.test", "One", "1"), false).await;
    let doomed = client.append("INBOX", &message("b@example.test", "Two", "2"), false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;
    assert_eq!(unread_count(&rig), Some(2));

    client.expunge("INBOX", doomed).await;
    count_becomes(&mut rig, 1).await;
}

#[tokio::test]
async fn the_first_sync_of_a_big_mailbox_announces_nothing_and_counts_everything() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let mails: Vec<String> = (0..2_000).map(|i| message("list@example.test", &format!("Digest {i}"), "text")).collect();
    client.append_many("INBOX", &mails).await;
    let seen = client.append("INBOX", &message("a@example.test", "Read already", "x"), true).await;
    assert_eq!(seen, 2_001);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX"]), PASSWORD)]);
    let events = live(&mut rig).await;
    assert!(!any_new_items(&events), "the baseline fires no toast");
    assert_eq!(unread_count(&rig), Some(2_000));

    // And the cursor is at the top: the next mail is the only one announced.
    let uid = client.append("INBOX", &message("a@example.test", "Fresh", "x"), false).await;
    let items = announced(&mut rig, "the first mail after the baseline").await;
    assert_eq!(items.len(), 1, "{:?}", keys(&items));
    assert!(items[0].key.ends_with(&format!(":{uid}")));
}

#[tokio::test]
async fn mail_that_arrived_while_the_server_was_down_is_announced_once_after_it_returns() {
    let mut dovecot = Dovecot::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;

    dovecot.stop().await;
    connectivity(&mut rig, "backing off", |c| matches!(c, Connectivity::BackingOff { .. })).await;
    dovecot.deliver("INBOX", &message("night@example.test", "Sent while you were away", "x"));
    dovecot.deliver("INBOX", &message("night@example.test", "Also while away", "y"));
    dovecot.restart().await;

    let items = announced(&mut rig, "the mail delivered while down").await;
    let mut titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
    // Delivered in the same second: the server numbers them in any order.
    titles.sort_unstable();
    assert_eq!(titles, ["Also while away", "Sent while you were away"]);
    live(&mut rig).await;

    let mut client = dovecot.client().await;
    client.append("INBOX", &message("a@example.test", "Back to normal", "z"), false).await;
    let items = announced(&mut rig, "the next mail").await;
    let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["Back to normal"], "nothing is announced twice");
    count_becomes(&mut rig, 3).await;
}

#[tokio::test]
async fn restarting_the_core_announces_nothing_again() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;
    client.append("INBOX", &message("a@example.test", "Before the restart", "x"), false).await;
    assert_eq!(announced(&mut rig, "the first mail").await.len(), 1);
    rig.stop().await;
    drop(rig);

    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX"]), PASSWORD)]);
    let events = live(&mut rig).await;
    assert!(!any_new_items(&events), "the mail from before the restart is not announced again: {events:#?}");
    client.append("INBOX", &message("a@example.test", "After the restart", "y"), false).await;
    let items = announced(&mut rig, "the mail after the restart").await;
    let titles: Vec<&str> = items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(titles, ["After the restart"]);
}

#[tokio::test]
async fn a_changed_uidvalidity_rebaselines_without_announcing() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    client.append("INBOX", &message("a@example.test", "One", "1"), false).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;
    rig.stop().await;
    drop(rig);

    let old = uidvalidity(&mut client, "INBOX").await;
    dovecot.change_uidvalidity("INBOX", old + 1000);
    // Unseen mail under the new UIDVALIDITY is not announced as new: the
    // UIDs cannot be compared any more.
    client.append("INBOX", &message("a@example.test", "Two", "2"), false).await;
    assert_eq!(uidvalidity(&mut client, "INBOX").await, old + 1000);

    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX"]), PASSWORD)]);
    let events = live(&mut rig).await;
    assert!(!any_new_items(&events), "re-baselined silently: {events:#?}");
    assert_eq!(unread_count(&rig), Some(2));
    let uid = client.append("INBOX", &message("a@example.test", "Three", "3"), false).await;
    let items = announced(&mut rig, "the first mail after the re-baseline").await;
    assert_eq!(keys(&items), [format!("INBOX:{}:{uid}", old + 1000).as_str()]);
}

#[tokio::test]
async fn encoded_subjects_in_utf8_and_latin1_are_decoded() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;

    client.append("INBOX", &message("a@example.test", "=?UTF-8?B?w4ljaMOpYW5jZSDwn5OF?=", "x"), false).await;
    assert_eq!(announced(&mut rig, "the UTF-8 subject").await[0].title, "Échéance 📅");
    client
        .append("INBOX", &message("=?ISO-8859-1?Q?Fran=E7ois?= <f@example.test>", "=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "x"), false)
        .await;
    let items = announced(&mut rig, "the Latin-1 subject").await;
    assert_eq!(items[0].title, "Café crème");
    assert_eq!(items[0].sender, "François");
}

#[tokio::test]
async fn mark_as_read_sets_seen_on_the_server() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;
    let uid = client.append("INBOX", &message("a@example.test", "Read me", "x"), false).await;
    let items = announced(&mut rig, "the mail").await;
    count_becomes(&mut rig, 1).await;

    rig.handle.act(&AccountId::new(ID), &items[0].key, Action::MarkRead).await.expect("marked read");
    assert!(client.flags("INBOX", uid).await.contains("\\Seen"), "the server has the flag");
    count_becomes(&mut rig, 0).await;
}

#[tokio::test]
async fn a_server_without_idle_is_polled() {
    let capability = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS ESEARCH";
    let dovecot = Dovecot::start_with(Options { capability: Some(capability.to_owned()), ..Options::default() }).await;
    let mut client = dovecot.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX"]), PASSWORD)]);
    connectivity(&mut rig, "polling", |c| *c == Connectivity::Polling).await;

    client.append("INBOX", &message("a@example.test", "Polled", "x"), false).await;
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    let items = announced(&mut rig, "the polled mail").await;
    assert_eq!(items[0].title, "Polled");
}

#[tokio::test]
async fn a_polled_folder_notices_a_swap_of_read_and_unread_through_highestmodseq() {
    // No IDLE, so the folder is polled with STATUS; CONDSTORE is offered.
    let capability = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS ESEARCH CONDSTORE";
    let dovecot = Dovecot::start_with(Options { capability: Some(capability.to_owned()), ..Options::default() }).await;
    let mut client = dovecot.client().await;
    let unread = client.append("INBOX", &message("a@example.test", "Unread", "x"), false).await;
    let read = client.append("INBOX", &message("b@example.test", "Read", "y"), true).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX"]), PASSWORD)]);
    connectivity(&mut rig, "polling", |c| *c == Connectivity::Polling).await;
    assert_eq!(unread_count(&rig), Some(1));

    // Same number of messages, same UIDNEXT, same UNSEEN count: only
    // HIGHESTMODSEQ tells that something changed.
    client.mark_seen("INBOX", unread).await;
    client.mark_unseen("INBOX", read).await;
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    let validity = uidvalidity(&mut client, "INBOX").await;
    let key = format!("INBOX:{validity}:{unread}");
    within(
        PATIENCE,
        "the swap noticed",
        rig.events_until("item read", |e| matches!(e, CoreEvent::ItemRead { key: k, .. } if *k == key)),
    )
    .await;
    assert_eq!(unread_count(&rig), Some(1));
}

#[tokio::test]
async fn a_wrong_password_shows_the_servers_refusal_and_is_not_retried() {
    let dovecot = Dovecot::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX"]), "not-the-password")]);
    let state = connectivity(&mut rig, "auth failed", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
    assert!(
        matches!(&state, Connectivity::AuthFailed { reason } if reason.contains("AUTHENTICATIONFAILED") || reason.contains("Authentication failed")),
        "{state:?}"
    );
    // Wake-ups and hints do not resend refused credentials.
    rig.handle.refresh(&AccountId::new(ID), Trigger::Wake);
    rig.handle.refresh(&AccountId::new(ID), Trigger::Hint);
    let retried = if_within(
        Duration::from_secs(2),
        rig.events_until("another attempt", |e| matches!(e, CoreEvent::Connectivity { state: Connectivity::Connecting, .. })),
    )
    .await;
    assert!(retried.is_none(), "no storm of refused logins");
}

#[tokio::test]
async fn a_half_open_connection_is_detected_and_mail_sent_meanwhile_is_announced() {
    let dovecot = Dovecot::start().await;
    let relay = Blackhole::start(dovecot.port()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Dovecot says "still here" every 5 s: 6 s of silence means trouble.
    let settings = MailSettings { port: Some(relay.port()), idle_silence_secs: 6, ..plain(&dovecot, &["INBOX"]) };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(settings, PASSWORD)]);
    live(&mut rig).await;
    within(PATIENCE, "IDLE through the relay", relay.server_sent("+ idling")).await;

    relay.swallow_open_connections();
    let mut client = dovecot.client().await;
    client.append("INBOX", &message("a@example.test", "Sent into the void", "x"), false).await;
    let state = connectivity(&mut rig, "the dead link noticed", |c| matches!(c, Connectivity::BackingOff { .. })).await;
    assert!(matches!(&state, Connectivity::BackingOff { reason, .. } if reason.contains("dead")), "{state:?}");
    let items = announced(&mut rig, "the mail after reconnecting").await;
    assert_eq!(items[0].title, "Sent into the void");
}

#[tokio::test]
async fn idle_is_reissued_on_its_schedule_and_mail_still_arrives() {
    let dovecot = Dovecot::start().await;
    let relay = Blackhole::start(dovecot.port()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = MailSettings { port: Some(relay.port()), idle_reissue_secs: 10, ..plain(&dovecot, &["INBOX"]) };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(settings, PASSWORD)]);
    live(&mut rig).await;
    let started = std::time::Instant::now();
    // The first IDLE, possibly a second after the start-up resync, then one
    // after the re-issue period with nothing else happening.
    within(PATIENCE, "a re-issued IDLE", relay.server_sent_times("+ idling", 3)).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(8), "the third IDLE came after {elapsed:?}, not on the 10 s schedule");
    assert_eq!(relay.server_sent_count("Idle completed"), 2, "each re-issue is one DONE, no busy loop");

    dovecot.client().await.append("INBOX", &message("a@example.test", "After the re-issue", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail").await[0].title, "After the re-issue");
}

/// Waits until the account's notice satisfies `wanted`; returns it.
async fn notice_becomes(rig: &mut Rig, what: &str, wanted: impl Fn(Option<&str>) -> bool) -> Option<String> {
    let mut snapshots = rig.handle.subscribe();
    let wait = async {
        loop {
            let notice = snapshots.borrow_and_update().accounts[0].notice.clone();
            if wanted(notice.as_deref()) {
                return notice;
            }
            snapshots.changed().await.expect("the core is running");
        }
    };
    match tokio::time::timeout(PATIENCE, wait).await {
        Ok(notice) => notice,
        Err(_) => panic!("{what}: the notice stayed {:?}", rig.handle.snapshot().accounts[0].notice),
    }
}

/// Dovecot without NOTIFY: each folder has its own IDLE connection.
fn without_notify() -> Options {
    Options { capability: Some("IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS ESEARCH CONDSTORE".to_owned()), ..Options::default() }
}

async fn a_missing_folder_is_a_notice_while_the_others_are_watched(options: Options) {
    let dovecot = Dovecot::start_with(options).await;
    let mut client = dovecot.client().await;
    client.create("Work").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX", "Projcts", "Work"]), &dir).await;
    let notice = notice_becomes(&mut rig, "the missing folder named", |n| n.is_some()).await.unwrap_or_default();
    assert!(notice.contains("\"Projcts\" (Mailbox doesn't exist") && notice.contains("folders"), "{notice}");
    assert!(!notice.contains("INBOX") && !notice.contains("Work"), "{notice}");

    client.append("Work", &message("a@example.test", "Still watched", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail in Work").await[0].title, "Still watched");
    client.append("INBOX", &message("a@example.test", "Here too", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail in INBOX").await[0].title, "Here too");
    assert_eq!(rig.handle.snapshot().accounts[0].connectivity, Connectivity::LivePush);

    // Once the folder exists, a refresh picks it up and the notice goes.
    client.create("Projcts").await;
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    notice_becomes(&mut rig, "the notice cleared", |n| n.is_none()).await;
    client.append("Projcts", &message("a@example.test", "Found it", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail in the new folder").await[0].title, "Found it");
}

#[tokio::test]
async fn a_folder_the_server_lacks_is_named_in_a_notice_and_the_others_are_still_watched_with_notify() {
    a_missing_folder_is_a_notice_while_the_others_are_watched(Options::default()).await;
}

#[tokio::test]
async fn a_folder_the_server_lacks_is_named_in_a_notice_and_the_others_are_still_watched_on_their_own_connections() {
    a_missing_folder_is_a_notice_while_the_others_are_watched(without_notify()).await;
}

#[tokio::test]
async fn an_account_whose_folders_all_lack_needs_attention() {
    let dovecot = Dovecot::start_with(without_notify()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["Projcts", "Archiv"]), PASSWORD)]);
    let state = connectivity(&mut rig, "needs attention", |c| matches!(c, Connectivity::NeedsAttention { .. })).await;
    assert!(
        matches!(&state, Connectivity::NeedsAttention { reason } if reason.contains("\"Projcts\"") && reason.contains("\"Archiv\"")),
        "{state:?}"
    );
}

#[tokio::test]
async fn waking_up_reconnects_at_once_instead_of_waiting_for_a_dead_link() {
    let dovecot = Dovecot::start().await;
    let relay = Blackhole::start(dovecot.port()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = MailSettings { port: Some(relay.port()), ..plain(&dovecot, &["INBOX"]) };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(settings, PASSWORD)]);
    live(&mut rig).await;
    within(PATIENCE, "IDLE through the relay", relay.server_sent("+ idling")).await;

    // As after a suspend: the old connection is dead without a word.
    relay.swallow_open_connections();
    dovecot.client().await.append("INBOX", &message("a@example.test", "While asleep", "x"), false).await;
    rig.handle.refresh(&AccountId::new(ID), Trigger::Wake);
    // Probing the old connection would take the 15 s DONE timeout.
    let (items, _) = within(Duration::from_secs(5), "the mail right after waking", rig.next_new_items(ID)).await;
    assert_eq!(items[0].title, "While asleep");
}

#[tokio::test]
async fn mail_read_elsewhere_while_the_app_was_closed_is_named_read_after_the_restart() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;
    let uid = client.append("INBOX", &message("a@example.test", "Read on the phone", "x"), false).await;
    let key = announced(&mut rig, "the mail").await[0].key.clone();
    count_becomes(&mut rig, 1).await;
    rig.stop().await;
    drop(rig);

    client.mark_seen("INBOX", uid).await;
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX"]), PASSWORD)]);
    within(
        PATIENCE,
        "the mail named read",
        rig.events_until("item read", |e| matches!(e, CoreEvent::ItemRead { key: k, .. } if *k == key)),
    )
    .await;
    count_becomes(&mut rig, 0).await;
}

#[tokio::test]
async fn a_pipelined_burst_of_mail_is_counted_and_never_announced_twice() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;

    // Pipelined: Dovecot stores them one by one while the watcher syncs, so
    // syncs overlap the burst. (How few announcements it takes depends on
    // the machine's pace; `vigie-bench --only imap` measures it.)
    let burst: Vec<String> = (0..300).map(|i| message(&format!("s{i}@example.test"), &format!("Burst {i}"), "x")).collect();
    client.append_many("INBOX", &burst).await;
    count_becomes(&mut rig, 300).await;

    let mut seen: Vec<String> = Vec::new();
    while let Ok(event) = rig.events.try_recv() {
        if let CoreEvent::NewItems { items, .. } = event {
            seen.extend(items.into_iter().map(|i| i.key));
        }
    }
    assert!(!seen.is_empty(), "the burst was announced");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "each mail once: {seen:?}");
}

#[tokio::test]
async fn a_pushed_mail_costs_one_fetch_after_idle_and_a_read_one_search() {
    let dovecot = Dovecot::start().await;
    let relay = Blackhole::start(dovecot.port()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = MailSettings { port: Some(relay.port()), ..plain(&dovecot, &["INBOX"]) };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(settings, PASSWORD)]);
    live(&mut rig).await;
    within(PATIENCE, "IDLE through the relay", relay.server_sent("+ idling")).await;
    let (searches, fetches, idles) =
        (relay.server_sent_count("Search completed"), relay.server_sent_count("Fetch completed"), relay.server_sent_count("+ idling"));

    let mut client = dovecot.client().await;
    for i in 1..=3 {
        client.append("INBOX", &message("a@example.test", &format!("Pushed {i}"), "x"), false).await;
        assert_eq!(announced(&mut rig, "the pushed mail").await[0].title, format!("Pushed {i}"));
        within(PATIENCE, "IDLE again", relay.server_sent_times("+ idling", idles + i)).await;
    }
    assert_eq!(relay.server_sent_count("Search completed"), searches, "no search after a push of new mail alone");
    assert_eq!(relay.server_sent_count("Fetch completed") - fetches, 3, "one fetch per pushed mail");
    count_becomes(&mut rig, 3).await;

    // Read elsewhere: one search for what is unseen now.
    let read = client.append("INBOX", &message("b@example.test", "Read soon", "y"), false).await;
    announced(&mut rig, "the mail to read").await;
    within(PATIENCE, "IDLE again", relay.server_sent_times("+ idling", idles + 4)).await;
    client.mark_seen("INBOX", read).await;
    count_becomes(&mut rig, 3).await;
    assert_eq!(relay.server_sent_count("Search completed"), searches + 1, "a flag change costs one search");
    client.append("INBOX", &message("c@example.test", "After the read", "z"), false).await;
    assert_eq!(announced(&mut rig, "the next mail").await[0].title, "After the read");
    count_becomes(&mut rig, 4).await;
}

#[tokio::test]
async fn a_burst_bigger_than_one_fetch_is_announced_with_its_true_count() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = watching(plain(&dovecot, &["INBOX"]), &dir).await;
    rig.stop().await;
    drop(rig);

    // Arrived while the app was closed: one sync finds them all.
    let burst: Vec<String> = (0..120).map(|i| message(&format!("s{i}@example.test"), &format!("Burst {i}"), "x")).collect();
    client.append_many("INBOX", &burst).await;
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX"]), PASSWORD)]);
    let events = within(PATIENCE, "the burst", rig.events_until("new items", |e| matches!(e, CoreEvent::NewItems { .. }))).await;
    let Some(CoreEvent::NewItems { items, unlisted, .. }) = events.last() else { unreachable!() };
    assert_eq!(items.len() + unlisted, 120, "the announcement counts every new mail");
    assert!(items.len() < 120, "but fetches a bounded number of them ({} here)", items.len());
    assert_eq!(items.last().map(|i| i.title.as_str()), Some("Burst 119"), "the newest are listed");
    count_becomes(&mut rig, 120).await;
}
