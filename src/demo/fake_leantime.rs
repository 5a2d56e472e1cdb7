//! A fake Leantime JSON-RPC server: a real HTTP server (axum on tokio, bound
//! to `127.0.0.1:0`) that speaks the wire format in
//! `tests/fixtures/leantime/` and keeps a small in-memory database that its
//! owner changes while the client polls.
//!
//! It serves two masters: the integration tests, which drive every knob
//! below, and the built-in demo, whose tasks account polls it through the
//! real Leantime watcher (see [`super::add_to`]). It only ever listens on
//! loopback.
//!
//! What it imitates (see the fixtures' README and `src/leantime/rpc.rs`):
//! - `POST /api/jsonrpc`, a single request object or a batch array; answers
//!   in the same shape, ids echoed, JSON-RPC errors in-band with HTTP 200. A
//!   request without `id` (or with `id: null`) is executed but not answered
//!   (a single one gets HTTP 200 with an empty body). Unreadable JSON gets
//!   one `-32700` envelope with id 0. Answers are encoded the way PHP does
//!   (`/` as `\/`, non-ASCII as `\uXXXX`).
//! - Credentials: `Authorization: Bearer <token>` (only on
//!   [`ServerVersion::V3_9_6`]: older servers have no personal access
//!   tokens and refuse it) or `x-api-key: lt_<user>_<secret>` (every
//!   version). A missing, wrong or revoked credential gets HTTP 401 with
//!   `{"error":"Unauthorized"}` labelled `text/html`.
//! - A per-minute rate limit (off until [`FakeLeantime::set_rate_limit`]):
//!   HTTP 429 with `Retry-After` and the `X-RateLimit-*` headers. A batch is
//!   one request. The limiter sits before the credential check, so refused
//!   credentials use up the allowance too.
//! - Methods by version: `getSystemInfo`, `getUnreadCount` and `markRead`
//!   from 3.9.0, `getInbox` from 3.9.5 (here: `V3_9_6`),
//!   `getAllNotifications` only before 3.9 (from 3.9 on it exists but is
//!   "not available via API"); `getUser` and `getAllOpenUserTickets` on
//!   every version.
//!
//! Order of the checks for each HTTP request: [`FakeLeantime::fail_with_status`]
//! (a proxy in front), [`FakeLeantime::respond_with_html`] (a login page),
//! the path and HTTP method, the rate limit, the credential, then JSON-RPC.
//!
//! The rate limiter's clock is tokio's, so under a paused clock the window
//! moves with simulated time (`tokio::time::advance`). The server sets no
//! timers of its own, so it is safe under a paused clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The valid bearer token of user 7 ("Jane"): 40 alphanumerics.
const JANE_TOKEN: &str = "Jn7pAtK4vQ9wXe2Lr8Ty5Uo1Ip3As6Df0Gh4Jk7Z";
/// The API key of pseudo-user 42: `lt_<its username>_<secret>`.
const API_KEY: &str = "lt_Yq3tR0aLk8ZpN2vW7xC4bM9sD1fH6jGe_Wm5Nb8Vc2Xz4Lk6Jh9Gf1Ds3Ap7Qo0Ie";

/// User ids.
const JANE: i64 = 7;
const API_USER: i64 = 42;
const SAM: i64 = 9;

/// Which Leantime release the fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerVersion {
    /// Before 3.9: `getAllNotifications` is the only way to read
    /// notifications; no `getSystemInfo` (its service does not exist), no
    /// `getUnreadCount`/`markRead`/`getInbox`; API keys only.
    V3_8,
    /// 3.9.0 to 3.9.4: `getSystemInfo` (answers `"3.9.0"`),
    /// `getUnreadCount` and `markRead`, but no `getInbox`, and
    /// `getAllNotifications` is refused; API keys only.
    V3_9_0,
    /// 3.9.6 and later: everything, `getInbox` and personal access tokens
    /// (bearer) included; `getSystemInfo` answers `"3.9.8"` as in the
    /// fixture.
    V3_9_6,
}

impl ServerVersion {
    fn version_string(self) -> &'static str {
        match self {
            ServerVersion::V3_8 => "3.8.7",
            ServerVersion::V3_9_0 => "3.9.0",
            ServerVersion::V3_9_6 => "3.9.8",
        }
    }
}

