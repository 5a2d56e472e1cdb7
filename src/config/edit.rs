//! Changing the config file from the settings window, keeping what the user
//! wrote.
//!
//! Edits go through `toml_edit`, so comments, blank lines, key order and
//! every setting the window does not show survive a save. Invariants:
//! - a form owns only the keys it shows; a key at its default is removed
//!   rather than written, so the file stays short; any other key is left
//!   exactly as it was;
//! - [`ConfigFile::save`] never writes a file that [`Config::parse`] would
//!   refuse: the new text is parsed first, and the old file stays otherwise;
//! - the file is replaced atomically (a sibling file renamed over it), so a
//!   crash or a full disk leaves either the old or the new file, whole;
//! - nothing here ever holds a secret: passwords and tokens go to the
//!   keyring, never into a form that is written here.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use super::{AccountConfig, Config, ConfigError, HintRule, MIN_POLL_INTERVAL, Notifications};
use crate::badge::BadgeMode;
use crate::imap::tls::Fingerprint;
use crate::imap::{MailAuth, MailSettings, TlsMode};
use crate::leantime::AuthKind;
use crate::model::Source;
use crate::pause::{QuietHours, RawQuietHours};
use crate::rocketchat::{OpenIn, RoomPreference};

/// Longest poll interval a form accepts: the file's own limit.
const MAX_POLL_SECS: u64 = super::MAX_POLL_INTERVAL.as_secs();

/// The config file, loaded for editing.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    doc: DocumentMut,
}

/// Why a change could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file exists but could not be read.
    #[error("could not read the config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not TOML, or its accounts are not written as
    /// `[[account]]` tables: it must be fixed by hand first.
    #[error("the config file {} cannot be changed from here until it is fixed: {message}", .path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        message: String,
    },
    /// Some fields of a form are not acceptable.
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Fields(Vec<FieldError>),
    /// No account has this id.
    #[error("there is no account \"{0}\" in the config file")]
    UnknownAccount(String),
    /// The edited file would not be a valid config (a setting the form does
    /// not show is wrong): nothing was written.
    #[error("the change was not saved: {0}")]
    Invalid(ConfigError),
    /// The new file could not be written; the old one is unchanged.
    #[error("could not write the config file {}: {source}. Nothing was changed", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// One field of a form that is not acceptable, for inline validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The form field, as the form names it (`server`, `mail.port`, …).
    pub field: String,
    /// What is wrong, for the user.
    pub message: String,
}

/// An account as the settings window edits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountForm {
    /// Empty for a new account: one is made from the name.
    pub id: String,
    /// What the user calls it.
    pub name: String,
    /// The kind of service.
    pub source: Source,
    /// Off: not watched.
    pub enabled: bool,
    /// How it counts in the badge.
    pub badge: BadgeMode,
    /// Mail: the host name; chat and tasks: the base URL.
    pub server: String,
    /// Mail: the login name.
    #[serde(default)]
    pub username: String,
    /// Polled sources: seconds between two looks.
    #[serde(default)]
    pub poll_interval_secs: Option<u64>,
    /// Mail settings (for mail accounts).
    #[serde(default)]
    pub mail: Option<MailForm>,
    /// Chat settings (for chat accounts).
    #[serde(default)]
    pub chat: Option<ChatForm>,
    /// Leantime settings (for tasks accounts).
    #[serde(default)]
    pub tasks: Option<TasksForm>,
}

/// The mail part of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailForm {
    /// None: the default for the TLS mode.
    pub port: Option<u16>,
    /// How the connection is secured.
    pub tls: TlsMode,
    /// Allow no TLS to a loopback server.
    pub allow_plaintext_on_loopback: bool,
    /// Folders to watch.
    pub folders: Vec<String>,
    /// How it signs in.
    pub auth: MailAuth,
    /// A self-signed certificate's SHA-256, as the probe showed it.
    pub pinned_fingerprint: Option<String>,
    /// Where "Open" goes.
    pub webmail_link: Option<String>,
}

/// The chat part of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatForm {
    /// The user id shown next to the personal access token.
    pub user_id: Option<String>,
    /// Where "Open" takes the user.
    pub open_in: OpenIn,
    /// Toast every message of every room that is not muted.
    pub notify_all_messages: bool,
    /// Per-room choices by room name, replacing the server's preference.
    #[serde(default)]
    pub rooms: BTreeMap<String, RoomPreference>,
}

/// The Leantime part of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TasksForm {
    /// Signs in with a personal token (`token`) or an API key (`api-key`).
    pub auth: TasksAuth,
    /// How newly assigned tasks show.
    pub assigned_tasks: BadgeMode,
    /// The server's API rate limit, when its admin changed it.
    pub requests_per_minute: Option<u32>,
}

