//! The built-in demo: three accounts (mail, chat, tasks), so a new user sees
//! the whole app work before configuring anything.
//!
//! Every demo account is a real watcher talking its real protocol to a small
//! server Vigie runs on loopback, so the demo travels the whole path: TCP,
//! login, push or polling, the scheduler, the hub's deduplication and badge,
//! toasts and their buttons.
//!
//! - Mail: the IMAP watcher on the local IMAP server
//!   ([`crate::imap::local_server`]), pushed to through IDLE.
//! - Chat: the Rocket.Chat watcher on the local Rocket.Chat
//!   ([`fake_rocketchat`], see [`chat`]), which drops the connection now and
//!   then, so reconnecting and resync show too.
//! - Tasks: the Leantime watcher polling the local Leantime
//!   ([`fake_leantime`]). A "Leantime" mail hints the tasks account to
//!   refresh at once, which makes the hybrid strategy visible: the task
//!   shows with its mail, not a poll interval later.
//!
//! The servers are the tests' fakes; a server that cannot start (no loopback
//! port) leaves its account out and says so.

pub mod chat;
pub mod fake_leantime;
pub mod fake_rocketchat;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::config::{AccountConfig, DemoSettings, HintRule};
use crate::core::{AccountSpec, Setup};
use crate::imap::local_server::{self, LocalImapServer};
use crate::imap::{ImapWatcher, MailSettings, PASSWORD_SECRET, TlsMode};
use crate::leantime::{AuthKind, LeantimeWatcher, TasksSettings};
use crate::model::{AccountId, Source};
use crate::scheduler::ScheduleConfig;
use crate::secrets::{MemorySecrets, SecretStore};
use fake_leantime::{FakeLeantime, ServerVersion};

const MAIL: &str = "demo-mail";
const TASKS: &str = "demo-tasks";
const LEANTIME_SENDER: &str = "Leantime <notifications@leantime.demo>";

/// The demo's mail and Leantime servers, moved by one script (so that a
/// task and its "Leantime" mail arrive together). The chat server has its
/// own ([`chat`]).
pub struct DemoWorld {
    mail: Option<LocalImapServer>,
    leantime: Option<FakeLeantime>,
    step: AtomicU64,
}

impl DemoWorld {
    /// A world over whichever servers started, with two old unread mails
    /// (they form the baseline: counted, never toasted).
    fn new(mail: Option<LocalImapServer>, leantime: Option<FakeLeantime>) -> Arc<DemoWorld> {
        if let Some(mail) = &mail {
            mail.deliver("Vigie demo <demo@vigie.localhost>", "Welcome to Vigie", "This is a demo mailbox.");
            mail.deliver("Camille Durand <camille@vigie.localhost>", "Lunch on Friday?", "Shall we try the new place?");
        }
        if let Some(leantime) = &leantime {
            // Its seed items are old news; new ones get ids no earlier run
            // used (a few per second at most, so a hundred ids per second of
            // wall clock is plenty).
            leantime.number_new_items_from(jiff::Timestamp::now().as_millisecond() / 10);
        }
        Arc::new(DemoWorld { mail, leantime, step: AtomicU64::new(0) })
    }

    /// Advances the world by one scripted event.
    pub fn step(&self) {
        let step = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        let deliver = |from: &str, subject: &str, body: &str| {
            if let Some(mail) = &self.mail {
                mail.deliver(from, subject, body);
            }
        };
        match (step % 4, &self.mail, &self.leantime) {
            (1, _, _) => deliver("Alice Martin <alice@vigie.localhost>", "Quarterly figures", "Here are the numbers we discussed."),
            // The project tool changed and mailed about it; the tasks
            // account only learns of it when it polls, or is hinted.
            (2, _, leantime) => {
                if let Some(leantime) = leantime {
                    leantime.assign_ticket("Fix the login page");
                }
                deliver(LEANTIME_SENDER, "[Leantime] You were assigned a task", "Fix the login page");
            }
            (3, Some(mail), _) => {
                mail.read_oldest_elsewhere();
            }
            // No mail about this one: the next count-only poll finds it.
            (0, _, Some(leantime)) => {
                leantime.add_notification("Alice Martin mentioned you in <i>Release plan</i>", "Alice Martin");
            }
            _ => {}
        }
    }

    /// Steps the world every `every` until cancelled.
    pub async fn run(self: Arc<Self>, every: Duration, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticks.tick() => self.step(),
            }
        }
    }
}

