//! The fake Rocket.Chat in `support::fake_rocketchat` speaks the wire format
//! of the fixtures in `tests/fixtures/rocketchat/`: checked here with a raw
//! WebSocket client and plain HTTP, without the watcher.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::fake_rocketchat::{ALICE, BOB, DM_BOB, FakeRocketChat, Generation, TOKEN};
use crate::support::within;

const PATIENCE: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/rocketchat/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).expect("fixture JSON")
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}

struct Client(tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>);

impl Client {
    async fn open(fake: &FakeRocketChat) -> Client {
        let url = format!("{}/websocket", fake.base_url().replace("http://", "ws://"));
        let (socket, _) = within(PATIENCE, "the socket", tokio_tungstenite::connect_async(url.as_str())).await.expect("connect");
        Client(socket)
    }

    async fn send(&mut self, frame: Value) {
        self.0.send(Message::text(frame.to_string())).await.expect("send");
    }

    /// The next frame that is not a server ping.
    async fn next(&mut self) -> Value {
        loop {
            let message = within(PATIENCE, "a frame", self.0.next()).await.expect("open").expect("a frame");
            let frame: Value = serde_json::from_str(message.to_text().expect("text")).expect("JSON");
            if frame["msg"] != "ping" {
                return frame;
            }
        }
    }

    /// Greeting, `connect` and `login`, as the fixtures show.
    async fn logged_in(fake: &FakeRocketChat) -> Client {
        let mut client = Client::open(fake).await;
        assert_eq!(client.next().await, fixture("ddp-server-hello.json"));
        client.send(fixture("ddp-client-connect.json")).await;
        assert_eq!(keys(&client.next().await), keys(&fixture("ddp-connected.json")));
        let mut login = fixture("ddp-client-login-resume.json");
        login["params"][0]["resume"] = json!(TOKEN);
        client.send(login).await;
        let result = client.next().await;
        assert_eq!(keys(&result), keys(&fixture("ddp-result-login.json")));
        assert_eq!(keys(&result["result"]), keys(&fixture("ddp-result-login.json")["result"]));
        assert_eq!(result["result"]["id"], ALICE);
        assert_eq!(client.next().await, fixture("ddp-updated-login.json"));
        client
    }
}

#[tokio::test]
async fn the_handshake_and_login_follow_the_fixtures_and_early_frames_are_refused() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let mut early = Client::open(&fake).await;
    early.next().await;
    early.send(json!({"msg": "ping"})).await;
    assert_eq!(early.next().await["reason"], "Must connect first");
    Client::logged_in(&fake).await;
}

#[tokio::test]
async fn both_subscription_option_forms_are_accepted_and_another_users_stream_is_refused() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let mut client = Client::logged_in(&fake).await;
    client.send(fixture("ddp-client-sub-notification.json")).await;
    assert_eq!(client.next().await, fixture("ddp-ready.json"));
    let legacy = fixture("ddp-client-sub-subscriptions-changed-legacy.json");
    client.send(legacy.clone()).await;
    assert_eq!(client.next().await, json!({"msg": "ready", "subs": [legacy["id"]]}));
    let mut other = fixture("ddp-client-sub-notification.json");
    other["id"] = json!("sub-other-user");
    other["params"][0] = json!(format!("{BOB}/notification"));
    client.send(other).await;
    assert_eq!(client.next().await, fixture("ddp-nosub-not-allowed.json"));
}

#[tokio::test]
async fn a_direct_message_pushes_the_fixtures_events() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    let mut client = Client::logged_in(&fake).await;
    for (id, event) in [("a", "subscriptions-changed"), ("b", "rooms-changed"), ("c", "notification")] {
        client.send(json!({"msg": "sub", "id": id, "name": "stream-notify-user", "params": [format!("{ALICE}/{event}"), false]})).await;
        client.next().await;
    }
    fake.post(DM_BOB, BOB, "lunch at 12?", &[]);
    let subs = client.next().await;
    let expected = fixture("ddp-changed-subscriptions-changed-updated.json");
    assert_eq!(keys(&subs), keys(&expected));
    assert_eq!(subs["fields"]["args"][0], "updated");
    assert!(subs["fields"]["args"][1]["_updatedAt"]["$date"].is_i64(), "EJSON dates: {subs}");
    assert_eq!(subs["fields"]["args"][1]["unread"], 1);
    let room = client.next().await;
    assert_eq!(keys(&room["fields"]["args"][1]["lastMessage"]), keys(&fixture("ddp-changed-rooms-changed.json")["fields"]["args"][1]["lastMessage"]));
    let notification = client.next().await;
    let expected = fixture("ddp-changed-notification-dm.json");
    assert_eq!(notification["fields"]["args"][0]["title"], expected["fields"]["args"][0]["title"]);
    assert_eq!(notification["fields"]["args"][0]["text"], expected["fields"]["args"][0]["text"]);
    assert_eq!(notification["fields"]["args"][0]["payload"]["sender"], expected["fields"]["args"][0]["payload"]["sender"]);
}

#[tokio::test]
async fn rest_refusals_have_each_generations_shape_and_429_carries_the_reset_in_milliseconds() {
    // reqwest is built without a TLS provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let v7 = fixture("rest-unauthorized.401.json");
    for (generation, wanted) in [(Generation::V6, vec!["message", "status"]), (Generation::V7, keys(&v7).iter().map(String::as_str).collect()), (Generation::V8, vec!["error", "success"])] {
        let fake = FakeRocketChat::start(generation).await.expect("the fake Rocket.Chat starts");
        let response = client.get(format!("{}/api/v1/me", fake.base_url())).send().await.expect("answer");
        assert_eq!(response.status().as_u16(), 401);
        let body: Value = serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
        assert_eq!(keys(&body), wanted, "{generation:?}: {body}");
    }
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.rate_limit_rest(1, Duration::from_secs(42));
    let before = jiff::Timestamp::now().as_millisecond();
    let response = client.get(format!("{}/api/v1/me", fake.base_url())).send().await.expect("answer");
    assert_eq!(response.status().as_u16(), 429);
    let reset: i64 = response.headers()["x-ratelimit-reset"].to_str().expect("ascii").parse().expect("epoch ms");
    assert!((before + 41_000..=before + 43_000).contains(&reset), "reset {reset} is epoch ms, 42 s ahead of {before}");
    let body: Value = serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
    assert_eq!(keys(&body), keys(&fixture("rest-too-many-requests.429.json")));
}
