//! "Test connection" for a tasks account against the fake Leantime: the
//! steps a good account passes, where each kind of trouble stops it, and
//! what it says of API keys, old servers and the rate limit.
//!
//! Real clock, real sockets on loopback (see `leantime_poller`).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use vigie::config::AccountConfig;
use vigie::leantime::{AuthKind, TasksSettings};
use vigie::model::{AccountId, Source};
use vigie::probe::{Outcome, Overlay, ProbeLog, ProbeReport, ProbeStep, StepKind, test_connection};
use vigie::secrets::{MemorySecrets, SecretStore};

use crate::support::fake_leantime::{FakeLeantime, ServerVersion};
use crate::support::{account_config, within};

const ID: &str = "pm";
/// Longer than the probe's own 30 s bound.
const PATIENCE: Duration = Duration::from_secs(40);

fn tasks_account(server: &str, auth: AuthKind, tasks: TasksSettings) -> AccountConfig {
    AccountConfig { server: Some(server.to_owned()), auth, tasks, ..account_config(ID, Source::Tasks) }
}

/// Probes `account` with `secret` typed into the form (nothing stored).
async fn probe(account: &AccountConfig, secret: Option<&str>) -> ProbeReport {
    let stored: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    let mut secrets = Overlay::new(stored);
    if let Some(secret) = secret {
        secrets = secrets.with(&AccountId::new(ID), account.auth.secret_name(), SecretString::from(secret.to_owned()));
    }
    let log = ProbeLog::default();
    within(PATIENCE, "the probe", test_connection(account, Arc::new(secrets), &log)).await
}

fn kinds(report: &ProbeReport) -> Vec<(StepKind, Outcome)> {
    report.steps.iter().map(|s| (s.kind, s.outcome)).collect()
}

fn step(report: &ProbeReport, kind: StepKind) -> &ProbeStep {
    report.steps.iter().find(|s| s.kind == kind).unwrap_or_else(|| panic!("no {kind:?} step in {:#?}", report.steps))
}

fn last(report: &ProbeReport) -> &ProbeStep {
    report.steps.last().expect("at least one step")
}

#[tokio::test]
async fn a_personal_token_passes_every_step() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let report = probe(&tasks_account(&fake.base_url(), AuthKind::Token, TasksSettings::default()), Some(fake.token())).await;
    assert_eq!(
        kinds(&report),
        [
            (StepKind::Resolve, Outcome::Ok),
            (StepKind::Connect, Outcome::Ok),
            (StepKind::Tls, Outcome::Warning),
            (StepKind::Server, Outcome::Ok),
            (StepKind::SignIn, Outcome::Ok),
            (StepKind::Permissions, Outcome::Ok),
            (StepKind::Offers, Outcome::Ok),
        ],
        "{:#?}",
        report.steps
    );
    assert!(report.ok);
    assert_eq!(step(&report, StepKind::Server).detail, "Leantime 3.9.8");
    assert_eq!(step(&report, StepKind::SignIn).detail, "signed in with the personal token as Jane Doe (user 7)");
    let permissions = &step(&report, StepKind::Permissions).detail;
    assert!(permissions.contains("2 unread") && permissions.contains("1 open"), "{permissions}");
    let offers = &step(&report, StepKind::Offers).detail;
    assert!(offers.contains("120 requests a minute"), "{offers}");
    assert!(offers.contains("polled every 60 s"), "{offers}");
    assert_eq!(fake.requests().len(), 2, "the discovery batch and one poll batch");
}

#[tokio::test]
async fn a_wrong_token_fails_at_sign_in_with_the_servers_words() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let report = probe(&tasks_account(&fake.base_url(), AuthKind::Token, TasksSettings::default()), Some("not-the-token")).await;
    assert!(!report.ok);
    assert_eq!(step(&report, StepKind::Server).outcome, Outcome::Ok, "a Leantime API answered");
    let failed = last(&report);
    assert_eq!((failed.kind, failed.outcome), (StepKind::SignIn, Outcome::Failed), "{:#?}", report.steps);
    assert!(failed.detail.contains("HTTP 401: Unauthorized"), "the server's words: {}", failed.detail);
    assert!(!failed.detail.contains("not-the-token"), "never the token: {}", failed.detail);
}

