//! The Leantime watcher against the fake Leantime server, through the real
//! core: what one poll asks, what it announces, and how each failure shows.
//!
//! These run on the real clock (the fake is a real HTTP server on loopback,
//! and a paused clock would fire the client's timeouts while it waits for
//! the socket); polls are driven by "Refresh now" triggers, so nothing
//! waits for an interval.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use vigie::config::AccountConfig;
use vigie::leantime::{AuthKind, LeantimeWatcher};
use vigie::model::{AccountId, Connectivity, Source};
use vigie::scheduler::{ScheduleConfig, Trigger};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::{AccountSpec, CoreEvent};

use crate::support::fake_leantime::{FakeLeantime, ServerVersion};
use crate::support::{Rig, account_config, within};

const ID: &str = "pm";
const PATIENCE: Duration = Duration::from_secs(20);

/// Polls only when asked, with no gap or coalescing delay to wait out.
fn on_demand() -> ScheduleConfig {
    ScheduleConfig {
        coalesce: Duration::from_millis(20),
        min_gap: Duration::ZERO,
        backoff: (Duration::from_millis(200), Duration::from_millis(400), Duration::from_secs(2)),
        ..ScheduleConfig::polling(Duration::from_secs(3_600))
    }
}

fn leantime_account(fake: &FakeLeantime, auth: AuthKind, secret: Option<&str>) -> (AccountSpec, Arc<dyn SecretStore>) {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    if let Some(secret) = secret {
        secrets.set(&AccountId::new(ID), auth.secret_name(), &SecretString::from(secret.to_owned())).expect("store");
    }
    let config = AccountConfig { server: Some(fake.base_url()), auth, ..account_config(ID, Source::Tasks) };
    let watcher = LeantimeWatcher::new(AccountId::new(ID), &fake.base_url(), auth, secrets.clone());
    (AccountSpec { config, schedule: on_demand(), watcher: Box::new(watcher) }, secrets)
}

/// A core watching `fake` with its valid token, past its first (baseline) poll.
async fn connected(fake: &FakeLeantime, dir: &tempfile::TempDir) -> Rig {
    let (spec, _) = leantime_account(fake, AuthKind::Token, Some(fake.token()));
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    within(PATIENCE, "the baseline badge", rig.events_until("the baseline badge", |e| matches!(e, CoreEvent::Badge { .. }))).await;
    rig
}

fn refresh(rig: &Rig) {
    assert!(rig.handle.refresh(&AccountId::new(ID), Trigger::Manual));
}

async fn connectivity(rig: &mut Rig, what: &str, wanted: impl Fn(&Connectivity) -> bool) -> Connectivity {
    let events = within(PATIENCE, what, rig.events_until(what, |e| matches!(e, CoreEvent::Connectivity { state, .. } if wanted(state)))).await;
    match events.last() {
        Some(CoreEvent::Connectivity { state, .. }) => state.clone(),
        other => panic!("expected a connectivity event, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_poll_counts_the_unread_notifications_and_announces_nothing() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rig = connected(&fake, &dir).await;
    let snapshot = rig.handle.snapshot();
    assert_eq!(snapshot.accounts[0].unread.count, Some(2), "the two seeded unread notifications");
    assert_eq!(snapshot.accounts[0].connectivity, Connectivity::Polling);
}

#[tokio::test]
async fn a_new_notification_is_announced_once_with_its_author_text_and_link() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;

    let id = fake.add_notification("Sam mentioned you in <i>Release plan</i>", "Sam Lee");
    refresh(&rig);
    let (items, silent) = within(PATIENCE, "the new notification", rig.next_new_items(ID)).await;
    assert!(!silent);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].key, format!("n{id}"));
    assert_eq!(items[0].title, "Sam mentioned you in Release plan", "HTML is stripped");
    assert_eq!(items[0].sender, "Sam Lee");
    assert!(items[0].link.as_deref().is_some_and(|l| l.starts_with("http")), "{:?}", items[0].link);
    assert_eq!(rig.handle.snapshot().accounts[0].unread.count, Some(3));

    // The next poll sees the same notification again: nothing new.
    refresh(&rig);
    let before = fake.requests().len();
    fake.wait_for_requests(before + 1, PATIENCE).await;
    assert!(rig.events.try_recv().map_or(true, |e| !matches!(e, CoreEvent::NewItems { .. })));
}

#[tokio::test]
async fn a_newly_assigned_task_is_announced() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    let id = fake.assign_ticket("Write the release notes");
    refresh(&rig);
    let (items, _) = within(PATIENCE, "the new task", rig.next_new_items(ID)).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].key, format!("t{id}"));
    assert_eq!(items[0].title, "Write the release notes");
    assert!(items[0].link.as_deref().is_some_and(|l| l.ends_with(&format!("showTicket/{id}"))));
}

