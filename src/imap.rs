//! Mail over IMAP: new messages in the watched folders (INBOX by default)
//! as items, the unseen count across them as the badge.
//!
//! Push first: when the server has NOTIFY (RFC 5465), one connection hears
//! about every watched folder; otherwise each folder gets its own connection
//! in IDLE, up to the account's connection cap, and the folders beyond the
//! cap (or every folder of a server without IDLE) share one connection that
//! polls them with STATUS (one LIST-STATUS for all where offered) on the hybrid scheduler. [`folder`] runs one connection; this module
//! starts them, merges what they report into updates, turns scheduler
//! triggers into resyncs (manual refresh, polls) or fresh connections (wake
//! from sleep, network back: the old sockets are probably dead, and probing
//! them would cost a timeout), and marks messages read on a connection of
//! its own.
//!
//! Detection is by UID: the cursor keeps each folder's (UIDVALIDITY,
//! highest UID seen) ([`cursor`]), so mail that arrived while the app was
//! closed is announced once after the restart, and a folder seen for the
//! first time or whose UIDVALIDITY changed is re-baselined silently. Item
//! keys are `<folder>:<uidvalidity>:<uid>`; on Gmail (X-GM-EXT-1) a message
//! that shows in two watched label folders is announced once, by its
//! X-GM-MSGID (within a run). Messages are only peeked at (`BODY.PEEK`,
//! folders opened with EXAMINE): watching never marks mail read. Only the
//! start of a header and of the text is fetched, and a server that answers
//! with more than [`limit::LITERAL_LIMIT`] in one piece loses the connection
//! ([`limit`]).
//!
//! A folder the server cannot open is left out with a notice on the account
//! naming it; the others are watched. Folder names are kept as people read
//! them and sent in modified UTF-7 ([`mutf7`]). [`probe`] is the settings
//! window's "Test connection".
//!
//! [`local_server`] is a small in-memory IMAP server on loopback for the
//! demo; [`consent`] is the first OAuth sign-in.
//!
//! Security: TLS (implicit or STARTTLS) verified against the platform's
//! roots or a pinned certificate fingerprint ([`tls`]); plaintext only to a
//! loopback address and only when the account allows it. The password or
//! OAuth token comes from the keyring at each connect ([`auth`]) and goes
//! nowhere but the LOGIN or AUTHENTICATE command.

pub mod auth;
pub mod connect;
pub mod consent;
pub mod cursor;
pub mod folder;
pub mod limit;
pub mod local_server;
pub mod message;
pub mod mutf7;
pub mod probe;
pub mod tls;
pub(crate) mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, try_join_all};
use serde::Deserialize;
use tokio::sync::{Notify, mpsc};

use crate::config::AccountConfig;
use crate::model::AccountId;
use crate::secrets::SecretStore;
use crate::scheduler::Trigger;
use crate::watcher::{Action, ActionError, Update, WatchError, Watcher, WatcherContext};
use auth::{Credential, Credentials, OAuth};
use connect::Target;
use cursor::Mark;
use folder::{Features, Report, Shared, Synced};
use tls::Fingerprint;

/// The folder a mail item's key names, as the user configured it: where
/// the mail arrived, for the toast.
pub fn folder_of(key: &str) -> Option<&str> {
    folder::parse_key(key).map(|(folder, _, _)| folder)
}

pub use auth::{ACCESS_TOKEN_SECRET, CLIENT_SECRET_SECRET, MailAuth, PASSWORD_SECRET, REFRESH_TOKEN_SECRET};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS before login (port 143).
    Starttls,
    /// No TLS at all: only to a loopback address, and only with
    /// `allow_plaintext_on_loopback = true`.
    None,
}

impl TlsMode {
    fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 993,
            TlsMode::Starttls | TlsMode::None => 143,
        }
    }
}

