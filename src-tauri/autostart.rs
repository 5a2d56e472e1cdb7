//! "Start at login": the OS's own autostart entry (an XDG autostart file, a
//! launch agent, a registry key) for the tray binary, read and written with
//! auto-launch; no copy of it in our config to drift.

use auto_launch::{AutoLaunch, AutoLaunchBuilder, MacOSLaunchMode};
use vigie::control::views::CommandError;

/// The name of the entry: `Vigie.desktop` on Linux, as tauri-plugin-
/// autostart named it in earlier versions, so an existing entry is found.
const APP_NAME: &str = "Vigie";

fn entry() -> Result<AutoLaunch, CommandError> {
    let exe = std::env::current_exe().map_err(|e| CommandError::new("autostart", format!("cannot find Vigie's own program: {e}")))?;
    AutoLaunchBuilder::new()
        .set_app_name(APP_NAME)
        .set_app_path(&exe.to_string_lossy())
        .set_macos_launch_mode(MacOSLaunchMode::LaunchAgent)
        .build()
        .map_err(|e| CommandError::new("autostart", format!("could not read the autostart entry: {e}")))
}

/// Whether the OS starts Vigie at login.
pub fn is_enabled() -> Result<bool, CommandError> {
    entry()?.is_enabled().map_err(|e| CommandError::new("autostart", format!("could not read the autostart entry: {e}")))
}

/// Adds or removes the OS's autostart entry.
pub fn set_enabled(enabled: bool) -> Result<(), CommandError> {
    let entry = entry()?;
    let done = if enabled { entry.enable() } else { entry.disable() };
    done.map_err(|e| {
        tracing::warn!("could not change the autostart entry: {e}");
        CommandError::new("autostart", format!("could not change the autostart entry: {e}"))
    })
}
