//! "Test connection" for a tasks account (see [`crate::probe`]): the
//! watcher's own first exchange and first full poll, run once and reported
//! step by step.
//!
//! It builds a throwaway [`LeantimeWatcher`] over the account's settings
//! and the given secrets and calls the code a run uses (the discovery
//! batch, the poll batch and its reading), so what passes here is what the
//! watcher does. Two requests in all, so a probe costs little of the
//! server's rate limit; nothing is published or kept.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::Value;

use super::{API_KEY_NOTICE, AuthKind, LeantimeWatcher, PollKind, ServerInfo, discovery_calls, read_user, read_version};
use crate::badge::BadgeMode;
use crate::config::AccountConfig;
use crate::probe::{Discovered, ProbeLog, StepKind};
use crate::secrets::SecretStore;
use crate::watcher::WatchError;

/// Runs the probe.
pub async fn run(account: &AccountConfig, secrets: Arc<dyn SecretStore>, log: &ProbeLog) -> Discovered {
    let Some(server) = account.server.as_deref().filter(|s| !s.trim().is_empty()) else {
        log.failed(StepKind::Resolve, "no server is set: enter the Leantime address, e.g. https://pm.example.com");
        return Discovered::default();
    };
    let Some(base) = crate::web::reach(server, "token or API key", log).await else { return Discovered::default() };
    let watcher = LeantimeWatcher::new(account.id.clone(), &base, account.auth, account.tasks.clone(), secrets);
    let client = match watcher.http_client() {
        Ok(client) => client,
        Err(e) => {
            log.failed(StepKind::Server, words(e));
            return Discovered::default();
        }
    };

    // Server and sign-in: one batch, as a run starts. Without a stored
    // secret the request still shows whether a Leantime API answers (it
    // refuses an empty credential like a wrong one).
    let secret = watcher.secret().await;
    let sent = secret.as_ref().map_or_else(|_| SecretString::from(String::new()), Clone::clone);
    let mut results = match watcher.call(&client, &sent, &discovery_calls()).await {
        Ok(results) => results.into_iter(),
        Err(WatchError::AuthFailed(refused)) => {
            log.ok(StepKind::Server, format!("Leantime's API answers at {base}/api/jsonrpc (it tells its version after sign-in)"));
            let why = match secret {
                Err(missing) => words(missing),
                Ok(_) if account.auth == AuthKind::Token => {
                    format!("{refused}; a personal token needs Leantime 3.9.6 or newer, and must not be revoked or expired")
                }
                Ok(_) => refused,
            };
            log.failed(StepKind::SignIn, why);
            return Discovered::default();
        }
        Err(e) => {
            log.failed(StepKind::Server, words(e));
            return Discovered::default();
        }
    };
    let version = match read_version(results.next()) {
        Ok(version) => version,
        Err(e) => {
            log.failed(StepKind::Server, words(e));
            return Discovered::default();
        }
    };
    log.ok(StepKind::Server, match version {
        Some((major, minor, patch)) => format!("Leantime {major}.{minor}.{patch}"),
        None => "Leantime, a version before 3.9".to_owned(),
    });
    let secret = match secret {
        Ok(secret) => secret,
        Err(missing) => {
            log.failed(StepKind::SignIn, words(missing));
            return Discovered::default();
        }
    };
    let user = results.next();
    let (user_id, api_user) = match read_user(user.as_ref()) {
        Ok(found) => found,
        Err(e) => {
            log.failed(StepKind::SignIn, words(e));
            return Discovered::default();
        }
    };
    let name = user.and_then(Result::ok).map(|u| name_of(&u)).unwrap_or_default();
    let kind = match account.auth {
        AuthKind::Token => "personal token",
        AuthKind::ApiKey => "API key",
    };
    if api_user {
        log.warn(StepKind::SignIn, format!("signed in with the {kind}, as its own pseudo-user “{name}”. {API_KEY_NOTICE}"));
    } else {
        log.ok(StepKind::SignIn, format!("signed in with the {kind} as {name} (user {user_id})"));
    }
    let info = ServerInfo { version, user_id, api_user };

    // Permissions: one full poll, read as the watcher reads it.
    let calls = watcher.poll_calls(&info, PollKind::Full);
    let polled = match watcher.call(&client, &secret, &calls).await {
        Ok(results) => watcher.update(&calls, results, Vec::new()),
        Err(e) => Err(e),
    };
    match polled {
        Ok((update, count)) => {
            let whose = if api_user { "the key's" } else { "your" };
            let mut detail = format!("can read {whose} notifications ({count} unread)");
            if account.tasks.assigned_tasks == BadgeMode::Ignore {
                detail.push_str("; tasks assigned to you are not watched (assigned_tasks = \"ignore\")");
            } else {
                let tasks = update.items.iter().filter(|i| i.key.starts_with('t')).count();
                detail.push_str(&format!(" and the tasks assigned to {} ({tasks} open)", if api_user { "it" } else { "you" }));
            }
            log.ok(StepKind::Permissions, detail);
        }
        Err(e) => {
            log.failed(StepKind::Permissions, words(e));
            return Discovered::default();
        }
    }

    offers(account, &info, log);
    Discovered::default()
}

/// The Offers step: no push, how often it polls and the rate limit it
/// keeps to.
fn offers(account: &AccountConfig, info: &ServerInfo, log: &ProbeLog) {
    let schedule = crate::sources::schedule_for(account);
    let per_minute = account.tasks.requests_per_minute.unwrap_or_else(|| info.default_rate_limit());
    let whose = match (account.tasks.requests_per_minute, info.default_rate_limit()) {
        (Some(_), _) => "as set in the account's settings",
        (None, 120) => "Leantime's default from 3.9.7",
        (None, _) => "Leantime's default before 3.9.7",
    };
    let mut detail = format!("no push: polled every {} s", schedule.interval.as_secs());
    if let Some(away) = schedule.away_interval {
        detail.push_str(&format!(" (every {} s while you are away)", away.as_secs()));
    }
    detail.push_str(&format!("; API rate limit {per_minute} requests a minute ({whose})"));
    if info.has_unread_count() && !info.has_inbox() {
        detail.push_str(
            "; this Leantime (before 3.9.5) lists no notifications over its API: only their number shows, without toasts; update Leantime for them",
        );
        log.warn(StepKind::Offers, detail);
    } else {
        log.ok(StepKind::Offers, detail);
    }
}

/// "Jane Doe", or the user name when there is no name.
fn name_of(user: &Value) -> String {
    let text = |key: &str| user.get(key).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
    let name = format!("{} {}", text("firstname"), text("lastname")).trim().to_owned();
    if name.is_empty() { text("username") } else { name }
}

/// A watcher error in words for the user.
fn words(e: WatchError) -> String {
    match e {
        WatchError::RateLimited { retry_after } => format!("Leantime asks to slow down: try again in {} s", retry_after.as_secs()),
        WatchError::AuthFailed(why)
        | WatchError::Transient(why)
        | WatchError::Unsupported(why)
        | WatchError::NeedsAttention(why)
        | WatchError::Crashed(why) => why,
    }
}
