//! Servers reached over HTTP(S) (Rocket.Chat, Leantime): the address rule
//! their watchers share, the TLS setup, and the first steps of their "Test
//! connection" probe (name, TCP, TLS).
//!
//! The rule is the one IMAP follows: a token travels only over TLS, or in
//! plain text to this machine (a local test server, an SSH tunnel), where
//! nobody can read it on the way. The watchers refuse anything else before
//! they send a secret, and the probe fails at the TLS step with the same
//! words, so "Test connection" never passes what the watcher then refuses.
//!
//! The probe's TLS handshake uses the configuration the watchers' clients
//! use (rustls, ring, the platform's verifier), on its own connection that
//! it closes before the next step.
//!
//! Every answer body is read through [`read_body`], which stops at a size
//! limit: a broken or hostile server must not make the notifier hold
//! gigabytes in memory.
//!
//! A polled REST client ([`http_client`], Leantime's) is built with
//! [`HttpTimeouts`]: a connection that silently carries nothing (a NAT or a
//! VPN forgot the flow) is given up after [`HttpTimeouts::silence`], not the
//! whole request timeout, and a pooled connection idle across a poll
//! interval is not reused.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use rustls::pki_types::ServerName;

use crate::probe::{self, ProbeLog, StepKind};

/// Whether `host` (as a URL spells it) names this machine.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a watcher must not use `base` (e.g. `http://chat.example.org`), in
/// words for the user; `None` when it may. `what` names the secret
/// ("token", "token or API key").
pub fn refusal(base: &str, what: &str) -> Option<String> {
    let url = match Url::parse(base.trim()) {
        Ok(url) => url,
        Err(_) => {
            return Some(format!("`{}` is not a full address: write it as https://{}", base.trim(), base.trim()));
        }
    };
    match url.scheme() {
        "https" => None,
        "http" if url.host_str().is_some_and(is_loopback) => None,
        "http" => Some(format!(
            "{base} is plain HTTP: the {what} would cross the network unencrypted; use https:// (plain HTTP is allowed only to this computer)"
        )),
        other => Some(format!("{base}: `{other}` is not a web address; write it as https://…")),
    }
}

/// The largest answer a chat or tasks server may send. A Rocket.Chat user
/// in 5,000 rooms gets about 10 MB from `rooms.get` (each room with its
/// newest message); nothing else we ask for comes near.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Why an answer's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the limit; it was not read past it.
    #[error("the answer is larger than {} KiB, more than it can ever need to be", .limit / 1024)]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The connection failed while reading.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads `response`'s body, up to `limit` bytes: a larger announced length
/// is refused before reading, and a body without one (chunked) is read
/// chunk by chunk until it ends or passes the limit.
pub async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How long a polled REST client waits, and how it keeps its connections.
/// The defaults are the `DEFAULT_*` constants below; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Opening the TCP connection and the TLS handshake.
    pub connect: Duration,
    /// The longest wait for the next bytes of an answer (the headers after
    /// sending, then each part of the body); restarted by every read.
    pub silence: Duration,
    /// The whole request, answer read to the end.
    pub total: Duration,
    /// A pooled connection unused this long is closed rather than reused.
    pub pool_idle: Duration,
    /// TCP keepalive: the first probe after this long without traffic.
    pub keepalive_idle: Duration,
    /// TCP keepalive: the time between unanswered probes.
    pub keepalive_interval: Duration,
    /// TCP keepalive: unanswered probes before the kernel drops the link.
    pub keepalive_retries: u32,
    /// `TCP_USER_TIMEOUT` (Linux and Android only): sent data left
    /// unacknowledged this long drops the connection.
    pub unacknowledged: Duration,
}

