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

use std::net::IpAddr;
use std::sync::Arc;

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

#[cfg(test)]
mod tests {
    use super::*;

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
