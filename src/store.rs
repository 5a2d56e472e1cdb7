//! The state file: what survives a restart.
//!
//! Per account: whether the first sync (the baseline) happened, the source's
//! resume cursor, the keys already notified, and the last known unread count
//! (so the tray shows the last badge at once, before any network). Plus the
//! "pause notifications" deadline.
//!
//! Invariants:
//! - Writes are atomic (temp file in the same folder, rename, then fsync off
//!   the hot path): a crash or a full disk leaves the previous file intact,
//!   never half a file. A crash in the middle of a write leaves its temp file
//!   (`state.json.<random>.tmp`) behind; the next load removes such leftovers
//!   once they are old enough that no live write can own them.
//! - Growth is bounded: each account remembers at most [`MAX_NOTIFIED`] keys
//!   (or the size of its largest single update, if larger), forgetting those
//!   not reported for longest first. Watchers use cursors for "new since",
//!   the key set is the safety net for resends around reconnects.
//! - A corrupt file never stops the app: it is moved aside (kept for the
//!   user), the app starts fresh and says so. Starting fresh re-baselines, so
//!   it costs no flood of old notifications.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{AccountId, Source};

/// Keys remembered per account.
pub const MAX_NOTIFIED: usize = 5_000;

/// A temp file older than this was left by a crashed write: one write takes
/// milliseconds, and a single instance runs at a time.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(60);

const FORMAT_VERSION: u32 = 1;

/// Failure to read or write the state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be written (full disk, permissions, …). The state is
    /// kept in memory and written again with the next change.
    #[error("could not save the state file {}: {source}", .path.display())]
    Write {
        /// The file we tried to write.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file exists but could not be read.
    #[error("could not read the state file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// What happened at load that the user should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Where the unreadable file was moved.
    pub kept_at: PathBuf,
    /// Why it could not be read.
    pub problem: String,
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the state file was unreadable ({}); started fresh and kept the old file at {}",
            self.problem,
            self.kept_at.display()
        )
    }
}

/// Persisted state of one account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The first sync happened; later items are news.
    #[serde(default)]
    pub baselined: bool,
    /// The watcher's resume position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Last known unread count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<u32>,
    /// Last known "new without a count".
    #[serde(default)]
    pub dot: bool,
    /// When the last new item arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<Timestamp>,
    /// Counts updates; each remembered key carries the generation of the
    /// update that last mentioned it.
    #[serde(default)]
    generation: u64,
    /// Keys already notified → generation in which they were last seen.
    #[serde(default)]
    notified: HashMap<String, u64>,
}

impl AccountRecord {
    /// Starts a new update: keys remembered from now on are "seen now".
    pub fn begin_update(&mut self) {
        self.generation += 1;
    }

    /// Records `key` as notified and seen in the current update. Returns
    /// `true` if it was not known yet.
    pub fn remember(&mut self, key: &str) -> bool {
        match self.notified.get_mut(key) {
            Some(seen) => {
                *seen = self.generation;
                false
            }
            None => {
                self.notified.insert(key.to_owned(), self.generation);
                true
            }
        }
    }

    /// Once over [`MAX_NOTIFIED`] keys, forgets those seen longest ago, but
    /// never a key of the current update.
    ///
    /// Forgetting by *last seen* rather than by *first notified* matters: an
    /// item that stays unread is mentioned by every sync and so is never
    /// forgotten, while a key is only dropped once its item has long stopped
    /// being reported. Sparing the current update means one sync larger than
    /// the cap (a baseline of 10,000 unread mails) is remembered whole.
    pub fn forget_oldest(&mut self) {
        if self.notified.len() <= MAX_NOTIFIED {
            return;
        }
        let mut old: Vec<(u64, String)> = self
            .notified
            .iter()
            .filter(|(_, seen)| **seen < self.generation)
            .map(|(key, seen)| (*seen, key.clone()))
            .collect();
        old.sort_unstable();
        // Trim a tenth below the cap, so the sort runs once per few hundred
        // new keys rather than on every update at the cap.
        let excess = self.notified.len() - MAX_NOTIFIED * 9 / 10;
        for (_, key) in old.into_iter().take(excess) {
            self.notified.remove(&key);
        }
    }

    /// Whether `key` was notified before.
    pub fn knows(&self, key: &str) -> bool {
        self.notified.contains_key(key)
    }

    /// How many keys are remembered.
    pub fn remembered(&self) -> usize {
        self.notified.len()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paused_until: Option<Timestamp>,
    #[serde(default)]
    accounts: BTreeMap<String, AccountRecord>,
    /// New items per source that came while toasts were held (paused or
    /// quiet hours), for the digest when that ends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    held: BTreeMap<Source, u32>,
}

/// The state file, loaded.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    data: StateFile,
}

