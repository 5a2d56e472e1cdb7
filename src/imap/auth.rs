//! Signing in to IMAP: a password (LOGIN), or an OAuth 2.0 bearer token
//! over SASL XOAUTH2 (Google, Microsoft) or OAUTHBEARER (RFC 7628).
//!
//! A bearer token is either stored as is (secret `access-token`, for
//! providers that hand out long-lived tokens) or, when the account names a
//! token endpoint, refreshed from the stored `refresh-token` with the
//! `oauth2` crate; a refresh token the provider rotates is stored back.
//! Access tokens live only in memory, until shortly before they expire.
//!
//! A refused token is answered the SASL way: the server sends an error
//! challenge (base64 JSON) instead of a tagged NO, the client must reply
//! (an empty line, or `\x01` for OAUTHBEARER) and only then gets the NO. We
//! reply, so a bad token ends in "sign-in failed" with the server's words,
//! never in a hang.
//!
//! The first consent (authorization code + PKCE through a loopback
//! redirect) is not here: the refresh token must already be in the keyring.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{ClientId, ClientSecret, RefreshToken, RequestTokenError, StandardErrorResponse, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::model::AccountId;
use crate::secrets::SecretStore;
use crate::watcher::WatchError;

/// The keyring entry of the password (or app password).
pub const PASSWORD_SECRET: &str = "password";
/// The keyring entry of a stored OAuth access token.
pub const ACCESS_TOKEN_SECRET: &str = "access-token";
/// The keyring entry of the OAuth refresh token.
pub const REFRESH_TOKEN_SECRET: &str = "refresh-token";
/// The keyring entry of the OAuth client secret, for providers that want one
/// (Google's "installed app" clients do; it is not really secret there).
pub const CLIENT_SECRET_SECRET: &str = "client-secret";

/// Refresh an access token this long before the provider says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(120);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// How a mail account signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailAuth {
    /// LOGIN with the password from the keyring.
    #[default]
    Password,
    /// SASL XOAUTH2 with an OAuth 2.0 access token.
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628) with an OAuth 2.0 access token.
    Oauthbearer,
}

/// What one connection presents to the server.
pub(crate) enum Credential {
    Password(SecretString),
    Bearer { mechanism: MailAuth, token: SecretString },
}

/// Where tokens come from, for an OAuth account.
#[derive(Debug, Clone)]
pub(crate) struct OAuth {
    pub client_id: String,
    pub token_url: String,
}

/// Finds (and refreshes, and caches) the account's credential.
pub(crate) struct Credentials {
    account: AccountId,
    auth: MailAuth,
    oauth: Option<OAuth>,
    secrets: Arc<dyn SecretStore>,
    cached: Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("auth", &self.auth).field("oauth", &self.oauth).finish_non_exhaustive()
    }
}

impl Credentials {
    pub(crate) fn new(account: AccountId, auth: MailAuth, oauth: Option<OAuth>, secrets: Arc<dyn SecretStore>) -> Self {
        Credentials { account, auth, oauth, secrets, cached: Mutex::new(None) }
    }

    async fn secret(&self, name: &'static str) -> Result<Option<SecretString>, WatchError> {
        let (secrets, account) = (self.secrets.clone(), self.account.clone());
        tokio::task::spawn_blocking(move || secrets.get(&account, name))
            .await
            .map_err(|e| WatchError::Transient(format!("the keyring lookup failed: {e}")))?
            .map_err(|e| WatchError::Transient(e.to_string()))
    }

    async fn required(&self, name: &'static str, what: &str) -> Result<SecretString, WatchError> {
        self.secret(name).await?.ok_or_else(|| {
            WatchError::AuthFailed(format!(
                "no {what} is stored for this account; add it in the settings or with `vigie --set-secret {} {name}`",
                self.account
            ))
        })
    }

    /// The credential for the next connection.
    pub(crate) async fn get(&self) -> Result<Credential, WatchError> {
        match self.auth {
            MailAuth::Password => Ok(Credential::Password(self.required(PASSWORD_SECRET, "password").await?)),
            mechanism => Ok(Credential::Bearer { mechanism, token: self.access_token().await? }),
        }
    }