/// A server that takes longer than this to reach us at all is as good as
/// unreachable for a notifier, and a dead address should not hold a poll.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Leantime answers a poll's batch in well under a second; ten seconds of
/// silence means the connection is dead (a NAT or a VPN forgot it without
/// a word), and waiting for the total timeout would delay what is new by
/// 30 s. Generous enough for a slow server's first byte on a bad link.
pub const DEFAULT_SILENCE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request that keeps trickling (each read inside the silence timeout)
/// still has to end: half a minute is longer than any answer takes.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// Below the default poll interval (60 s): a connection that sat idle
/// between two polls is the one a NAT has most likely forgotten, so the
/// next poll opens a fresh one instead (one handshake a minute) rather
/// than find out after the silence timeout. Polls closer together (after a
/// change, every few seconds) still share one connection.
pub const DEFAULT_POOL_IDLE: Duration = Duration::from_secs(30);
/// Keepalive probes on an idle pooled connection: a link that died while
/// idle is dropped by the kernel (after 15 + 5 s with the
/// `TCP_USER_TIMEOUT` below, 15 + 2 × 5 s without) before the pool would
/// hand it out again, and the probes keep a NAT's entry warm.
pub const DEFAULT_KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
/// See [`DEFAULT_KEEPALIVE_IDLE`].
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// See [`DEFAULT_KEEPALIVE_IDLE`].
pub const DEFAULT_KEEPALIVE_RETRIES: u32 = 2;
/// A request whose bytes the peer does not even acknowledge for as long as
/// we allow for silence is on a dead path: the kernel fails it with an
/// error (on Linux) instead of retransmitting for minutes.
pub const DEFAULT_UNACKNOWLEDGED: Duration = DEFAULT_SILENCE_TIMEOUT;

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            silence: DEFAULT_SILENCE_TIMEOUT,
            total: DEFAULT_TOTAL_TIMEOUT,
            pool_idle: DEFAULT_POOL_IDLE,
            keepalive_idle: DEFAULT_KEEPALIVE_IDLE,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_retries: DEFAULT_KEEPALIVE_RETRIES,
            unacknowledged: DEFAULT_UNACKNOWLEDGED,
        }
    }
}

impl HttpTimeouts {
    /// Whether `e`, which ended a request `elapsed` after it was sent, is
    /// the silence timeout: the connection stopped carrying anything. A
    /// connect timeout is not (the server is unreachable, a fresh
    /// connection would fare no better), nor is the total timeout (the
    /// server answers, too slowly).
    pub fn is_silence(&self, e: &reqwest::Error, elapsed: Duration) -> bool {
        e.is_timeout() && !e.is_connect() && elapsed < self.total
    }
}

/// An HTTP client for a polled REST API: rustls with the ring provider
/// (it builds without cmake) and the platform's certificate verifier, with
/// `timeouts`.
pub fn http_client(timeouts: &HttpTimeouts) -> Result<reqwest::Client, reqwest::Error> {
    // reqwest needs a process-wide provider when built without its own; a
    // second install is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.silence)
        .timeout(timeouts.total)
        .pool_idle_timeout(timeouts.pool_idle)
        .tcp_keepalive(timeouts.keepalive_idle)
        .tcp_keepalive_interval(timeouts.keepalive_interval)
        .tcp_keepalive_retries(timeouts.keepalive_retries)
        .user_agent(concat!("Vigie/", env!("CARGO_PKG_VERSION")));
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let builder = builder.tcp_user_timeout(timeouts.unacknowledged);
    builder.build()
}

/// `timeout` in words: "10 s", or "0.5 s" below a second.
pub fn seconds(timeout: Duration) -> String {
    if timeout.subsec_millis() == 0 {
        format!("{} s", timeout.as_secs())
    } else {
        format!("{:.1} s", timeout.as_secs_f64())
    }
}

/// rustls with the ring provider and the platform's verifier: what the
/// REST clients (through reqwest) and the websocket trust.
pub fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth())
}

/// The probe's first steps for `server`: Resolve, Connect and Tls. Returns
/// the base URL the watcher uses (without a trailing `/`), or `None` after
/// recording the failed step. `what` names the secret, as for
/// [`refusal`].
pub async fn reach(server: &str, what: &str, log: &ProbeLog) -> Option<String> {
    let base = server.trim().trim_end_matches('/').to_owned();
    let url = match Url::parse(&base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
        _ => {
            let why = refusal(&base, what).unwrap_or_else(|| format!("`{base}` is not a web address"));
            log.failed(StepKind::Resolve, why);
            return None;
        }
    };
    // An IPv6 literal is bracketed in a URL, bare for name resolution.
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = probe::resolve(&host, port, log).await?;
    let tcp = probe::connect(&addrs, log).await?;
    if url.scheme() == "http" {
        drop(tcp);
        match refusal(&base, what) {
            Some(why) => {
                log.failed(StepKind::Tls, why);
                return None;
            }
            None => log.warn(StepKind::Tls, format!("no encryption: plain HTTP to this computer ({host}); fine for a local server, use https:// for anything else")),
        }
        return Some(base);
    }
    tls_step(&host, tcp, log).await?;
    Some(base)
}

