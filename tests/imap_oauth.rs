//! Signing in with OAuth 2.0 bearer tokens (SASL XOAUTH2 and OAUTHBEARER)
//! against a real Dovecot, which checks the token as the user's password,
//! with tokens refreshed at a fake provider (`support::fake_oauth`); and the
//! first consent (authorization code + PKCE through a loopback redirect),
//! with the test playing the browser.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use vigie::config::AccountConfig;
use vigie::imap::consent::{Consent, ConsentError, ConsentRequest};
use vigie::imap::{ACCESS_TOKEN_SECRET, ImapWatcher, MailAuth, MailSettings, REFRESH_TOKEN_SECRET, TlsMode};
use vigie::model::{AccountId, Connectivity, Source};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::AccountSpec;

use crate::imap_watcher::{announced, connectivity, live};
use crate::support::dovecot::{Dovecot, OAUTH_TOKEN, OAUTH_USER, message};
use crate::support::fake_oauth::FakeOAuth;
use crate::support::{Rig, account_config, within};

const ID: &str = "mail";
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

fn settings(dovecot: &Dovecot, auth: MailAuth, token_url: Option<String>) -> MailSettings {
    MailSettings {
        port: Some(dovecot.port()),
        tls: TlsMode::None,
        allow_plaintext_on_loopback: true,
        auth,
        oauth_client_id: token_url.as_ref().map(|_| "vigie-test-client".to_owned()),
        oauth_token_url: token_url,
        ..MailSettings::default()
    }
}

/// The OAuth user's account with `secrets` (name, value) in its keyring.
fn account(settings: MailSettings, secrets: &[(&str, &str)]) -> (AccountSpec, Arc<dyn SecretStore>) {
    let store: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    for (name, value) in secrets {
        store.set(&AccountId::new(ID), name, &SecretString::from((*value).to_owned())).expect("store");
    }
    let config = AccountConfig {
        server: Some("127.0.0.1".to_owned()),
        username: Some(OAUTH_USER.to_owned()),
        mail: Some(settings),
        ..account_config(ID, Source::Mail)
    };
    let watcher = ImapWatcher::from_config(&config, store.clone()).expect("valid settings");
    (AccountSpec { config, schedule: crate::imap_watcher::on_demand(), watcher: Box::new(watcher) }, store)
}