/// One HTTP request the fake received, with what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The full JSON-RPC method names in the body, in order (one for a
    /// single request, one per object of a batch; empty when the body was
    /// not readable JSON). Filled in even when the request was refused
    /// (401, 429, HTML, failure status).
    pub calls: Vec<String>,
    /// Size of the request body in bytes.
    pub body_bytes: usize,
    /// Size of the response body in bytes.
    pub response_bytes: usize,
    /// The HTTP status answered.
    pub status: u16,
}

/// A running fake Leantime server. Dropping it stops the server (in-flight
/// requests finish, idle connections are closed).
pub struct FakeLeantime {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    // Kept so that the task is owned here (when [`FakeLeantime::start`]
    // spawned it); the server stops on `shutdown`.
    _task: Option<JoinHandle<()>>,
}

/// A bound server that is not serving yet: [`Serving::run`] serves it.
/// Lets a synchronous setup (the demo's) learn the address first.
pub struct Serving {
    listener: std::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
}

impl Serving {
    /// Serves until `cancel` (or the [`FakeLeantime`] is dropped). Must run
    /// on a tokio runtime.
    pub async fn run(self, cancel: CancellationToken) {
        let listener = match tokio::net::TcpListener::from_std(self.listener) {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!("the fake Leantime cannot listen: {e}");
                return;
            }
        };
        let (shutdown, cancel) = (self.shutdown, cancel);
        let signal = async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = cancel.cancelled() => {}
            }
        };
        // Serving only ends on the shutdown signal; accept errors are
        // retried inside axum.
        let _ = axum::serve(listener, self.app).with_graceful_shutdown(signal).await;
    }
}

/// What the handler and the test share.
struct Shared {
    state: Mutex<FakeState>,
    /// Woken after every recorded request.
    recorded: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test must not hide its own failure behind poisoning.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct RateLimit {
    per_minute: u32,
    retry_after_secs: u64,
}

struct FakeState {
    version: ServerVersion,
    credentials_revoked: bool,
    html: bool,
    fail_status: Option<StatusCode>,
    rate_limit: Option<RateLimit>,
    /// When the requests that passed the limiter in the last 60 s came
    /// (kept with no limit set too, so that a limit set later counts them).
    admitted: VecDeque<Instant>,
    notifications: Vec<NotificationRow>,
    last_notification_id: i64,
    /// Tickets added later get ids above this and above every existing one.
    first_new_ticket_id: i64,
    tickets: Vec<TicketRow>,
    /// Known people: (first name, last name, user id).
    people: Vec<(String, String, i64)>,
    /// Methods (short names, e.g. `markTicketDone`) refused, with the
    /// JSON-RPC error code.
    refused: Vec<(String, i64)>,
    recorded: Vec<Recorded>,
}

#[derive(Clone)]
struct NotificationRow {
    id: i64,
    user_id: i64,
    read: bool,
    kind: String,
    module: String,
    module_id: i64,
    datetime: String,
    url: String,
    message: String,
    author_id: i64,
    firstname: String,
    lastname: String,
}

impl NotificationRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "userId": self.user_id,
            "read": i64::from(self.read),
            "type": self.kind,
            "module": self.module,
            "moduleId": self.module_id,
            "datetime": self.datetime,
            "url": self.url,
            "message": self.message,
            "authorId": self.author_id,
            "firstname": self.firstname,
            "lastname": self.lastname,
        })
    }
}

#[derive(Clone)]
struct TicketRow {
    id: i64,
    headline: String,
    description: String,
    date: String,
    storypoints: String,
    date_to_finish: Option<String>,
    project_id: i64,
    priority: String,
    status: i64,
    tags: String,
    author_id: i64,
    editor_id: i64,
}

impl TicketRow {
    /// The shape of `getAllOpenUserTickets.response.json`.
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "headline": self.headline,
            "description": self.description,
            "date": self.date,
            "sprint": null,
            "storypoints": self.storypoints,
            "sortindex": null,
            "dateToFinish": self.date_to_finish,
            "projectId": self.project_id,
            "priority": self.priority,
            "status": self.status,
            "tags": self.tags,
            "userId": self.author_id,
            // A string column on the server.
            "editorId": self.editor_id.to_string(),
            "dependingTicketId": null,
            "milestoneid": null,
            "planHours": 0,
            "editFrom": null,
            "editTo": null,
            "hourRemaining": 0,
            "milestoneHeadline": null,
            "projectName": "Website relaunch",
            "projectDescription": "",
            "type": "task",
            "statusLabel": "New",
            "statusClass": "label-info",
            "statusType": "NEW",
        })
    }

    /// Leantime: 0 is done, -1 archived; anything above is open.
    fn is_open(&self) -> bool {
        self.status > 0
    }
}

