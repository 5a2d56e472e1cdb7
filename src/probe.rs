//! "Test connection": the real sign-in of an account, run once, step by
//! step, for the settings window.
//!
//! A probe opens its own connection with the account's settings and the
//! secret the user just typed (see [`Overlay`]), reports each step as it
//! ends through a [`ProbeLog`], and closes everything before it returns. It
//! never touches the running watchers, the state file or the keyring's
//! stored values. Every step is bounded in time, and a failed step ends the
//! probe: the steps after it are not run, so the report's last step is the
//! one to fix.
//!
//! Step details are written for the user and never contain a secret.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::AccountConfig;
use crate::model::{AccountId, Source};
use crate::secrets::{MemorySecrets, SecretError, SecretStore};

/// The longest a whole probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// One stage of signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    /// The server's name resolved to addresses.
    Resolve,
    /// A TCP connection opened.
    Connect,
    /// TLS: the certificate and what vouches for it.
    Tls,
    /// The server answered in its protocol (greeting, version).
    Server,
    /// The credentials were accepted.
    SignIn,
    /// The account may read what Vigie needs.
    Permissions,
    /// What the server offers (push, extensions), and what Vigie will use.
    Offers,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It worked.
    Ok,
    /// It worked, with something the user should know (e.g. "no IDLE: the
    /// folder will be polled").
    Warning,
    /// It failed; the probe stopped here.
    Failed,
}

/// One reported step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeStep {
    /// Which stage.
    pub kind: StepKind,
    /// How it ended.
    pub outcome: Outcome,
    /// What happened, in words for the user (the server's own words on a
    /// failure), e.g. "imap.example.com → 192.0.2.7, 2001:db8::7".
    pub detail: String,
}

/// A room the user can set a preference for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomChoice {
    /// The room's id on the server.
    pub id: String,
    /// The name to show ("general", or the other person in a direct chat).
    pub name: String,
    /// "channel", "private" or "direct".
    pub kind: String,
}

/// What a probe found out, besides its steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    /// The SHA-256 fingerprint (`AB:CD:…`) of a certificate that no root
    /// vouches for: the user may choose to pin it.
    pub untrusted_certificate: Option<String>,
    /// Mail: the folders the account can watch, as the server names them.
    pub folders: Vec<String>,
    /// Chat: the rooms the user is in.
    pub rooms: Vec<RoomChoice>,
}

/// The whole result of a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// Every step run, in order.
    pub steps: Vec<ProbeStep>,
    /// Whether every step passed (warnings allowed).
    pub ok: bool,
    /// What was found on the way.
    pub discovered: Discovered,
}

/// Where a probe records its steps; others may watch them arrive.
#[derive(Debug)]
pub struct ProbeLog {
    steps: watch::Sender<Vec<ProbeStep>>,
}

impl Default for ProbeLog {
    fn default() -> Self {
        ProbeLog { steps: watch::channel(Vec::new()).0 }
    }
}

impl ProbeLog {
    /// A log, and a receiver that sees the steps so far after each one.
    pub fn new() -> (ProbeLog, watch::Receiver<Vec<ProbeStep>>) {
        let (steps, rx) = watch::channel(Vec::new());
        (ProbeLog { steps }, rx)
    }

    /// Records a step.
    pub fn record(&self, kind: StepKind, outcome: Outcome, detail: impl Into<String>) {
        let step = ProbeStep { kind, outcome, detail: detail.into() };
        tracing::debug!(?kind, ?outcome, detail = %step.detail, "probe step");
        self.steps.send_modify(|steps| steps.push(step));
    }

    /// Records a passed step.
    pub fn ok(&self, kind: StepKind, detail: impl Into<String>) {
        self.record(kind, Outcome::Ok, detail);
    }

    /// Records a passed step with a remark.
    pub fn warn(&self, kind: StepKind, detail: impl Into<String>) {
        self.record(kind, Outcome::Warning, detail);
    }

