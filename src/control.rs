//! The control channel: how another process talks to the running notifier
//! (the settings window, `vigie --status` in a status bar, a second launch
//! handing over to the first).
//!
//! Invariants:
//! - a Unix socket for this user only: its folder is made 0700 and the
//!   socket 0600 before the first client is served;
//! - one notifier per socket: [`Listener::bind`] refuses while another one
//!   answers there ([`ControlError::AlreadyRunning`]); a socket left behind
//!   by a crash (nobody answers) is replaced;
//! - one JSON object per line, at most [`MAX_LINE`] bytes either way. The
//!   client sends `{"id": 7, "cmd": "save_account", "args": {…}}`; the server
//!   answers each id once, `{"id": 7, "ok": …}` or `{"id": 7, "err": {"code":
//!   …, "message": …}}`, in the order the commands end, and once asked to
//!   `subscribe` pushes `{"event": "overview-changed", "payload": …}`;
//! - a secret in a command's arguments is wrapped as it is parsed, and never
//!   logged nor sent back;
//! - every task belongs to the server or to the connection that started it
//!   and ends with it: a client that goes away ends its commands.

pub mod views;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::config::edit::{AccountForm, HintForm, NotificationsForm};
use crate::core::CoreHandle;
use crate::event::{CoreEvent, Snapshot};
use crate::model::AccountId;
use crate::pause::PauseChoice;
use crate::probe::ProbeLog;
use crate::scheduler::Trigger;
use crate::settings::Settings;

use self::views::{CORE_EVENT, CommandError, EventView, OVERVIEW_CHANGED, Overview, PROBE_PROGRESS, PauseArg, ProbeProgress, StartOptions};

/// The longest line either side accepts (a settings form is a few KiB).
pub const MAX_LINE: usize = 1 << 20;
/// Clients served at once; more wait for one to leave.
const MAX_CLIENTS: usize = 16;
/// Commands of one client running at once; more are refused as busy.
const MAX_IN_FLIGHT: usize = 32;
/// Core events a slow client may fall behind by before it is sent the
/// state afresh instead.
const EVENT_BACKLOG: usize = 256;

/// Why the control channel could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another Vigie serves this socket.
    #[error("another Vigie is already running (it answers on {})", .0.display())]
    AlreadyRunning(PathBuf),
    /// No Vigie answers on this socket.
    #[error("Vigie is not running (nothing answers on {})", .path.display())]
    #[allow(missing_docs)]
    NotRunning { path: PathBuf, source: std::io::Error },
    /// The socket or its folder could not be made.
    #[error("cannot open the control socket {}: {source}", .path.display())]
    #[allow(missing_docs)]
    Socket { path: PathBuf, source: std::io::Error },
}

/// A command, as the settings window (or a script) sends it. The names and
/// arguments are those the webview's `invoke` uses.
// The fields are the webview's arguments, named as its `invoke` names them.
#[allow(missing_docs)]
#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Command {
    /// The current state of everything ([`Overview`]).
    GetOverview,
    /// Every account fetches now.
    RefreshNow,
    /// One account fetches now ("Retry").
    RefreshAccount { id: String },
    /// Pause or resume notifications.
    PauseNotifications { until: PauseArg },
    /// The accounts' settings, notification options and hint rules.
    GetSettings,
    /// Adds (empty id) or changes an account; answers its id.
    SaveAccount { form: AccountForm, secret: Option<Secret> },
    /// Removes an account with its keyring entries and saved state.
    RemoveAccount { id: String },
    /// Turns an account on or off.
    SetAccountEnabled { id: String, enabled: bool },
    /// Changes the notification options.
    SaveNotifications { form: NotificationsForm },
    /// Replaces the cross-source refresh rules.
    SaveHints { hints: Vec<HintForm> },
    /// "Test connection" for a form; each step is pushed as
    /// `probe-progress` tagged with `probe_id`.
    TestConnection { form: AccountForm, secret: Option<Secret>, probe_id: u32 },
    /// Start at login, start hidden.
    GetStartOptions,
    /// Adds or removes the OS's autostart entry.
    SetStartAtLogin { enabled: bool },
    /// Start in the tray only (next start).
    SetStartHidden { hidden: bool },
    /// Shows the settings window (what a second launch asks).
    OpenSettings,
    /// From now on, push `overview-changed` and `core-event` to this client.
    Subscribe,
}

