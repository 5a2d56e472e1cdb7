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
use vigie::badge::BadgeMode;
use vigie::config::HintRule;
use vigie::leantime::{AuthKind, LeantimeWatcher, TasksSettings};
use vigie::model::{AccountId, Connectivity, Source};
use vigie::scheduler::{ScheduleConfig, Trigger};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::watcher::{Action, ActionError};
use vigie::{AccountSpec, CoreEvent};

use crate::support::fake_leantime::{FakeLeantime, ServerVersion};
use crate::support::{Rig, ScriptedWatcher, account_config, item, spec, update, within};

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
    leantime_account_with(fake, auth, secret, TasksSettings::default(), on_demand())
}

fn leantime_account_with(
    fake: &FakeLeantime,
    auth: AuthKind,
    secret: Option<&str>,
    settings: TasksSettings,
    schedule: ScheduleConfig,
) -> (AccountSpec, Arc<dyn SecretStore>) {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    if let Some(secret) = secret {
        secrets.set(&AccountId::new(ID), auth.secret_name(), &SecretString::from(secret.to_owned())).expect("store");
    }
    let config = AccountConfig { server: Some(fake.base_url()), auth, ..account_config(ID, Source::Tasks) };
    let watcher = LeantimeWatcher::new(AccountId::new(ID), &fake.base_url(), auth, settings, secrets.clone());
    (AccountSpec { config, schedule, watcher: Box::new(watcher) }, secrets)
}

/// A core watching `fake` with its valid token, past its first (baseline) poll.
async fn connected(fake: &FakeLeantime, dir: &tempfile::TempDir) -> Rig {
    let (spec, _) = leantime_account(fake, AuthKind::Token, Some(fake.token()));
    start_synced(spec, dir).await
}

/// Starts a core over `spec` and waits for its first (baseline) poll.
async fn start_synced(spec: AccountSpec, dir: &tempfile::TempDir) -> Rig {
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    within(PATIENCE, "the baseline badge", rig.events_until("the baseline badge", |e| matches!(e, CoreEvent::Badge { .. }))).await;
    rig
}

fn unread(rig: &Rig) -> Option<u32> {
    rig.handle.snapshot().accounts.iter().find(|a| a.id.as_str() == ID).and_then(|a| a.unread.count)
}

/// Waits until the account's count is `count`.
async fn count_becomes(rig: &Rig, count: u32) {
    let mut snapshots = rig.handle.subscribe();
    let reached = snapshots.wait_for(|s| s.accounts.iter().any(|a| a.id.as_str() == ID && a.unread.count == Some(count)));
    within(PATIENCE, &format!("the count to become {count}"), reached).await.expect("the core is running");
}

const GET_UNREAD_COUNT: &str = "leantime.rpc.Notifications.Notifications.getUnreadCount";
const FULL_POLL: [&str; 3] = [
    GET_UNREAD_COUNT,
    "leantime.rpc.Notifications.Notifications.getInbox",
    "leantime.rpc.Tickets.Tickets.getAllOpenUserTickets",
];

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
    assert_eq!(
        snapshot.accounts[0].unread.count,
        Some(2),
        "the two seeded unread notifications; the task open before the first sync is not new"
    );
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
    assert_eq!(unread(&rig), Some(3), "two notifications and the new task");
}

#[tokio::test]
async fn acknowledging_a_new_task_takes_it_out_of_the_count_but_keeps_it_open() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    let id = fake.assign_ticket("Write the release notes");
    refresh(&rig);
    within(PATIENCE, "the new task", rig.next_new_items(ID)).await;
    count_becomes(&rig, 3).await;

    let done = rig.handle.act(&AccountId::new(ID), &format!("t{id}"), Action::MarkRead).await;

    assert_eq!(done, Ok(()));
    count_becomes(&rig, 2).await;
    assert!(fake.ticket_is_open(id), "acknowledging is ours; the task stays open on the server");
}