fn now_datetime() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn seeded_state(version: ServerVersion) -> FakeState {
    let notifications = vec![
        NotificationRow {
            id: 1285,
            user_id: JANE,
            read: false,
            kind: "projectUpdate".to_owned(),
            module: "tickets".to_owned(),
            module_id: 412,
            datetime: "2025-03-14 09:05:02".to_owned(),
            url: "https://pm.example.com/dashboard/home#/tickets/showTicket/412".to_owned(),
            message: "Sam added a new To-Do: 'Fix login redirect loop' ".to_owned(),
            author_id: SAM,
            firstname: "Sam".to_owned(),
            lastname: "Lee".to_owned(),
        },
        NotificationRow {
            id: 1287,
            user_id: JANE,
            read: false,
            kind: "mention".to_owned(),
            module: "comments".to_owned(),
            module_id: 931,
            datetime: "2025-03-14 09:12:44".to_owned(),
            url: "https://pm.example.com/dashboard/home#/tickets/showTicket/412?projectId=3".to_owned(),
            message: "Sam mentioned you in a project".to_owned(),
            author_id: SAM,
            firstname: "Sam".to_owned(),
            lastname: "Lee".to_owned(),
        },
    ];
    let tickets = vec![TicketRow {
        id: 412,
        headline: "Fix login redirect loop".to_owned(),
        description: "<p>Users bounce between /auth/login and /dashboard</p>".to_owned(),
        date: "2025-03-14 09:05:02".to_owned(),
        storypoints: "3".to_owned(),
        date_to_finish: Some("2025-03-20 17:00:00".to_owned()),
        project_id: 3,
        priority: "2".to_owned(),
        status: 3,
        tags: "auth".to_owned(),
        author_id: SAM,
        editor_id: JANE,
    }];
    FakeState {
        version,
        credentials_revoked: false,
        html: false,
        fail_status: None,
        rate_limit: None,
        admitted: VecDeque::new(),
        notifications,
        last_notification_id: 1287,
        first_new_ticket_id: 0,
        tickets,
        people: vec![("Jane".to_owned(), "Doe".to_owned(), JANE), ("Sam".to_owned(), "Lee".to_owned(), SAM)],
        refused: Vec::new(),
        recorded: Vec::new(),
    }
}

impl FakeLeantime {
    /// Starts a server imitating `version` on `127.0.0.1` (a free port),
    /// seeded like the fixtures: user 7 "Jane Doe" with a valid bearer token
    /// ([`Self::token`]), API-key pseudo-user 42 ([`Self::api_key`]), two
    /// unread notifications for Jane (1285 "projectUpdate" and 1287
    /// "mention", both by Sam Lee, user 9) and one open ticket assigned to
    /// her (412 "Fix login redirect loop"). No rate limit.
    ///
    /// # Panics
    /// If no loopback port can be bound (a test cannot go on then).
    pub async fn start(version: ServerVersion) -> FakeLeantime {
        let (mut server, serving) = FakeLeantime::bind(version).expect("bind the fake Leantime on loopback");
        server._task = Some(tokio::spawn(serving.run(CancellationToken::new())));
        server
    }

    /// Like [`FakeLeantime::start`] but without serving yet: binds a free
    /// loopback port now and returns what serves it.
    pub fn bind(version: ServerVersion) -> std::io::Result<(FakeLeantime, Serving)> {
        let shared = Arc::new(Shared { state: Mutex::new(seeded_state(version)), recorded: Notify::new() });
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let shutdown = CancellationToken::new();
        let serving = Serving { listener, app, shutdown: shutdown.clone() };
        Ok((FakeLeantime { shared, addr, shutdown, _task: None }, serving))
    }

    /// Makes ids of notifications and tickets added from now on start above
    /// `first`: a demo that restarts with a fresh server must not hand out
    /// ids (and so item keys) an earlier run already announced.
    pub fn number_new_items_from(&self, first: i64) {
        let mut state = self.shared.lock();
        state.last_notification_id = state.last_notification_id.max(first);
        state.first_new_ticket_id = state.first_new_ticket_id.max(first);
    }