/// Adds the demo accounts, their local servers and the "Leantime mail →
/// refresh tasks" hint to `setup`.
pub fn add_to(setup: &mut Setup, settings: &DemoSettings) {
    let every = settings.every();
    let problem = |what: &str, e: std::io::Error| {
        tracing::warn!("the demo's local {what} server could not start: {e}");
        format!("The demo's local {what} server could not start ({e}); the demo runs without it.")
    };
    let mut problems = Vec::new();
    let mail = match LocalImapServer::bind() {
        Ok((server, serving)) => {
            setup.accounts.push(demo_mail_account(&server));
            Some((server, serving))
        }
        Err(e) => {
            problems.push(problem("mail", e));
            None
        }
    };
    if let Err(e) = chat::add_to(setup, every) {
        problems.push(problem("Rocket.Chat", e));
    }
    let leantime = match FakeLeantime::bind(ServerVersion::V3_9_6) {
        Ok((server, serving)) => {
            setup.accounts.push(demo_tasks_account(&server, every));
            Some((server, serving))
        }
        Err(e) => {
            problems.push(problem("Leantime", e));
            None
        }
    };
    setup.problems.extend(problems);
    let (mail, mail_serving) = mail.unzip();
    let (leantime, leantime_serving) = leantime.unzip();
    let world = DemoWorld::new(mail, leantime);
    // Mail first, then chat, then tasks, as everywhere else.
    setup.accounts.sort_by_key(|a| a.config.source);
    setup.hints.push(HintRule {
        from: Source::Mail,
        sender_contains: "leantime".to_owned(),
        refresh: Source::Tasks,
    });
    setup.demo = true;
    setup.background.push(Box::new(move |cancel| {
        Box::pin(async move {
            let mail = async {
                if let Some(serving) = mail_serving {
                    serving.run(cancel.clone()).await;
                }
            };
            let leantime = async {
                if let Some(serving) = leantime_serving {
                    serving.run(cancel.clone()).await;
                }
            };
            tokio::join!(mail, leantime, world.run(every, cancel.clone()));
        })
    }));
}

fn remembered(account: &str, name: &str, secret: &str) -> Arc<dyn SecretStore> {
    let secrets = Arc::new(MemorySecrets::default());
    if let Err(e) = secrets.set(&AccountId::new(account), name, &SecretString::from(secret.to_owned())) {
        tracing::warn!("the demo's {name} could not be kept: {e}");
    }
    secrets
}

/// The demo's mail account: the IMAP watcher on the local server, in plain
/// text on loopback (allowed for this account only).
fn demo_mail_account(server: &LocalImapServer) -> AccountSpec {
    let mail = MailSettings {
        port: Some(server.port()),
        tls: TlsMode::None,
        allow_plaintext_on_loopback: true,
        ..MailSettings::default()
    };
    let config = AccountConfig {
        server: Some("127.0.0.1".to_owned()),
        username: Some(local_server::USER.to_owned()),
        mail: Some(mail),
        ..AccountConfig::new(AccountId::new(MAIL), "Demo mail", Source::Mail)
    };
    let secrets = remembered(MAIL, PASSWORD_SECRET, local_server::PASSWORD);
    let watcher: Box<dyn crate::watcher::Watcher> = match ImapWatcher::from_config(&config, secrets) {
        Ok(watcher) => Box::new(watcher),
        Err(reason) => Box::new(crate::sources::CannotRun(reason)),
    };
    AccountSpec { schedule: crate::sources::schedule_for(&config), config, watcher }
}

/// The demo's tasks account: the real Leantime watcher on the local server,
/// with the real schedule (slow polls, faster after a change, at once on a
/// hint).
fn demo_tasks_account(server: &FakeLeantime, every: Duration) -> AccountSpec {
    let secrets = remembered(TASKS, AuthKind::Token.secret_name(), server.token());
    let watcher = LeantimeWatcher::new(AccountId::new(TASKS), &server.base_url(), AuthKind::Token, TasksSettings::default(), secrets);
    let config = AccountConfig { server: Some(server.base_url()), ..AccountConfig::new(AccountId::new(TASKS), "Demo tasks", Source::Tasks) };
    let schedule = ScheduleConfig {
        boost: Some((every.max(Duration::from_secs(10)), Duration::from_secs(300))),
        ..crate::sources::schedule_for(&config)
    };
    AccountSpec { config, schedule, watcher: Box::new(watcher) }
}
