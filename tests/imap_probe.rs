//! "Test connection" for a mail account against a real Dovecot: every step
//! passes for a good account and the folders are listed; each kind of
//! mistake stops the probe at the step that names it, in the server's words.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use vigie::config::AccountConfig;
use vigie::imap::{MailSettings, PASSWORD_SECRET, TlsMode};
use vigie::model::{AccountId, Source};
use vigie::probe::{Outcome, ProbeLog, ProbeReport, StepKind, test_connection};
use vigie::secrets::{MemorySecrets, SecretStore};

use crate::imap_watcher::plain;
use crate::support::dovecot::{Dovecot, Options, PASSWORD, USER};
use crate::support::{account_config, within};

/// A probe ends well within its own 30 s bound; this is the test's.
const PATIENCE: Duration = Duration::from_secs(40);

/// Runs the probe of a mail account at 127.0.0.1 with `settings`, signing
/// in as the test user with `password`.
async fn probe(settings: MailSettings, password: &str) -> ProbeReport {
    let id = AccountId::new("mail");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets.set(&id, PASSWORD_SECRET, &SecretString::from(password.to_owned())).expect("store the password");
    let account = AccountConfig {
        server: Some("127.0.0.1".to_owned()),
        username: Some(USER.to_owned()),
        mail: Some(settings),
        ..account_config("mail", Source::Mail)
    };
    let log = ProbeLog::default();
    within(PATIENCE, "the probe", test_connection(&account, secrets, &log)).await
}

fn kinds(report: &ProbeReport) -> Vec<(StepKind, Outcome)> {
    report.steps.iter().map(|s| (s.kind, s.outcome)).collect()
}

/// The last step: the one that failed, in a failed probe.
fn last(report: &ProbeReport) -> (StepKind, Outcome, &str) {
    let step = report.steps.last().expect("at least one step");
    (step.kind, step.outcome, step.detail.as_str())
}

fn detail(report: &ProbeReport, kind: StepKind) -> &str {
    report.steps.iter().find(|s| s.kind == kind).map_or("", |s| s.detail.as_str())
}

#[tokio::test]
async fn a_good_account_passes_every_step_and_lists_its_folders() {
    let dovecot = Dovecot::start().await;
    let mut client = dovecot.client().await;
    client.create("Work").await;
    // "Entwürfe" in modified UTF-7, as a mail client would have created it.
    client.create("Entw&APw-rfe").await;
    let report = probe(plain(&dovecot, &["INBOX", "Work"]), PASSWORD).await;

    use {Outcome::*, StepKind::*};
    assert_eq!(
        kinds(&report),
        [(Resolve, Ok), (Connect, Ok), (Tls, Warning), (Server, Ok), (SignIn, Ok), (Permissions, Ok), (Offers, Ok)],
        "{report:#?}"
    );
    assert!(report.ok);
    assert_eq!(detail(&report, Tls), "no encryption (loopback only)");
    assert!(detail(&report, Server).contains("Dovecot"), "the greeting: {report:#?}");
    assert!(detail(&report, SignIn).contains(USER), "{report:#?}");
    assert!(detail(&report, Permissions).contains("Work"), "{report:#?}");
    let offers = detail(&report, Offers);
    assert!(offers.contains("IDLE yes") && offers.contains("NOTIFY yes") && offers.contains("push"), "{offers}");
    let mut folders = report.discovered.folders.clone();
    folders.sort();
    assert_eq!(folders, ["Entwürfe", "INBOX", "Work"], "decoded from modified UTF-7");
    assert_eq!(report.discovered.untrusted_certificate, None);
    assert!(report.steps.iter().all(|s| !s.detail.contains(PASSWORD)), "no secret in any step: {report:#?}");
}

#[tokio::test]
async fn a_wrong_password_fails_at_sign_in_with_the_servers_words() {
    let dovecot = Dovecot::start().await;
    let report = probe(plain(&dovecot, &["INBOX"]), "not-the-password").await;
    let (kind, outcome, words) = last(&report);
    assert_eq!((kind, outcome), (StepKind::SignIn, Outcome::Failed), "{report:#?}");
    assert!(words.contains("AUTHENTICATIONFAILED") || words.contains("Authentication failed"), "{words}");
    assert!(!words.contains("not-the-password"));
    assert!(!report.ok);
    assert!(report.discovered.folders.is_empty(), "nothing is listed before signing in");
}

