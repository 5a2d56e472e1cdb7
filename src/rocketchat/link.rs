//! One DDP connection to Rocket.Chat's `/websocket`: handshake, resume
//! login, stream subscriptions and the heartbeat.
//!
//! Invariants: every server `ping` is answered at once, at any stage (some
//! servers ping before `connected`); any incoming frame proves the link
//! alive; after [`Timeouts::ping_after`] of silence we ping, and after
//! [`Timeouts::dead_after`] of silence the link is declared dead, since a
//! half-open TCP connection would otherwise look idle forever. Stream events
//! that arrive while we still wait for a method result or a `ready` are kept
//! in order and handed out first, so nothing is lost between subscribing and
//! the first read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::ddp::{self, ChangedFields, MeteorError, ServerFrame};

/// The heartbeat and connect timeouts (short ones for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the socket and each handshake step.
    pub connect: Duration,
    /// Silence after which we ping.
    pub ping_after: Duration,
    /// Silence after which the link is dead.
    pub dead_after: Duration,
}

impl Default for Timeouts {
    /// The official client's values: ping after 30 s of silence, dead after
    /// 60 s.
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(20), ping_after: Duration::from_secs(30), dead_after: Duration::from_secs(60) }
    }
}

/// Why the link failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    /// The socket closed or failed.
    #[error("the realtime connection was lost ({0})")]
    Closed(String),
    /// The server (or a proxy before it) answered the websocket request
    /// with a plain HTTP status: it offers no websocket at this address.
    #[error("no websocket: {0}")]
    NoWebSocket(String),
    /// Nothing came for too long, not even a pong.
    #[error("the realtime connection went silent for {} s (no answer to our ping): dead link", .0.as_secs())]
    Dead(Duration),
    /// The server broke the protocol or refused the handshake.
    #[error("the realtime connection failed: {0}")]
    Protocol(String),
    /// The login token was refused (DDP error 403).
    #[error("{0}")]
    LoggedOut(String),
    /// The DDP rate limiter refused a call.
    #[error("the server is rate-limiting the realtime connection")]
    RateLimited(Duration),
    /// The server sent a frame or message larger than [`MESSAGE_LIMIT`];
    /// the connection is dropped rather than the message held.
    #[error("the realtime connection sent a message larger than {} KiB, more than it can ever need to be", .limit / 1024)]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A stream subscription was refused (`nosub`).
    #[error("the server refused the realtime subscription to `{event}`: {reason}")]
    Refused {
        /// The event name.
        event: String,
        /// The server's words.
        reason: String,
    },
}

