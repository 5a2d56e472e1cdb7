//! The `vigie` binary: the tray app, or with `--headless` the core alone.
//!
//! Built without the `app` feature it has no GUI code at all and only runs
//! headless; that is how `cargo test` builds it.

#![cfg_attr(all(not(debug_assertions), target_os = "windows"), windows_subsystem = "windows")]

#[cfg(feature = "app")]
mod app;
mod cli;
#[cfg(feature = "app")]
mod commands;
#[cfg(feature = "app")]
mod ipc;
#[cfg(feature = "app")]
mod toast;
#[cfg(feature = "app")]
mod tray;

fn main() -> std::process::ExitCode {
    cli::main()
}