async fn refused(rig: &mut Rig) -> String {
    match connectivity(rig, "sign-in refused", |c| matches!(c, Connectivity::AuthFailed { .. })).await {
        Connectivity::AuthFailed { reason } => reason,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn xoauth2_with_a_refreshed_token_signs_in_and_stores_the_rotated_refresh_token() {
    let dovecot = Dovecot::start().await;
    let oauth = FakeOAuth::start("rt-first", OAUTH_TOKEN).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, secrets) = account(settings(&dovecot, MailAuth::Xoauth2, Some(oauth.token_url())), &[(REFRESH_TOKEN_SECRET, "rt-first")]);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    live(&mut rig).await;
    assert_eq!(oauth.presented(), ["rt-first"]);
    assert_eq!(oauth.client_ids(), ["vigie-test-client"]);
    let stored = secrets.get(&AccountId::new(ID), REFRESH_TOKEN_SECRET).expect("read").expect("a refresh token");
    assert_eq!(stored.expose_secret(), oauth.valid_refresh_token(), "the rotated token replaced the old one");

    dovecot.oauth_user_client().await.append("INBOX", &message("a@example.test", "Via XOAUTH2", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail").await[0].title, "Via XOAUTH2");
}

#[tokio::test]
async fn oauthbearer_with_a_stored_access_token_signs_in() {
    let dovecot = Dovecot::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = account(settings(&dovecot, MailAuth::Oauthbearer, None), &[(ACCESS_TOKEN_SECRET, OAUTH_TOKEN)]);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    live(&mut rig).await;
    dovecot.oauth_user_client().await.append("INBOX", &message("a@example.test", "Via OAUTHBEARER", "x"), false).await;
    assert_eq!(announced(&mut rig, "the mail").await[0].title, "Via OAUTHBEARER");
}

#[tokio::test]
async fn a_refused_xoauth2_token_fails_with_the_servers_words_instead_of_hanging() {
    let dovecot = Dovecot::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = account(settings(&dovecot, MailAuth::Xoauth2, None), &[(ACCESS_TOKEN_SECRET, "ya29.expired")]);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let reason = refused(&mut rig).await;
    assert!(reason.contains("AUTHENTICATIONFAILED"), "{reason}");
    assert!(reason.contains("\"status\":\"401\""), "the error challenge's JSON is shown: {reason}");
    assert!(!reason.contains("ya29.expired"), "the token never shows: {reason}");
}

#[tokio::test]
async fn a_refused_oauthbearer_token_fails_with_the_servers_words_instead_of_hanging() {
    let dovecot = Dovecot::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = account(settings(&dovecot, MailAuth::Oauthbearer, None), &[(ACCESS_TOKEN_SECRET, "ya29.expired")]);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let reason = refused(&mut rig).await;
    assert!(reason.contains("AUTHENTICATIONFAILED"), "{reason}");
    assert!(reason.contains("invalid_token"), "the error challenge's JSON is shown: {reason}");
}

#[tokio::test]
async fn a_revoked_refresh_token_asks_the_user_to_sign_in_again() {
    let dovecot = Dovecot::start().await;
    let oauth = FakeOAuth::start("rt-current", OAUTH_TOKEN).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = account(settings(&dovecot, MailAuth::Xoauth2, Some(oauth.token_url())), &[(REFRESH_TOKEN_SECRET, "rt-revoked")]);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let reason = refused(&mut rig).await;
    assert!(reason.contains("invalid_grant"), "{reason}");
    assert!(reason.contains("sign in again"), "{reason}");
    assert!(!reason.contains("rt-revoked"), "the token never shows: {reason}");
}

/// Follows `url` like a browser (redirects included) and returns the page.
async fn browse(url: String) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(url).await.expect("the browser reaches the pages");
    response.text().await.expect("a page")
}

fn consent_request(oauth: &FakeOAuth) -> ConsentRequest {
    ConsentRequest {
        client_id: "vigie-test-client".to_owned(),
        client_secret: None,
        auth_url: oauth.auth_url(),
        token_url: oauth.token_url(),
        scopes: vec!["https://mail.google.com/".to_owned()],
    }
}

#[tokio::test]
async fn the_first_consent_stores_a_refresh_token_that_signs_in() {
    let dovecot = Dovecot::start().await;
    let oauth = FakeOAuth::start("rt-none-yet", OAUTH_TOKEN).await;
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    let consent = Consent::start(consent_request(&oauth)).await.expect("listening");
    let url = consent.url().to_owned();
    assert!(url.contains("code_challenge_method=S256") && url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"), "{url}");
    let id = AccountId::new(ID);
    let (finished, page) = within(PATIENCE, "the consent", async { tokio::join!(consent.finish(&id, secrets.clone()), browse(url)) }).await;
    finished.expect("consent granted");
    assert!(page.contains("signed in"), "{page}");
    let stored = secrets.get(&AccountId::new(ID), REFRESH_TOKEN_SECRET).expect("read").expect("a refresh token");
    assert_eq!(stored.expose_secret(), oauth.valid_refresh_token());

    // That token now signs in.
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = account(settings(&dovecot, MailAuth::Xoauth2, Some(oauth.token_url())), &[(REFRESH_TOKEN_SECRET, stored.expose_secret())]);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    live(&mut rig).await;
}

#[tokio::test]
async fn a_declined_consent_says_so_and_stores_nothing() {
    let oauth = FakeOAuth::start("rt-none-yet", OAUTH_TOKEN).await;
    oauth.deny();
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    let consent = Consent::start(consent_request(&oauth)).await.expect("listening");
    let url = consent.url().to_owned();
    let id = AccountId::new(ID);
    let (finished, _) = within(PATIENCE, "the consent", async { tokio::join!(consent.finish(&id, secrets.clone()), browse(url)) }).await;
    let error = finished.expect_err("declined");
    assert!(matches!(&error, ConsentError::Denied(words) if words.contains("access_denied")), "{error}");
    assert!(secrets.get(&AccountId::new(ID), REFRESH_TOKEN_SECRET).expect("read").is_none());
}
