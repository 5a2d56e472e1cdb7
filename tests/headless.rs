//! `vigie --headless`: the real binary on the demo world, its JSON lines
//! checked against `docs/events.schema.json`; and every core event rendered
//! by the headless writer checked against the same schema.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;
use vigie::CoreEvent;
use vigie::badge::Badge;
use vigie::model::{AccountId, Connectivity, Source};

use crate::support::{Headless, Home, assert_schema_valid, events_schema, item};

/// A demo that steps five times a second.
const FAST_DEMO: &str = "[demo]\nevery_secs = 0.2\n";
/// How long a run may take to show what a test waits for.
const DEADLINE: Duration = Duration::from_secs(20);

/// What a run printed, every line already checked against the schema.
struct Run {
    lines: Vec<Value>,
}

impl Run {
    fn of_type(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.lines.iter().filter(move |l| l["type"] == kind)
    }

    fn new_keys(&self) -> BTreeSet<String> {
        self.of_type("item-new").map(|l| l["key"].as_str().unwrap_or_default().to_owned()).collect()
    }
}

/// Reads `vigie`'s lines as they come, checking each against the schema,
/// until `done` says enough; then kills it. Fails at the deadline.
fn read_until(vigie: Headless, done: impl Fn(&[Value]) -> bool) -> Run {
    let schema = events_schema();
    let deadline = Instant::now() + DEADLINE;
    let mut lines = Vec::new();
    while !done(&lines) {
        let Some(line) = vigie.next_line(deadline) else {
            let ended = vigie.kill();
            panic!("vigie stopped or stalled before the test saw enough; lines: {lines:#?}\nstderr: {}", ended.stderr);
        };
        lines.push(assert_schema_valid(&schema, &line));
    }
    vigie.kill();
    Run { lines }
}

fn count(lines: &[Value], kind: &str) -> usize {
    lines.iter().filter(|l| l["type"] == kind).count()
}

/// Runs the fast demo in `home` until it has announced two items and
/// reported some connectivity.
fn demo_run(home: &Home) -> Run {
    let config = home.write_config(FAST_DEMO);
    read_until(home.spawn(&config), |lines| count(lines, "item-new") >= 2 && count(lines, "connectivity") >= 1)
}

/// The names of `pid`'s threads.
fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads are listed in /proc");
    tasks.flatten().filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok()).map(|n| n.trim().to_owned()).collect()
}

fn has_state(lines: &[Value], account: Option<&str>, state: &str) -> bool {
    lines.iter().any(|l| {
        l["type"] == "connectivity" && l["state"] == state && account.is_none_or(|a| l["account"] == a)
    })
}

#[test]
fn headless_output_starts_with_the_badge_and_every_line_matches_the_schema() {
    let home = Home::new();
    let config = home.write_config(FAST_DEMO);
    let run = read_until(home.spawn(&config), |lines| {
        count(lines, "item-new") >= 2 && has_state(lines, Some("demo-tasks"), "polling") && has_state(lines, None, "live")
    });
    assert_eq!(run.lines[0]["type"], "badge", "first line: {}", run.lines[0]);
    assert_eq!(run.lines[0]["count"], 0, "a first run knows no badge yet");
    // Mail and chat are push sources in the demo, tasks is polled: the
    // deadline above fails the test if either state never shows.
    let accounts: BTreeSet<&str> = run.of_type("connectivity").filter_map(|l| l["account"].as_str()).collect();
    assert!(accounts.is_subset(&BTreeSet::from(["demo-mail", "demo-chat", "demo-tasks"])), "{accounts:?}");
    for line in run.of_type("item-new") {
        assert_eq!(line["silent"], false, "{line}");
    }
}

/// A thread of async-io's `blocking` pool (which zbus uses unless it runs
/// on tokio) never exits and wakes twice a second: most of an idle app's
/// CPU. Everything the app does on the side (D-Bus, keyring, state writes)
/// must run on tokio's pool, whose idle threads go.
#[test]
fn a_running_app_keeps_no_thread_of_a_pool_that_never_sleeps() {
    let home = Home::new();
    let config = home.write_config(FAST_DEMO);
    let vigie = home.spawn(&config);
    let deadline = Instant::now() + DEADLINE;
    let mut announced = 0;
    // By the second announcement every watcher and the presence follower
    // (which asks for the system bus at start) have been set going.
    while announced < 2 {
        let line = vigie.next_line(deadline).expect("the demo announces two items");
        announced += usize::from(line.contains("\"type\":\"item-new\""));
    }
    let names = thread_names(vigie.pid());
    vigie.kill();
    assert!(names.iter().all(|name| !name.starts_with("blocking-")), "threads: {names:?}");
}

#[test]
fn a_second_run_on_the_same_state_never_announces_a_key_of_the_first_run_again() {
    let home = Home::new();
    let first = demo_run(&home);
    let second = demo_run(&home);

    let (before, after) = (first.new_keys(), second.new_keys());
    assert!(before.len() >= 2 && after.len() >= 2);
    let again: Vec<&String> = before.intersection(&after).collect();
    assert!(again.is_empty(), "announced again after a restart: {again:?}");
    assert!(
        second.lines[0]["count"].as_u64().is_some_and(|c| c > 0),
        "the second run starts with the last known badge: {}",
        second.lines[0]
    );
}

