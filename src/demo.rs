//! The built-in demo: three accounts (mail, chat, tasks), so a new user sees
//! the whole app work before configuring anything.
//!
//! The demo travels the real path: its watchers are ordinary [`Watcher`]s
//! under the supervisor and the scheduler, their updates go through the hub's
//! deduplication and badge, and the shell toasts them like any other.
//!
//! - Tasks: the real Leantime watcher polls a local JSON-RPC server on
//!   loopback ([`fake_leantime`], the same fake the tests use), which now and
//!   then assigns a task or adds a notification. A "Leantime" mail hints the
//!   tasks account to refresh at once, which makes the hybrid strategy
//!   visible: the task shows with its mail, not a poll interval later.
//! - Mail and chat: a small simulated world that pushes, until their own
//!   local servers exist. Now and then the chat "server" drops the
//!   connection, so backoff and resync are visible too.

pub mod fake_leantime;

pub mod chat;
pub mod fake_rocketchat;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use secrecy::SecretString;

use crate::config::{AccountConfig, DemoSettings, HintRule};
use crate::core::{AccountSpec, Setup};
use crate::leantime::{AuthKind, LeantimeWatcher, TasksSettings};
use crate::model::{AccountId, Item, Source};
use crate::scheduler::ScheduleConfig;
use crate::secrets::{MemorySecrets, SecretStore};
use crate::watcher::{Update, WatchError, Watcher, WatcherContext};
use fake_leantime::{FakeLeantime, ServerVersion};

/// An item in the simulated world.
#[derive(Debug, Clone)]
struct DemoItem {
    key: String,
    title: String,
    preview: String,
    sender: String,
    time: Timestamp,
}

#[derive(Debug, Default)]
struct WorldState {
    step: u64,
    next_id: u64,
    /// Keys of generated items start with this, so a restarted demo (a new
    /// world) never reuses an old key, as a real server would not.
    epoch: i64,
    unread: [Vec<DemoItem>; 3],
    /// The chat server drops its connections once at this generation.
    chat_drops: u64,
}

/// The simulated servers of the demo, and the local Leantime.
pub struct DemoWorld {
    state: Mutex<WorldState>,
    /// Wakes the push watchers (mail, chat); one stored permit each.
    changed: [Notify; 3],
    /// The tasks account's server; `None` if it could not start.
    leantime: Option<FakeLeantime>,
}

fn slot(source: Source) -> usize {
    match source {
        Source::Mail => 0,
        Source::Chat => 1,
        Source::Tasks => 2,
    }
}

