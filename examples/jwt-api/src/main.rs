//! A JSON API with access and refresh tokens and revocation: no cookies, so no CSRF;
//! `Authorization: Bearer` on every call.
//!
//!     cargo run -p example-jwt-api
//!     curl -s -H 'content-type: application/json' \
//!       -d '{"username":"alice","password":"correct horse battery staple"}' \
//!       http://127.0.0.1:3000/api/token

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use portcullis::auth::{login, CredentialStore};
use portcullis::error::Error;
use portcullis::input::username_key;
use portcullis::jwt::{BearerUser, Jwt, JwtConfig, JwtError, JwtKeys, MemoryRevocationStore};
use portcullis::keys::{Keyring, SecretKey};
use portcullis::password::{PasswordConfig, Passwords};
use portcullis::serve::ServeConfig;
use portcullis::stack::SecureStack;
use serde::Deserialize;

/// Your users table: `CredentialStore` is all `auth::login` needs from it.
struct Users(Mutex<HashMap<String, (i64, String)>>);

impl CredentialStore for Users {
    type Error = std::convert::Infallible;

    async fn find(&self, username: &str) -> Result<Option<(i64, String)>, Self::Error> {
        Ok(self.0.lock().unwrap().get(&username_key(username)).cloned())
    }

    async fn replace_hash(&self, id: i64, hash: &str) -> Result<(), Self::Error> {
        for (user, stored) in self.0.lock().unwrap().values_mut() {
            if *user == id {
                *stored = hash.to_owned();
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
struct AppState {
    passwords: Passwords,
    users: Arc<Users>,
    jwt: Jwt,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// A new access token (15 minutes) and refresh token (30 days), sent with
/// `Cache-Control: no-store`.
async fn token(
    State(state): State<AppState>,
    Json(credentials): Json<Credentials>,
) -> Result<Response, Error> {
    match login(
        &state.passwords,
        &*state.users,
        &credentials.username,
        &credentials.password,
    )
    .await?
    {
        Some(id) => Ok(state.jwt.issue(id).await.into_response()),
        None => Err(Error::unauthorized("Unknown username or wrong password.")),
    }
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

/// A new pair for a refresh token. Each refresh token works once: presenting a used
/// one again revokes its whole family (it was stolen, and one holder is an attacker).
async fn refresh(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> Result<Response, JwtError> {
    Ok(state
        .jwt
        .refresh(&request.refresh_token)
        .await?
        .into_response())
}

/// Logging out: this token and every token of its login stop working.
async fn revoke(State(state): State<AppState>, user: BearerUser) -> Result<StatusCode, JwtError> {
    state.jwt.revoke(&user.claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `BearerUser` answers a missing, expired, revoked or forged token with 401 and
/// `WWW-Authenticate: Bearer`.
async fn me(user: BearerUser) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "user_id": user.id }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _logs = portcullis::logging::init("info");
    // A real app loads its key from `PORTCULLIS_SECRET_KEY`
    // (`portcullis::config::Settings::from_env()?.keyring()`); this one lasts the process.
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    // Revoked families live here; several instances share a Redis store instead
    // (`portcullis::redis::RedisConnection::revocations`).
    let revocations = Arc::new(MemoryRevocationStore::default());
    let jwt = Jwt::new(
        JwtConfig::default(),
        JwtKeys::from_keyring(&keyring),
        revocations,
    );
    let passwords = Passwords::new(PasswordConfig::default())?;
    // One account, alice (id 1), with an Argon2id hash of her password.
    let hash = passwords
        .hash("correct horse battery staple".to_owned())
        .await?;
    let users = Users(Mutex::new(HashMap::from([("alice".to_owned(), (1, hash))])));

    let router = Router::new()
        .route("/api/token", post(token))
        .route("/api/token/refresh", post(refresh))
        .route("/api/token/revoke", post(revoke))
        .route("/api/me", get(me))
        // `BearerUser` finds the token service here; without it, every call is a 500.
        .layer(Extension(jwt.clone()))
        .with_state(AppState {
            passwords,
            users: Arc::new(users),
            jwt,
        });
    // Errors under `/api` are JSON: `{"error":{"code","message"}}`.
    let app = SecureStack::default()
        .without_https_redirect() // development only: plain HTTP on loopback
        .apply(router)?;

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://127.0.0.1:{port}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    portcullis::serve::serve(listener, app, ServeConfig::default(), shutdown).await?;
    Ok(())
}
