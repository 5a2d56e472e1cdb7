//! From configuration to running accounts: picks the watcher and the fetch
//! policy for each configured account, or the demo when there is none.

use std::path::PathBuf;

use futures_util::future::BoxFuture;

use crate::config::{AccountConfig, Config};
use crate::core::{AccountSpec, Setup};
use crate::demo;
use crate::model::Source;
use crate::scheduler::ScheduleConfig;
use crate::watcher::{WatchError, Watcher, WatcherContext};

/// Whether to run the built-in demo: asked for, or nothing is configured.
pub fn wants_demo(config: &Config, asked: bool) -> bool {
    asked || config.accounts.is_empty()
}

/// Builds the core's setup: the built-in demo when `demo` is set, else the
/// configured accounts.
pub fn setup_from_config(config: &Config, state_file: PathBuf, demo: bool) -> Setup {
    let mut setup = Setup::new(state_file);
    if demo {
        demo::add_to(&mut setup, &config.demo);
        return setup;
    }
    setup.hints = config.hints.clone();
    for account in &config.accounts {
        setup.accounts.push(AccountSpec {
            schedule: ScheduleConfig::polling(account.poll_interval),
            watcher: watcher_for(account),
            config: account.clone(),
        });
    }
    setup
}

fn watcher_for(account: &AccountConfig) -> Box<dyn Watcher> {
    let what = match account.source {
        Source::Mail => "Mail (IMAP)",
        Source::Chat => "Rocket.Chat",
        Source::Tasks => "Leantime",
    };
    Box::new(NotInThisBuild(format!(
        "{what} accounts are not supported by this version of Vigie yet; the account is kept and will work after an update"
    )))
}

/// The watcher of a source this build does not have: reports it once and
/// shows the account as disabled with the reason.
struct NotInThisBuild(String);

impl Watcher for NotInThisBuild {
    fn run<'a>(&'a self, _ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(async move { Err(WatchError::Unsupported(self.0.clone())) })
    }
}