#[test]
fn a_config_with_an_unknown_field_exits_with_code_2_naming_the_line_and_the_field() {
    let home = Home::new();
    let config = home.write_config("[[account]]\nid = \"work\"\nsource = \"mail\"\npasword = \"hunter2\"\n");
    let vigie = home.spawn(&config);
    let lines = vigie.lines_until_exit(Instant::now() + DEADLINE);
    let ended = vigie.wait();

    assert_eq!(ended.status.code(), Some(2), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains("line 4"), "{}", ended.stderr);
    assert!(ended.stderr.contains("pasword"), "{}", ended.stderr);
    assert!(!ended.stderr.contains("hunter2"), "the value of a misspelt password field is a secret: {}", ended.stderr);

    let schema = events_schema();
    let errors: Vec<Value> = lines.iter().map(|l| assert_schema_valid(&schema, l)).collect();
    assert_eq!(errors.len(), 1, "{lines:#?}");
    assert_eq!(errors[0]["type"], "error");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("line 4") && message.contains("pasword"), "{message}");
}

#[test]
fn a_corrupt_state_file_is_reported_with_its_kept_copy_and_the_demo_keeps_running() {
    let home = Home::new();
    let state = home.state_file();
    std::fs::create_dir_all(state.parent().expect("state folder")).expect("create the state folder");
    std::fs::write(&state, b"{\"version\": 1, \"accounts\": {\"demo-mail\": {\"notified\": [\"mail-1\"").expect("write");

    let config = home.write_config(FAST_DEMO);
    let run = read_until(home.spawn(&config), |lines| count(lines, "item-new") >= 1);

    let errors: Vec<&str> = run.of_type("error").filter_map(|l| l["message"].as_str()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let kept: Vec<_> = std::fs::read_dir(state.parent().expect("state folder"))
        .expect("list the state folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("state.json.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(errors[0].contains(&kept[0].display().to_string()), "the error names the kept copy: {}", errors[0]);
    assert_eq!(run.lines[0]["type"], "badge", "the badge still comes first");
}

#[test]
fn every_kind_of_core_event_renders_to_schema_valid_lines() {
    let schema = events_schema();
    let mail = AccountId::new("work-mail");
    let until = Timestamp::now();
    let mut linked = item(Source::Mail, "work-mail", "uid-9", "Alice <alice@example.com>");
    linked.link = Some("mailto:alice@example.com".to_owned());
    let events = [
        CoreEvent::NewItems {
            account: mail.clone(),
            items: vec![item(Source::Mail, "work-mail", "uid-8", "Bob"), linked],
            silent: true,
            unlisted: 0,
        },
        CoreEvent::ItemRead { account: mail.clone(), key: "uid-8".to_owned() },
        CoreEvent::Badge { badge: Badge::default(), by_source: BTreeMap::new() },
        CoreEvent::Badge {
            badge: Badge { count: 10_000, dot: true },
            by_source: BTreeMap::from([
                (Source::Mail, Badge { count: 10_000, dot: false }),
                (Source::Tasks, Badge { count: 0, dot: true }),
            ]),
        },
        CoreEvent::Badge { badge: Badge { count: 0, dot: true }, by_source: BTreeMap::new() },
        CoreEvent::Connectivity {
            account: mail.clone(),
            source: Source::Mail,
            state: Connectivity::BackingOff { reason: "timeout".to_owned(), until },
        },
        CoreEvent::Connectivity {
            account: mail.clone(),
            source: Source::Mail,
            state: Connectivity::AuthFailed { reason: "invalid password".to_owned() },
        },
        CoreEvent::Connectivity {
            account: mail.clone(),
            source: Source::Chat,
            state: Connectivity::Disabled { reason: Some("not in this build".to_owned()) },
        },
        CoreEvent::Connectivity { account: mail.clone(), source: Source::Tasks, state: Connectivity::Disabled { reason: None } },
        CoreEvent::Connectivity { account: mail.clone(), source: Source::Mail, state: Connectivity::Connecting },
        CoreEvent::Connectivity { account: mail.clone(), source: Source::Mail, state: Connectivity::LivePush },
        CoreEvent::Connectivity { account: mail.clone(), source: Source::Mail, state: Connectivity::Polling },
        CoreEvent::Error { account: None, message: "could not save the state file".to_owned() },
        CoreEvent::Error { account: Some(mail), message: "something about this account".to_owned() },
    ];
    let mut kinds = BTreeSet::new();
    for event in &events {
        let lines = vigie::headless::lines(event);
        assert!(!lines.is_empty(), "{event:?} rendered no line");
        for line in lines {
            let value = assert_schema_valid(&schema, &line);
            kinds.insert(value["type"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(kinds.len(), 5, "every line type is covered: {kinds:?}");
}