impl LinkError {
    /// The same error with `secret` cut out of the server's words.
    fn redacted(self, secret: &SecretString) -> LinkError {
        let cut = |words: String| crate::secrets::redact(&words, &[secret]);
        match self {
            LinkError::Closed(words) => LinkError::Closed(cut(words)),
            LinkError::NoWebSocket(words) => LinkError::NoWebSocket(cut(words)),
            LinkError::Protocol(words) => LinkError::Protocol(cut(words)),
            LinkError::LoggedOut(words) => LinkError::LoggedOut(cut(words)),
            LinkError::Refused { event, reason } => LinkError::Refused { event, reason: cut(reason) },
            other @ (LinkError::Dead(_) | LinkError::RateLimited(_) | LinkError::TooLarge { .. }) => other,
        }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The largest websocket message (and frame) accepted from the server. DDP
/// frames are one event or one method result each, a few kilobytes; the
/// library's default (64 MiB) would let a broken server make us hold that
/// much per message.
pub const MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

/// Stream events kept while a method result or `ready` is awaited. A live
/// server sends a few; past this many, the link is dropped rather than the
/// queue grown without end.
const MAX_PENDING: usize = 10_000;

fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(Some(MESSAGE_LIMIT)).max_frame_size(Some(MESSAGE_LIMIT))
}

/// A failed read in [`LinkError`] terms: an oversized message is named as such.
fn read_error(e: &tokio_tungstenite::tungstenite::Error) -> LinkError {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    match e {
        Error::Capacity(CapacityError::MessageTooLong { .. }) => LinkError::TooLarge { limit: MESSAGE_LIMIT },
        e => LinkError::Closed(e.to_string()),
    }
}

/// An open, handshaken DDP connection.
pub struct Link {
    socket: Socket,
    timeouts: Timeouts,
    last_rx: Instant,
    pinged: bool,
    next_id: u64,
    pending: VecDeque<(String, ChangedFields)>,
}

/// What one received WebSocket message meant.
pub enum Received {
    /// A stream event.
    Event(String, ChangedFields),
    /// Nothing for the caller (heartbeat, greeting, bookkeeping frames).
    Nothing,
}

impl Link {
    /// Opens `{base}/websocket` (ws/wss after the base's http/https) and
    /// completes the DDP handshake.
    pub async fn open(base: &str, timeouts: Timeouts) -> Result<Link, LinkError> {
        let base = base.trim_end_matches('/');
        let url = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}/websocket")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}/websocket")
        } else {
            format!("wss://{base}/websocket")
        };
        let connector = if url.starts_with("wss://") { Some(Connector::Rustls(Arc::new(tls_config()?))) } else { None };
        let opening = tokio_tungstenite::connect_async_tls_with_config(url.as_str(), Some(socket_config()), true, connector);
        let (socket, _) = tokio::time::timeout(timeouts.connect, opening)
            .await
            .map_err(|_| LinkError::Closed(format!("{url}: no answer within {} s", timeouts.connect.as_secs())))?
            .map_err(|e| match e {
                // A proxy that does not pass websockets on, or a server
                // with them turned off: it answered, but not with a socket.
                tokio_tungstenite::tungstenite::Error::Http(response) => LinkError::NoWebSocket(format!(
                    "{url} answered HTTP {} instead of opening a websocket",
                    response.status()
                )),
                e => LinkError::Closed(format!("{url}: {e}")),
            })?;
        let mut link = Link { socket, timeouts, last_rx: Instant::now(), pinged: false, next_id: 0, pending: VecDeque::new() };
        link.send(ddp::connect()).await?;
        link.expect(|frame| match frame {
            ServerFrame::Connected { .. } => Some(Ok(())),
            ServerFrame::Failed { version } => Some(Err(LinkError::Protocol(format!(
                "the server refused DDP version 1 (it offers {})",
                version.unwrap_or_else(|| "none".to_owned())
            )))),
            _ => None,
        })
        .await?
        .map(|()| link)
    }

    /// Logs in with a resume token or personal access token; returns the
    /// user id the server says it belongs to.
    pub async fn login(&mut self, token: &SecretString) -> Result<String, LinkError> {
        let id = self.id();
        self.send(ddp::login_resume(&id, token.expose_secret())).await?;
        let answer = self
            .expect(|frame| match frame {
                ServerFrame::Result { id: got, result, error } if got == id => Some(match error {
                    Some(e) => Err(method_error(&e)),
                    None => result
                        .as_ref()
                        .and_then(|r| r.get("id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| LinkError::Protocol("the login answer names no user".to_owned())),
                }),
                _ => None,
            })
            .await;
        // The server's reason reaches the user: a server may quote the
        // token it refuses (or the frame it could not take) in it.
        answer.flatten().map_err(|e| e.redacted(token))
    }

    /// Subscribes to `stream-notify-user` `<uid>/<event>` for each event and
    /// waits until each is ready or refused; returns the refusals
    /// ([`LinkError::Refused`]). A rate-limited subscription fails the
    /// whole call.
    pub async fn subscribe(&mut self, uid: &str, events: &[&str]) -> Result<Vec<LinkError>, LinkError> {
        let mut waiting: Vec<(String, String)> = Vec::with_capacity(events.len());
        for event in events {
            let id = format!("sub-{event}-{}", self.id());
            self.send(ddp::sub_notify_user(&id, uid, event)).await?;
            waiting.push((id, format!("{uid}/{event}")));
        }
        let mut refused = Vec::new();
        while !waiting.is_empty() {
            let outcome = self
                .expect(|frame| match frame {
                    ServerFrame::Ready { subs } => Some(Ok(subs)),
                    ServerFrame::Nosub { id, error } => Some(Err((id, error))),
                    _ => None,
                })
                .await?;
            match outcome {
                Ok(subs) => waiting.retain(|(id, _)| !subs.contains(id)),
                Err((id, error)) => {
                    let Some(at) = waiting.iter().position(|(w, _)| *w == id) else { continue };
                    let (_, event) = waiting.remove(at);
                    let error = error.unwrap_or_default();
                    if let Some(wait) = error.rate_limit() {
                        return Err(LinkError::RateLimited(wait));
                    }
                    refused.push(LinkError::Refused { event, reason: error.describe() });
                }
            }
        }
        Ok(refused)
    }

    /// A stream event that arrived while we waited for something else.
    pub fn take_pending(&mut self) -> Option<(String, ChangedFields)> {
        self.pending.pop_front()
    }

    /// The next raw message from the socket. Cancel-safe: use it in
    /// `select!` and hand what it gives to [`Link::handle`]. Take
    /// [`Link::take_pending`] events first.
    pub async fn recv(&mut self) -> Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>> {
        self.socket.next().await
    }

    /// When the heartbeat needs attention ([`Link::heartbeat`]).
    pub fn deadline(&self) -> Instant {
        if self.pinged { self.last_rx + self.timeouts.dead_after } else { self.last_rx + self.timeouts.ping_after }
    }

    /// At [`Link::deadline`]: pings, or declares the link dead.
    pub async fn heartbeat(&mut self) -> Result<(), LinkError> {
        if self.pinged {
            return Err(LinkError::Dead(self.timeouts.dead_after));
        }
        self.pinged = true;
        let id = self.id();
        self.send(ddp::ping(&id)).await
    }

    /// Interprets one message from [`Link::recv`]: answers pings, notes
    /// life, returns stream events.
    pub async fn handle(&mut self, message: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>) -> Result<Received, LinkError> {
        match self.frame(message).await? {
            Some(ServerFrame::Changed { collection, fields }) => Ok(Received::Event(collection, fields)),
            Some(ServerFrame::Error { reason }) => Err(LinkError::Protocol(reason)),
            _ => Ok(Received::Nothing),
        }
    }

    /// Closes the socket politely (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    async fn send(&mut self, text: String) -> Result<(), LinkError> {
        tokio::time::timeout(self.timeouts.connect, self.socket.send(WsMessage::text(text)))
            .await
            .map_err(|_| LinkError::Closed("the server stopped reading".to_owned()))?
            .map_err(|e| LinkError::Closed(e.to_string()))
    }

    /// Reads one message into a frame, handling the heartbeat.
    async fn frame(&mut self, message: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>) -> Result<Option<ServerFrame>, LinkError> {
        let text = match message {
            None => return Err(LinkError::Closed("closed by the server".to_owned())),
            Some(Err(e)) => return Err(read_error(&e)),
            Some(Ok(WsMessage::Close(frame))) => {
                let why = frame.map(|f| format!("code {}: {}", u16::from(f.code), f.reason)).unwrap_or_else(|| "no reason".to_owned());
                return Err(LinkError::Closed(format!("closed by the server, {why}")));
            }
            Some(Ok(WsMessage::Text(text))) => text,
            Some(Ok(_)) => {
                self.alive();
                return Ok(None);
            }
        };
        self.alive();
        let frame = ddp::parse(text.as_str()).map_err(|e| LinkError::Protocol(format!("unreadable frame ({e})")))?;
        if let Some(ServerFrame::Ping { id }) = &frame {
            self.send(ddp::pong(id.as_deref())).await?;
        }
        Ok(frame)
    }

    fn alive(&mut self) {
        self.last_rx = Instant::now();
        self.pinged = false;
    }

    /// Reads frames until `pick` accepts one, keeping stream events for
    /// later and minding the heartbeat.
    async fn expect<T>(&mut self, mut pick: impl FnMut(ServerFrame) -> Option<T>) -> Result<T, LinkError> {
        let limit = Instant::now() + self.timeouts.connect;
        loop {
            let deadline = self.deadline().min(limit);
            let message = tokio::select! {
                message = self.socket.next() => message,
                () = tokio::time::sleep_until(deadline) => {
                    if Instant::now() >= limit {
                        return Err(LinkError::Protocol(format!("no answer within {} s", self.timeouts.connect.as_secs())));
                    }
                    self.heartbeat().await?;
                    continue;
                }
            };
            match self.frame(Some(message.unwrap_or_else(|| Err(tokio_tungstenite::tungstenite::Error::ConnectionClosed)))).await? {
                Some(ServerFrame::Changed { collection, fields }) => {
                    if self.pending.len() >= MAX_PENDING {
                        return Err(LinkError::Protocol(format!("more than {MAX_PENDING} events came before the answer")));
                    }
                    self.pending.push_back((collection, fields));
                }
                Some(ServerFrame::Error { reason }) => return Err(LinkError::Protocol(reason)),
                Some(frame) => {
                    if let Some(done) = pick(frame) {
                        return Ok(done);
                    }
                }
                None => {}
            }
        }
    }
}