/// The `[account.mail]` settings of a mail account.
///
/// ```toml
/// [account.mail]
/// folders = ["INBOX", "Projects"]
/// tls = "starttls"                      # "implicit" (default), "starttls", "none"
/// pinned_fingerprint = "AB:CD:…"        # a self-signed server's SHA-256
/// webmail_link = "https://mail.example.com/#/{folder}/{uid}"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// Folders to watch.
    pub folders: Vec<String>,
    /// The server's port; by default 993 for implicit TLS, else 143.
    pub port: Option<u16>,
    /// How the connection is secured.
    pub tls: TlsMode,
    /// Allow `tls = "none"` when the server is a loopback address (a local
    /// bridge such as Proton Bridge or a test server). Ignored otherwise.
    pub allow_plaintext_on_loopback: bool,
    /// How to sign in: "password" (LOGIN with the keyring's `password`),
    /// "xoauth2" or "oauthbearer" (an OAuth 2.0 access token: the keyring's
    /// `access-token`, or refreshed from its `refresh-token` at
    /// `oauth_token_url`).
    pub auth: MailAuth,
    /// The OAuth client id (with `oauth_token_url`).
    pub oauth_client_id: Option<String>,
    /// The OAuth token endpoint, e.g. `https://oauth2.googleapis.com/token`.
    pub oauth_token_url: Option<String>,
    /// The OAuth authorization endpoint for the first sign-in (`vigie
    /// --sign-in ACCOUNT`), e.g. `https://accounts.google.com/o/oauth2/v2/auth`.
    pub oauth_auth_url: Option<String>,
    /// The scopes to ask for at the first sign-in, e.g.
    /// `["https://mail.google.com/"]`.
    pub oauth_scopes: Vec<String>,
    /// Accept exactly the certificate with this SHA-256 fingerprint instead
    /// of checking it against the platform's roots (self-signed servers).
    pub pinned_fingerprint: Option<String>,
    /// Where "Open" goes, with `{folder}`, `{uid}`, `{uidvalidity}` and
    /// `{message_id}` filled in; without it, a `mid:` link (RFC 2392) for
    /// whichever mail client handles that scheme.
    pub webmail_link: Option<String>,
    /// Most connections this account opens at once (Gmail allows about 15).
    pub max_connections: u32,
    /// Re-issue IDLE this often, in seconds (servers end idle connections
    /// after 30 minutes).
    pub idle_reissue_secs: u64,
    /// A connection in IDLE that has received nothing at all (not even a
    /// keepalive) for this many seconds is checked with `DONE` and dropped
    /// if that gets no answer. Set it above the server's keepalive.
    pub idle_silence_secs: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            folders: vec!["INBOX".to_owned()],
            port: None,
            tls: TlsMode::Implicit,
            allow_plaintext_on_loopback: false,
            auth: MailAuth::Password,
            oauth_client_id: None,
            oauth_token_url: None,
            oauth_auth_url: None,
            oauth_scopes: Vec::new(),
            pinned_fingerprint: None,
            webmail_link: None,
            max_connections: 10,
            idle_reissue_secs: 25 * 60,
            // Dovecot's default keepalive is 2 minutes.
            idle_silence_secs: 5 * 60,
        }
    }
}

/// Why a mail account's settings cannot work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsProblem {
    #[error("set `server` to the IMAP server's host name, e.g. imap.example.com")]
    NoServer,
    #[error("set `username` to the IMAP login name")]
    NoUsername,
    #[error(
        "refusing to send the password without TLS to {0}: plaintext is only allowed to a loopback \
         address with allow_plaintext_on_loopback = true"
    )]
    Plaintext(String),
    #[error("pinned_fingerprint \"{0}\" is not a SHA-256 fingerprint (64 hex digits, colons allowed)")]
    BadPin(String),
    #[error("`folders` is empty: name at least one folder to watch, e.g. [\"INBOX\"]")]
    NoFolders,
    #[error("set `oauth_client_id` to refresh tokens at `oauth_token_url`")]
    NoClientId,
}

/// A mail account's watcher.
pub struct ImapWatcher {
    shared: Shared,
    folders: Vec<String>,
    max_connections: usize,
    credentials: Credentials,
}

impl std::fmt::Debug for ImapWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapWatcher").field("shared", &self.shared).field("folders", &self.folders).finish_non_exhaustive()
    }
}

impl ImapWatcher {
    /// The watcher of `account`, or why its settings cannot work (shown as
    /// the account's "disabled" reason).
    pub fn from_config(account: &AccountConfig, secrets: Arc<dyn SecretStore>) -> Result<ImapWatcher, String> {
        Self::build(account, secrets).map_err(|problem| problem.to_string())
    }