impl StateStore {
    /// Loads the store at `path`. A missing file is an empty store; an
    /// unreadable one is moved aside and reported in the second value.
    pub fn load(path: &Path) -> Result<(StateStore, Option<Recovered>), StoreError> {
        remove_stale_temp_files(path, STALE_TEMP_AGE);
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            // A folder on the way is a file: no state file can exist there.
            // Start empty; saving reports the problem and the app keeps going.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                return Ok((StateStore::empty(path), None));
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Self::recover(path, "it is not UTF-8 text".to_owned());
            }
            Err(source) => return Err(StoreError::Read { path: path.to_owned(), source }),
        };
        match serde_json::from_str::<StateFile>(&text) {
            Ok(data) if data.version == FORMAT_VERSION => Ok((StateStore { path: path.to_owned(), data }, None)),
            Ok(data) => Self::recover(path, format!("unknown format version {}", data.version)),
            Err(e) => Self::recover(path, e.to_string()),
        }
    }

    /// An empty store that will be saved at `path`.
    pub(crate) fn empty(path: &Path) -> StateStore {
        StateStore {
            path: path.to_owned(),
            data: StateFile { version: FORMAT_VERSION, ..StateFile::default() },
        }
    }

    fn recover(path: &Path, problem: String) -> Result<(StateStore, Option<Recovered>), StoreError> {
        let stamp = Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
        let kept_at = path.with_extension(format!("json.corrupt-{stamp}"));
        std::fs::rename(path, &kept_at)
            .map_err(|source| StoreError::Read { path: path.to_owned(), source })?;
        tracing::error!(path = %path.display(), kept_at = %kept_at.display(), "state file unreadable: {problem}");
        Ok((StateStore::empty(path), Some(Recovered { kept_at, problem })))
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record of `account`, if any.
    pub fn account(&self, account: &AccountId) -> Option<&AccountRecord> {
        self.data.accounts.get(account.as_str())
    }

    /// The record of `account`, created empty if needed.
    pub fn account_mut(&mut self, account: &AccountId) -> &mut AccountRecord {
        self.data.accounts.entry(account.as_str().to_owned()).or_default()
    }

    /// Forgets every account not in `keep` (removed from the config).
    /// Returns whether any was forgotten.
    pub fn retain_accounts(&mut self, keep: &[AccountId]) -> bool {
        let before = self.data.accounts.len();
        self.data.accounts.retain(|id, _| keep.iter().any(|k| k.as_str() == id));
        self.data.accounts.len() != before
    }

    /// Items held back from toasts, per source, since the last digest.
    pub fn held(&self) -> &BTreeMap<Source, u32> {
        &self.data.held
    }

    /// Counts `n` more items of `source` held back.
    pub fn hold(&mut self, source: Source, n: u32) {
        *self.data.held.entry(source).or_default() += n;
    }

    /// Empties the held counts, returning them.
    pub fn take_held(&mut self) -> BTreeMap<Source, u32> {
        std::mem::take(&mut self.data.held)
    }

    /// Until when notifications are paused.
    pub fn paused_until(&self) -> Option<Timestamp> {
        self.data.paused_until
    }

    /// Pauses notifications until `until`, or resumes them with `None`.
    pub fn set_paused_until(&mut self, until: Option<Timestamp>) {
        self.data.paused_until = until;
    }

    /// Writes the store atomically (a new file renamed over the old one),
    /// without waiting for the disk: once this returns, a crash of the app
    /// cannot lose or tear the state, since the kernel holds it. Call
    /// [`sync_to_disk`] soon after, off the hot path, so that an OS crash or
    /// a power cut cannot either.
    pub fn save(&self) -> Result<(), StoreError> {
        let write_error = |source| StoreError::Write { path: self.path.clone(), source };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let mut tmp = temp_file_for(&self.path, dir).map_err(write_error)?;
        // One write: the temp file is unbuffered, and serde_json writes
        // token by token (thousands of system calls on the announcement
        // path for a few thousand keys).
        let bytes = serde_json::to_vec(&self.data).map_err(|e| write_error(e.into()))?;
        tmp.write_all(&bytes).map_err(write_error)?;
        tmp.persist(&self.path).map_err(|e| write_error(e.error))?;
        Ok(())
    }
}

/// A new temp file for writing `path`, in `dir`: named
/// `<file name>.<random>.tmp`, so that the leftover of a crashed write can be
/// told from everything else in the folder.
fn temp_file_for(path: &Path, dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let prefix = format!("{}.", path.file_name().map_or_else(|| "state".into(), |n| n.to_string_lossy()));
    tempfile::Builder::new().prefix(&prefix).suffix(".tmp").tempfile_in(dir)
}

