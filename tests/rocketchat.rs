//! The Rocket.Chat watcher against the fake Rocket.Chat server, through the
//! real core: which messages toast, what the badge says, and how drops, dead
//! links, rate limits, expired tokens and refused streams show.
//!
//! These run on the real clock (real sockets on loopback; see
//! `leantime_poller`). "Nothing was announced" is shown with a fence: after
//! the message that must stay silent, a direct message is posted, and the
//! next announcement must hold only that one.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use vigie::config::AccountConfig;
use vigie::event::Snapshot;
use vigie::model::{AccountId, Connectivity, Item, Source};
use vigie::rocketchat::link::Timeouts;
use vigie::rocketchat::{ChatSettings, OpenIn, RocketChatWatcher, RoomPreference, TOKEN_SECRET};
use vigie::scheduler::{ScheduleConfig, Trigger};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::watcher::Action;
use vigie::{AccountSpec, CoreEvent};

use crate::support::fake_rocketchat::{
    ALICE, BIG, BOB, CAROL, DM_BOB, FakeRocketChat, GENERAL, Generation, HIDDEN, MENTIONS_ONLY, MUTED, NOTHING, TOKEN,
};
use crate::support::{Rig, account_config, within};

const ID: &str = "chat";
const PATIENCE: Duration = Duration::from_secs(20);

/// Resyncs only when asked; short backoffs so reconnects are quick.
fn on_demand() -> ScheduleConfig {
    ScheduleConfig {
        coalesce: Duration::from_millis(20),
        min_gap: Duration::ZERO,
        backoff: (Duration::from_millis(100), Duration::from_millis(200), Duration::from_secs(1)),
        ..ScheduleConfig::polling(Duration::from_secs(3_600))
    }
}

/// Heartbeat timeouts that a slow machine never trips by accident.
fn patient() -> Timeouts {
    Timeouts { connect: Duration::from_secs(5), ping_after: Duration::from_secs(5), dead_after: Duration::from_secs(15) }
}

/// Heartbeat timeouts that a test can wait out.
fn quick() -> Timeouts {
    Timeouts { connect: Duration::from_secs(5), ping_after: Duration::from_millis(300), dead_after: Duration::from_millis(900) }
}

fn chat_account(fake: &FakeRocketChat, settings: ChatSettings, token: Option<&str>) -> AccountSpec {
    chat_account_with(fake, settings, token, patient())
}

fn chat_account_with(fake: &FakeRocketChat, settings: ChatSettings, token: Option<&str>, timeouts: Timeouts) -> AccountSpec {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    if let Some(token) = token {
        secrets.set(&AccountId::new(ID), TOKEN_SECRET, &SecretString::from(token.to_owned())).expect("store");
    }
    let config = AccountConfig { server: Some(fake.base_url()), chat: settings.clone(), ..account_config(ID, Source::Chat) };
    let watcher = RocketChatWatcher::new(AccountId::new(ID), &fake.base_url(), settings, secrets).with_timeouts(timeouts);
    AccountSpec { config, schedule: on_demand(), watcher: Box::new(watcher) }
}

fn settings() -> ChatSettings {
    ChatSettings { user_id: Some(ALICE.to_owned()), ..ChatSettings::default() }
}

async fn connectivity(rig: &mut Rig, what: &str, wanted: impl Fn(&Connectivity) -> bool) -> Connectivity {
    let events = within(PATIENCE, what, rig.events_until(what, |e| matches!(e, CoreEvent::Connectivity { state, .. } if wanted(state)))).await;
    match events.last() {
        Some(CoreEvent::Connectivity { state, .. }) => state.clone(),
        other => panic!("expected a connectivity event, got {other:?}"),
    }
}

/// A core watching `fake` with alice's token, live and past its baseline.
async fn live(fake: &FakeRocketChat, dir: &tempfile::TempDir, settings: ChatSettings) -> Rig {
    live_with(fake, dir, settings, patient()).await
}

