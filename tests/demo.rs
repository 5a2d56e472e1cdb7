//! The built-in demo through the real core: the hybrid strategy (push,
//! polling the local Leantime, hints) and the chat server's drops are
//! visible in its events. On the real clock, since the tasks account talks
//! HTTP to a real local server.

use std::collections::BTreeMap;

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
    // The tasks account polls every 60 s; the world assigns the task at 0.6 s.
    assert!(took < secs(10), "the task came {took:?} after start: the hint did not work");
    rig.stop().await;
}

#[tokio::test]
async fn the_demo_chat_reconnects_after_each_drop_and_nothing_is_announced_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rig = demo_rig(&dir);
    let mut announced: BTreeMap<String, usize> = BTreeMap::new();
    let mut drops = 0;
    let mut back_live_after_drop = 0;
    let mut chat_backing_off = false;
    // The chat server drops at every 8th step (6, 14, 22); watch three drops.
    while back_live_after_drop < 3 {
        match within(Duration::from_secs(30), "the next demo event", rig.next_event()).await {
            CoreEvent::NewItems { items, .. } => {
                for item in items {
                    *announced.entry(item.key).or_default() += 1;
                }
            }
            CoreEvent::Connectivity { account, state, .. } if account.as_str() == "demo-chat" => match state {
                Connectivity::BackingOff { reason, .. } => {
                    assert!(reason.contains("closed the connection"), "{reason}");
                    drops += 1;
                    chat_backing_off = true;
                }
                Connectivity::LivePush if chat_backing_off => {
                    back_live_after_drop += 1;
                    chat_backing_off = false;
                }
                _ => {}
            },
            _ => {}
        }
    }
    assert_eq!(drops, 3);
    let twice: Vec<_> = announced.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "announced more than once across reconnects: {twice:?}");
    assert!(announced.keys().any(|k| k.starts_with("chat-")), "chat kept announcing: {announced:?}");
    rig.stop().await;
}
