//! No secret leaves Vigie: with distinctive secrets ("canaries") in the
//! keyring for a mail account (password, and OAuth refresh, access token
//! and client secret), a chat account (token, password) and a tasks account
//! (token, API key), every path that logs is driven (sign-in, refusals,
//! connection loss and reconnect, "Test connection", OAuth refresh, sign-in
//! with a password and a two-factor code), and then none of those secrets,
//! nor their base64 (SASL), hex (WebSocket frames at trace) or URL
//! encodings, may appear in:
//!
//! - the log, captured at `VIGIE_LOG=trace` through the app's own filter
//!   (`vigie::logging::filter_for`), `log` records included. Uncapped,
//!   async-imap's trace shows the LOGIN command and the SASL response, and
//!   tungstenite's the DDP login frame with the token: this also checks
//!   that the filter keeps those crates at `warn`;
//! - the core's events, their headless JSON lines, and the snapshot (the
//!   settings window's views, `vigie::control::views`, are built from
//!   these), the probe reports and the settings view, which are checked as
//!   serialized, and what the control socket answers and pushes;
//! - the state file and the config file the settings service wrote;
//! - the `Debug` of errors and of the types that hold a secret, which is
//!   what a panic message would print.
//!
//! Servers quote their refusals and the user sees them: servers that echo
//! the whole request back (a proxy, an odd server) must not make us repeat
//! a secret either: IMAP (LOGIN, XOAUTH2, OAUTHBEARER), Rocket.Chat,
//! Leantime and an OAuth provider (refresh, and the first consent's code
//! exchange with its PKCE verifier).
//!
//! The capture is the test thread's default subscriber (each test runs the
//! core on its own current-thread runtime), so parallel tests do not mix.
//! Real clock, real sockets on loopback, a real Dovecot.

use std::fmt::Debug;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;
use vigie::badge::BadgeMode;
use vigie::config::edit::{AccountForm, ChatForm, MailForm, TasksAuth, TasksForm};
use vigie::config::{AccountConfig, Config, Notifications};
use vigie::imap::consent::{Consent, ConsentRequest};
use vigie::imap::{ACCESS_TOKEN_SECRET, CLIENT_SECRET_SECRET, ImapWatcher, MailAuth, MailSettings, REFRESH_TOKEN_SECRET, TlsMode};
use vigie::leantime::{AuthKind, LeantimeWatcher};
use vigie::model::{AccountId, Connectivity, Source};
use vigie::probe::{Overlay, ProbeLog, ProbeReport, test_connection};
use vigie::rocketchat::login::sign_in_and_store;
use vigie::rocketchat::{ChatSettings, OpenIn, RocketChatWatcher, TOKEN_SECRET};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::settings::Settings;
use vigie::{AccountSpec, Core, CoreEvent, Setup, Snapshot};

use crate::support::dovecot::{Dovecot, ImapClient, Options, message};
use crate::support::fake_leantime::{FakeLeantime, ServerVersion};
use crate::support::fake_oauth::FakeOAuth;
use crate::support::fake_rocketchat::{self, FakeRocketChat, Generation};
use crate::support::{account_config, within};

const PATIENCE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The canaries

const MAIL_USER: &str = "dana@example.test";
const MAIL_PASSWORD: &str = "pw-CANARY-7f3a2c9e";
const WRONG_MAIL_PASSWORD: &str = "pw-CANARY-wrong-b41d";
const OAUTH_USER: &str = "erin@example.test";
const REFRESH_TOKEN: &str = "rt-CANARY-5e8f13";
/// Dovecot checks a bearer token as the user's password.
const ACCESS_TOKEN: &str = "at-CANARY-90c2d7";
const CLIENT_SECRET: &str = "cs-CANARY-44ab0e";
const REVOKED_REFRESH_TOKEN: &str = "rt-CANARY-revoked-d2";
const EXPIRED_ACCESS_TOKEN: &str = "at-CANARY-expired-77";
const WRONG_CHAT_TOKEN: &str = "tok-CANARY-expired-3c";
/// With quotes, which come escaped in a JSON body.
const WRONG_CHAT_PASSWORD: &str = r#"pw-CANARY-"rc"-wrong-8d"#;
const WRONG_TASKS_TOKEN: &str = "lt-CANARY-wrong-token-6a";
const WRONG_API_KEY: &str = "lt_CANARYuser_CANARYsecret9f";
/// A chat token the echoing server's REST API takes and its websocket
/// refuses.
const DDP_REFUSED_TOKEN: &str = "tok-CANARY-ddp-0e5a";

