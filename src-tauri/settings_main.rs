//! The `vigie-settings` binary: the settings window, a Tauri webview in a
//! process of its own, started by the tray app (`vigie`) when the user asks.
//!
//! It holds no state: each command the page calls goes to the running Vigie
//! over the control socket ([`vigie::control`]), and what Vigie pushes
//! (state changes, new items, connection-test steps) comes back as Tauri
//! events. Closing the window ends the process, and so does Vigie going
//! away. Started with no Vigie running, it starts Vigie (which opens the
//! window) and leaves.

#![cfg_attr(all(not(debug_assertions), target_os = "windows"), windows_subsystem = "windows")]

#[cfg(feature = "app")]
mod relay;
#[cfg(all(test, feature = "app"))]
mod security;
#[cfg(feature = "app")]
mod window;

/// Built without the GUI (as `cargo test --lib` and plain `cargo build`
/// do), there is no window to show.
#[cfg(not(feature = "app"))]
fn main() -> std::process::ExitCode {
    eprintln!("vigie-settings: built without the settings window (cargo's `app` feature)");
    std::process::ExitCode::from(2)
}

#[cfg(feature = "app")]
fn main() -> std::process::ExitCode {
    window::main()
}
