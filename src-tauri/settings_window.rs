//! The settings window, from the tray's side: a separate `vigie-settings`
//! process, started when the user asks and gone when its window closes, so
//! that the long-lived tray process never loads a web engine.
//!
//! Invariants: a request to open never blocks the caller (the menu runs on
//! the GTK thread); at most [`MAX_OPENING`] requests wait; every process
//! started is waited for, so none is left a zombie; asking again while a
//! window is open starts a second process, which hands over to the first
//! (it raises that window) and exits.

use std::path::PathBuf;

use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Requests to open that may wait for the launcher at once.
const MAX_OPENING: usize = 4;

/// Asks for the settings window; cheap to clone.
#[derive(Clone)]
pub struct SettingsWindow {
    requests: mpsc::Sender<()>,
}

impl SettingsWindow {
    /// The handle, and the launcher task (to run until `stop`) that starts
    /// `program` to talk to this app on `socket`; with no socket (it could
    /// not be opened), requests are only logged: the window could not reach
    /// this app.
    pub fn new(program: PathBuf, socket: Option<PathBuf>, stop: CancellationToken) -> (SettingsWindow, impl Future<Output = ()> + Send + 'static) {
        let (requests, received) = mpsc::channel(MAX_OPENING);
        (SettingsWindow { requests }, launcher(program, socket, received, stop))
    }

    /// Opens the window, or raises it if it is open.
    pub fn open(&self) {
        if self.requests.try_send(()).is_err() {
            tracing::debug!("the settings window is already being opened");
        }
    }
}

/// `vigie-settings` beside the running binary (where the package and cargo
/// put it).
pub fn program() -> PathBuf {
    let name = if cfg!(windows) { "vigie-settings.exe" } else { "vigie-settings" };
    std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join(name))).unwrap_or_else(|| PathBuf::from(name))
}

async fn launcher(program: PathBuf, socket: Option<PathBuf>, mut requests: mpsc::Receiver<()>, stop: CancellationToken) {
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = running.join_next() => {}
            request = requests.recv() => {
                if request.is_none() {
                    break;
                }
                let Some(socket) = &socket else {
                    tracing::warn!("the settings window cannot open: Vigie has no control channel (see above)");
                    continue;
                };
                match Command::new(&program).arg("--socket").arg(socket).kill_on_drop(false).spawn() {
                    Ok(mut child) => {
                        tracing::info!(pid = child.id(), "settings window started");
                        running.spawn(async move {
                            match child.wait().await {
                                Ok(status) if !status.success() => tracing::warn!("the settings window ended with {status}"),
                                Ok(_) => {}
                                Err(e) => tracing::warn!("could not wait for the settings window: {e}"),
                            }
                        });
                    }
                    Err(e) => tracing::error!("cannot start the settings window ({}): {e}", program.display()),
                }
            }
        }
    }
    // A window still open sees the tray go and closes itself; its exit
    // status no longer matters.
    running.abort_all();
}
