//! The state file: a corrupt one is kept aside and replaced by a fresh store;
//! an unwritable location is reported once and never stops the core.

use std::path::{Path, PathBuf};

use vigie::CoreEvent;
use vigie::model::{AccountId, Source};
use vigie::store::{Recovered, StateStore};

use crate::support::{Rig, ScriptedWatcher, any_new_items, fence, item, keys, mails, spec, update};

/// A valid state file with one baselined account, as the app writes it.
fn valid_state_bytes(dir: &Path) -> Vec<u8> {
    let path = dir.join("valid.json");
    let (mut store, _) = StateStore::load(&path).expect("load an empty store");
    let record = store.account_mut(&AccountId::new("mail"));
    record.baselined = true;
    record.unread = Some(7);
    record.remember("uid-1");
    store.save().expect("save");
    std::fs::read(&path).expect("read back")
}

/// Writes `bytes` as the state file, loads it, and checks the recovery
/// contract: a fresh store, the bad file moved aside unchanged.
fn assert_recovers_from(bytes: &[u8]) -> Recovered {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    std::fs::write(&path, bytes).expect("write the bad file");

    let (store, recovered) = StateStore::load(&path).expect("a corrupt file must not stop the load");
    let recovered = recovered.expect("the recovery is reported");
    assert!(store.account(&AccountId::new("mail")).is_none(), "the store starts fresh");
    assert_eq!(store.paused_until(), None);
    assert_eq!(store.path(), path, "the fresh store saves where the old one was");

    assert_eq!(recovered.kept_at.parent(), Some(dir.path()), "kept beside the state file");
    let kept_name = recovered.kept_at.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(kept_name.starts_with("state.json.corrupt-"), "kept as {kept_name}");
    assert_eq!(std::fs::read(&recovered.kept_at).expect("the kept file exists"), bytes, "kept byte for byte");
    assert!(!path.exists(), "moved aside, not copied");
    assert!(recovered.to_string().contains(&recovered.kept_at.display().to_string()), "the message names the copy");
    recovered
}

#[test]
fn a_state_file_of_garbage_bytes_is_kept_aside_and_the_store_starts_fresh() {
    let recovered = assert_recovers_from(&[0xff, 0xfe, 0x00, 0x9c, b'{', 0x80, 0x81]);
    assert!(recovered.problem.contains("UTF-8"), "{}", recovered.problem);
}

#[test]
fn a_truncated_state_file_is_kept_aside_and_the_store_starts_fresh() {
    let dir = tempfile::tempdir().expect("temp dir");
    let valid = valid_state_bytes(dir.path());
    assert_recovers_from(&valid[..valid.len() / 2]);
}

#[test]
fn a_state_file_of_an_unknown_version_is_kept_aside_and_the_store_starts_fresh() {
    let dir = tempfile::tempdir().expect("temp dir");
    let valid = String::from_utf8(valid_state_bytes(dir.path())).expect("JSON is text");
    assert!(valid.contains("\"version\":1"), "{valid}");
    let future = valid.replace("\"version\":1", "\"version\":99");
    let recovered = assert_recovers_from(future.as_bytes());
    assert!(recovered.problem.contains("99"), "{}", recovered.problem);
}

#[test]
fn a_saved_store_reads_back_before_and_after_it_is_synced_to_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = valid_state_bytes(dir.path());
    let path = dir.path().join("valid.json");
    vigie::store::sync_to_disk(&path).expect("sync");
    assert_eq!(std::fs::read(&path).expect("read"), bytes, "syncing changes nothing but durability");
    let (store, recovered) = StateStore::load(&path).expect("load");
    assert!(recovered.is_none());
    assert_eq!(store.account(&AccountId::new("mail")).and_then(|r| r.unread), Some(7));
}

#[test]
fn syncing_a_state_file_that_is_gone_says_which_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("gone.json");
    let error = vigie::store::sync_to_disk(&missing).expect_err("nothing to sync");
    assert!(error.to_string().contains("gone.json"), "{error}");
}

fn kept_copies(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("list the state folder")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("state.json.corrupt-")))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_state_file_is_the_first_event_and_names_the_kept_copy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    std::fs::write(&path, b"{\"version\":1,\"accounts\":{\"mail\":{\"baselined\":tr").expect("write");
    let (mail, script) = ScriptedWatcher::new();
    let mut rig = Rig::start(&path, vec![spec("mail", Source::Mail, mail)]);

    let kept = kept_copies(dir.path());
    assert_eq!(kept.len(), 1, "one kept copy: {kept:?}");
    let first = rig.next_event().await;
    let CoreEvent::Error { account: None, message } = &first else { panic!("first event is {first:?}") };
    assert!(message.contains(&kept[0].display().to_string()), "{message}");
    assert!(rig.handle.snapshot().problems.iter().any(|p| p.contains(&kept[0].display().to_string())));
    drop(script);
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn after_a_corrupt_state_file_the_core_re_baselines_instead_of_announcing_old_items() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    std::fs::write(&path, b"not json at all").expect("write");
    let (mail, script) = ScriptedWatcher::new();
    let mut rig = Rig::start(&path, vec![spec("mail", Source::Mail, mail)]);

    script.publish(update(mails("mail", "old-", 50), 50));
    script.publish(fence("after-baseline"));
    let events = rig.until_fence("after-baseline").await;
    assert!(!any_new_items(&events), "no flood of old items after losing the state");
    let errors = events.iter().filter(|e| matches!(e, CoreEvent::Error { .. })).count();
    assert_eq!(errors, 1, "only the recovery is reported: {events:#?}");
    rig.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unwritable_state_location_is_reported_once_and_the_core_keeps_announcing() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The state file's folder is a regular file: it can never be created,
    // whatever our privileges (chmod does not stop root).
    let blocker = dir.path().join("state-folder");
    std::fs::write(&blocker, b"").expect("write the blocker");
    let path = blocker.join("state.json");
    let (mail, script) = ScriptedWatcher::new();
    let mut rig = Rig::start(&path, vec![spec("mail", Source::Mail, mail)]);

    script.publish(update(mails("mail", "old-", 2), 2));
    script.publish(update(vec![item(Source::Mail, "mail", "new-1", "Alice")], 3));
    script.publish(update(vec![item(Source::Mail, "mail", "new-2", "Bob")], 4));
    script.publish(fence("done"));
    let events = rig.until_fence("done").await;

    let errors: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            CoreEvent::Error { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "one error for a lasting problem, not one per change: {errors:#?}");
    assert!(errors[0].contains(&path.display().to_string()), "{}", errors[0]);
    let announced: Vec<Vec<&str>> = events
        .iter()
        .filter_map(|e| match e {
            CoreEvent::NewItems { items, .. } => Some(keys(items)),
            _ => None,
        })
        .collect();
    assert_eq!(announced, [["new-1"], ["new-2"]], "the core keeps working in memory");
    assert_eq!(rig.handle.snapshot().problems.len(), 1, "the problem shows in the snapshot");
    rig.stop().await;
}