impl Command {
    /// Parses `cmd` with its `args` (absent, `null` and `{}` all mean none).
    pub fn parse(cmd: &str, args: Option<Value>) -> Result<Command, CommandError> {
        let carries_secret = args.as_ref().and_then(|a| a.get("secret")).is_some_and(|s| !s.is_null());
        let args = args.filter(|a| !a.is_null() && a.as_object().is_none_or(|o| !o.is_empty()));
        let mut tagged = serde_json::Map::new();
        tagged.insert("cmd".to_owned(), Value::String(cmd.to_owned()));
        if let Some(args) = args {
            tagged.insert("args".to_owned(), args);
        }
        Command::deserialize(Value::Object(tagged)).map_err(|e| {
            // serde's message can quote the value it refused, which for a
            // command carrying a secret may be the secret.
            let why = if carries_secret { String::new() } else { format!(": {e}") };
            CommandError::new("bad-command", format!("Vigie did not understand the command \"{cmd}\"{why}"))
        })
    }
}

/// A secret typed in the settings window, wrapped as it is parsed.
pub struct Secret(SecretString);

impl Secret {
    fn typed(secret: Option<Secret>) -> Option<SecretString> {
        secret.map(|s| s.0).filter(|s| !secrecy::ExposeSecret::expose_secret(s).is_empty())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Secret(SecretString::from(s)))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([hidden])")
    }
}

/// What only the front end can do: the window and the OS's autostart.
pub trait Shell: Send + Sync + 'static {
    /// Shows the settings window.
    fn open_settings(&self) -> Result<(), CommandError>;
    /// Whether the OS starts Vigie at login.
    fn start_at_login(&self) -> Result<bool, CommandError>;
    /// Adds or removes the OS's autostart entry.
    fn set_start_at_login(&self, enabled: bool) -> Result<(), CommandError>;
}

/// A front end with no window (the tests, a program embedding the core).
pub struct NoWindow;

impl Shell for NoWindow {
    fn open_settings(&self) -> Result<(), CommandError> {
        Err(CommandError::new("no-window", "this Vigie has no settings window"))
    }

    fn start_at_login(&self) -> Result<bool, CommandError> {
        Ok(false)
    }

    fn set_start_at_login(&self, _enabled: bool) -> Result<(), CommandError> {
        Err(CommandError::new("no-window", "this Vigie has no window: how it starts is up to the program that runs it"))
    }
}

/// Runs commands against the settings and the core; shared by every client.
pub struct Service {
    settings: Arc<Settings>,
    core: CoreHandle,
    shell: Box<dyn Shell>,
    events: broadcast::Sender<CoreEvent>,
}

impl Service {
    /// A service over `settings` (and the core they own), with `shell` for
    /// what only the front end can do.
    pub fn new(settings: Arc<Settings>, shell: impl Shell) -> Service {
        Service { core: settings.handle(), settings, shell: Box::new(shell), events: broadcast::channel(EVENT_BACKLOG).0 }
    }

    /// Passes a core event on to the subscribed clients (the front end owns
    /// the core's event stream and calls this for each).
    pub fn publish(&self, event: &CoreEvent) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event.clone());
        }
    }

    /// Runs `command`; `progress` hears each step of a connection test.
    pub async fn run(&self, command: Command, progress: &(dyn Fn(ProbeProgress) + Sync)) -> Result<Value, CommandError> {
        let settings = &self.settings;
        match command {
            Command::GetOverview => to_value(Overview::from(&self.core.snapshot())),
            Command::RefreshNow => {
                self.core.refresh_all(Trigger::Manual);
                Ok(Value::Null)
            }
            Command::RefreshAccount { id } => {
                if self.core.refresh(&AccountId::new(id.clone()), Trigger::Manual) {
                    Ok(Value::Null)
                } else {
                    Err(CommandError::new("unknown-account", format!("the account \"{id}\" is not running (disabled or removed)")))
                }
            }
            Command::PauseNotifications { until } => {
                self.core.pause(PauseChoice::from(until).until(&jiff::ZonedDateTime::now())).await;
                Ok(Value::Null)
            }
            Command::GetSettings => to_value(settings.view().await?),
            Command::SaveAccount { form, secret } => to_value(settings.save_account(form, Secret::typed(secret)).await?),
            Command::RemoveAccount { id } => unit(settings.remove_account(&id).await),
            Command::SetAccountEnabled { id, enabled } => unit(settings.set_enabled(&id, enabled).await),
            Command::SaveNotifications { form } => unit(settings.save_notifications(&form).await),
            Command::SaveHints { hints } => unit(settings.save_hints(&hints).await),
            Command::TestConnection { form, secret, probe_id } => {
                let (log, mut steps) = ProbeLog::new();
                let probe = async move {
                    // The log goes with the probe, which ends the forwarding below.
                    settings.test_connection(&form, Secret::typed(secret), &log).await
                };
                let forward = async {
                    while steps.changed().await.is_ok() {
                        progress(ProbeProgress { probe_id, steps: steps.borrow_and_update().clone() });
                    }
                };
                let (report, ()) = tokio::join!(probe, forward);
                to_value(report?)
            }
            Command::GetStartOptions => {
                let at_login = self.shell.start_at_login()?;
                to_value(StartOptions { at_login, hidden: settings.view().await?.start_hidden })
            }
            Command::SetStartAtLogin { enabled } => {
                self.shell.set_start_at_login(enabled)?;
                tracing::info!(enabled, "start at login changed");
                Ok(Value::Null)
            }
            Command::SetStartHidden { hidden } => unit(settings.save_start_hidden(hidden).await),
            Command::OpenSettings => self.shell.open_settings().map(|()| Value::Null),
            // Per connection: see `connection`.
            Command::Subscribe => Ok(Value::Null),
        }
    }
}

