//! The fake Leantime server (`support::fake_leantime`) driven over real HTTP
//! with reqwest: it answers like the fixtures, so that tests of the client
//! against it mean something.

use std::time::Duration;

use serde_json::{Value, json};
use vigie::leantime::rpc::{self, Call, CallErrorKind, Method, Notification, RequestError, Ticket, batch_body, parse_batch};

use crate::support::fake_leantime::{FakeLeantime, ServerVersion};
use crate::support::{secs, within};

/// Which credential a request carries.
#[derive(Clone, Copy)]
enum Cred<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
    Nothing,
}

/// An HTTP answer, read whole.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The answer as the client's wire layer reads it for `n` calls.
    fn parse(&self, n: usize) -> Result<Vec<rpc::CallResult>, RequestError> {
        parse_batch(self.status, self.header("retry-after"), &self.body, n)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn post(server: &FakeLeantime, cred: Cred<'_>, body: impl Into<String>) -> Answer {
    // reqwest is built without a bundled crypto provider (as in the app).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().build().expect("an HTTP client");
    let mut request = client
        .post(format!("{}{}", server.base_url(), rpc::ENDPOINT))
        .header("content-type", "application/json")
        .body(body.into());
    request = match cred {
        Cred::Bearer(token) => request.bearer_auth(token),
        Cred::ApiKey(key) => request.header("x-api-key", key),
        Cred::Nothing => request,
    };
    within(secs(10), "the fake Leantime's answer", async {
        let response = request.send().await.expect("the request reaches the fake");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("a readable body");
        Answer { status, headers, body }
    })
    .await
}

async fn call(server: &FakeLeantime, cred: Cred<'_>, calls: &[Call]) -> Vec<rpc::CallResult> {
    post(server, cred, batch_body(calls)).await.parse(calls.len()).expect("a JSON-RPC answer")
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leantime").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn poll_calls() -> Vec<Call> {
    vec![
        Call::new(Method::GetUnreadCount, json!({})),
        Call::new(Method::GetInbox, json!({ "showNewOnly": 1, "limitStart": 0, "limitEnd": 50 })),
        Call::new(Method::GetAllOpenUserTickets, json!({ "userId": 7 })),
    ]
}

fn ids(rows: &Value) -> Vec<i64> {
    rows.as_array().expect("rows").iter().map(|r| r["id"].as_i64().expect("an id")).collect()
}

#[tokio::test]
async fn a_poll_batch_is_answered_like_the_fixtures_and_sees_what_the_test_adds() {
    let server = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let token = Cred::Bearer(server.token());
    assert_eq!(server.token().len(), 40);
    assert!(server.token().chars().all(|c| c.is_ascii_alphanumeric()));
    let key_parts: Vec<&str> = server.api_key().split('_').collect();
    assert_eq!((key_parts[0], key_parts[1].len(), key_parts[2].len()), ("lt", 32, 32));

    let answer = post(&server, token, batch_body(&poll_calls())).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(answer.body.contains(r"https:\/\/pm.example.com"), "slashes escaped as PHP does: {}", answer.body);
    let results = answer.parse(3).expect("a JSON-RPC answer");
    assert_eq!(rpc::unread_count(results[0].as_ref().expect("count")), Some(2));
    let expected = fixture("batch-poll.response.json");
    assert_eq!(results[1].as_ref().expect("inbox"), &expected[1]["result"], "the fixture's inbox rows, newest first");
    let tickets = fixture("getAllOpenUserTickets.response.json");
    assert_eq!(results[2].as_ref().expect("tickets"), &json!([tickets["result"][0]]), "ticket 412 as in the fixture");

    let who = call(&server, token, &[Call::new(Method::GetUser, json!({})), Call::new(Method::GetSystemInfo, json!({}))]).await;
    assert_eq!(who[0].as_ref().expect("user"), &fixture("whoami.response.json")["result"]);
    assert_eq!(who[1].as_ref().expect("info"), &fixture("getSystemInfo.response.json")["result"]);
    let key_user = call(&server, Cred::ApiKey(server.api_key()), &[Call::new(Method::GetUser, json!({}))]).await;
    assert_eq!(key_user[0].as_ref().expect("user"), &fixture("whoami-apikey.response.json")["result"]);

    assert_eq!(server.add_notification("Ana mentioned you in “Q3 plan”", "Ana Ruiz"), 1288);
    assert_eq!(server.assign_ticket("Write release notes"), 413);
    let answer = post(&server, token, batch_body(&poll_calls())).await;
    assert!(answer.body.contains(r"\u201cQ3 plan\u201d"), "non-ASCII escaped as PHP does: {}", answer.body);
    let results = answer.parse(3).expect("a JSON-RPC answer");
    assert_eq!(rpc::unread_count(results[0].as_ref().expect("count")), Some(3));
    let inbox: Vec<Notification> = serde_json::from_value(results[1].clone().expect("inbox")).expect("rows");
    assert_eq!(inbox.iter().map(|n| n.id).collect::<Vec<_>>(), [1288, 1287, 1285]);
    assert_eq!((inbox[0].firstname.as_str(), inbox[0].lastname.as_str()), ("Ana", "Ruiz"));
    assert_eq!(inbox[0].message, "Ana mentioned you in “Q3 plan”");
    assert!(inbox[0].is_unread());
    let tickets: Vec<Ticket> = serde_json::from_value(results[2].clone().expect("tickets")).expect("rows");
    assert_eq!(tickets.iter().map(|t| (t.id, t.editor_id)).collect::<Vec<_>>(), [(412, Some(7)), (413, Some(7))]);
    assert_eq!(tickets[1].headline, "Write release notes");

    let recorded = server.requests();
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[0].calls, poll_calls().iter().map(|c| c.method.name()).collect::<Vec<_>>());
    assert_eq!(recorded[0].body_bytes, batch_body(&poll_calls()).len());
    assert!(recorded.iter().all(|r| r.status == 200 && r.response_bytes > 0));
}