#[tokio::test]
async fn a_missing_token_fails_at_sign_in() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let report = probe(&tasks_account(&fake.base_url(), AuthKind::Token, TasksSettings::default()), None).await;
    let failed = last(&report);
    assert_eq!((failed.kind, failed.outcome), (StepKind::SignIn, Outcome::Failed), "{:#?}", report.steps);
    assert!(failed.detail.contains("no token is stored"), "{}", failed.detail);
}

#[tokio::test]
async fn an_api_key_passes_with_a_warning_that_it_sees_its_own_notifications() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let report = probe(&tasks_account(&fake.base_url(), AuthKind::ApiKey, TasksSettings::default()), Some(fake.api_key())).await;
    assert!(report.ok, "a warning is no failure: {:#?}", report.steps);
    let signed_in = step(&report, StepKind::SignIn);
    assert_eq!(signed_in.outcome, Outcome::Warning);
    // The notice the watcher shows on the account.
    assert!(signed_in.detail.contains("notifications of its own pseudo-user, not yours"), "{}", signed_in.detail);
    assert!(signed_in.detail.contains("Desktop notifier key"), "{}", signed_in.detail);
}

#[tokio::test]
async fn a_server_that_is_down_fails_at_connect() {
    // A port nothing listens on any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let report = probe(&tasks_account(&server, AuthKind::Token, TasksSettings::default()), Some("a-token")).await;
    assert_eq!(kinds(&report), [(StepKind::Resolve, Outcome::Ok), (StepKind::Connect, Outcome::Failed)], "{:#?}", report.steps);
}

#[tokio::test]
async fn a_missing_permission_fails_at_permissions_naming_the_call() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    fake.deny_permission("getAllOpenUserTickets");
    let report = probe(&tasks_account(&fake.base_url(), AuthKind::Token, TasksSettings::default()), Some(fake.token())).await;
    let failed = last(&report);
    assert_eq!((failed.kind, failed.outcome), (StepKind::Permissions, Outcome::Failed), "{:#?}", report.steps);
    assert!(failed.detail.contains("getAllOpenUserTickets"), "{}", failed.detail);
}

#[tokio::test]
async fn an_older_leantime_names_its_lower_rate_limit_and_its_missing_inbox() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_0).await;
    let report = probe(&tasks_account(&fake.base_url(), AuthKind::ApiKey, TasksSettings::default()), Some(fake.api_key())).await;
    assert_eq!(step(&report, StepKind::Server).detail, "Leantime 3.9.0");
    let offers = last(&report);
    assert_eq!((offers.kind, offers.outcome), (StepKind::Offers, Outcome::Warning), "{:#?}", report.steps);
    assert!(offers.detail.contains("10 requests a minute"), "{}", offers.detail);
    assert!(offers.detail.contains("lists no notifications"), "{}", offers.detail);
}

#[tokio::test]
async fn a_rate_limit_set_in_the_settings_is_the_one_named() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let tasks = TasksSettings { requests_per_minute: Some(30), ..TasksSettings::default() };
    let report = probe(&tasks_account(&fake.base_url(), AuthKind::Token, tasks), Some(fake.token())).await;
    let offers = &step(&report, StepKind::Offers).detail;
    assert!(offers.contains("30 requests a minute (as set in the account's settings)"), "{offers}");
}

#[tokio::test]
async fn an_address_that_is_not_leantime_fails_at_server() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    fake.respond_with_html(true);
    let report = probe(&tasks_account(&fake.base_url(), AuthKind::Token, TasksSettings::default()), Some(fake.token())).await;
    let failed = last(&report);
    assert_eq!((failed.kind, failed.outcome), (StepKind::Server, Outcome::Failed), "{:#?}", report.steps);
    assert!(failed.detail.contains("not a Leantime API"), "{}", failed.detail);
}
