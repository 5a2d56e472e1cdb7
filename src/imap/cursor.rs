//! The IMAP cursor: per folder, its UIDVALIDITY and the highest UID already
//! looked at, and the UIDs announced and still unread. Saved by the core
//! with the dedup state after every update, so "new since last time"
//! survives restarts exactly, and mail announced before a restart and read
//! elsewhere meanwhile is reported read after it.
//!
//! Encoded as JSON (`{"v":1,"folders":{"INBOX":[1795504229,42]},
//! "announced":{"INBOX":[1795504229,[41,42]]}}`): folder names may contain
//! any character. An unreadable cursor reads as empty, which means a silent
//! re-baseline, never a flood of toasts.

use std::collections::{BTreeMap, BTreeSet};

/// Where one folder was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The folder's UIDVALIDITY when `highest` was seen.
    pub uidvalidity: u32,
    /// The highest UID looked at (announced or baselined).
    pub highest: u32,
}

/// Marks by folder name.
pub type Marks = BTreeMap<String, Mark>;

/// Per folder: its UIDVALIDITY and the UIDs announced that were still
/// unseen at the last sync (the newest [`ANNOUNCED_KEPT`]).
pub type Announced = BTreeMap<String, (u32, BTreeSet<u32>)>;

/// Announced-and-unread UIDs kept per folder.
pub const ANNOUNCED_KEPT: usize = 200;

/// Everything the cursor holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Where each folder was left.
    pub marks: Marks,
    /// What was announced and not yet read, per folder.
    pub announced: Announced,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    v: u32,
    folders: BTreeMap<String, (u32, u32)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    announced: BTreeMap<String, (u32, BTreeSet<u32>)>,
}

/// Reads a cursor; anything unreadable is "nothing known".
pub fn decode(cursor: Option<&str>) -> Cursor {
    let Some(text) = cursor else { return Cursor::default() };
    match serde_json::from_str::<Wire>(text) {
        Ok(wire) if wire.v == 1 => Cursor {
            marks: wire.folders.into_iter().map(|(name, (uidvalidity, highest))| (name, Mark { uidvalidity, highest })).collect(),
            announced: wire.announced,
        },
        _ => Cursor::default(),
    }
}

/// Writes a cursor.
pub fn encode(cursor: &Cursor) -> String {
    let wire = Wire {
        v: 1,
        folders: cursor.marks.iter().map(|(name, m)| (name.clone(), (m.uidvalidity, m.highest))).collect(),
        announced: cursor.announced.iter().filter(|(_, (_, uids))| !uids.is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

/// A compact IMAP sequence set for `uids` (`1:3,7,9:10`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_folders_with_any_name() {
        let mut cursor = Cursor::default();
        cursor.marks.insert("INBOX".into(), Mark { uidvalidity: 1_795_504_229, highest: 42 });
        cursor.marks.insert("Work/\"Q3\": plans".into(), Mark { uidvalidity: 7, highest: 0 });
        cursor.announced.insert("INBOX".into(), (1_795_504_229, [41, 42].into_iter().collect()));
        assert_eq!(decode(Some(&encode(&cursor))), cursor);
    }

    #[test]
    fn a_cursor_without_announced_uids_still_reads() {
        let cursor = decode(Some(r#"{"v":1,"folders":{"INBOX":[5,9]}}"#));
        assert_eq!(cursor.marks.get("INBOX"), Some(&Mark { uidvalidity: 5, highest: 9 }));
        assert!(cursor.announced.is_empty());
    }

    #[test]
    fn an_unreadable_cursor_means_nothing_is_known() {
        for bad in ["", "n42", "{\"v\":2,\"folders\":{}}", "{\"v\":1,\"folders\":{\"INBOX\":[1]}}"] {
            assert_eq!(decode(Some(bad)), Cursor::default(), "{bad}");
        }
        assert_eq!(decode(None), Cursor::default());
    }

    #[test]
    fn uid_sets_are_compact() {
        let cases: [(&[u32], &str); 5] =
            [(&[], ""), (&[5], "5"), (&[3, 1, 2], "1:3"), (&[1, 2, 3, 7, 9, 10], "1:3,7,9:10"), (&[4, 4, 5], "4:5")];
        for (uids, set) in cases {
            assert_eq!(uid_set(uids), set, "{uids:?}");
        }
    }
}