/// Removes the temp files of crashed writes of `path` that are older than
/// `age`. Best effort: a leftover we cannot remove costs only disk space.
fn remove_stale_temp_files(path: &Path, age: std::time::Duration) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if !(file_name.starts_with(&prefix) && file_name.ends_with(".tmp")) {
            continue;
        }
        let old = entry.metadata().and_then(|m| m.modified()).ok().and_then(|at| at.elapsed().ok()).is_some_and(|elapsed| elapsed >= age);
        if old {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %entry.path().display(), "removed the leftover of an interrupted state write"),
                Err(e) => tracing::warn!(file = %entry.path().display(), "could not remove the leftover of an interrupted state write: {e}"),
            }
        }
    }
}

/// Makes the last [`StateStore::save`] of the file at `path` durable: the
/// file's data, then the folder entry the rename changed. Blocking (tens of
/// milliseconds on a busy disk); run it off the async threads.
pub fn sync_to_disk(path: &Path) -> Result<(), StoreError> {
    let sync_error = |source| StoreError::Write { path: path.to_owned(), source };
    std::fs::File::open(path).and_then(|file| file.sync_all()).map_err(sync_error)?;
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })
            .and_then(|dir| dir.sync_all())
            .map_err(sync_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One update per key, as a push source would send them.
    fn push_one_by_one(record: &mut AccountRecord, keys: impl IntoIterator<Item = String>) {
        for key in keys {
            record.begin_update();
            record.remember(&key);
            record.forget_oldest();
        }
    }

    #[test]
    fn remembering_is_bounded_and_forgets_the_longest_unseen() {
        let mut record = AccountRecord::default();
        push_one_by_one(&mut record, (0..MAX_NOTIFIED + 10).map(|i| format!("k{i}")));
        assert!(record.remembered() <= MAX_NOTIFIED);
        assert!(!record.knows("k0"), "the longest unseen key is forgotten");
        assert!(record.knows(&format!("k{}", MAX_NOTIFIED + 9)));
        assert!(record.knows(&format!("k{}", MAX_NOTIFIED / 2)), "recent keys are still known");
    }

    #[test]
    fn a_key_reported_again_is_kept_however_many_come_after_it() {
        let mut record = AccountRecord::default();
        push_one_by_one(&mut record, ["still-unread".to_owned()]);
        for i in 0..3 * MAX_NOTIFIED {
            record.begin_update();
            record.remember(&format!("k{i}"));
            // Every sync also reports the item that stays unread.
            record.remember("still-unread");
            record.forget_oldest();
        }
        assert!(record.knows("still-unread"));
        assert!(record.remembered() <= MAX_NOTIFIED);
    }

    #[test]
    fn an_update_larger_than_the_cap_is_remembered_whole() {
        let mut record = AccountRecord::default();
        let keys: Vec<String> = (0..2 * MAX_NOTIFIED).map(|i| format!("k{i}")).collect();
        for _ in 0..2 {
            record.begin_update();
            let fresh = keys.iter().filter(|k| record.remember(k)).count();
            record.forget_oldest();
            assert_eq!(record.remembered(), keys.len());
            assert!(fresh == 0 || fresh == keys.len());
        }
        record.begin_update();
        assert_eq!(keys.iter().filter(|k| record.remember(k)).count(), 0, "a resend announces nothing");
    }

    #[test]
    fn the_leftover_of_a_crashed_write_is_removed_at_load_and_a_fresh_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let old = temp_file_for(&path, dir.path()).expect("temp file").keep().expect("keep").1;
        let fresh = temp_file_for(&path, dir.path()).expect("temp file").keep().expect("keep").1;
        let unrelated = dir.path().join("notes.tmp");
        std::fs::write(&unrelated, "mine").expect("write");
        let long_ago = std::time::SystemTime::now() - 2 * STALE_TEMP_AGE;
        for file in [&old, &unrelated] {
            std::fs::File::options().write(true).open(file).and_then(|f| f.set_modified(long_ago)).expect("age the file");
        }

        StateStore::load(&path).expect("load");

        assert!(!old.exists(), "an old leftover is removed");
        assert!(fresh.exists(), "a temp file that a live write may own stays");
        assert!(unrelated.exists(), "files that are not ours stay");
    }

    #[test]
    fn a_saved_store_loads_back_with_its_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let (mut store, recovered) = StateStore::load(&path).expect("load");
        assert!(recovered.is_none());
        let id = AccountId::new("work");
        store.account_mut(&id).remember("uid-1");
        store.account_mut(&id).unread = Some(4);
        store.save().expect("save");

        let (store, _) = StateStore::load(&path).expect("reload");
        let record = store.account(&id).expect("record");
        assert!(record.knows("uid-1"));
        assert_eq!(record.unread, Some(4));
    }
}
