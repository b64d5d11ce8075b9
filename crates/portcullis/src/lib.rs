//! Portcullis: the web-security layer for axum and tower, secure by default.
//!
//! What Flask developers assemble from a dozen extensions (Talisman, Flask-WTF,
//! Flask-Login, Flask-JWT-Extended, Flask-Limiter, Flask-CORS, werkzeug.security), in
//! one stack. Each concern is a module with a `…Config` whose `Default` is the secure
//! choice and a layer or extractor; [`stack::SecureStack`] wires them in the right order.
//!
//! ## Modules
//!
//! The core (always compiled) is what every app needs; every other concern is a
//! feature, all of them on by default except `redis`. An app that wants only the
//! response headers takes `default-features = false`: 122 crates in its tree instead
//! of 300 with everything.
//!
//! | module | concern | feature |
//! |---|---|---|
//! | [`stack`] | the one-call secure preset: composes the layers below, depends on none of them | core |
//! | [`serve`] | serving an app: timeouts for slow and idle clients, a connection cap, TLS, graceful shutdown | core |
//! | [`config`] | settings from the environment, the production audit, the presets they describe | core |
//! | [`keys`] | the keyring: current and fallback secrets, HKDF subkeys, signing | core |
//! | [`headers`] | secure response headers on every response | core |
//! | [`csp`] | Content Security Policy, per-request nonces, the report collector | core |
//! | [`hosts`] | allowed hosts: a 400 for any `Host` the app does not serve | core |
//! | [`https`] | HTTPS redirect; built-in TLS and development certificates (feature `tls`) | core |
//! | [`client_ip`] | client address and scheme from trusted proxies only | core |
//! | [`origin`] | web origins, parsed one way for CORS, CSRF and framing | core |
//! | [`body`] | the body-size limit, and the one way a layer reads a body | core |
//! | [`timeout`] | the time limit on a whole request | core |
//! | [`error`] | one error type; uniform JSON or HTML error bodies; the missing-layer rejection | core |
//! | [`extract`] | extractors whose refusals are the uniform errors (`JsonBody`) | core |
//! | [`input`] | trimming, normalisation and length rules for typed input | core |
//! | `session` | server-side sessions: signed random ids, expiry, per-user revocation; stores in memory, SQLite (`sqlite`) or Redis (`redis`) | `session` |
//! | `csrf` | fetch-metadata and `Origin` checks, session-bound masked tokens | `csrf` |
//! | `auth` | login extractors, the login flow, timing-safe authentication, safe `next` redirects | `session` + `password` |
//! | `account` | the second sign-in step, re-authentication, reset and confirmation links, the per-account delay, security events | `account` |
//! | `totp` | TOTP codes (RFC 6238), `otpauth://` QR codes, recovery codes; secrets sealed at rest (`keys::Sealer`) | `totp` |
//! | `password` | password hashing, legacy werkzeug/bcrypt verification, the password policy | `password` |
//! | `jwt` | API tokens: access and refresh, rotation by `kid`, revocation, reuse detection | `jwt` |
//! | `ratelimit` | GCRA limits per client IP and per username, fail-closed stores | `ratelimit` |
//! | `cors` | validated CORS: explicit origins, deny by default, no `*` with credentials | `cors` |
//! | `upload` | upload names, type checks, metadata stripping, storage, download headers | `upload` |
//! | `templates` | templates that always escape, with `csp_nonce()` and `csrf_field()`; `\|safe` refused | `templates` |
//! | `sanitize` | user rich text: an allow-list HTML sanitizer, Markdown through it, `SafeHtml` | `sanitize` |
//! | `logging` | structured logs with credentials redacted | `logging` |
//! | `mail` | outgoing mail for account flows: SMTP over TLS (plain on loopback only), a development outbox | `mail` |
//! | `redis` | the Redis connection that the Redis stores share | `redis` |
//!
//! What each feature adds to the core's dependency tree: `session` and `csrf` the
//! cookie parser (7 crates); `sqlite` sqlx with SQLite (70); `jwt` jsonwebtoken (15);
//! `password` Argon2, scrypt, PBKDF2, bcrypt and zxcvbn (38); `upload` the image and
//! type parsers (7); `templates` minijinja (9); `sanitize` ammonia, html5ever and
//! pulldown-cmark (45); `logging` tracing-subscriber (10); `tls`
//! rustls, tokio-rustls and rcgen (18); `mail` lettre over rustls (45; 8 more in a build with every feature); `redis` fred (62); `ratelimit` and `cors` nothing
//! new. `test-util` adds the conformance suites for third-party stores
//! (`session::store::conformance`, `ratelimit::store::conformance`,
//! `jwt::revocation::conformance`).
//!
//! ## Layout
//!
//! One concern, one place, as in tower-http: a concern of several concepts is a folder
//! whose `mod.rs` holds its prose and re-exports, one file per concept beside it (the
//! CSRF token format in `csrf/token.rs`, a GCRA quota in `ratelimit/quota.rs`). Every
//! store sits beside its trait, in memory, SQLite or Redis alike
//! (`session/store/{memory,sqlite,redis}.rs`, `ratelimit/store/…`,
//! `jwt/revocation/…`), and is named `Memory…Store`, `Sqlite…Store`, `Redis…Store`.
//! The in-memory session and revocation stores keep their entries in one internal
//! expiring map (`expiring.rs`, after mini-redis's `db.rs`), and every in-memory store
//! purges through its one background task.
//! Leaf modules (`body`, `timeout`, `origin`, `error`) depend on no concern; the stack
//! composes and nothing depends on it. Risky switches are named for what they give up
//! (`without_https_redirect`, `exempt`, `plain_http_on_loopback`) so that an audit
//! finds them with one search, and configurations are checked when built, never while
//! serving.
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

#[cfg(feature = "account")]
pub mod account;
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
// The expiring map under the in-memory stores, and their background purge.
#[cfg(any(feature = "session", feature = "jwt", feature = "ratelimit"))]
mod expiring;
pub mod extract;
pub mod headers;
pub mod hosts;
pub mod https;
pub mod input;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod keys;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "mail")]
pub mod mail;
pub mod origin;
#[cfg(feature = "password")]
pub mod password;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sanitize")]
pub mod sanitize;
pub mod serve;
#[cfg(feature = "session")]
pub mod session;
pub mod stack;
#[cfg(feature = "templates")]
pub mod templates;
#[cfg(test)]
mod test_support;
pub mod timeout;
#[cfg(feature = "totp")]
pub mod totp;
#[cfg(feature = "upload")]
pub mod upload;
