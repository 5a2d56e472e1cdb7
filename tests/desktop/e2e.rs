//! End to end: the real tray app under Xvfb, its settings window driven
//! through WebDriver (tauri-driver in front of WebKitWebDriver), against a
//! real Dovecot, as a user would do it.
//!
//! The tray app (`vigie --hidden`) is started first, as the user's session
//! does; tauri-driver then launches the settings window's process
//! (`vigie-settings`) in its place, which WebDriver attaches to, and which
//! talks to the tray app over its control socket. Both run in the private
//! session (its display, bus, keyring and XDG folders), so they read and
//! write the session's config file and keep secrets in the session's
//! keyring.
//!
//! WebKitWebDriver sometimes drops the first command after a session is
//! created (more so under load): a short settle delay after the session
//! opens, and the whole session is retried once if it still cannot be used.
//! Every other wait is for a condition in the page, on the screen or on the
//! server, bounded by a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use vigie::badge::Badge;

use super::dovecot::{self, Dovecot};
use super::gui::{Shot, icon_distance, window_origin};
use super::session::Session;
use super::{VIGIE, VIGIE_SETTINGS};

/// How long the page may take to reflect a change.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a whole scenario may take: a WebDriver command can go
/// unanswered if the native driver dies.
const SCENARIO: Duration = Duration::from_secs(240);
/// WebKitWebDriver answers the first command after a new session
/// unreliably for a moment (platform notes, E2E).
const SETTLE: Duration = Duration::from_secs(2);

/// Only one app under WebDriver at a time: WebKitWebDriver is flakier
/// under load (platform notes, E2E).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The tray app of a scenario, stopped (SIGTERM, by its PID) at the end.
struct TrayApp(std::process::Child);