/// The same with other heartbeat timeouts.
async fn live_with(fake: &FakeRocketChat, dir: &tempfile::TempDir, settings: ChatSettings, timeouts: Timeouts) -> Rig {
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![chat_account_with(fake, settings, Some(TOKEN), timeouts)]);
    connectivity(&mut rig, "live push", |c| *c == Connectivity::LivePush).await;
    rig
}

/// The next announced items.
async fn announced(rig: &mut Rig) -> Vec<Item> {
    let (items, silent) = within(PATIENCE, "new items", rig.next_new_items(ID)).await;
    assert!(!silent);
    items
}

/// Waits until the snapshot of the account satisfies `wanted`.
async fn snapshot_until(rig: &Rig, what: &str, wanted: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let mut updates = rig.handle.subscribe();
    let snapshot = within(PATIENCE, what, updates.wait_for(|s| wanted(s))).await.expect("the core is running");
    snapshot.clone()
}

fn unread(snapshot: &Snapshot) -> (Option<u32>, bool) {
    let account = &snapshot.accounts[0];
    (account.unread.count, account.unread.dot)
}

/// Posts a DM from bob and returns the next announcement, which must be
/// just that DM: whatever was posted before it was not announced.
async fn fence(fake: &FakeRocketChat, rig: &mut Rig) {
    let id = fake.post(DM_BOB, BOB, "fence", &[]);
    let items = announced(rig).await;
    assert_eq!(items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), [id.as_str()], "only the fence is announced: {items:#?}");
}

#[tokio::test]
async fn a_direct_message_toasts_with_its_room_sender_and_a_link_to_it() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let id = fake.post(DM_BOB, BOB, "lunch at 12?", &[]);
    let items = announced(&mut rig).await;
    assert_eq!(items.len(), 1, "{items:#?}");
    let item = &items[0];
    assert_eq!(item.key, id, "the key is the message _id");
    assert_eq!(item.title, "Bob Builder");
    assert_eq!(item.sender, "Bob Builder");
    assert_eq!(item.preview, "lunch at 12?");
    assert_eq!(item.link.as_deref(), Some(format!("{}/direct/{DM_BOB}?msg={id}", fake.base_url()).as_str()));
    let snapshot = snapshot_until(&rig, "the DM counted", |s| unread(s).0 == Some(1)).await;
    assert_eq!(unread(&snapshot), (Some(1), false));
}

#[tokio::test]
async fn a_mention_in_a_channel_toasts() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let id = fake.post(BIG, BOB, "@alice can you review the deploy?", &[ALICE]);
    let items = announced(&mut rig).await;
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0].key, id);
    assert_eq!(items[0].title, "#announcements");
    assert_eq!(items[0].preview, "@alice can you review the deploy?");
    assert!(items[0].link.as_deref().is_some_and(|l| l.ends_with(&format!("/channel/announcements?msg={id}"))));
    snapshot_until(&rig, "the mention counted", |s| unread(s) == (Some(1), false)).await;
}

#[tokio::test]
async fn a_plain_message_in_a_small_channel_toasts_under_the_default_preference() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let id = fake.post(GENERAL, BOB, "standup in 5", &[]);
    let items = announced(&mut rig).await;
    assert_eq!(items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert_eq!(items[0].title, "#general");
    // Rooms count only mentions: a plain message is the dot.
    snapshot_until(&rig, "the dot", |s| unread(s) == (Some(0), true)).await;
}

