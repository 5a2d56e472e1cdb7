//! "Test connection" for a chat account (see [`crate::probe`]): the
//! watcher's own sign-in, run once and reported step by step.
//!
//! It builds a throwaway [`RocketChatWatcher`] over the account's settings
//! and the given secrets, and calls the very code a run starts with (token
//! lookup, user id, `/api/v1/me`, the REST lists, the DDP link and its
//! streams), so what passes here is what the watcher does. Nothing is
//! published and nothing is kept: the REST client and the websocket are
//! dropped or closed before it returns.

use std::sync::Arc;

use super::link::{Link, LinkError, Timeouts};
use super::rest::{self, RestError};
use super::wire::{Me, Subscription};
use super::{EVENTS, RocketChatWatcher, http_client};
use crate::config::AccountConfig;
use crate::probe::{self, Discovered, ProbeLog, RoomChoice, StepKind};
use crate::secrets::SecretStore;
use crate::watcher::WatchError;

/// Runs the probe.
pub async fn run(account: &AccountConfig, secrets: Arc<dyn SecretStore>, log: &ProbeLog) -> Discovered {
    let Some(server) = account.server.as_deref().filter(|s| !s.trim().is_empty()) else {
        log.failed(StepKind::Resolve, "no server is set: enter the Rocket.Chat address, e.g. https://chat.example.org");
        return Discovered::default();
    };
    let Some(base) = crate::web::reach(server, "token", log).await else { return Discovered::default() };
    let watcher = RocketChatWatcher::new(account.id.clone(), &base, account.chat.clone(), secrets);
    let mut discovered = Discovered::default();

    // Server: the version, asked without credentials.
    let client = match http_client() {
        Ok(client) => client,
        Err(e) => {
            log.failed(StepKind::Server, words(e));
            return discovered;
        }
    };
    match rest::server_version(&client, &watcher.base_url).await {
        Ok(Some(version)) => log.ok(StepKind::Server, format!("Rocket.Chat {version}")),
        Ok(None) => log.ok(StepKind::Server, "Rocket.Chat (it does not tell its version)"),
        Err(RestError::Http { status: 404, .. }) => {
            log.failed(StepKind::Server, format!("no Rocket.Chat at {base}: /api/info answered HTTP 404; check the address"));
            return discovered;
        }
        Err(e) => {
            log.failed(StepKind::Server, rest_words(e));
            return discovered;
        }
    }
    drop(client);

    // Sign-in: the token, whose user it is, and `me`, as a run does.
    let token = match watcher.token().await {
        Ok(token) => token,
        Err(e) => {
            log.failed(StepKind::SignIn, words(e));
            return discovered;
        }
    };
    let signed_in = async {
        let rest = watcher.rest(&token).await?;
        let me = watcher.me(&rest).await?;
        Ok::<_, WatchError>((rest, me))
    };
    let (rest, me) = match signed_in.await {
        Ok(found) => found,
        Err(e) => {
            log.failed(StepKind::SignIn, words(e));
            return discovered;
        }
    };
    log.ok(StepKind::SignIn, signed_in_as(&me));

    // Permissions: what a resync reads.
    let lists = async { Ok::<_, RestError>((rest.subscriptions(None).await?, rest.rooms(None).await?)) };
    match lists.await {
        Ok((subs, _rooms)) => {
            discovered.rooms = rooms_of(&subs.update);
            log.ok(StepKind::Permissions, format!("can read your rooms and their unread state ({} rooms)", subs.update.len()));
        }
        Err(e) => {
            log.failed(StepKind::Permissions, format!("cannot read your rooms: {}", rest_words(e)));
            return discovered;
        }
    }
    drop(rest);

    offers(&watcher, &token, &me, account.poll_interval.as_secs(), log).await;
    discovered
}

