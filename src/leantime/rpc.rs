//! Leantime's JSON-RPC wire format: building calls and batches, and turning
//! an HTTP response into per-call results or one typed failure. No I/O.
//!
//! Things the server does that this module absorbs (see the protocol notes
//! kept with the test fixtures):
//! - JSON-RPC errors come with HTTP 200; 401 and 429 come with a non-RPC
//!   JSON body (labelled `text/html`); a wrong URL or a login page gives an
//!   HTML page with 200. So the status is checked first, then the body is
//!   parsed leniently, and anything that is not an envelope is "not a
//!   Leantime API".
//! - A batch counts as one request for the server's rate limiter, and the
//!   answers come back in order; we still match them by id.
//! - Columns are typed loosely (ids as numbers or strings, `editorId` always
//!   a string, nulls anywhere), and datetimes carry no zone.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// Path of the endpoint below the server's base URL.
pub const ENDPOINT: &str = "/api/jsonrpc";

/// The calls we make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Server version (3.9.0+).
    GetSystemInfo,
    /// Who the credential belongs to.
    GetUser,
    /// Unread notification count (3.9.0+).
    GetUnreadCount,
    /// Newest notifications first (3.9.5+).
    GetInbox,
    /// Marks one notification (or `"all"`) read (3.9.0+).
    MarkRead,
    /// Open tickets assigned to a user.
    GetAllOpenUserTickets,
    /// Notifications before 3.9 (not callable from 3.9 on).
    GetAllNotifications,
    /// Marks one notification read before 3.9 (`id`, `userId`).
    MarkNotificationRead,
    /// Moves a ticket to its project's first Done status (exposed to the
    /// API before 3.9 and again in later 3.9 releases; needs editor rights).
    MarkTicketDone,
}

impl Method {
    /// The full RPC method name.
    pub fn name(self) -> &'static str {
        match self {
            Method::GetSystemInfo => "leantime.rpc.Api.Config.getSystemInfo",
            Method::GetUser => "leantime.rpc.Users.Users.getUser",
            Method::GetUnreadCount => "leantime.rpc.Notifications.Notifications.getUnreadCount",
            Method::GetInbox => "leantime.rpc.Notifications.Notifications.getInbox",
            Method::MarkRead => "leantime.rpc.Notifications.Notifications.markRead",
            Method::GetAllOpenUserTickets => "leantime.rpc.Tickets.Tickets.getAllOpenUserTickets",
            Method::GetAllNotifications => "leantime.rpc.Notifications.Notifications.getAllNotifications",
            Method::MarkNotificationRead => "leantime.rpc.Notifications.Notifications.markNotificationRead",
            Method::MarkTicketDone => "leantime.rpc.Tickets.Tickets.markTicketDone",
        }
    }
}

/// One call of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// What to call.
    pub method: Method,
    /// Named parameters (always an object: Leantime binds by name).
    pub params: Value,
}

impl Call {
    /// A call with named parameters.
    pub fn new(method: Method, params: Value) -> Call {
        Call { method, params }
    }
}

/// The request body for `calls`: a JSON array whose ids are the calls'
/// positions. Every call gets an id, since Leantime answers a call without
/// one with an empty body.
pub fn batch_body(calls: &[Call]) -> String {
    let batch: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(id, call)| json!({ "jsonrpc": "2.0", "method": call.method.name(), "params": call.params, "id": id }))
        .collect();
    Value::Array(batch).to_string()
}

/// A JSON-RPC error the server returned for one call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}{}", .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct CallError {
    /// What the code means for us.
    pub kind: CallErrorKind,
    /// The raw JSON-RPC code.
    pub code: i64,
    /// The server's message.
    pub message: String,
    /// The server's `data`, as text, when it gave any.
    pub detail: Option<String>,
}

/// JSON-RPC error codes, by what we do about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorKind {
    /// -32700 / -32600: the server could not read our request (our bug, or
    /// something between us rewrote it).
    BadRequest,
    /// -32601: no such method on this server version (or not exposed to the
    /// API): pick an older or newer path.
    MethodNotFound,
    /// -32602: parameters refused.
    InvalidParams,
    /// -32001: the credential lacks a permission.
    PermissionDenied,
    /// -32002: the thing asked for does not exist.
    NotFound,
    /// -32004: a plugin the method needs is not enabled.
    PluginMissing,
    /// -32000, -32603 and anything else: the server failed.
    ServerError,
}

