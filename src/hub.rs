//! The hub: the single owner of account state, deduplication and the state
//! file.
//!
//! Every watcher report funnels through [`Hub::apply`], one at a time, so
//! there are no locks and no two places that could disagree about what was
//! already notified. For each update the hub:
//!
//! 1. drops items whose key was notified before (across reconnects and
//!    restarts); the very first update of an account is its *baseline*: its
//!    items are remembered but not announced, so adding an account with
//!    10,000 unread mails sets a count and fires no toast;
//! 2. writes the state file, *then* announces, so a crash between the two can
//!    lose a toast's "already shown" mark only in the safe direction;
//! 3. derives the badge from all accounts and announces it when it changed;
//! 4. fires hint triggers ("a mail from Leantime: refresh tasks");
//! 5. while toasts are held (paused, or quiet hours), marks new items
//!    silent and counts them per source (in the state file, so a restart
//!    overnight loses nothing); when holding ends, announces one digest.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::badge::{self, Badge, BadgeMode, Unread};
use crate::config::{AccountConfig, HintRule};
use crate::event::{AccountSnapshot, CoreEvent, Snapshot};
use crate::model::{AccountId, Connectivity, Source};
use crate::pause::QuietHours;
use crate::scheduler::{Trigger, TriggerHandle};
use crate::store::{Recovered, StateStore};
use crate::watcher::{Envelope, Report, Update};

#[derive(Debug)]
struct AccountState {
    name: String,
    source: Source,
    badge_mode: BadgeMode,
    connectivity: Connectivity,
    unread: Unread,
    last_event_at: Option<Timestamp>,
    last_error: Option<String>,
    notice: Option<String>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Hub {
    store: StateStore,
    order: Vec<AccountId>,
    accounts: BTreeMap<AccountId, AccountState>,
    triggers: BTreeMap<AccountId, TriggerHandle>,
    hints: Vec<HintRule>,
    demo: bool,
    badge: (Badge, BTreeMap<Source, Badge>),
    save_problem: Option<String>,
    /// A save happened since [`Hub::take_saved`] last asked.
    saved: bool,
    /// Problems known at start (invalid config, recovered state file).
    startup_problems: Vec<String>,
    quiet_hours: Option<QuietHours>,
}

impl Hub {
    /// A hub over `store` for `accounts`. Disabled accounts are shown but
    /// never counted. State of accounts no longer configured is dropped.
    pub fn new(
        mut store: StateStore,
        recovered: Option<Recovered>,
        accounts: &[AccountConfig],
        hints: Vec<HintRule>,
        demo: bool,
        mut problems: Vec<String>,
    ) -> Hub {
        problems.extend(recovered.map(|r| r.to_string()));
        let ids: Vec<AccountId> = accounts.iter().map(|a| a.id.clone()).collect();
        let forgot = store.retain_accounts(&ids);
        let states = accounts
            .iter()
            .map(|a| {
                let record = store.account(&a.id);
                let (connectivity, unread) = if a.enabled {
                    let unread = record
                        .map(|r| Unread { count: r.unread, dot: r.dot })
                        .unwrap_or_default();
                    (Connectivity::Connecting, unread)
                } else {
                    (Connectivity::Disabled { reason: None }, Unread::default())
                };
                let state = AccountState {
                    name: a.name.clone(),
                    source: a.source,
                    badge_mode: a.badge,
                    connectivity,
                    unread,
                    last_event_at: record.and_then(|r| r.last_event_at),
                    last_error: None,
                    notice: None,
                };
                (a.id.clone(), state)
            })
            .collect();
        let mut hub = Hub {
            store,
            order: ids,
            accounts: states,
            triggers: BTreeMap::new(),
            hints,
            demo,
            badge: Default::default(),
            save_problem: None,
            saved: false,
            startup_problems: problems,
            quiet_hours: None,
        };
        hub.badge = hub.compute_badge();
        if forgot {
            // A removed account's record goes from the disk now, not at the
            // next change of some other account.
            let mut out = Vec::new();
            hub.persist(&mut out);
            hub.startup_problems.extend(out.into_iter().filter_map(|e| match e {
                CoreEvent::Error { message, .. } => Some(message),
                _ => None,
            }));
        }
        hub
    }

    /// Lets hints reach `account`.
    pub fn add_trigger(&mut self, account: AccountId, handle: TriggerHandle) {
        self.triggers.insert(account, handle);
    }