#[tokio::test]
async fn a_plain_message_in_a_mentions_only_room_only_sets_the_dot() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.post(MENTIONS_ONLY, BOB, "new mockups are up", &[]);
    snapshot_until(&rig, "the dot", |s| unread(s) == (Some(0), true)).await;
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn a_plain_message_in_a_room_above_the_member_limit_only_sets_the_dot() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.post(BIG, BOB, "office closed on friday", &[]);
    snapshot_until(&rig, "the dot", |s| unread(s) == (Some(0), true)).await;
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn a_muted_room_stays_silent_even_for_mentions() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.post(MUTED, BOB, "@alice disk full on db-2", &[ALICE]);
    // Muting silences toasts, not the counter.
    snapshot_until(&rig, "the muted mention counted", |s| unread(s) == (Some(1), false)).await;
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn a_room_set_to_nothing_stays_silent() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.post(NOTHING, BOB, "@alice look at this cat", &[ALICE]);
    snapshot_until(&rig, "the mention counted", |s| unread(s) == (Some(1), false)).await;
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn a_room_hidden_from_the_badge_stays_silent_and_uncounted() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.post(HIDDEN, BOB, "@alice cake in the kitchen", &[ALICE]);
    fence(&fake, &mut rig).await;
    assert_eq!(fake.unread(HIDDEN), 1, "the server counted it");
    // Only the fence DM counts.
    snapshot_until(&rig, "the DM counted", |s| unread(s) == (Some(1), false)).await;
}

#[tokio::test]
async fn an_ignored_user_stays_silent() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.post(GENERAL, CAROL, "@alice buy my course", &[ALICE]);
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn the_users_own_message_never_toasts() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.post(GENERAL, ALICE, "hello everyone", &[]);
    fake.post(DM_BOB, ALICE, "sure, see you at 12", &[]);
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn reading_a_room_elsewhere_lowers_the_badge_and_withdraws_only_its_messages() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let dm = fake.post(DM_BOB, BOB, "ping", &[]);
    announced(&mut rig).await;
    let mention = fake.post(GENERAL, BOB, "@alice ping", &[ALICE]);
    announced(&mut rig).await;
    snapshot_until(&rig, "two unread", |s| unread(s) == (Some(2), false)).await;

    assert!(fake.read_elsewhere(DM_BOB));
    let events = within(PATIENCE, "the DM read", rig.events_until("the DM read", |e| matches!(e, CoreEvent::ItemRead { .. }))).await;
    let read: Vec<&str> = events.iter().filter_map(|e| if let CoreEvent::ItemRead { key, .. } = e { Some(key.as_str()) } else { None }).collect();
    assert_eq!(read, [dm.as_str()], "only the DM is withdrawn, not {mention}");
    snapshot_until(&rig, "one unread", |s| unread(s) == (Some(1), false)).await;
}

#[tokio::test]
async fn messages_sent_while_the_socket_was_down_are_each_announced_once_after_the_resync() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    // Something seen live before the drop, so the room already has `alert`
    // (a second plain message then changes nothing in the subscription).
    let before = fake.post(GENERAL, BOB, "morning", &[]);
    assert_eq!(announced(&mut rig).await[0].key, before);

    fake.go_silent();
    let sent = [
        fake.post(GENERAL, BOB, "anyone?", &[]),
        fake.post(DM_BOB, BOB, "are you there?", &[]),
        fake.post(BIG, BOB, "@alice please confirm", &[ALICE]),
    ];
    fake.drop_sockets();
    connectivity(&mut rig, "the drop noticed", |c| matches!(c, Connectivity::BackingOff { .. })).await;
    // The resync is announced before the link is reported live again.
    let events = within(
        PATIENCE,
        "live again",
        rig.events_until("live again", |e| matches!(e, CoreEvent::Connectivity { state: Connectivity::LivePush, .. })),
    )
    .await;
    let mut seen: Vec<String> = Vec::new();
    let note = |seen: &mut Vec<String>, items: &[Item]| {
        for item in items {
            assert!(!seen.contains(&item.key), "{} announced twice", item.key);
            seen.push(item.key.clone());
        }
    };
    for event in &events {
        if let CoreEvent::NewItems { items, .. } = event {
            note(&mut seen, items);
        }
    }
    while seen.len() < sent.len() {
        let items = announced(&mut rig).await;
        note(&mut seen, &items);
    }
    let requests = fake.requests();
    assert!(
        requests.iter().any(|r| r.path.starts_with("/api/v1/subscriptions.get?updatedSince=")),
        "the resync asks only for what changed: {requests:#?}"
    );
    seen.sort();
    let mut expected = sent.to_vec();
    expected.sort();
    assert_eq!(seen, expected);
    // A further resync finds the same messages again and announces nothing.
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn a_silent_link_is_declared_dead_by_the_ping_timeout_and_reconnected() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live_with(&fake, &dir, settings(), quick()).await;
    fake.go_silent();
    let state = connectivity(&mut rig, "the dead link noticed", |c| matches!(c, Connectivity::BackingOff { .. })).await;
    assert!(matches!(&state, Connectivity::BackingOff { reason, .. } if reason.contains("dead link")), "{state:?}");
    connectivity(&mut rig, "live again", |c| *c == Connectivity::LivePush).await;
    assert_eq!(fake.logins(), 2);
    let id = fake.post(DM_BOB, BOB, "back?", &[]);
    assert_eq!(announced(&mut rig).await[0].key, id);
}

