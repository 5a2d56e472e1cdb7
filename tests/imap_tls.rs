//! The IMAP watcher over TLS against a real Dovecot with a self-signed
//! certificate made at test time: refused with its fingerprint shown,
//! accepted once exactly that fingerprint is pinned, over implicit TLS and
//! STARTTLS.

use vigie::imap::{MailSettings, TlsMode};
use vigie::model::Connectivity;

use crate::imap_watcher::{announced, connectivity, live, mail_account};
use crate::support::Rig;
use crate::support::dovecot::{Dovecot, Options, PASSWORD, message};

fn over_tls(dovecot: &Dovecot, tls: TlsMode, pin: Option<String>) -> MailSettings {
    let port = match tls {
        TlsMode::Implicit => dovecot.tls_port().expect("a TLS listener"),
        TlsMode::Starttls | TlsMode::None => dovecot.port(),
    };
    MailSettings { port: Some(port), tls, pinned_fingerprint: pin, ..MailSettings::default() }
}

async fn tls_dovecot() -> Dovecot {
    Dovecot::start_with(Options { tls: true, ..Options::default() }).await
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_with_its_fingerprint_shown() {
    let dovecot = tls_dovecot().await;
    let fingerprint = dovecot.certificate().expect("a certificate").sha256_fingerprint();
    let dir = tempfile::tempdir().expect("tempdir");
    let account = mail_account(over_tls(&dovecot, TlsMode::Implicit, None), PASSWORD);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![account]);
    let state = connectivity(&mut rig, "the certificate refused", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
    let Connectivity::AuthFailed { reason } = state else { unreachable!() };
    assert!(reason.contains("not trusted"), "{reason}");
    assert!(reason.contains(&fingerprint), "the message shows the fingerprint {fingerprint}: {reason}");
    assert!(reason.contains("pinned_fingerprint"), "and says how to pin it: {reason}");
}

#[tokio::test]
async fn a_pinned_certificate_is_accepted_over_implicit_tls() {
    let dovecot = tls_dovecot().await;
    let fingerprint = dovecot.certificate().expect("a certificate").sha256_fingerprint();
    let dir = tempfile::tempdir().expect("tempdir");
    let account = mail_account(over_tls(&dovecot, TlsMode::Implicit, Some(fingerprint)), PASSWORD);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![account]);
    live(&mut rig).await;
    dovecot.client().await.append("INBOX", &message("a@example.test", "Over TLS", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail over TLS").await[0].title, "Over TLS");
}

#[tokio::test]
async fn a_pinned_certificate_is_accepted_after_starttls() {
    let dovecot = tls_dovecot().await;
    // The pin's other spelling: lower case without colons.
    let fingerprint = dovecot.certificate().expect("a certificate").sha256_fingerprint().replace(':', "").to_lowercase();
    let dir = tempfile::tempdir().expect("tempdir");
    let account = mail_account(over_tls(&dovecot, TlsMode::Starttls, Some(fingerprint)), PASSWORD);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![account]);
    live(&mut rig).await;
    dovecot.client().await.append("INBOX", &message("a@example.test", "After STARTTLS", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail after STARTTLS").await[0].title, "After STARTTLS");
}

#[tokio::test]
async fn a_certificate_other_than_the_pinned_one_is_refused() {
    let dovecot = tls_dovecot().await;
    let other = ["AB"; 32].join(":");
    let dir = tempfile::tempdir().expect("tempdir");
    let account = mail_account(over_tls(&dovecot, TlsMode::Implicit, Some(other.clone())), PASSWORD);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![account]);
    let state = connectivity(&mut rig, "the certificate refused", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
    let Connectivity::AuthFailed { reason } = state else { unreachable!() };
    assert!(reason.contains("is not the pinned one"), "{reason}");
    assert!(reason.contains(&dovecot.certificate().expect("a certificate").sha256_fingerprint()), "{reason}");
}