fn method_error(e: &MeteorError) -> LinkError {
    if e.is_logged_out() {
        LinkError::LoggedOut(format!("the login token was refused or has expired ({})", e.describe()))
    } else if let Some(wait) = e.rate_limit() {
        LinkError::RateLimited(wait)
    } else {
        LinkError::Protocol(format!("login failed: {}", e.describe()))
    }
}

/// rustls with the ring provider and the platform's verifier, like the
/// REST client.
fn tls_config() -> Result<rustls::ClientConfig, LinkError> {
    crate::web::tls_config().map_err(|e| LinkError::Protocol(format!("cannot set up TLS: {e}")))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A websocket server on loopback that answers the handshake with the
    /// header of a 50 MB text frame and as much of its payload as the
    /// client will take; returns the base URL and how many payload bytes
    /// went out.
    async fn huge_frame_server() -> (String, tokio::task::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let serving = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("handshake");
            let _connect = ws.next().await;
            let size: u64 = 50 * 1024 * 1024;
            let mut header = vec![0x81, 127];
            header.extend_from_slice(&size.to_be_bytes());
            let raw = ws.get_mut();
            if raw.write_all(&header).await.is_err() {
                return 0;
            }
            let block = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < size as usize && raw.write_all(&block).await.is_ok() {
                sent += block.len();
            }
            sent
        });
        (base, serving)
    }

    #[tokio::test]
    async fn endless_events_before_the_handshake_answer_drop_the_link() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("handshake");
            let _connect = ws.next().await;
            let event = r#"{"msg":"changed","collection":"stream-notify-user","fields":{"eventName":"u/notification","args":[]}}"#;
            while ws.send(WsMessage::text(event)).await.is_ok() {}
        });
        let timeouts = Timeouts { connect: Duration::from_secs(30), ..Timeouts::default() };
        let refused = Link::open(&base, timeouts).await.err().expect("refused");
        assert_eq!(refused, LinkError::Protocol(format!("more than {MAX_PENDING} events came before the answer")));
    }

    #[tokio::test]
    async fn a_message_over_the_limit_drops_the_link_with_the_limit_named() {
        let (base, serving) = huge_frame_server().await;
        let timeouts = Timeouts { connect: Duration::from_secs(5), ..Timeouts::default() };
        let refused = Link::open(&base, timeouts).await.err().expect("refused");
        assert_eq!(refused, LinkError::TooLarge { limit: MESSAGE_LIMIT });
        let sent = serving.await.expect("server");
        assert!(sent < 50 * 1024 * 1024, "refused on the frame's header, not after reading it all ({sent} bytes sent)");
    }
}
