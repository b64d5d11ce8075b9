//! Portcullis: the web-security layer for axum and tower, secure by default.
//!
//! What Flask developers assemble from a dozen extensions (Talisman, Flask-WTF,
//! Flask-Login, Flask-JWT-Extended, Flask-Limiter, Flask-CORS, werkzeug.security), in
//! one stack. Each concern is a module with a `…Config` whose `Default` is the secure
//! choice and a layer or extractor; [`stack::SecureStack`] wires them in the right order.
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | settings from the environment; the production audit |
//! | [`keys`] | the keyring: current and fallback secrets, HKDF subkeys, signing |
//! | [`headers`] | secure response headers on every response |
//! | [`csp`] | Content Security Policy, per-request nonces, the report collector |
//! | [`hosts`] | allowed hosts: a 400 for any `Host` the app does not serve |
//! | [`https`] | HTTPS redirect, built-in TLS, development certificates |
//! | [`client_ip`] | client address and scheme from trusted proxies only |
//! | [`templates`] | templates that always escape, with `csp_nonce()` |
//! | [`error`] | one error type; uniform JSON or HTML error bodies |
//! | [`logging`] | structured logs with credentials redacted |
//! | [`password`] | password hashing, legacy werkzeug/bcrypt verification, the password policy |
//! | [`session`] | server-side sessions: signed random ids, expiry, per-user revocation |
//! | [`auth`] | login extractors, timing-safe authentication, safe `next` redirects |
//! | [`csrf`] | fetch-metadata and `Origin` checks, session-bound masked tokens |
//! | [`jwt`] | API tokens: access and refresh, rotation by `kid`, revocation, reuse detection |
//! | [`ratelimit`] | GCRA limits per client IP and per username, fail-closed backends |
//! | [`redis`] | sessions, rate limits and revocations shared by every instance through Redis (feature `redis`) |
//! | [`cors`] | validated CORS: explicit origins, deny by default, no `*` with credentials |
//! | [`input`] | trimming, normalisation and length rules for typed input |
//! | [`upload`] | upload names, type checks, metadata stripping, storage, download headers |
//! | [`stack`] | the one-call secure preset |
//! | [`serve`] | serving an app: timeouts for slow and idle clients, a connection cap, TLS, graceful shutdown |
//!
//! ```
//! use axum::{routing::get, Router};
//! use portcullis::csp::CspNonce;
//! use portcullis::stack::SecureStack;
//!
//! async fn page(nonce: CspNonce) -> axum::response::Html<String> {
//!     axum::response::Html(format!("<script nonce=\"{nonce}\">console.log('ok')</script>"))
//! }
//!
//! let app = SecureStack::default()
//!     .apply(Router::<()>::new().route("/", get(page)))
//!     .unwrap();
//! ```

#[cfg(all(feature = "session", feature = "password"))]
pub mod auth;
pub mod body;
pub mod client_ip;
pub mod config;
#[cfg(feature = "cors")]
pub mod cors;
pub mod csp;
#[cfg(feature = "csrf")]
pub mod csrf;
pub mod error;
#[cfg(feature = "csrf")]
mod form;
pub mod headers;
pub mod hosts;
pub mod https;
pub mod input;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod keys;
#[cfg(feature = "logging")]
pub mod logging;
pub mod origin;
#[cfg(feature = "password")]
pub mod password;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "redis")]
pub mod redis;
pub mod serve;
#[cfg(feature = "session")]
pub mod session;
pub mod stack;
#[cfg(feature = "templates")]
pub mod templates;
pub mod timeout;
#[cfg(feature = "upload")]
pub mod upload;
