//! The configuration file: accounts and options, never a secret.
//!
//! It is TOML in the platform's config folder (see [`Paths`]). A bad file is
//! reported with its line and the offending field, and the app refuses to
//! guess: a typo in a field name is an error, not a silently ignored line.
//! Secrets (passwords, tokens) live in the OS keyring (`secrets`), keyed by
//! account id, so this file can be shared or backed up safely.

pub mod edit;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::badge::BadgeMode;
use crate::imap::MailSettings;
use crate::leantime::{AuthKind, TasksSettings};
use crate::model::{AccountId, Source};

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Notification options.
    pub notifications: Notifications,
    /// How the app starts.
    pub app: AppSettings,
    /// Options of the built-in demo.
    pub demo: DemoSettings,
    /// The accounts, in file order.
    pub accounts: Vec<AccountConfig>,
    /// Rules by which an item from one source triggers a refresh of another.
    pub hints: Vec<HintRule>,
}

/// Notification options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// Show sender and preview in toasts (off: "private mode").
    pub previews: bool,
    /// More new items than this at once become one summary toast.
    pub burst_threshold: u32,
    /// Play the platform's notification sound.
    pub sound: bool,
    /// A daily period with no toasts (items still count); one digest when
    /// it ends.
    pub quiet_hours: Option<crate::pause::QuietHours>,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications { previews: true, burst_threshold: 3, sound: true, quiet_hours: None }
    }
}

/// How the app starts (`[app]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSettings {
    /// Start in the tray only; off: the settings window opens at start.
    pub start_hidden: bool,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings { start_hidden: true }
    }
}

/// Options of the built-in demo.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoSettings {
    /// Seconds between two events of the demo world.
    pub every_secs: f64,
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings { every_secs: 20.0 }
    }
}

impl DemoSettings {
    /// The demo's pace.
    pub fn every(&self) -> Duration {
        Duration::from_secs_f64(self.every_secs)
    }
}

/// One account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountConfig {
    /// Unique id; names the keyring entries and the saved state.
    pub id: AccountId,
    /// What the user calls it.
    pub name: String,
    /// The kind of service.
    pub source: Source,
    /// Off: not watched at all.
    pub enabled: bool,
    /// How it counts in the badge.
    pub badge: BadgeMode,
    /// Base poll interval (when polling).
    pub poll_interval: Duration,
    /// Server address (host, or base URL).
    pub server: Option<String>,
    /// User name on that server.
    pub username: Option<String>,
    /// How it signs in (Leantime: personal token or API key).
    pub auth: AuthKind,
    /// Leantime settings (`[account.tasks]`); defaults for other sources.
    pub tasks: TasksSettings,
    /// Rocket.Chat settings (`[account.chat]`); defaults for other sources.
    pub chat: crate::rocketchat::ChatSettings,
    /// Mail settings (`[account.mail]`); defaults when absent.
    pub mail: Option<MailSettings>,
}

impl AccountConfig {
    /// An enabled account with every other setting at its default (counted
    /// in the badge, polled every minute where it polls, no server yet).
    pub fn new(id: AccountId, name: impl Into<String>, source: Source) -> AccountConfig {
        AccountConfig {
            id,
            name: name.into(),
            source,
            enabled: true,
            badge: BadgeMode::Count,
            poll_interval: DEFAULT_POLL_INTERVAL,
            server: None,
            username: None,
            auth: AuthKind::Token,
            tasks: TasksSettings::default(),
            chat: crate::rocketchat::ChatSettings::default(),
            mail: None,
        }
    }
}

/// "An item from `from` whose sender contains `sender_contains` means
/// `refresh` probably changed": e.g. a Leantime notification mail.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HintRule {
    /// Source whose items are looked at.
    pub from: Source,
    /// Case-insensitive substring of the sender.
    pub sender_contains: String,
    /// Source to refresh.
    pub refresh: Source,
}

impl HintRule {
    /// Whether an item from `source` by `sender` matches.
    pub fn matches(&self, source: Source, sender: &str) -> bool {
        source == self.from
            && sender.to_lowercase().contains(&self.sender_contains.to_lowercase())
    }
}

/// Shortest poll interval we allow: servers rate-limit, and push exists for
/// anything faster.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Longest poll interval: a day, as in the settings window. Anything longer
/// is a typo, and a few digits more would overflow the clock the scheduler
/// adds it to (a panic).
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(86_400);
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    notifications: Notifications,
    #[serde(default)]
    app: AppSettings,
    #[serde(default)]
    demo: DemoSettings,
    #[serde(default, rename = "account")]
    accounts: Vec<RawAccount>,
    #[serde(default, rename = "hint")]
    hints: Vec<HintRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    id: Spanned<String>,
    name: Option<String>,
    source: Source,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    badge: BadgeMode,
    poll_interval_secs: Option<Spanned<u64>>,
    server: Option<String>,
    username: Option<String>,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    tasks: TasksSettings,
    #[serde(default)]
    chat: crate::rocketchat::ChatSettings,
    mail: Option<MailSettings>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