    pub(crate) fn build(account: &AccountConfig, secrets: Arc<dyn SecretStore>) -> Result<ImapWatcher, SettingsProblem> {
        let settings = account.mail.clone().unwrap_or_default();
        let host = account.server.clone().filter(|s| !s.trim().is_empty()).ok_or(SettingsProblem::NoServer)?;
        let username = account.username.clone().filter(|s| !s.trim().is_empty()).ok_or(SettingsProblem::NoUsername)?;
        if settings.tls == TlsMode::None && !(settings.allow_plaintext_on_loopback && connect::is_loopback(&host)) {
            return Err(SettingsProblem::Plaintext(host));
        }
        let pinned = match &settings.pinned_fingerprint {
            None => None,
            Some(text) => Some(Fingerprint::parse(text).ok_or_else(|| SettingsProblem::BadPin(text.clone()))?),
        };
        let mut folders: Vec<String> = Vec::new();
        for folder in settings.folders {
            if !folders.contains(&folder) {
                folders.push(folder);
            }
        }
        if folders.is_empty() {
            return Err(SettingsProblem::NoFolders);
        }
        let oauth = match (settings.auth, settings.oauth_token_url, settings.oauth_client_id) {
            (MailAuth::Password, _, _) | (_, None, _) => None,
            (_, Some(token_url), Some(client_id)) => Some(OAuth { client_id, token_url }),
            (_, Some(_), None) => return Err(SettingsProblem::NoClientId),
        };
        let target = Target {
            port: settings.port.unwrap_or(settings.tls.default_port()),
            host,
            tls: settings.tls,
            pinned,
            username,
        };
        Ok(ImapWatcher {
            shared: Shared {
                account: account.id.clone(),
                target,
                webmail_link: settings.webmail_link,
                reissue: Duration::from_secs(settings.idle_reissue_secs.clamp(10, 29 * 60)),
                dead_link: Duration::from_secs(settings.idle_silence_secs.max(5)),
            },
            folders,
            max_connections: usize::try_from(settings.max_connections.max(1)).unwrap_or(1),
            credentials: Credentials::new(account.id.clone(), settings.auth, oauth, secrets),
        })
    }

    /// The folders of each connection: all on one when the server has
    /// NOTIFY; else one folder each while the cap allows, the rest together
    /// on the last connection.
    fn connections(&self, features: Features) -> Vec<Vec<String>> {
        if features.idle && features.notify || self.max_connections == 1 {
            return vec![self.folders.clone()];
        }
        if self.folders.len() <= self.max_connections {
            return self.folders.iter().map(|f| vec![f.clone()]).collect();
        }
        let alone = self.max_connections - 1;
        let mut groups: Vec<Vec<String>> = self.folders[..alone].iter().map(|f| vec![f.clone()]).collect();
        groups.push(self.folders[alone..].to_vec());
        groups
    }

    async fn run_once(&self, ctx: &mut WatcherContext) -> Result<(), WatchError> {
        let outcome = self.watch(ctx).await;
        if let Err(WatchError::AuthFailed(_)) = &outcome {
            self.credentials.refused();
        }
        outcome
    }

    async fn watch(&self, ctx: &mut WatcherContext) -> Result<(), WatchError> {
        let credential = self.credentials.get().await?;
        let mut merged = Merged::new(cursor::decode(ctx.cursor()));
        while let Ended::Reconnect = self.connections_once(ctx, &credential, &mut merged).await? {
            tracing::info!(account = %self.shared.account, "woke up or the network changed: reconnecting");
        }
        Ok(())
    }