/// The secrets a test used: the fakes' own (fixed, distinctive) ones and
/// ours; a secret the test learns on the way (a rotated refresh token) is
/// added when known.
struct Canaries(Vec<(&'static str, String)>);

impl Canaries {
    fn new(known: &[(&'static str, &str)]) -> Canaries {
        Canaries(known.iter().map(|(what, value)| (*what, (*value).to_owned())).collect())
    }

    fn add(&mut self, what: &'static str, value: &str) {
        self.0.push((what, value.to_owned()));
    }

    /// Every form a canary could take on its way out: as is, quoted in
    /// JSON, URL-encoded, in hex (and as a byte list) as frame dumps show
    /// it, and in base64 at each of the three byte alignments it can have
    /// inside a longer encoded string (SASL PLAIN, XOAUTH2, Basic auth).
    fn needles(&self) -> Vec<(String, String)> {
        let mut needles: Vec<(String, String)> = Vec::new();
        for (what, value) in &self.0 {
            // A form that is the same text as an earlier one is searched once.
            let mut add = |how: &str, needle: String| {
                if !needles.iter().any(|(_, known)| *known == needle) {
                    needles.push((format!("{what} ({how})"), needle));
                }
            };
            add("as is", value.clone());
            add("JSON", serde_json::to_string(value).expect("a string serializes").trim_matches('"').to_owned());
            add("URL-encoded", oauth2::url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
            add("hex", value.bytes().map(|b| format!("{b:02x}")).collect());
            add("HEX", value.bytes().map(|b| format!("{b:02X}")).collect());
            add("byte list", value.bytes().map(|b| b.to_string()).collect::<Vec<_>>().join(", "));
            for shift in 0..3 {
                let needle = base64_inside(value.as_bytes(), shift);
                add("base64", needle.clone());
                add("base64url", needle.replace('+', "-").replace('/', "_"));
            }
        }
        needles
    }
}

/// The characters of base64 that encode only `secret`'s bytes when it
/// follows `shift` other bytes: what shows whatever surrounds it.
fn base64_inside(secret: &[u8], shift: usize) -> String {
    let mut bytes = vec![0_u8; shift];
    bytes.extend_from_slice(secret);
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
    // A character carries 6 bits: skip those that hold bits of the
    // prefix, keep those that hold nothing but the secret's.
    let first = (shift * 8).div_ceil(6);
    let end = bytes.len() * 8 / 6;
    encoded[first..end].to_owned()
}

// ---------------------------------------------------------------------------
// What leaves the app

/// Everything a test collected, by where it came from.
#[derive(Default)]
struct Exits(Vec<(String, String)>);

impl Exits {
    fn add(&mut self, place: impl Into<String>, text: impl Into<String>) {
        self.0.push((place.into(), text.into()));
    }

    fn debug(&mut self, place: &str, value: &impl Debug) {
        self.add(format!("{place} (Debug)"), format!("{value:?}"));
    }

    fn json(&mut self, place: &str, value: &impl serde::Serialize) {
        self.add(format!("{place} (JSON)"), serde_json::to_string(value).expect("serializes"));
    }

    /// An event, and the JSON lines `--headless` prints for it.
    fn events(&mut self, events: &[CoreEvent]) {
        for event in events {
            self.debug("core event", event);
            for line in vigie::headless::lines(event) {
                self.add("headless line", line);
            }
        }
    }

    fn snapshot(&mut self, snapshot: &Snapshot) {
        self.debug("snapshot", snapshot);
    }

    fn report(&mut self, report: &ProbeReport) {
        self.debug("probe report", report);
        self.json("probe report", report);
    }

    fn file(&mut self, place: &str, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{place} at {}: {e}", path.display()));
        self.add(place, text);
    }

    /// Fails listing every place where a canary shows, with its context.
    fn assert_free_of(&self, canaries: &Canaries) {
        let needles = canaries.needles();
        let mut found = Vec::new();
        for (place, text) in &self.0 {
            for (what, needle) in &needles {
                if let Some(at) = text.find(needle.as_str()) {
                    let from = text.floor_char_boundary(at.saturating_sub(120));
                    let to = text.ceil_char_boundary((at + needle.len() + 120).min(text.len()));
                    found.push(format!("{what} in {place}: …{}…", &text[from..to]));
                }
            }
        }
        assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
        assert!(!self.0.is_empty(), "nothing was collected");
    }
}

// ---------------------------------------------------------------------------
// The log

/// A shared buffer the captured log is written into.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    /// The log so far, once it shows every one of `expected` (so that an
    /// empty capture cannot pass for a clean one).
    fn logged(&self, expected: &[&str]) -> String {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
        for words in expected {
            assert!(text.contains(words), "the log lacks {words:?}:\n{text}");
        }
        text
    }
}

impl Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures what the app would log at `VIGIE_LOG=trace` on this thread
/// until the guard drops, span fields included. Records of crates that log
/// through `log` (reqwest, rustls, tungstenite) are passed on to the
/// thread's subscriber by a process-wide bridge, as in the app.
fn capture_log() -> (Log, tracing::subscriber::DefaultGuard) {
    static BRIDGE: OnceLock<()> = OnceLock::new();
    BRIDGE.get_or_init(|| {
        // Fails only if a logger exists already, which then is the bridge.
        let _ = tracing_log::LogTracer::init();
    });
    let log = Log::default();
    let writer = log.clone();
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .with_filter(vigie::logging::filter_for("trace"));
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    (log, guard)
}

// ---------------------------------------------------------------------------
// The app: a core, its events, and the settings service over it

struct Desk {
    dir: tempfile::TempDir,
    config_file: PathBuf,
    state_file: PathBuf,
    secrets: Arc<MemorySecrets>,
    settings: Arc<Settings>,
    events: Arc<Mutex<Vec<CoreEvent>>>,
}

impl Desk {
    /// The app as it starts: `config` (TOML) read from its file, the core
    /// started from it, the settings service over the core, and every event
    /// kept.
    fn start(config: &str, secrets: Arc<MemorySecrets>) -> Desk {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_file = dir.path().join("config.toml");
        let state_file = dir.path().join("state.json");
        std::fs::write(&config_file, config).expect("write the config");
        let loaded = Config::load(&config_file).expect("a valid config");
        let setup = if loaded.accounts.is_empty() {
            Setup::new(state_file.clone())
        } else {
            vigie::sources::setup_from_config(&loaded, state_file.clone(), false, secrets.clone())
        };
        let (core, mut receiver) = Core::start(setup).expect("the core starts");
        let events = Arc::new(Mutex::new(Vec::new()));
        let kept = events.clone();
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(event);
            }
        });
        let settings = Arc::new(Settings::new(core, config_file.clone(), state_file.clone(), false, secrets.clone(), Notifications::default()));
        Desk { dir, config_file, state_file, secrets, settings, events }
    }

    /// Waits until the snapshot shows `id` in a state `wanted` accepts.
    async fn until(&self, id: &str, what: &str, wanted: impl Fn(&Connectivity) -> bool) -> Connectivity {
        let mut snapshots = self.settings.handle().subscribe();
        let found = within(
            PATIENCE,
            what,
            snapshots.wait_for(|s| s.accounts.iter().any(|a| a.id.as_str() == id && wanted(&a.connectivity))),
        )
        .await
        .expect("the core runs");
        found.accounts.iter().find(|a| a.id.as_str() == id).map(|a| a.connectivity.clone()).expect("the account")
    }

    /// Waits until `id` has a count, which the state file then holds.
    async fn counted(&self, id: &str) {
        let mut snapshots = self.settings.handle().subscribe();
        let counted = snapshots.wait_for(|s| s.accounts.iter().any(|a| a.id.as_str() == id && a.unread.count.is_some()));
        within(PATIENCE, "the account's first count", counted).await.expect("the core runs");
    }

    async fn probe(&self, form: &AccountForm, secret: Option<&str>) -> ProbeReport {
        let log = ProbeLog::default();
        let secret = secret.map(|s| SecretString::from(s.to_owned()));
        within(PATIENCE, "the probe", self.settings.test_connection(form, secret, &log)).await.expect("the form is valid")
    }

    /// Stops the core and collects what left it: events, the snapshot, the
    /// settings view, the state and config files.
    async fn collect(self, exits: &mut Exits) {
        let snapshot = self.settings.handle().snapshot();
        exits.snapshot(&snapshot);
        let view = self.settings.view().await.expect("the settings view");
        exits.debug("settings view", &view);
        exits.json("settings view", &view);
        exits.debug("config", &Config::load(&self.config_file).expect("the config file stays valid"));
        exits.debug("keyring", &self.secrets);
        self.settings.stop().await;
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(!events.is_empty(), "the core told nothing");
        exits.events(&events);
        exits.file("config file", &self.config_file);
        exits.file("state file", &self.state_file);
        drop(self.dir);
    }
}

fn is_live(c: &Connectivity) -> bool {
    *c == Connectivity::LivePush
}

fn auth_failed(c: &Connectivity) -> bool {
    matches!(c, Connectivity::AuthFailed { .. })
}

fn mail_form(dovecot: &Dovecot, id: &str) -> AccountForm {
    AccountForm {
        id: id.to_owned(),
        name: "Mail".to_owned(),
        source: Source::Mail,
        enabled: true,
        badge: BadgeMode::Count,
        server: "127.0.0.1".to_owned(),
        username: MAIL_USER.to_owned(),
        poll_interval_secs: Some(60),
        mail: Some(MailForm {
            port: Some(dovecot.port()),
            tls: TlsMode::None,
            allow_plaintext_on_loopback: true,
            folders: vec!["INBOX".to_owned()],
            auth: MailAuth::Password,
            pinned_fingerprint: None,
            webmail_link: None,
        }),
        chat: None,
        tasks: None,
    }
}

fn chat_form(fake: &FakeRocketChat, id: &str) -> AccountForm {
    AccountForm {
        id: id.to_owned(),
        name: "Chat".to_owned(),
        source: Source::Chat,
        enabled: true,
        badge: BadgeMode::Count,
        server: fake.base_url(),
        username: String::new(),
        poll_interval_secs: Some(60),
        mail: None,
        chat: Some(ChatForm {
            user_id: Some(fake_rocketchat::ALICE.to_owned()),
            open_in: OpenIn::Browser,
            notify_all_messages: false,
            rooms: Default::default(),
        }),
        tasks: None,
    }
}

fn tasks_form(fake: &FakeLeantime, id: &str, name: &str, auth: TasksAuth) -> AccountForm {
    AccountForm {
        id: id.to_owned(),
        name: name.to_owned(),
        source: Source::Tasks,
        enabled: true,
        badge: BadgeMode::Count,
        server: fake.base_url(),
        username: String::new(),
        poll_interval_secs: Some(60),
        mail: None,
        chat: None,
        tasks: Some(TasksForm { auth, assigned_tasks: BadgeMode::Count, requests_per_minute: None }),
    }
}

fn secret(value: &str) -> Option<SecretString> {
    Some(SecretString::from(value.to_owned()))
}

// ---------------------------------------------------------------------------
// The scenarios

#[tokio::test]
async fn a_mail_password_never_leaves_through_sign_in_refusal_reconnects_or_test_connection() {
    let (log, _capture) = capture_log();
    let mut exits = Exits::default();
    let users = vec![(MAIL_USER.to_owned(), MAIL_PASSWORD.to_owned())];
    let mut dovecot = Dovecot::start_with(Options { users, ..Options::default() }).await;
    let desk = Desk::start("", Arc::new(MemorySecrets::default()));
    let form = mail_form(&dovecot, "");

    exits.report(&desk.probe(&form, Some(MAIL_PASSWORD)).await);
    let refused = desk.probe(&form, Some(WRONG_MAIL_PASSWORD)).await;
    assert!(!refused.ok, "{refused:#?}");
    exits.report(&refused);

    let id = desk.settings.save_account(form, secret(MAIL_PASSWORD)).await.expect("saved");
    desk.until(&id, "the mail account live", is_live).await;
    ImapClient::login(dovecot.port(), MAIL_USER, MAIL_PASSWORD)
        .await
        .append("INBOX", &message("a@example.test", "Hello", "x"), false)
        .await;
    let mut snapshots = desk.settings.handle().subscribe();
    within(PATIENCE, "the new mail counted", snapshots.wait_for(|s| s.badge.count == 1)).await.expect("the core runs");

    // The connection is lost, and comes back.
    dovecot.stop().await;
    desk.until(&id, "the account backing off", |c| matches!(c, Connectivity::BackingOff { .. })).await;
    dovecot.restart().await;
    desk.until(&id, "the account live again", is_live).await;

    // The password changed on the server's side: the user types a wrong one.
    desk.settings.save_account(mail_form(&dovecot, &id), secret(WRONG_MAIL_PASSWORD)).await.expect("saved");
    let state = desk.until(&id, "the wrong password refused", auth_failed).await;
    assert!(format!("{state:?}").contains("AUTHENTICATIONFAILED"), "the server's words are shown: {state:?}");

    desk.collect(&mut exits).await;
    exits.add("log", log.logged(&["DEBUG", "probe step", "signed in", "mail synced", "watcher stopped", "AUTHENTICATIONFAILED"]));
    exits.assert_free_of(&Canaries::new(&[("mail password", MAIL_PASSWORD), ("wrong mail password", WRONG_MAIL_PASSWORD)]));
}

/// The settings window's process types the password, and the tray process
/// runs the command: the secret crosses the control socket once, and no
/// answer, push or log line of either side carries it back.
#[tokio::test]
async fn a_mail_password_typed_in_the_window_crosses_the_control_socket_and_never_comes_back() {
    use serde_json::{Value, json};
    use vigie::control::{Client, Listener, NoWindow, Service};

    let (log, _capture) = capture_log();
    let mut exits = Exits::default();
    let users = vec![(MAIL_USER.to_owned(), MAIL_PASSWORD.to_owned())];
    let dovecot = Dovecot::start_with(Options { users, ..Options::default() }).await;
    let desk = Desk::start("", Arc::new(MemorySecrets::default()));
    let socket = desk.dir.path().join("run/control.sock");
    let listener = Listener::bind(&socket).await.expect("the socket binds");
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(listener.serve(Arc::new(Service::new(desk.settings.clone(), NoWindow)), stop.clone()));
    let (client, mut pushed) = Client::connect(&socket).await.expect("connects");
    client.call("subscribe", Value::Null).await.expect("subscribed");

    let form = serde_json::to_value(mail_form(&dovecot, "")).expect("a form");
    let mut answers = Vec::new();
    let refused = client.call("test_connection", json!({ "form": form, "secret": WRONG_MAIL_PASSWORD, "probeId": 1 })).await.expect("tested");
    assert_eq!(refused["ok"], false, "{refused}");
    answers.push(refused);
    let id = client.call("save_account", json!({ "form": form, "secret": MAIL_PASSWORD })).await.expect("saved");
    let id = id.as_str().expect("an id").to_owned();
    desk.until(&id, "the mail account live", is_live).await;
    answers.push(client.call("get_settings", Value::Null).await.expect("the settings"));
    answers.push(client.call("get_overview", Value::Null).await.expect("the overview"));
    // Arguments shifted by a buggy page: serde would quote the string it
    // refused, which here is the password.
    let garbled = client.call("save_account", json!({ "form": MAIL_PASSWORD, "secret": MAIL_PASSWORD })).await.expect_err("refused");
    exits.debug("refusal of a garbled form", &garbled);

    stop.cancel();
    serving.await.expect("the server stops");
    let mut pushes = Vec::new();
    while let Ok(push) = pushed.try_recv() {
        pushes.push(format!("{} {}", push.event, push.payload));
    }
    assert!(pushes.iter().any(|p| p.starts_with("probe-progress")), "the probe's steps were pushed: {pushes:?}");
    exits.add("control answers", answers.iter().map(Value::to_string).collect::<Vec<_>>().join("\n"));
    exits.add("control pushes", pushes.join("\n"));
    desk.collect(&mut exits).await;
    exits.add("log", log.logged(&["control channel open", "probe step"]));
    exits.assert_free_of(&Canaries::new(&[("mail password", MAIL_PASSWORD), ("wrong mail password", WRONG_MAIL_PASSWORD)]));
}

#[tokio::test]
async fn oauth_tokens_never_leave_through_refresh_rotation_refusal_or_test_connection() {
    let (log, _capture) = capture_log();
    let mut exits = Exits::default();
    let users = vec![(OAUTH_USER.to_owned(), ACCESS_TOKEN.to_owned())];
    let dovecot = Dovecot::start_with(Options { users, ..Options::default() }).await;
    let oauth = FakeOAuth::start(REFRESH_TOKEN, ACCESS_TOKEN).await;
    let secrets = Arc::new(MemorySecrets::default());
    for (id, name, value) in [
        ("oauth", REFRESH_TOKEN_SECRET, REFRESH_TOKEN),
        ("oauth", CLIENT_SECRET_SECRET, CLIENT_SECRET),
        ("revoked", REFRESH_TOKEN_SECRET, REVOKED_REFRESH_TOKEN),
        ("expired", ACCESS_TOKEN_SECRET, EXPIRED_ACCESS_TOKEN),
    ] {
        secrets.set(&AccountId::new(id), name, &SecretString::from(value.to_owned())).expect("store");
    }
    // Written by hand, as the settings window has no OAuth fields: one
    // account refreshes its token, one holds a revoked refresh token, one
    // an expired access token.
    let account = |id: &str, auth: &str, refreshed: bool| {
        let oauth = if refreshed {
            format!("oauth_client_id = \"vigie-test\"\noauth_token_url = \"{}\"\n", oauth.token_url())
        } else {
            String::new()
        };
        format!(
            "[[account]]\nid = \"{id}\"\nsource = \"mail\"\nserver = \"127.0.0.1\"\nusername = \"{OAUTH_USER}\"\n\
             [account.mail]\nport = {}\ntls = \"none\"\nallow_plaintext_on_loopback = true\nauth = \"{auth}\"\n{oauth}",
            dovecot.port()
        )
    };
    let config = [account("oauth", "xoauth2", true), account("revoked", "xoauth2", true), account("expired", "oauthbearer", false)].join("\n");
    let desk = Desk::start(&config, secrets.clone());
    desk.until("oauth", "the refreshed token signing in", is_live).await;
    desk.counted("oauth").await;
    desk.until("revoked", "the revoked refresh token refused", auth_failed).await;
    desk.until("expired", "the expired access token refused", auth_failed).await;
    let rotated = secrets.get(&AccountId::new("oauth"), REFRESH_TOKEN_SECRET).expect("read").expect("a refresh token");
    let rotated = secrecy::ExposeSecret::expose_secret(&rotated).to_owned();
    assert_ne!(rotated, REFRESH_TOKEN, "the provider rotated the refresh token");

    // Test connection with the stored secrets refreshes again; the provider
    // rotates the stored token once more, and the new one is stored (the old
    // one is retired: the account would be left with a dead token).
    let form = AccountForm::from_config(
        &Config::load(&desk.config_file).expect("valid").accounts.into_iter().find(|a| a.id.as_str() == "oauth").expect("the account"),
    );
    let report = desk.probe(&form, None).await;
    assert!(report.ok, "{report:#?}");
    exits.report(&report);
    let stored_now = secrets.get(&AccountId::new("oauth"), REFRESH_TOKEN_SECRET).expect("read").expect("a refresh token");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored_now), &oauth.valid_refresh_token(), "the probe's rotation is stored");

    desk.collect(&mut exits).await;
    exits.add("log", log.logged(&["probe step", "signed in", "invalid_grant", "watcher stopped"]));
    let mut canaries = Canaries::new(&[
        ("refresh token", REFRESH_TOKEN),
        ("access token", ACCESS_TOKEN),
        ("client secret", CLIENT_SECRET),
        ("revoked refresh token", REVOKED_REFRESH_TOKEN),
        ("expired access token", EXPIRED_ACCESS_TOKEN),
    ]);
    canaries.add("rotated refresh token", &rotated);
    canaries.add("the provider's refresh token now", &oauth.valid_refresh_token());
    exits.assert_free_of(&canaries);
}

