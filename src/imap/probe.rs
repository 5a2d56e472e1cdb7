//! "Test connection" for a mail account (see [`crate::probe`]): the
//! watcher's own sign-in, run once and reported step by step.
//!
//! The steps reuse the watcher's code ([`connect::establish`],
//! [`connect::sign_in`], the same credentials and TLS verifier), so a
//! probe that passes means the watcher will get in the same way. After the
//! sign-in it lists the folders (for the settings window to offer), opens
//! each configured one read-only (EXAMINE: nothing is marked read), and says
//! what the server offers and how Vigie will watch it. Nothing is written
//! to the server, the keyring or the state file.
//!
//! Step details carry the server's words and names, never a secret.

use std::sync::Arc;

use async_imap::types::NameAttribute;
use futures_util::TryStreamExt;

use super::auth::Credential;
use super::connect::{self, Stage};
use super::folder::{self, COMMAND_TIMEOUT, Features};
use super::{ImapWatcher, SettingsProblem, TlsMode, mutf7};
use crate::config::AccountConfig;
use crate::probe::{self, Discovered, ProbeLog, StepKind};
use crate::secrets::SecretStore;
use crate::watcher::WatchError;

/// Folders named in a "not found" step, at most.
const FOLDERS_SHOWN: usize = 12;

