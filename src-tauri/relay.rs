//! The commands the settings window may call, each granted explicitly in
//! `capabilities/settings.json`, and each relayed as it is to the running
//! Vigie over the control socket ([`vigie::control`]), which runs it. The
//! names and arguments are the control channel's, so a command means one
//! thing whichever way it arrives.
//!
//! Secrets arrive as plain strings (that is what IPC carries), pass through
//! untouched and unlogged, and are wrapped by the receiving side; none is
//! ever sent back.

use std::sync::Arc;

use serde_json::{Value, json};
use tauri::State;
use vigie::control::Client;
use vigie::control::views::CommandError;

type Answer = Result<Value, CommandError>;

async fn run(client: &Client, cmd: &str, args: Value) -> Answer {
    Ok(client.call(cmd, args).await?)
}

#[tauri::command]
pub async fn get_overview(client: State<'_, Arc<Client>>) -> Answer {
    run(&client, "get_overview", Value::Null).await
}

#[tauri::command]
pub async fn refresh_now(client: State<'_, Arc<Client>>) -> Answer {
    run(&client, "refresh_now", Value::Null).await
}

#[tauri::command]
pub async fn refresh_account(client: State<'_, Arc<Client>>, id: String) -> Answer {
    run(&client, "refresh_account", json!({ "id": id })).await
}

#[tauri::command]
pub async fn pause_notifications(client: State<'_, Arc<Client>>, until: Value) -> Answer {
    run(&client, "pause_notifications", json!({ "until": until })).await
}

#[tauri::command]
pub async fn get_settings(client: State<'_, Arc<Client>>) -> Answer {
    run(&client, "get_settings", Value::Null).await
}

#[tauri::command]
pub async fn save_account(client: State<'_, Arc<Client>>, form: Value, secret: Option<String>) -> Answer {
    run(&client, "save_account", json!({ "form": form, "secret": secret })).await
}

#[tauri::command]
pub async fn remove_account(client: State<'_, Arc<Client>>, id: String) -> Answer {
    run(&client, "remove_account", json!({ "id": id })).await
}

#[tauri::command]
pub async fn set_account_enabled(client: State<'_, Arc<Client>>, id: String, enabled: bool) -> Answer {
    run(&client, "set_account_enabled", json!({ "id": id, "enabled": enabled })).await
}

#[tauri::command]
pub async fn save_notifications(client: State<'_, Arc<Client>>, form: Value) -> Answer {
    run(&client, "save_notifications", json!({ "form": form })).await
}

#[tauri::command]
pub async fn save_hints(client: State<'_, Arc<Client>>, hints: Value) -> Answer {
    run(&client, "save_hints", json!({ "hints": hints })).await
}

/// Each step of the test comes back as a `probe-progress` event.
#[tauri::command]
pub async fn test_connection(client: State<'_, Arc<Client>>, form: Value, secret: Option<String>, probe_id: u32) -> Answer {
    run(&client, "test_connection", json!({ "form": form, "secret": secret, "probeId": probe_id })).await
}

#[tauri::command]
pub async fn get_start_options(client: State<'_, Arc<Client>>) -> Answer {
    run(&client, "get_start_options", Value::Null).await
}

#[tauri::command]
pub async fn set_start_at_login(client: State<'_, Arc<Client>>, enabled: bool) -> Answer {
    run(&client, "set_start_at_login", json!({ "enabled": enabled })).await
}

#[tauri::command]
pub async fn set_start_hidden(client: State<'_, Arc<Client>>, hidden: bool) -> Answer {
    run(&client, "set_start_hidden", json!({ "hidden": hidden })).await
}
