//! The IMAP watcher against the built-in local IMAP server meant for the
//! demo (`vigie::imap::local_server`), through the real core: the subset it
//! speaks is enough for the whole mail path (baseline, IDLE push, decoding,
//! mark as read).

use std::sync::Arc;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use vigie::config::AccountConfig;
use vigie::imap::local_server::{LocalImapServer, PASSWORD, USER};
use vigie::imap::{ImapWatcher, MailSettings, PASSWORD_SECRET, TlsMode};
use vigie::model::{AccountId, Source};
use vigie::secrets::{MemorySecrets, SecretStore};
use vigie::watcher::Action;
use vigie::AccountSpec;

use crate::imap_watcher::{announced, count_becomes, live, on_demand};
use crate::support::{Rig, account_config};

const ID: &str = "mail";

/// The local server, served until the test ends.
struct Served {
    server: LocalImapServer,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    fn start() -> Served {
        let (server, serving) = LocalImapServer::bind().expect("the server binds");
        let stop = CancellationToken::new();
        let task = tokio::spawn(serving.run(stop.clone()));
        Served { server, stop, task }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

fn account(server: &LocalImapServer) -> AccountSpec {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets.set(&AccountId::new(ID), PASSWORD_SECRET, &SecretString::from(PASSWORD.to_owned())).expect("store");
    let mail = MailSettings { port: Some(server.port()), tls: TlsMode::None, allow_plaintext_on_loopback: true, ..MailSettings::default() };
    let config = AccountConfig {
        server: Some("127.0.0.1".to_owned()),
        username: Some(USER.to_owned()),
        mail: Some(mail),
        ..account_config(ID, Source::Mail)
    };
    let watcher = ImapWatcher::from_config(&config, secrets).expect("valid settings");
    AccountSpec { config, schedule: on_demand(), watcher: Box::new(watcher) }
}

#[tokio::test]
async fn the_local_server_carries_the_whole_mail_path() {
    let served = Served::start();
    let server = &served.server;
    server.deliver("Welcome <hello@vigie.localhost>", "Welcome to Vigie", "Old news.");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![account(server)]);
    live(&mut rig).await;
    assert_eq!(rig.handle.snapshot().accounts[0].unread.count, Some(1), "the old mail is counted, not announced");

    server.deliver("=?UTF-8?Q?Zo=C3=A9?= <zoe@vigie.localhost>", "Lunch?", "At noon, as usual?");
    let items = announced(&mut rig, "the delivered mail").await;
    assert_eq!(items.len(), 1);
    assert_eq!((items[0].sender.as_str(), items[0].title.as_str(), items[0].preview.as_str()), ("Zoé", "Lunch?", "At noon, as usual?"));
    count_becomes(&mut rig, 2).await;

    rig.handle.act(&AccountId::new(ID), &items[0].key, Action::MarkRead).await.expect("marked read");
    assert_eq!(server.unseen(), 1, "the server has the flag");
    count_becomes(&mut rig, 1).await;
}

#[tokio::test]
async fn the_local_server_refuses_a_wrong_password_like_a_real_one() {
    let served = Served::start();
    let server = &served.server;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = account(server);
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecrets::default());
    secrets.set(&AccountId::new(ID), PASSWORD_SECRET, &SecretString::from("wrong".to_owned())).expect("store");
    spec.watcher = Box::new(ImapWatcher::from_config(&spec.config, secrets).expect("valid settings"));
    let mut rig = Rig::start(&dir.path().join("state.json"), vec![spec]);
    let state = crate::imap_watcher::connectivity(&mut rig, "refused", |c| matches!(c, vigie::model::Connectivity::AuthFailed { .. })).await;
    assert_eq!(state, vigie::model::Connectivity::AuthFailed { reason: "[AUTHENTICATIONFAILED] Authentication failed.".to_owned() });
}
