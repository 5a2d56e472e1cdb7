//! A fake OAuth 2.0 provider for the mail tests: a real HTTP server (axum,
//! `127.0.0.1:0`) that answers the refresh-token grant (RFC 6749 §6) the
//! way providers do: a JSON token response for a known refresh token
//! (rotating it), `400 {"error":"invalid_grant"}` for any other. It also
//! has an authorization endpoint (`/authorize`) whose "user" consents at
//! once (302 to the redirect URI with a code, or with `error=access_denied`
//! after [`FakeOAuth::deny`]), and takes that code back with its PKCE
//! verifier (RFC 7636, S256) at the token endpoint.
//!
//! It holds exactly one valid refresh token at a time, so a client that
//! keeps using a rotated-away token is refused like by a real provider.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the endpoint knows.
#[derive(Debug)]
struct Grants {
    /// The refresh token it accepts now.
    valid: String,
    /// The access token it hands out.
    access_token: String,
    /// Every refresh token presented, in order.
    presented: Vec<String>,
    /// The client id of every request.
    client_ids: Vec<String>,
    rotations: u32,
    /// The code handed out by `/authorize`, with its PKCE challenge and
    /// redirect URI.
    issued: Option<(String, String, String)>,
    deny: bool,
}

/// A running token endpoint; stops when dropped.
pub struct FakeOAuth {
    grants: Arc<Mutex<Grants>>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    _task: JoinHandle<()>,
}

impl FakeOAuth {
    /// Accepts `refresh_token` and answers it with `access_token`.
    pub async fn start(refresh_token: &str, access_token: &str) -> FakeOAuth {
        let grants = Arc::new(Mutex::new(Grants {
            valid: refresh_token.to_owned(),
            access_token: access_token.to_owned(),
            presented: Vec::new(),
            client_ids: Vec::new(),
            rotations: 0,
            issued: None,
            deny: false,
        }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind the fake OAuth server");
        let addr = listener.local_addr().expect("its address");
        let app = Router::new()
            .route("/token", axum::routing::post(token))
            .route("/authorize", axum::routing::get(authorize))
            .with_state(grants.clone());
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(signal).await;
        });
        FakeOAuth { grants, addr, shutdown, _task: task }
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The authorization endpoint's URL.
    pub fn auth_url(&self) -> String {
        format!("http://{}/authorize", self.addr)
    }

    /// The next consent is declined by the "user".
    pub fn deny(&self) {
        self.lock().deny = true;
    }

    /// The refresh tokens presented so far.
    pub fn presented(&self) -> Vec<String> {
        self.lock().presented.clone()
    }

    /// The client ids sent so far.
    pub fn client_ids(&self) -> Vec<String> {
        self.lock().client_ids.clone()
    }

    /// The refresh token it accepts now (changes with every rotation).
    pub fn valid_refresh_token(&self) -> String {
        self.lock().valid.clone()
    }
}

impl Drop for FakeOAuth {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn form_value(body: &str, name: &str) -> Option<String> {
    oauth2::url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The consent page: the "user" agrees (or declines) at once.
async fn authorize(State(grants): State<Arc<Mutex<Grants>>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let mut grants = grants.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(redirect), Some(state)) = (form_value(&query, "redirect_uri"), form_value(&query, "state")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri and state are required").into_response();
    };
    grants.client_ids.push(form_value(&query, "client_id").unwrap_or_default());
    let location = if grants.deny || form_value(&query, "code_challenge_method").as_deref() != Some("S256") {
        format!("{redirect}?error=access_denied&error_description=The+user+declined&state={state}")
    } else {
        let code = format!("code-{}", fastrand::u32(..));
        grants.issued = Some((code.clone(), form_value(&query, "code_challenge").unwrap_or_default(), redirect.clone()));
        format!("{redirect}?code={code}&state={state}")
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// PKCE S256: base64url(SHA-256(verifier)) without padding.
fn s256(verifier: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

async fn token(State(grants): State<Arc<Mutex<Grants>>>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut grants = grants.lock().unwrap_or_else(|e| e.into_inner());
    let json = |status: StatusCode, value: serde_json::Value| {
        (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
    };
    if form_value(&body, "grant_type").as_deref() == Some("authorization_code") {
        let issued = grants.issued.take();
        let good = issued.is_some_and(|(code, challenge, redirect)| {
            form_value(&body, "code") == Some(code)
                && form_value(&body, "redirect_uri") == Some(redirect)
                && form_value(&body, "code_verifier").is_some_and(|v| s256(&v) == challenge)
        });
        if !good {
            return json(StatusCode::BAD_REQUEST, serde_json::json!({"error": "invalid_grant", "error_description": "Bad code or verifier."}));
        }
        grants.rotations += 1;
        grants.valid = format!("rt-consented-{}", grants.rotations);
        return json(
            StatusCode::OK,
            serde_json::json!({"access_token": grants.access_token, "token_type": "Bearer", "expires_in": 3599, "refresh_token": grants.valid}),
        );
    }
    let presented = form_value(&body, "refresh_token").unwrap_or_default();
    grants.presented.push(presented.clone());
    grants.client_ids.push(form_value(&body, "client_id").unwrap_or_default());
    if form_value(&body, "grant_type").as_deref() != Some("refresh_token") || presented != grants.valid {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        );
    }
    grants.rotations += 1;
    grants.valid = format!("rt-rotated-{}", grants.rotations);
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": grants.access_token,
            "token_type": "Bearer",
            "expires_in": 3599,
            "refresh_token": grants.valid,
            "scope": "https://mail.google.com/",
        }),
    )
}
