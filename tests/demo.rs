//! The built-in demo through the real core: every account talks its real
//! protocol to a local server (IMAP, Rocket.Chat, Leantime), and the hybrid
//! strategy (push, polling, hints) and the chat server's drops show in its
//! events. On the real clock, since everything is real sockets.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use tokio::time::Instant;
use vigie::CoreEvent;
use vigie::config::DemoSettings;
use vigie::model::Connectivity;

use crate::support::{Rig, secs, within};

/// A step of the demo world every 0.2 s.
fn demo_rig(dir: &tempfile::TempDir) -> Rig {
    let settings = DemoSettings { every_secs: 0.2 };
    Rig::start_with(&dir.path().join("state.json"), Vec::new(), |setup| vigie::demo::add_to(setup, &settings))
}

#[tokio::test]
async fn a_leantime_mail_brings_its_task_in_long_before_the_tasks_poll_interval() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = demo_rig(&dir);
    let started = Instant::now();

    let new_task = rig.events_until("a new task", |e| {
        matches!(e, CoreEvent::NewItems { account, items, .. } if account.as_str() == "demo-tasks" && items.iter().any(|i| i.key.starts_with('t')))
    });
    let events = within(Duration::from_secs(30), "a new task", new_task).await;
    let took = started.elapsed();
    let hinted = events.iter().any(|e| match e {
        CoreEvent::NewItems { account, items, .. } => {
            account.as_str() == "demo-mail" && items.iter().any(|i| i.sender.contains("Leantime"))
        }
        _ => false,
    });
    assert!(hinted, "the Leantime mail came first: {events:#?}");
    // The tasks account polls every 60 s; the world assigns the task at 0.4 s.
    assert!(took < secs(10), "the task came {took:?} after start: the hint did not work");
    rig.stop().await;
}

#[tokio::test]
async fn every_demo_account_works_over_its_protocol_and_nothing_is_announced_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = demo_rig(&dir);
    let mut announced: BTreeMap<String, usize> = BTreeMap::new();
    let mut from: BTreeSet<String> = BTreeSet::new();
    let (mut mail_read, mut chat_dropped, mut chat_back) = (false, false, false);
    while !(from.len() == 3 && mail_read && chat_back) {
        match within(Duration::from_secs(60), "the next demo event", rig.next_event()).await {
            CoreEvent::NewItems { account, items, .. } => {
                from.insert(account.to_string());
                for item in items {
                    *announced.entry(format!("{account}/{}", item.key)).or_default() += 1;
                }
            }
            CoreEvent::ItemRead { account, .. } if account.as_str() == "demo-mail" => mail_read = true,
            CoreEvent::Connectivity { account, state, .. } if account.as_str() == "demo-chat" => match state {
                Connectivity::BackingOff { .. } => chat_dropped = true,
                Connectivity::LivePush if chat_dropped => chat_back = true,
                _ => {}
            },
            _ => {}
        }
    }
    let twice: Vec<_> = announced.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "announced more than once: {twice:?}");
    let snapshot = rig.handle.snapshot();
    for account in &snapshot.accounts {
        assert!(account.last_error.is_none() || account.id.as_str() == "demo-chat", "{account:?}");
    }
    rig.stop().await;
}
