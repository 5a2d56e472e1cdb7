//! Opening an IMAP session: TCP, then TLS (implicit or STARTTLS) or, only to
//! a loopback address the user allowed, plaintext; the greeting; LOGIN.
//!
//! Every step is bounded in time, and every failure becomes the
//! [`WatchError`] the supervisor acts on: a refused login or an untrusted
//! certificate waits for the user ([`WatchError::AuthFailed`], with the
//! server's words or the certificate's fingerprint), anything else is
//! transient. The password or token is only ever handed to `LOGIN` or
//! `AUTHENTICATE`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_imap::{Client, Session};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::auth::{Bearer, Credential};
use super::limit::Capped;
use super::tls::{Fingerprint, Verifier};
use super::TlsMode;
use crate::watcher::WatchError;

/// Anything an IMAP session can run over: TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

/// A logged-in session over TCP or TLS.
pub(crate) type ImapSession = Session<Box<dyn Io>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Generous: Dovecot (and others) delay logins from an address that just
/// failed one, by several seconds.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(45);

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub pinned: Option<Fingerprint>,
    pub username: String,
}

impl Target {
    pub(crate) fn place(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Whether `host` names this machine (where plaintext cannot be sniffed).
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Connects, secures, reads the greeting and signs in.
pub(crate) async fn open(target: &Target, credential: &Credential) -> Result<ImapSession, WatchError> {
    let client = connect(target).await?;
    sign_in(target, client, credential).await
}

/// Signs in on a connection that greeted us: LOGIN or AUTHENTICATE. A
/// refusal carries the server's words.
pub(crate) async fn sign_in(
    target: &Target,
    client: Client<Box<dyn Io>>,
    credential: &Credential,
) -> Result<ImapSession, WatchError> {
    // What we send, as is and (SASL) in base64: a server that quotes the
    // refused command in its answer must not make us show it.
    let mut sent = Vec::with_capacity(2);
    let (signed_in, sasl_error) = match credential {
        Credential::Password(password) => {
            sent.push(password.clone());
            let login = client.login(&target.username, password.expose_secret());
            (tokio::time::timeout(LOGIN_TIMEOUT, login).await, None)
        }
        Credential::Bearer { mechanism, token } => {
            let (name, bearer, error) = Bearer::new(*mechanism, &target.username, &target.host, target.port, token);
            sent.extend([token.clone(), bearer.encoded()]);
            (tokio::time::timeout(LOGIN_TIMEOUT, client.authenticate(name, bearer)).await, Some(error))
        }
    };
    let sent: Vec<&SecretString> = sent.iter().collect();
    outcome(target, signed_in, sasl_error).map_err(|e| e.redacted(&sent))
}

type Attempt = Result<Result<ImapSession, (async_imap::error::Error, Client<Box<dyn Io>>)>, tokio::time::error::Elapsed>;

fn outcome(target: &Target, signed_in: Attempt, sasl_error: Option<Arc<Mutex<Option<String>>>>) -> Result<ImapSession, WatchError> {
    match signed_in {
        Err(_) => Err(WatchError::Transient(format!("{}: the server did not answer the login", target.place()))),
        Ok(Ok(session)) => Ok(session),
        Ok(Err((async_imap::error::Error::No(words), _))) => {
            let mut words = server_words(&words);
            let detail = sasl_error.and_then(|e| e.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
            if let Some(detail) = detail.filter(|d| !d.is_empty()) {
                words.push_str(&format!(" (the server said: {detail})"));
            }
            Err(WatchError::AuthFailed(words))
        }
        Ok(Err((error, _))) => Err(transient(target, "login", &error)),
    }
}

/// The TCP connection, secured as the account says, greeting read.
pub(crate) async fn connect(target: &Target) -> Result<Client<Box<dyn Io>>, WatchError> {
    let place = target.place();
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((target.host.as_str(), target.port)))
        .await
        .map_err(|_| WatchError::Transient(format!("{place}: timed out connecting")))?
        .map_err(|e| WatchError::Transient(format!("{place}: cannot connect ({e})")))?;
    establish(target, tcp).await.map(|e| e.client).map_err(Stage::into_error)
}

/// A connection ready for signing in, and what it took.
pub(crate) struct Established {
    pub client: Client<Box<dyn Io>>,
    /// The server's greeting, in its words (`Dovecot ready.`), with the
    /// capabilities it announced there, if any.
    pub greeting: Greeting,
    /// How TLS was settled (protocol, and what vouched for the
    /// certificate); `None` without TLS.
    pub tls: Option<String>,
}

/// The greeting's words and the capabilities it carried.
#[derive(Debug, Clone, Default)]
pub(crate) struct Greeting {
    pub words: String,
    pub capabilities: Vec<String>,
}

/// Where setting up a connection failed.
#[derive(Debug)]
pub(crate) enum Stage {
    /// The TLS handshake (or STARTTLS); `untrusted` is the fingerprint of a
    /// certificate that nothing vouched for.
    Tls { error: WatchError, untrusted: Option<Fingerprint> },
    /// The server's greeting.
    Greeting(WatchError),
}

impl Stage {
    pub(crate) fn into_error(self) -> WatchError {
        match self {
            Stage::Tls { error, .. } | Stage::Greeting(error) => error,
        }
    }
}

/// Secures `tcp` as the account says and reads the greeting (before
/// STARTTLS, which has no second greeting).
pub(crate) async fn establish(target: &Target, tcp: TcpStream) -> Result<Established, Stage> {
    let place = target.place();
    let _ = tcp.set_nodelay(true);
    match target.tls {
        TlsMode::Implicit => {
            let (tls, detail) = secure(target, tcp).await?;
            let mut client = Client::new(tls);
            let greeting = greeting(target, &mut client).await.map_err(Stage::Greeting)?;
            Ok(Established { client, greeting, tls: Some(detail) })
        }
        TlsMode::Starttls => {
            // Capped like any plain connection, and unwrapped again for the
            // handshake: scanning ciphertext for literals would misfire.
            let mut client = Client::new(Capped::new(tcp));
            let greeting = greeting(target, &mut client).await.map_err(Stage::Greeting)?;
            let starttls = tokio::time::timeout(CONNECT_TIMEOUT, client.run_command_and_check_ok("STARTTLS", None)).await;
            let refused = |error| Stage::Tls { error, untrusted: None };
            starttls
                .map_err(|_| refused(WatchError::Transient(format!("{place}: no answer to STARTTLS"))))?
                .map_err(|e| refused(WatchError::Transient(format!("{place}: the server refused STARTTLS ({e})"))))?;
            // No greeting after STARTTLS; nothing the server sent before the
            // handshake may be trusted, so the old client is dropped whole.
            let (tls, detail) = secure(target, client.into_inner().into_inner()).await?;
            Ok(Established { client: Client::new(tls), greeting, tls: Some(format!("STARTTLS, {detail}")) })
        }
        TlsMode::None => {
            let mut client = Client::new(Box::new(Capped::new(tcp)) as Box<dyn Io>);
            let greeting = greeting(target, &mut client).await.map_err(Stage::Greeting)?;
            Ok(Established { client, greeting, tls: None })
        }
    }
}

async fn greeting<S: Io>(target: &Target, client: &mut Client<S>) -> Result<Greeting, WatchError> {
    use async_imap::imap_proto::{Capability, Response, ResponseCode, Status};
    let response = match tokio::time::timeout(CONNECT_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(response))) => response,
        Ok(Ok(None)) => return Err(WatchError::Transient(format!("{}: the server closed the connection at once", target.place()))),
        Ok(Err(e)) => return Err(WatchError::Transient(format!("{}: {e}", target.place()))),
        Err(_) => return Err(WatchError::Transient(format!("{}: the server sent no greeting", target.place()))),
    };
    let Response::Data { status, outcome } = response.parsed() else {
        return Err(WatchError::Transient(format!("{}: this does not look like an IMAP server", target.place())));
    };
    let words = outcome.information.as_deref().unwrap_or_default().trim().to_owned();
    if *status == Status::Bye {
        return Err(WatchError::Transient(format!("{}: the server turned us away ({words})", target.place())));
    }
    let capabilities = match &outcome.code {
        Some(ResponseCode::Capabilities(list)) => list
            .iter()
            .map(|c| match c {
                Capability::Imap4rev1 => "IMAP4rev1".to_owned(),
                Capability::Auth(mechanism) => format!("AUTH={mechanism}"),
                Capability::Atom(atom) => atom.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Greeting { words, capabilities })
}

async fn secure<S>(target: &Target, stream: S) -> Result<(Box<dyn Io>, String), Stage>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug + 'static,
{
    let place = target.place();
    let failed = |error| Stage::Tls { error, untrusted: None };
    let verifier =
        Arc::new(Verifier::new(target.pinned).map_err(|e| failed(WatchError::Transient(format!("cannot set up TLS: {e}"))))?);
    let config =
        verifier.clone().client_config().map_err(|e| failed(WatchError::Transient(format!("cannot set up TLS: {e}"))))?;
    let name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|_| failed(WatchError::Unsupported(format!("`{}` is not a valid server name", target.host))))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream)).await {
        Err(_) => Err(failed(WatchError::Transient(format!("{place}: the TLS handshake timed out")))),
        Ok(Ok(tls)) => {
            let connection = tls.get_ref().1;
            let version = connection.protocol_version().map_or_else(|| "TLS".to_owned(), |v| format!("{v:?}").replace('_', "."));
            let suite = connection.negotiated_cipher_suite().map(|s| format!(" ({:?})", s.suite())).unwrap_or_default();
            let fingerprint = verifier.presented().map(|f| f.to_string()).unwrap_or_default();
            let vouched = match target.pinned {
                Some(_) => format!("the certificate is the pinned one (SHA-256 {fingerprint})"),
                None => format!("the certificate is trusted by this system's roots (SHA-256 {fingerprint})"),
            };
            Ok((Box::new(Capped::new(tls)), format!("{version}{suite}; {vouched}")))
        }
        Ok(Err(e)) => {
            let certificate_refused = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_) | rustls::Error::General(_)));
            match verifier.presented() {
                // Waiting for the user, not retrying: the certificate will
                // not change by itself, and the user must decide to trust it.
                Some(fingerprint) if certificate_refused => Err(Stage::Tls {
                    error: WatchError::AuthFailed(format!(
                        "{place}: the server's certificate is not trusted ({e}). Its SHA-256 fingerprint is {fingerprint}; \
                         if you trust this server, set pinned_fingerprint = \"{fingerprint}\" under [account.mail]"
                    )),
                    untrusted: Some(fingerprint),
                }),
                _ => Err(failed(WatchError::Transient(format!("{place}: TLS failed ({e})")))),
            }
        }
    }
}