    /// One set of connections, until they fail, the watcher stops, or the
    /// machine wakes or changes network (when the old sockets are likely
    /// dead: waiting for them to time out would delay the mail).
    async fn connections_once(&self, ctx: &mut WatcherContext, credential: &Credential, merged: &mut Merged) -> Result<Ended, WatchError> {
        // The first connection's capabilities decide how many more we need.
        let (session, features) = folder::open(&self.shared, credential).await?;
        let groups = self.connections(features);
        tracing::info!(account = %self.shared.account, ?features, connections = groups.len(), "signed in");
        merged.expect_connections(groups.len());
        let mut first = Some((session, features));
        let pokes: Vec<Notify> = groups.iter().map(|_| Notify::new()).collect();
        let (reports, mut received) = mpsc::channel(32);
        let connections = try_join_all(groups.iter().zip(&pokes).map(|(folders, poke)| {
            let start: Vec<Option<Mark>> = folders.iter().map(|f| merged.cursor.marks.get(f).copied()).collect();
            folder::watch(&self.shared, credential, first.take(), folders, start, reports.clone(), poke)
        }));
        drop(reports);
        tokio::pin!(connections);
        let cancel = ctx.cancel_token().clone();
        // Every connection syncs its folders when it opens; a timer poll that
        // comes before the first of those syncs (the schedule's start-up
        // poll) would only make each of them sync again.
        let mut synced_yet = false;
        loop {
            enum Next {
                Stop,
                Failed(WatchError),
                Report(Report),
                Poll(Trigger),
            }
            let next = tokio::select! {
                () = cancel.cancelled() => Next::Stop,
                ended = &mut connections => match ended {
                    Err(error) => Next::Failed(error),
                    Ok(_) => Next::Stop,
                },
                Some(report) = received.recv() => Next::Report(report),
                trigger = ctx.next_poll() => match trigger {
                    Some(trigger) => Next::Poll(trigger),
                    None => Next::Stop,
                },
            };
            match next {
                Next::Stop => return Ok(Ended::Stop),
                Next::Failed(error) => return Err(error),
                Next::Poll(Trigger::Wake | Trigger::NetworkBack) => return Ok(Ended::Reconnect),
                Next::Poll(Trigger::Scheduled) if !synced_yet => {}
                Next::Poll(trigger) => {
                    tracing::debug!(account = %self.shared.account, ?trigger, "resync");
                    pokes.iter().for_each(Notify::notify_one);
                }
                Next::Report(Report::Up { push }) => match merged.connection_up(push) {
                    Some(_) if merged.missing.len() == self.folders.len() => {
                        return Err(WatchError::NeedsAttention(merged.notice().unwrap_or_default()));
                    }
                    Some(true) => ctx.set_live().await,
                    Some(false) => ctx.set_polling().await,
                    None => {}
                },
                Next::Report(Report::Synced(synced)) => {
                    synced_yet = true;
                    let update = merged.synced(&self.shared.account, synced);
                    let changed = !update.items.is_empty() || !update.read.is_empty();
                    ctx.publish(update).await;
                    ctx.poll_succeeded(changed);
                }
                Next::Report(Report::Missing { folder, words }) => {
                    tracing::warn!(account = %self.shared.account, folder, words, "folder not watched");
                    if let Some(update) = merged.missing(folder, words) {
                        ctx.publish(update).await;
                    }
                }
            }
            if let Some(notice) = merged.notice_changed() {
                ctx.set_notice(notice).await;
            }
        }
    }

    async fn mark_read(&self, key: &str) -> Result<(), ActionError> {
        let (folder, uidvalidity, uid) =
            folder::parse_key(key).ok_or_else(|| ActionError::Unsupported(format!("`{key}` is not a mail of this account")))?;
        let credential = self.credentials.get().await.map_err(|e| ActionError::Failed(e.to_string()))?;
        let target = &self.shared.target;
        let mut session = connect::open(target, &credential).await.map_err(|e| ActionError::Failed(e.to_string()))?;
        let failed = |doing: &str, e: async_imap::error::Error| ActionError::Failed(connect::transient(target, doing, &e).to_string());
        let work = async {
            let mailbox = session.select(mutf7::encode(folder)).await.map_err(|e| failed("SELECT", e))?;
            if mailbox.uid_validity != Some(uidvalidity) {
                return Err(ActionError::Failed(format!("the folder {folder} was rebuilt on the server; the message is gone")));
            }
            // .SILENT: no FETCH answers, but the stream must still be read
            // to the tagged OK.
            async {
                let stream = session.uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)").await?;
                futures_util::TryStreamExt::try_collect::<Vec<_>>(stream).await
            }
            .await
            .map_err(|e| failed("UID STORE", e))?;
            let _ = session.logout().await;
            Ok(())
        };
        tokio::time::timeout(Duration::from_secs(60), work)
            .await
            .map_err(|_| ActionError::Failed(format!("{}:{}: the server did not answer", target.host, target.port)))?
    }
}

impl Watcher for ImapWatcher {
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(self.run_once(ctx))
    }

    fn actions(&self, _key: &str) -> Vec<Action> {
        vec![Action::MarkRead]
    }

    fn act<'a>(&'a self, key: &'a str, action: Action) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            match action {
                Action::MarkRead => self.mark_read(key).await,
                Action::MarkDone => Err(ActionError::Unsupported("mail cannot be marked done".to_owned())),
            }
        })
    }
}

/// How one set of connections ended without an error.
enum Ended {
    /// The watcher is stopping.
    Stop,
    /// Open new connections now.
    Reconnect,
}