#[tokio::test]
async fn the_heartbeat_answers_server_pings_and_keeps_an_idle_link_up() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.set_server_ping_every(Duration::from_millis(100));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let requests = fake.requests().len();
    // Long enough for several server pings and our own ping timeouts.
    let (_, out_before) = fake.frames();
    assert!(fake.wait_until(PATIENCE, |f| f.frames().1 >= out_before + 10).await, "several server pings");
    assert_eq!(fake.logins(), 1, "the link stayed up");
    assert_eq!(fake.requests().len(), requests, "no REST request while live");
    let id = fake.post(DM_BOB, BOB, "still there?", &[]);
    assert_eq!(announced(&mut rig).await[0].key, id);
}

#[tokio::test]
async fn a_rest_rate_limit_is_waited_out_as_the_reset_header_says() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.rate_limit_rest(1, Duration::from_secs(30));
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    let state = connectivity(&mut rig, "rate-limited", |c| matches!(c, Connectivity::RateLimited { .. })).await;
    let Connectivity::RateLimited { until } = state else { unreachable!() };
    let ahead = until.duration_since(jiff::Timestamp::now()).as_secs_f64();
    assert!((27.0..=34.0).contains(&ahead), "next attempt in {ahead} s, the server asked for 30 (plus jitter)");
    let seen = fake.requests().len();
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    let more = fake.wait_until(Duration::from_millis(800), |f| f.requests().len() > seen).await;
    assert!(!more, "no request before the reset");
}

#[tokio::test]
async fn a_ddp_rate_limit_is_waited_out_as_the_server_says() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.rate_limit_ddp_login(Duration::from_secs(12));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![chat_account(&fake, settings(), Some(TOKEN))]);
    let state = connectivity(&mut rig, "rate-limited", |c| matches!(c, Connectivity::RateLimited { .. })).await;
    let Connectivity::RateLimited { until } = state else { unreachable!() };
    let ahead = until.duration_since(jiff::Timestamp::now()).as_secs_f64();
    assert!((10.0..=14.0).contains(&ahead), "next attempt in {ahead} s, the server asked for 12");
}

#[tokio::test]
async fn an_expired_token_shows_sign_in_failed_and_stops_asking() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.expire_token();
    fake.drop_sockets();
    let state = connectivity(&mut rig, "auth failed", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
    assert!(
        matches!(&state, Connectivity::AuthFailed { reason } if reason.contains("expired") && reason.contains("personal access token")),
        "{state:?}"
    );
    let seen = fake.requests().len();
    rig.handle.refresh(&AccountId::new(ID), Trigger::Wake);
    let more = fake.wait_until(Duration::from_millis(800), |f| f.requests().len() > seen).await;
    assert!(!more, "no storm of refused requests");
}

