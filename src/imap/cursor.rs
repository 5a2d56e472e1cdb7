//! The IMAP cursor: per folder, its UIDVALIDITY and the highest UID already
//! looked at. Saved by the core with the dedup state after every update, so
//! "new since last time" survives restarts exactly.
//!
//! Encoded as JSON (`{"v":1,"folders":{"INBOX":[1795504229,42]}}`): folder
//! names may contain any character. An unreadable cursor reads as empty,
//! which means a silent re-baseline, never a flood of toasts.

use std::collections::BTreeMap;

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

#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    v: u32,
    folders: BTreeMap<String, (u32, u32)>,
}

/// Reads a cursor; anything unreadable is "nothing known".
pub fn decode(cursor: Option<&str>) -> Marks {
    let Some(text) = cursor else { return Marks::new() };
    match serde_json::from_str::<Wire>(text) {
        Ok(wire) if wire.v == 1 => {
            wire.folders.into_iter().map(|(name, (uidvalidity, highest))| (name, Mark { uidvalidity, highest })).collect()
        }
        _ => Marks::new(),
    }
}

/// Writes a cursor.
pub fn encode(marks: &Marks) -> String {
    let wire = Wire { v: 1, folders: marks.iter().map(|(name, m)| (name.clone(), (m.uidvalidity, m.highest))).collect() };
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
        let mut marks = Marks::new();
        marks.insert("INBOX".into(), Mark { uidvalidity: 1_795_504_229, highest: 42 });
        marks.insert("Work/\"Q3\": plans".into(), Mark { uidvalidity: 7, highest: 0 });
        assert_eq!(decode(Some(&encode(&marks))), marks);
    }

    #[test]
    fn an_unreadable_cursor_means_nothing_is_known() {
        for bad in ["", "n42", "{\"v\":2,\"folders\":{}}", "{\"v\":1,\"folders\":{\"INBOX\":[1]}}"] {
            assert!(decode(Some(bad)).is_empty(), "{bad}");
        }
        assert!(decode(None).is_empty());
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