/// [`AuthKind`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TasksAuth {
    /// A personal access token.
    Token,
    /// An API key.
    ApiKey,
}

impl From<AuthKind> for TasksAuth {
    fn from(kind: AuthKind) -> Self {
        match kind {
            AuthKind::Token => TasksAuth::Token,
            AuthKind::ApiKey => TasksAuth::ApiKey,
        }
    }
}

impl From<TasksAuth> for AuthKind {
    fn from(kind: TasksAuth) -> Self {
        match kind {
            TasksAuth::Token => AuthKind::Token,
            TasksAuth::ApiKey => AuthKind::ApiKey,
        }
    }
}

/// The notification options as the settings window edits them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsForm {
    /// Show sender and preview in toasts.
    pub previews: bool,
    /// More new items than this at once become one summary toast.
    pub burst_threshold: u32,
    /// Play the platform's notification sound.
    pub sound: bool,
    /// Daily quiet hours, "HH:MM" to "HH:MM"; `None`: none.
    pub quiet_hours: Option<RawQuietHours>,
}

/// A cross-source refresh rule as the settings window edits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HintForm {
    /// Source whose items are looked at.
    pub from: Source,
    /// Case-insensitive substring of the sender.
    pub sender_contains: String,
    /// Source to refresh.
    pub refresh: Source,
}

impl From<&HintRule> for HintForm {
    fn from(h: &HintRule) -> Self {
        HintForm { from: h.from, sender_contains: h.sender_contains.clone(), refresh: h.refresh }
    }
}

impl From<&HintForm> for HintRule {
    fn from(h: &HintForm) -> Self {
        HintRule { from: h.from, sender_contains: h.sender_contains.clone(), refresh: h.refresh }
    }
}

impl From<&Notifications> for NotificationsForm {
    fn from(n: &Notifications) -> Self {
        NotificationsForm {
            previews: n.previews,
            burst_threshold: n.burst_threshold,
            sound: n.sound,
            quiet_hours: n.quiet_hours.map(RawQuietHours::from),
        }
    }
}

impl AccountForm {
    /// The form of an existing account.
    pub fn from_config(account: &AccountConfig) -> AccountForm {
        let mail = (account.source == Source::Mail).then(|| {
            let m = account.mail.clone().unwrap_or_default();
            MailForm {
                port: m.port,
                tls: m.tls,
                allow_plaintext_on_loopback: m.allow_plaintext_on_loopback,
                folders: m.folders,
                auth: m.auth,
                pinned_fingerprint: m.pinned_fingerprint,
                webmail_link: m.webmail_link,
            }
        });
        let chat = (account.source == Source::Chat).then(|| ChatForm {
            user_id: account.chat.user_id.clone(),
            open_in: account.chat.open_in,
            notify_all_messages: account.chat.notify_all_messages,
            rooms: account.chat.rooms.clone(),
        });
        let tasks = (account.source == Source::Tasks).then(|| TasksForm {
            auth: account.auth.into(),
            assigned_tasks: account.tasks.assigned_tasks,
            requests_per_minute: account.tasks.requests_per_minute,
        });
        AccountForm {
            id: account.id.to_string(),
            name: account.name.clone(),
            source: account.source,
            enabled: account.enabled,
            badge: account.badge,
            server: account.server.clone().unwrap_or_default(),
            username: account.username.clone().unwrap_or_default(),
            poll_interval_secs: (account.source == Source::Tasks).then_some(account.poll_interval.as_secs()),
            mail,
            chat,
            tasks,
        }
    }

