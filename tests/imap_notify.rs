//! How many connections the IMAP watcher uses for several folders, against
//! a real Dovecot: one for all of them when the server has NOTIFY; one IDLE
//! connection per folder when it does not (Dovecot's `imap_capability`
//! hides NOTIFY, CONDSTORE and QRESYNC, as Gmail's and Exchange's lists
//! lack them); and polling for the folders beyond the connection cap, with
//! one LIST-STATUS command (RFC 5819) where the server offers it.

use vigie::imap::MailSettings;
use vigie::model::{AccountId, Connectivity};
use vigie::scheduler::Trigger;

use crate::imap_watcher::{announced, connectivity, count_becomes, live, mail_account, plain};
use crate::support::Rig;
use crate::support::blackhole::Blackhole;
use crate::support::dovecot::{Dovecot, Options, PASSWORD, message};

/// A capability list like a big provider's: IDLE, no NOTIFY/CONDSTORE/QRESYNC.
const WITHOUT_NOTIFY: &str =
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS MOVE LIST-STATUS ESEARCH CHILDREN NAMESPACE UNSELECT";

#[tokio::test]
async fn with_notify_one_connection_watches_every_folder() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    client.create("Work").await;
    client.create("Archive").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX", "Work", "Archive"]), PASSWORD)]);
    live(&mut rig).await;
    assert_eq!(dovecot.sessions(), 2, "the test's connection and one for the watcher");

    let uid = client.append("Archive", &message("a@example.test", "Filed away", "x"), false).await;
    let items = announced(&mut rig, "the mail in Archive").await;
    assert_eq!(items[0].title, "Filed away");
    client.append("Work", &message("b@example.test", "Work item", "y"), false).await;
    assert_eq!(announced(&mut rig, "the mail in Work").await[0].title, "Work item");
    count_becomes(&mut rig, 2).await;
    client.mark_seen("Archive", uid).await;
    count_becomes(&mut rig, 1).await;
}

#[tokio::test]
async fn without_notify_each_folder_has_its_own_idle_connection() {
    let dovecot = Dovecot::start_with(Options { capability: Some(WITHOUT_NOTIFY.to_owned()), ..Options::default() }).await;
    let mut client = dovecot.client().await;
    client.create("Work").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(plain(&dovecot, &["INBOX", "Work"]), PASSWORD)]);
    live(&mut rig).await;
    assert_eq!(dovecot.sessions(), 3, "the test's connection and one per folder");

    client.append("Work", &message("a@example.test", "Idle in Work", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail in Work").await[0].title, "Idle in Work");
}

#[tokio::test]
async fn folders_beyond_the_connection_cap_are_polled() {
    let dovecot = Dovecot::start_with(Options { capability: Some(WITHOUT_NOTIFY.to_owned()), ..Options::default() }).await;
    let mut client = dovecot.client().await;
    client.create("Work").await;
    client.create("Archive").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = MailSettings { max_connections: 2, ..plain(&dovecot, &["INBOX", "Work", "Archive"]) };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(settings, PASSWORD)]);
    connectivity(&mut rig, "polling", |c| *c == Connectivity::Polling).await;
    assert_eq!(dovecot.sessions(), 3, "the test's connection and the cap of two");

    client.append("INBOX", &message("a@example.test", "Pushed", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail in INBOX (IDLE)").await[0].title, "Pushed");
    client.append("Archive", &message("a@example.test", "Polled", "y"), false).await;
    rig.handle.refresh(&AccountId::new("mail"), Trigger::Manual);
    assert_eq!(announced(&mut rig, "the mail in Archive (polled)").await[0].title, "Polled");
}

#[tokio::test]
async fn folders_beyond_the_cap_are_polled_with_one_list_status_command() {
    let dovecot = Dovecot::start_with(Options { capability: Some(WITHOUT_NOTIFY.to_owned()), ..Options::default() }).await;
    let relay = Blackhole::start(dovecot.port()).await;
    let mut client = dovecot.client().await;
    for folder in ["Work", "Archive", "Lists"] {
        client.create(folder).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let settings =
        MailSettings { max_connections: 2, port: Some(relay.port()), ..plain(&dovecot, &["INBOX", "Work", "Archive", "Lists"]) };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![mail_account(settings, PASSWORD)]);
    connectivity(&mut rig, "polling", |c| *c == Connectivity::Polling).await;
    let (lists, statuses) = (relay.server_sent_count("List completed"), relay.server_sent_count("Status completed"));
    assert!(lists >= 1, "the first pass asked with LIST-STATUS");
    assert_eq!(statuses, 0, "and never folder by folder");

    client.append("Lists", &message("a@example.test", "Polled", "y"), false).await;
    rig.handle.refresh(&AccountId::new("mail"), Trigger::Manual);
    assert_eq!(announced(&mut rig, "the mail in Lists (polled)").await[0].title, "Polled");
    assert_eq!(relay.server_sent_count("List completed"), lists + 1, "one command for the three polled folders");
    assert_eq!(relay.server_sent_count("Status completed"), 0);
}