    /// The resume cursor saved for `account`.
    pub fn cursor(&self, account: &AccountId) -> Option<String> {
        self.store.account(account).and_then(|r| r.cursor.clone())
    }

    /// Where the state file lives.
    pub fn state_file(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Whether the state file was saved since the last call (it then needs
    /// syncing to disk).
    pub fn take_saved(&mut self) -> bool {
        std::mem::take(&mut self.saved)
    }

    /// Events to announce at start-up (e.g. a recovered state file).
    pub fn startup_events(&self) -> Vec<CoreEvent> {
        self.startup_problems
            .iter()
            .map(|message| CoreEvent::Error { account: None, message: message.clone() })
            .collect()
    }

    /// Applies one watcher report.
    pub fn apply(&mut self, envelope: Envelope, out: &mut Vec<CoreEvent>) {
        let Envelope { account, report } = envelope;
        match report {
            Report::Update(update) => self.apply_update(account, update, out),
            Report::Connectivity(state) => self.apply_connectivity(account, state, out),
            Report::Notice(notice) => {
                if let Some(state) = self.accounts.get_mut(&account) {
                    state.notice = notice;
                }
            }
        }
    }

    fn apply_update(&mut self, account: AccountId, update: Update, out: &mut Vec<CoreEvent>) {
        let Some(state) = self.accounts.get_mut(&account) else { return };
        let record = self.store.account_mut(&account);
        let baseline = !record.baselined;
        let mut dirty = baseline;
        record.baselined = true;

        // Refreshing "last seen" of known keys alone does not dirty the
        // file: it only steers which keys are forgotten first, and is saved
        // with the next real change.
        record.begin_update();
        let mut fresh = Vec::new();
        for item in update.items {
            if record.remember(&item.key) {
                dirty = true;
                if !baseline {
                    fresh.push(item);
                }
            }
        }
        record.forget_oldest();
        if let Some(count) = update.unread {
            dirty |= record.unread != Some(count);
            record.unread = Some(count);
        }
        if let Some(dot) = update.dot {
            dirty |= record.dot != dot;
            record.dot = dot;
        }
        if let Some(cursor) = update.cursor {
            dirty |= record.cursor.as_ref() != Some(&cursor);
            record.cursor = Some(cursor);
        }
        if !fresh.is_empty() {
            record.last_event_at = Some(Timestamp::now());
        }
        state.unread = Unread { count: record.unread, dot: record.dot };
        state.last_event_at = record.last_event_at;
        let source = state.source;

        if dirty {
            self.persist(out);
        }
        for key in update.read {
            out.push(CoreEvent::ItemRead { account: account.clone(), key });
        }
        if !fresh.is_empty() {
            self.fire_hints(source, fresh.iter().map(|i| i.sender.as_str()));
            let silent = self.is_holding();
            if silent {
                self.store.hold(source, u32::try_from(fresh.len()).unwrap_or(u32::MAX));
                self.persist(out);
            }
            out.push(CoreEvent::NewItems { account, items: fresh, silent });
        }
        self.announce_badge(out);
    }

    fn apply_connectivity(&mut self, account: AccountId, next: Connectivity, out: &mut Vec<CoreEvent>) {
        let Some(state) = self.accounts.get_mut(&account) else { return };
        if state.connectivity == next {
            return;
        }
        match &next {
            Connectivity::BackingOff { reason, .. }
            | Connectivity::AuthFailed { reason }
            | Connectivity::NeedsAttention { reason } => {
                state.last_error = Some(reason.clone());
            }
            Connectivity::RateLimited { .. } => {}
            Connectivity::LivePush | Connectivity::Polling => state.last_error = None,
            Connectivity::Connecting | Connectivity::Disabled { .. } => {}
        }
        state.connectivity = next.clone();
        out.push(CoreEvent::Connectivity { account, source: state.source, state: next });
    }

    /// Pauses notifications until `until`, or resumes with `None`.
    pub fn pause(&mut self, until: Option<Timestamp>, out: &mut Vec<CoreEvent>) {
        self.store.set_paused_until(until);
        self.persist(out);
        self.release_held(out);
    }

    /// Sets the daily quiet hours (`None`: none).
    pub fn set_quiet_hours(&mut self, quiet: Option<QuietHours>, out: &mut Vec<CoreEvent>) {
        self.quiet_hours = quiet;
        self.release_held(out);
    }

    fn is_paused(&self) -> bool {
        self.store.paused_until().is_some_and(|t| t > Timestamp::now())
    }

    /// Until when quiet hours hold toasts now, if they do.
    fn quiet_until(&self) -> Option<Timestamp> {
        self.quiet_hours.and_then(|q| q.active_until(&jiff::ZonedDateTime::now()))
    }

    /// New items are not toasted now.
    fn is_holding(&self) -> bool {
        self.is_paused() || self.quiet_until().is_some()
    }

    /// When the hub must look at the clock again: a pause ends, quiet
    /// hours start or end.
    pub fn next_wake(&self) -> Option<Timestamp> {
        let now = Timestamp::now();
        let pause = self.store.paused_until().filter(|t| *t > now);
        let quiet = self.quiet_hours.and_then(|q| q.next_change(&jiff::ZonedDateTime::now()));
        pause.into_iter().chain(quiet).min()
    }

    /// Time passed: when holding has ended, announces what was held.
    pub fn tick(&mut self, out: &mut Vec<CoreEvent>) {
        self.release_held(out);
    }

    fn release_held(&mut self, out: &mut Vec<CoreEvent>) {
        if self.is_holding() || self.store.held().is_empty() {
            return;
        }
        let held = self.store.take_held();
        self.persist(out);
        tracing::info!(?held, "notifications held back are released as one digest");
        out.push(CoreEvent::Digest { held });
    }

    fn fire_hints<'a>(&self, source: Source, senders: impl Iterator<Item = &'a str> + Clone) {
        for rule in &self.hints {
            if !senders.clone().any(|sender| rule.matches(source, sender)) {
                continue;
            }
            let targets = self.accounts.iter().filter(|(_, state)| state.source == rule.refresh);
            for (id, _) in targets {
                if let Some(trigger) = self.triggers.get(id) {
                    tracing::debug!(account = %id, "hint from {source}: refreshing");
                    trigger.fire(Trigger::Hint);
                }
            }
        }
    }

    /// Writes the state file. A failure is announced once (not at every
    /// change) and the state stays in memory, to be written with the next
    /// change.
    fn persist(&mut self, out: &mut Vec<CoreEvent>) {
        match self.store.save() {
            Ok(()) => {
                self.save_problem = None;
                self.saved = true;
            }
            Err(e) => {
                let message = format!(
                    "{e}. Vigie keeps working; notifications shown since may be shown again after a restart."
                );
                tracing::error!("{message}");
                if self.save_problem.as_ref() != Some(&message) {
                    out.push(CoreEvent::Error { account: None, message: message.clone() });
                }
                self.save_problem = Some(message);
            }
        }
    }

    fn compute_badge(&self) -> (Badge, BTreeMap<Source, Badge>) {
        let counted = || self.accounts.values().map(|s| (s.source, s.badge_mode, &s.unread));
        let badge = Badge::combine(counted().map(|(_, mode, unread)| (mode, unread)));
        (badge, badge::by_source(counted()))
    }

    fn announce_badge(&mut self, out: &mut Vec<CoreEvent>) {
        let next = self.compute_badge();
        if next != self.badge {
            self.badge = next.clone();
            out.push(CoreEvent::Badge { badge: next.0, by_source: next.1 });
        }
    }

    /// The latest state of everything.
    pub fn snapshot(&self) -> Snapshot {
        let accounts = self
            .order
            .iter()
            .filter_map(|id| {
                let s = self.accounts.get(id)?;
                Some(AccountSnapshot {
                    id: id.clone(),
                    name: s.name.clone(),
                    source: s.source,
                    badge_mode: s.badge_mode,
                    connectivity: s.connectivity.clone(),
                    unread: s.unread,
                    last_event_at: s.last_event_at,
                    last_error: s.last_error.clone(),
                    notice: s.notice.clone(),
                })
            })
            .collect();
        Snapshot {
            demo: self.demo,
            paused_until: self.store.paused_until().filter(|t| *t > Timestamp::now()),
            quiet_until: self.quiet_until(),
            badge: self.badge.0,
            by_source: self.badge.1.clone(),
            accounts,
            problems: self.startup_problems.iter().chain(&self.save_problem).cloned().collect(),
        }
    }
}