    /// The keyring entry that the secret typed into this form goes to.
    pub fn secret_name(&self) -> &'static str {
        match self.source {
            Source::Mail => match self.mail.as_ref().map_or(MailAuth::Password, |m| m.auth) {
                MailAuth::Password => crate::imap::PASSWORD_SECRET,
                MailAuth::Xoauth2 | MailAuth::Oauthbearer => crate::imap::REFRESH_TOKEN_SECRET,
            },
            Source::Chat => crate::rocketchat::TOKEN_SECRET,
            Source::Tasks => AuthKind::from(self.tasks.as_ref().map_or(TasksAuth::Token, |t| t.auth)).secret_name(),
        }
    }

    /// Checks every field; all problems at once, for inline validation.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError { field: field.to_owned(), message: message.to_owned() });
        };
        if self.name.trim().is_empty() {
            bad("name", "give the account a name");
        } else if self.name.chars().count() > 80 {
            bad("name", "keep the name under 80 characters");
        }
        let server = self.server.trim();
        match self.source {
            Source::Mail => {
                if server.is_empty() {
                    bad("server", "enter the IMAP server's host name, e.g. imap.example.com");
                } else if server.contains("://") || server.contains('/') || server.contains(char::is_whitespace) {
                    bad("server", "enter only the host name, e.g. imap.example.com (the port has its own field)");
                }
                let mail = self.mail.clone().unwrap_or_else(|| MailForm::from_settings(&MailSettings::default()));
                if mail.auth == MailAuth::Password && self.username.trim().is_empty() {
                    bad("username", "enter the name you sign in with, often your address");
                }
                if mail.port == Some(0) {
                    bad("mail.port", "a port is a number from 1 to 65535");
                }
                if mail.folders.iter().all(|f| f.trim().is_empty()) {
                    bad("mail.folders", "choose at least one folder to watch");
                }
                if let Some(fp) = mail.pinned_fingerprint.as_deref().filter(|f| !f.trim().is_empty())
                    && Fingerprint::parse(fp).is_none()
                {
                    bad("mail.pinnedFingerprint", "a SHA-256 fingerprint is 32 pairs of hex digits, e.g. AB:CD:…");
                }
                if let Some(link) = mail.webmail_link.as_deref().filter(|l| !l.trim().is_empty())
                    && !is_web_url(link)
                {
                    bad("mail.webmailLink", "enter a web address starting with https:// or http://");
                }
            }
            Source::Chat | Source::Tasks => {
                if server.is_empty() {
                    bad("server", "enter the server's address, e.g. https://chat.example.com");
                } else if !is_web_url(server) {
                    bad("server", "enter a web address starting with https:// (or http:// for a local server)");
                }
            }
        }
        if let Source::Chat = self.source
            && let Some(id) = self.chat.as_ref().and_then(|c| c.user_id.as_deref()).filter(|id| !id.trim().is_empty())
            && !id.trim().chars().all(|c| c.is_ascii_alphanumeric())
        {
            bad("chat.userId", "the user id is letters and digits only, as shown next to the token");
        }
        if let Source::Tasks = self.source {
            if let Some(secs) = self.poll_interval_secs
                && !(MIN_POLL_INTERVAL.as_secs()..=MAX_POLL_SECS).contains(&secs)
            {
                bad("pollIntervalSecs", &format!("choose between {} seconds and a day", MIN_POLL_INTERVAL.as_secs()));
            }
            if let Some(rate) = self.tasks.as_ref().and_then(|t| t.requests_per_minute)
                && !(1..=10_000).contains(&rate)
            {
                bad("tasks.requestsPerMinute", "choose between 1 and 10000 requests a minute");
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

impl MailForm {
    fn from_settings(m: &MailSettings) -> MailForm {
        MailForm {
            port: m.port,
            tls: m.tls,
            allow_plaintext_on_loopback: m.allow_plaintext_on_loopback,
            folders: m.folders.clone(),
            auth: m.auth,
            pinned_fingerprint: m.pinned_fingerprint.clone(),
            webmail_link: m.webmail_link.clone(),
        }
    }
}

fn is_web_url(text: &str) -> bool {
    reqwest::Url::parse(text.trim())
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty()))
}

impl ConfigFile {
    /// Reads `path` for editing; a missing file is an empty one.
    pub fn open(path: &Path) -> Result<ConfigFile, EditError> {
        let text = match super::read_text(path) {
            Ok(text) => text.unwrap_or_default(),
            Err(ConfigError::Read { path, source }) => return Err(EditError::Read { path, source }),
            Err(ConfigError::TooLarge { path, limit }) => {
                return Err(EditError::Unusable { path, message: format!("it is larger than {} KiB, so it cannot be a config file", limit / 1024) });
            }
            Err(e) => return Err(EditError::Unusable { path: path.to_owned(), message: e.to_string() }),
        };
        ConfigFile::from_text(path, &text)
    }