#[tokio::test]
async fn a_task_shown_as_a_dot_lights_the_dot_and_leaves_the_number_alone() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = TasksSettings { assigned_tasks: BadgeMode::Dot, ..TasksSettings::default() };
    let (spec, _) = leantime_account_with(&fake, AuthKind::Token, Some(fake.token()), settings, on_demand());
    let mut rig = start_synced(spec, &dir).await;
    fake.assign_ticket("Write the release notes");
    refresh(&rig);
    within(PATIENCE, "the new task", rig.next_new_items(ID)).await;
    let account = rig.handle.snapshot().accounts[0].clone();
    assert_eq!((account.unread.count, account.unread.dot), (Some(2), true));
}

#[tokio::test]
async fn ignored_tasks_are_neither_fetched_nor_announced() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = TasksSettings { assigned_tasks: BadgeMode::Ignore, ..TasksSettings::default() };
    let (spec, _) = leantime_account_with(&fake, AuthKind::Token, Some(fake.token()), settings, on_demand());
    let mut rig = start_synced(spec, &dir).await;
    fake.assign_ticket("Write the release notes");
    let id = fake.add_notification("Sam updated the To-Do: 'Write the release notes'", "Sam Lee");
    refresh(&rig);
    let (items, _) = within(PATIENCE, "the notification", rig.next_new_items(ID)).await;
    assert_eq!(items.iter().map(|i| i.key.clone()).collect::<Vec<_>>(), [format!("n{id}")], "the notification only");
    assert!(fake.requests().iter().all(|r| !r.calls.iter().any(|c| c.ends_with("getAllOpenUserTickets"))));
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
        assert_eq!(poll.calls, FULL_POLL, "a refresh the user asks for reads everything");
        assert_eq!(poll.status, 200);
    }
}

#[tokio::test]
async fn a_scheduled_poll_with_nothing_new_asks_only_for_the_count() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let every_quarter_second = ScheduleConfig { interval: Duration::from_millis(250), ..on_demand() };
    let (spec, _) = leantime_account_with(&fake, AuthKind::Token, Some(fake.token()), TasksSettings::default(), every_quarter_second);
    let _rig = start_synced(spec, &dir).await;

    let requests = fake.wait_for_requests(5, PATIENCE).await;

    assert_eq!(requests[1].calls, FULL_POLL, "the first sync reads everything");
    for poll in &requests[2..5] {
        assert_eq!(poll.calls, [GET_UNREAD_COUNT], "then only the count: {requests:#?}");
        assert!(poll.body_bytes < requests[1].body_bytes && poll.response_bytes < 100, "{poll:?}");
    }
}

#[tokio::test]
async fn a_count_that_moved_is_read_in_full_at_once() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let every_half_second = ScheduleConfig { interval: Duration::from_millis(500), ..on_demand() };
    let (spec, _) = leantime_account_with(&fake, AuthKind::Token, Some(fake.token()), TasksSettings::default(), every_half_second);
    let mut rig = start_synced(spec, &dir).await;
    fake.wait_for_requests(3, PATIENCE).await;

    let id = fake.add_notification("Sam mentioned you in a project", "Sam Lee");
    let (items, _) = within(PATIENCE, "the new notification", rig.next_new_items(ID)).await;

    assert_eq!(items[0].key, format!("n{id}"));
    let requests = fake.requests();
    let full = requests.iter().rposition(|r| r.calls == FULL_POLL).expect("a full poll");
    assert_eq!(requests[full - 1].calls, [GET_UNREAD_COUNT], "the count check that saw the change came just before");
}