    /// Records the failed step that ends the probe.
    pub fn failed(&self, kind: StepKind, detail: impl Into<String>) {
        self.record(kind, Outcome::Failed, detail);
    }

    /// The steps so far.
    pub fn steps(&self) -> Vec<ProbeStep> {
        self.steps.borrow().clone()
    }

    /// The report: the steps, and `ok` when none failed.
    pub fn report(&self, discovered: Discovered) -> ProbeReport {
        let steps = self.steps();
        let ok = !steps.is_empty() && steps.iter().all(|s| s.outcome != Outcome::Failed);
        ProbeReport { steps, ok, discovered }
    }
}

/// Secrets typed into a form, consulted before the keyring: a probe can run
/// with a password that is not stored yet, and an unchanged one is read from
/// the keyring as usual. Writes go to the overlay, except one that replaces
/// a stored secret the form did not retype: that is a provider rotating a
/// stored OAuth refresh token, and a provider that rotates retires the old
/// token, so keeping the new one only for the probe would leave the saved
/// account with a dead token ("sign in again" at its next refresh).
pub struct Overlay {
    typed: MemorySecrets,
    stored: Arc<dyn SecretStore>,
}

impl Overlay {
    /// An overlay over `stored`.
    pub fn new(stored: Arc<dyn SecretStore>) -> Overlay {
        Overlay { typed: MemorySecrets::default(), stored }
    }

    /// Adds a typed secret.
    pub fn with(self, account: &AccountId, name: &str, value: SecretString) -> Overlay {
        // MemorySecrets never fails.
        let _ = self.typed.set(account, name, &value);
        self
    }
}

impl SecretStore for Overlay {
    fn get(&self, account: &AccountId, name: &str) -> Result<Option<SecretString>, SecretError> {
        match self.typed.get(account, name)? {
            Some(value) => Ok(Some(value)),
            None => self.stored.get(account, name),
        }
    }

    fn set(&self, account: &AccountId, name: &str, value: &SecretString) -> Result<(), SecretError> {
        if self.typed.get(account, name)?.is_none() && self.stored.get(account, name)?.is_some() {
            return self.stored.set(account, name, value);
        }
        self.typed.set(account, name, value)
    }

    fn delete(&self, account: &AccountId, name: &str) -> Result<(), SecretError> {
        self.typed.delete(account, name)
    }
}

/// Runs the probe for `account`'s source, bounded by [`PROBE_TIMEOUT`].
pub async fn test_connection(account: &AccountConfig, secrets: Arc<dyn SecretStore>, log: &ProbeLog) -> ProbeReport {
    let run = async {
        match account.source {
            Source::Mail => crate::imap::probe::run(account, secrets, log).await,
            Source::Chat => crate::rocketchat::probe::run(account, secrets, log).await,
            Source::Tasks => crate::leantime::probe::run(account, secrets, log).await,
        }
    };
    match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Ok(discovered) => log.report(discovered),
        Err(_) => {
            let next = log.steps().last().map_or(StepKind::Resolve, |s| next_kind(s.kind));
            log.failed(next, format!("no answer within {} s", PROBE_TIMEOUT.as_secs()));
            log.report(Discovered::default())
        }
    }
}

/// How long name resolution and the TCP connection may each take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// The resolve step: `host`'s addresses, or `None` after recording why not.
pub async fn resolve(host: &str, port: u16, log: &ProbeLog) -> Option<Vec<SocketAddr>> {
    let lookup = tokio::time::timeout(STEP_TIMEOUT, tokio::net::lookup_host((host, port))).await;
    match lookup {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                log.failed(StepKind::Resolve, format!("{host} has no address"));
                return None;
            }
            let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            log.ok(StepKind::Resolve, format!("{host} → {}", shown.join(", ")));
            Some(addrs)
        }
        Ok(Err(e)) => {
            log.failed(StepKind::Resolve, format!("{host} could not be found: {e}"));
            None
        }
        Err(_) => {
            log.failed(StepKind::Resolve, format!("no answer for {host} within {} s", STEP_TIMEOUT.as_secs()));
            None
        }
    }
}

