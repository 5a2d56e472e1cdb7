//! "Test connection" for a chat account against the fake Rocket.Chat: the
//! steps a good account passes, where each kind of trouble stops it, and
//! the rooms it finds for the settings window.
//!
//! Real clock, real sockets on loopback (see `rocketchat`).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use vigie::config::AccountConfig;
use vigie::model::{AccountId, Source};
use vigie::probe::{Outcome, Overlay, ProbeLog, ProbeReport, ProbeStep, StepKind, test_connection};
use vigie::rocketchat::{ChatSettings, TOKEN_SECRET};
use vigie::secrets::{MemorySecrets, SecretStore};

use crate::support::fake_rocketchat::{ALICE, FakeRocketChat, Generation, TOKEN};
use crate::support::tls_listener::SelfSignedListener;
use crate::support::{account_config, within};

const ID: &str = "chat";
/// Longer than the probe's own 30 s bound.
const PATIENCE: Duration = Duration::from_secs(40);

fn chat_account(server: &str, user_id: Option<&str>) -> AccountConfig {
    let chat = ChatSettings { user_id: user_id.map(str::to_owned), ..ChatSettings::default() };
    AccountConfig { server: Some(server.to_owned()), chat, ..account_config(ID, Source::Chat) }
}

/// Probes `account` with `token` typed into the form (nothing stored).
async fn probe(account: &AccountConfig, token: Option<&str>) -> ProbeReport {
    let stored: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    let mut secrets = Overlay::new(stored);
    if let Some(token) = token {
        secrets = secrets.with(&AccountId::new(ID), TOKEN_SECRET, SecretString::from(token.to_owned()));
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
async fn a_good_account_passes_every_step_and_lists_its_rooms() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let report = probe(&chat_account(&fake.base_url(), Some(ALICE)), Some(TOKEN)).await;
    assert_eq!(
        kinds(&report),
        [
            (StepKind::Resolve, Outcome::Ok),
            (StepKind::Connect, Outcome::Ok),
            // Plain HTTP to this computer: allowed, with a remark.
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
    assert_eq!(step(&report, StepKind::Server).detail, "Rocket.Chat 7.4.1");
    let signed_in = &step(&report, StepKind::SignIn).detail;
    assert!(signed_in.contains("alice (Alice Liddell)"), "{signed_in}");
    assert!(signed_in.contains("two-factor authentication is off"), "{signed_in}");
    assert!(step(&report, StepKind::Offers).detail.contains("live updates over the websocket"));
    let rooms: Vec<(&str, &str, &str)> =
        report.discovered.rooms.iter().map(|r| (r.id.as_str(), r.name.as_str(), r.kind.as_str())).collect();
    assert_eq!(rooms.len(), 7, "{rooms:#?}");
    assert!(rooms.contains(&("GENERAL", "general", "channel")), "{rooms:#?}");
    assert!(rooms.contains(&("9fLrQwXyZ2aBcDeFh", "ops-alerts", "private")), "{rooms:#?}");
    assert!(rooms.contains(&("aobEdbYhXfu5hkeqGrGkD3b8sZ5JmXq2wP", "Bob Builder", "direct")), "named for bob: {rooms:#?}");
    assert_eq!(rooms.last().map(|r| r.2), Some("direct"), "channels first, direct chats last");
}

#[tokio::test]
async fn without_a_configured_user_id_the_token_finds_its_user() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let report = probe(&chat_account(&fake.base_url(), None), Some(TOKEN)).await;
    assert!(report.ok, "{:#?}", report.steps);
    assert!(fake.requests().iter().any(|r| r.path == "/api/v1/login" && r.status == 200), "a resume login named the user");
}

#[tokio::test]
async fn a_bad_token_fails_at_sign_in_with_the_servers_words() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let report = probe(&chat_account(&fake.base_url(), Some(ALICE)), Some("not-the-token")).await;
    assert!(!report.ok);
    let failed = last(&report);
    assert_eq!((failed.kind, failed.outcome), (StepKind::SignIn, Outcome::Failed), "{:#?}", report.steps);
    assert!(failed.detail.contains("You must be logged in to do this."), "the server's words: {}", failed.detail);
    assert!(!failed.detail.contains("not-the-token"), "never the token: {}", failed.detail);
    assert!(report.discovered.rooms.is_empty());
}

#[tokio::test]
async fn a_missing_token_fails_at_sign_in_and_says_where_to_make_one() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let report = probe(&chat_account(&fake.base_url(), Some(ALICE)), None).await;
    let failed = last(&report);
    assert_eq!((failed.kind, failed.outcome), (StepKind::SignIn, Outcome::Failed));
    assert!(failed.detail.contains("Personal Access Tokens"), "{}", failed.detail);
}