#[tokio::test]
async fn chat_tokens_and_passwords_never_leave_through_sign_in_two_factor_drops_or_test_connection() {
    let (log, _capture) = capture_log();
    let mut exits = Exits::default();
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let desk = Desk::start("", Arc::new(MemorySecrets::default()));
    let form = chat_form(&fake, "");

    exits.report(&desk.probe(&form, Some(fake_rocketchat::TOKEN)).await);
    let refused = desk.probe(&form, Some(WRONG_CHAT_TOKEN)).await;
    assert!(!refused.ok, "{refused:#?}");
    exits.report(&refused);

    // Signing in with the password gives the token the account then uses;
    // a wrong password, a two-factor prompt and a wrong code on the way.
    let secrets: Arc<dyn SecretStore> = desk.secrets.clone();
    let chat = AccountId::new("chat");
    let password = SecretString::from(fake_rocketchat::PASSWORD.to_owned());
    let wrong = SecretString::from(WRONG_CHAT_PASSWORD.to_owned());
    let base = fake.base_url();
    exits.debug("wrong password", &sign_in_and_store(secrets.clone(), &chat, &base, "alice", &wrong, None).await);
    fake.require_2fa();
    exits.debug("code asked", &sign_in_and_store(secrets.clone(), &chat, &base, "alice", &password, None).await);
    exits.debug("wrong code", &sign_in_and_store(secrets.clone(), &chat, &base, "alice", &password, Some("000000")).await);
    let signed_in = sign_in_and_store(secrets.clone(), &chat, &base, "alice", &password, Some(fake_rocketchat::CODE)).await;
    assert!(signed_in.is_ok(), "{signed_in:?}");
    exits.debug("signed in", &signed_in);

    // Saved without a secret: the token the sign-in stored is the one used.
    let id = desk.settings.save_account(form, None).await.expect("saved");
    assert_eq!(id, chat.as_str(), "the account the sign-in stored the token for");
    desk.until(&id, "the chat account live", is_live).await;
    fake.post(fake_rocketchat::DM_BOB, fake_rocketchat::BOB, "hi", &[]);
    let mut snapshots = desk.settings.handle().subscribe();
    within(PATIENCE, "the message counted", snapshots.wait_for(|s| s.badge.count >= 1)).await.expect("the core runs");

    // The link drops and comes back (a second DDP login with the token).
    let logins = fake.logins();
    fake.drop_sockets();
    assert!(fake.wait_until(PATIENCE, |f| f.logins() > logins).await, "the watcher signed in again");
    desk.until(&id, "the account live again", is_live).await;
    // The token expires: refused at the next connection.
    fake.expire_token();
    fake.drop_sockets();
    desk.until(&id, "the expired token refused", auth_failed).await;
    // A wrong token typed into the settings.
    desk.settings.save_account(chat_form(&fake, &id), secret(WRONG_CHAT_TOKEN)).await.expect("saved");
    desk.until(&id, "the wrong token refused", auth_failed).await;

    desk.collect(&mut exits).await;
    exits.add("log", log.logged(&["probe step", "Rocket.Chat is live", "watcher stopped"]));
    exits.assert_free_of(&Canaries::new(&[
        ("chat token", fake_rocketchat::TOKEN),
        ("chat password", fake_rocketchat::PASSWORD),
        ("wrong chat token", WRONG_CHAT_TOKEN),
        ("wrong chat password", WRONG_CHAT_PASSWORD),
    ]));
}