    /// The file at `path` whose text is `text`, for editing; nothing is
    /// read.
    pub(crate) fn from_text(path: &Path, text: &str) -> Result<ConfigFile, EditError> {
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| EditError::Unusable {
            path: path.to_owned(),
            // Not the error's Display: it quotes the line, which may hold a
            // password typed into this file by mistake.
            message: match e.span() {
                Some(span) => format!("line {}: {}", super::line_of(text, span.start), e.message()),
                None => e.message().to_owned(),
            },
        })?;
        if doc.get("account").is_some_and(|a| a.as_array_of_tables().is_none()) {
            return Err(EditError::Unusable {
                path: path.to_owned(),
                message: "the accounts must be written as [[account]] tables".to_owned(),
            });
        }
        Ok(ConfigFile { path: path.to_owned(), doc })
    }

    /// The file as it is now, validated.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::parse(&self.path, &self.doc.to_string())
    }

    /// The text as it would be saved.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    fn accounts(&self) -> impl Iterator<Item = &Table> {
        self.doc.get("account").and_then(Item::as_array_of_tables).into_iter().flat_map(ArrayOfTables::iter)
    }

    fn ids(&self) -> BTreeSet<String> {
        self.accounts().filter_map(|t| t.get("id").and_then(Item::as_str)).map(str::to_owned).collect()
    }

    fn account_mut(&mut self, id: &str) -> Option<&mut Table> {
        self.doc
            .get_mut("account")
            .and_then(Item::as_array_of_tables_mut)?
            .iter_mut()
            .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
    }

    /// Adds the account of `form` (empty id: a new one, named from the form's
    /// name) or changes the existing one with its id. Returns the id.
    pub fn upsert_account(&mut self, form: &AccountForm) -> Result<String, EditError> {
        form.validate().map_err(EditError::Fields)?;
        let id = if form.id.is_empty() {
            fresh_id(&form.name, form.source, &self.ids())
        } else if self.ids().contains(&form.id) {
            form.id.clone()
        } else {
            return Err(EditError::UnknownAccount(form.id.clone()));
        };
        let table = match self.account_mut(&id) {
            Some(table) => table,
            None => {
                let accounts = self
                    .doc
                    .entry("account")
                    .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
                    .as_array_of_tables_mut()
                    .ok_or_else(|| EditError::Unusable {
                        path: self.path.clone(),
                        message: "the accounts must be written as [[account]] tables".to_owned(),
                    })?;
                let mut table = Table::new();
                table.insert("id", toml_edit::value(id.as_str()));
                table.insert("source", toml_edit::value(form.source.as_str()));
                accounts.push(table);
                let last = accounts.len() - 1;
                accounts.get_mut(last).ok_or_else(|| EditError::UnknownAccount(id.clone()))?
            }
        };
        write_account(table, form);
        Ok(id)
    }

    /// Removes an account. Returns whether it existed.
    pub fn remove_account(&mut self, id: &str) -> bool {
        let Some(accounts) = self.doc.get_mut("account").and_then(Item::as_array_of_tables_mut) else { return false };
        let before = accounts.len();
        accounts.retain(|t| t.get("id").and_then(Item::as_str) != Some(id));
        let removed = accounts.len() != before;
        if accounts.is_empty() {
            self.doc.remove("account");
        }
        removed
    }

    /// Turns an account on or off.
    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> Result<(), EditError> {
        let table = self.account_mut(id).ok_or_else(|| EditError::UnknownAccount(id.to_owned()))?;
        put(table, "enabled", (!enabled).then_some(Value::from(false)));
        Ok(())
    }

    /// Sets the notification options.
    pub fn set_notifications(&mut self, form: &NotificationsForm) -> Result<(), EditError> {
        if !(1..=1000).contains(&form.burst_threshold) {
            return Err(EditError::Fields(vec![FieldError {
                field: "burstThreshold".to_owned(),
                message: "choose between 1 and 1000".to_owned(),
            }]));
        }
        let quiet = match form.quiet_hours.clone().map(QuietHours::try_from).transpose() {
            Ok(quiet) => quiet,
            Err(message) => {
                return Err(EditError::Fields(vec![FieldError { field: "quietHours".to_owned(), message }]));
            }
        };
        let defaults = Notifications::default();
        let table = sub_table(self.doc.as_table_mut(), "notifications");
        match quiet.map(RawQuietHours::from) {
            Some(q) => {
                let t = sub_table(table, "quiet_hours");
                put(t, "from", Some(Value::from(q.from)));
                put(t, "to", Some(Value::from(q.to)));
            }
            None => {
                table.remove("quiet_hours");
            }
        }
        put(table, "previews", (form.previews != defaults.previews).then_some(Value::from(form.previews)));
        put(
            table,
            "burst_threshold",
            (form.burst_threshold != defaults.burst_threshold).then_some(Value::from(i64::from(form.burst_threshold))),
        );
        put(table, "sound", (form.sound != defaults.sound).then_some(Value::from(form.sound)));
        prune(self.doc.as_table_mut(), "notifications");
        Ok(())
    }

    /// Sets whether the app starts in the tray only.
    pub fn set_start_hidden(&mut self, hidden: bool) {
        let table = sub_table(self.doc.as_table_mut(), "app");
        put(table, "start_hidden", (!hidden).then_some(Value::from(false)));
        prune(self.doc.as_table_mut(), "app");
    }

    /// Replaces the cross-source hint rules.
    pub fn set_hints(&mut self, hints: &[HintRule]) -> Result<(), EditError> {
        let errors: Vec<FieldError> = hints
            .iter()
            .enumerate()
            .filter(|(_, h)| h.sender_contains.trim().is_empty())
            .map(|(i, _)| FieldError { field: format!("hints.{i}.senderContains"), message: "enter part of the sender".to_owned() })
            .collect();
        if !errors.is_empty() {
            return Err(EditError::Fields(errors));
        }
        let mut rules = ArrayOfTables::new();
        for hint in hints {
            let mut table = Table::new();
            table.insert("from", toml_edit::value(hint.from.as_str()));
            table.insert("sender_contains", toml_edit::value(hint.sender_contains.trim()));
            table.insert("refresh", toml_edit::value(hint.refresh.as_str()));
            rules.push(table);
        }
        if rules.is_empty() {
            self.doc.remove("hint");
        } else {
            self.doc.insert("hint", Item::ArrayOfTables(rules));
        }
        Ok(())
    }

    /// Writes the file, after checking that the result is a valid config,
    /// and returns that config.
    pub fn save(&self) -> Result<Config, EditError> {
        let text = self.doc.to_string();
        let config = Config::parse(&self.path, &text).map_err(EditError::Invalid)?;
        let write_error = |source| EditError::Write { path: self.path.clone(), source };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
        if let Ok(meta) = std::fs::metadata(&self.path) {
            // Keep the file's permissions (it may have been made private).
            let _ = tmp.as_file().set_permissions(meta.permissions());
        }
        tmp.write_all(text.as_bytes()).map_err(write_error)?;
        tmp.as_file().sync_all().map_err(write_error)?;
        tmp.persist(&self.path).map_err(|e| write_error(e.error))?;
        tracing::info!(path = %self.path.display(), "config file saved");
        Ok(config)
    }
}

