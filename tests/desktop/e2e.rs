//! End to end: the real tray app under Xvfb, its settings window driven
//! through WebDriver (tauri-driver in front of WebKitWebDriver), against a
//! real Dovecot, as a user would do it.
//!
//! The app is launched by tauri-driver with `--settings`, so that it opens
//! its window at start: a tray app has none otherwise, and WebDriver needs
//! one to attach to. It runs in the private session (its display, bus,
//! keyring and XDG folders), so it reads and writes the session's config
//! file and keeps secrets in the session's keyring.
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
use super::VIGIE;

/// How long the page may take to reflect a change.
const PATIENCE: Duration = Duration::from_secs(30);
/// WebKitWebDriver answers the first command after a new session
/// unreliably for a moment (platform notes, E2E).
const SETTLE: Duration = Duration::from_secs(2);

/// Opens a WebDriver session on the app (launched by tauri-driver with
/// `args`) and waits for its settings window to have loaded; retries the
/// whole session once.
async fn open_app(driver: &str, args: &[&str]) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "tauri:options".to_owned(),
        serde_json::json!({ "application": VIGIE, "args": args }),
    );
    let mut failure = String::new();
    for attempt in 1..=2 {
        let client = match ClientBuilder::new(HttpConnector::new()).capabilities(caps.clone()).connect(driver).await {
            Ok(client) => client,
            Err(e) => {
                failure = format!("attempt {attempt}: no WebDriver session: {e}");
                eprintln!("{failure}");
                continue;
            }
        };
        // The documented settle delay (not a synchronisation: what follows
        // waits for the page itself).
        tokio::time::sleep(SETTLE).await;
        match client.wait().at_most(PATIENCE).for_element(Locator::Css("h1")).await {
            Ok(_) => return client,
            Err(e) => {
                failure = format!("attempt {attempt}: the settings page did not answer: {e}");
                eprintln!("{failure}");
                let _ = client.close().await;
            }
        }
    }
    panic!("could not drive the settings window: {failure}");
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

/// Waits until the tray icon shows `badge` (and a count one higher would
/// match worse), comparing a screenshot with the icon the app renders.
fn wait_for_tray_badge(session: &Session, badge: Badge, name: &str) {
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
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_window_opens_under_webdriver_and_lists_the_running_accounts() {
    let mut session = Session::desktop().expect("desktop session");
    let _toasts = session.start_notifyd().expect("notification server");
    let driver = session.start_tauri_driver().expect("tauri-driver");

    // No config file: the demo's accounts run.
    let client = open_app(&driver, &["--settings"]).await;
    let title = client.title().await.expect("title");
    assert_eq!(title, "Vigie — Settings");
    let heading = text_of(&client, "h1").await.expect("read the heading").expect("a heading");
    assert!(heading.contains("Vigie"), "{heading:?}");
    let states = until("the demo accounts are listed with their state", PATIENCE, || async {
        let items = client.find_all(Locator::Css("li.account[data-account-id][data-state]")).await?;
        let mut states = Vec::new();
        for item in items {
            states.push((item.attr("data-account-id").await?.unwrap_or_default(), item.attr("data-state").await?.unwrap_or_default()));
        }
        Ok((states.len() >= 3).then_some(states))
    })
    .await;
    assert!(states.iter().any(|(id, _)| id.starts_with("demo-")), "{states:?}");
    client.close().await.expect("end the WebDriver session");
    drop(session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_account_added_in_the_settings_window_goes_live_and_its_new_mail_reaches_the_count_and_the_tray() {
    let mut session = Session::desktop().expect("desktop session");
    let _toasts = session.start_notifyd().expect("notification server");
    session.start_keyring().expect("gnome keyring");
    let server = Dovecot::start().await;
    // One unread mail before the account exists: the first count.
    let mut imap = server.client().await;
    imap.append("INBOX", &dovecot::message("Alice <alice@example.test>", "Before", "Already there."), false).await;
    let driver = session.start_tauri_driver().expect("tauri-driver");

    // An empty config: nothing in the session's config folder.
    let config_file = session.dir().join("config").join("vigie").join("config.toml");
    assert!(!config_file.exists());
    let client = open_app(&driver, &["--settings"]).await;

    // A first run: the welcome offers the sources at once ("Add an
    // account" is already open).
    assert!(element(&client, "section.welcome").await.is_displayed().await.expect("welcome"), "a first run is welcomed");
    assert!(
        !element(&client, "[data-action=\"add-account\"]").await.is_displayed().await.expect("add button"),
        "the chooser is open already"
    );
    element(&client, "[data-source-choice=\"mail\"]").await.click().await.expect("choose Mail");
    fill(&client, "name", "Test mail").await;
    fill(&client, "server", "127.0.0.1").await;
    fill(&client, "username", dovecot::USER).await;
    fill(&client, "secret", dovecot::PASSWORD).await;
    fill(&client, "mail.port", &server.port().to_string()).await;
    element(&client, "form#account-form select[name=\"mail.tls\"]")
        .await
        .select_by_value("none")
        .await
        .expect("choose no TLS");
    tick(&client, "input[name=\"mail.allowPlaintextOnLoopback\"]", true).await;
    tick(&client, "input[name=\"mail.folders\"][value=\"INBOX\"]", true).await;
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
    let count = format!("{item} .unread-count");
    until("the account counts the mail that was there", PATIENCE, || async {
        Ok(text_of(&client, &count).await?.filter(|c| c == "1"))
    })
    .await;
    wait_for_tray_badge(&session, Badge { count: 1, dot: false }, "e2e-tray-1");

    // A new mail arrives: the count and the badge follow.
    imap.append("INBOX", &dovecot::message("Bob <bob@example.test>", "After", "Just arrived."), false).await;
    until("the count goes to 2", PATIENCE, || async {
        Ok(text_of(&client, &count).await?.filter(|c| c == "2"))
    })
    .await;
    wait_for_tray_badge(&session, Badge { count: 2, dot: false }, "e2e-tray-2");

    client.close().await.expect("end the WebDriver session");
}