impl DemoWorld {
    /// A world with a few old unread items (they form the baseline: counted,
    /// never toasted), whose tasks live on `leantime`.
    pub fn new(leantime: Option<FakeLeantime>) -> Arc<DemoWorld> {
        let world = Arc::new(DemoWorld {
            state: Mutex::default(),
            changed: Default::default(),
            leantime,
        });
        // The seed items keep fixed keys: they are "the same old mail" in
        // every run, so a restart must not announce them again.
        world.add(Source::Mail, "Welcome to Vigie", "This is a demo mailbox.", "Vigie demo");
        world.add(Source::Mail, "Lunch on Friday?", "Shall we try the new place?", "Camille Durand");
        world.add(Source::Chat, "#general", "Good morning everyone!", "bob");
        let epoch = Timestamp::now().as_millisecond();
        world.lock().epoch = epoch;
        if let Some(leantime) = &world.leantime {
            // Its seed items are old news too; new ones get ids no earlier
            // run used (a few per second at most, so a hundred ids per
            // second of wall clock is plenty).
            leantime.number_new_items_from(epoch / 10);
        }
        world
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WorldState> {
        // A panic elsewhere cannot leave this small state half-updated in a
        // way that matters to a demo; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, source: Source, title: &str, preview: &str, sender: &str) {
        let mut state = self.lock();
        state.next_id += 1;
        let item = DemoItem {
            key: match state.epoch {
                0 => format!("{}-{}", source.as_str(), state.next_id),
                epoch => format!("{}-{epoch}-{}", source.as_str(), state.next_id),
            },
            title: title.to_owned(),
            preview: preview.to_owned(),
            sender: sender.to_owned(),
            time: Timestamp::now(),
        };
        state.unread[slot(source)].push(item);
        drop(state);
        self.changed[slot(source)].notify_one();
    }

    fn read_oldest(&self, source: Source) {
        let mut state = self.lock();
        if !state.unread[slot(source)].is_empty() {
            state.unread[slot(source)].remove(0);
        }
        drop(state);
        self.changed[slot(source)].notify_one();
    }

    /// Advances the world by one scripted event.
    pub fn step(&self) {
        let step = {
            let mut state = self.lock();
            state.step += 1;
            state.step
        };
        match step % 8 {
            1 => self.add(Source::Mail, "Quarterly figures", "Here are the numbers we discussed.", "Alice Martin"),
            2 => self.add(Source::Chat, "Direct message", "Do you have a minute?", "alice"),
            3 => {
                // The project tool changed and mailed about it; the tasks
                // account only learns of it when it polls (or is hinted).
                if let Some(leantime) = &self.leantime {
                    leantime.assign_ticket("Fix the login page");
                }
                self.add(Source::Mail, "[Leantime] You were assigned a task", "Fix the login page", "Leantime <notifications@leantime.demo>");
            }
            4 => self.read_oldest(Source::Mail),
            5 => self.add(Source::Chat, "#release", "@you the build is green", "carol"),
            6 => {
                self.lock().chat_drops += 1;
                self.changed[slot(Source::Chat)].notify_one();
            }
            7 => self.read_oldest(Source::Chat),
            // No mail about this one: the next poll finds it.
            _ => {
                if let Some(leantime) = &self.leantime {
                    leantime.add_notification("Alice Martin mentioned you in <i>Release plan</i>", "Alice Martin");
                }
            }
        }
    }

    fn view(&self, source: Source) -> Vec<DemoItem> {
        self.lock().unread[slot(source)].clone()
    }

    fn chat_drops(&self) -> u64 {
        self.lock().chat_drops
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

/// A push watcher over the demo world's mail or chat.
struct DemoWatcher {
    world: Arc<DemoWorld>,
    source: Source,
    account: AccountId,
}

impl DemoWatcher {
    fn update(&self, previous: &[DemoItem]) -> (Update, Vec<DemoItem>) {
        let now = self.world.view(self.source);
        let read = previous
            .iter()
            .filter(|old| !now.iter().any(|n| n.key == old.key))
            .map(|old| old.key.clone())
            .collect();
        let items = now
            .iter()
            .map(|d| Item {
                source: self.source,
                account: self.account.clone(),
                key: d.key.clone(),
                title: d.title.clone(),
                preview: d.preview.clone(),
                sender: d.sender.clone(),
                link: None,
                time: d.time,
            })
            .collect();
        let count = u32::try_from(now.len()).unwrap_or(u32::MAX);
        (Update { items, read, unread: Some(count), ..Update::default() }, now)
    }

    async fn push_loop(&self, ctx: &mut WatcherContext) -> Result<(), WatchError> {
        let drops_at_connect = self.world.chat_drops();
        let (update, mut seen) = self.update(&[]);
        ctx.publish(update).await;
        ctx.set_live().await;
        loop {
            tokio::select! {
                () = self.world.changed[slot(self.source)].notified() => {}
                poll = ctx.next_poll() => if poll.is_none() { return Ok(()) },
            }
            if self.source == Source::Chat && self.world.chat_drops() != drops_at_connect {
                return Err(WatchError::Transient("the demo chat server closed the connection".to_owned()));
            }
            let (update, now) = self.update(&seen);
            seen = now;
            ctx.publish(update).await;
            ctx.poll_succeeded(false);
        }
    }
}

impl Watcher for DemoWatcher {
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(self.push_loop(ctx))
    }
}

/// Adds the demo accounts, their world, the local Leantime and the
/// "Leantime mail → refresh tasks" hint to `setup`.
pub fn add_to(setup: &mut Setup, settings: &DemoSettings) {
    let every = settings.every();
    let leantime = match FakeLeantime::bind(ServerVersion::V3_9_6) {
        Ok((server, serving)) => {
            setup.accounts.push(demo_tasks_account(&server, every));
            Some((server, serving))
        }
        Err(e) => {
            setup.problems.push(format!("The demo's local Leantime server could not start ({e}); the demo runs without tasks."));
            None
        }
    };
    let (leantime, serving) = leantime.unzip();
    let world = DemoWorld::new(leantime);
    for (source, id, name) in [(Source::Mail, "demo-mail", "Demo mail"), (Source::Chat, "demo-chat", "Demo chat")] {
        let account = AccountId::new(id);
        setup.accounts.push(AccountSpec {
            config: demo_account(id, name, source, None),
            schedule: ScheduleConfig {
                push_resync: Some(Duration::from_secs(900)),
                ..ScheduleConfig::polling(Duration::from_secs(60))
            },
            watcher: Box::new(DemoWatcher { world: world.clone(), source, account }),
        });
    }
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
            let server = async {
                if let Some(serving) = serving {
                    serving.run(cancel.clone()).await;
                }
            };
            tokio::join!(server, world.run(every, cancel.clone()));
        })
    }));
}

/// The demo's tasks account: the real Leantime watcher on the local server,
/// with the real schedule (slow polls, faster after a change, at once on a
/// hint).
fn demo_tasks_account(server: &FakeLeantime, every: Duration) -> AccountSpec {
    const ID: &str = "demo-tasks";
    let secrets = Arc::new(MemorySecrets::default());
    let token = SecretString::from(server.token().to_owned());
    if let Err(e) = secrets.set(&AccountId::new(ID), AuthKind::Token.secret_name(), &token) {
        tracing::warn!("the demo token could not be kept: {e}");
    }
    let watcher = LeantimeWatcher::new(AccountId::new(ID), &server.base_url(), AuthKind::Token, TasksSettings::default(), secrets);
    AccountSpec {
        config: demo_account(ID, "Demo tasks", Source::Tasks, Some(server.base_url())),
        schedule: ScheduleConfig {
            rate_limit: Some((10, 3)),
            boost: Some((every.max(Duration::from_secs(10)), Duration::from_secs(300))),
            away_interval: Some(Duration::from_secs(300)),
            ..ScheduleConfig::polling(Duration::from_secs(60))
        },
        watcher: Box::new(watcher),
    }
}

fn demo_account(id: &str, name: &str, source: Source, server: Option<String>) -> AccountConfig {
    AccountConfig { server, ..AccountConfig::new(AccountId::new(id), name, source) }
}