impl std::fmt::Display for CallErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CallErrorKind::BadRequest => "Leantime could not read the request",
            CallErrorKind::MethodNotFound => "this Leantime version does not offer the method",
            CallErrorKind::InvalidParams => "Leantime refused the parameters",
            CallErrorKind::PermissionDenied => "permission missing",
            CallErrorKind::NotFound => "not found",
            CallErrorKind::PluginMissing => "a Leantime plugin is missing",
            CallErrorKind::ServerError => "Leantime had an internal error",
        })
    }
}

impl CallErrorKind {
    fn from_code(code: i64) -> CallErrorKind {
        match code {
            -32700 | -32600 => CallErrorKind::BadRequest,
            -32601 => CallErrorKind::MethodNotFound,
            -32602 => CallErrorKind::InvalidParams,
            -32001 => CallErrorKind::PermissionDenied,
            -32002 => CallErrorKind::NotFound,
            -32004 => CallErrorKind::PluginMissing,
            _ => CallErrorKind::ServerError,
        }
    }
}

/// Why a whole request failed (no per-call results at all).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// HTTP 401: the token or API key was refused (or revoked).
    #[error("Leantime refused the token or API key (HTTP 401{})", .0.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Unauthorized(Option<String>),
    /// HTTP 429 with `Retry-After`: the API rate limit.
    #[error("Leantime's rate limit was reached; it asks to wait {} s", .retry_after.as_secs())]
    RateLimited {
        /// How long the server asked us to wait.
        retry_after: Duration,
    },
    /// HTTP 429 without `Retry-After`: too many failed sign-ins from this
    /// address (3.9.7+), which also locks out the web login for a minute.
    #[error("Leantime blocked this address after too many failed sign-ins; try again in a minute")]
    TooManyFailedSignIns,
    /// HTTP 5xx, or another unexpected status.
    #[error("Leantime answered HTTP {status}")]
    Http {
        /// The status code.
        status: u16,
    },
    /// A 200 whose body is not JSON-RPC: an HTML page (a login page, a
    /// proxy, the web app's front page) or something else.
    #[error("this address is not a Leantime API ({0}); check the server URL")]
    NotJsonRpc(String),
    /// The answer was larger than the limit ([`crate::web::BODY_LIMIT`]);
    /// it was not read past it.
    #[error("Leantime's answer is larger than {} KiB, more than it can ever need to be", .limit / 1024)]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// One call's outcome.
pub type CallResult = Result<Value, CallError>;

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<RawError>,
    #[serde(default)]
    id: Value,
}

#[derive(Deserialize)]
struct RawError {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Value,
}

impl From<RawError> for CallError {
    fn from(e: RawError) -> CallError {
        let detail = match e.data {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        };
        CallError { kind: CallErrorKind::from_code(e.code), code: e.code, message: e.message, detail }
    }
}

/// Reads the response to a batch of `n` calls: one result per call, in the
/// calls' order, or the failure of the whole request. `retry_after` is the
/// raw `Retry-After` header, if any.
pub fn parse_batch(status: u16, retry_after: Option<&str>, body: &str, n: usize) -> Result<Vec<CallResult>, RequestError> {
    match status {
        200 => {}
        401 => return Err(RequestError::Unauthorized(error_text(body))),
        429 => {
            return Err(match retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
                Some(secs) => RequestError::RateLimited { retry_after: Duration::from_secs(secs) },
                None => RequestError::TooManyFailedSignIns,
            });
        }
        status => return Err(RequestError::Http { status }),
    }
    let value: Value = serde_json::from_str(body).map_err(|_| RequestError::NotJsonRpc(describe_non_json(body)))?;
    // A whole-request error (e.g. -32700) comes as one envelope, not an array.
    let batch_answer = value.is_array();
    let envelopes: Vec<Envelope> = match value {
        Value::Array(items) => items.into_iter().map(serde_json::from_value).collect::<Result<_, _>>(),
        single => serde_json::from_value::<Envelope>(single).map(|e| vec![e]),
    }
    .map_err(|_| RequestError::NotJsonRpc("the JSON is not a JSON-RPC response".to_owned()))?;
    if !batch_answer && n > 1 {
        if let Some(error) = envelopes.into_iter().next().and_then(|e| e.error) {
            let error = CallError::from(error);
            return Ok(vec![Err(error); n]);
        }
        return Err(RequestError::NotJsonRpc("one answer to a batch of calls".to_owned()));
    }

    let mut results: Vec<Option<CallResult>> = vec![None; n];
    let mut whole_request_error = None;
    for envelope in envelopes {
        let outcome = match (envelope.result, envelope.error) {
            (_, Some(error)) => Err(CallError::from(error)),
            (Some(result), None) => Ok(result),
            (None, None) => Ok(Value::Null),
        };
        match id_index(&envelope.id).filter(|&i| i < n) {
            Some(i) => results[i] = Some(outcome),
            // Parse errors carry id 0 or null; anything unmatched that is an
            // error applies to every call.
            None => whole_request_error = outcome.err().or(whole_request_error),
        }
    }
    Ok(results
        .into_iter()
        .map(|r| match (r, &whole_request_error) {
            (Some(outcome), _) => outcome,
            (None, Some(e)) => Err(e.clone()),
            (None, None) => Err(CallError {
                kind: CallErrorKind::ServerError,
                code: 0,
                message: "no answer for this call in the batch".to_owned(),
                detail: None,
            }),
        })
        .collect())
}

