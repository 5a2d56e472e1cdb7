//! Leantime's JSON-RPC wire format, read from the fixtures: every shape the
//! server sends becomes either per-call results or one typed failure.

use std::time::Duration;

use serde_json::{Value, json};
use vigie::leantime::rpc::{
    self, Call, CallErrorKind, Method, Notification, RequestError, Ticket, batch_body, parse_batch,
};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leantime").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The fixture's envelope(s) with their ids renumbered to batch positions,
/// as our batches use positions for ids.
fn renumbered(name: &str) -> String {
    let mut value: Value = serde_json::from_str(&fixture(name)).expect("fixture is JSON");
    match &mut value {
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                item["id"] = json!(i);
            }
        }
        single => single["id"] = json!(0),
    }
    value.to_string()
}

fn poll_calls() -> Vec<Call> {
    vec![
        Call::new(Method::GetUnreadCount, json!({})),
        Call::new(Method::GetInbox, json!({ "showNewOnly": 1, "limitStart": 0, "limitEnd": 50 })),
        Call::new(Method::GetAllOpenUserTickets, json!({ "userId": 7 })),
    ]
}

#[test]
fn the_poll_batch_has_the_fixture_methods_and_params_with_positional_ids() {
    let ours: Value = serde_json::from_str(&batch_body(&poll_calls())).expect("JSON");
    let theirs: Value = serde_json::from_str(&fixture("batch-poll.request.json")).expect("JSON");
    let ours = ours.as_array().expect("a batch is an array");
    let theirs = theirs.as_array().expect("array");
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a["jsonrpc"], "2.0");
        assert_eq!(a["method"], b["method"], "call {i}");
        assert_eq!(a["params"], b["params"], "call {i}");
        assert_eq!(a["id"], json!(i), "every call has an id: without one Leantime answers nothing");
    }
}

#[test]
fn a_batch_answer_gives_the_count_the_new_notifications_and_the_assigned_tickets() {
    let results = parse_batch(200, None, &renumbered("batch-poll.response.json"), 3).expect("a good answer");
    let count = rpc::unread_count(results[0].as_ref().expect("count")).expect("a number");
    assert_eq!(count, 2);
    let inbox: Vec<Notification> = serde_json::from_value(results[1].clone().expect("inbox")).expect("rows");
    assert_eq!(inbox.iter().map(|n| n.id).collect::<Vec<_>>(), [1287, 1285], "newest first");
    assert!(inbox.iter().all(Notification::is_unread));
    assert_eq!(inbox[0].kind, "mention");
    assert_eq!(inbox[0].firstname, "Sam");
    assert!(inbox[0].url.starts_with("https://pm.example.com/"), "escaped slashes decode: {}", inbox[0].url);
    let tickets: Vec<Ticket> = serde_json::from_value(results[2].clone().expect("tickets")).expect("rows");
    assert_eq!(tickets[0].id, 412);
    assert_eq!(tickets[0].editor_id, Some(7), "editorId is a string column on the server");
    assert_eq!(tickets[0].headline, "Fix login redirect loop");
}

#[test]
fn answers_are_matched_to_calls_by_id_not_by_position() {
    let mut value: Value = serde_json::from_str(&renumbered("batch-poll.response.json")).expect("JSON");
    value.as_array_mut().expect("array").reverse();
    let results = parse_batch(200, None, &value.to_string(), 3).expect("a good answer");
    assert_eq!(rpc::unread_count(results[0].as_ref().expect("count")), Some(2));
    assert!(results[2].as_ref().expect("tickets").is_array());
}

#[test]
fn each_json_rpc_error_code_maps_to_its_kind_and_keeps_the_servers_words() {
    for (file, kind, code) in [
        ("error-missing-jsonrpc.response.json", CallErrorKind::BadRequest, -32600),
        ("error-method-not-found-method.response.json", CallErrorKind::MethodNotFound, -32601),
        ("error-method-not-found-service.response.json", CallErrorKind::MethodNotFound, -32601),
        ("error-not-api-method.response.json", CallErrorKind::MethodNotFound, -32601),
        ("error-bad-method-string.response.json", CallErrorKind::InvalidParams, -32602),
        ("error-missing-param.response.json", CallErrorKind::InvalidParams, -32602),
        ("error-permission.response.json", CallErrorKind::PermissionDenied, -32001),
        ("error-server.response.json", CallErrorKind::ServerError, -32000),
    ] {
        let raw: Value = serde_json::from_str(&fixture(file)).expect("JSON");
        let results = parse_batch(200, None, &renumbered(file), 1).expect("an envelope");
        let error = results[0].clone().expect_err(file);
        assert_eq!((error.kind, error.code), (kind, code), "{file}");
        assert_eq!(error.message, raw["error"]["message"].as_str().unwrap_or_default(), "{file}");
        assert!(error.to_string().contains(&error.message), "{file}: the message is shown: {error}");
    }
}