/// The TLS handshake on `tcp`, verified as the watcher verifies it.
async fn tls_step(host: &str, tcp: tokio::net::TcpStream, log: &ProbeLog) -> Option<()> {
    let config = match tls_config() {
        Ok(config) => config,
        Err(e) => {
            log.failed(StepKind::Tls, format!("cannot set up TLS on this computer: {e}"));
            return None;
        }
    };
    let Ok(name) = ServerName::try_from(host.to_owned()) else {
        log.failed(StepKind::Tls, format!("`{host}` cannot be checked against a certificate"));
        return None;
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(probe::STEP_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => {
            let version = match stream.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
                _ => "TLS",
            };
            log.ok(StepKind::Tls, format!("{version}; the certificate of {host} is vouched for by an authority this computer trusts"));
            Some(())
        }
        Ok(Err(e)) => {
            log.failed(StepKind::Tls, tls_failure(host, &e));
            None
        }
        Err(_) => {
            log.failed(StepKind::Tls, format!("{host} did not complete the TLS handshake within {} s", probe::STEP_TIMEOUT.as_secs()));
            None
        }
    }
}

/// A failed handshake in words for the user.
fn tls_failure(host: &str, e: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let rustls_error = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(cert)) => {
            let why = match cert {
                C::UnknownIssuer => "no authority this computer trusts vouches for it (a self-signed certificate, or one from a private authority)".to_owned(),
                C::NotValidForName | C::NotValidForNameContext { .. } => format!("it was not made for the name {host}"),
                C::Expired | C::ExpiredContext { .. } => "it has expired".to_owned(),
                C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet (is this computer's clock right?)".to_owned(),
                C::Revoked => "its authority has revoked it".to_owned(),
                other => format!("{other:?}"),
            };
            format!("the certificate of {host} is not trusted: {why}")
        }
        Some(other) => format!("the TLS handshake with {host} failed: {other}"),
        None => format!("the TLS handshake with {host} failed: {e} (is this port serving HTTPS?)"),
    }
}

/// A loopback HTTP server answering every request with a huge JSON body,
/// for the tests of the size limits.
#[cfg(test)]
pub(crate) mod huge {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A plain client, with the process's TLS provider installed as the
    /// watchers install it.
    pub(crate) fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    /// 50 MB: far above every limit.
    pub(crate) const SIZE: usize = 50 * 1024 * 1024;

    /// Serves, until the test ends, `SIZE` bytes of a JSON string with
    /// `status`, announcing the length or sending it in chunks. Returns the
    /// base URL and a counter of the bytes the server managed to write.
    pub(crate) async fn serve(status: u16, announced: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = written.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let framing = if announced { format!("Content-Length: {SIZE}") } else { "Transfer-Encoding: chunked".to_owned() };
                    let head = format!("HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\n{framing}\r\n\r\n");
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let block = vec![b' '; 64 * 1024];
                    let mut sent = 0;
                    while sent < SIZE {
                        let piece = if announced {
                            block.clone()
                        } else {
                            let mut piece = format!("{:x}\r\n", block.len()).into_bytes();
                            piece.extend_from_slice(&block);
                            piece.extend_from_slice(b"\r\n");
                            piece
                        };
                        if socket.write_all(&piece).await.is_err() {
                            return;
                        }
                        sent += block.len();
                        counter.fetch_add(block.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                    if !announced {
                        let _ = socket.write_all(b"0\r\n\r\n").await;
                    }
                });
            }
        });
        (base, written)
    }
}