/// Runs the probe.
pub async fn run(account: &AccountConfig, secrets: Arc<dyn SecretStore>, log: &ProbeLog) -> Discovered {
    let mut discovered = Discovered::default();
    let watcher = match ImapWatcher::build(account, secrets) {
        Ok(watcher) => watcher,
        Err(problem) => {
            log.failed(problem_step(&problem), problem.to_string());
            return discovered;
        }
    };
    let target = &watcher.shared.target;

    let Some(addrs) = probe::resolve(&target.host, target.port, log).await else { return discovered };
    let Some(tcp) = probe::connect(&addrs, log).await else { return discovered };
    let established = match connect::establish(target, tcp).await {
        Ok(established) => established,
        Err(Stage::Tls { error, untrusted }) => {
            log.failed(StepKind::Tls, words(&error));
            discovered.untrusted_certificate = untrusted.map(|f| f.to_string());
            return discovered;
        }
        Err(Stage::Greeting(error)) => {
            if target.tls == TlsMode::Implicit {
                log.ok(StepKind::Tls, "the handshake passed");
            }
            log.failed(StepKind::Server, words(&error));
            return discovered;
        }
    };
    match &established.tls {
        Some(detail) => log.ok(StepKind::Tls, detail.clone()),
        None => log.warn(StepKind::Tls, "no encryption (loopback only)"),
    }
    let greeting = &established.greeting;
    let mut server = if greeting.words.is_empty() { "the server greeted us".to_owned() } else { format!("\"{}\"", greeting.words) };
    if !greeting.capabilities.is_empty() {
        server.push_str(&format!(" — {}", greeting.capabilities.join(" ")));
    }
    log.ok(StepKind::Server, server);

    let credential = match watcher.credentials.get().await {
        Ok(credential) => credential,
        Err(error) => {
            log.failed(StepKind::SignIn, words(&error));
            return discovered;
        }
    };
    let how = match &credential {
        Credential::Password(_) => "a password".to_owned(),
        Credential::Bearer { mechanism, .. } => format!("an OAuth token ({})", format!("{mechanism:?}").to_uppercase()),
    };
    let mut session = match connect::sign_in(target, established.client, &credential).await {
        Ok(session) => session,
        Err(error) => {
            log.failed(StepKind::SignIn, words(&error));
            return discovered;
        }
    };
    drop(credential);
    log.ok(StepKind::SignIn, format!("signed in as {} with {how}", target.username));

    let capabilities = match folder::bounded(target, "CAPABILITY", COMMAND_TIMEOUT, session.capabilities()).await {
        Ok(capabilities) => capabilities,
        Err(error) => {
            log.failed(StepKind::Permissions, words(&error));
            return discovered;
        }
    };
    let listed = folder::bounded(target, "LIST", COMMAND_TIMEOUT, async {
        session.list(Some(""), Some("*")).await?.try_collect::<Vec<_>>().await
    })
    .await;
    match listed {
        Ok(names) => {
            discovered.folders = names
                .iter()
                .filter(|n| !n.attributes().iter().any(|a| is_unselectable(a)))
                .map(|n| mutf7::decode(n.name()).unwrap_or_else(|| n.name().to_owned()))
                .collect();
        }
        Err(error) => {
            log.failed(StepKind::Permissions, format!("the server would not list the folders: {}", words(&error)));
            return discovered;
        }
    }
    let mut opened = Vec::with_capacity(watcher.folders.len());
    for name in &watcher.folders {
        let examined = folder::bounded(target, "EXAMINE", COMMAND_TIMEOUT, async { Ok(session.examine(mutf7::encode(name)).await) }).await;
        match examined {
            Ok(Ok(mailbox)) => opened.push(format!("{name} ({} {})", mailbox.exists, if mailbox.exists == 1 { "mail" } else { "mails" })),
            Ok(Err(async_imap::error::Error::No(raw))) => {
                let mut detail = format!("the folder \"{name}\" cannot be opened ({})", connect::server_words(&raw));
                if !discovered.folders.is_empty() {
                    let shown: Vec<&str> = discovered.folders.iter().take(FOLDERS_SHOWN).map(String::as_str).collect();
                    let more = discovered.folders.len().saturating_sub(FOLDERS_SHOWN);
                    detail.push_str(&format!("; the server has {}", shown.join(", ")));
                    if more > 0 {
                        detail.push_str(&format!(" and {more} more"));
                    }
                }
                log.failed(StepKind::Permissions, detail);
                return discovered;
            }
            Ok(Err(error)) => {
                log.failed(StepKind::Permissions, words(&connect::transient(target, &format!("EXAMINE {name}"), &error)));
                return discovered;
            }
            Err(error) => {
                log.failed(StepKind::Permissions, words(&error));
                return discovered;
            }
        }
    }
    log.ok(StepKind::Permissions, format!("can read {}", opened.join(", ")));

    let features = Features::of(&capabilities);
    let yes = |has: bool| if has { "yes" } else { "no" };
    let mut offers = format!(
        "IDLE {}, NOTIFY {}, CONDSTORE {}, QRESYNC {}, LIST-STATUS {}",
        yes(features.idle),
        yes(features.notify),
        yes(features.condstore),
        yes(capabilities.has_str("QRESYNC")),
        yes(capabilities.has_str("LIST-STATUS")),
    );
    if features.gmail {
        offers.push_str(", Gmail extensions yes");
    }
    let groups = watcher.connections(features);
    let polled: usize = groups.iter().filter(|g| !features.idle || (g.len() > 1 && !features.notify)).map(Vec::len).sum();
    let plan = match (features.idle, features.notify, groups.len()) {
        (false, _, _) => "Vigie will poll (no IDLE: new mail shows at the next check)".to_owned(),
        (true, true, _) => "Vigie will push: one connection hears every folder (NOTIFY)".to_owned(),
        (true, false, n) if polled == 0 => {
            format!("Vigie will push: one IDLE connection per folder ({n} {})", if n == 1 { "connection" } else { "connections" })
        }
        (true, false, n) => format!(
            "Vigie will push on {} {} and poll {polled} folders beyond the connection cap ({n} connections)",
            n - 1,
            if n == 2 { "folder" } else { "folders" },
        ),
    };
    let detail = format!("{offers}. {plan}");
    if features.idle { log.ok(StepKind::Offers, detail) } else { log.warn(StepKind::Offers, detail) }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), session.logout()).await;
    discovered
}

/// The step a settings problem belongs to.
fn problem_step(problem: &SettingsProblem) -> StepKind {
    match problem {
        SettingsProblem::NoServer => StepKind::Resolve,
        SettingsProblem::Plaintext(_) | SettingsProblem::BadPin(_) => StepKind::Tls,
        SettingsProblem::NoUsername | SettingsProblem::NoClientId => StepKind::SignIn,
        SettingsProblem::NoFolders => StepKind::Permissions,
    }
}

/// An error's words for a step (without the watcher's "the server refused
/// the sign-in:" framing, which the step already says).
fn words(error: &WatchError) -> String {
    match error {
        WatchError::AuthFailed(words)
        | WatchError::Transient(words)
        | WatchError::Unsupported(words)
        | WatchError::NeedsAttention(words)
        | WatchError::Crashed(words) => words.clone(),
        WatchError::RateLimited { .. } => error.to_string(),
    }
}

/// `\Noselect`, or RFC 5258's `\NonExistent` (which implies it).
fn is_unselectable(attribute: &NameAttribute<'_>) -> bool {
    match attribute {
        NameAttribute::NoSelect => true,
        NameAttribute::Extension(name) => name.eq_ignore_ascii_case("\\NonExistent"),
        _ => false,
    }
}
