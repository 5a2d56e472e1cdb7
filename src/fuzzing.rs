//! Entry points for the fuzz targets (`fuzz/`) and the parsers' property
//! tests (`tests/parsers.rs`): each takes raw bytes as a server or a disk
//! could hand them over and runs them through the parsers and the watcher
//! code that reads what the parsers give, exactly as a real run would. None
//! may panic, whatever the bytes; results are dropped.
//!
//! Not an API: hidden from the docs, and it may change with the parsers.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value;

use crate::badge::BadgeMode;
use crate::config::edit::{AccountForm, ConfigFile, NotificationsForm};
use crate::config::Config;
use crate::leantime::rpc::{self, Call};
use crate::leantime::{AuthKind, LeantimeWatcher, PollKind, ServerInfo, TasksSettings};
use crate::model::AccountId;
use crate::rocketchat::ddp::{self, ServerFrame};
use crate::rocketchat::{rest, wire, ChatSettings, RocketChatWatcher};
use crate::secrets::MemorySecrets;

/// The statuses the HTTP targets pick from with their first byte: the ones
/// the parsers treat apart, and two others.
const STATUSES: [u16; 8] = [200, 200, 401, 429, 404, 405, 500, 302];

/// A fixed "now" for the targets that compare with it: the same input
/// always takes the same path.
fn now() -> Timestamp {
    Timestamp::from_second(1_795_514_400).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Splits off the first byte (a status index) and the first line (a
/// header's value); the rest is the body.
fn http_parts(data: &[u8]) -> (u16, Option<String>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return (200, None, data) };
    let status = STATUSES[usize::from(first) % STATUSES.len()];
    match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (status, Some(String::from_utf8_lossy(&rest[..at]).into_owned()), &rest[at + 1..]),
        None => (status, None, rest),
    }
}

/// DDP frames, one per line, through one Rocket.Chat watcher: the frame
/// parser, Meteor errors, and the stream events (subscription and room
/// changes, desktop notifications) with the judging they lead to, so that
/// a sequence of frames builds up state as a live link does.
pub fn ddp_frames(data: &[u8]) {
    let watcher = RocketChatWatcher::new(
        AccountId::new("fuzz"),
        "https://chat.example.test",
        ChatSettings::default(),
        Arc::new(MemorySecrets::default()),
    );
    // A websocket text frame is valid UTF-8 (the library checks), so an
    // invalid byte says nothing more here than a replaced one.
    let text = String::from_utf8_lossy(data);
    for frame in text.split('\n') {
        match ddp::parse(frame) {
            Ok(Some(ServerFrame::Changed { collection, fields })) => {
                let _ = watcher.on_event(&collection, &fields.event_name, &fields.args);
            }
            Ok(Some(ServerFrame::Result { error: Some(error), .. } | ServerFrame::Nosub { error: Some(error), .. })) => {
                let _ = (error.code(), error.describe(), error.is_logged_out(), error.rate_limit());
            }
            Ok(Some(ServerFrame::Result { result: Some(result), .. })) => {
                let _ = result.get("id").and_then(Value::as_str);
                let _ = wire::parse_date(&result);
            }
            _ => {}
        }
    }
}

/// One Rocket.Chat REST answer: the first byte picks the status, the first
/// line is `X-RateLimit-Reset`, the rest is the body, read as every call
/// reads its own (`me`, `subscriptions.get`, `rooms.get`,
/// `chat.syncMessages`, `chat.getMessage`).
pub fn rocketchat_rest(data: &[u8]) {
    let (status, reset, body) = http_parts(data);
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let words = json.as_ref().map(rest::error_words).unwrap_or_default();
    let _ = rest::rate_limit_wait(reset.as_deref(), &words, now());
    let Ok(body) = rest::classify("fuzz", status, reset.as_deref(), json, now()) else { return };
    if let Ok(delta) = rest::subscription_delta(&body) {
        for sub in &delta.update {
            let _ = (sub.display_name(), sub.counts_for_badge(), sub.is_read(), sub.is_silenced(), sub.desktop_pref());
            let _ = sub.updated_at.map(wire::Date::iso);
        }
    }
    if let Ok(rooms) = rest::rooms(&body) {
        for message in rooms.iter().filter_map(|r| r.last_message.as_ref()) {
            let _ = (message.preview(), message.is_plain_new(), message.u.display());
        }
    }
    if let Ok(messages) = rest::synced_messages(&body) {
        for message in &messages {
            let _ = (message.preview(), message.is_plain_new(), message.ts.map(wire::Date::iso));
        }
    }
    let _ = rest::room_of_message(&body, "M");
    if let Ok(me) = rest::me(body) {
        let _ = me.services.two_factor();
    }
}