fn to_value(value: impl serde::Serialize) -> Result<Value, CommandError> {
    serde_json::to_value(value).map_err(|e| CommandError::new("internal", format!("could not encode the answer: {e}")))
}

fn unit(done: Result<(), crate::settings::SettingsError>) -> Result<Value, CommandError> {
    done.map(|()| Value::Null).map_err(CommandError::from)
}

/// The socket, bound and ours.
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Binds `path`, unless another Vigie answers there.
    pub async fn bind(path: &Path) -> Result<Listener, ControlError> {
        let socket_error = |source| ControlError::Socket { path: path.to_owned(), source };
        if let Some(folder) = path.parent() {
            private_folder(folder).map_err(socket_error)?;
        }
        let listener = match UnixListener::bind(path) {
            Ok(listener) => listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if UnixStream::connect(path).await.is_ok() {
                    return Err(ControlError::AlreadyRunning(path.to_owned()));
                }
                // Left behind by a Vigie that did not stop cleanly.
                tracing::info!(path = %path.display(), "replacing a control socket nobody answers on");
                std::fs::remove_file(path).map_err(socket_error)?;
                UnixListener::bind(path).map_err(socket_error)?
            }
            Err(e) => return Err(socket_error(e)),
        };
        only_for_owner(path, 0o600).map_err(socket_error)?;
        Ok(Listener { listener, path: path.to_owned() })
    }

    /// Serves clients until `stop`, then removes the socket.
    pub async fn serve(self, service: Arc<Service>, stop: CancellationToken) {
        tracing::info!(path = %self.path.display(), "control channel open");
        let mut clients = JoinSet::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                Some(_) = clients.join_next() => {}
                accepted = self.listener.accept(), if clients.len() < MAX_CLIENTS => match accepted {
                    Ok((stream, _)) => {
                        clients.spawn(connection(stream, service.clone(), stop.child_token()));
                    }
                    Err(e) => {
                        tracing::warn!("control channel: cannot accept a client: {e}");
                        // Out of file descriptors, say: do not spin.
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
        clients.shutdown().await;
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn private_folder(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(folder)?;
    only_for_owner(folder, 0o700)
}

#[cfg(unix)]
fn only_for_owner(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// One line from a client, before its command is parsed.
#[derive(Deserialize)]
struct Request {
    id: u64,
    cmd: String,
    #[serde(default)]
    args: Option<Value>,
}

async fn connection(stream: UnixStream, service: Arc<Service>, stop: CancellationToken) {
    let (read, write) = stream.into_split();
    let mut input = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_LINE));
    let mut output = FramedWrite::new(write, LinesCodec::new_with_max_length(MAX_LINE));
    let mut running: JoinSet<String> = JoinSet::new();
    let (progress_tx, mut progress_rx) = mpsc::channel::<String>(16);
    let mut subscribed: Option<(watch::Receiver<Snapshot>, broadcast::Receiver<CoreEvent>)> = None;
    // After a line too long, the reader ends the stream once, then reads on.
    let mut resync = false;
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => break,
            line = input.next() => match line {
                Some(Ok(line)) => match serde_json::from_str::<Request>(&line) {
                    Ok(Request { id, cmd, args }) => match Command::parse(&cmd, args) {
                        Ok(Command::Subscribe) => {
                            let mut overview = service.core.subscribe();
                            overview.mark_unchanged();
                            subscribed = Some((overview, service.events.subscribe()));
                            reply(id, Ok(Value::Null))
                        }
                        Ok(_) if running.len() >= MAX_IN_FLIGHT => {
                            reply(id, Err(CommandError::new("busy", "too many commands at once; try again")))
                        }
                        Ok(command) => {
                            let (service, progress_tx) = (service.clone(), progress_tx.clone());
                            running.spawn(async move {
                                // The latest steps are what matters; a full
                                // queue drops one, the answer has them all.
                                let progress = move |p: ProbeProgress| {
                                    let _ = progress_tx.try_send(push(PROBE_PROGRESS, &p));
                                };
                                reply(id, service.run(command, &progress).await)
                            });
                            continue;
                        }
                        Err(refused) => reply(id, Err(refused)),
                    },
                    Err(e) => unanswerable(&format!("not a command: {e}")),
                },
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    resync = true;
                    unanswerable("a line longer than 1 MiB was dropped")
                }
                Some(Err(LinesCodecError::Io(e))) => {
                    tracing::debug!("control client gone: {e}");
                    break;
                }
                None if std::mem::take(&mut resync) => continue,
                None => break,
            },
            Some(done) = running.join_next() => match done {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::error!("a control command failed: {e}");
                    continue;
                }
            },
            Some(frame) = progress_rx.recv() => frame,
            frame = next_push(&mut subscribed) => frame,
        };
        if let Err(e) = output.send(frame).await {
            tracing::debug!("control client gone: {e}");
            break;
        }
    }
    running.shutdown().await;
}