#[tokio::test]
async fn a_leantime_mail_and_a_manual_refresh_together_make_one_request() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let coalescing = ScheduleConfig { coalesce: Duration::from_millis(400), ..on_demand() };
    let (tasks, _) = leantime_account_with(&fake, AuthKind::Token, Some(fake.token()), TasksSettings::default(), coalescing);
    let (mail, mail_script) = ScriptedWatcher::new();
    let mut rig = Rig::start_with(&dir.path().join("state.json"), vec![spec("mail", Source::Mail, mail), tasks], |setup| {
        setup.hints.push(HintRule { from: Source::Mail, sender_contains: "leantime".to_owned(), refresh: Source::Tasks });
    });
    mail_script.publish(update(vec![], 0));
    let synced = fake.wait_for_requests(2, PATIENCE).await.len();
    assert_eq!(synced, 2, "discovery and the first sync");

    let id = fake.add_notification("Sam assigned you a To-Do", "Sam Lee");
    mail_script.publish(update(vec![item(Source::Mail, "mail", "m-1", "Leantime <notify@pm.example.com>")], 1));
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);

    let events = rig
        .events_until("the hinted notification", |e| matches!(e, CoreEvent::NewItems { account, .. } if account.as_str() == ID))
        .await;
    let Some(CoreEvent::NewItems { items, .. }) = events.last() else { unreachable!() };
    assert_eq!(items[0].key, format!("n{id}"));
    let after = fake.wait_for_requests(synced + 2, Duration::from_millis(1_000)).await;
    assert_eq!(after.len(), synced + 1, "the hint and the refresh became one request: {after:#?}");
}

#[tokio::test]
async fn marking_a_notification_read_reaches_the_server_and_lowers_the_count() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    let id = fake.add_notification("Sam mentioned you in a project", "Sam Lee");
    refresh(&rig);
    within(PATIENCE, "the new notification", rig.next_new_items(ID)).await;

    let done = rig.handle.act(&AccountId::new(ID), &format!("n{id}"), Action::MarkRead).await;

    assert_eq!(done, Ok(()));
    assert!(fake.notification_is_read(id));
    count_becomes(&rig, 2).await;
    let again = rig.handle.act(&AccountId::new(ID), &format!("n{id}"), Action::MarkRead).await;
    assert_eq!(again, Ok(()), "Leantime's `false` for an already read notification is not a failure");
}

#[tokio::test]
async fn before_3_9_a_notification_is_marked_read_the_old_way() {
    let fake = FakeLeantime::start(ServerVersion::V3_8).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = leantime_account(&fake, AuthKind::ApiKey, Some(fake.api_key()));
    let rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    fake.wait_for_requests(2, PATIENCE).await;

    let done = rig.handle.act(&AccountId::new(ID), "n1287", Action::MarkRead).await;

    assert_eq!(done, Ok(()));
    assert!(fake.notification_is_read(1287));
    let last = fake.requests().pop().expect("requests");
    assert_eq!(last.calls, ["leantime.rpc.Notifications.Notifications.markNotificationRead"]);
}

#[tokio::test]
async fn a_task_can_be_marked_done_from_its_toast() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    let id = fake.assign_ticket("Write the release notes");
    refresh(&rig);
    within(PATIENCE, "the new task", rig.next_new_items(ID)).await;

    let done = rig.handle.act(&AccountId::new(ID), &format!("t{id}"), Action::MarkDone).await;

    assert_eq!(done, Ok(()));
    assert!(!fake.ticket_is_open(id));
    count_becomes(&rig, 2).await;
}

#[tokio::test]
async fn a_server_that_cannot_mark_tasks_done_says_so_and_changes_nothing() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = leantime_account(&fake, AuthKind::ApiKey, Some(fake.api_key()));
    let rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    fake.wait_for_requests(2, PATIENCE).await;

    let done = rig.handle.act(&AccountId::new(ID), "t412", Action::MarkDone).await;

    let Err(ActionError::Unsupported(message)) = done else { panic!("expected unsupported, got {done:?}") };
    assert!(message.contains("Leantime 3.9.0") && message.contains("markTicketDone"), "{message}");
    assert!(fake.ticket_is_open(412));
}