enum RawAuth {
    #[default]
    Token,
    ApiKey,
}

fn yes() -> bool {
    true
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("could not read the config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Not valid TOML, or a field of the wrong type or unknown name. The
    /// message names the line, the column and the field.
    #[error("the config file {} is not valid: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's report, line and field included.
        message: String,
    },
    /// The file is larger than [`MAX_FILE_BYTES`]: not a config someone
    /// wrote, and not read.
    #[error("the config file {} is larger than {} KiB: it cannot be a config file", .path.display(), .limit / 1024)]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Valid TOML with a value we cannot accept.
    #[error("the config file {}, line {line}: `{field}` {problem}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

impl Config {
    /// Loads `path`; a missing file is the empty config (demo mode).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match read_text(path) {
            Ok(Some(text)) => Config::parse(path, &text),
            Ok(None) => Ok(Config::empty()),
            Err(e) => Err(e),
        }
    }

    /// A config with no account.
    pub fn empty() -> Config {
        Config {
            notifications: Notifications::default(),
            app: AppSettings::default(),
            demo: DemoSettings::default(),
            accounts: Vec::new(),
            hints: Vec::new(),
        }
    }

    /// Parses and validates `text`; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            // Not `e.to_string()`: it quotes the offending line, which may be
            // a password typed into this file, and the message is logged.
            message: match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {}, column {column}: {}", line_of(text, span.start), e.message().trim_end())
                }
                None => e.message().trim_end().to_owned(),
            },
        })?;
        let invalid = |span: std::ops::Range<usize>, field, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            line: line_of(text, span.start),
            field,
            problem,
        };
        if !(0.05..=86_400.0).contains(&raw.demo.every_secs) {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: text.lines().position(|l| l.trim_start().starts_with("every_secs")).map_or(1, |i| i + 1),
                field: "every_secs",
                problem: "must be between 0.05 and 86400 seconds".to_owned(),
            });
        }
        let mut accounts: Vec<AccountConfig> = Vec::with_capacity(raw.accounts.len());
        for account in raw.accounts {
            let span = account.id.span();
            let id = account.id.into_inner();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(invalid(span, "id", format!("\"{id}\" must be non-empty and use only letters, digits, '-', '_' and '.'")));
            }
            if accounts.iter().any(|a| a.id.as_str() == id) {
                return Err(invalid(span, "id", format!("\"{id}\" is used by two accounts")));
            }
            let poll_interval = match account.poll_interval_secs {
                None => DEFAULT_POLL_INTERVAL,
                Some(secs) => {
                    let span = secs.span();
                    let interval = Duration::from_secs(*secs.get_ref());
                    if interval < MIN_POLL_INTERVAL {
                        return Err(invalid(span, "poll_interval_secs", format!("must be at least {} seconds", MIN_POLL_INTERVAL.as_secs())));
                    }
                    if interval > MAX_POLL_INTERVAL {
                        return Err(invalid(span, "poll_interval_secs", format!("must be at most {} seconds (a day)", MAX_POLL_INTERVAL.as_secs())));
                    }
                    interval
                }
            };
            accounts.push(AccountConfig {
                name: account.name.unwrap_or_else(|| id.clone()),
                id: AccountId::new(id),
                source: account.source,
                enabled: account.enabled,
                badge: account.badge,
                poll_interval,
                server: account.server,
                username: account.username,
                auth: match account.auth {
                    RawAuth::Token => AuthKind::Token,
                    RawAuth::ApiKey => AuthKind::ApiKey,
                },
                tasks: account.tasks,
                chat: account.chat,
                mail: account.mail,
            });
        }
        Ok(Config { notifications: raw.notifications, app: raw.app, demo: raw.demo, accounts, hints: raw.hints })
    }
}

/// The largest config file read. A config with a hundred accounts is
/// about 50 KB; anything near this is a wrong path (a log, a disk image)
/// that would otherwise be read whole into memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The text of `path`, `None` when there is no such file; a file larger
/// than [`MAX_FILE_BYTES`] is refused without reading it all.
pub(crate) fn read_text(path: &Path) -> Result<Option<String>, ConfigError> {
    use std::io::Read;
    let read_error = |source| ConfigError::Read { path: path.to_owned(), source };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    // Through `take`, not the size from metadata alone: the file may grow
    // while read, or be a pipe or device with no size.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge { path: path.to_owned(), limit: MAX_FILE_BYTES });
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error())))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where the app keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The TOML config.
    pub config_file: PathBuf,
    /// The JSON state store.
    pub state_file: PathBuf,
    /// Folder of the rotated log files.
    pub log_dir: PathBuf,
    /// The control channel's socket ([`crate::control`]).
    pub control_socket: PathBuf,
}