#[tokio::test]
async fn leantime_tokens_and_api_keys_never_leave_through_polls_refusals_or_test_connection() {
    let (log, _capture) = capture_log();
    let mut exits = Exits::default();
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let desk = Desk::start("", Arc::new(MemorySecrets::default()));

    let accounts = [("By token", TasksAuth::Token, fake.token(), WRONG_TASKS_TOKEN), ("By key", TasksAuth::ApiKey, fake.api_key(), WRONG_API_KEY)];
    for (name, auth, good, wrong) in accounts {
        let form = tasks_form(&fake, "", name, auth);
        exits.report(&desk.probe(&form, Some(good)).await);
        let refused = desk.probe(&form, Some(wrong)).await;
        assert!(!refused.ok, "{refused:#?}");
        exits.report(&refused);
        let id = desk.settings.save_account(form, secret(good)).await.expect("saved");
        desk.until(&id, "the tasks account polling", |c| *c == Connectivity::Polling).await;
        desk.counted(&id).await;
        fake.add_notification("@Jane see this", "Sam Lee");
        desk.settings.handle().refresh(&AccountId::new(id.clone()), vigie::scheduler::Trigger::Manual);
        desk.settings.save_account(tasks_form(&fake, &id, name, auth), secret(wrong)).await.expect("saved");
        desk.until(&id, "the wrong credential refused", auth_failed).await;
    }
    // A revoked credential, found at the next poll.
    let id = desk.settings.save_account(tasks_form(&fake, "", "Revoked", TasksAuth::Token), secret(fake.token())).await.expect("saved");
    desk.until(&id, "the third account polling", |c| *c == Connectivity::Polling).await;
    fake.revoke_token();
    desk.settings.handle().refresh(&AccountId::new(id.clone()), vigie::scheduler::Trigger::Manual);
    desk.until(&id, "the revoked token refused", auth_failed).await;

    desk.collect(&mut exits).await;
    exits.add("log", log.logged(&["probe step", "connected to Leantime", "polling Leantime", "watcher stopped"]));
    exits.assert_free_of(&Canaries::new(&[
        ("tasks token", fake.token()),
        ("API key", fake.api_key()),
        ("wrong tasks token", WRONG_TASKS_TOKEN),
        ("wrong API key", WRONG_API_KEY),
    ]));
}

