//! The commands the settings window may call: deserialize, call the core,
//! map the result. Each is granted explicitly in `capabilities/settings.json`.
//!
//! Secrets arrive as plain strings (that is what IPC carries) and are
//! wrapped in `SecretString` before anything else happens; none is ever
//! sent back.

use secrecy::SecretString;
use tauri::{AppHandle, Emitter, Runtime, State};
use vigie::CoreHandle;
use vigie::config::edit::{AccountForm, HintForm, NotificationsForm};
use vigie::model::AccountId;
use vigie::pause::PauseChoice;
use vigie::probe::{ProbeLog, ProbeReport};
use vigie::scheduler::Trigger;
use vigie::settings::{Settings, SettingsView};

use crate::app::SETTINGS;
use crate::ipc::{IpcError, Overview, PROBE_PROGRESS, PauseArg, ProbeProgress, StartOptions};

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

/// "Retry" on one account (also after a refused sign-in).
#[tauri::command]
pub fn refresh_account(core: State<'_, CoreHandle>, id: String) -> Result<(), IpcError> {
    if core.refresh(&AccountId::new(id.clone()), Trigger::Manual) {
        Ok(())
    } else {
        Err(IpcError::new("unknown-account", format!("the account \"{id}\" is not running (disabled or removed)")))
    }
}

/// Pauses or resumes notifications.
#[tauri::command]
pub async fn pause_notifications(core: State<'_, CoreHandle>, until: PauseArg) -> Result<(), IpcError> {
    let until = PauseChoice::from(until).until(&jiff::ZonedDateTime::now());
    core.pause(until).await;
    Ok(())
}

/// The accounts' settings, the notification options and the hint rules, as
/// the config file says now.
#[tauri::command]
pub async fn get_settings(settings: State<'_, Settings>) -> Result<SettingsView, IpcError> {
    Ok(settings.view().await?)
}

/// Adds (empty id) or changes an account; `secret`, when given, goes to the
/// keyring. Returns the account's id.
#[tauri::command]
pub async fn save_account(settings: State<'_, Settings>, form: AccountForm, secret: Option<String>) -> Result<String, IpcError> {
    Ok(settings.save_account(form, typed(secret)).await?)
}

/// Removes an account with its keyring entries and saved state.
#[tauri::command]
pub async fn remove_account(settings: State<'_, Settings>, id: String) -> Result<(), IpcError> {
    Ok(settings.remove_account(&id).await?)
}

/// Turns an account on or off.
#[tauri::command]
pub async fn set_account_enabled(settings: State<'_, Settings>, id: String, enabled: bool) -> Result<(), IpcError> {
    Ok(settings.set_enabled(&id, enabled).await?)
}

/// Changes the notification options.
#[tauri::command]
pub async fn save_notifications(settings: State<'_, Settings>, form: NotificationsForm) -> Result<(), IpcError> {
    Ok(settings.save_notifications(&form).await?)
}

/// Replaces the cross-source refresh rules.
#[tauri::command]
pub async fn save_hints(settings: State<'_, Settings>, hints: Vec<HintForm>) -> Result<(), IpcError> {
    Ok(settings.save_hints(&hints).await?)
}

/// Runs "Test connection" for a form, reporting each step as a
/// `probe-progress` event tagged with `probe_id` as it ends.
#[tauri::command]
pub async fn test_connection<R: Runtime>(
    app: AppHandle<R>,
    settings: State<'_, Settings>,
    form: AccountForm,
    secret: Option<String>,
    probe_id: u32,
) -> Result<ProbeReport, IpcError> {
    let (log, mut steps) = ProbeLog::new();
    let probe = async move {
        // The log goes with the probe, which ends the forwarding below.
        settings.test_connection(&form, typed(secret), &log).await
    };
    let forward = async {
        while steps.changed().await.is_ok() {
            let progress = ProbeProgress { probe_id, steps: steps.borrow_and_update().clone() };
            let _ = app.emit_to(SETTINGS, PROBE_PROGRESS, progress);
        }
    };
    let (report, ()) = tokio::join!(probe, forward);
    Ok(report?)
}

/// Whether Vigie starts at login (the OS's autostart entry) and whether it
/// starts in the tray only.
#[tauri::command]
pub async fn get_start_options<R: Runtime>(app: AppHandle<R>, settings: State<'_, Settings>) -> Result<StartOptions, IpcError> {
    use tauri_plugin_autostart::ManagerExt;
    let at_login = app.autolaunch().is_enabled().map_err(|e| IpcError::new("autostart", format!("could not read the autostart entry: {e}")))?;
    Ok(StartOptions { at_login, hidden: settings.view().await?.start_hidden })
}

/// Adds or removes the OS's autostart entry for Vigie.
#[tauri::command]
pub fn set_start_at_login<R: Runtime>(app: AppHandle<R>, enabled: bool) -> Result<(), IpcError> {
    use tauri_plugin_autostart::ManagerExt;
    let manager = app.autolaunch();
    let done = if enabled { manager.enable() } else { manager.disable() };
    done.map_err(|e| {
        tracing::warn!("could not change the autostart entry: {e}");
        IpcError::new("autostart", format!("could not change the autostart entry: {e}"))
    })?;
    tracing::info!(enabled, "start at login changed");
    Ok(())
}

/// Sets whether Vigie starts in the tray only (next start).
#[tauri::command]
pub async fn set_start_hidden(settings: State<'_, Settings>, hidden: bool) -> Result<(), IpcError> {
    Ok(settings.save_start_hidden(hidden).await?)
}

fn typed(secret: Option<String>) -> Option<SecretString> {
    secret.filter(|s| !s.is_empty()).map(SecretString::from)
}