/// A new account id from its name: lower-case letters, digits and dashes,
/// unique among `taken`.
fn fresh_id(name: &str, source: Source, taken: &BTreeSet<String>) -> String {
    let mut base = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            base.push(c);
        } else if !base.is_empty() && !base.ends_with('-') {
            base.push('-');
        }
    }
    let base = base.trim_end_matches('-').chars().take(40).collect::<String>();
    let base = if base.is_empty() { source.as_str().to_owned() } else { base };
    let mut id = base.clone();
    let mut n = 2;
    while taken.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

fn write_account(table: &mut Table, form: &AccountForm) {
    let text = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| Value::from(s))
    };
    let id = table.get("id").and_then(Item::as_str).unwrap_or_default().to_owned();
    // Without a name the id is the name: leave it out then.
    put(table, "name", (form.name.trim() != id).then(|| Value::from(form.name.trim())));
    put(table, "enabled", (!form.enabled).then_some(Value::from(false)));
    put(table, "badge", (form.badge != BadgeMode::Count).then(|| Value::from(badge_name(form.badge))));
    put(table, "server", text(&form.server));
    match form.source {
        Source::Mail => {
            put(table, "username", text(&form.username));
            let defaults = MailSettings::default();
            let mail = form.mail.clone().unwrap_or_else(|| MailForm::from_settings(&defaults));
            let m = sub_table(table, "mail");
            let folders: Vec<&str> = mail.folders.iter().map(|f| f.trim()).filter(|f| !f.is_empty()).collect();
            put(m, "folders", (folders != defaults.folders).then(|| Value::Array(folders.iter().copied().collect())));
            put(m, "port", mail.port.map(|p| Value::from(i64::from(p))));
            put(m, "tls", (mail.tls != defaults.tls).then(|| Value::from(tls_name(mail.tls))));
            put(m, "allow_plaintext_on_loopback", mail.allow_plaintext_on_loopback.then_some(Value::from(true)));
            put(m, "auth", (mail.auth != defaults.auth).then(|| Value::from(mail_auth_name(mail.auth))));
            put(m, "pinned_fingerprint", mail.pinned_fingerprint.as_deref().and_then(text));
            put(m, "webmail_link", mail.webmail_link.as_deref().and_then(text));
            prune(table, "mail");
        }
        Source::Chat => {
            let chat = form.chat.clone().unwrap_or(ChatForm {
                user_id: None,
                open_in: OpenIn::Browser,
                notify_all_messages: false,
                rooms: BTreeMap::new(),
            });
            let c = sub_table(table, "chat");
            put(c, "user_id", chat.user_id.as_deref().and_then(text));
            put(c, "open_in", (chat.open_in != OpenIn::Browser).then(|| Value::from(open_in_name(chat.open_in))));
            put(c, "notify_all_messages", chat.notify_all_messages.then_some(Value::from(true)));
            let rooms = sub_table(c, "rooms");
            let gone: Vec<String> = rooms.iter().map(|(k, _)| k.to_owned()).filter(|k| !chat.rooms.contains_key(k)).collect();
            for key in gone {
                rooms.remove(&key);
            }
            for (room, choice) in &chat.rooms {
                put(rooms, room, Some(Value::from(room_name(*choice))));
            }
            prune(c, "rooms");
            prune(table, "chat");
        }
        Source::Tasks => {
            let tasks =
                form.tasks.clone().unwrap_or(TasksForm { auth: TasksAuth::Token, assigned_tasks: BadgeMode::Count, requests_per_minute: None });
            put(table, "auth", (tasks.auth == TasksAuth::ApiKey).then(|| Value::from("api-key")));
            let interval = form.poll_interval_secs.filter(|&s| s != super::DEFAULT_POLL_INTERVAL.as_secs());
            put(table, "poll_interval_secs", interval.map(|s| Value::from(i64::try_from(s).unwrap_or(i64::MAX))));
            let t = sub_table(table, "tasks");
            put(t, "assigned_tasks", (tasks.assigned_tasks != BadgeMode::Count).then(|| Value::from(badge_name(tasks.assigned_tasks))));
            put(t, "requests_per_minute", tasks.requests_per_minute.map(|r| Value::from(i64::from(r))));
            prune(table, "tasks");
        }
    }
}