/// Gmail message ids remembered to announce a labelled message once.
const GMAIL_IDS_KEPT: usize = 2_000;

/// What the connections of one run have reported, merged into updates.
struct Merged {
    /// Marks and announced-unread UIDs, as saved.
    cursor: cursor::Cursor,
    /// X-GM-MSGIDs announced in this run, oldest first: a message with two
    /// watched labels (INBOX and a label folder) comes from both folders.
    gmail_ids: std::collections::VecDeque<u64>,
    /// Per folder synced in this run: its UIDVALIDITY and unseen UIDs.
    unseen: BTreeMap<String, (u32, BTreeSet<u32>)>,
    /// `push` of each connection of the current set that is up.
    up: Vec<bool>,
    connections: usize,
    /// Folders the server refused, with its words.
    missing: BTreeMap<String, String>,
    /// Every connection of the first set is up: the notice may be shown
    /// (before, a folder not reported yet is not known to be missing).
    settled: bool,
    /// The notice last shown.
    shown: Option<Option<String>>,
}

impl Merged {
    fn new(cursor: cursor::Cursor) -> Merged {
        Merged {
            cursor,
            gmail_ids: std::collections::VecDeque::new(),
            unseen: BTreeMap::new(),
            up: Vec::new(),
            connections: 0,
            missing: BTreeMap::new(),
            settled: false,
            shown: None,
        }
    }

    /// Records a folder the server refused. If it was counted before (it
    /// went away while watched), the update that stops counting it.
    fn missing(&mut self, folder: String, words: String) -> Option<Update> {
        let counted = self.unseen.remove(&folder).is_some();
        self.missing.insert(folder, words);
        counted.then(|| Update { unread: Some(self.unread()), ..Update::default() })
    }

    fn unread(&self) -> u32 {
        u32::try_from(self.unseen.values().map(|(_, uids)| uids.len()).sum::<usize>()).unwrap_or(u32::MAX)
    }

    /// The account's notice: which folders are not watched, and why.
    fn notice(&self) -> Option<String> {
        if self.missing.is_empty() {
            return None;
        }
        let named: Vec<String> = self.missing.iter().map(|(folder, words)| format!("\"{folder}\" ({words})")).collect();
        let (noun, verb) = if named.len() == 1 { ("folder", "is") } else { ("folders", "are") };
        Some(format!(
            "the {noun} {} {verb} not watched: the server cannot open {}. Check `folders` under [account.mail]",
            named.join(", "),
            if named.len() == 1 { "it" } else { "them" },
        ))
    }

    /// The notice, when it should be shown anew.
    fn notice_changed(&mut self) -> Option<Option<String>> {
        if !self.settled {
            return None;
        }
        let notice = self.notice();
        (self.shown.as_ref() != Some(&notice)).then(|| {
            self.shown = Some(notice.clone());
            notice
        })
    }

    /// A new set of `connections` is starting.
    fn expect_connections(&mut self, connections: usize) {
        self.up.clear();
        self.connections = connections;
    }

    /// Records a connection's first pass; once all are up, whether the
    /// account is live (all push) or polling (any polls).
    fn connection_up(&mut self, push: bool) -> Option<bool> {
        self.up.push(push);
        let all = self.up.len() == self.connections;
        self.settled |= all;
        all.then(|| self.up.iter().all(|p| *p))
    }