#[tokio::test]
async fn a_dead_port_fails_at_connect() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let report = probe(&chat_account(&format!("http://127.0.0.1:{port}"), Some(ALICE)), Some(TOKEN)).await;
    assert_eq!(kinds(&report), [(StepKind::Resolve, Outcome::Ok), (StepKind::Connect, Outcome::Failed)], "{:#?}", report.steps);
    assert!(last(&report).detail.contains(&port.to_string()));
}

#[tokio::test]
async fn a_server_without_websocket_gives_a_warning_that_it_will_be_polled() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.refuse_websocket();
    let report = probe(&chat_account(&fake.base_url(), Some(ALICE)), Some(TOKEN)).await;
    assert!(report.ok, "a warning is no failure: {:#?}", report.steps);
    let offers = last(&report);
    assert_eq!((offers.kind, offers.outcome), (StepKind::Offers, Outcome::Warning));
    assert!(offers.detail.starts_with("no websocket: will poll"), "{}", offers.detail);
    assert!(offers.detail.contains("400"), "with what the server said: {}", offers.detail);
}

#[tokio::test]
async fn a_refused_stream_gives_a_warning_that_it_will_be_polled() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.refuse_subscription("rooms-changed");
    let report = probe(&chat_account(&fake.base_url(), Some(ALICE)), Some(TOKEN)).await;
    let offers = last(&report);
    assert_eq!((offers.kind, offers.outcome), (StepKind::Offers, Outcome::Warning));
    assert!(offers.detail.contains("rooms-changed") && offers.detail.contains("will poll"), "{}", offers.detail);
}

#[tokio::test]
async fn two_factor_authentication_is_named_at_sign_in() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.require_2fa();
    let report = probe(&chat_account(&fake.base_url(), Some(ALICE)), Some(TOKEN)).await;
    assert!(report.ok, "a token needs no code: {:#?}", report.steps);
    let signed_in = &step(&report, StepKind::SignIn).detail;
    assert!(signed_in.contains("two-factor authentication is on (an authenticator app)"), "{signed_in}");
}

#[tokio::test]
async fn a_self_signed_certificate_fails_at_tls_in_plain_words() {
    let listener = SelfSignedListener::start().await;
    let report = probe(&chat_account(&format!("https://localhost:{}", listener.port()), Some(ALICE)), Some(TOKEN)).await;
    let failed = last(&report);
    assert_eq!((failed.kind, failed.outcome), (StepKind::Tls, Outcome::Failed), "{:#?}", report.steps);
    assert!(failed.detail.contains("not trusted") && failed.detail.contains("self-signed"), "{}", failed.detail);
}

#[tokio::test]
async fn an_address_that_is_not_rocket_chat_fails_at_server() {
    let fake = crate::support::fake_leantime::FakeLeantime::start(crate::support::fake_leantime::ServerVersion::V3_9_6).await;
    let report = probe(&chat_account(&fake.base_url(), Some(ALICE)), Some(TOKEN)).await;
    let failed = last(&report);
    assert_eq!((failed.kind, failed.outcome), (StepKind::Server, Outcome::Failed), "{:#?}", report.steps);
    assert!(failed.detail.contains("no Rocket.Chat at"), "{}", failed.detail);
}
