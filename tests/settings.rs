//! The settings service end to end: a form saved from the settings window
//! reaches the config file, the keyring and the running core; a removal
//! takes the account's secrets and state with it; a refused form changes
//! nothing. Against a real core and the fake Leantime (real HTTP on
//! loopback, so the real clock).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use vigie::badge::BadgeMode;
use vigie::config::edit::{AccountForm, HintForm, NotificationsForm, TasksAuth, TasksForm};
use vigie::config::{Config, Notifications};
use vigie::model::{AccountId, Connectivity, Source};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::settings::Settings;
use vigie::{Core, Setup, Snapshot};

use crate::support::fake_leantime::{FakeLeantime, ServerVersion};
use crate::support::within;

const PATIENCE: Duration = Duration::from_secs(20);

struct Desk {
    _dir: tempfile::TempDir,
    config_file: std::path::PathBuf,
    state_file: std::path::PathBuf,
    secrets: Arc<MemorySecrets>,
    settings: Settings,
}

/// A core started from an empty config, and the settings service over it.
fn desk() -> Desk {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_file = dir.path().join("config.toml");
    let state_file = dir.path().join("state.json");
    let (core, _events) = Core::start(Setup::new(state_file.clone())).expect("the core starts");
    let secrets = Arc::new(MemorySecrets::default());
    let settings = Settings::new(core, config_file.clone(), state_file.clone(), false, secrets.clone(), Notifications::default());
    Desk { _dir: dir, config_file, state_file, secrets, settings }
}

fn tasks_form(fake: &FakeLeantime) -> AccountForm {
    AccountForm {
        id: String::new(),
        name: "Projects".to_owned(),
        source: Source::Tasks,
        enabled: true,
        badge: BadgeMode::Count,
        server: fake.base_url(),
        username: String::new(),
        poll_interval_secs: Some(60),
        mail: None,
        chat: None,
        tasks: Some(TasksForm { auth: TasksAuth::Token, assigned_tasks: BadgeMode::Count, requests_per_minute: None }),
    }
}

async fn snapshot_where(desk: &Desk, what: &str, wanted: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let mut snapshots = desk.settings.handle().subscribe();
    within(PATIENCE, what, snapshots.wait_for(|s| wanted(s))).await.map(|s| s.clone()).expect("the core runs")
}

fn state_of(snapshot: &Snapshot, id: &str) -> Option<Connectivity> {
    snapshot.accounts.iter().find(|a| a.id.as_str() == id).map(|a| a.connectivity.clone())
}

#[tokio::test]
async fn a_new_account_saved_from_the_window_is_written_its_secret_kept_and_it_goes_live() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let desk = desk();
    let id = desk
        .settings
        .save_account(tasks_form(&fake), Some(SecretString::from(fake.token().to_owned())))
        .await
        .expect("saved");
    assert_eq!(id, "projects");

    let config = Config::load(&desk.config_file).expect("a valid config file");
    assert_eq!(config.accounts.len(), 1);
    assert_eq!(config.accounts[0].server.as_deref(), Some(fake.base_url().as_str()));
    let on_disk = std::fs::read_to_string(&desk.config_file).expect("read");
    assert!(!on_disk.contains(fake.token()), "no secret in the config file: {on_disk}");
    let stored = desk.secrets.get(&AccountId::new("projects"), "token").expect("get");
    assert!(stored.is_some(), "the token is in the keyring");

    snapshot_where(&desk, "the new account polling", |s| state_of(s, "projects") == Some(Connectivity::Polling)).await;
    let view = desk.settings.view().await.expect("the view");
    assert!(view.accounts[0].has_secret);
    assert_eq!(view.accounts[0].form.name, "Projects");
    desk.settings.stop().await;
}

#[tokio::test]
async fn removing_an_account_deletes_its_keyring_entries_and_saved_state() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let desk = desk();
    desk.settings.save_account(tasks_form(&fake), Some(SecretString::from(fake.token().to_owned()))).await.expect("saved");
    snapshot_where(&desk, "the account's first count", |s| s.accounts.iter().any(|a| a.unread.count.is_some())).await;
    let state = std::fs::read_to_string(&desk.state_file).expect("state saved after the first poll");
    assert!(state.contains("\"projects\""), "{state}");

    desk.settings.remove_account("projects").await.expect("removed");

    // With no account left, the demo comes back, as on a first run.
    let snapshot = snapshot_where(&desk, "the account gone", |s| state_of(s, "projects").is_none()).await;
    assert!(snapshot.demo);
    assert!(desk.secrets.get(&AccountId::new("projects"), "token").expect("get").is_none());
    let state = std::fs::read_to_string(&desk.state_file).expect("state file");
    assert!(!state.contains("\"projects\""), "the account's state is gone: {state}");
    assert!(Config::load(&desk.config_file).expect("valid").accounts.is_empty());
    desk.settings.stop().await;
}

#[tokio::test]
async fn a_refused_form_stores_no_secret_and_leaves_the_file_as_it_was() {
    let desk = desk();
    std::fs::write(&desk.config_file, "# mine\n").expect("write");
    let mut form = tasks_form(&FakeLeantime::start(ServerVersion::V3_9_6).await);
    form.server = "pm.example.com".to_owned();
    form.name = String::new();
    let error = desk.settings.save_account(form, Some(SecretString::from("s3cret"))).await.expect_err("refused");
    let fields: Vec<&str> = error.fields().iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["name", "server"]);
    assert!(!error.to_string().contains("s3cret"));
    assert_eq!(std::fs::read_to_string(&desk.config_file).expect("read"), "# mine\n");
    assert!(desk.secrets.get(&AccountId::new("tasks"), "token").expect("get").is_none());
    desk.settings.stop().await;
}

#[tokio::test]
async fn disabling_an_account_stops_watching_it_and_enabling_brings_it_back() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let desk = desk();
    desk.settings.save_account(tasks_form(&fake), Some(SecretString::from(fake.token().to_owned()))).await.expect("saved");
    snapshot_where(&desk, "the account polling", |s| state_of(s, "projects") == Some(Connectivity::Polling)).await;

    desk.settings.set_enabled("projects", false).await.expect("disabled");
    snapshot_where(&desk, "the account disabled", |s| matches!(state_of(s, "projects"), Some(Connectivity::Disabled { .. }))).await;
    desk.settings.set_enabled("projects", true).await.expect("enabled");
    snapshot_where(&desk, "the account polling again", |s| state_of(s, "projects") == Some(Connectivity::Polling)).await;
    desk.settings.stop().await;
}

#[tokio::test]
async fn notification_options_apply_at_once_and_hints_are_saved() {
    let desk = desk();
    let mut options = desk.settings.notifications();
    desk.settings
        .save_notifications(&NotificationsForm { previews: false, burst_threshold: 6, sound: false, quiet_hours: None })
        .await
        .expect("saved");
    assert!(options.has_changed().expect("open"));
    let now = options.borrow_and_update().clone();
    assert_eq!((now.previews, now.burst_threshold, now.sound), (false, 6, false));
    let hint = HintForm { from: Source::Mail, sender_contains: "leantime".to_owned(), refresh: Source::Tasks };
    desk.settings.save_hints(std::slice::from_ref(&hint)).await.expect("saved");
    assert_eq!(desk.settings.view().await.expect("view").hints, [hint]);
    desk.settings.stop().await;
}
