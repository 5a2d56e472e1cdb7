//! Signing in to Rocket.Chat with a user name and password, two-factor
//! codes included, to obtain the token the watcher uses; and finding whose a
//! personal access token is.
//!
//! The settings window calls [`sign_in_and_store`] once without a code; if
//! the server wants one ([`SignIn::CodeRequired`], TOTP or an e-mailed code),
//! it asks the user and calls again with it. Only the resulting token is
//! kept (in the keyring, under [`super::TOKEN_SECRET`]); the password is
//! never stored. A wrong password is reported, never retried.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::rest::{RestError, classify, error_words, transport};
use crate::model::AccountId;
use crate::secrets::SecretStore;

/// The outcome of a sign-in attempt that the server did not refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// Signed in; the token is stored. `user_id` belongs in the account's
    /// `[account.chat]` settings.
    Done {
        /// The user's id.
        user_id: String,
    },
    /// The account has two-factor authentication: ask the user for the code
    /// and call again with it.
    CodeRequired {
        /// `totp` (authenticator app) or `email` (a code was just mailed).
        method: String,
    },
}

/// Why a sign-in failed. The messages are for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignInError {
    /// Wrong user name or password.
    #[error("Rocket.Chat refused the user name or password ({0})")]
    BadCredentials(String),
    /// The two-factor code was wrong or expired.
    #[error("the {method} code was not accepted; check it and try again")]
    CodeInvalid {
        /// The method the code was for.
        method: String,
    },
    /// Too many attempts.
    #[error("Rocket.Chat asks to wait {} s before the next attempt", .0.as_secs())]
    RateLimited(Duration),
    /// The server could not be reached or answered oddly.
    #[error("{0}")]
    Failed(String),
    /// The token could not be stored.
    #[error("signed in, but the token could not be stored: {0}")]
    Keyring(String),
}

/// Signs in as `user` (user name or e-mail) and stores the token for
/// `account` in `secrets`. Pass the two-factor `code` on the second call.
pub async fn sign_in_and_store(
    secrets: Arc<dyn SecretStore>,
    account: &AccountId,
    base: &str,
    user: &str,
    password: &SecretString,
    code: Option<&str>,
) -> Result<SignIn, SignInError> {
    // The server's words come back to the user: never with the password
    // (a server or proxy may quote the refused request).
    sign_in(secrets, account, base, user, password, code).await.map_err(|e| e.redacted(password))
}

async fn sign_in(
    secrets: Arc<dyn SecretStore>,
    account: &AccountId,
    base: &str,
    user: &str,
    password: &SecretString,
    code: Option<&str>,
) -> Result<SignIn, SignInError> {
    let client = super::http_client().map_err(|e| SignInError::Failed(e.to_string()))?;
    let mut body = json!({ "user": user, "password": password.expose_secret() });
    if let Some(code) = code {
        body["code"] = Value::String(code.trim().to_owned());
    }
    let (status, reset, answer) = post_login(&client, base, &body).await?;
    drop(body);
    if status == 401 {
        let answer = answer.unwrap_or_default();
        let method = answer.get("details").and_then(|d| d.get("method")).and_then(Value::as_str).unwrap_or("totp").to_owned();
        return match answer.get("error").and_then(Value::as_str) {
            Some("totp-required") => Ok(SignIn::CodeRequired { method }),
            Some("totp-invalid") => Err(SignInError::CodeInvalid { method }),
            _ => Err(SignInError::BadCredentials(non_empty(error_words(&answer)))),
        };
    }
    let data = match classify("login", status, reset.as_deref(), answer, jiff::Timestamp::now()) {
        Ok(body) => body.get("data").cloned().unwrap_or_default(),
        Err(RestError::RateLimited(wait)) => return Err(SignInError::RateLimited(wait)),
        Err(e) => return Err(SignInError::Failed(e.to_string())),
    };
    let user_id = data.get("userId").and_then(Value::as_str).map(str::to_owned);
    let token = data.get("authToken").and_then(Value::as_str).map(|t| SecretString::from(t.to_owned()));
    let (Some(user_id), Some(token)) = (user_id, token) else {
        return Err(SignInError::Failed("the login answer has no user id or token".to_owned()));
    };
    let account = account.clone();
    tokio::task::spawn_blocking(move || secrets.set(&account, super::TOKEN_SECRET, &token))
        .await
        .map_err(|e| SignInError::Keyring(e.to_string()))?
        .map_err(|e| SignInError::Keyring(e.to_string()))?;
    Ok(SignIn::Done { user_id })
}

/// Whose `token` (a personal access token or login token) is: a resume
/// login over REST, which checks the token and names its user.
pub(crate) async fn user_id_of(client: &reqwest::Client, base: &str, token: &SecretString) -> Result<String, RestError> {
    let (status, reset, answer) = post_login(client, base, &json!({ "resume": token.expose_secret() }))
        .await
        .map_err(|e| RestError::Transport(e.to_string()))?;
    let body = classify("login", status, reset.as_deref(), answer, jiff::Timestamp::now()).map_err(|e| e.redacted(&[token]))?;
    body.get("data")
        .and_then(|d| d.get("userId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| RestError::Transport("the login answer names no user".to_owned()))
}

async fn post_login(client: &reqwest::Client, base: &str, body: &Value) -> Result<(u16, Option<String>, Option<Value>), SignInError> {
    let base = base.trim_end_matches('/');
    let response = client
        .post(format!("{base}/api/v1/login"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| SignInError::Failed(transport(base, &e).to_string()))?;
    let status = response.status().as_u16();
    let reset = response.headers().get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = super::rest::read_body("login", response).await.map_err(|e| SignInError::Failed(format!("{base}: {e}")))?;
    Ok((status, reset, serde_json::from_slice(&bytes).ok()))
}

impl SignInError {
    fn redacted(self, password: &SecretString) -> SignInError {
        let cut = |words: String| crate::secrets::redact(&words, &[password]);
        match self {
            SignInError::BadCredentials(words) => SignInError::BadCredentials(cut(words)),
            SignInError::Failed(words) => SignInError::Failed(cut(words)),
            SignInError::Keyring(words) => SignInError::Keyring(cut(words)),
            other => other,
        }
    }
}

fn non_empty(words: String) -> String {
    if words.is_empty() { "unauthorized".to_owned() } else { words }
}