#[tokio::test]
async fn every_server_generation_s_refusal_reads_as_sign_in_failed() {
    for generation in [Generation::V6, Generation::V7, Generation::V8] {
        let fake = FakeRocketChat::start(generation).await.expect("the fake Rocket.Chat starts");
        fake.expire_token();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rig = Rig::start(&dir.path().join("state.json"), vec![chat_account(&fake, settings(), Some(TOKEN))]);
        let state = connectivity(&mut rig, "auth failed", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
        assert!(
            matches!(&state, Connectivity::AuthFailed { reason } if reason.contains("401") && reason.contains("You must be logged in")),
            "{generation:?}: {state:?}"
        );
        rig.stop().await;
    }
}

#[tokio::test]
async fn a_missing_token_names_the_command_that_stores_it() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![chat_account(&fake, settings(), None)]);
    let state = connectivity(&mut rig, "auth failed", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
    assert!(matches!(&state, Connectivity::AuthFailed { reason } if reason.contains("--set-secret chat token")), "{state:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_refused_notification_stream_leaves_the_account_live_on_the_other_streams() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.refuse_subscription("notification");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let id = fake.post(GENERAL, BOB, "@alice ping", &[ALICE]);
    assert_eq!(announced(&mut rig).await[0].key, id);
}

#[tokio::test]
async fn a_refused_subscription_falls_back_to_polling_and_still_announces() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.refuse_subscription("subscriptions-changed");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![chat_account(&fake, settings(), Some(TOKEN))]);
    connectivity(&mut rig, "polling", |c| *c == Connectivity::Polling).await;
    snapshot_until(&rig, "the baseline", |s| s.accounts[0].unread.count.is_some()).await;
    let id = fake.post(DM_BOB, BOB, "are you there?", &[]);
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    let items = announced(&mut rig).await;
    assert_eq!(items[0].key, id);
}

#[tokio::test]
async fn mark_read_reaches_the_server_and_withdraws_the_message() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let id = fake.post(DM_BOB, BOB, "ping", &[]);
    announced(&mut rig).await;
    assert_eq!(fake.unread(DM_BOB), 1);
    within(PATIENCE, "mark read", rig.handle.act(&AccountId::new(ID), &id, Action::MarkRead)).await.expect("marked read");
    let reads: Vec<_> = fake.requests().into_iter().filter(|r| r.path == "/api/v1/subscriptions.read").collect();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].body, format!("{{\"rid\":\"{DM_BOB}\"}}"));
    assert_eq!(fake.unread(DM_BOB), 0);
    snapshot_until(&rig, "nothing unread", |s| unread(s) == (Some(0), false)).await;
}

#[tokio::test]
async fn the_desktop_app_link_opens_the_room_at_the_message() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, ChatSettings { open_in: OpenIn::DesktopApp, ..settings() }).await;
    let id = fake.post(GENERAL, BOB, "@alice see here", &[ALICE]);
    let link = announced(&mut rig).await[0].link.clone().expect("a link");
    let host: String = reqwest::Url::parse(&fake.base_url()).expect("a URL").as_str().trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&link).expect("a URL");
    assert_eq!((parsed.scheme(), parsed.host_str()), ("rocketchat", Some("room")), "{link}");
    let query: std::collections::HashMap<String, String> = parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert_eq!(query.get("host"), Some(&host), "a plain-HTTP server keeps its scheme: {link}");
    assert_eq!(query.get("path").map(String::as_str), Some(format!("channel/general?msg={id}").as_str()));
    assert!(link.contains(&format!("rid={GENERAL}")) && link.contains(&id), "{link}");
}

#[tokio::test]
async fn without_a_user_id_the_token_names_its_user() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, ChatSettings::default()).await;
    let id = fake.post(DM_BOB, BOB, "hi", &[]);
    assert_eq!(announced(&mut rig).await[0].key, id);
}

