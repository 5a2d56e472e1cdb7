//! The control channel: another process of the user's (the settings window,
//! `vigie --status`, a second launch) reaches the running notifier over its
//! Unix socket, runs the settings window's commands and hears what changes.
//! In-process against a real core.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command as Process;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigie::config::Notifications;
use vigie::control::{CallError, Client, ControlError, Listener, NoWindow, Pushed, Service};
use vigie::model::Source;
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::settings::Settings;
use vigie::{Core, Setup};

use crate::support::{Home, Script, ScriptedWatcher, item, spec, update, within};

const PATIENCE: Duration = Duration::from_secs(20);

/// A core with one scripted mail account, served on a socket in a fresh
/// folder, with its events passed on as a front end does.
struct Served {
    dir: tempfile::TempDir,
    script: Script,
    secrets: Arc<MemorySecrets>,
    settings: Arc<Settings>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Served {
    async fn start() -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let (watcher, script) = ScriptedWatcher::new();
        let mut setup = Setup::new(dir.path().join("state.json"));
        setup.accounts = vec![spec("work", Source::Mail, watcher)];
        let (core, mut events) = Core::start(setup).expect("the core starts");
        let secrets = Arc::new(MemorySecrets::default());
        let config_file = dir.path().join("config.toml");
        let settings = Arc::new(Settings::new(core, config_file, dir.path().join("state.json"), false, secrets.clone(), Notifications::default()));
        let service = Arc::new(Service::new(settings.clone(), NoWindow));
        let listener = Listener::bind(&dir.path().join("run/control.sock")).await.expect("the socket binds");
        let stop = CancellationToken::new();
        let forward = {
            let (service, stop) = (service.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        event = events.recv() => match event {
                            Some(event) => service.publish(&event),
                            None => return,
                        },
                    }
                }
            })
        };
        let serve = tokio::spawn(listener.serve(service, stop.clone()));
        Served { dir, script, secrets, settings, stop, tasks: vec![forward, serve] }
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("run/control.sock")
    }

    async fn client(&self) -> (Client, mpsc::Receiver<Pushed>) {
        Client::connect(&self.socket()).await.expect("the client connects")
    }

    async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.await.expect("the task ends");
        }
        self.settings.stop().await;
    }
}