    /// Forgets the cached access token (the server refused it), so the next
    /// attempt refreshes.
    pub(crate) fn refused(&self) {
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn access_token(&self) -> Result<SecretString, WatchError> {
        let Some(oauth) = &self.oauth else {
            return self.required(ACCESS_TOKEN_SECRET, "OAuth access token").await;
        };
        if let Some((token, until)) = &*self.cached.lock().unwrap_or_else(PoisonError::into_inner)
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let refresh = self.required(REFRESH_TOKEN_SECRET, "OAuth refresh token").await?;
        let client_secret = self.secret(CLIENT_SECRET_SECRET).await?;
        let (token, lifetime, rotated) = refresh_token(oauth, &refresh, client_secret.as_ref()).await?;
        if let Some(rotated) = rotated {
            let (secrets, account) = (self.secrets.clone(), self.account.clone());
            let stored = tokio::task::spawn_blocking(move || secrets.set(&account, REFRESH_TOKEN_SECRET, &rotated)).await;
            if !matches!(stored, Ok(Ok(()))) {
                tracing::warn!(account = %self.account, "could not store the rotated refresh token");
            }
        }
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some((token.clone(), until));
        Ok(token)
    }
}

/// Why an HTTP exchange with the OAuth provider failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpFailure {
    #[error(transparent)]
    Request(#[from] reqwest::Error),
    #[error(transparent)]
    Response(#[from] oauth2::http::Error),
    /// The answer was larger than [`TOKEN_BODY_LIMIT`]; it was not read
    /// past it.
    #[error("the answer is larger than {} KiB, more than a token ever needs", .limit / 1024)]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// The largest answer a token endpoint may send: a token response is a
/// few kilobytes (a JWT access token with its claims).
pub(crate) const TOKEN_BODY_LIMIT: usize = 1024 * 1024;

/// The HTTP client for token requests: rustls (ring), no redirects (a token
/// endpoint must not bounce a refresh token or code elsewhere).
pub(crate) fn token_http() -> Result<reqwest::Client, WatchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(TOKEN_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| WatchError::Transient(format!("cannot set up HTTPS: {e}")))
}

/// Sends one `oauth2` request over `http` (the crate's own reqwest
/// integration is for an older reqwest).
pub(crate) async fn send(http: reqwest::Client, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpFailure> {
    let (parts, body) = request.into_parts();
    let response = http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await?;
    let mut answer = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = crate::web::read_body(response, TOKEN_BODY_LIMIT).await.map_err(|e| match e {
        crate::web::BodyError::TooLarge { limit } => HttpFailure::TooLarge { limit },
        crate::web::BodyError::Transport(e) => HttpFailure::Request(e),
    })?;
    Ok(answer.body(body)?)
}

/// Exchanges the refresh token for an access token: the token, how long it
/// lives, and the new refresh token if the provider rotated it.
async fn refresh_token(
    oauth: &OAuth,
    refresh: &SecretString,
    client_secret: Option<&SecretString>,
) -> Result<(SecretString, Duration, Option<SecretString>), WatchError> {
    let http = token_http()?;
    let send = |request| send(http.clone(), request);
    let token_url = TokenUrl::new(oauth.token_url.clone())
        .map_err(|e| WatchError::Unsupported(format!("oauth_token_url \"{}\" is not a URL ({e})", oauth.token_url)))?;
    let mut client = BasicClient::new(ClientId::new(oauth.client_id.clone())).set_token_uri(token_url);
    if let Some(secret) = client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
    }
    let answer = client
        .exchange_refresh_token(&RefreshToken::new(refresh.expose_secret().to_owned()))
        .request_async(&send)
        .await
        .map_err(|e| {
            let sent = sent_to_provider(&oauth.client_id, client_secret, &[refresh]);
            token_error(&oauth.token_url, e).redacted(&sent.iter().collect::<Vec<_>>())
        })?;
    let token = SecretString::from(answer.access_token().secret().to_owned());
    // Providers that omit the lifetime: assume the usual hour.
    let lifetime = answer.expires_in().unwrap_or(Duration::from_secs(3_600));
    let rotated = answer
        .refresh_token()
        .filter(|r| r.secret() != refresh.expose_secret())
        .map(|r| SecretString::from(r.secret().to_owned()));
    Ok((token, lifetime, rotated))
}

/// What a token request carries that the provider's refusal may quote (a
/// provider or proxy that echoes the request): the `grant` secrets (refresh
/// token; code and PKCE verifier) as is and form-encoded, and the client
/// secret, also inside the Basic credential the `oauth2` crate sends.
pub(crate) fn sent_to_provider(client_id: &str, client_secret: Option<&SecretString>, grant: &[&SecretString]) -> Vec<SecretString> {
    use base64::Engine;
    let encoded = |text: &str| oauth2::url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let mut sent = Vec::new();
    for secret in grant.iter().copied().chain(client_secret) {
        sent.push(secret.clone());
        sent.push(SecretString::from(encoded(secret.expose_secret())));
    }
    if let Some(secret) = client_secret {
        let basic = format!("{}:{}", encoded(client_id), encoded(secret.expose_secret()));
        sent.push(SecretString::from(base64::engine::general_purpose::STANDARD.encode(basic)));
    }
    sent
}

pub(crate) fn token_error(
    url: &str,
    error: RequestTokenError<HttpFailure, StandardErrorResponse<BasicErrorResponseType>>,
) -> WatchError {
    match error {
        RequestTokenError::ServerResponse(refusal) => {
            let mut words = refusal.error().to_string();
            if let Some(description) = refusal.error_description() {
                words.push_str(": ");
                words.push_str(description);
            }
            match refusal.error() {
                // The grant is gone (revoked, expired, password changed):
                // only a new consent helps.
                BasicErrorResponseType::InvalidGrant
                | BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => {
                    WatchError::AuthFailed(format!("the OAuth provider refused the refresh token ({words}); sign in again"))
                }
                _ => WatchError::Transient(format!("{url}: the OAuth provider refused to refresh the token ({words})")),
            }
        }
        RequestTokenError::Request(e) => WatchError::Transient(format!("{url}: cannot reach the OAuth provider ({e})")),
        RequestTokenError::Parse(e, _) => WatchError::Transient(format!("{url}: unexpected answer from the OAuth provider ({e})")),
        RequestTokenError::Other(e) => WatchError::Transient(format!("{url}: {e}")),
    }
}

/// The SASL exchange of a bearer mechanism for async-imap: the initial
/// response on the server's first (empty) challenge, then the "abort" reply
/// to an error challenge, whose text is kept for the error message.
pub(crate) struct Bearer {
    initial: Option<SecretString>,
    abort: &'static [u8],
    error: Arc<Mutex<Option<String>>>,
}

impl Bearer {
    /// The exchange for `mechanism` (XOAUTH2 or OAUTHBEARER) as `user` at
    /// `host:port`, and the cell that receives the server's error challenge.
    pub(crate) fn new(
        mechanism: MailAuth,
        user: &str,
        host: &str,
        port: u16,
        token: &SecretString,
    ) -> (&'static str, Bearer, Arc<Mutex<Option<String>>>) {
        let token = token.expose_secret();
        let (name, initial, abort): (_, String, &'static [u8]) = match mechanism {
            MailAuth::Oauthbearer => {
                ("OAUTHBEARER", format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"), b"\x01")
            }
            MailAuth::Xoauth2 | MailAuth::Password => ("XOAUTH2", format!("user={user}\x01auth=Bearer {token}\x01\x01"), b""),
        };
        let error = Arc::new(Mutex::new(None));
        (name, Bearer { initial: Some(SecretString::from(initial)), abort, error: error.clone() }, error)
    }

    /// The initial response as it goes on the wire (base64).
    pub(crate) fn encoded(&self) -> SecretString {
        use base64::Engine;
        let initial = self.initial.as_ref().map(|i| i.expose_secret().as_bytes()).unwrap_or_default();
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(initial))
    }
}

impl async_imap::Authenticator for Bearer {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        match self.initial.take() {
            Some(initial) => initial.expose_secret().as_bytes().to_vec(),
            None => {
                let text = String::from_utf8_lossy(challenge).trim().to_owned();
                *self.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
                self.abort.to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::Authenticator;

    #[tokio::test]
    async fn a_token_answer_of_50_mb_is_refused_with_the_limit() {
        for announced in [true, false] {
            let (base, _) = crate::web::huge::serve(200, announced).await;
            let request = oauth2::http::Request::builder().method("POST").uri(format!("{base}/token")).body(Vec::new()).expect("request");
            let refused = send(crate::web::huge::client(), request).await.expect_err("too large");
            assert!(matches!(refused, HttpFailure::TooLarge { limit: TOKEN_BODY_LIMIT }), "{refused:?}");
        }
    }

    #[test]
    fn xoauth2_sends_the_token_once_then_aborts_with_an_empty_reply() {
        let token = SecretString::from("ya29.t");
        let (name, mut bearer, error) = Bearer::new(MailAuth::Xoauth2, "me@example.com", "h", 993, &token);
        assert_eq!(name, "XOAUTH2");
        assert_eq!(bearer.process(b""), b"user=me@example.com\x01auth=Bearer ya29.t\x01\x01");
        assert_eq!(bearer.process(br#"{"status":"401"}"#), b"");
        assert_eq!(error.lock().expect("lock").as_deref(), Some(r#"{"status":"401"}"#));
    }

    #[test]
    fn oauthbearer_names_host_and_port_and_aborts_with_ctrl_a() {
        let token = SecretString::from("t");
        let (name, mut bearer, _) = Bearer::new(MailAuth::Oauthbearer, "me@example.com", "imap.example.com", 993, &token);
        assert_eq!(name, "OAUTHBEARER");
        assert_eq!(bearer.process(b""), b"n,a=me@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer t\x01\x01");
        assert_eq!(bearer.process(b"{}"), b"\x01");
    }
}