#[tokio::test]
async fn mark_read_after_a_restart_finds_the_room_of_the_message() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let id = fake.post(GENERAL, BOB, "@alice ping", &[ALICE]);
    announced(&mut rig).await;
    rig.stop().await;
    // A new core (a restart): the watcher has never seen the message.
    let rig = live(&fake, &dir, settings()).await;
    within(PATIENCE, "mark read", rig.handle.act(&AccountId::new(ID), &id, Action::MarkRead)).await.expect("marked read");
    assert_eq!(fake.unread(GENERAL), 0);
}

#[tokio::test]
async fn mark_read_of_a_message_whose_room_is_forgotten_asks_the_server_for_it() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let id = fake.post(GENERAL, BOB, "@alice ping", &[ALICE]);
    announced(&mut rig).await;
    // Read elsewhere: the watcher forgets the message's room.
    assert!(fake.read_elsewhere(GENERAL));
    within(PATIENCE, "read elsewhere", rig.events_until("read elsewhere", |e| matches!(e, CoreEvent::ItemRead { .. }))).await;
    within(PATIENCE, "mark read", rig.handle.act(&AccountId::new(ID), &id, Action::MarkRead)).await.expect("marked read");
    let requests = fake.requests();
    let asked = requests.iter().position(|r| r.path == format!("/api/v1/chat.getMessage?msgId={id}"));
    let read = requests.iter().position(|r| r.path == "/api/v1/subscriptions.read" && r.body.contains(GENERAL));
    assert!(matches!((asked, read), (Some(a), Some(r)) if a < r), "{requests:#?}");
}

#[tokio::test]
async fn with_notify_all_messages_a_plain_message_in_a_big_room_toasts() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, ChatSettings { notify_all_messages: true, ..settings() }).await;
    let id = fake.post(BIG, BOB, "office closed on friday", &[]);
    assert_eq!(announced(&mut rig).await[0].key, id);
    // Muted rooms stay muted.
    fake.post(MUTED, BOB, "disk full on db-2", &[]);
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn a_flood_of_messages_becomes_at_most_three_announcements_each_message_once() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let sent: Vec<String> = (0..200).map(|n| fake.post(DM_BOB, BOB, &format!("message {n}"), &[])).collect();
    let mut seen: Vec<String> = Vec::new();
    let mut announcements = 0;
    while seen.len() < sent.len() {
        let items = announced(&mut rig).await;
        announcements += 1;
        for item in items {
            assert!(!seen.contains(&item.key), "{} announced twice", item.key);
            seen.push(item.key);
        }
    }
    assert_eq!(seen, sent, "every message, in order");
    assert!(announcements <= 3, "{announcements} announcements for one flood");
    snapshot_until(&rig, "all counted", |s| unread(s) == (Some(200), false)).await;
}

#[tokio::test]
async fn messages_sent_while_vigie_was_not_running_are_announced_once_at_the_next_start() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    let seen_live = fake.post(DM_BOB, BOB, "before the restart", &[]);
    announced(&mut rig).await;
    rig.stop().await;

    let missed = [fake.post(DM_BOB, BOB, "while you were away", &[]), fake.post(GENERAL, BOB, "@alice did you see?", &[ALICE])];
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![chat_account(&fake, settings(), Some(TOKEN))]);
    let events = within(
        PATIENCE,
        "live after the restart",
        rig.events_until("live", |e| matches!(e, CoreEvent::Connectivity { state: Connectivity::LivePush, .. })),
    )
    .await;
    let mut keys: Vec<String> = events
        .iter()
        .filter_map(|e| if let CoreEvent::NewItems { items, .. } = e { Some(items) } else { None })
        .flatten()
        .map(|i| i.key.clone())
        .collect();
    keys.sort();
    let mut expected = missed.to_vec();
    expected.sort();
    assert_eq!(keys, expected, "the missed messages, and not {seen_live} again");
    snapshot_until(&rig, "the count", |s| unread(s) == (Some(3), false)).await;
}

#[tokio::test]
async fn a_ping_before_the_handshake_is_answered_and_the_link_comes_up() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.ping_at_once();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    assert_eq!(fake.pongs(), 1, "the early ping was answered");
    let id = fake.post(DM_BOB, BOB, "hello", &[]);
    assert_eq!(announced(&mut rig).await[0].key, id);
}

