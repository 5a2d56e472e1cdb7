//! How many connections the IMAP watcher uses for several folders, against
//! a real Dovecot: one for all of them when the server has NOTIFY; one IDLE
//! connection per folder when it does not (Dovecot's `imap_capability`
//! hides NOTIFY, CONDSTORE and QRESYNC, as Gmail's and Exchange's lists
//! lack them); and polling for the folders beyond the connection cap.

use vigie::imap::MailSettings;
use vigie::model::{AccountId, Connectivity};
use vigie::scheduler::Trigger;

use crate::imap_watcher::{announced, connectivity, count_becomes, live, mail_account, plain};
use crate::support::Rig;
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