#[tokio::test]
async fn a_missing_permission_to_mark_done_is_named() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    fake.deny_permission("markTicketDone");
    let dir = tempfile::tempdir().expect("tempdir");
    let rig = connected(&fake, &dir).await;

    let done = rig.handle.act(&AccountId::new(ID), "t412", Action::MarkDone).await;

    let Err(ActionError::Failed(message)) = done else { panic!("expected a failure, got {done:?}") };
    assert!(message.starts_with("permission missing") && message.contains("mark tasks done"), "{message}");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_exactly_as_the_server_asks() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    fake.set_rate_limit(1, 30);
    refresh(&rig);
    let state = connectivity(&mut rig, "rate-limited", |c| matches!(c, Connectivity::RateLimited { .. })).await;
    let Connectivity::RateLimited { until } = state else { unreachable!() };
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
    let state = connectivity(&mut rig, "needs attention", |c| matches!(c, Connectivity::NeedsAttention { .. })).await;
    assert!(matches!(&state, Connectivity::NeedsAttention { reason } if reason.contains("not a Leantime API")), "{state:?}");
    // Nothing is retried on its own; the user's refresh is.
    let seen = fake.requests().len();
    rig.handle.refresh(&AccountId::new(ID), Trigger::Hint);
    assert_eq!(fake.wait_for_requests(seen + 1, Duration::from_millis(800)).await.len(), seen);
    fake.respond_with_html(false);
    refresh(&rig);
    connectivity(&mut rig, "polling again", |c| *c == Connectivity::Polling).await;
}

#[tokio::test]
async fn a_failing_proxy_and_each_json_rpc_error_show_as_a_state_and_the_poller_recovers_without_repeating_itself() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    let id = fake.add_notification("Sam mentioned you in a project", "Sam Lee");
    refresh(&rig);
    within(PATIENCE, "the new notification", rig.next_new_items(ID)).await;

    type Break = Box<dyn Fn(&FakeLeantime)>;
    let failures: [(&str, Break, &str); 6] = [
        ("HTTP 502 from a proxy", Box::new(|f| f.fail_with_status(Some(502))), "HTTP 502"),
        ("-32700", Box::new(|f| f.refuse_method("getInbox", -32700)), "could not read the request"),
        ("-32600", Box::new(|f| f.refuse_method("getInbox", -32600)), "could not read the request"),
        ("-32602", Box::new(|f| f.refuse_method("getInbox", -32602)), "refused the parameters"),
        ("-32000", Box::new(|f| f.refuse_method("getInbox", -32000)), "internal error"),
        ("-32603", Box::new(|f| f.refuse_method("getInbox", -32603)), "internal error"),
    ];
    for (what, break_it, says) in failures {
        break_it(&fake);
        refresh(&rig);
        let state = connectivity(&mut rig, what, |c| matches!(c, Connectivity::BackingOff { .. })).await;
        assert!(matches!(&state, Connectivity::BackingOff { reason, .. } if reason.contains(says)), "{what}: {state:?}");
        fake.fail_with_status(None);
        fake.accept_all_methods();
        refresh(&rig);
        let events = within(PATIENCE, "back to polling", rig.events_until(what, |e| matches!(e, CoreEvent::Connectivity { state: Connectivity::Polling, .. }))).await;
        assert!(!events.iter().any(|e| matches!(e, CoreEvent::NewItems { .. })), "{what}: nothing announced twice: {events:?}");
    }
    assert_eq!(rig.handle.snapshot().accounts[0].unread.count, Some(3), "n{id} still counted, nothing lost");
}

/// Starts a core on `fake` with a valid token and returns the reason of the
/// needs-attention state it ends up in.
async fn needs_attention_at_start(fake: &FakeLeantime) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = leantime_account(fake, AuthKind::Token, Some(fake.token()));
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let state = connectivity(&mut rig, "needs attention", |c| matches!(c, Connectivity::NeedsAttention { .. })).await;
    let Connectivity::NeedsAttention { reason } = state else { unreachable!() };
    reason
}

#[tokio::test]
async fn a_server_without_a_method_it_needs_is_too_old() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    fake.refuse_method("getAllOpenUserTickets", -32601);
    let reason = needs_attention_at_start(&fake).await;
    assert!(reason.starts_with("server too old") && reason.contains("getAllOpenUserTickets"), "{reason}");
}