/// The next push for a subscribed client; never resolves for the others.
async fn next_push(subscribed: &mut Option<(watch::Receiver<Snapshot>, broadcast::Receiver<CoreEvent>)>) -> String {
    let Some((overview, events)) = subscribed else { return std::future::pending().await };
    loop {
        tokio::select! {
            changed = overview.changed() => {
                if changed.is_err() {
                    return std::future::pending().await;
                }
                let snapshot = overview.borrow_and_update().clone();
                return push(OVERVIEW_CHANGED, &Overview::from(&snapshot));
            }
            event = events.recv() => match event {
                Ok(event) => {
                    // Badge and connectivity changes travel in overview-changed.
                    if let Some(view) = EventView::from_event(&event).into_iter().next_back() {
                        return push(CORE_EVENT, &view);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a control client fell behind; sending it the state afresh");
                    let snapshot = overview.borrow_and_update().clone();
                    return push(OVERVIEW_CHANGED, &Overview::from(&snapshot));
                }
                Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            },
        }
    }
}

fn reply(id: u64, result: Result<Value, CommandError>) -> String {
    match result {
        Ok(value) => json!({ "id": id, "ok": value }),
        Err(error) => json!({ "id": id, "err": error }),
    }
    .to_string()
}

fn push(event: &str, payload: &impl serde::Serialize) -> String {
    json!({ "event": event, "payload": payload }).to_string()
}

/// An error for a line without a usable id.
fn unanswerable(why: &str) -> String {
    tracing::warn!("control channel: {why}");
    json!({ "id": null, "err": CommandError::new("bad-line", why.to_owned()) }).to_string()
}

/// Something the notifier pushed to a subscribed client.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// `overview-changed`, `core-event` or `probe-progress`.
    pub event: String,
    /// The event's JSON, as the webview receives it.
    pub payload: Value,
}

/// Why a call got no answer from the notifier's side.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The notifier refused or failed the command.
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// The connection ended before the answer came.
    #[error("Vigie stopped before it answered")]
    Disconnected,
}

impl From<CallError> for CommandError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Refused(error) => error,
            CallError::Disconnected => CommandError::new("disconnected", error.to_string()),
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, CommandError>>>>>;

/// A connection to a running notifier. Calls may overlap; answers find
/// their caller by id. Dropping the client closes the connection.
pub struct Client {
    outgoing: mpsc::Sender<String>,
    pending: Pending,
    next_id: AtomicU64,
    _io: AbortOnDropHandle<()>,
}

impl Client {
    /// Connects to the notifier serving `path`; what it pushes arrives on
    /// the receiver, which closes when the notifier goes away. Once
    /// subscribed, keep reading it (or drop it): answers queue behind
    /// unread pushes.
    pub async fn connect(path: &Path) -> Result<(Client, mpsc::Receiver<Pushed>), ControlError> {
        let stream = UnixStream::connect(path).await.map_err(|source| ControlError::NotRunning { path: path.to_owned(), source })?;
        let (outgoing, to_send) = mpsc::channel(64);
        let (pushed_tx, pushed) = mpsc::channel(64);
        let pending = Pending::default();
        let io = tokio::spawn(client_io(stream, to_send, pending.clone(), pushed_tx));
        Ok((Client { outgoing, pending, next_id: AtomicU64::new(1), _io: AbortOnDropHandle::new(io) }, pushed))
    }