    /// The server's base URL, `http://127.0.0.1:PORT` (no trailing slash);
    /// the endpoint is `{base_url}/api/jsonrpc`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The valid bearer token (40 alphanumerics) of user 7. Accepted only by
    /// [`ServerVersion::V3_9_6`].
    pub fn token(&self) -> &str {
        JANE_TOKEN
    }

    /// A valid API key, `lt_<32 alnum>_<32 alnum>`, of pseudo-user 42
    /// (`source: "api"`), accepted by every version. Calls that act on "the
    /// current user" (`getUnreadCount`, `getInbox`, `markRead`) act on user
    /// 42, who has no notifications unless a test adds some elsewhere.
    pub fn api_key(&self) -> &str {
        API_KEY
    }

    /// Adds an unread "mention" notification for user 7 by `author` ("First
    /// Last"), dated now (UTC), and returns its id: one above the highest id
    /// so far.
    pub fn add_notification(&self, message: &str, author: &str) -> i64 {
        let mut state = self.shared.lock();
        let (firstname, lastname) = match author.split_once(' ') {
            Some((first, last)) => (first.to_owned(), last.to_owned()),
            None => (author.to_owned(), String::new()),
        };
        let author_id = state.person_id(&firstname, &lastname);
        state.last_notification_id += 1;
        let id = state.last_notification_id;
        state.notifications.push(NotificationRow {
            id,
            user_id: JANE,
            read: false,
            kind: "mention".to_owned(),
            module: "comments".to_owned(),
            module_id: 931 + (id - 1287),
            datetime: now_datetime(),
            // Like Leantime's own: an absolute link into the app, here this
            // server, so that "Open" in the demo stays on loopback.
            url: format!("{}/dashboard/home#/tickets/showTicket/412?projectId=3", self.base_url()),
            message: message.to_owned(),
            author_id,
            firstname,
            lastname,
        });
        id
    }

    /// Adds a new open ticket (project 3, created by Sam now) assigned to
    /// user 7 and returns its id: one above the highest ticket id so far.
    pub fn assign_ticket(&self, headline: &str) -> i64 {
        let mut state = self.shared.lock();
        let id = state.tickets.iter().map(|t| t.id).max().unwrap_or(0).max(state.first_new_ticket_id) + 1;
        state.tickets.push(TicketRow {
            id,
            headline: headline.to_owned(),
            description: String::new(),
            date: now_datetime(),
            storypoints: String::new(),
            date_to_finish: None,
            project_id: 3,
            priority: "3".to_owned(),
            status: 3,
            tags: String::new(),
            author_id: SAM,
            editor_id: JANE,
        });
        id
    }

    /// Marks notification `id` read, as if the user read it in the web app.
    /// Panics if there is no such notification (a mistake in the test).
    pub fn mark_read_elsewhere(&self, id: i64) {
        let mut state = self.shared.lock();
        match state.notifications.iter_mut().find(|n| n.id == id) {
            Some(row) => row.read = true,
            None => panic!("the fake Leantime has no notification {id}"),
        }
    }

    /// Moves ticket `id` to Done (status 0), as if the user did it in the
    /// web app: it leaves the open tickets. Panics if there is no such
    /// ticket (a mistake in the test).
    pub fn close_ticket_elsewhere(&self, id: i64) {
        let mut state = self.shared.lock();
        match state.tickets.iter_mut().find(|t| t.id == id) {
            Some(ticket) => ticket.status = 0,
            None => panic!("the fake Leantime has no ticket {id}"),
        }
    }

    /// Limits requests to `per_minute` within a rolling 60 s window (a batch
    /// is one request); the requests beyond get HTTP 429 with
    /// `Retry-After: retry_after_secs`. The window includes the requests of
    /// the last 60 s made before this call (so `set_rate_limit(1, ..)` right
    /// after a poll refuses the next one); requests refused with 429 do not
    /// count, nor do those answered by [`Self::fail_with_status`] or
    /// [`Self::respond_with_html`].
    pub fn set_rate_limit(&self, per_minute: u32, retry_after_secs: u64) {
        self.shared.lock().rate_limit = Some(RateLimit { per_minute, retry_after_secs });
    }

    /// Refuses the method `name` (short name, e.g. `getAllOpenUserTickets`)
    /// with -32001 "You are not allowed to perform this action.", as when
    /// the credential's role lacks a permission.
    pub fn deny_permission(&self, name: &str) {
        self.refuse_method(name, -32001);
    }