impl Paths {
    /// The platform's folders: on Linux `~/.config/vigie/config.toml`,
    /// `~/.local/state/vigie/state.json`, `~/.local/state/vigie/logs/` and
    /// `$XDG_RUNTIME_DIR/vigie/control.sock` (honouring the XDG variables); on macOS and Windows their usual
    /// application folders.
    pub fn discover() -> Option<Paths> {
        let dirs = directories::ProjectDirs::from("org", "Vigie", "vigie")?;
        let state_dir = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir()).to_owned();
        // The session's runtime folder where there is one (cleared at
        // logout, as a socket should be); beside the state otherwise.
        let runtime_dir = dirs.runtime_dir().map_or_else(|| state_dir.clone(), Path::to_path_buf);
        Some(Paths {
            config_file: dirs.config_dir().join("config.toml"),
            state_file: state_dir.join("state.json"),
            log_dir: state_dir.join("logs"),
            control_socket: runtime_dir.join("control.sock"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config.toml"), text)
    }

    #[test]
    fn a_full_account_parses_with_defaults() {
        let config = parse(
            r#"
[[account]]
id = "work-mail"
source = "mail"
server = "imap.example.com"
username = "me@example.com"
"#,
        )
        .expect("valid");
        let account = &config.accounts[0];
        assert_eq!(account.name, "work-mail");
        assert_eq!(account.source, Source::Mail);
        assert!(account.enabled);
        assert_eq!(account.badge, BadgeMode::Count);
        assert_eq!(account.poll_interval, DEFAULT_POLL_INTERVAL);
    }

    #[test]
    fn an_unknown_field_names_its_line_and_field() {
        let err = parse("[[account]]\nid = \"a\"\nsource = \"mail\"\npasword = \"x\"\n").expect_err("must be refused");
        let message = err.to_string();
        assert!(message.contains("line 4"), "{message}");
        assert!(message.contains("pasword"), "{message}");
    }

    #[test]
    fn a_wrong_type_names_its_line() {
        let err = parse("[[account]]\nid = \"a\"\nsource = \"mail\"\nenabled = \"yes\"\n").expect_err("must be refused");
        let message = err.to_string();
        assert!(message.contains("line 4"), "{message}");
    }

    #[test]
    fn duplicate_ids_name_the_second_line() {
        let err = parse("[[account]]\nid = \"a\"\nsource = \"mail\"\n\n[[account]]\nid = \"a\"\nsource = \"chat\"\n")
            .expect_err("must be refused");
        assert!(matches!(err, ConfigError::Invalid { line: 6, field: "id", .. }), "{err}");
    }

    #[test]
    fn too_short_poll_interval_is_refused() {
        let err = parse("[[account]]\nid = \"t\"\nsource = \"tasks\"\npoll_interval_secs = 2\n").expect_err("must be refused");
        assert!(matches!(err, ConfigError::Invalid { line: 4, field: "poll_interval_secs", .. }), "{err}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_with_the_limit() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.toml");
        let mut text = "# a comment\n".repeat(usize::try_from(MAX_FILE_BYTES).expect("size") / 12 + 1);
        std::fs::write(&path, &text).expect("write");
        let refused = Config::load(&path).expect_err("too large");
        assert!(matches!(refused, ConfigError::TooLarge { limit: MAX_FILE_BYTES, .. }), "{refused:?}");
        assert!(refused.to_string().contains("1024 KiB"), "{refused}");
        // Just under the limit, comments only: the empty config.
        text.truncate(usize::try_from(MAX_FILE_BYTES).expect("size") - 1);
        std::fs::write(&path, &text).expect("write");
        assert!(Config::load(&path).expect("read").accounts.is_empty());
    }

    #[test]
    fn a_file_that_is_not_utf8_is_a_read_error() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, b"[app]\nstart_hidden = \"\xff\"\n").expect("write");
        assert!(matches!(Config::load(&path), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn a_missing_file_is_the_empty_config() {
        let config = Config::load(Path::new("/nonexistent/vigie/config.toml")).expect("empty");
        assert!(config.accounts.is_empty());
    }

    #[test]
    fn hint_rules_match_sender_case_insensitively() {
        let rule = HintRule { from: Source::Mail, sender_contains: "leantime".into(), refresh: Source::Tasks };
        assert!(rule.matches(Source::Mail, "Leantime <notify@pm.example>"));
        assert!(!rule.matches(Source::Chat, "Leantime"));
        assert!(!rule.matches(Source::Mail, "Alice"));
    }
}