/// Sets `key` to `value` (keeping the comments around an existing value),
/// or removes it when `value` is `None`.
fn put(table: &mut Table, key: &str, value: Option<Value>) {
    match value {
        Some(mut value) => match table.get_mut(key).and_then(Item::as_value_mut) {
            Some(old) => {
                *value.decor_mut() = old.decor().clone();
                *old = value;
            }
            None => {
                table.insert(key, Item::Value(value));
            }
        },
        None => {
            table.remove(key);
        }
    }
}

fn sub_table<'a>(table: &'a mut Table, key: &str) -> &'a mut Table {
    let item = table.entry(key).or_insert_with(|| {
        let mut t = Table::new();
        // Rendered as its own `[account.mail]` header, not inline.
        t.set_implicit(false);
        Item::Table(t)
    });
    if item.as_table().is_none() {
        // An inline table (`mail = { … }`): edit it as a normal one.
        let taken = std::mem::take(item);
        *item = match taken.into_table() {
            Ok(t) => Item::Table(t),
            Err(_) => Item::Table(Table::new()),
        };
    }
    match item.as_table_mut() {
        Some(t) => t,
        None => unreachable!("made a table just above"),
    }
}

/// Removes `table[key]` when nothing is left in it.
fn prune(table: &mut Table, key: &str) {
    if table.get(key).and_then(Item::as_table).is_some_and(Table::is_empty) {
        table.remove(key);
    }
}

fn badge_name(mode: BadgeMode) -> &'static str {
    match mode {
        BadgeMode::Count => "count",
        BadgeMode::Dot => "dot",
        BadgeMode::Ignore => "ignore",
    }
}

fn tls_name(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Implicit => "implicit",
        TlsMode::Starttls => "starttls",
        TlsMode::None => "none",
    }
}

fn mail_auth_name(auth: MailAuth) -> &'static str {
    match auth {
        MailAuth::Password => "password",
        MailAuth::Xoauth2 => "xoauth2",
        MailAuth::Oauthbearer => "oauthbearer",
    }
}

fn room_name(choice: RoomPreference) -> &'static str {
    match choice {
        RoomPreference::All => "all",
        RoomPreference::Mentions => "mentions",
        RoomPreference::Nothing => "nothing",
    }
}

