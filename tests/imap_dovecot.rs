//! The test Dovecot in `support::dovecot` itself: it starts unprivileged,
//! stores what the tests append, and keeps it across a restart on the same
//! port.

use crate::support::dovecot::{Dovecot, message};

#[tokio::test]
async fn the_test_server_keeps_appended_mail_across_a_restart() {
    let mut dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    let first = client.append("INBOX", &message("a@example.test", "one", "body"), false).await;
    let (validity, next) = client.uid_state("INBOX").await;
    assert_eq!(next, first + 1);
    drop(client);

    dovecot.stop().await;
    dovecot.restart().await;
    let mut client = dovecot.client().await;
    assert_eq!(client.uid_state("INBOX").await, (validity, next), "UIDVALIDITY and UIDNEXT survive");
    client.mark_seen("INBOX", first).await;
    assert!(client.flags("INBOX", first).await.contains("\\Seen"));
}
