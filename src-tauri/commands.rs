//! The commands the settings window may call: deserialize, call the core,
//! map the result. Each is granted explicitly in `capabilities/settings.json`.

use tauri::State;
use vigie::CoreHandle;
use vigie::pause::PauseChoice;
use vigie::scheduler::Trigger;

use crate::ipc::{IpcError, Overview, PauseArg};

/// The current state of everything.
#[tauri::command]
pub fn get_overview(core: State<'_, CoreHandle>) -> Overview {
    Overview::from(&core.snapshot())
}

/// "Refresh now": every account fetches at once (coalesced and rate-limited
/// by the scheduler like any trigger).
#[tauri::command]
pub fn refresh_now(core: State<'_, CoreHandle>) {
    core.refresh_all(Trigger::Manual);
}

/// Pauses or resumes notifications.
#[tauri::command]
pub async fn pause_notifications(core: State<'_, CoreHandle>, until: PauseArg) -> Result<(), IpcError> {
    let until = PauseChoice::from(until).until(&jiff::ZonedDateTime::now());
    core.pause(until).await;
    Ok(())
}