#[tokio::test]
async fn refused_credentials_get_401_with_a_json_body_labelled_html() {
    let server = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let body = batch_body(&poll_calls());
    let wrong_key = format!("lt_{}_{}", "a".repeat(32), "b".repeat(32));
    for cred in [Cred::Bearer(&"x".repeat(40)), Cred::ApiKey(&wrong_key), Cred::Nothing] {
        let answer = post(&server, cred, body.clone()).await;
        assert_eq!(answer.status, 401);
        assert!(answer.header("content-type").is_some_and(|t| t.starts_with("text/html")), "the Symfony quirk");
        assert_eq!(answer.json(), fixture("http-401-unauthorized.body.json"));
        assert_eq!(answer.parse(3), Err(RequestError::Unauthorized(Some("Unauthorized".to_owned()))));
    }
    assert_eq!(post(&server, Cred::Bearer(server.token()), body.clone()).await.status, 200);
    server.revoke_token();
    assert_eq!(post(&server, Cred::Bearer(server.token()), body.clone()).await.status, 401, "revoked");
    assert_eq!(post(&server, Cred::ApiKey(server.api_key()), body.clone()).await.status, 401, "revoked too");

    // Personal access tokens exist from 3.9.6 on; API keys everywhere.
    let older = FakeLeantime::start(ServerVersion::V3_9_0).await;
    assert_eq!(post(&older, Cred::Bearer(older.token()), body.clone()).await.status, 401);
    assert_eq!(post(&older, Cred::ApiKey(older.api_key()), body).await.status, 200);
}