#[tokio::test]
async fn a_permission_the_token_lacks_is_named_in_the_account_state() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    fake.deny_permission("getAllOpenUserTickets");
    let reason = needs_attention_at_start(&fake).await;
    assert!(reason.starts_with("permission missing") && reason.contains("getAllOpenUserTickets"), "{reason}");
}

#[tokio::test]
async fn an_api_key_account_carries_a_notice_that_it_sees_its_own_notifications() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spec, _) = leantime_account(&fake, AuthKind::ApiKey, Some(fake.api_key()));
    let rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let mut snapshots = rig.handle.subscribe();
    let noticed = snapshots.wait_for(|s| s.accounts.iter().any(|a| a.notice.is_some()));
    let snapshot = within(PATIENCE, "the notice", noticed).await.expect("running").clone();
    let notice = snapshot.accounts[0].notice.clone().unwrap_or_default();
    assert!(notice.contains("API key") && notice.contains("personal access token"), "{notice}");
}

#[tokio::test]
async fn a_personal_token_account_carries_no_notice() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rig = connected(&fake, &dir).await;
    assert_eq!(rig.handle.snapshot().accounts[0].notice, None);
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

#[tokio::test]
async fn a_plain_http_address_on_another_machine_is_refused_before_the_secret_is_sent() {
    let server = "http://pm.example.org";
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets.set(&AccountId::new(ID), "token", &SecretString::from("a-token")).expect("store");
    let config = AccountConfig { server: Some(server.to_owned()), ..account_config(ID, Source::Tasks) };
    let watcher = LeantimeWatcher::new(AccountId::new(ID), server, AuthKind::Token, TasksSettings::default(), secrets);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = AccountSpec { config, schedule: on_demand(), watcher: Box::new(watcher) };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let state = connectivity(&mut rig, "needs attention", |c| matches!(c, Connectivity::NeedsAttention { .. })).await;
    let Connectivity::NeedsAttention { reason } = state else { unreachable!() };
    assert!(reason.contains("unencrypted") && reason.contains("https://"), "{reason}");
}

#[tokio::test]
async fn more_notifications_than_one_page_arriving_while_closed_are_all_announced_once() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;
    rig.stop().await;
    drop(rig);

    // Found by the fault scenarios: 60 while closed, and the 10 beyond the
    // first inbox page (50) were never listed nor counted.
    let wanted: Vec<String> = (0..120).map(|i| format!("n{}", fake.add_notification(&format!("Update {i}"), "Sam Lee"))).collect();
    let (spec, _) = leantime_account(&fake, AuthKind::Token, Some(fake.token()));
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let mut announced: Vec<String> = Vec::new();
    while announced.len() < wanted.len() {
        let (items, _) = within(PATIENCE, "the notifications from while closed", rig.next_new_items(ID)).await;
        announced.extend(items.into_iter().map(|i| i.key));
    }
    let mut sorted = announced.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), announced.len(), "each once");
    let mut wanted = wanted;
    wanted.sort();
    assert_eq!(sorted, wanted);
    count_becomes(&rig, 122).await;
}

#[tokio::test]
async fn a_burst_of_600_new_notifications_at_once_is_announced_each_exactly_once() {
    let fake = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = connected(&fake, &dir).await;

    // Far more than one inbox page (50) between two polls: a project
    // import, or a bulk edit that notifies everyone.
    let wanted: Vec<String> = (0..600).map(|i| format!("n{}", fake.add_notification(&format!("Imported task {i}"), "Sam Lee"))).collect();
    refresh(&rig);
    let mut announced: Vec<String> = Vec::new();
    while announced.len() < wanted.len() {
        let (items, _) = within(PATIENCE, &format!("the burst ({} of {} so far)", announced.len(), wanted.len()), rig.next_new_items(ID)).await;
        announced.extend(items.into_iter().map(|i| i.key));
    }
    let mut sorted = announced.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), announced.len(), "each once");
    let mut wanted = wanted;
    wanted.sort();
    assert_eq!(sorted, wanted);
    count_becomes(&rig, 602).await;
}