/// Any other IMAP failure: worth another try later.
pub(crate) fn transient(target: &Target, doing: &str, error: &async_imap::error::Error) -> WatchError {
    let what = match error {
        async_imap::error::Error::No(raw) | async_imap::error::Error::Bad(raw) => server_words(raw),
        other => other.to_string(),
    };
    WatchError::Transient(format!("{}: {doing} failed ({what})", target.place()))
}

/// The server's own words from async-imap's NO/BAD text, which is a debug
/// dump of the response (`code: Some(AuthenticationFailed), info:
/// Some("Authentication failed.")`): `[AUTHENTICATIONFAILED] Authentication
/// failed.`, without Dovecot's timing suffix.
pub(crate) fn server_words(raw: &str) -> String {
    let info = ["info: Some(\"", "information: Some(\""].iter().find_map(|prefix| {
        let start = raw.find(prefix)? + prefix.len();
        let end = raw[start..].find("\")")?;
        Some(raw[start..start + end].replace("\\\"", "\"").replace("\\\\", "\\"))
    });
    let code = raw.find("code: Some(").and_then(|at| {
        let name: String = raw[at + "code: Some(".len()..].chars().take_while(char::is_ascii_alphanumeric).collect();
        (!name.is_empty() && name != "Other").then(|| name.to_uppercase())
    });
    let Some(mut info) = info else { return raw.trim().to_owned() };
    // Dovecot appends "(0.001 + 0.000 secs)." to every completion.
    if let Some(open) = info.rfind(" (")
        && info[open..].contains(" secs)")
    {
        info.truncate(open);
    }
    match code {
        Some(code) => format!("[{code}] {}", info.trim()),
        None => info.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_words_are_taken_out_of_async_imaps_debug_text() {
        let cases = [
            (r#"code: Some(AuthenticationFailed), info: Some("Authentication failed.")"#, "[AUTHENTICATIONFAILED] Authentication failed."),
            (
                r#"outcome: Outcome { code: None, information: Some("Mailbox doesn't exist: Projcts (0.001 + 0.001 secs).") }"#,
                "Mailbox doesn't exist: Projcts",
            ),
            (r#"code: None, info: Some("say \"hi\"")"#, r#"say "hi""#),
            ("something else", "something else"),
        ];
        for (raw, words) in cases {
            assert_eq!(server_words(raw), words, "{raw}");
        }
    }

    #[tokio::test]
    async fn a_flood_before_starttls_fails_the_connection_before_it_is_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let size = 50 * 1024 * 1024;
        let serving = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            socket.write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n").await.expect("greeting");
            let mut command = [0u8; 256];
            let _ = socket.read(&mut command).await;
            let _ = socket.write_all(format!("* 1 FETCH (BODY[] {{{size}}}\r\n").as_bytes()).await;
            let block = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < size && socket.write_all(&block).await.is_ok() {
                sent += block.len();
            }
            sent
        });
        let target = Target {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::Starttls,
            pinned: None,
            username: "me".into(),
        };
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let Err(Stage::Tls { error, .. }) = establish(&target, tcp).await else {
            panic!("STARTTLS should fail on the literal's size")
        };
        assert!(error.to_string().contains("more than the 1024 KiB"), "{error}");
        assert!(serving.await.expect("server") < size, "refused before the data was read");
    }

    #[test]
    fn loopback_is_recognised_by_name_and_address() {
        for host in ["localhost", "127.0.0.1", "127.4.5.6", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["imap.example.com", "10.0.0.1", "localhost.example.com", "::2"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
