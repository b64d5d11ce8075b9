//! A login limited per client IP and per username: guessing one account's password
//! from many addresses, or many accounts' from one address, runs into a 429.
//!
//!     cargo run -p example-rate-limited-login
//!     for i in 1 2 3 4; do curl -si -d 'username=alice&password=guess' \
//!       http://127.0.0.1:3000/login | head -n 1; done

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Form, Router};
use portcullis::auth::authenticate;
use portcullis::error::Error;
use portcullis::input::username_key;
use portcullis::password::{PasswordConfig, Passwords};
use portcullis::ratelimit::{MemoryRateLimitStore, Quota, RateLimitConfig, RateLimitGroup};
use portcullis::serve::ServeConfig;
use portcullis::stack::SecureStack;
use serde::Deserialize;

#[derive(Clone)]
struct AppState {
    passwords: Passwords,
    /// The one account's stored hash (a real app reads its users table).
    alice: Arc<String>,
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

// The limiter has counted this request before the handler runs: a refused one never
// reaches it, so it costs no password hash.
async fn login(
    State(state): State<AppState>,
    Form(form): Form<Credentials>,
) -> Result<String, Error> {
    let stored = (username_key(&form.username) == "alice").then(|| state.alice.to_string());
    // An unknown name costs a dummy verification, so timing does not reveal names.
    if authenticate(&state.passwords, stored, &form.password).await? {
        // Here a real app logs the session in (see form-login) or issues tokens (jwt-api).
        Ok("Welcome, alice.".to_owned())
    } else {
        Err(Error::unauthorized("Unknown username or wrong password."))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _logs = portcullis::logging::init("info");
    let passwords = Passwords::new(PasswordConfig::default())?;
    let alice = passwords
        .hash("correct horse battery staple".to_owned())
        .await?;

    let router = Router::new()
        .route("/login", post(login))
        .with_state(AppState {
            passwords,
            alice: Arc::new(alice),
        });

    // The `auth` group covers `POST /login` (and `/register`, `/api/token`); the
    // defaults are 10 a minute per IP and per username. Tightened here so that a demo
    // reaches them: each bucket refills over a minute.
    let limits = RateLimitConfig::default()
        .group(
            RateLimitGroup::auth()
                .per_ip(Quota::per_minute(5))
                .per_username(Quota::per_minute(3)),
        )
        // Counters live in memory; several instances share a Redis store instead
        // (`portcullis::redis::RedisConnection::rate_limits`).
        .layer(Arc::new(MemoryRateLimitStore::new()))?;
    let app = SecureStack::default()
        .without_https_redirect() // development only: plain HTTP on loopback
        .rate_limit(limits)
        .apply(router)?;

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://127.0.0.1:{port}");
    // The limiter counts the client's address, which `portcullis::serve` provides.
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    portcullis::serve::serve(listener, app, ServeConfig::default(), shutdown).await?;
    Ok(())
}
