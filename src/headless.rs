//! `--headless`: the core with no GUI, one JSON object per line on stdout.
//!
//! The line format is a public interface, documented in `docs/events.md` and
//! checked against `docs/events.schema.json` by the tests. The first line is
//! always the last known badge, written before any network.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::badge::Badge;
use crate::event::{CoreEvent, Snapshot};
use crate::model::{Connectivity, Source};

/// One line of output.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Line<'a> {
    /// A new item.
    ItemNew {
        /// When the line was written.
        at: Timestamp,
        /// Account id.
        account: &'a str,
        /// `mail`, `chat` or `tasks`.
        source: &'static str,
        /// Stable key of the item.
        key: &'a str,
        /// Headline.
        title: &'a str,
        /// Body preview.
        preview: &'a str,
        /// Sender.
        sender: &'a str,
        /// Where to open it.
        link: Option<&'a str>,
        /// When it happened on the server.
        time: Timestamp,
        /// Notifications are paused: no toast for it.
        silent: bool,
    },
    /// An item read elsewhere.
    ItemRead {
        /// When the line was written.
        at: Timestamp,
        /// Account id.
        account: &'a str,
        /// The item's key.
        key: &'a str,
    },
    /// The unified badge.
    Badge {
        /// When the line was written.
        at: Timestamp,
        /// Number of unread counted items.
        count: u32,
        /// Something new without a count.
        dot: bool,
        /// What the tray draws.
        label: String,
        /// Split by source.
        sources: BTreeMap<&'static str, BadgeLine>,
    },
    /// An account's connection state.
    Connectivity {
        /// When the line was written.
        at: Timestamp,
        /// Account id.
        account: &'a str,
        /// `mail`, `chat` or `tasks`.
        source: &'static str,
        /// The state's name.
        state: &'static str,
        /// Why, for backing-off, auth-failed and disabled.
        reason: Option<&'a str>,
        /// Next attempt, for backing-off.
        until: Option<Timestamp>,
    },
    /// Toasts were held back (paused, quiet hours) and that ended.
    Digest {
        /// When the line was written.
        at: Timestamp,
        /// New items per source while held.
        held: BTreeMap<&'static str, u32>,
    },
    /// A problem the user should know about.
    Error {
        /// When the line was written.
        at: Timestamp,
        /// Account id, if it concerns one.
        account: Option<&'a str>,
        /// Plain-words description.
        message: &'a str,
    },
}

/// A source's share of the badge.
#[derive(Debug, Serialize)]
pub struct BadgeLine {
    count: u32,
    dot: bool,
}

fn badge_line(badge: &Badge, by_source: &BTreeMap<Source, Badge>) -> Line<'static> {
    Line::Badge {
        at: Timestamp::now(),
        count: badge.count,
        dot: badge.dot,
        label: badge.label(),
        sources: by_source
            .iter()
            .map(|(s, b)| (s.as_str(), BadgeLine { count: b.count, dot: b.dot }))
            .collect(),
    }
}

/// The wire name of a connectivity state.
pub fn state_name(state: &Connectivity) -> &'static str {
    match state {
        Connectivity::Connecting => "connecting",
        Connectivity::LivePush => "live",
        Connectivity::Polling => "polling",
        Connectivity::BackingOff { .. } => "backing-off",
        Connectivity::RateLimited { .. } => "rate-limited",
        Connectivity::NeedsAttention { .. } => "needs-attention",
        Connectivity::AuthFailed { .. } => "auth-failed",
        Connectivity::Disabled { .. } => "disabled",
    }
}

/// Renders one event as JSON lines (a burst of items gives one line each).
pub fn lines(event: &CoreEvent) -> Vec<String> {
    let at = Timestamp::now();
    let render = |line: &Line<'_>| serde_json::to_string(line).unwrap_or_default();
    match event {
        CoreEvent::NewItems { account, items, silent, .. } => items
            .iter()
            .map(|item| {
                render(&Line::ItemNew {
                    at,
                    account: account.as_str(),
                    source: item.source.as_str(),
                    key: &item.key,
                    title: &item.title,
                    preview: &item.preview,
                    sender: &item.sender,
                    link: item.link.as_deref(),
                    time: item.time,
                    silent: *silent,
                })
            })
            .collect(),
        CoreEvent::ItemRead { account, key } => {
            vec![render(&Line::ItemRead { at, account: account.as_str(), key })]
        }
        CoreEvent::Badge { badge, by_source } => vec![render(&badge_line(badge, by_source))],
        CoreEvent::Connectivity { account, source, state } => {
            let (reason, until) = match state {
                Connectivity::BackingOff { reason, until } => (Some(reason.as_str()), Some(*until)),
                Connectivity::AuthFailed { reason } | Connectivity::NeedsAttention { reason } => {
                    (Some(reason.as_str()), None)
                }
                Connectivity::RateLimited { until } => (None, Some(*until)),
                Connectivity::Disabled { reason } => (reason.as_deref(), None),
                _ => (None, None),
            };
            vec![render(&Line::Connectivity {
                at,
                account: account.as_str(),
                source: source.as_str(),
                state: state_name(state),
                reason,
                until,
            })]
        }
        CoreEvent::Digest { held } => {
            vec![render(&Line::Digest { at, held: held.iter().map(|(s, n)| (s.as_str(), *n)).collect() })]
        }
        CoreEvent::Error { account, message } => {
            vec![render(&Line::Error { at, account: account.as_ref().map(|a| a.as_str()), message })]
        }
    }
}

/// Writes the snapshot's badge, then every event, until the event stream
/// ends or `shutdown` resolves. A closed stdout ends the loop quietly. Each
/// event is also handed to `seen` (the control channel's subscribers).
pub async fn write_events<W: AsyncWrite + Unpin>(
    initial: &Snapshot,
    mut events: mpsc::Receiver<CoreEvent>,
    mut out: W,
    seen: impl Fn(&CoreEvent),
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let first = serde_json::to_string(&badge_line(&initial.badge, &initial.by_source)).unwrap_or_default();
    write_line(&mut out, &first).await?;
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            () = &mut shutdown => return Ok(()),
            event = events.recv() => match event {
                Some(event) => event,
                None => return Ok(()),
            },
        };
        seen(&event);
        for line in lines(&event) {
            match write_line(&mut out, &line).await {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other?,
            }
        }
    }
}

async fn write_line<W: AsyncWrite + Unpin>(out: &mut W, line: &str) -> std::io::Result<()> {
    out.write_all(line.as_bytes()).await?;
    out.write_all(b"\n").await?;
    out.flush().await
}
