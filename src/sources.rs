//! From configuration to running accounts: picks the watcher and the fetch
//! policy for each configured account, or the demo when there is none.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::{AccountConfig, Config};
use crate::core::{AccountSpec, Setup};
use crate::demo;
use crate::imap::ImapWatcher;
use crate::leantime::LeantimeWatcher;
use crate::rocketchat::RocketChatWatcher;
use crate::secrets::SecretStore;
use crate::model::Source;
use crate::scheduler::ScheduleConfig;
use crate::watcher::{WatchError, Watcher, WatcherContext};

/// Whether to run the built-in demo: asked for, or nothing is configured.
pub fn wants_demo(config: &Config, asked: bool) -> bool {
    asked || config.accounts.is_empty()
}

/// Builds the core's setup: the built-in demo when `demo` is set, else the
/// configured accounts, whose secrets come from `secrets`.
pub fn setup_from_config(config: &Config, state_file: PathBuf, demo: bool, secrets: Arc<dyn SecretStore>) -> Setup {
    let mut setup = Setup::new(state_file);
    setup.follow_presence = true;
    setup.quiet_hours = config.notifications.quiet_hours;
    if demo {
        demo::add_to(&mut setup, &config.demo);
        return setup;
    }
    setup.hints = config.hints.clone();
    for account in &config.accounts {
        setup.accounts.push(AccountSpec {
            schedule: schedule_for(account),
            watcher: watcher_for(account, &secrets),
            config: account.clone(),
        });
    }
    setup
}

/// Every keyring entry an account of `source` may have, for removing it.
pub fn secret_names(source: Source) -> &'static [&'static str] {
    match source {
        Source::Mail => &[
            crate::imap::PASSWORD_SECRET,
            crate::imap::ACCESS_TOKEN_SECRET,
            crate::imap::REFRESH_TOKEN_SECRET,
            crate::imap::CLIENT_SECRET_SECRET,
        ],
        Source::Chat => &[crate::rocketchat::TOKEN_SECRET],
        Source::Tasks => &["token", "api-key"],
    }
}

/// Reconnecting a push link: a server restarted for an update is back
/// within seconds, and the first mail after it should not wait for a long
/// draw (full jitter: the n-th retry waits up to 0.5 s × 2ⁿ, at least
/// 0.25 s, never more than 5 minutes). A good sync resets it.
const PUSH_BACKOFF: (Duration, Duration, Duration) =
    (Duration::from_millis(250), Duration::from_millis(500), Duration::from_secs(300));

/// How often a polled source looks while the user is away.
const AWAY_INTERVAL: Duration = Duration::from_secs(300);

/// The fetch policy of `account`'s source.
pub fn schedule_for(account: &AccountConfig) -> ScheduleConfig {
    match account.source {
        // Leantime allows 10 requests a minute before 3.9.7 (the watcher
        // raises this once it knows the version): a burst of three, then
        // one every six seconds. Poll faster for five minutes after a
        // change, every five minutes while the user is away.
        Source::Tasks => ScheduleConfig {
            rate_limit: Some((10, 3)),
            boost: Some((Duration::from_secs(20), Duration::from_secs(300))),
            away_interval: Some(AWAY_INTERVAL),
            ..ScheduleConfig::polling(account.poll_interval)
        },
        // Rocket.Chat pushes; while live, a safety resync every 15 minutes
        // (and on wake, network back or "Refresh now").
        Source::Chat => ScheduleConfig {
            push_resync: Some(Duration::from_secs(900)),
            backoff: PUSH_BACKOFF,
            ..ScheduleConfig::polling(account.poll_interval)
        },
        // IMAP pushes through IDLE or NOTIFY and re-issues IDLE itself;
        // folders beyond the connection cap (or a server without IDLE) are
        // polled, slower while the user is away.
        Source::Mail => ScheduleConfig {
            away_interval: Some(AWAY_INTERVAL),
            backoff: PUSH_BACKOFF,
            ..ScheduleConfig::polling(account.poll_interval)
        },
    }
}

fn watcher_for(account: &AccountConfig, secrets: &Arc<dyn SecretStore>) -> Box<dyn Watcher> {
    let (id, secrets) = (account.id.clone(), secrets.clone());
    match (account.source, &account.server) {
        (Source::Mail, _) => match ImapWatcher::from_config(account, secrets) {
            Ok(watcher) => Box::new(watcher),
            Err(reason) => Box::new(CannotRun(reason)),
        },
        (Source::Chat, Some(server)) => Box::new(RocketChatWatcher::new(id, server, account.chat.clone(), secrets)),
        (Source::Tasks, Some(server)) => Box::new(LeantimeWatcher::new(id, server, account.auth, account.tasks.clone(), secrets)),
        (Source::Chat, None) => Box::new(CannotRun("set `server` to the Rocket.Chat address, e.g. https://chat.example.com".to_owned())),
        (Source::Tasks, None) => Box::new(CannotRun("set `server` to the Leantime address, e.g. https://pm.example.com".to_owned())),
    }
}

/// The watcher of an account that cannot run (a missing or invalid
/// setting): shows it as disabled with the reason.
pub struct CannotRun(pub String);

impl Watcher for CannotRun {
    fn run<'a>(&'a self, _ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(async move { Err(WatchError::Unsupported(self.0.clone())) })
    }
}