/// Batch ids are positions; the server echoes them as numbers (or, from a
/// GET request, strings).
fn id_index(id: &Value) -> Option<usize> {
    match id {
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The `error` text of a non-RPC JSON body such as `{"error":"Unauthorized"}`.
fn error_text(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    value.get("error")?.as_str().map(str::to_owned)
}

fn describe_non_json(body: &str) -> String {
    let trimmed = body.trim_start();
    if trimmed.is_empty() {
        "the answer was empty".to_owned()
    } else if trimmed.starts_with('<') {
        "the answer was an HTML page, perhaps a login page".to_owned()
    } else {
        "the answer was not JSON".to_owned()
    }
}

/// Deserializers for Leantime's loosely typed columns.
pub mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A number given as a JSON number or a numeric string; null, empty
    /// strings and anything else become `None`.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            Value::Bool(b) => Some(i64::from(b)),
            _ => None,
        })
    }

    /// Like [`opt_i64`], for required numbers: a missing or unreadable value
    /// is an error.
    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        opt_i64(d)?.ok_or_else(|| serde::de::Error::custom("expected a number or a numeric string"))
    }

    /// Text that may be null or a number.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }
}

/// A notification row (`getInbox`, `getAllNotifications`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Auto-increment id: new notifications have higher ids.
    #[serde(deserialize_with = "lenient::i64")]
    pub id: i64,
    /// 0 or null: unread.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub read: Option<i64>,
    /// `projectUpdate`, `mention`, …
    #[serde(default, rename = "type", deserialize_with = "lenient::text")]
    pub kind: String,
    /// `tickets`, `comments`, …
    #[serde(default, deserialize_with = "lenient::text")]
    pub module: String,
    /// The entity's id in that module.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub module_id: Option<i64>,
    /// `YYYY-MM-DD HH:MM:SS` in the acting user's zone (so: unreliable).
    #[serde(default, deserialize_with = "lenient::text")]
    pub datetime: String,
    /// Where it opens in the web app.
    #[serde(default, deserialize_with = "lenient::text")]
    pub url: String,
    /// The text; may contain HTML.
    #[serde(default, deserialize_with = "lenient::text")]
    pub message: String,
    /// The author's first name (null when deleted).
    #[serde(default, deserialize_with = "lenient::text")]
    pub firstname: String,
    /// The author's last name.
    #[serde(default, deserialize_with = "lenient::text")]
    pub lastname: String,
}

impl Notification {
    /// Whether it is still unread.
    pub fn is_unread(&self) -> bool {
        self.read.unwrap_or(0) == 0
    }
}

/// An open ticket assigned to the user (`getAllOpenUserTickets`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// Ticket id.
    #[serde(deserialize_with = "lenient::i64")]
    pub id: i64,
    /// Title.
    #[serde(default, deserialize_with = "lenient::text")]
    pub headline: String,
    /// Project it belongs to.
    #[serde(default, deserialize_with = "lenient::text")]
    pub project_name: String,
    /// Project id.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub project_id: Option<i64>,
    /// Assignee (a string column on the server).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub editor_id: Option<i64>,
    /// Due date, `YYYY-MM-DD HH:MM:SS` or null.
    #[serde(default, deserialize_with = "lenient::text")]
    pub date_to_finish: String,
    /// Status label as configured in the project.
    #[serde(default, deserialize_with = "lenient::text")]
    pub status_label: String,
}

/// `getUnreadCount` answers a number; some versions wrap scalars in a
/// one-element array.
pub fn unread_count(result: &Value) -> Option<u32> {
    let scalar = match result {
        Value::Array(items) if items.len() == 1 => &items[0],
        other => other,
    };
    match scalar {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `getSystemInfo`'s version, e.g. `(3, 9, 8)`.
pub fn version(result: &Value) -> Option<(u32, u32, u32)> {
    let text = result.get("version")?.as_str()?;
    let mut parts = text.trim_start_matches('v').split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next().flatten().unwrap_or(0), parts.next().flatten().unwrap_or(0)))
}