// ---------------------------------------------------------------------------
// Servers that quote the request they refuse

/// An IMAP server that refuses every sign-in, quoting it: LOGIN's
/// arguments, and a SASL initial response both as sent (base64) and
/// decoded, in an error challenge and in the NO.
async fn echoing_imap_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let caps = "IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER";
                let _ = write.write_all(format!("* OK [CAPABILITY {caps}] echo ready\r\n").as_bytes()).await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let (tag, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                    let (command, args) = rest.split_once(' ').unwrap_or((rest, ""));
                    let answer = match command.to_ascii_uppercase().as_str() {
                        "CAPABILITY" => format!("* CAPABILITY {caps}\r\n{tag} OK done\r\n"),
                        "LOGIN" => format!("{tag} NO [AUTHENTICATIONFAILED] refused: LOGIN {args}\r\n"),
                        "AUTHENTICATE" => {
                            let initial = match args.split_once(' ') {
                                Some((_, initial)) => initial.to_owned(),
                                None => {
                                    let _ = write.write_all(b"+ \r\n").await;
                                    lines.next_line().await.ok().flatten().unwrap_or_default()
                                }
                            };
                            let decoded = base64::engine::general_purpose::STANDARD.decode(initial.trim()).unwrap_or_default();
                            let decoded = String::from_utf8_lossy(&decoded).replace('\x01', "^A");
                            let challenge = serde_json::json!({"status": "401", "you_sent": decoded}).to_string();
                            let challenge = base64::engine::general_purpose::STANDARD.encode(challenge);
                            let _ = write.write_all(format!("+ {challenge}\r\n").as_bytes()).await;
                            let _ = lines.next_line().await;
                            format!("{tag} NO [AUTHENTICATIONFAILED] refused: {initial} = {decoded}\r\n")
                        }
                        "LOGOUT" => format!("* BYE\r\n{tag} OK bye\r\n"),
                        _ => format!("{tag} BAD what is {line}\r\n"),
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, task)
}

