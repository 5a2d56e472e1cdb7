//! Vigie's notifier core: watches mail, team chat and a project tool and
//! reports what is new, with no GUI and no Tauri.
//!
//! The Tauri tray shell (`src-tauri/`) and the `--headless` JSON-lines mode
//! are two front ends over this library.
//!
//! # Layout
//!
//! - [`model`]: the shared vocabulary: sources, accounts, items, connectivity.
//! - [`config`]: the TOML config file and the platform paths.
//! - [`secrets`]: the OS keyring behind a trait; no plaintext fallback.
//! - [`watcher`]: the interface sources implement, and the supervisor that
//!   restarts them with backoff.
//! - [`scheduler`]: when to fetch: intervals, triggers, coalescing, rate
//!   limits, backoff, push/poll modes. [`backoff`] holds the pure policies.
//! - [`hub`] (private): the single owner of dedup state, counts and the badge.
//! - [`store`]: the state file (cursors, notified keys, last counts).
//! - [`badge`]: the unified badge; [`icon`] draws it into tray pixels.
//! - [`core`]: start and stop everything; [`event`]: what comes out.
//! - [`pause`]: "pause notifications" choices. [`netwatch`]: network-back
//!   detection.
//! - [`wake`]: sleep/resume detection. [`presence`]: the user away (screen
//!   locked, session idle) or back. [`demo`]: the built-in demo world.
//! - [`settings`]: the settings window's changes: config file, keyring,
//!   core reload.
//! - [`control`]: the local socket other processes use: the settings
//!   window, `vigie --status`, a second launch.
//! - [`sources`]: from config to watchers. [`headless`]: JSON lines on stdout.
//! - [`leantime`]: the Leantime poller and its JSON-RPC wire layer.
//! - [`rocketchat`]: the Rocket.Chat watcher: DDP push, REST resync, login.
//! - [`imap`]: the IMAP mail watcher (IDLE or NOTIFY, UID cursors, TLS
//!   pinning, OAuth).
//! - [`probe`]: "Test connection": an account's sign-in run once, step by
//!   step, for the settings window.
//! - [`web`]: HTTP(S) servers (chat, tasks): plain HTTP only to this
//!   computer, the TLS setup, and the probe's first steps.
//! - [`logging`]: rotating log files. [`links`]: which item links "Open"
//!   may hand to the operating system.
//! - `fuzzing` (hidden): the parsers' entry points for the fuzz targets
//!   (`fuzz/`) and the property tests.

pub mod backoff;
pub mod badge;
pub mod config;
#[cfg(unix)]
pub mod control;
pub mod core;
pub mod demo;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod headless;
mod hub;
pub mod icon;
pub mod imap;
pub mod leantime;
pub mod links;
pub mod logging;
pub mod model;
pub mod netwatch;
pub mod pause;
pub mod presence;
pub mod probe;
pub mod rocketchat;
pub mod scheduler;
pub mod secrets;
pub mod settings;
pub mod sources;
pub mod store;
pub mod wake;
pub mod watcher;
pub mod web;

pub use crate::core::{AccountSpec, Core, CoreHandle, Setup};
pub use crate::event::{CoreEvent, Snapshot};