#[tokio::test]
async fn the_rate_limit_counts_a_batch_once_and_answers_429_with_retry_after() {
    let server = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let token = Cred::Bearer(server.token());
    assert_eq!(post(&server, token, batch_body(&poll_calls()[..1])).await.status, 200, "no limit yet");
    server.set_rate_limit(2, 37);
    assert_eq!(post(&server, token, batch_body(&poll_calls())).await.status, 200, "a batch of 3 is one request");
    // The window is rolling: the request before the limit was set counts.
    let limited = post(&server, token, batch_body(&poll_calls())).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("37"));
    assert_eq!(limited.header("x-ratelimit-retry-after"), Some("37"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(limited.json(), fixture("http-429-rate-limited.body.json"));
    assert_eq!(limited.parse(3), Err(RequestError::RateLimited { retry_after: Duration::from_secs(37) }));
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(server.requests()[2].calls.len(), 3, "a refused batch is still recorded with its calls");
}

#[tokio::test]
async fn v3_8_serves_get_all_notifications_and_refuses_the_3_9_methods() {
    let old = FakeLeantime::start(ServerVersion::V3_8).await;
    let key = Cred::ApiKey(old.api_key());
    let results = call(
        &old,
        key,
        &[
            Call::new(Method::GetInbox, json!({ "showNewOnly": 1, "limitStart": 0, "limitEnd": 50 })),
            Call::new(Method::GetSystemInfo, json!({})),
            Call::new(Method::GetAllNotifications, json!({ "userId": 7, "showNewOnly": 1 })),
            Call::new(Method::GetUnreadCount, json!({})),
        ],
    )
    .await;
    let inbox = results[0].clone().expect_err("no inbox before 3.9.5");
    assert_eq!((inbox.kind, inbox.detail.as_deref()), (CallErrorKind::MethodNotFound, Some("Method doesn't exist: getInbox")));
    let info = results[1].clone().expect_err("no getSystemInfo before 3.9");
    assert_eq!((info.kind, info.detail.as_deref()), (CallErrorKind::MethodNotFound, Some("Service doesn't exist: Config")));
    let rows = results[2].as_ref().expect("getAllNotifications works on 3.8");
    assert_eq!(ids(rows), [1287, 1285]);
    let rows: Vec<Notification> = serde_json::from_value(rows.clone()).expect("notification rows");
    assert!(rows.iter().all(Notification::is_unread));
    assert_eq!(results[3].clone().expect_err("no count before 3.9").kind, CallErrorKind::MethodNotFound);

    let new = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let refused = call(&new, Cred::Bearer(new.token()), &[Call::new(Method::GetAllNotifications, json!({ "userId": 7 }))]).await;
    let refused = refused[0].clone().expect_err("not an API method from 3.9 on");
    let expected = fixture("error-not-api-method.response.json");
    assert_eq!(refused.code, -32601);
    assert_eq!(refused.detail.as_deref(), expected["error"]["data"].as_str());

    let middle = FakeLeantime::start(ServerVersion::V3_9_0).await;
    let results = call(
        &middle,
        Cred::ApiKey(middle.api_key()),
        &[Call::new(Method::GetSystemInfo, json!({})), Call::new(Method::GetInbox, json!({}))],
    )
    .await;
    assert_eq!(rpc::version(results[0].as_ref().expect("info")), Some((3, 9, 0)));
    assert_eq!(results[1].clone().expect_err("no inbox on 3.9.0").kind, CallErrorKind::MethodNotFound);
}

#[tokio::test]
async fn mark_read_is_true_once_then_false_and_all_clears_the_inbox() {
    let server = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let token = Cred::Bearer(server.token());
    let mark = |id: Value| Call::new(Method::MarkRead, json!({ "id": id }));
    let inbox = |new_only: i64, size: i64| {
        Call::new(Method::GetInbox, json!({ "showNewOnly": new_only, "limitStart": 0, "limitEnd": size }))
    };

    let results = call(&server, token, &[mark(json!(1287)), mark(json!(1287))]).await;
    assert_eq!((&results[0], &results[1]), (&Ok(json!(true)), &Ok(json!(false))), "true, then already read");
    server.mark_read_elsewhere(1285);
    let results = call(&server, token, &[mark(json!(1285)), Call::new(Method::GetUnreadCount, json!({}))]).await;
    assert_eq!(results[0], Ok(json!(false)), "read in the web app meanwhile");
    assert_eq!(rpc::unread_count(results[1].as_ref().expect("count")), Some(0));

    server.add_notification("one", "Sam Lee");
    server.add_notification("two", "Sam Lee");
    let results = call(&server, token, &[inbox(1, 50), inbox(0, 0), inbox(0, 1000)]).await;
    assert_eq!(ids(results[0].as_ref().expect("new only")), [1289, 1288]);
    assert_eq!(ids(results[1].as_ref().expect("page of 1")), [1289], "the page size is at least 1");
    assert_eq!(ids(results[2].as_ref().expect("all")), [1289, 1288, 1287, 1285]);
    assert_eq!(results[2].as_ref().expect("all")[0]["authorId"], json!(9), "Sam is user 9");

    let results = call(&server, token, &[mark(json!("all")), Call::new(Method::GetUnreadCount, json!({})), inbox(1, 50)]).await;
    assert_eq!(results[0], Ok(json!(true)));
    assert_eq!(rpc::unread_count(results[1].as_ref().expect("count")), Some(0));
    assert_eq!(results[2], Ok(json!([])));

    let missing = call(&server, token, &[Call::new(Method::MarkRead, json!({}))]).await;
    let missing = missing[0].clone().expect_err("id is required");
    assert_eq!((missing.kind, missing.detail.as_deref()), (CallErrorKind::InvalidParams, Some("Required Parameter Missing: id")));
}

#[tokio::test]
async fn a_ticket_done_in_the_web_app_leaves_the_open_tickets() {
    let server = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let token = Cred::Bearer(server.token());
    let open = || Call::new(Method::GetAllOpenUserTickets, json!({ "userId": 7 }));
    let new = server.assign_ticket("Write release notes");

    server.close_ticket_elsewhere(412);
    let results = call(&server, token, &[open(), Call::new(Method::MarkTicketDone, json!({ "id": 412 }))]).await;
    let tickets: Vec<Ticket> = serde_json::from_value(results[0].clone().expect("tickets")).expect("rows");
    assert_eq!(tickets.iter().map(|t| t.id).collect::<Vec<_>>(), [new]);
    assert_eq!(results[1], Ok(json!(false)), "done already");
    assert!(!server.ticket_is_open(412) && server.ticket_is_open(new));
}

#[tokio::test]
async fn edge_cases_of_the_protocol_and_broken_servers_in_front() {
    let server = FakeLeantime::start(ServerVersion::V3_9_6).await;
    let token = Cred::Bearer(server.token());

    // Sent from another task: wait_for_requests is woken by the handler.
    let sender = {
        let base = server.base_url();
        let token = server.token().to_owned();
        tokio::spawn(async move {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let body = r#"{"jsonrpc":"2.0","method":"leantime.rpc.Notifications.Notifications.markRead","params":{"id":1287}}"#;
            let response = reqwest::Client::new()
                .post(format!("{base}/api/jsonrpc"))
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .expect("sent");
            (response.status().as_u16(), response.text().await.expect("body"))
        })
    };
    let recorded = server.wait_for_requests(1, secs(10)).await;
    assert_eq!(recorded.len(), 1, "woken by the request");
    assert_eq!(recorded[0].calls, [Method::MarkRead.name()]);
    assert_eq!((recorded[0].status, recorded[0].response_bytes), (200, 0));
    assert_eq!(sender.await.expect("the sender"), (200, String::new()), "no id: executed, not answered");
    let count = call(&server, token, &[Call::new(Method::GetUnreadCount, json!({}))]).await;
    assert_eq!(count[0], Ok(json!(1)), "the call without id was still executed");

    let broken = post(&server, token, r#"{"jsonrpc":"2.0","method":"#).await;
    assert_eq!(broken.json(), fixture("error-parse.response.json"));
    let mut missing = fixture("error-missing-jsonrpc.request.json");
    let answer = post(&server, token, missing.to_string()).await.json();
    assert_eq!(answer, fixture("error-missing-jsonrpc.response.json"));
    missing["jsonrpc"] = json!("2.0");
    missing["method"] = json!("leantime.rpc.Inbox.Inbox.list");
    missing["id"] = json!(10);
    assert_eq!(post(&server, token, missing.to_string()).await.json(), fixture("error-method-not-found-service.response.json"));
    let unknown = fixture("error-method-not-found-method.request.json");
    assert_eq!(post(&server, token, unknown.to_string()).await.json(), fixture("error-method-not-found-method.response.json"));
    let bad = fixture("error-bad-method-string.request.json");
    assert_eq!(post(&server, token, bad.to_string()).await.json(), fixture("error-bad-method-string.response.json"));

    server.respond_with_html(true);
    let page = post(&server, token, batch_body(&poll_calls())).await;
    assert_eq!(page.status, 200);
    assert!(page.body.starts_with("<!DOCTYPE html>"));
    match page.parse(3) {
        Err(RequestError::NotJsonRpc(why)) => assert!(why.contains("HTML"), "{why}"),
        other => panic!("a login page is not an API answer: {other:?}"),
    }
    server.respond_with_html(false);
    server.fail_with_status(Some(502));
    let gateway = post(&server, token, batch_body(&poll_calls())).await;
    assert_eq!(gateway.parse(3), Err(RequestError::Http { status: 502 }));
    assert!(gateway.body.contains("502 Bad Gateway"));
    server.fail_with_status(None);
    assert_eq!(post(&server, token, batch_body(&poll_calls())).await.status, 200);

    let statuses: Vec<u16> = server.wait_for_requests(10, secs(10)).await.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 502, 200]);
    // A timeout is no failure: it returns what came.
    assert_eq!(server.wait_for_requests(11, Duration::from_millis(50)).await.len(), 10);
}