/// An HTTP server that answers every request with 401 and an error that
/// quotes the request's credentials and body, in the shape of Rocket.Chat's,
/// Leantime's and an OAuth provider's refusals; except Rocket.Chat's
/// `/api/info`, which needs no credentials. Keeps every body it was sent.
async fn echoing_http_server() -> (String, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    async fn refuse(State(bodies): State<Arc<Mutex<Vec<String>>>>, headers: HeaderMap, body: String) -> (StatusCode, String) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let quoted = format!(
            "Unauthorized: {} {} {} {body}",
            header("authorization"),
            header("x-auth-token"),
            header("x-api-key")
        );
        bodies.lock().unwrap_or_else(|e| e.into_inner()).push(body);
        (StatusCode::UNAUTHORIZED, serde_json::json!({"status": "error", "error": quoted, "message": quoted}).to_string())
    }
    async fn info() -> String {
        serde_json::json!({"version": "7.0.0", "success": true}).to_string()
    }
    async fn me(state: State<Arc<Mutex<Vec<String>>>>, headers: HeaderMap, body: String) -> (StatusCode, String) {
        if headers.get("x-auth-token").is_some_and(|t| t == DDP_REFUSED_TOKEN) {
            let me = serde_json::json!({"_id": fake_rocketchat::ALICE, "username": "alice", "success": true});
            return (StatusCode::OK, me.to_string());
        }
        refuse(state, headers, body).await
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/api/info", axum::routing::get(info))
        .route("/api/v1/me", axum::routing::get(me))
        .route("/websocket", axum::routing::get(echoing_ddp))
        .fallback(refuse)
        .with_state(bodies.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, bodies, task)
}

