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

fn schedule_for(account: &AccountConfig) -> ScheduleConfig {
    match account.source {
        // Leantime allows 10 requests a minute before 3.9.7: a burst of
        // three, then one every six seconds; poll faster for five minutes
        // after a change.
        Source::Tasks => ScheduleConfig {
            rate_limit: Some((10, 3)),
            boost: Some((Duration::from_secs(20), Duration::from_secs(300))),
            ..ScheduleConfig::polling(account.poll_interval)
        },
        Source::Mail | Source::Chat => ScheduleConfig::polling(account.poll_interval),
    }
}

fn watcher_for(account: &AccountConfig, secrets: &Arc<dyn SecretStore>) -> Box<dyn Watcher> {
    let what = match (account.source, &account.server) {
        (Source::Tasks, Some(server)) => {
            return Box::new(LeantimeWatcher::new(account.id.clone(), server, account.auth, secrets.clone()));
        }
        (Source::Tasks, None) => {
            return Box::new(NotInThisBuild("set `server` to the Leantime address, e.g. https://pm.example.com".to_owned()));
        }
        (Source::Mail, _) => {
            return match ImapWatcher::from_config(account, secrets.clone()) {
                Ok(watcher) => Box::new(watcher),
                Err(reason) => Box::new(NotInThisBuild(reason)),
            };
        }
        (Source::Chat, _) => "Rocket.Chat",
    };
    Box::new(NotInThisBuild(format!(
        "{what} accounts are not supported by this version of Vigie yet; the account is kept and will work after an update"
    )))
}

/// The watcher of an account that cannot run (a source this build does not
/// have yet, or a missing setting): shows it as disabled with the reason.
struct NotInThisBuild(String);

impl Watcher for NotInThisBuild {
    fn run<'a>(&'a self, _ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(async move { Err(WatchError::Unsupported(self.0.clone())) })
    }
}