fn open_in_name(open_in: OpenIn) -> &'static str {
    match open_in {
        OpenIn::Browser => "browser",
        OpenIn::DesktopApp => "desktop-app",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAND_WRITTEN: &str = r#"# My accounts — written by hand.

[notifications]
previews = false # private mode at work

# The work mailbox.
[[account]]
id = "work-mail"
source = "mail"
server = "imap.example.com" # the new server since May
username = "me@example.com"

[account.mail]
folders = ["INBOX", "Projects"]
idle_reissue_secs = 1200 # the firewall drops idle links after 25 min

[[account]]
id = "team"
source = "chat"
server = "https://chat.example.com"
"#;

    fn open(text: &str) -> (tempfile::TempDir, ConfigFile) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write");
        let file = ConfigFile::open(&path).expect("opens");
        (dir, file)
    }

    fn form_of(file: &ConfigFile, id: &str) -> AccountForm {
        let config = file.config().expect("valid");
        AccountForm::from_config(config.accounts.iter().find(|a| a.id.as_str() == id).expect("the account"))
    }

    #[test]
    fn editing_an_account_keeps_comments_order_and_settings_the_form_does_not_show() {
        let (_dir, mut file) = open(HAND_WRITTEN);
        let mut form = form_of(&file, "work-mail");
        form.server = "imap2.example.com".to_owned();
        form.mail.as_mut().expect("mail part").folders.push("Clients".to_owned());
        file.upsert_account(&form).expect("saved");
        let text = file.text();
        assert!(text.starts_with("# My accounts — written by hand.\n"), "{text}");
        assert!(text.contains("previews = false # private mode at work"), "{text}");
        assert!(text.contains("# The work mailbox.\n[[account]]"), "{text}");
        assert!(text.contains("server = \"imap2.example.com\" # the new server since May"), "{text}");
        assert!(text.contains("idle_reissue_secs = 1200 # the firewall"), "{text}");
        assert!(text.contains("folders = [\"INBOX\", \"Projects\", \"Clients\"]"), "{text}");
        assert!(text.find("work-mail") < text.find("\"team\""), "the order of accounts is kept: {text}");
        let config = file.save().expect("a valid file");
        assert_eq!(config.accounts[0].mail.as_ref().expect("mail").idle_reissue_secs, 1200);
    }

    #[test]
    fn an_unchanged_form_changes_nothing_in_the_file() {
        let (_dir, mut file) = open(HAND_WRITTEN);
        for id in ["work-mail", "team"] {
            let form = form_of(&file, id);
            file.upsert_account(&form).expect("saved");
        }
        assert_eq!(file.text(), HAND_WRITTEN);
    }

    #[test]
    fn a_new_account_gets_an_id_from_its_name_and_its_own_sub_table() {
        let (_dir, mut file) = open(HAND_WRITTEN);
        let mut form = form_of(&file, "work-mail");
        form.id = String::new();
        form.name = "Work mail (new)".to_owned();
        form.mail.as_mut().expect("mail").tls = TlsMode::Starttls;
        let id = file.upsert_account(&form).expect("added");
        assert_eq!(id, "work-mail-new");
        let again = file.upsert_account(&form).expect("added");
        assert_eq!(again, "work-mail-new-2");
        let config = file.save().expect("valid");
        assert_eq!(config.accounts.len(), 4);
        let added = &config.accounts[2];
        assert_eq!((added.id.as_str(), added.name.as_str()), ("work-mail-new", "Work mail (new)"));
        assert_eq!(added.mail.as_ref().expect("mail").tls, TlsMode::Starttls);
        assert!(file.text().contains("[account.mail]\nfolders = [\"INBOX\", \"Projects\"]\ntls = \"starttls\""), "{}", file.text());
    }

    #[test]
    fn a_new_account_in_an_empty_file_starts_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("config.toml");
        let mut file = ConfigFile::open(&path).expect("a missing file is empty");
        let form = AccountForm {
            id: String::new(),
            name: "Projects".to_owned(),
            source: Source::Tasks,
            enabled: true,
            badge: BadgeMode::Dot,
            server: "https://pm.example.com".to_owned(),
            username: String::new(),
            poll_interval_secs: Some(120),
            mail: None,
            chat: None,
            tasks: Some(TasksForm { auth: TasksAuth::ApiKey, assigned_tasks: BadgeMode::Ignore, requests_per_minute: Some(10) }),
        };
        file.upsert_account(&form).expect("added");
        file.save().expect("written");
        let config = Config::load(&path).expect("valid");
        let account = &config.accounts[0];
        assert_eq!(account.id.as_str(), "projects");
        assert_eq!(account.badge, BadgeMode::Dot);
        assert_eq!(account.auth, AuthKind::ApiKey);
        assert_eq!(account.poll_interval.as_secs(), 120);
        assert_eq!(account.tasks.assigned_tasks, BadgeMode::Ignore);
        assert_eq!(account.tasks.requests_per_minute, Some(10));
        assert_eq!(AccountForm::from_config(account), AccountForm { id: "projects".to_owned(), ..form });
    }

    #[test]
    fn removing_an_account_leaves_the_others_and_their_comments() {
        let (_dir, mut file) = open(HAND_WRITTEN);
        assert!(file.remove_account("work-mail"));
        assert!(!file.remove_account("work-mail"));
        let text = file.text();
        assert!(!text.contains("imap.example.com"), "{text}");
        assert!(!text.contains("idle_reissue_secs"), "the sub-table went with it: {text}");
        assert!(text.contains("previews = false # private mode at work"), "{text}");
        let config = file.save().expect("valid");
        assert_eq!(config.accounts.len(), 1);
        assert_eq!(config.accounts[0].id.as_str(), "team");
    }

    #[test]
    fn disabling_writes_enabled_false_and_enabling_removes_it() {
        let (_dir, mut file) = open(HAND_WRITTEN);
        file.set_enabled("team", false).expect("set");
        assert!(!file.config().expect("valid").accounts[1].enabled);
        file.set_enabled("team", true).expect("set");
        assert_eq!(file.text(), HAND_WRITTEN);
        assert!(matches!(file.set_enabled("nobody", true), Err(EditError::UnknownAccount(_))));
    }

    #[test]
    fn every_bad_field_is_reported_at_once_and_nothing_changes() {
        let (_dir, mut file) = open(HAND_WRITTEN);
        let mut form = form_of(&file, "work-mail");
        form.name = "  ".to_owned();
        form.server = "imaps://imap.example.com".to_owned();
        let mail = form.mail.as_mut().expect("mail");
        mail.folders = vec![String::new()];
        mail.pinned_fingerprint = Some("not a fingerprint".to_owned());
        let Err(EditError::Fields(errors)) = file.upsert_account(&form) else { panic!("must be refused") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "server", "mail.folders", "mail.pinnedFingerprint"]);
        assert_eq!(file.text(), HAND_WRITTEN);
    }

    #[test]
    fn room_choices_are_written_as_their_own_table_and_removed_ones_go() {
        let (_dir, mut file) = open(HAND_WRITTEN);
        let mut form = form_of(&file, "team");
        let chat = form.chat.as_mut().expect("chat part");
        chat.rooms.insert("general".to_owned(), RoomPreference::Mentions);
        chat.rooms.insert("Alice Martin".to_owned(), RoomPreference::All);
        file.upsert_account(&form).expect("saved");
        assert!(file.text().contains("[account.chat.rooms]\n\"Alice Martin\" = \"all\"\ngeneral = \"mentions\""), "{}", file.text());
        let config = file.save().expect("valid");
        assert_eq!(config.accounts[1].chat.rooms.get("general"), Some(&RoomPreference::Mentions));

        let mut form = form_of(&file, "team");
        form.chat.as_mut().expect("chat").rooms.clear();
        file.upsert_account(&form).expect("saved");
        assert_eq!(file.text(), HAND_WRITTEN, "no choice left: the tables go");
    }

    #[test]
    fn a_chat_or_tasks_server_must_be_a_web_address() {
        let mut form = AccountForm::from_config(&AccountConfig::new(crate::model::AccountId::new("c"), "Chat", Source::Chat));
        form.server = "chat.example.com".to_owned();
        assert_eq!(form.validate().expect_err("refused")[0].field, "server");
        form.server = "https://chat.example.com".to_owned();
        assert!(form.validate().is_ok());
    }

    #[test]
    fn a_file_that_is_not_toml_cannot_be_edited_and_says_where() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[[account]]\nid = \"a\"\npassword = hunter2\n").expect("write");
        let err = ConfigFile::open(&path).expect_err("refused");
        let message = err.to_string();
        assert!(message.contains("line 3"), "{message}");
        assert!(!message.contains("hunter2"), "the line's text is not quoted: {message}");
    }

    #[test]
    fn a_change_that_would_make_the_file_invalid_is_not_written() {
        let (dir, mut file) = open("[[account]]\nid = \"t\"\nsource = \"tasks\"\nserver = \"https://pm.example.com\"\n[account.tasks]\nrequests_per_minute = \"many\"\n");
        let path = dir.path().join("config.toml");
        let before = std::fs::read_to_string(&path).expect("read");
        file.set_enabled("t", false).expect("set");
        assert!(matches!(file.save(), Err(EditError::Invalid(_))));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
    }

    #[test]
    fn notifications_and_hints_round_trip() {
        let (_dir, mut file) = open(HAND_WRITTEN);
        let quiet = RawQuietHours { from: "22:00".to_owned(), to: "07:30".to_owned() };
        let form = NotificationsForm { previews: true, burst_threshold: 5, sound: false, quiet_hours: Some(quiet) };
        file.set_notifications(&form).expect("set");
        let hint = HintRule { from: Source::Mail, sender_contains: "leantime".to_owned(), refresh: Source::Tasks };
        file.set_hints(std::slice::from_ref(&hint)).expect("set");
        let config = file.save().expect("valid");
        assert_eq!(NotificationsForm::from(&config.notifications), form);
        assert!(file.text().contains("[notifications.quiet_hours]\nfrom = \"22:00\"\nto = \"07:30\""), "{}", file.text());
        let bad = NotificationsForm { quiet_hours: Some(RawQuietHours { from: "25:00".to_owned(), to: "07:00".to_owned() }), ..form };
        assert!(matches!(file.set_notifications(&bad), Err(EditError::Fields(f)) if f[0].field == "quietHours"));
        assert_eq!(config.hints, [hint]);
        assert!(!file.text().contains("previews"), "a default is not written: {}", file.text());
        file.set_hints(&[]).expect("set");
        assert!(file.config().expect("valid").hints.is_empty());
        file.set_start_hidden(false);
        assert!(!file.config().expect("valid").app.start_hidden);
        file.set_start_hidden(true);
        assert!(!file.text().contains("[app]"), "the default leaves no trace: {}", file.text());
    }
}