/// Rocket.Chat's realtime API refusing every login with a reason that
/// quotes the token.
async fn echoing_ddp(upgrade: axum::extract::ws::WebSocketUpgrade) -> axum::response::Response {
    use axum::extract::ws::Message;
    upgrade.on_upgrade(|mut socket| async move {
        if socket.send(Message::Text(r#"{"server_id":"0"}"#.into())).await.is_err() {
            return;
        }
        while let Some(Ok(Message::Text(text))) = socket.recv().await {
            let frame: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let answer = match frame["msg"].as_str() {
                Some("connect") => serde_json::json!({"msg": "connected", "session": "s"}),
                Some("ping") => serde_json::json!({"msg": "pong"}),
                Some("method") => {
                    let token = frame.pointer("/params/0/resume").and_then(serde_json::Value::as_str).unwrap_or_default();
                    let reason = format!("You've been logged out by the server: {token} has expired");
                    serde_json::json!({"msg": "result", "id": frame["id"], "error": {"error": 403, "reason": reason, "errorType": "Meteor.Error"}})
                }
                _ => continue,
            };
            if socket.send(Message::Text(answer.to_string().into())).await.is_err() {
                return;
            }
        }
    })
}

/// The first failure of `spec`'s account, run alone in a core.
async fn refusal(spec: AccountSpec) -> (Connectivity, Vec<CoreEvent>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = crate::support::Rig::start(&dir.path().join("state.json"), vec![spec]);
    let events = within(PATIENCE, "the refusal", rig.events_until("a refusal", |e| {
        let failed = |state: &Connectivity| {
            matches!(state, Connectivity::AuthFailed { .. } | Connectivity::NeedsAttention { .. } | Connectivity::BackingOff { .. })
        };
        matches!(e, CoreEvent::Connectivity { state, .. } if failed(state))
    }))
    .await;
    let state = match events.last() {
        Some(CoreEvent::Connectivity { state, .. }) => state.clone(),
        _ => unreachable!("events_until ends with the match"),
    };
    rig.stop().await;
    (state, events)
}

fn on_demand() -> vigie::scheduler::ScheduleConfig {
    vigie::scheduler::ScheduleConfig::polling(Duration::from_secs(3_600))
}

fn store(id: &str, name: &str, value: &str) -> Arc<dyn SecretStore> {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets.set(&AccountId::new(id), name, &SecretString::from(value.to_owned())).expect("store");
    secrets
}

#[tokio::test]
async fn a_server_that_quotes_the_refused_request_does_not_make_us_repeat_the_secret() {
    let (log, _capture) = capture_log();
    let mut exits = Exits::default();
    let (imap_port, _imap) = echoing_imap_server().await;
    let (http, sent, _http) = echoing_http_server().await;

    // Mail: LOGIN with a password, XOAUTH2 and OAUTHBEARER with a token.
    for (auth, name, value) in [
        (MailAuth::Password, vigie::imap::PASSWORD_SECRET, MAIL_PASSWORD),
        (MailAuth::Xoauth2, ACCESS_TOKEN_SECRET, ACCESS_TOKEN),
        (MailAuth::Oauthbearer, ACCESS_TOKEN_SECRET, EXPIRED_ACCESS_TOKEN),
    ] {
        let config = AccountConfig {
            server: Some("127.0.0.1".to_owned()),
            username: Some(MAIL_USER.to_owned()),
            mail: Some(MailSettings {
                port: Some(imap_port),
                tls: TlsMode::None,
                allow_plaintext_on_loopback: true,
                auth,
                ..MailSettings::default()
            }),
            ..account_config("mail", Source::Mail)
        };
        let secrets = store("mail", name, value);
        let watcher = ImapWatcher::from_config(&config, secrets.clone()).expect("valid settings");
        let (state, events) = refusal(AccountSpec { config: config.clone(), schedule: on_demand(), watcher: Box::new(watcher) }).await;
        assert!(auth_failed(&state), "{state:?}");
        assert!(format!("{state:?}").contains("refused"), "the server's words are kept: {state:?}");
        exits.events(&events);
        exits.report(&test_connection(&config, secrets, &ProbeLog::default()).await);
    }

    // OAuth: a refresh (client secret in Basic auth, refresh token in the
    // body), and the first consent's code exchange (PKCE verifier).
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    for (name, value) in [(REFRESH_TOKEN_SECRET, REFRESH_TOKEN), (CLIENT_SECRET_SECRET, CLIENT_SECRET)] {
        secrets.set(&AccountId::new("mail"), name, &SecretString::from(value.to_owned())).expect("store");
    }
    let config = AccountConfig {
        server: Some("127.0.0.1".to_owned()),
        username: Some(MAIL_USER.to_owned()),
        mail: Some(MailSettings {
            port: Some(imap_port),
            tls: TlsMode::None,
            allow_plaintext_on_loopback: true,
            auth: MailAuth::Xoauth2,
            oauth_client_id: Some("vigie-test".to_owned()),
            oauth_token_url: Some(format!("{http}/token")),
            ..MailSettings::default()
        }),
        ..account_config("mail", Source::Mail)
    };
    let watcher = ImapWatcher::from_config(&config, secrets.clone()).expect("valid settings");
    let (state, events) = refusal(AccountSpec { config: config.clone(), schedule: on_demand(), watcher: Box::new(watcher) }).await;
    assert!(format!("{state:?}").contains("refused"), "the provider's words are kept: {state:?}");
    exits.events(&events);
    exits.report(&test_connection(&config, secrets.clone(), &ProbeLog::default()).await);
    let request = ConsentRequest {
        client_id: "vigie-test".to_owned(),
        client_secret: secret(CLIENT_SECRET),
        auth_url: format!("{http}/authorize"),
        token_url: format!("{http}/token"),
        scopes: vec!["https://mail.google.com/".to_owned()],
    };
    let consent = Consent::start(request).await.expect("listening");
    let query = |name: &str| {
        let url = oauth2::url::Url::parse(consent.url()).expect("a URL");
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).expect("in the consent URL")
    };
    // The browser comes back from the provider with a code.
    let back = format!("{}?code=c0de&state={}", query("redirect_uri"), query("state"));
    let browser = async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::get(back).await.map(|_| ())
    };
    let mail = AccountId::new("mail");
    let (finished, _) = within(PATIENCE, "the consent", async { tokio::join!(consent.finish(&mail, secrets), browser) }).await;
    let refused = finished.expect_err("the provider refuses the code");
    exits.debug("consent refusal", &refused);
    exits.add("consent refusal (Display)", refused.to_string());

    // Rocket.Chat: a password sign-in, and a token whose owner is looked up.
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    let password = SecretString::from(WRONG_CHAT_PASSWORD.to_owned());
    let refused = sign_in_and_store(secrets, &AccountId::new("chat"), &http, "alice", &password, None).await;
    assert!(refused.is_err(), "{refused:?}");
    exits.debug("sign-in refusal", &refused);
    exits.add("sign-in refusal (Display)", refused.map_or_else(|e| e.to_string(), |_| String::new()));
    let chat = AccountConfig { server: Some(http.clone()), ..account_config("chat", Source::Chat) };
    let secrets = store("chat", TOKEN_SECRET, WRONG_CHAT_TOKEN);
    let watcher = RocketChatWatcher::new(AccountId::new("chat"), &http, ChatSettings::default(), secrets.clone());
    let (state, events) = refusal(AccountSpec { config: chat.clone(), schedule: on_demand(), watcher: Box::new(watcher) }).await;
    assert!(auth_failed(&state), "{state:?}");
    exits.events(&events);
    let overlay = Overlay::new(secrets);
    exits.report(&test_connection(&chat, Arc::new(overlay), &ProbeLog::default()).await);
    // With the user id known, the token goes straight to REST.
    let with_user = ChatSettings { user_id: Some(fake_rocketchat::ALICE.to_owned()), ..ChatSettings::default() };
    let secrets = store("chat", TOKEN_SECRET, WRONG_CHAT_TOKEN);
    let watcher = RocketChatWatcher::new(AccountId::new("chat"), &http, with_user, secrets);
    let (state, events) = refusal(AccountSpec { config: chat.clone(), schedule: on_demand(), watcher: Box::new(watcher) }).await;
    assert!(auth_failed(&state), "{state:?}");
    exits.events(&events);
    // A token the REST API takes, refused by the websocket's login.
    let with_user = ChatSettings { user_id: Some(fake_rocketchat::ALICE.to_owned()), ..ChatSettings::default() };
    let secrets = store("chat", TOKEN_SECRET, DDP_REFUSED_TOKEN);
    let watcher = RocketChatWatcher::new(AccountId::new("chat"), &http, with_user.clone(), secrets.clone());
    let (state, events) = refusal(AccountSpec { config: chat.clone(), schedule: on_demand(), watcher: Box::new(watcher) }).await;
    assert!(format!("{state:?}").contains("logged out by the server"), "the websocket's refusal: {state:?}");
    exits.events(&events);
    let chat = AccountConfig { chat: with_user, ..chat };
    exits.report(&test_connection(&chat, secrets, &ProbeLog::default()).await);

    // Leantime: a token and an API key.
    for (auth, value) in [(AuthKind::Token, WRONG_TASKS_TOKEN), (AuthKind::ApiKey, WRONG_API_KEY)] {
        let tasks = AccountConfig { server: Some(http.clone()), auth, ..account_config("tasks", Source::Tasks) };
        let secrets = store("tasks", auth.secret_name(), value);
        let watcher = LeantimeWatcher::new(AccountId::new("tasks"), &http, auth, tasks.tasks.clone(), secrets.clone());
        let (state, events) = refusal(AccountSpec { config: tasks.clone(), schedule: on_demand(), watcher: Box::new(watcher) }).await;
        assert!(auth_failed(&state), "{state:?}");
        exits.events(&events);
        exits.report(&test_connection(&tasks, secrets, &ProbeLog::default()).await);
    }

    exits.add("log", log.logged(&["watcher stopped", "[redacted]"]));
    let verifiers: Vec<String> = sent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(|body| oauth2::url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "code_verifier"))
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(verifiers.len(), 1, "one code exchange");
    let canaries = Canaries::new(&[
        ("PKCE verifier", &verifiers[0]),
        ("refresh token", REFRESH_TOKEN),
        ("client secret", CLIENT_SECRET),
        ("mail password", MAIL_PASSWORD),
        ("access token", ACCESS_TOKEN),
        ("expired access token", EXPIRED_ACCESS_TOKEN),
        ("wrong chat password", WRONG_CHAT_PASSWORD),
        ("wrong chat token", WRONG_CHAT_TOKEN),
        ("chat token refused by the websocket", DDP_REFUSED_TOKEN),
        ("wrong tasks token", WRONG_TASKS_TOKEN),
        ("wrong API key", WRONG_API_KEY),
    ]);
    exits.assert_free_of(&canaries);
}