/// A loopback HTTP/1.1 server that counts its connections and either
/// answers every request with `{}` (keeping the connection open) or never
/// answers at all, for the tests of the timeouts.
#[cfg(test)]
pub(crate) mod counting {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves until the test ends; returns the base URL and the number of
    /// connections accepted so far.
    pub(crate) async fn serve(answer: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                        // Requests carry no body here: one per blank line.
                        while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            request.drain(..end + 4);
                            if answer && socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (base, accepted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use super::*;

    #[test]
    fn by_default_silence_is_given_up_on_in_10_s_a_request_in_30_s_and_idle_connections_before_a_poll() {
        let t = HttpTimeouts::default();
        assert_eq!(t.silence, Duration::from_secs(10));
        assert_eq!(t.total, Duration::from_secs(30));
        assert!(t.silence < t.total, "silence must be noticed before the request as a whole times out");
        assert!(t.pool_idle < Duration::from_secs(60), "a connection idle across the default poll interval is not reused");
        assert!(t.keepalive_idle + t.keepalive_interval * t.keepalive_retries < t.pool_idle + t.silence);
        assert_eq!(t.unacknowledged, t.silence);
    }

    #[tokio::test]
    async fn the_client_is_built_with_the_silence_and_total_timeouts() {
        // reqwest has no getters; its Debug shows the two timeouts.
        let client = http_client(&HttpTimeouts::default()).expect("client");
        let shown = format!("{client:?}");
        assert!(shown.contains("read_timeout: 10s"), "{shown}");
        assert!(shown.contains("TotalTimeout: 30s"), "{shown}");
    }

    #[tokio::test]
    async fn a_silent_server_is_given_up_on_after_the_silence_timeout_not_the_total_one() {
        let (base, _) = counting::serve(false).await;
        let timeouts = HttpTimeouts { silence: Duration::from_millis(300), total: Duration::from_secs(20), ..HttpTimeouts::default() };
        let client = http_client(&timeouts).expect("client");
        let sent = Instant::now();
        let failed = client.get(&base).send().await.expect_err("no answer");
        let elapsed = sent.elapsed();
        assert!(failed.is_timeout(), "{failed:?}");
        assert!(elapsed < Duration::from_secs(5), "gave up after {elapsed:?}");
        assert!(timeouts.is_silence(&failed, elapsed));
        assert!(!timeouts.is_silence(&failed, timeouts.total), "a timeout at the total limit is not silence");
    }

    #[tokio::test]
    async fn a_pooled_connection_idle_longer_than_the_pool_limit_is_not_reused() {
        let (base, accepted) = counting::serve(true).await;
        let timeouts = HttpTimeouts { pool_idle: Duration::from_millis(300), ..HttpTimeouts::default() };
        let client = http_client(&timeouts).expect("client");
        for _ in 0..2 {
            let answer = client.get(&base).send().await.expect("answered");
            read_body(answer, 16).await.expect("read");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "requests close together share one connection");
        // The idle time is the scenario, not a synchronisation.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let answer = client.get(&base).send().await.expect("answered");
        read_body(answer, 16).await.expect("read");
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "a connection idle past the limit is replaced");
    }

    #[test]
    fn timeouts_read_in_seconds() {
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(1_500)), "1.5 s");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_whether_announced_or_chunked() {
        let client = huge::client();
        for announced in [true, false] {
            let (base, written) = huge::serve(200, announced).await;
            let response = client.get(&base).send().await.expect("answered");
            let refused = read_body(response, BODY_LIMIT).await;
            assert!(matches!(refused, Err(BodyError::TooLarge { limit: BODY_LIMIT })), "announced {announced}: {refused:?}");
            assert!(refused.expect_err("refused").to_string().contains("16384 KiB"));
            // Not read to the end: the server could not write it all.
            assert!(written.load(std::sync::atomic::Ordering::Relaxed) < huge::SIZE, "announced {announced}");
        }
    }

    #[test]
    fn tokens_travel_over_tls_or_to_this_computer_only() {
        assert_eq!(refusal("https://chat.example.org", "token"), None);
        assert_eq!(refusal("http://127.0.0.1:3000", "token"), None);
        assert_eq!(refusal("http://localhost:3000/", "token"), None);
        assert_eq!(refusal("http://[::1]:3000", "token"), None);
        let plain = refusal("http://chat.example.org", "token").expect("refused");
        assert!(plain.contains("unencrypted") && plain.contains("https://"), "{plain}");
        let bare = refusal("chat.example.org", "token").expect("refused");
        assert!(bare.contains("https://chat.example.org"), "{bare}");
    }
}