    /// Answers every call of the method `name` (short name) with the
    /// JSON-RPC error `code` and Leantime's message for it, until
    /// [`Self::accept_all_methods`].
    pub fn refuse_method(&self, name: &str, code: i64) {
        self.shared.lock().refused.push((name.to_owned(), code));
    }

    /// Undoes [`Self::refuse_method`] and [`Self::deny_permission`].
    pub fn accept_all_methods(&self) {
        self.shared.lock().refused.clear();
    }

    /// Whether ticket `id` is still open (not done).
    pub fn ticket_is_open(&self, id: i64) -> bool {
        self.shared.lock().tickets.iter().any(|t| t.id == id && t.is_open())
    }

    /// Whether notification `id` is read.
    pub fn notification_is_read(&self, id: i64) -> bool {
        self.shared.lock().notifications.iter().any(|n| n.id == id && n.read)
    }

    /// Revokes the bearer token and the API key: every later request gets
    /// HTTP 401.
    pub fn revoke_token(&self) {
        self.shared.lock().credentials_revoked = true;
    }

    /// While `on`, every request gets HTTP 200 with an HTML login page (as
    /// behind a single sign-on proxy, or with a wrong base URL).
    pub fn respond_with_html(&self, on: bool) {
        self.shared.lock().html = on;
    }

    /// With `Some(status)` (e.g. 502), every request gets that status with
    /// an HTML error page, as from a proxy in front of a broken server;
    /// `None` turns it off. Panics on a status outside 100..=999.
    pub fn fail_with_status(&self, status: Option<u16>) {
        let status = status.map(|s| StatusCode::from_u16(s).unwrap_or_else(|_| panic!("not an HTTP status: {s}")));
        self.shared.lock().fail_status = status;
    }

    /// Every HTTP request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().recorded.clone()
    }

    /// Waits until at least `n` requests were received, or `timeout` passed
    /// (tokio time: simulated under a paused clock), and returns every
    /// request received by then. It does not fail on a timeout: the caller
    /// checks the length, so that the same call shows that requests came or
    /// that none did (`wait_for_requests(seen + 1, ..)` returning `seen`).
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let wait = async {
            loop {
                let notified = self.shared.recorded.notified();
                let mut notified = std::pin::pin!(notified);
                // Registered before looking, so no request slips between.
                notified.as_mut().enable();
                {
                    let state = self.shared.lock();
                    if state.recorded.len() >= n {
                        return state.recorded.clone();
                    }
                }
                notified.await;
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(recorded) => recorded,
            Err(_) => self.requests(),
        }
    }
}

impl Drop for FakeLeantime {
    fn drop(&mut self) {
        // axum stops accepting, lets in-flight requests finish and closes
        // idle keep-alive connections; the task then ends by itself.
        self.shutdown.cancel();
    }
}

impl FakeState {
    fn person_id(&mut self, firstname: &str, lastname: &str) -> i64 {
        if let Some((_, _, id)) = self.people.iter().find(|(f, l, _)| f == firstname && l == lastname) {
            return *id;
        }
        let id = self.people.iter().map(|p| p.2).max().unwrap_or(0).max(99) + 1;
        self.people.push((firstname.to_owned(), lastname.to_owned(), id));
        id
    }