async fn next_push(pushed: &mut mpsc::Receiver<Pushed>, what: &str, wanted: impl Fn(&Pushed) -> bool) -> Pushed {
    within(PATIENCE, what, async {
        loop {
            let push = pushed.recv().await.expect("the notifier is still there");
            if wanted(&push) {
                return push;
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_client_reads_the_overview_and_a_subscriber_hears_new_items_and_the_badge() {
    let served = Served::start().await;
    let (client, mut pushed) = served.client().await;
    let overview = client.call("get_overview", Value::Null).await.expect("answered");
    assert_eq!(overview["accounts"][0]["id"], "work");
    assert_eq!(overview["badge"]["count"], 0);

    client.call("subscribe", Value::Null).await.expect("subscribed");
    // The first look is a silent baseline; the mail after it is news.
    served.script.publish(update(Vec::new(), 0));
    served.script.publish(update(vec![item(Source::Mail, "work", "m1", "alice")], 1));
    // The state and the event travel apart: either may come first.
    let (mut new, mut badge_of_one) = (None, false);
    while new.is_none() || !badge_of_one {
        let push = next_push(&mut pushed, "the new mail and the badge of 1", |_| true).await;
        match push.event.as_str() {
            "core-event" => new = Some(push.payload),
            "overview-changed" => badge_of_one |= push.payload["badge"]["count"] == 1,
            other => panic!("unexpected push {other}"),
        }
    }
    let new = new.expect("seen");
    assert_eq!(new["kind"], "itemNew");
    assert_eq!(new["key"], "m1");
    assert_eq!(new["sender"], "alice");
    served.stop().await;
}

#[tokio::test]
async fn settings_change_over_the_socket_and_a_typed_secret_reaches_the_keyring_but_never_comes_back() {
    let served = Served::start().await;
    let (client, _pushed) = served.client().await;
    let form = json!({
        "id": "", "name": "Home mail", "source": "mail", "enabled": false, "badge": "count",
        "server": "imap.example.com", "username": "me",
        "mail": { "port": null, "tls": "implicit", "allowPlaintextOnLoopback": false, "folders": ["INBOX"],
                  "auth": "password", "pinnedFingerprint": null, "webmailLink": null }
    });
    let id = client.call("save_account", json!({ "form": form, "secret": "hunter2" })).await.expect("saved");
    assert_eq!(id, "home-mail");
    let stored = served.secrets.get(&vigie::model::AccountId::new("home-mail"), "password").expect("keyring read");
    assert!(stored.is_some(), "the secret was stored");

    let view = client.call("get_settings", Value::Null).await.expect("answered");
    let text = view.to_string();
    assert!(text.contains("Home mail"), "{text}");
    assert!(!text.contains("hunter2"), "no secret in any answer: {text}");
    assert_eq!(view["accounts"][0]["hasSecret"], true);

    // A refused form names its fields, as the window shows them.
    let mut bad = form.clone();
    bad["server"] = json!("");
    match client.call("save_account", json!({ "form": bad })).await {
        Err(CallError::Refused(e)) => {
            assert_eq!(e.code, "fields");
            assert!(e.fields.iter().any(|f| f.field == "server"), "{e:?}");
        }
        other => panic!("expected the form refused, got {other:?}"),
    }
    served.stop().await;
}

#[tokio::test]
async fn a_bad_line_or_an_unknown_command_gets_an_error_and_the_connection_goes_on() {
    let served = Served::start().await;
    let stream = UnixStream::connect(served.socket()).await.expect("connects");
    let (read, mut write) = stream.into_split();
    let mut answers = BufReader::new(read).lines();
    let mut ask = async |line: &str| -> Value {
        write.write_all(format!("{line}\n").as_bytes()).await.expect("written");
        let answer = within(PATIENCE, "an answer", answers.next_line()).await.expect("read").expect("a line");
        serde_json::from_str(&answer).expect("JSON")
    };
    let garbage = ask("this is not json").await;
    assert_eq!(garbage["err"]["code"], "bad-line");
    let unknown = ask(r#"{"id": 1, "cmd": "format_disk"}"#).await;
    assert_eq!(unknown["id"], 1);
    assert_eq!(unknown["err"]["code"], "bad-command");
    let long = format!(r#"{{"id": 2, "cmd": "get_overview", "args": {{"pad": "{}"}}}}"#, "x".repeat(vigie::control::MAX_LINE));
    let refused = ask(&long).await;
    assert_eq!(refused["err"]["code"], "bad-line", "a line over 1 MiB is dropped, not read");
    let fine = ask(r#"{"id": 3, "cmd": "get_overview"}"#).await;
    assert_eq!(fine["id"], 3);
    assert_eq!(fine["ok"]["accounts"][0]["id"], "work");
    served.stop().await;
}

#[tokio::test]
async fn one_notifier_per_socket_and_a_socket_left_by_a_crash_is_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run/control.sock");
    let first = Listener::bind(&path).await.expect("binds");
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "the socket is the user's only");
    assert_eq!(mode(path.parent().expect("folder")), 0o700, "and so is its folder");
    match Listener::bind(&path).await {
        Err(ControlError::AlreadyRunning(p)) => assert_eq!(p, path),
        Err(e) => panic!("expected AlreadyRunning, got {e}"),
        Ok(_) => panic!("a second notifier bound the same socket"),
    }
    // A crash leaves the socket file with nobody behind it.
    drop(first);
    assert!(path.exists());
    Listener::bind(&path).await.expect("the stale socket is replaced");
}

#[tokio::test]
async fn a_client_of_a_notifier_that_stops_learns_it_at_once() {
    let served = Served::start().await;
    let (client, mut pushed) = served.client().await;
    client.call("subscribe", Value::Null).await.expect("subscribed");
    let socket = served.socket();
    served.stop().await;
    assert!(within(PATIENCE, "the push stream to end", pushed.recv()).await.is_none());
    assert!(matches!(client.call("get_overview", Value::Null).await, Err(CallError::Disconnected)));
    assert!(!socket.exists(), "a clean stop removes the socket");
    assert!(matches!(Client::connect(&socket).await, Err(ControlError::NotRunning { .. })));
}

/// `vigie --status` with the environment of `home`.
fn status(home: &Home) -> std::process::Output {
    let path = home.path();
    Process::new(env!("CARGO_BIN_EXE_vigie-headless"))
        .arg("--status")
        .env("HOME", path)
        .env("XDG_CONFIG_HOME", path.join("config"))
        .env("XDG_STATE_HOME", path.join("state"))
        .env("XDG_RUNTIME_DIR", path.join("runtime"))
        .output()
        .expect("runs")
}

/// (`tests/desktop` asks the running tray app.)
#[test]
fn status_with_no_vigie_running_fails_plainly() {
    let home = Home::new();
    let none = status(&home);
    assert_eq!(none.status.code(), Some(1));
    let said = String::from_utf8_lossy(&none.stderr);
    assert!(said.contains("Vigie is not running"), "{said}");
    assert!(none.stdout.is_empty(), "nothing on stdout for a status bar to misread");
}
