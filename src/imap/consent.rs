//! The first OAuth consent for a mail account: authorization code with PKCE
//! (RFC 7636) through a loopback redirect (RFC 8252 §7.3), ending with the
//! refresh token in the keyring, where [`super::auth`] takes it from.
//!
//! [`Consent::start`] listens on `127.0.0.1` on a free port and builds the
//! provider's consent URL; the front end opens it in the browser;
//! [`Consent::finish`] waits for the browser to come back to the loopback
//! address, checks the `state`, exchanges the code (with the PKCE verifier)
//! and stores the refresh token. Nothing but the one redirect is served, and
//! the listener is gone when `finish` returns.

use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::auth::{REFRESH_TOKEN_SECRET, send, sent_to_provider, token_error, token_http};
use crate::model::AccountId;
use crate::secrets::SecretStore;

/// Where and how to ask for consent.
#[derive(Debug, Clone)]
pub struct ConsentRequest {
    /// The OAuth client id (account configuration).
    pub client_id: String,
    /// The client secret, for providers that want one with PKCE (Google's
    /// desktop clients); not secret in an installed app.
    pub client_secret: Option<SecretString>,
    /// The provider's authorization endpoint.
    pub auth_url: String,
    /// The provider's token endpoint.
    pub token_url: String,
    /// Scopes to ask for, e.g. `https://mail.google.com/`.
    pub scopes: Vec<String>,
}

impl ConsentRequest {
    /// The request for a configured mail account, or what its
    /// `[account.mail]` table lacks for a first OAuth sign-in.
    pub fn for_account(account: &crate::config::AccountConfig, client_secret: Option<SecretString>) -> Result<ConsentRequest, String> {
        let settings = account.mail.clone().unwrap_or_default();
        if settings.auth == super::MailAuth::Password {
            return Err(format!("`{}` signs in with a password; set `auth = \"xoauth2\"` (or \"oauthbearer\") under [account.mail] first", account.id));
        }
        let missing = |field: &str| format!("set `{field}` under [account.mail] of `{}` for the first sign-in", account.id);
        Ok(ConsentRequest {
            client_id: settings.oauth_client_id.ok_or_else(|| missing("oauth_client_id"))?,
            client_secret,
            auth_url: settings.oauth_auth_url.ok_or_else(|| missing("oauth_auth_url"))?,
            token_url: settings.oauth_token_url.ok_or_else(|| missing("oauth_token_url"))?,
            scopes: settings.oauth_scopes,
        })
    }
}

/// Why the consent did not end with a stored refresh token. The message is
/// for the user.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// A URL in the request is not a URL.
    #[error("{0}")]
    BadRequest(String),
    /// The loopback listener or the browser's request failed.
    #[error("the browser's answer could not be read: {0}")]
    Redirect(String),
    /// The user (or the provider) declined.
    #[error("the provider did not grant access: {0}")]
    Denied(String),
    /// The answer does not belong to this consent (CSRF check).
    #[error("the browser's answer does not belong to this sign-in; try again")]
    WrongState,
    /// The browser did not come back in time.
    #[error("no answer from the browser within {} minutes", .0.as_secs() / 60)]
    TimedOut(Duration),
    /// The code could not be exchanged for tokens.
    #[error("{0}")]
    Exchange(String),
    /// The provider gave no refresh token (offline access not granted).
    #[error("the provider gave no refresh token; the client must ask for offline access")]
    NoRefreshToken,
    /// The keyring refused to store it.
    #[error("{0}")]
    Keyring(String),
}

/// A consent in progress.
#[derive(Debug)]
pub struct Consent {
    request: ConsentRequest,
    listener: TcpListener,
    redirect: String,
    url: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
}

/// How long the user may take in the browser.
const CONSENT_TIMEOUT: Duration = Duration::from_secs(600);