    /// The rate limiter: `None` admits (and counts) the request, `Some` is
    /// the 429 answer.
    fn rate_limited(&mut self) -> Option<Response> {
        let now = Instant::now();
        while self.admitted.front().is_some_and(|&t| now.duration_since(t) >= Duration::from_secs(60)) {
            self.admitted.pop_front();
        }
        let Some(limit) = self.rate_limit.as_ref().filter(|l| self.admitted.len() >= l.per_minute as usize) else {
            self.admitted.push_back(now);
            return None;
        };
        let retry = limit.retry_after_secs.to_string();
        Some(
            Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                // Symfony's default label, like the 401.
                .header(header::CONTENT_TYPE, "text/html; charset=UTF-8")
                .header(header::RETRY_AFTER, &retry)
                .header("X-RateLimit-Retry-After", &retry)
                .header("X-RateLimit-Remaining", "0")
                .header("X-RateLimit-Limit", limit.per_minute.to_string())
                .body(Body::from(r#"{"error":"Too many requests per minute."}"#))
                .expect("a valid response"),
        )
    }

    /// Whose credential the headers carry, if any valid one.
    fn authenticate(&self, headers: &HeaderMap) -> Option<i64> {
        if self.credentials_revoked {
            return None;
        }
        if let Some(key) = headers.get("x-api-key") {
            return (key.as_bytes() == API_KEY.as_bytes()).then_some(API_USER);
        }
        let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = auth.strip_prefix("Bearer ")?.trim();
        (self.version >= ServerVersion::V3_9_6 && token == JANE_TOKEN).then_some(JANE)
    }
}

fn html_response(status: StatusCode, html: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=UTF-8")
        .body(Body::from(html))
        .expect("a valid response")
}

fn error_page(status: StatusCode) -> Response {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    html_response(
        status,
        format!("<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
    )
}

const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Leantime</title></head>\n<body class=\"login-page\">\n<form id=\"login\" action=\"/auth/login\" method=\"post\">\n<input type=\"text\" name=\"username\" id=\"username\" placeholder=\"Email\">\n<input type=\"password\" name=\"password\" id=\"password\">\n<input type=\"submit\" name=\"login\" value=\"Login\">\n</form>\n</body>\n</html>\n";

/// The method names in a request body, for the record.
fn method_names(body: &[u8]) -> Vec<String> {
    let name = |v: &Value| v.get("method").and_then(Value::as_str).map(str::to_owned);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.iter().filter_map(name).collect(),
        Ok(single) => name(&single).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

async fn handle(State(shared): State<Arc<Shared>>, method: HttpMethod, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let response = {
        let mut state = shared.lock();
        let response = answer(&mut state, &method, &uri, &headers, &body);
        let response_bytes = usize::try_from(axum::body::HttpBody::size_hint(response.body()).exact().unwrap_or(0))
            .unwrap_or(usize::MAX);
        state.recorded.push(Recorded {
            calls: method_names(&body),
            body_bytes: body.len(),
            response_bytes,
            status: response.status().as_u16(),
        });
        response
    };
    shared.recorded.notify_waiters();
    response
}

fn answer(state: &mut FakeState, method: &HttpMethod, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Some(status) = state.fail_status {
        return error_page(status);
    }
    if state.html {
        return html_response(StatusCode::OK, LOGIN_PAGE.to_owned());
    }
    if uri.path() != "/api/jsonrpc" {
        return error_page(StatusCode::NOT_FOUND);
    }
    if method != HttpMethod::POST {
        return error_page(StatusCode::METHOD_NOT_ALLOWED);
    }
    if let Some(too_many) = state.rate_limited() {
        return too_many;
    }
    let Some(user) = state.authenticate(headers) else {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            // Symfony labels the JSON body as HTML.
            .header(header::CONTENT_TYPE, "text/html; charset=UTF-8")
            .body(Body::from(r#"{"error":"Unauthorized"}"#))
            .expect("a valid response");
    };
    let answer = match serde_json::from_slice::<Value>(body) {
        Err(_) => Some(envelope_error(
            json!(0),
            RpcError::new(-32700, "Parse error", "Could not parse JSON. Error Syntax error"),
        )),
        Ok(Value::Array(items)) if items.is_empty() => {
            Some(envelope_error(Value::Null, RpcError::new(-32600, "Invalid Request", "Empty batch")))
        }
        Ok(Value::Array(items)) => {
            let answers: Vec<Value> = items.iter().filter_map(|item| state.request(user, item)).collect();
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        Ok(single) => state.request(user, &single),
    };
    let body = answer.map(|a| php_json(&a)).unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a valid response")
}

/// JSON as PHP's `json_encode` with no flags writes it: `/` as `\/` and
/// non-ASCII as `\uXXXX`. Both only occur inside strings, so this is safe on
/// serialized JSON.
fn php_json(value: &Value) -> String {
    let plain = value.to_string();
    let mut out = String::with_capacity(plain.len() + 16);
    for c in plain.chars() {
        match c {
            '/' => out.push_str("\\/"),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

struct RpcError {
    code: i64,
    message: &'static str,
    data: Value,
}

impl RpcError {
    fn new(code: i64, message: &'static str, data: impl Into<String>) -> RpcError {
        RpcError { code, message, data: Value::String(data.into()) }
    }

    fn method_not_found(data: String) -> RpcError {
        RpcError::new(-32601, "Method not found", data)
    }

    fn missing(param: &str) -> RpcError {
        RpcError::new(-32602, "Invalid params", format!("Required Parameter Missing: {param}"))
    }
}

fn envelope_error(id: Value, error: RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "error": { "code": error.code, "message": error.message, "data": error.data }, "id": id })
}

/// A number given as a JSON number or a numeric string.
fn int_param(params: &Value, name: &str) -> Option<i64> {
    match params.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// PHP truthiness, roughly.
fn flag_param(params: &Value, name: &str) -> bool {
    match params.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty() && s != "0",
        _ => false,
    }
}

impl FakeState {
    /// Executes one request object; the answer, or `None` when it has no id.
    fn request(&mut self, user: i64, request: &Value) -> Option<Value> {
        let Some(object) = request.as_object() else {
            return Some(envelope_error(
                Value::Null,
                RpcError::new(-32600, "Invalid Request", "The request must be a JSON object"),
            ));
        };
        let id = object.get("id").cloned().unwrap_or(Value::Null);
        let outcome = self.call(user, object);
        if id.is_null() {
            return None;
        }
        Some(match outcome {
            Ok(result) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
            Err(error) => envelope_error(id, error),
        })
    }

    fn call(&mut self, user: i64, request: &serde_json::Map<String, Value>) -> Result<Value, RpcError> {
        if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(RpcError::new(
                -32600,
                "Invalid Request",
                "You must include a \"jsonrpc\" parameter with a value of \"2.0\"",
            ));
        }
        let Some(method) = request.get("method").and_then(Value::as_str) else {
            return Err(RpcError::new(-32600, "Invalid Request", "You must include a \"method\" parameter"));
        };
        let Some(path) = method.strip_prefix("leantime.rpc.") else {
            return Err(RpcError::new(-32602, "Invalid params", "Method string doesn't start with \"leantime.rpc.\""));
        };
        let params = match request.get("params") {
            None | Some(Value::Null) => json!({}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => return Err(RpcError::new(-32602, "Invalid params", "Params must be an object")),
        };
        let parts: Vec<&str> = path.split('.').collect();
        let [module, service, name] = parts[..] else {
            return Err(RpcError::new(
                -32602,
                "Invalid params",
                "Method string must be leantime.rpc.{module}.{service}.{method}",
            ));
        };
        let v3_9 = self.version >= ServerVersion::V3_9_0;
        let inbox = self.version >= ServerVersion::V3_9_6;
        if let Some(&(_, code)) = self.refused.iter().find(|(refused, _)| refused == name) {
            let message = match code {
                -32700 => "Parse error",
                -32600 => "Invalid Request",
                -32601 => "Method not found",
                -32602 => "Invalid params",
                -32001 => "You are not allowed to perform this action.",
                _ => "Server error",
            };
            return Err(RpcError { code, message, data: Value::Null });
        }
        match (module, service, name) {
            ("Api", "Config", "getSystemInfo") if v3_9 => {
                Ok(json!({ "version": self.version.version_string(), "enabledPlugins": [] }))
            }
            ("Api", "Config", _) if v3_9 => Err(RpcError::method_not_found(format!("Method doesn't exist: {name}"))),
            ("Users", "Users", "getUser") => Ok(match int_param(&params, "id").unwrap_or(user) {
                JANE => jane_row(),
                API_USER => api_user_row(),
                _ => json!(false),
            }),
            ("Notifications", "Notifications", "getUnreadCount") if v3_9 => {
                Ok(json!(self.notifications.iter().filter(|n| n.user_id == user && !n.read).count()))
            }
            ("Notifications", "Notifications", "getInbox") if inbox => {
                let new_only = flag_param(&params, "showNewOnly");
                let start = usize::try_from(int_param(&params, "limitStart").unwrap_or(0).max(0)).unwrap_or(0);
                let size = usize::try_from(int_param(&params, "limitEnd").unwrap_or(50).clamp(1, 100)).unwrap_or(50);
                Ok(Value::Array(self.rows_of(user, new_only).skip(start).take(size).collect()))
            }
            ("Notifications", "Notifications", "markRead") if v3_9 => {
                let Some(target) = params.get("id") else { return Err(RpcError::missing("id")) };
                if target.as_str() == Some("all") {
                    for row in self.notifications.iter_mut().filter(|n| n.user_id == user) {
                        row.read = true;
                    }
                    return Ok(json!(true));
                }
                let id = int_param(&params, "id");
                let row = self.notifications.iter_mut().find(|n| Some(n.id) == id && n.user_id == user && !n.read);
                Ok(json!(row.map(|row| row.read = true).is_some()))
            }
            ("Notifications", "Notifications", "getAllNotifications") if !v3_9 => {
                let Some(of) = int_param(&params, "userId") else { return Err(RpcError::missing("userId")) };
                let new_only = flag_param(&params, "showNewOnly");
                let start = usize::try_from(int_param(&params, "limitStart").unwrap_or(0).max(0)).unwrap_or(0);
                let size = usize::try_from(int_param(&params, "limitEnd").unwrap_or(100).max(0)).unwrap_or(100);
                Ok(Value::Array(self.rows_of(of, new_only).skip(start).take(size).collect()))
            }
            ("Notifications", "Notifications", "getAllNotifications") => {
                Err(RpcError::method_not_found(format!("Method is not available via API: {name}")))
            }
            // Before 3.9 it marked by id only, whoever's the row was.
            ("Notifications", "Notifications", "markNotificationRead") if !v3_9 => {
                let Some(id) = int_param(&params, "id") else { return Err(RpcError::missing("id")) };
                if int_param(&params, "userId").is_none() {
                    return Err(RpcError::missing("userId"));
                }
                let row = self.notifications.iter_mut().find(|n| n.id == id && !n.read);
                Ok(json!(row.map(|row| row.read = true).is_some()))
            }
            // Any public method was callable before 3.9; 3.9.0 to 3.9.3 did
            // not expose it to the API.
            ("Tickets", "Tickets", "markTicketDone") if self.version != ServerVersion::V3_9_0 => {
                let Some(id) = int_param(&params, "id") else { return Err(RpcError::missing("id")) };
                let ticket = self.tickets.iter_mut().find(|t| t.id == id && t.is_open());
                Ok(json!(ticket.map(|t| t.status = 0).is_some()))
            }
            ("Tickets", "Tickets", "markTicketDone") => {
                Err(RpcError::method_not_found(format!("Method is not available via API: {name}")))
            }
            ("Tickets", "Tickets", "getAllOpenUserTickets") => {
                let Some(of) = int_param(&params, "userId") else { return Err(RpcError::missing("userId")) };
                let project = int_param(&params, "project");
                Ok(Value::Array(
                    self.tickets
                        .iter()
                        .filter(|t| t.editor_id == of && t.is_open() && project.is_none_or(|p| t.project_id == p))
                        .map(TicketRow::to_json)
                        .collect(),
                ))
            }
            ("Users", "Users", _) | ("Notifications", "Notifications", _) | ("Tickets", "Tickets", _) => {
                Err(RpcError::method_not_found(format!("Method doesn't exist: {name}")))
            }
            _ => Err(RpcError::method_not_found(format!("Service doesn't exist: {service}"))),
        }
    }

    /// `user`'s notifications, newest first.
    fn rows_of(&self, user: i64, new_only: bool) -> std::vec::IntoIter<Value> {
        let mut rows: Vec<&NotificationRow> =
            self.notifications.iter().filter(|n| n.user_id == user && !(new_only && n.read)).collect();
        rows.sort_by_key(|n| std::cmp::Reverse(n.id));
        rows.into_iter().map(NotificationRow::to_json).collect::<Vec<_>>().into_iter()
    }
}

/// `whoami.response.json`'s user.
fn jane_row() -> Value {
    json!({
        "id": JANE,
        "firstname": "Jane",
        "lastname": "Doe",
        "username": "jane@example.com",
        "role": "20",
        "status": "a",
        "source": null,
        "clientId": 0,
        "hours": null,
        "wage": null,
        "notifications": 1,
        "profileId": "",
        "lastlogin": "2025-03-14 08:55:10",
        "createdOn": "2024-11-02 10:00:00",
        "modified": "2025-03-14 08:55:10",
    })
}

/// `whoami-apikey.response.json`'s pseudo-user.
fn api_user_row() -> Value {
    json!({
        "id": API_USER,
        "firstname": "Desktop notifier key",
        "lastname": "",
        "username": "Yq3tR0aLk8ZpN2vW7xC4bM9sD1fH6jGe",
        "role": "20",
        "status": "a",
        "source": "api",
        "clientId": 0,
        "notifications": 1,
    })
}
