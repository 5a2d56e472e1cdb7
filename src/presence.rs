//! The user's presence: away while the screen is locked or the session is
//! idle, as the platform tells us, so that polled sources can slow down and
//! refresh the moment the user is back.
//!
//! On Linux the desktop tells systemd-logind, which publishes both facts as
//! the `LockedHint` and `IdleHint` properties of the user's session
//! (`org.freedesktop.login1.Session`, on the system bus). GNOME, KDE and
//! most lockers set them; the idle delay is the desktop's own setting (ten
//! minutes by default on GNOME). We only listen for property changes, so
//! this costs nothing while nothing changes. Where there is no logind (or no
//! session), presence is simply unknown and the user counts as present.

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use zbus::Connection;

/// The session object logind resolves to the caller's own session.
const SESSION_PATH: &str = "/org/freedesktop/login1/session/auto";
const LOGIND: &str = "org.freedesktop.login1";
const SESSION_INTERFACE: &str = "org.freedesktop.login1.Session";

/// Why presence cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// No bus, no logind, or no session for this process.
    #[error("cannot follow the session's lock and idle state: {0}")]
    Unavailable(#[from] zbus::Error),
}

/// Follows logind on the system bus until cancelled, calling `on_change`
/// with `true` when the user leaves and `false` when they return (and once
/// at start with the current state). Without logind it logs why and waits
/// for cancellation: the user then counts as present.
pub async fn follow_logind(on_change: impl FnMut(bool) + Send, cancel: CancellationToken) {
    let connection = tokio::select! {
        () = cancel.cancelled() => return,
        connection = Connection::system() => connection,
    };
    match connection {
        Ok(connection) => follow(&connection, on_change, cancel).await,
        Err(e) => {
            tracing::info!("{}; polling does not slow down while away", PresenceError::from(e));
            cancel.cancelled().await;
        }
    }
}

/// Follows the session on `connection` (a system bus, or a test's private
/// bus where something plays logind). See [`follow_logind`].
pub async fn follow(connection: &Connection, mut on_change: impl FnMut(bool) + Send, cancel: CancellationToken) {
    let outcome = tokio::select! {
        () = cancel.cancelled() => return,
        outcome = watch_session(connection, &mut on_change) => outcome,
    };
    if let Err(e) = outcome {
        tracing::info!("{e}; polling does not slow down while away");
    }
    // A session that goes away (logout) ends the app soon anyway; until
    // then the user counts as present.
    on_change(false);
    cancel.cancelled().await;
}

async fn watch_session(connection: &Connection, on_change: &mut (impl FnMut(bool) + Send)) -> Result<(), PresenceError> {
    let session = zbus::Proxy::new(connection, LOGIND, SESSION_PATH, SESSION_INTERFACE).await?;
    let mut locked_changes = session.receive_property_changed::<bool>("LockedHint").await;
    let mut idle_changes = session.receive_property_changed::<bool>("IdleHint").await;
    let mut locked: bool = session.get_property("LockedHint").await?;
    let mut idle: bool = session.get_property("IdleHint").await?;
    let mut away = locked || idle;
    tracing::info!(locked, idle, "following the session's lock and idle state");
    on_change(away);
    loop {
        tokio::select! {
            Some(change) = locked_changes.next() => locked = change.get().await?,
            Some(change) = idle_changes.next() => idle = change.get().await?,
            else => return Ok(()),
        }
        if (locked || idle) != away {
            away = locked || idle;
            tracing::debug!(locked, idle, "presence changed");
            on_change(away);
        }
    }
}