#[tokio::test]
async fn the_demo_chat_account_talks_to_its_local_server_and_rides_out_its_drops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start_with(&dir.path().join("state.json"), Vec::new(), |setup| {
        vigie::demo::chat::add_to(setup, Duration::from_millis(200)).expect("a loopback port");
    });
    let mut announced: Vec<String> = Vec::new();
    let mut dropped = false;
    // Bob's DM, mention and plain message come first, then a drop (step 6).
    loop {
        match within(PATIENCE, "the demo chat", rig.events.recv()).await.expect("events") {
            CoreEvent::NewItems { items, .. } => {
                for item in items {
                    assert!(!announced.contains(&item.key), "{} announced twice", item.key);
                    announced.push(item.key);
                }
            }
            CoreEvent::Connectivity { state: Connectivity::BackingOff { .. }, .. } => dropped = true,
            CoreEvent::Connectivity { state: Connectivity::LivePush, .. } if dropped => break,
            _ => {}
        }
    }
    // At least the DM, the mention and the plain message in a small room
    // before the drop (more if the reconnect came after the next round).
    assert!(announced.len() >= 3, "{announced:?}");
    rig.stop().await;
}

#[tokio::test]
async fn a_resync_cut_short_by_a_rate_limit_fetches_the_same_span_again() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.go_silent();
    let sent = [fake.post(DM_BOB, BOB, "one", &[]), fake.post(GENERAL, BOB, "@alice two", &[ALICE])];
    // The second room's messages are refused once: the first room's were
    // read already, and must not count as done.
    fake.rate_limit_rest_path("/api/v1/chat.syncMessages", 1, 1, Duration::from_secs(1));
    fake.drop_sockets();
    connectivity(&mut rig, "rate-limited", |c| matches!(c, Connectivity::RateLimited { .. })).await;
    let events = within(
        PATIENCE,
        "live again",
        rig.events_until("live again", |e| matches!(e, CoreEvent::Connectivity { state: Connectivity::LivePush, .. })),
    )
    .await;
    let mut keys: Vec<String> = events
        .iter()
        .filter_map(|e| if let CoreEvent::NewItems { items, .. } = e { Some(items) } else { None })
        .flatten()
        .map(|i| i.key.clone())
        .collect();
    keys.sort();
    let mut expected = sent.to_vec();
    expected.sort();
    assert_eq!(keys, expected, "both messages, after the second attempt");
}

#[tokio::test]
async fn messages_from_before_the_first_start_are_not_announced_after_a_reconnect() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    // Old unread chatter: the first message set `alert` (the subscription
    // changed 50 minutes ago), the second changed only the room.
    let minutes_ago = |m: i64| jiff::Timestamp::now() - jiff::SignedDuration::from_mins(m);
    fake.post_at(GENERAL, BOB, "old news", &[], minutes_ago(50));
    fake.post_at(GENERAL, BOB, "older news still unread", &[], minutes_ago(10));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, settings()).await;
    fake.drop_sockets();
    let events = within(
        PATIENCE,
        "live again",
        rig.events_until("live again", |e| matches!(e, CoreEvent::Connectivity { state: Connectivity::LivePush, .. })),
    )
    .await;
    assert!(events.iter().any(|e| matches!(e, CoreEvent::Connectivity { state: Connectivity::BackingOff { .. }, .. })));
    assert!(!crate::support::any_new_items(&events), "old messages announced: {events:#?}");
    fence(&fake, &mut rig).await;
}

#[tokio::test]
async fn a_user_id_that_is_not_the_tokens_owner_is_named_in_the_refusal() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = ChatSettings { user_id: Some(BOB.to_owned()), ..ChatSettings::default() };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![chat_account(&fake, wrong, Some(TOKEN))]);
    let state = connectivity(&mut rig, "auth failed", |c| matches!(c, Connectivity::AuthFailed { .. })).await;
    assert!(matches!(&state, Connectivity::AuthFailed { reason } if reason.contains(BOB) && reason.contains("user_id")), "{state:?}");
}

