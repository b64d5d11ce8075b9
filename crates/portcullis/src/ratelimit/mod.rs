//! Rate limits: GCRA per client IP and per submitted username, under one tower layer.
//!
//! A [`RateLimitConfig`] names **groups** of exact paths and what each group counts:
//! the client IP (always [`ClientInfo`](crate::client_ip::ClientInfo), which believes
//! forwarding headers from trusted proxies only — never a header read here) and/or the
//! username the request submits.
//! The contract's defaults:
//!
//! | group | requests | limit |
//! |---|---|---|
//! | `auth` | `POST /login`, `/register`, `/api/token` | 10 a minute per client IP **and** 10 a minute per username, counted separately; refused when either is spent |
//! | `default` | every other request | 600 a minute per client IP |
//!
//! The username is read wherever the handler's axum extractors could read it, by their
//! own rules: `Form` reads the query string of a `GET` and otherwise any body whose
//! `Content-Type` *starts with* `application/x-www-form-urlencoded`; `Json` reads a body
//! of type `application/json` or `application/*+json`. Every `username` field found
//! there is counted (bodies read up to 1 MiB and handed on unchanged); a request that
//! names two different usernames is refused with 400, as it cannot be counted against
//! one and the handler's parser might pick the other. On a username-counted route a
//! request none of those extractors would read is refused with 415, and a JSON body
//! that is not an object with 400 (serde fills a struct from an array by position,
//! where no field is called `username`): nothing reaches the handler uncounted. The
//! key is [`crate::input::username_key`] (trimmed, NFC, lowercase), the one name under
//! which the handler finds an account: `Alice` and ` alice ` share a bucket, and so do
//! `kevin` and `\u{212A}evin` (KELVIN SIGN, which NFC makes `K`). IPv6 clients are counted per `/64`, the block
//! one host controls, so that one machine cannot mint a fresh bucket per address.
//!
//! Refusals are `429 Too Many Requests` with `Retry-After` and the uniform error body
//! (code `rate_limited`), logged as a `portcullis::security` event that names the group,
//! the key kind, the client IP and the path — never the username — and marked with
//! [`Refused`] in the response's extensions, for a layer outside to act on. Every counted response,
//! allowed or refused, carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (seconds until the bucket is full again) of the tightest rule that
//! applied. When the store fails, the answer is `503` with `Retry-After`: the limiter
//! fails closed. CORS preflights are answered before the limiter (the stack puts the
//! CORS layer outside it); any other `OPTIONS` request counts like every method.
//!
//! The client's address must be known: serve the app with [`crate::serve`] (or axum's
//! `into_make_service_with_connect_info::<SocketAddr>()`). Served without it, every
//! client would share one bucket, and ten failed logins a minute would lock out the
//! whole world; the client-info layer refuses such requests instead
//! ([`crate::client_ip::MissingPeerAddress`]).
//!
//! The counting lives behind [`RateLimitStore`], so a shared store
//! ([`RedisRateLimitStore`], feature `redis`, for several instances) can replace the
//! in-process [`MemoryRateLimitStore`], which runs the `governor` crate's GCRA and keeps
//! its memory bounded under a flood of distinct keys. Both answer alike, and
//! [`store::conformance`] (feature `test-util`) checks any other store against the same
//! rules. [`RateLimitMode::Bench`](crate::config::RateLimitMode::Bench) multiplies every
//! limit by 1,000,000: the limiter still decides every request, but never refuses one.
//!
//! | file | what it holds |
//! |---|---|
//! | `quota.rs` | [`Quota`], [`Decision`] and the GCRA arithmetic every store answers by |
//! | `key.rs` | how a request's keys are made: the client's address block, the submitted username |
//! | `config.rs` | [`RateLimitConfig`], [`RateLimitGroup`], and their validation |
//! | `layer.rs` | [`RateLimitLayer`] and its service [`RateLimit`]: counting, `429`, `503` |
//! | `store/` | [`RateLimitStore`], the memory and Redis stores, the conformance suite |
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::post, Router};
//! use portcullis::client_ip::ClientInfoConfig;
//! use portcullis::ratelimit::{MemoryRateLimitStore, Quota, RateLimitConfig, RateLimitGroup};
//!
//! let limits = RateLimitConfig::default()
//!     .group(RateLimitGroup::auth().per_ip(Quota::per_minute(20)))
//!     .layer(Arc::new(MemoryRateLimitStore::new()))
//!     .unwrap();
//! let app: Router = Router::new()
//!     .route("/login", post(|| async { "welcome" }))
//!     .layer(limits)
//!     // The limiter reads the client from `ClientInfo`: install that layer outside it.
//!     .layer(ClientInfoConfig::default().layer());
//! ```

mod config;
mod key;
mod layer;
mod quota;
pub mod store;

pub use config::{
    RateLimitConfig, RateLimitConfigError, RateLimitGroup, BENCH_FACTOR, DEFAULT_GROUP,
    DEFAULT_MAX_BODY_BYTES,
};
pub use layer::{RateLimit, RateLimitLayer, Refused, LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER};
pub use quota::{Decision, Quota};
#[cfg(feature = "redis")]
pub use store::RedisRateLimitStore;
pub use store::{
    MemoryRateLimitStore, MemoryRateLimitStoreConfig, RateLimitStore, RateLimitStoreError,
    DEFAULT_MAX_KEYS,
};
