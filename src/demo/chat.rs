//! The demo's chat account over the real protocol: the Rocket.Chat watcher
//! talks REST and DDP to the local Rocket.Chat ([`super::fake_rocketchat`])
//! on loopback, where bob writes now and then (a direct message, a mention,
//! a plain message in a small channel, one in a big channel that only
//! lights the dot), reads happen "on another device", and once in a while
//! the server drops the connection, so the reconnect and its resync show.
//!
//! [`add_to`] adds the account and its server to a demo setup; the server
//! and the chatter run as one background task of the core, so they stop
//! with it.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::fake_rocketchat::{ALICE, BIG, BOB, DM_BOB, FakeRocketChat, GENERAL, Generation, TOKEN};
use crate::config::AccountConfig;
use crate::core::{AccountSpec, Setup};
use crate::model::{AccountId, Source};
use crate::rocketchat::{ChatSettings, RocketChatWatcher, TOKEN_SECRET};
use crate::scheduler::ScheduleConfig;
use crate::secrets::{MemorySecrets, SecretStore};

/// The demo chat account's id.
pub const ACCOUNT: &str = "demo-chat";

/// Adds the chat account "Demo chat" and its local server to `setup`; the
/// server's world moves one step every `every`. Fails only if no loopback
/// port can be bound.
pub fn add_to(setup: &mut Setup, every: Duration) -> std::io::Result<()> {
    let (server, serving) = FakeRocketChat::bind(Generation::V7)?;
    // Later runs number their messages above earlier ones' (a few a second
    // at most; a thousand per second of wall clock is plenty).
    server.number_new_messages_from(u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0));
    let secrets = Arc::new(MemorySecrets::default());
    if let Err(e) = secrets.set(&AccountId::new(ACCOUNT), TOKEN_SECRET, &SecretString::from(TOKEN.to_owned())) {
        tracing::warn!("the demo chat token could not be kept: {e}");
    }
    let settings = ChatSettings { user_id: Some(ALICE.to_owned()), ..ChatSettings::default() };
    let watcher = RocketChatWatcher::new(AccountId::new(ACCOUNT), &server.base_url(), settings.clone(), secrets);
    setup.accounts.push(AccountSpec {
        config: AccountConfig {
            server: Some(server.base_url()),
            chat: settings,
            ..AccountConfig::new(AccountId::new(ACCOUNT), "Demo chat", Source::Chat)
        },
        schedule: ScheduleConfig { push_resync: Some(Duration::from_secs(900)), ..ScheduleConfig::polling(Duration::from_secs(60)) },
        watcher: Box::new(watcher),
    });
    setup.background.push(Box::new(move |cancel: CancellationToken| {
        Box::pin(async move {
            let chatter = chatter(&server, every, cancel.clone());
            tokio::join!(serving.run(cancel.clone()), chatter);
        })
    }));
    Ok(())
}

/// Bob's side of the conversation, one step every `every`.
async fn chatter(server: &FakeRocketChat, every: Duration, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut step = 0u64;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        step += 1;
        // The ids and "was in the room" answers are of no use here.
        match step % 8 {
            1 => {
                let _ = server.post(DM_BOB, BOB, "Do you have a minute?", &[]);
            }
            2 => {
                let _ = server.post(GENERAL, BOB, "@alice the build is green", &[ALICE]);
            }
            3 => {
                let _ = server.post(GENERAL, BOB, "Coffee in five?", &[]);
            }
            4 => {
                let _ = server.read_elsewhere(DM_BOB);
            }
            5 => {
                let _ = server.post(BIG, BOB, "The office is closed on Friday.", &[]);
            }
            6 => server.drop_sockets(),
            7 => {
                let _ = server.read_elsewhere(GENERAL);
            }
            _ => {
                let _ = server.read_elsewhere(BIG);
            }
        }
    }
}
