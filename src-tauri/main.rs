//! The `vigie` binary: the tray app, or with `--headless` the core alone.
//!
//! The tray app links GTK and the tray library but no web engine: its
//! settings window is `vigie-settings` (`settings_main.rs`), another
//! process. Built without the `app` feature this binary has no GUI code at
//! all and only runs headless; that is how `cargo test --lib` builds it.
//! `vigie-headless` (`headless_main.rs`) is the same without GUI libraries,
//! for servers and scripts.

#![cfg_attr(all(not(debug_assertions), target_os = "windows"), windows_subsystem = "windows")]

#[cfg(feature = "app")]
mod app;
#[cfg(feature = "app")]
mod autostart;
mod cli;
#[cfg(all(feature = "app", target_os = "linux"))]
mod freedesktop;
#[cfg(feature = "app")]
mod grouping;
#[cfg(feature = "app")]
mod settings_window;
#[cfg(feature = "app")]
mod snooze;
#[cfg(feature = "app")]
mod toast;
#[cfg(feature = "app")]
mod tray;

fn main() -> std::process::ExitCode {
    #[cfg(all(feature = "app", target_os = "linux"))]
    skip_gdk_gl();
    #[cfg(feature = "app")]
    let frontend = cli::Frontend::Gui(app::run);
    // Built without the GUI (as `cargo test --lib` and plain `cargo build`
    // do), the tray binary can only run headless.
    #[cfg(not(feature = "app"))]
    let frontend = cli::Frontend::HeadlessOnly;
    cli::main(frontend)
}

/// GTK 3 sets up OpenGL when it opens the display, even for an app that never
/// draws with it; under Mesa's software driver that maps LLVM and roughly
/// doubles the resident size of an idle tray app (130 MB → 78 MB measured,
/// docs/benchmarks.md). A tray icon and its menu need no GL. Users can still
/// choose by setting `GDK_GL` themselves.
#[cfg(all(feature = "app", target_os = "linux"))]
fn skip_gdk_gl() {
    if std::env::var_os("GDK_GL").is_none() {
        // SAFETY: first statement of `main`, before any thread exists, so no
        // other thread can be reading the environment.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("GDK_GL", "disable");
        }
    }
}