#[tokio::test]
async fn a_server_without_websocket_is_polled_and_still_announces() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.refuse_websocket();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![chat_account(&fake, settings(), Some(TOKEN))]);
    connectivity(&mut rig, "polling", |c| *c == Connectivity::Polling).await;
    snapshot_until(&rig, "the baseline", |s| s.accounts[0].unread.count.is_some()).await;
    let id = fake.post(DM_BOB, BOB, "is the proxy fixed?", &[]);
    rig.handle.refresh(&AccountId::new(ID), Trigger::Manual);
    assert_eq!(announced(&mut rig).await[0].key, id);
}

#[tokio::test]
async fn a_plain_http_address_on_another_machine_is_refused_before_the_token_is_read() {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    let server = "http://chat.example.org";
    let config = AccountConfig { server: Some(server.to_owned()), ..account_config(ID, Source::Chat) };
    let watcher = RocketChatWatcher::new(AccountId::new(ID), server, settings(), secrets);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = AccountSpec { config, schedule: on_demand(), watcher: Box::new(watcher) };
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let state = connectivity(&mut rig, "the address refused", |c| matches!(c, Connectivity::NeedsAttention { .. })).await;
    let Connectivity::NeedsAttention { reason } = state else { unreachable!() };
    assert!(reason.contains("unencrypted") && reason.contains("https://"), "{reason}");
}

fn with_room(room: &str, preference: RoomPreference) -> ChatSettings {
    ChatSettings { rooms: [(room.to_owned(), preference)].into(), ..settings() }
}

#[tokio::test]
async fn a_room_set_to_mentions_in_vigie_toasts_only_mentions() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    // The server's preference for #general is the default, "all".
    let mut rig = live(&fake, &dir, with_room("general", RoomPreference::Mentions)).await;
    fake.post(GENERAL, BOB, "standup in 5", &[]);
    fence(&fake, &mut rig).await;
    let id = fake.post(GENERAL, BOB, "@alice standup in 5", &[ALICE]);
    let items = announced(&mut rig).await;
    assert_eq!(items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), [id.as_str()]);
}

#[tokio::test]
async fn a_room_set_to_nothing_in_vigie_neither_toasts_nor_counts() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, with_room("#general", RoomPreference::Nothing)).await;
    fake.post(GENERAL, BOB, "@alice can you look?", &[ALICE]);
    fence(&fake, &mut rig).await;
    assert_eq!(fake.unread(GENERAL), 1, "the server counted the mention");
    // Only the fence DM counts, and #general's alert lights no dot.
    let snapshot = snapshot_until(&rig, "the DM counted", |s| unread(s).0 == Some(1)).await;
    assert_eq!(unread(&snapshot), (Some(1), false));
}

#[tokio::test]
async fn a_room_set_to_all_in_vigie_toasts_every_message_though_the_server_says_mentions() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    // #design is set to "mentions" on the server.
    let mut rig = live(&fake, &dir, with_room("design", RoomPreference::All)).await;
    let id = fake.post(MENTIONS_ONLY, BOB, "new mockups are up", &[]);
    let items = announced(&mut rig).await;
    assert_eq!(items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert_eq!(items[0].title, "#design");
}

#[tokio::test]
async fn a_room_set_to_all_in_vigie_toasts_in_a_room_above_the_member_limit() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = live(&fake, &dir, with_room("announcements", RoomPreference::All)).await;
    // Seen live or found by the resync after the drop: judged alike.
    fake.drop_sockets();
    connectivity(&mut rig, "reconnecting", |c| *c != Connectivity::LivePush).await;
    let id = fake.post(BIG, BOB, "office closed on friday", &[]);
    let items = announced(&mut rig).await;
    assert_eq!(items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), [id.as_str()]);
}