// ---------------------------------------------------------------------------
// Debug output, which is what a panic message prints

#[tokio::test]
async fn every_type_that_holds_a_secret_hides_it_in_debug_output() {
    let mut exits = Exits::default();
    let secrets = MemorySecrets::default();
    secrets.set(&AccountId::new("mail"), "password", &SecretString::from(MAIL_PASSWORD.to_owned())).expect("store");
    exits.debug("in-memory keyring", &secrets);
    exits.debug("a secret", &SecretString::from(ACCESS_TOKEN.to_owned()));
    let request = ConsentRequest {
        client_id: "vigie-test".to_owned(),
        client_secret: secret(CLIENT_SECRET),
        auth_url: "http://127.0.0.1:9/authorize".to_owned(),
        token_url: "http://127.0.0.1:9/token".to_owned(),
        scopes: vec!["https://mail.google.com/".to_owned()],
    };
    exits.debug("consent request", &request);
    let consent = Consent::start(request).await.expect("listening");
    let shown = format!("{consent:?}");
    assert!(shown.contains("verifier: PkceCodeVerifier([redacted])"), "the PKCE verifier is hidden: {shown}");
    exits.add("consent (Debug)", shown);

    // A panic that prints any of these prints what their Debug does.
    let panicked = std::panic::catch_unwind(|| panic!("a watcher gave up holding {secrets:?}"));
    let message = panicked.expect_err("it panicked");
    exits.add("panic message", message.downcast_ref::<String>().cloned().unwrap_or_default());

    exits.assert_free_of(&Canaries::new(&[
        ("mail password", MAIL_PASSWORD),
        ("access token", ACCESS_TOKEN),
        ("client secret", CLIENT_SECRET),
    ]));
}

#[test]
fn the_canary_search_finds_a_secret_inside_sasl_base64_at_any_offset() {
    let canaries = Canaries::new(&[("token", ACCESS_TOKEN)]);
    for prefix in ["", "u", "us", "user=erin\x01auth=Bearer "] {
        let sasl = base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{ACCESS_TOKEN}\x01\x01"));
        let mut exits = Exits::default();
        exits.add("AUTHENTICATE line", format!("A1 AUTHENTICATE XOAUTH2 {sasl}"));
        let caught = std::panic::catch_unwind(|| exits.assert_free_of(&canaries));
        assert!(caught.is_err(), "the base64 of {prefix:?} + the token was not found");
    }
}
