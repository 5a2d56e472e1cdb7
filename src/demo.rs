//! The built-in demo: three accounts (mail, chat, tasks) backed by a small
//! simulated world, so a new user sees the whole app work before configuring
//! anything.
//!
//! The demo travels the real path: its watchers are ordinary [`Watcher`]s
//! under the supervisor and the scheduler, their updates go through the hub's
//! deduplication and badge, and the shell toasts them like any other. Mail and
//! chat behave as push sources (the world wakes them); tasks are polled, and a
//! "Leantime" mail hints the tasks account to refresh at once, which makes the
//! hybrid strategy visible. Now and then the chat "server" drops the
//! connection, so backoff and resync are visible too.
//!
//! Later versions replace the world with local servers that speak each real
//! protocol.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::badge::BadgeMode;
use crate::config::{AccountConfig, DemoSettings, HintRule};
use crate::core::{AccountSpec, Setup};
use crate::model::{AccountId, Item, Source};
use crate::scheduler::ScheduleConfig;
use crate::watcher::{Update, WatchError, Watcher, WatcherContext};

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

/// The simulated servers of the demo.
#[derive(Debug, Default)]
pub struct DemoWorld {
    state: Mutex<WorldState>,
    /// Wakes the push watchers (mail, chat); one stored permit each.
    changed: [Notify; 3],
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
    /// never toasted).
    pub fn new() -> Arc<DemoWorld> {
        let world = Arc::new(DemoWorld::default());
        // The seed items keep fixed keys: they are "the same old mail" in
        // every run, so a restart must not announce them again.
        world.add(Source::Mail, "Welcome to Vigie", "This is a demo mailbox.", "Vigie demo");
        world.add(Source::Mail, "Lunch on Friday?", "Shall we try the new place?", "Camille Durand");
        world.add(Source::Chat, "#general", "Good morning everyone!", "bob");
        world.add(Source::Tasks, "Review the release notes", "Assigned to you", "Leantime");
        world.lock().epoch = Timestamp::now().as_millisecond();
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
                self.add(Source::Tasks, "Fix the login page", "Assigned to you by Alice", "Leantime");
                self.add(Source::Mail, "[Leantime] You were assigned a task", "Fix the login page", "Leantime <notifications@leantime.demo>");
            }
            4 => self.read_oldest(Source::Mail),
            5 => self.add(Source::Chat, "#release", "@you the build is green", "carol"),
            6 => {
                self.lock().chat_drops += 1;
                self.changed[slot(Source::Chat)].notify_one();
            }
            7 => self.read_oldest(Source::Chat),
            _ => self.read_oldest(Source::Tasks),
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

/// A watcher over one source of the demo world.
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

    async fn poll_loop(&self, ctx: &mut WatcherContext) -> Result<(), WatchError> {
        ctx.set_polling().await;
        let mut seen = Vec::new();
        while ctx.next_poll().await.is_some() {
            let (update, now) = self.update(&seen);
            let changed = now.iter().any(|n| !seen.iter().any(|s: &DemoItem| s.key == n.key));
            seen = now;
            ctx.publish(update).await;
            ctx.poll_succeeded(changed);
        }
        Ok(())
    }
}

impl Watcher for DemoWatcher {
    fn run<'a>(&'a self, ctx: &'a mut WatcherContext) -> BoxFuture<'a, Result<(), WatchError>> {
        Box::pin(async move {
            match self.source {
                Source::Mail | Source::Chat => self.push_loop(ctx).await,
                Source::Tasks => self.poll_loop(ctx).await,
            }
        })
    }
}

/// Adds the demo accounts, their world and the "Leantime mail → refresh
/// tasks" hint to `setup`.
pub fn add_to(setup: &mut Setup, settings: &DemoSettings) {
    let world = DemoWorld::new();
    let every = settings.every();
    for (source, id, name) in [
        (Source::Mail, "demo-mail", "Demo mail"),
        (Source::Chat, "demo-chat", "Demo chat"),
        (Source::Tasks, "demo-tasks", "Demo tasks"),
    ] {
        let account = AccountId::new(id);
        let schedule = match source {
            // The tasks "server" is polled like Leantime would be: slowly,
            // faster for a while after a change, at once on a hint.
            Source::Tasks => ScheduleConfig {
                boost: Some((every.max(Duration::from_secs(10)), Duration::from_secs(300))),
                ..ScheduleConfig::polling(Duration::from_secs(60))
            },
            Source::Mail | Source::Chat => ScheduleConfig {
                push_resync: Some(Duration::from_secs(900)),
                ..ScheduleConfig::polling(Duration::from_secs(60))
            },
        };
        setup.accounts.push(AccountSpec {
            config: AccountConfig {
                id: account.clone(),
                name: name.to_owned(),
                source,
                enabled: true,
                badge: BadgeMode::Count,
                poll_interval: Duration::from_secs(60),
                server: None,
                username: None,
                auth: crate::leantime::AuthKind::Token,
                mail: None,
            },
            schedule,
            watcher: Box::new(DemoWatcher { world: world.clone(), source, account }),
        });
    }
    setup.hints.push(HintRule {
        from: Source::Mail,
        sender_contains: "leantime".to_owned(),
        refresh: Source::Tasks,
    });
    setup.demo = true;
    setup.background.push(Box::new(move |cancel| Box::pin(world.run(every, cancel))));
}