#[tokio::test]
async fn each_poll_is_one_http_request_carrying_the_whole_batch() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rig = connected(&fake, &dir).await;
    for n in 0..3 {
        refresh(&rig);
        fake.wait_for_requests(3 + n, PATIENCE).await;
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 5, "discovery, the first poll, three refreshes: {requests:#?}");
    assert_eq!(
        requests[0].calls,
        ["leantime.rpc.Api.Config.getSystemInfo", "leantime.rpc.Users.Users.getUser"],
        "version and identity are asked once, together"
    );
    for poll in &requests[1..] {
        assert_eq!(
            poll.calls,
            [
                "leantime.rpc.Notifications.Notifications.getUnreadCount",
                "leantime.rpc.Notifications.Notifications.getInbox",
                "leantime.rpc.Tickets.Tickets.getAllOpenUserTickets",
            ]
        );
        assert_eq!(poll.status, 200);
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_exactly_as_the_server_asks() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    fake.set_rate_limit(1, 30);
    refresh(&rig);
    let state = connectivity(&mut rig, "backing off", |c| matches!(c, Connectivity::BackingOff { .. })).await;
    let Connectivity::BackingOff { reason, until } = state else { unreachable!() };
    assert!(reason.contains("30 s"), "{reason}");
    let ahead = until.duration_since(jiff::Timestamp::now()).as_secs_f64();
    assert!((25.0..=31.0).contains(&ahead), "next attempt in {ahead} s, the server asked for 30");
    // The user's impatience does not override the server.
    let seen = fake.requests().len();
    refresh(&rig);
    let more = fake.wait_for_requests(seen + 1, Duration::from_millis(800)).await;
    assert_eq!(more.len(), seen, "no request before the server's Retry-After");
}

#[tokio::test]
async fn a_revoked_token_shows_sign_in_failed_and_stops_asking() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    fake.revoke_token();
    refresh(&rig);
    let state = connectivity(&mut rig, "auth failed", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
    assert!(matches!(&state, Connectivity::AuthFailed { reason } if reason.contains("401")), "{state:?}");
    // Hints and wake-ups do not resend a refused token.
    let seen = fake.requests().len();
    rig.handle.refresh(&AccountId::new(ID), Trigger::Hint);
    rig.handle.refresh(&AccountId::new(ID), Trigger::Wake);
    let more = fake.wait_for_requests(seen + 1, Duration::from_millis(800)).await;
    assert_eq!(more.len(), seen, "no storm of refused requests");
}

#[tokio::test]
async fn a_web_page_instead_of_the_api_says_the_address_is_wrong() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    fake.respond_with_html(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = leantime_account(&fake, AuthKind::Token, Some(fake.token()));
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let state = connectivity(&mut rig, "backing off", |c| matches!(c, Connectivity::BackingOff { .. })).await;
    assert!(matches!(&state, Connectivity::BackingOff { reason, .. } if reason.contains("not a Leantime API")), "{state:?}");
}

#[tokio::test]
async fn a_missing_token_names_the_command_that_stores_it() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = leantime_account(&fake, AuthKind::Token, None);
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let state = connectivity(&mut rig, "auth failed", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
    assert!(matches!(&state, Connectivity::AuthFailed { reason } if reason.contains("--set-secret pm token")), "{state:?}");
    assert!(fake.requests().is_empty(), "nothing is sent without a credential");
}

#[tokio::test]
async fn servers_before_3_9_are_read_through_get_all_notifications() {
    let fake = FakeLeantime::start(ServerVersion::V3_8).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = leantime_account(&fake, AuthKind::ApiKey, Some(fake.api_key()));
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    // The key's pseudo-user has nothing unread, so the badge does not move:
    // follow the requests instead.
    fake.wait_for_requests(2, PATIENCE).await;
    refresh(&rig);
    let requests = fake.wait_for_requests(3, PATIENCE).await;
    assert_eq!(requests.len(), 3, "discovery and two polls: {requests:#?}");
    for poll in &requests[1..] {
        assert_eq!(
            poll.calls,
            ["leantime.rpc.Notifications.Notifications.getAllNotifications", "leantime.rpc.Tickets.Tickets.getAllOpenUserTickets"]
        );
        assert_eq!(poll.status, 200);
    }
    while let Ok(event) = rig.events.try_recv() {
        assert!(
            !matches!(event, CoreEvent::Connectivity { state: Connectivity::BackingOff { .. } | Connectivity::AuthFailed { .. }, .. }),
            "the old path works without errors: {event:?}"
        );
    }
}