    fn synced(&mut self, account: &AccountId, synced: Synced) -> Update {
        let Synced { folder, mark, unseen, new, unlisted } = synced;
        self.missing.remove(&folder);
        let mut items = Vec::with_capacity(new.len());
        for (item, gmail_id) in new {
            if let Some(id) = gmail_id {
                if self.gmail_ids.contains(&id) {
                    continue;
                }
                if self.gmail_ids.len() == GMAIL_IDS_KEPT {
                    self.gmail_ids.pop_front();
                }
                self.gmail_ids.push_back(id);
            }
            items.push(item);
        }
        // What was unread before: this run's last sync of the folder, or at
        // its first sync the announced-and-unread UIDs saved in the cursor.
        let before = self.unseen.get(&folder).or_else(|| self.cursor.announced.get(&folder));
        let read: Vec<String> = match before {
            Some((validity, before)) if *validity == mark.uidvalidity => {
                before.difference(&unseen).map(|uid| folder::key(&folder, *validity, *uid)).collect()
            }
            // Rebuilt folder: the old keys are gone for good.
            Some((validity, before)) => before.iter().map(|uid| folder::key(&folder, *validity, *uid)).collect(),
            None => Vec::new(),
        };
        let mut announced: BTreeSet<u32> = match self.cursor.announced.remove(&folder) {
            Some((validity, uids)) if validity == mark.uidvalidity => uids,
            _ => BTreeSet::new(),
        };
        announced.extend(items.iter().filter_map(|i| folder::parse_key(&i.key)).map(|(_, _, uid)| uid));
        announced.retain(|uid| unseen.contains(uid));
        while announced.len() > cursor::ANNOUNCED_KEPT {
            announced.pop_first();
        }
        self.cursor.announced.insert(folder.clone(), (mark.uidvalidity, announced));
        self.unseen.insert(folder.clone(), (mark.uidvalidity, unseen));
        self.cursor.marks.insert(folder, mark);
        let unread = self.unread();
        tracing::debug!(%account, new = items.len(), read = read.len(), unread, "mail synced");
        Update {
            items,
            read,
            unread: Some(unread),
            dot: None,
            cursor: Some(cursor::encode(&self.cursor)),
            unlisted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;
    use crate::secrets::MemorySecrets;

    fn account(mail: MailSettings, server: &str) -> AccountConfig {
        AccountConfig {
            server: Some(server.into()),
            username: Some("me".into()),
            mail: Some(mail),
            ..AccountConfig::new(AccountId::new("m"), "m", Source::Mail)
        }
    }

    fn watcher(mail: MailSettings, server: &str) -> Result<ImapWatcher, String> {
        ImapWatcher::from_config(&account(mail, server), Arc::new(MemorySecrets::default()))
    }

    #[test]
    fn the_mail_table_parses_and_a_typo_in_it_names_its_line() {
        let text = r#"
[[account]]
id = "work-mail"
source = "mail"
server = "imap.example.com"
username = "me@example.com"
[account.mail]
folders = ["INBOX", "Projects/2026"]
tls = "starttls"
pinned_fingerprint = "AB:CD"
webmail_link = "https://mail.example.com/#/{folder}/{uid}"
auth = "xoauth2"
"#;
        let config = crate::config::Config::parse(std::path::Path::new("c.toml"), text).expect("valid");
        let mail = config.accounts[0].mail.clone().expect("a mail table");
        assert_eq!(mail.folders, ["INBOX", "Projects/2026"]);
        assert_eq!(mail.tls, TlsMode::Starttls);
        assert_eq!(mail.auth, MailAuth::Xoauth2);
        assert_eq!(mail.max_connections, 10, "unset fields keep their defaults");
        let typo = text.replace("tls = \"starttls\"", "tsl = \"starttls\"");
        let error = crate::config::Config::parse(std::path::Path::new("c.toml"), &typo).expect_err("refused").to_string();
        assert!(error.contains("line 9") && error.contains("tsl"), "{error}");
    }

    #[test]
    fn plaintext_needs_loopback_and_explicit_consent() {
        let plain = MailSettings { tls: TlsMode::None, ..MailSettings::default() };
        let allowed = MailSettings { allow_plaintext_on_loopback: true, ..plain.clone() };
        assert!(watcher(plain.clone(), "127.0.0.1").is_err());
        assert!(watcher(allowed.clone(), "imap.example.com").expect_err("refused").contains("without TLS"));
        let ok = watcher(allowed, "127.0.0.1").expect("allowed");
        assert_eq!(ok.shared.target.port, 143);
    }

    #[test]
    fn the_port_follows_the_tls_mode() {
        assert_eq!(watcher(MailSettings::default(), "h").expect("ok").shared.target.port, 993);
        let starttls = MailSettings { tls: TlsMode::Starttls, ..MailSettings::default() };
        assert_eq!(watcher(starttls, "h").expect("ok").shared.target.port, 143);
    }

    #[test]
    fn a_malformed_pin_is_refused_with_the_expected_form() {
        let bad = MailSettings { pinned_fingerprint: Some("abc".into()), ..MailSettings::default() };
        assert!(watcher(bad, "h").expect_err("refused").contains("64 hex digits"));
    }

    #[test]
    fn folders_beyond_the_cap_share_the_last_connection() {
        let folders: Vec<String> = (1..=5).map(|i| format!("F{i}")).collect();
        let capped = MailSettings { folders: folders.clone(), max_connections: 3, ..MailSettings::default() };
        let idle = Features { idle: true, notify: false, condstore: false, gmail: false, list_status: false };
        let groups = watcher(capped, "h").expect("ok").connections(idle);
        assert_eq!(groups, vec![vec!["F1".to_owned()], vec!["F2".to_owned()], vec!["F3".into(), "F4".into(), "F5".into()]]);
        let roomy = MailSettings { folders, max_connections: 5, ..MailSettings::default() };
        let roomy = watcher(roomy, "h").expect("ok");
        assert_eq!(roomy.connections(idle).len(), 5);
        assert_eq!(roomy.connections(Features { idle: true, notify: true, condstore: true, gmail: false, list_status: false }).len(), 1, "NOTIFY: one for all");
    }

    #[test]
    fn mail_announced_before_a_restart_and_read_meanwhile_is_named_read() {
        let account = AccountId::new("m");
        let mut saved = cursor::Cursor::default();
        saved.marks.insert("INBOX".into(), Mark { uidvalidity: 1, highest: 6 });
        saved.announced.insert("INBOX".into(), (1, [5, 6].into_iter().collect()));
        let mut merged = Merged::new(saved);
        merged.expect_connections(1);
        let update = merged.synced(
            &account,
            Synced { folder: "INBOX".into(), mark: Mark { uidvalidity: 1, highest: 7 }, unseen: [6, 7].into_iter().collect(), new: Vec::new(), unlisted: 0 },
        );
        assert_eq!(update.read, ["INBOX:1:5"]);
        let next = cursor::decode(update.cursor.as_deref());
        assert_eq!(next.announced.get("INBOX"), Some(&(1, [6].into_iter().collect())), "7 was never announced");
    }

    #[test]
    fn a_gmail_message_in_two_watched_labels_is_announced_once() {
        let account = AccountId::new("m");
        let mut merged = Merged::new(cursor::Cursor::default());
        merged.expect_connections(2);
        let mail = |folder: &str, uid: u32| crate::model::Item {
            source: Source::Mail,
            account: account.clone(),
            key: folder::key(folder, 1, uid),
            title: format!("{folder} {uid}"),
            preview: String::new(),
            sender: "s".into(),
            link: None,
            time: jiff::Timestamp::now(),
        };
        let synced = |folder: &str, new: Vec<(crate::model::Item, Option<u64>)>| Synced {
            folder: folder.into(),
            mark: Mark { uidvalidity: 1, highest: 9 },
            unseen: BTreeSet::new(),
            new,
            unlisted: 0,
        };
        let inbox = merged.synced(&account, synced("INBOX", vec![(mail("INBOX", 5), Some(77)), (mail("INBOX", 6), None)]));
        assert_eq!(inbox.items.len(), 2);
        let label = merged.synced(&account, synced("Work", vec![(mail("Work", 3), Some(77)), (mail("Work", 4), Some(78))]));
        assert_eq!(label.items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["Work:1:4"], "77 was announced from INBOX");
    }

    #[test]
    fn merged_updates_count_all_folders_and_name_what_was_read_elsewhere() {
        let account = AccountId::new("m");
        let mut merged = Merged::new(cursor::Cursor::default());
        merged.expect_connections(2);
        let synced = |folder: &str, validity, unseen: &[u32]| Synced {
            folder: folder.into(),
            mark: Mark { uidvalidity: validity, highest: 9 },
            unseen: unseen.iter().copied().collect(),
            new: Vec::new(),
            unlisted: 0,
        };
        let first = merged.synced(&account, synced("INBOX", 1, &[3, 4, 5]));
        assert_eq!(first.unread, Some(3));
        assert!(first.read.is_empty());
        let second = merged.synced(&account, synced("Work", 2, &[1]));
        assert_eq!(second.unread, Some(4));
        let third = merged.synced(&account, synced("INBOX", 1, &[5]));
        assert_eq!(third.unread, Some(2));
        assert_eq!(third.read, vec!["INBOX:1:3".to_owned(), "INBOX:1:4".to_owned()]);
        let rebuilt = merged.synced(&account, synced("INBOX", 7, &[]));
        assert_eq!(rebuilt.read, vec!["INBOX:1:5".to_owned()]);
        assert_eq!(cursor::decode(rebuilt.cursor.as_deref()).marks.get("INBOX"), Some(&Mark { uidvalidity: 7, highest: 9 }));
        assert_eq!(merged.connection_up(true), None);
        assert_eq!(merged.connection_up(false), Some(false));
    }
}