#[test]
fn a_parse_error_with_id_zero_fails_every_call_of_the_batch() {
    // Leantime answers an unreadable body with one envelope, id 0.
    let body = fixture("error-parse.response.json");
    let results = parse_batch(200, None, &body, 3).expect("an envelope");
    assert_eq!(results.len(), 3);
    for result in results {
        assert_eq!(result.expect_err("parse error").kind, CallErrorKind::BadRequest);
    }
}

#[test]
fn http_401_is_a_refused_credential_with_the_servers_words() {
    let error = parse_batch(401, None, &fixture("http-401-unauthorized.body.json"), 3).expect_err("401");
    assert_eq!(error, RequestError::Unauthorized(Some("Unauthorized".to_owned())));
}

#[test]
fn http_429_with_retry_after_is_a_rate_limit_with_its_wait() {
    let error = parse_batch(429, Some("37"), &fixture("http-429-rate-limited.body.json"), 3).expect_err("429");
    assert_eq!(error, RequestError::RateLimited { retry_after: Duration::from_secs(37) });
}

#[test]
fn http_429_without_retry_after_is_the_failed_sign_in_lockout() {
    let error = parse_batch(429, None, &fixture("http-429-auth-failures.body.json"), 3).expect_err("429");
    assert_eq!(error, RequestError::TooManyFailedSignIns);
}

#[test]
fn server_errors_and_html_pages_are_request_failures_not_results() {
    assert_eq!(parse_batch(502, None, "<html>Bad gateway</html>", 1), Err(RequestError::Http { status: 502 }));
    let login_page = "<!DOCTYPE html><html><head><title>Login</title></head><body>…</body></html>";
    match parse_batch(200, None, login_page, 1) {
        Err(RequestError::NotJsonRpc(why)) => assert!(why.contains("HTML"), "{why}"),
        other => panic!("a login page is not an API answer: {other:?}"),
    }
    assert!(matches!(parse_batch(200, None, "", 1), Err(RequestError::NotJsonRpc(_))));
    assert!(matches!(parse_batch(200, None, r#"{"hello":"world"}"#, 1), Ok(ref r) if r[0].is_err()));
}

#[test]
fn mark_read_answers_true_then_false_for_an_already_read_notification() {
    let first = parse_batch(200, None, &renumbered("markRead.response.json"), 1).expect("answer");
    let again = parse_batch(200, None, &renumbered("markRead-again.response.json"), 1).expect("answer");
    assert_eq!(first[0], Ok(json!(true)));
    assert_eq!(again[0], Ok(json!(false)), "false means already read, not a failure");
}

#[test]
fn counts_and_columns_are_read_leniently() {
    assert_eq!(rpc::unread_count(&json!(3)), Some(3));
    assert_eq!(rpc::unread_count(&json!([3])), Some(3), "older servers wrap scalars");
    assert_eq!(rpc::unread_count(&json!("4")), Some(4));
    assert_eq!(rpc::unread_count(&json!(null)), None);
    let row: Notification = serde_json::from_value(json!({
        "id": "15", "read": null, "type": "mention", "moduleId": "", "message": null, "firstname": null
    }))
    .expect("lenient row");
    assert_eq!(row.id, 15);
    assert!(row.is_unread(), "a null read column is unread");
    assert_eq!(row.module_id, None);
    assert_eq!(row.message, "");
}

#[test]
fn the_server_version_picks_the_code_path() {
    let results = parse_batch(200, None, &renumbered("getSystemInfo.response.json"), 1).expect("answer");
    assert_eq!(rpc::version(results[0].as_ref().expect("info")), Some((3, 9, 8)));
    assert_eq!(rpc::version(&json!({ "version": "v3.8" })), Some((3, 8, 0)));
    assert_eq!(rpc::version(&json!({})), None);
}