/// The connect step: a TCP connection to the first of `addrs` that answers.
pub async fn connect(addrs: &[SocketAddr], log: &ProbeLog) -> Option<TcpStream> {
    let mut last = String::from("no address to try");
    for addr in addrs {
        match tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                log.ok(StepKind::Connect, format!("connected to {addr}"));
                return Some(stream);
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: no answer within {} s", STEP_TIMEOUT.as_secs()),
        }
    }
    log.failed(StepKind::Connect, last);
    None
}

fn next_kind(kind: StepKind) -> StepKind {
    match kind {
        StepKind::Resolve => StepKind::Connect,
        StepKind::Connect => StepKind::Tls,
        StepKind::Tls => StepKind::Server,
        StepKind::Server => StepKind::SignIn,
        StepKind::SignIn => StepKind::Permissions,
        StepKind::Permissions | StepKind::Offers => StepKind::Offers,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_report_is_ok_only_when_no_step_failed() {
        let log = ProbeLog::default();
        log.ok(StepKind::Resolve, "a → 127.0.0.1");
        log.warn(StepKind::Offers, "no IDLE");
        assert!(log.report(Discovered::default()).ok);
        log.failed(StepKind::SignIn, "wrong password");
        assert!(!log.report(Discovered::default()).ok);
    }

    #[tokio::test]
    async fn resolving_and_connecting_to_a_listener_pass_and_a_closed_port_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let log = ProbeLog::default();
        let addrs = resolve("localhost", port, &log).await.expect("localhost resolves");
        let v4: Vec<SocketAddr> = addrs.into_iter().filter(SocketAddr::is_ipv4).collect();
        assert!(connect(&v4, &log).await.is_some());
        drop(listener);
        let refused = ProbeLog::default();
        assert!(connect(&v4, &refused).await.is_none());
        let steps = refused.steps();
        assert_eq!(steps.len(), 1);
        assert_eq!((steps[0].kind, steps[0].outcome), (StepKind::Connect, Outcome::Failed));
        assert!(steps[0].detail.contains(&port.to_string()), "{}", steps[0].detail);
    }

    #[test]
    fn an_empty_report_is_not_ok() {
        assert!(!ProbeLog::default().report(Discovered::default()).ok);
    }

    #[test]
    fn the_overlay_prefers_the_typed_secret_and_keeps_what_the_probe_writes_to_itself() {
        let stored = Arc::new(MemorySecrets::default());
        let id = AccountId::new("a");
        stored.set(&id, "password", &SecretString::from("old")).expect("set");
        let overlay = Overlay::new(stored.clone()).with(&id, "password", SecretString::from("typed"));
        assert_eq!(overlay.get(&id, "password").expect("get").expect("some").expose_secret(), "typed");
        overlay.set(&id, "password", &SecretString::from("changed")).expect("set");
        overlay.set(&id, "new", &SecretString::from("fresh")).expect("set");
        assert_eq!(overlay.get(&id, "password").expect("get").expect("some").expose_secret(), "changed");
        assert_eq!(stored.get(&id, "password").expect("get").expect("some").expose_secret(), "old", "a typed secret is not stored");
        assert!(stored.get(&id, "new").expect("get").is_none(), "nor one the store never had");
    }

    #[test]
    fn a_stored_refresh_token_the_provider_rotates_during_a_probe_is_stored() {
        let stored = Arc::new(MemorySecrets::default());
        let id = AccountId::new("a");
        stored.set(&id, "refresh-token", &SecretString::from("retired")).expect("set");
        let overlay = Overlay::new(stored.clone());
        assert_eq!(overlay.get(&id, "refresh-token").expect("get").expect("some").expose_secret(), "retired");
        overlay.set(&id, "refresh-token", &SecretString::from("rotated")).expect("set");
        assert_eq!(stored.get(&id, "refresh-token").expect("get").expect("some").expose_secret(), "rotated");
    }
}