/// The Offers step: the websocket, its login and the streams the watcher
/// follows.
async fn offers(watcher: &RocketChatWatcher, token: &secrecy::SecretString, me: &Me, poll_secs: u64, log: &ProbeLog) {
    let timeouts = Timeouts { connect: probe::STEP_TIMEOUT, ..Timeouts::default() };
    let mut link = match Link::open(&watcher.base_url, timeouts).await {
        Ok(link) => link,
        Err(LinkError::NoWebSocket(why)) => {
            log.warn(StepKind::Offers, format!("no websocket: will poll every {poll_secs} s instead of live updates ({why})"));
            return;
        }
        Err(e) => {
            log.failed(StepKind::Offers, format!("the realtime connection (websocket) could not be opened: {e}"));
            return;
        }
    };
    let outcome = async {
        let uid = link.login(token).await?;
        if uid != me.id {
            return Ok(Err(format!(
                "the websocket signed the token in as user {uid}, but the REST API answered for user {}; check the user id",
                me.id
            )));
        }
        Ok(Ok(link.subscribe(&uid, &EVENTS).await?))
    }
    .await;
    link.close().await;
    match outcome {
        Ok(Ok(refused)) => {
            let essential = refused.iter().find(|e| matches!(e, LinkError::Refused { event, .. } if !event.ends_with("/notification")));
            match (essential, refused.first()) {
                (Some(why), _) => log.warn(StepKind::Offers, format!("{why}: will poll every {poll_secs} s instead of live updates")),
                (None, Some(_)) => log.ok(
                    StepKind::Offers,
                    "live updates over the websocket (the server keeps its own notifications to itself: Vigie judges each message)",
                ),
                (None, None) => log.ok(StepKind::Offers, "live updates over the websocket"),
            }
        }
        Ok(Err(mismatch)) => log.failed(StepKind::Offers, mismatch),
        Err(LinkError::RateLimited(wait)) => log.warn(
            StepKind::Offers,
            format!("the server is rate-limiting the websocket for {} s; live updates will start after that", wait.as_secs()),
        ),
        Err(e @ LinkError::LoggedOut(_)) => log.failed(StepKind::Offers, format!("the websocket refused the token: {e}")),
        Err(e) => log.failed(StepKind::Offers, format!("the realtime connection failed: {e}")),
    }
}

/// "signed in as alice (Alice Liddell); two-factor sign-in is on (…)".
fn signed_in_as(me: &Me) -> String {
    let mut text = format!("signed in as {}", me.username);
    if let Some(name) = me.name.as_deref().filter(|n| !n.is_empty() && *n != me.username) {
        text.push_str(&format!(" ({name})"));
    }
    text.push_str(" with the token");
    match me.services.two_factor() {
        Some(on) if on.is_empty() => text.push_str("; two-factor authentication is off for this user"),
        Some(on) => text.push_str(&format!("; two-factor authentication is on ({}); the token needs no code", on.join(" and "))),
        None => {}
    }
    text
}

/// The rooms a user can choose a preference for: channels, private groups
/// and direct chats (not omnichannel), by kind then name.
fn rooms_of(subs: &[Subscription]) -> Vec<RoomChoice> {
    let mut rooms: Vec<(u8, RoomChoice)> = subs
        .iter()
        .filter_map(|sub| {
            let (order, kind) = match sub.t.as_str() {
                "c" => (0, "channel"),
                "p" => (1, "private"),
                "d" => (2, "direct"),
                _ => return None,
            };
            Some((order, RoomChoice { id: sub.rid.clone(), name: sub.display_name().to_owned(), kind: kind.to_owned() }))
        })
        .collect();
    rooms.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.name.to_lowercase().cmp(&y.name.to_lowercase())));
    rooms.into_iter().map(|(_, room)| room).collect()
}

/// A watcher error in words for the user.
fn words(e: WatchError) -> String {
    match e {
        WatchError::RateLimited { retry_after } => {
            format!("Rocket.Chat asks to slow down: try again in {} s", retry_after.as_secs())
        }
        WatchError::AuthFailed(why)
        | WatchError::Transient(why)
        | WatchError::Unsupported(why)
        | WatchError::NeedsAttention(why)
        | WatchError::Crashed(why) => why,
    }
}

/// A REST error in words for the user.
fn rest_words(e: RestError) -> String {
    match e {
        RestError::RateLimited(wait) => format!("Rocket.Chat asks to slow down: try again in {} s", wait.as_secs()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(rid: &str, t: &str, name: &str, fname: Option<&str>) -> Subscription {
        Subscription { id: rid.into(), rid: rid.into(), name: name.into(), fname: fname.map(str::to_owned), t: t.into(), ..Subscription::default() }
    }

    #[test]
    fn rooms_are_listed_by_kind_then_name_and_direct_chats_by_the_other_person() {
        let subs = [
            sub("D", "d", "bob", Some("Bob Builder")),
            sub("R", "c", "random", None),
            sub("P", "p", "ops", Some("ops")),
            sub("G", "c", "General", None),
            sub("L", "l", "visitor", None),
        ];
        let rooms: Vec<(String, String)> = rooms_of(&subs).into_iter().map(|r| (r.name, r.kind)).collect();
        let expected = [("General", "channel"), ("random", "channel"), ("ops", "private"), ("Bob Builder", "direct")];
        assert_eq!(rooms, expected.map(|(n, k)| (n.to_owned(), k.to_owned())));
    }
}