/// One Leantime JSON-RPC answer: the first byte picks the status, the
/// first line is `Retry-After`, the rest is the body. The second byte picks
/// the batch it answers (the discovery, or a poll for a server version and
/// badge setting), and the answer goes through the watcher as a poll's
/// would.
pub fn leantime_batch(data: &[u8]) {
    let shape = data.get(1).copied().unwrap_or_default();
    let (status, retry_after, body) = http_parts(data);
    let body = String::from_utf8_lossy(body);
    let assigned_tasks = [BadgeMode::Count, BadgeMode::Dot, BadgeMode::Ignore][usize::from(shape >> 4) % 3];
    let settings = TasksSettings { assigned_tasks, requests_per_minute: None };
    let watcher = LeantimeWatcher::new(
        AccountId::new("fuzz"),
        "https://pm.example.test",
        AuthKind::Token,
        settings,
        Arc::new(MemorySecrets::default()),
    );
    if shape & 1 == 0 {
        let calls = crate::leantime::discovery_calls();
        if let Ok(results) = rpc::parse_batch(status, retry_after.as_deref(), &body, calls.len()) {
            let mut results = results.into_iter();
            let _ = crate::leantime::read_version(results.next());
            let _ = crate::leantime::read_user(results.next().as_ref());
        }
        return;
    }
    let version = [None, Some((3, 8, 2)), Some((3, 9, 4)), Some((3, 9, 8))][usize::from(shape >> 1) % 4];
    let info = ServerInfo { version, user_id: 7, api_user: false };
    let kind = if shape & 8 == 0 { PollKind::Full } else { PollKind::CountOnly };
    let calls: Vec<Call> = watcher.poll_calls(&info, kind);
    if let Ok(results) = rpc::parse_batch(status, retry_after.as_deref(), &body, calls.len()) {
        let _ = watcher.update(&calls, results, Vec::new());
    }
}

/// One fetched message: the first two bytes say where the header ends
/// (big-endian, modulo the length), the rest is header then text, decoded
/// as a toast would show them. The whole input is also read as a folder
/// name in modified UTF-7.
pub fn imap_message(data: &[u8]) {
    let (split, raw) = match data {
        [high, low, raw @ ..] => (usize::from(u16::from_be_bytes([*high, *low])), raw),
        _ => (0, data),
    };
    let split = if raw.is_empty() { 0 } else { split % (raw.len() + 1) };
    let (header, text) = raw.split_at(split);
    let _ = crate::imap::message::summarize(header, text);
    let _ = crate::imap::mutf7::decode(&String::from_utf8_lossy(data));
}

/// A config file's bytes: read by the core, then opened by the settings
/// editor, which writes every account back unchanged, flips each one's
/// `enabled`, rewrites the notifications and hints, removes the first
/// account, and reads the result again.
pub fn config_file(data: &[u8]) {
    let path = Path::new("config.toml");
    // The file is read as UTF-8, and anything else refused before parsing.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = Config::parse(path, text);
    let Ok(mut file) = ConfigFile::from_text(path, text) else { return };
    let Ok(config) = parsed.or_else(|_| file.config()) else { return };
    for account in &config.accounts {
        let _ = file.upsert_account(&AccountForm::from_config(account));
        let _ = file.set_enabled(account.id.as_str(), !account.enabled);
    }
    let _ = file.set_notifications(&NotificationsForm::from(&config.notifications));
    let _ = file.set_hints(&config.hints);
    file.set_start_hidden(!config.app.start_hidden);
    if let Some(first) = config.accounts.first() {
        file.remove_account(first.id.as_str());
    }
    let _ = Config::parse(path, &file.text());
    let _ = file.config();
}
