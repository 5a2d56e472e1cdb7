//! Integration tests of Vigie's headless core, one module per area:
//!
//! - `support`: shared helpers (deadlines, a scripted watcher, a core
//!   harness, the headless binary runner).
//! - `scheduler`: intervals, coalescing, gaps, rate limits, backoff,
//!   push/poll modes and boost; the async poll gate.
//! - `core`: the core end to end with scripted watchers: baseline, dedup,
//!   restarts, supervision, hints, pause, disabled accounts, shutdown.
//! - `store`: the state file: corrupt files are kept aside, an unwritable
//!   location does not stop the core.
//! - `crash`: the app killed at random points while it writes its state,
//!   restarted each time: nothing twice, nothing lost but the announcement
//!   a kill interrupted.
//! - `demo`: the built-in demo world through the real core (hints, drops).
//! - `headless`: the `vigie --headless` binary and its JSON-lines contract.
//! - `imap_dovecot`: the real Dovecot the mail tests start
//!   (`support::dovecot`).
//! - `imap_watcher`: the IMAP watcher against that Dovecot, through the
//!   real core.
//! - `imap_local_server`: the watcher against the built-in local IMAP
//!   server meant for the demo.
//! - `imap_oauth`: XOAUTH2 and OAUTHBEARER sign-in, token refresh and
//!   refusals.
//! - `imap_notify`: connections per folder with and without NOTIFY, and
//!   the connection cap.
//! - `imap_probe`: "Test connection" for a mail account against that
//!   Dovecot, step by step.
//! - `imap_tls`: the same over TLS with a self-signed certificate:
//!   refused, then pinned.
//! - `leantime_poller`: the Leantime watcher against the fake server,
//!   through the real core.
//! - `leantime`: Leantime's JSON-RPC wire format against the fixtures in
//!   `tests/fixtures/leantime/` (copied from the project's protocol notes).
//! - `leantime_fake`: the fake Leantime server (`vigie::demo::fake_leantime`,
//!   also the demo's server)
//!   answers, refuses and rate-limits like the fixtures say.
//! - `rocketchat`: the Rocket.Chat watcher against the fake Rocket.Chat in
//!   `support::fake_rocketchat` (REST and DDP), through the real core.
//! - `rocketchat_login`: password and two-factor sign-in against the fake.
//! - `settings`: the settings window's changes reaching the config file,
//!   the keyring and the running core.
//! - `rocketchat_fake`: the fake Rocket.Chat speaks the fixtures' wire
//!   format (raw WebSocket and HTTP clients).
//! - `rocketchat_probe`, `leantime_probe`: "Test connection" for a chat and
//!   a tasks account against the fakes, step by step.
//! - `secrets`: no password, token or API key reaches the log, the events,
//!   the state and config files or a `Debug` output, on any path that logs
//!   (refusals by servers that quote the request included).
//! - `faults`: seeded randomized scenarios through a fault-injecting proxy
//!   (`support::faulty`), per source and all three at once, with restarts
//!   and a sleep: every item announced exactly once, counts right
//!   (`VIGIE_FAULT_SEED` replays one); ignored, a soak of rounds of them
//!   with the process's RSS, sockets and tasks kept flat.
//! - `parsers`: property tests of every parser of server and disk input
//!   (DDP and EJSON, JSON-RPC, IMAP headers and previews, folder names, the
//!   config file and its editor): no panic, a typed error or a sane value.

mod support;

mod control;
mod core;
mod crash;
mod demo;
mod faults;
mod headless;
mod imap_dovecot;
mod imap_local_server;
mod imap_notify;
mod imap_oauth;
mod imap_probe;
mod imap_tls;
mod imap_watcher;
mod leantime;
mod leantime_poller;
mod leantime_fake;
mod leantime_probe;
mod parsers;
mod rocketchat;
mod rocketchat_fake;
mod rocketchat_login;
mod rocketchat_probe;
mod scheduler;
mod secrets;
mod settings;
mod store;