impl Consent {
    /// Listens on a free loopback port and builds the consent URL.
    pub async fn start(request: ConsentRequest) -> Result<Consent, ConsentError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| ConsentError::Redirect(e.to_string()))?;
        let port = listener.local_addr().map_err(|e| ConsentError::Redirect(e.to_string()))?.port();
        let redirect = format!("http://127.0.0.1:{port}/");
        let client = BasicClient::new(ClientId::new(request.client_id.clone()))
            .set_auth_uri(AuthUrl::new(request.auth_url.clone()).map_err(|e| bad("auth_url", &request.auth_url, &e))?)
            .set_redirect_uri(RedirectUrl::new(redirect.clone()).map_err(|e| bad("redirect", &redirect, &e))?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(request.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Consent { request, listener, redirect, url: url.to_string(), state, verifier })
    }

    /// The URL to open in the browser.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits for the browser's redirect, exchanges the code and stores the
    /// refresh token as `account`'s `refresh-token`.
    pub async fn finish(self, account: &AccountId, secrets: Arc<dyn SecretStore>) -> Result<(), ConsentError> {
        let code = tokio::time::timeout(CONSENT_TIMEOUT, self.redirected())
            .await
            .map_err(|_| ConsentError::TimedOut(CONSENT_TIMEOUT))??;
        let token_url = TokenUrl::new(self.request.token_url.clone()).map_err(|e| bad("token_url", &self.request.token_url, &e))?;
        let redirect = RedirectUrl::new(self.redirect.clone()).map_err(|e| bad("redirect", &self.redirect, &e))?;
        let mut client = BasicClient::new(ClientId::new(self.request.client_id.clone()))
            .set_token_uri(token_url)
            .set_redirect_uri(redirect);
        if let Some(secret) = &self.request.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        let http = token_http().map_err(|e| ConsentError::Exchange(e.to_string()))?;
        let grant = [SecretString::from(code.clone()), SecretString::from(self.verifier.secret().to_owned())];
        let sent = sent_to_provider(&self.request.client_id, self.request.client_secret.as_ref(), &[&grant[0], &grant[1]]);
        let answer = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(self.verifier)
            .request_async(&|request| send(http.clone(), request))
            .await
            .map_err(|e| {
                let words = token_error(&self.request.token_url, e).to_string();
                ConsentError::Exchange(crate::secrets::redact(&words, &sent.iter().collect::<Vec<_>>()))
            })?;
        let refresh = answer.refresh_token().ok_or(ConsentError::NoRefreshToken)?;
        let refresh = SecretString::from(refresh.secret().to_owned());
        let account = account.clone();
        tokio::task::spawn_blocking(move || secrets.set(&account, REFRESH_TOKEN_SECRET, &refresh))
            .await
            .map_err(|e| ConsentError::Keyring(e.to_string()))?
            .map_err(|e| ConsentError::Keyring(e.to_string()))
    }

    /// Serves the one redirect: reads its request line, answers with a page
    /// that tells the user to go back to the app, and returns the code.
    async fn redirected(&self) -> Result<String, ConsentError> {
        loop {
            let (stream, _) = self.listener.accept().await.map_err(|e| ConsentError::Redirect(e.to_string()))?;
            let mut stream = BufReader::new(stream);
            let mut line = String::new();
            stream.read_line(&mut line).await.map_err(|e| ConsentError::Redirect(e.to_string()))?;
            // `GET /?code=…&state=… HTTP/1.1`; anything else (a favicon
            // request) is answered 404 and the wait goes on.
            let target = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let parsed = oauth2::url::Url::parse(&format!("http://127.0.0.1{target}"));
            let query: Vec<(String, String)> = match &parsed {
                Ok(url) if url.path() == "/" => url.query_pairs().into_owned().collect(),
                _ => {
                    let _ = stream.get_mut().write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                    continue;
                }
            };
            let value = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let outcome = match (value("error"), value("state"), value("code")) {
                (Some(error), _, _) => Err(ConsentError::Denied(match value("error_description") {
                    Some(description) => format!("{error}: {description}"),
                    None => error,
                })),
                (None, Some(state), _) if state != *self.state.secret() => Err(ConsentError::WrongState),
                (None, Some(_), Some(code)) => Ok(code),
                _ => Err(ConsentError::Redirect("the answer has no code".to_owned())),
            };
            let page = match &outcome {
                Ok(_) => "Vigie is signed in. You can close this tab.",
                Err(_) => "Vigie could not sign in; see the app for why. You can close this tab.",
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.get_mut().write_all(response.as_bytes()).await;
            let _ = stream.get_mut().shutdown().await;
            return outcome;
        }
    }
}

fn bad(what: &str, value: &str, error: &dyn std::fmt::Display) -> ConsentError {
    ConsentError::BadRequest(format!("{what} \"{value}\" is not a URL ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccountConfig;
    use crate::imap::{MailAuth, MailSettings};
    use crate::model::Source;

    fn account(mail: MailSettings) -> AccountConfig {
        AccountConfig { mail: Some(mail), ..AccountConfig::new(AccountId::new("gmail"), "Gmail", Source::Mail) }
    }

    #[test]
    fn a_configured_oauth_account_gives_the_consent_request() {
        let mail = MailSettings {
            auth: MailAuth::Xoauth2,
            oauth_client_id: Some("client".into()),
            oauth_auth_url: Some("https://accounts.example.com/auth".into()),
            oauth_token_url: Some("https://accounts.example.com/token".into()),
            oauth_scopes: vec!["https://mail.example.com/".into()],
            ..MailSettings::default()
        };
        let request = ConsentRequest::for_account(&account(mail), None).expect("complete settings");
        assert_eq!(request.client_id, "client");
        assert_eq!(request.auth_url, "https://accounts.example.com/auth");
        assert_eq!(request.scopes, ["https://mail.example.com/"]);
    }

    #[test]
    fn a_missing_setting_is_named_and_a_password_account_is_refused() {
        let mail = MailSettings { auth: MailAuth::Xoauth2, oauth_client_id: Some("client".into()), ..MailSettings::default() };
        let missing = ConsentRequest::for_account(&account(mail), None).map(|_| ()).expect_err("no auth url");
        assert!(missing.contains("oauth_auth_url") && missing.contains("gmail"), "{missing}");
        let password = ConsentRequest::for_account(&account(MailSettings::default()), None).map(|_| ()).expect_err("password");
        assert!(password.contains("password"), "{password}");
    }
}
