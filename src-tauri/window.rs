//! The settings window's process: connects to the running Vigie, shows the
//! page, relays its commands, passes Vigie's pushes to it, and ends with the
//! window or with Vigie.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tauri::{AppHandle, Emitter, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};
use tokio::sync::mpsc;
use vigie::config::Paths;
use vigie::control::{Client, ControlError, Pushed};
use vigie::logging;

/// Label of the settings window (also named in its capability file).
const SETTINGS: &str = "settings";

/// The settings window of a running Vigie.
#[derive(Debug, Parser)]
#[command(name = "vigie-settings", version)]
struct Cli {
    /// The running Vigie's control socket (by default, where Vigie puts it).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

pub fn main() -> ExitCode {
    skip_gdk_gl();
    let cli = Cli::parse();
    let Some(paths) = Paths::discover() else {
        eprintln!("vigie-settings: cannot find the home folder (is $HOME set?)");
        return ExitCode::from(2);
    };
    let _log_guard = match logging::init_named(&paths.log_dir, "settings") {
        Ok(guard) => Some(guard),
        Err(problem) => {
            logging::init_stderr();
            tracing::warn!("{problem}; logging to stderr only");
            None
        }
    };
    let socket = cli.socket.unwrap_or(paths.control_socket);
    let (client, pushed) = match tauri::async_runtime::block_on(Client::connect(&socket)) {
        Ok(connected) => connected,
        Err(ControlError::NotRunning { .. }) => return start_vigie(),
        Err(e) => return fail(&e.to_string()),
    };
    let client = Arc::new(client);
    let subscribed = tauri::async_runtime::block_on(client.call("subscribe", serde_json::Value::Null));
    if let Err(e) = subscribed {
        return fail(&format!("Vigie did not answer: {e}"));
    }

    let app = tauri::Builder::default()
        // A second window asked for (the tray's menu again) raises this one.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| show(app)))
        .manage(client)
        .invoke_handler(tauri::generate_handler![
            crate::relay::get_overview,
            crate::relay::refresh_now,
            crate::relay::pause_notifications,
            crate::relay::refresh_account,
            crate::relay::get_settings,
            crate::relay::save_account,
            crate::relay::remove_account,
            crate::relay::set_account_enabled,
            crate::relay::save_notifications,
            crate::relay::save_hints,
            crate::relay::test_connection,
            crate::relay::get_start_options,
            crate::relay::set_start_at_login,
            crate::relay::set_start_hidden,
        ])
        .setup(move |app| {
            WebviewWindowBuilder::new(app, SETTINGS, WebviewUrl::App("index.html".into()))
                .title("Vigie — Settings")
                .inner_size(560.0, 620.0)
                .min_inner_size(420.0, 360.0)
                .build()?;
            let forward = tauri::async_runtime::spawn(forward(app.handle().clone(), pushed));
            app.manage(Forwarding(forward));
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => return fail(&format!("cannot open the settings window: {e}")),
    };
    let code = app.run_return(|app, event| {
        if let RunEvent::Exit = event {
            app.state::<Forwarding>().0.abort();
        }
    });
    u8::try_from(code).map_or(ExitCode::FAILURE, ExitCode::from)
}

/// The task passing Vigie's pushes to the window, stopped at exit.
struct Forwarding(tauri::async_runtime::JoinHandle<()>);

/// Passes what Vigie pushes to the window as events of the same name;
/// closes the window when Vigie goes away (it quit: nothing left to set).
async fn forward(app: AppHandle, mut pushed: mpsc::Receiver<Pushed>) {
    while let Some(Pushed { event, payload }) = pushed.recv().await {
        if let Err(e) = app.emit_to(SETTINGS, &event, payload) {
            tracing::warn!("cannot pass {event} to the window: {e}");
        }
    }
    tracing::info!("Vigie went away; closing its settings window");
    app.exit(0);
}

fn show(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(SETTINGS) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// No Vigie runs: start it, asking for its window, and leave it the stage.
fn start_vigie() -> ExitCode {
    let name = if cfg!(windows) { "vigie.exe" } else { "vigie" };
    let program = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join(name))).unwrap_or_else(|| PathBuf::from(name));
    match std::process::Command::new(&program).arg("--settings").spawn() {
        Ok(_) => {
            tracing::info!("Vigie was not running: started it");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("Vigie is not running and could not be started ({}): {e}", program.display())),
    }
}

fn fail(message: &str) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("vigie-settings: {message}");
    ExitCode::FAILURE
}

/// GTK 3 sets up OpenGL when it opens the display; under Mesa's software
/// driver that maps LLVM and roughly doubles the resident size of the
/// process (docs/benchmarks.md). The settings page renders fine without GL.
/// Users can still choose by setting `GDK_GL` themselves.
fn skip_gdk_gl() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("GDK_GL").is_none() {
        // SAFETY: first statement of `main`, before any thread exists, so no
        // other thread can be reading the environment.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("GDK_GL", "disable");
        }
    }
}