#[tokio::test]
async fn a_self_signed_certificate_fails_at_tls_with_its_fingerprint_and_passes_once_pinned() {
    let dovecot = Dovecot::start_with(Options { tls: true, ..Options::default() }).await;
    let fingerprint = dovecot.certificate().expect("a certificate").sha256_fingerprint();
    let implicit = MailSettings { port: dovecot.tls_port(), tls: TlsMode::Implicit, ..MailSettings::default() };

    let refused = probe(implicit.clone(), PASSWORD).await;
    let (kind, outcome, words) = last(&refused);
    assert_eq!((kind, outcome), (StepKind::Tls, Outcome::Failed), "{refused:#?}");
    assert!(words.contains("not trusted") && words.contains(&fingerprint), "{words}");
    assert_eq!(refused.discovered.untrusted_certificate.as_deref(), Some(fingerprint.as_str()), "offered for pinning");

    let pinned = probe(MailSettings { pinned_fingerprint: Some(fingerprint.clone()), ..implicit }, PASSWORD).await;
    assert!(pinned.ok, "{pinned:#?}");
    let tls = detail(&pinned, StepKind::Tls);
    assert!(tls.contains("pinned") && tls.contains(&fingerprint), "says what vouched for it: {tls}");

    let starttls = MailSettings {
        port: Some(dovecot.port()),
        tls: TlsMode::Starttls,
        pinned_fingerprint: Some(fingerprint),
        ..MailSettings::default()
    };
    let report = probe(starttls, PASSWORD).await;
    assert!(report.ok, "{report:#?}");
    assert!(detail(&report, StepKind::Tls).starts_with("STARTTLS"), "{report:#?}");
}

#[tokio::test]
async fn a_missing_folder_fails_at_permissions_naming_it() {
    let dovecot = Dovecot::start().await;
    dovecot.client().await.create("Projects").await;
    let report = probe(plain(&dovecot, &["INBOX", "Projcts"]), PASSWORD).await;
    let (kind, outcome, words) = last(&report);
    assert_eq!((kind, outcome), (StepKind::Permissions, Outcome::Failed), "{report:#?}");
    assert!(words.contains("\"Projcts\"") && words.contains("doesn't exist"), "{words}");
    assert!(words.contains("Projects"), "and says which folders there are: {words}");
    assert!(report.discovered.folders.contains(&"Projects".to_owned()), "the folders are still offered");
}

#[tokio::test]
async fn a_closed_port_fails_at_connect() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let settings =
        MailSettings { port: Some(port), tls: TlsMode::None, allow_plaintext_on_loopback: true, ..MailSettings::default() };
    let report = probe(settings, PASSWORD).await;
    let (kind, outcome, words) = last(&report);
    assert_eq!((kind, outcome), (StepKind::Connect, Outcome::Failed), "{report:#?}");
    assert!(words.contains(&port.to_string()), "{words}");
}

#[tokio::test]
async fn a_server_without_idle_passes_with_a_warning_that_it_will_be_polled() {
    let capability = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS";
    let dovecot = Dovecot::start_with(Options { capability: Some(capability.to_owned()), ..Options::default() }).await;
    let report = probe(plain(&dovecot, &["INBOX"]), PASSWORD).await;
    assert!(report.ok, "{report:#?}");
    let (kind, outcome, words) = last(&report);
    assert_eq!((kind, outcome), (StepKind::Offers, Outcome::Warning));
    assert!(words.contains("IDLE no") && words.contains("poll"), "{words}");
}

#[tokio::test]
async fn plaintext_to_a_remote_server_is_refused_before_connecting() {
    let settings = MailSettings { tls: TlsMode::None, allow_plaintext_on_loopback: true, ..MailSettings::default() };
    let id = AccountId::new("mail");
    let account = AccountConfig {
        server: Some("imap.example.com".to_owned()),
        username: Some(USER.to_owned()),
        mail: Some(settings),
        ..account_config(id.as_str(), Source::Mail)
    };
    let log = ProbeLog::default();
    let report = within(PATIENCE, "the probe", test_connection(&account, Arc::new(MemorySecrets::default()), &log)).await;
    assert_eq!(kinds(&report), [(StepKind::Tls, Outcome::Failed)], "{report:#?}");
    assert!(detail(&report, StepKind::Tls).contains("without TLS"));
}
