//! An existing axum app gets secure headers and a nonce-based Content Security Policy,
//! and nothing else: no sessions, no CSRF, no rate limits.
//!
//!     cargo run -p example-headers-only
//!     curl -i http://127.0.0.1:3000/

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use portcullis::csp::CspNonce;
use portcullis::serve::ServeConfig;
use portcullis::stack::SecureStack;

/// The app as it was before Portcullis: plain axum routes.
fn existing_app() -> Router {
    Router::new().route("/", get(page)).route(
        "/api/status",
        get(|| async { Json(serde_json::json!({ "ok": true })) }),
    )
}

/// An inline script runs only with this response's nonce; the policy blocks any
/// `<script>` that an escaping mistake lets into the page, since it lacks the nonce.
async fn page(nonce: CspNonce) -> Html<String> {
    Html(format!(
        "<!doctype html><title>headers-only</title>\
         <p id=out>Scripts without the nonce do not run.</p>\
         <script nonce=\"{nonce}\">document.getElementById('out').textContent += ' This one did.';</script>"
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _logs = portcullis::logging::init("info");
    // One call wraps the whole router: secure headers and a fresh CSP nonce on every
    // response (errors and 404s included), request ids, allowed hosts, body and time
    // limits, uniform error pages, caught panics.
    let app = SecureStack::default()
        // Development only: plain HTTP on loopback. Behind HTTPS, remove this line so
        // that plain HTTP is redirected (or use `SecureStack::from_settings`).
        .without_https_redirect()
        .apply(existing_app())?;

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://127.0.0.1:{port}");
    // Portcullis's server: timeouts for slow and idle clients, a connection cap, and the
    // peer address that the stack needs (`axum::serve` gives neither).
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    portcullis::serve::serve(listener, app, ServeConfig::default(), shutdown).await?;
    Ok(())
}