    /// Runs `cmd` with `args` (a JSON object, or `null` for none).
    pub async fn call(&self, cmd: &str, args: Value) -> Result<Value, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, tx);
        }
        let line = json!({ "id": id, "cmd": cmd, "args": args }).to_string();
        if self.outgoing.send(line).await.is_err() {
            return Err(CallError::Disconnected);
        }
        match rx.await {
            Ok(answer) => answer.map_err(CallError::Refused),
            Err(_) => Err(CallError::Disconnected),
        }
    }
}

#[derive(Deserialize)]
struct Incoming {
    id: Option<u64>,
    ok: Option<Value>,
    err: Option<CommandError>,
    event: Option<String>,
    payload: Option<Value>,
}

async fn client_io(stream: UnixStream, mut to_send: mpsc::Receiver<String>, pending: Pending, pushed: mpsc::Sender<Pushed>) {
    let (read, write) = stream.into_split();
    let mut input = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_LINE));
    let mut output = FramedWrite::new(write, LinesCodec::new_with_max_length(MAX_LINE));
    loop {
        tokio::select! {
            line = to_send.recv() => match line {
                Some(line) => if output.send(line).await.is_err() { break },
                None => break,
            },
            line = input.next() => {
                let Some(Ok(line)) = line else { break };
                let incoming = match serde_json::from_str::<Incoming>(&line) {
                    Ok(incoming) => incoming,
                    Err(e) => {
                        tracing::warn!("control channel: an answer Vigie could not read: {e}");
                        continue;
                    }
                };
                match incoming {
                    Incoming { event: Some(event), payload, .. } => {
                        if pushed.send(Pushed { event, payload: payload.unwrap_or(Value::Null) }).await.is_err() {
                            // Nobody listens to pushes; answers still matter.
                        }
                    }
                    Incoming { id: Some(id), ok, err, .. } => {
                        let answer = match err {
                            Some(err) => Err(err),
                            None => Ok(ok.unwrap_or(Value::Null)),
                        };
                        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(answer);
                        }
                    }
                    Incoming { err: Some(err), .. } => tracing::warn!("control channel: {}", err.message),
                    Incoming { .. } => tracing::warn!("control channel: a line that is neither an answer nor an event"),
                }
            }
        }
    }
    // Callers still waiting learn that no answer will come.
    if let Ok(mut pending) = pending.lock() {
        pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_the_webview_s_argument_names() {
        let command = Command::parse("test_connection", Some(json!({ "form": {
            "id": "", "name": "Work", "source": "mail", "enabled": true, "badge": "count", "server": "imap.example.com",
            "mail": { "port": 993, "tls": "implicit", "allowPlaintextOnLoopback": false, "folders": ["INBOX"],
                      "auth": "password", "pinnedFingerprint": null, "webmailLink": null }
        }, "secret": "hunter2", "probeId": 4 })));
        match command {
            Ok(Command::TestConnection { probe_id: 4, secret: Some(_), .. }) => {}
            Err(e) => panic!("refused: {e}"),
            Ok(other) => panic!("parsed as {other:?}"),
        }
        assert!(matches!(Command::parse("get_overview", Some(json!({}))), Ok(Command::GetOverview)));
        assert!(matches!(Command::parse("get_overview", None), Ok(Command::GetOverview)));
        assert!(matches!(Command::parse("refresh_account", Some(json!({ "id": "work" }))), Ok(Command::RefreshAccount { .. })));
    }

    #[test]
    fn a_refused_command_with_a_secret_does_not_quote_it() {
        let refused = Command::parse("save_account", Some(json!({ "form": 42, "secret": "hunter2" }))).expect_err("a bad form");
        assert!(!refused.message.contains("hunter2"), "{}", refused.message);
        assert_eq!(refused.code, "bad-command");
        let parsed = Command::parse("save_account", Some(json!({ "form": { "nope": 1 }, "secret": "hunter2" })));
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let unknown = Command::parse("format_disk", None).expect_err("unknown");
        assert!(unknown.message.contains("format_disk"), "{}", unknown.message);
    }

    #[test]
    fn a_secret_is_hidden_from_debug_output() {
        let secret: Secret = serde_json::from_value(json!("hunter2")).expect("a string");
        assert_eq!(format!("{secret:?}"), "Secret([hidden])");
        assert!(Secret::typed(Some(serde_json::from_value(json!("")).expect("a string"))).is_none(), "empty means none typed");
    }
}