impl Drop for TrayApp {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

/// Starts the tray app in `session`, then tauri-driver, has it launch the
/// settings window, and waits for the window to have loaded. If the
/// WebDriver session cannot be used, the driver and the window are stopped
/// and tried once more.
async fn open_app(session: &mut Session) -> (Client, TrayApp) {
    let tray = session
        .command(VIGIE)
        .arg("--hidden")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the tray app starts");
    let tray = TrayApp(tray);
    // Its control socket listens before the icon is made.
    session.wait_for_window(PATIENCE, |t| t.contains("tray-icon tray app main")).expect("the tray icon is docked");
    let mut caps = serde_json::Map::new();
    caps.insert("tauri:options".to_owned(), serde_json::json!({ "application": VIGIE_SETTINGS, "args": [] }));
    let mut failures = Vec::new();
    for attempt in 1..=2 {
        let driver = session.start_tauri_driver().expect("tauri-driver");
        match try_open(&driver, &caps).await {
            Ok(client) => return (client, tray),
            Err(e) => {
                eprintln!("WebDriver attempt {attempt} failed: {e}");
                failures.push(e);
            }
        }
    }
    session.stop_tauri_driver();
    panic!("could not drive the settings window: {failures:?}\n{}", session.tauri_driver_log());
}

async fn try_open(driver: &str, caps: &serde_json::Map<String, serde_json::Value>) -> Result<Client, String> {
    // WebKitWebDriver may also die while it starts the app, and then the
    // request is never answered.
    let mut builder = ClientBuilder::new(HttpConnector::new());
    let connect = builder.capabilities(caps.clone()).connect(driver);
    let client = tokio::time::timeout(PATIENCE, connect)
        .await
        .map_err(|_| format!("no WebDriver session within {PATIENCE:?}"))?
        .map_err(|e| format!("no WebDriver session: {e}"))?;
    // The documented settle delay (not a synchronisation: what follows
    // waits for the page itself).
    tokio::time::sleep(SETTLE).await;
    match client.wait().at_most(PATIENCE).for_element(Locator::Css("h1")).await {
        Ok(_) => Ok(client),
        Err(e) => Err(format!("the settings page did not answer: {e}")),
    }
}

/// Polls `check` until it gives `Some`, at most `limit`.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, CmdError>>,
{
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(Some(value)) => return value,
            Ok(None) => {}
            Err(e) => last = e.to_string(),
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what} (last error: {last})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first element matching `css`, waiting for it to appear.
async fn element(client: &Client, css: &str) -> Element {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` within {PATIENCE:?}: {e}"))
}

/// Types `value` into the form's field `name`, replacing what it held.
async fn fill(client: &Client, name: &str, value: &str) {
    let field = element(client, &format!("form#account-form [name=\"{name}\"]")).await;
    field.clear().await.unwrap_or_else(|e| panic!("clear {name}: {e}"));
    field.send_keys(value).await.unwrap_or_else(|e| panic!("type into {name}: {e}"));
}

/// Ticks (or unticks) the form's checkbox matching `css`.
async fn tick(client: &Client, css: &str, on: bool) {
    let boxed = element(client, &format!("form#account-form {css}")).await;
    if boxed.is_selected().await.unwrap_or_else(|e| panic!("read {css}: {e}")) != on {
        boxed.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }
}

/// `attr` of the first element matching `css`, if there is one.
async fn attr_of(client: &Client, css: &str, attr: &str) -> Result<Option<String>, CmdError> {
    match client.find(Locator::Css(css)).await {
        Ok(found) => found.attr(attr).await,
        Err(e) if e.is_no_such_element() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The text of the first element matching `css`, if there is one.
async fn text_of(client: &Client, css: &str) -> Result<Option<String>, CmdError> {
    match client.find(Locator::Css(css)).await {
        Ok(found) => found.text().await.map(|t| Some(t.trim().to_owned())),
        Err(e) if e.is_no_such_element() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The accounts the window lists, with their state, once it lists any.
async fn listed(client: &Client) -> Vec<(String, String)> {
    until("the window lists accounts", PATIENCE, || async {
        let mut listed = Vec::new();
        for item in client.find_all(Locator::Css("li.account")).await? {
            let id = item.attr("data-account-id").await?.unwrap_or_default();
            listed.push((id, item.attr("data-state").await?.unwrap_or_default()));
        }
        Ok((!listed.is_empty()).then_some(listed))
    })
    .await
}

/// Waits until the tray icon shows `badge` (and a count one higher would
/// match worse), comparing a screenshot with the icon the app renders.
async fn wait_for_tray_badge(session: &Session, badge: Badge, name: &str) {
    let expected = vigie::icon::render(&badge);
    let other = vigie::icon::render(&Badge { count: badge.count + 1, dot: false });
    let deadline = Instant::now() + PATIENCE;
    loop {
        let tree = session
            .wait_for_window(PATIENCE, |t| t.contains("tray-icon tray app main"))
            .expect("the tray icon is docked in the tray host");
        let origin = window_origin(&tree, "tray-icon tray app main").expect("tray geometry");
        let shot = Shot::take(session, name);
        // The tray host may place the icon a pixel or two off its window.
        let best = |icon: &vigie::icon::Pixels| {
            (0..=2)
                .flat_map(|dx| (0..=2).map(move |dy| (dx, dy)))
                .map(|(dx, dy)| icon_distance(&shot, origin.0 + dx, origin.1 + dy, icon))
                .fold(f64::MAX, f64::min)
        };
        let (right, wrong) = (best(&expected), best(&other));
        if right < 12.0 && wrong > right {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the tray does not show badge {} (mean colour distance {right:.1}; badge {}: {wrong:.1})",
            badge.count,
            badge.count + 1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fills the mail form for the test Dovecot (plaintext on loopback).
async fn fill_mail_form(client: &Client, server: &Dovecot) {
    fill(client, "name", "Test mail").await;
    fill(client, "server", "127.0.0.1").await;
    fill(client, "username", dovecot::USER).await;
    fill(client, "secret", dovecot::PASSWORD).await;
    fill(client, "mail.port", &server.port().to_string()).await;
    element(client, "form#account-form select[name=\"mail.tls\"]")
        .await
        .select_by_value("none")
        .await
        .expect("choose no TLS");
    tick(client, "input[name=\"mail.allowPlaintextOnLoopback\"]", true).await;
    tick(client, "input[name=\"mail.folders\"][value=\"INBOX\"]", true).await;
}

/// Presses Test connection and waits for its last step: every step passes
/// (no TLS to loopback is a warning) and the server's folders are listed.
async fn test_connection(client: &Client) {
    element(client, "form#account-form [data-action=\"test-connection\"]").await.click().await.expect("click Test");
    until("the test reaches what the server offers", PATIENCE, || async {
        attr_of(client, "#probe-steps li[data-kind=\"offers\"]", "data-outcome").await
    })
    .await;
    let mut outcomes = Vec::new();
    for step in client.find_all(Locator::Css("#probe-steps li")).await.expect("steps") {
        let kind = step.attr("data-kind").await.expect("kind").unwrap_or_default();
        let outcome = step.attr("data-outcome").await.expect("outcome").unwrap_or_default();
        outcomes.push(format!("{kind}:{outcome}"));
    }
    assert!(outcomes.iter().all(|o| !o.ends_with(":failed")), "every step passes: {outcomes:?}");
    assert!(outcomes.contains(&"signIn:ok".to_owned()), "{outcomes:?}");
    element(client, "form#account-form input[name=\"mail.folders\"][value=\"Archive\"]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_account_added_in_the_settings_window_goes_live_and_its_new_mail_reaches_the_count_and_the_tray() {
    let _serial = ONE_AT_A_TIME.lock().await;
    tokio::time::timeout(SCENARIO, add_a_mail_account_and_receive_a_mail())
        .await
        .unwrap_or_else(|_| panic!("the scenario did not finish within {SCENARIO:?}"));
}

async fn add_a_mail_account_and_receive_a_mail() {
    let mut session = Session::desktop().expect("desktop session");
    let _toasts = session.start_notifyd().expect("notification server");
    session.start_keyring().expect("gnome keyring");
    let server = Dovecot::start().await;
    // One unread mail before the account exists: the first count.
    let mut imap = server.client().await;
    imap.create("Archive").await;
    imap.append("INBOX", &dovecot::message("Alice <alice@example.test>", "Before", "Already there."), false).await;
    // An empty config: nothing in the session's config folder.
    let config_file = session.dir().join("config").join("vigie").join("config.toml");
    assert!(!config_file.exists());
    let (client, _tray) = open_app(&mut session).await;

    // A first run: the demo's accounts run, and the welcome offers the
    // sources at once ("Add an account" is already open).
    let demo = listed(&client).await;
    assert!(!demo.is_empty() && demo.iter().all(|(id, _)| id.starts_with("demo-")), "the demo's accounts: {demo:?}");
    assert!(element(&client, "section.welcome").await.is_displayed().await.expect("welcome"), "a first run is welcomed");
    assert!(
        !element(&client, "[data-action=\"add-account\"]").await.is_displayed().await.expect("add button"),
        "the chooser is open already"
    );
    element(&client, "[data-source-choice=\"mail\"]").await.click().await.expect("choose Mail");
    fill_mail_form(&client, &server).await;
    test_connection(&client).await;
    element(&client, "form#account-form [data-action=\"save-account\"]").await.click().await.expect("click Save");

    // Saved: the config file names the account, the password is in the
    // keyring and nowhere in the file.
    let id = until("the account is in the config file", PATIENCE, || async {
        let text = std::fs::read_to_string(&config_file).unwrap_or_default();
        let config = vigie::config::Config::parse(&config_file, &text).ok();
        Ok(config.and_then(|c| c.accounts.first().map(|a| a.id.as_str().to_owned())))
    })
    .await;
    let text = std::fs::read_to_string(&config_file).expect("config file");
    assert!(!text.contains(&format!("\"{}\"", dovecot::PASSWORD)), "the password is not in the config file:\n{text}");
    let lookup = session
        .command("secret-tool")
        .args(["lookup", "service", "org.vigie.notifier", "username", &format!("{id}/password")])
        .output()
        .expect("secret-tool");
    assert_eq!(String::from_utf8_lossy(&lookup.stdout), dovecot::PASSWORD, "the password is in the keyring");

    // Back on the list, the account goes live with the one unread mail.
    let item = format!("li.account[data-account-id=\"{id}\"]");
    until("the account shows live", PATIENCE, || async {
        Ok(attr_of(&client, &item, "data-state").await?.filter(|s| s == "live"))
    })
    .await;
    let now = listed(&client).await;
    assert_eq!(now, vec![(id.clone(), "live".to_owned())], "the demo stopped once an account was configured");
    let count = format!("{item} .unread-count");
    until("the account counts the mail that was there", PATIENCE, || async {
        Ok(text_of(&client, &count).await?.filter(|c| c == "1"))
    })
    .await;
    wait_for_tray_badge(&session, Badge { count: 1, dot: false }, "e2e-tray-1").await;

    // A new mail arrives: the count and the badge follow.
    imap.append("INBOX", &dovecot::message("Bob <bob@example.test>", "After", "Just arrived."), false).await;
    until("the count goes to 2", PATIENCE, || async {
        Ok(text_of(&client, &count).await?.filter(|c| c == "2"))
    })
    .await;
    wait_for_tray_badge(&session, Badge { count: 2, dot: false }, "e2e-tray-2").await;

    client.close().await.expect("end the WebDriver session");
}

/// The screenshots in `docs/screenshots/`, from the real app: each screen
/// in the light theme, the dark theme (GTK's dark variant, which WebKit
/// passes on as `prefers-color-scheme: dark`) and French (the window's
/// language switch). Run with
/// `cargo test --features app --test desktop -- --ignored screenshots`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/screenshots/; run on purpose"]
async fn screenshots_of_each_screen() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join("screenshots");
    std::fs::create_dir_all(&out).expect("docs/screenshots");
    for variant in ["light", "dark", "fr"] {
        tokio::time::timeout(SCENARIO, shoot(variant, &out))
            .await
            .unwrap_or_else(|_| panic!("the {variant} screenshots did not finish within {SCENARIO:?}"));
    }
}

async fn shoot(variant: &str, out: &std::path::Path) {
    let mut session = Session::desktop().expect("desktop session");
    if variant == "dark" {
        session.set_env("GTK_THEME", "Adwaita:dark");
    }
    let _toasts = session.start_notifyd().expect("notification server");
    session.start_keyring().expect("gnome keyring");
    let server = Dovecot::start().await;
    let mut imap = server.client().await;
    imap.create("Archive").await;
    imap.create("Projects").await;
    for (from, subject) in [("Alice <alice@example.test>", "Quarterly figures"), ("Bob <bob@example.test>", "Lunch?")] {
        imap.append("INBOX", &dovecot::message(from, subject, "Hello."), false).await;
    }
    let (client, _tray) = open_app(&mut session).await;
    if variant == "fr" {
        element(&client, "#lang-select").await.select_by_value("fr").await.expect("French");
        until("the tabs speak French", PATIENCE, || async {
            Ok(text_of(&client, "[data-tab=\"accounts\"]").await?.filter(|t| t == "Comptes"))
        })
        .await;
    }
    let save = |name: &str, png: Vec<u8>| {
        eprintln!("screenshot {variant}-{name}");
        let path = out.join(format!("{variant}-{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    };
    // The first run: the welcome and the demo's accounts.
    listed(&client).await;
    element(&client, "section.welcome").await;
    save("welcome", client.screenshot().await.expect("screenshot"));

    // The notifications tab.
    element(&client, "[data-tab=\"notifications\"]").await.click().await.expect("Notifications tab");
    element(&client, "#notifications-form").await;
    save("notifications", client.screenshot().await.expect("screenshot"));
    element(&client, "[data-tab=\"accounts\"]").await.click().await.expect("Accounts tab");

    // Adding a mail account, after Test connection.
    element(&client, "[data-source-choice=\"mail\"]").await.click().await.expect("choose Mail");
    fill_mail_form(&client, &server).await;
    test_connection(&client).await;
    // The form is taller than the window: show its connection test.
    client
        .execute("document.querySelector('.probe').scrollIntoView({block: 'end'})", vec![])
        .await
        .expect("scroll to the test");
    save("add-mail", client.screenshot().await.expect("screenshot"));
    client.close().await.expect("end the WebDriver session");
}
