//! A fake OAuth 2.0 token endpoint for the mail tests: a real HTTP server
//! (axum, `127.0.0.1:0`) that answers the refresh-token grant (RFC 6749
//! §6) the way providers do: a JSON token response for a known refresh
//! token (rotating it), `400 {"error":"invalid_grant"}` for any other.
//!
//! It holds exactly one valid refresh token at a time, so a client that
//! keeps using a rotated-away token is refused like by a real provider.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
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
        }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind the fake OAuth server");
        let addr = listener.local_addr().expect("its address");
        let app = Router::new().route("/token", axum::routing::post(token)).with_state(grants.clone());
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
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.replace("%2E", ".").replace("%2D", "-").replace('+', " "))
    })
}

async fn token(State(grants): State<Arc<Mutex<Grants>>>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut grants = grants.lock().unwrap_or_else(|e| e.into_inner());
    let presented = form_value(&body, "refresh_token").unwrap_or_default();
    grants.presented.push(presented.clone());
    grants.client_ids.push(form_value(&body, "client_id").unwrap_or_default());
    let json = |status: StatusCode, value: serde_json::Value| {
        (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
    };
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
