//! `POST /login` bodies through the rate limiter, which reads every `username` the
//! handler's `Form` or `Json` extractor could read.
//!
//! The first line of the input is the `Content-Type`, the rest the body. The handler
//! reads the body by axum's rules itself and reports which usernames it found.
//!
//! Properties: nothing panics or answers 5xx; a body reaches the handler unchanged;
//! a request whose (non-empty) username the handler can read carries the limiter's
//! `RateLimit-Limit` header (it was counted); a request naming two different
//! usernames never reaches the handler.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Request};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use libfuzzer_sys::fuzz_target;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::config::RateLimitMode;
use portcullis::input::username_key;
use portcullis::ratelimit::{
    MemoryRateLimitStore, Quota, RateLimitConfig, RateLimitGroup, LIMIT_HEADER,
};
use portcullis_fuzz::send;

/// Every `username` as the handler's extractors would read it.
fn usernames(headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Vec::new();
    };
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return form_urlencoded::parse(body)
            .filter(|(k, _)| k == "username")
            .map(|(_, v)| v.into_owned())
            .collect();
    }
    let Ok(mime) = content_type.parse::<mime::Mime>() else {
        return Vec::new();
    };
    let json = mime.type_() == "application"
        && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"));
    if !json {
        return Vec::new();
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => map
            .get("username")
            .and_then(|v| v.as_str())
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

async fn login(headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let names = usernames(&headers, &body);
    // A name that is empty once trimmed is no account's: the limiter leaves it
    // uncounted on purpose (`ratelimit/key.rs`), and the per-IP limit still applies.
    let keys: Vec<String> = names
        .iter()
        .map(|n| username_key(n))
        .filter(|k| !k.is_empty())
        .collect();
    let mut response = body.into_response();
    let found = HeaderValue::from(keys.len());
    response.headers_mut().insert("x-usernames", found);
    if keys.windows(2).any(|w| w[0] != w[1]) {
        response
            .headers_mut()
            .insert("x-usernames-differ", HeaderValue::from_static("1"));
    }
    response
}

fn app() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| {
        let limits = RateLimitConfig::default()
            .without_default_limit()
            // The default `auth` group already counts `/login` (per IP as well).
            .without_group("auth")
            .group(
                RateLimitGroup::new("login")
                    .path("/login")
                    .without_ip_limit()
                    .per_username(Quota::per_minute(10)),
            )
            // Counted, never refused: the fuzzer sends millions of requests.
            .mode(RateLimitMode::Bench)
            .layer(Arc::new(MemoryRateLimitStore::new()))
            .unwrap();
        Router::new()
            .route("/login", post(login))
            .layer(limits)
            .layer(ClientInfoConfig::default().layer())
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = HeaderValue::from_bytes(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or_default().to_vec();
    let reply = send(
        app(),
        Request::post("/login")
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.clone()))
            .unwrap(),
    );
    assert!(
        !reply.status.is_server_error(),
        "status {}: {}",
        reply.status,
        reply.text()
    );
    if reply.status.is_success() {
        assert_eq!(&reply.body[..], &body[..], "the handler saw another body");
        let found = reply.headers.get("x-usernames").map(|v| v.as_bytes());
        if found != Some(b"0") {
            assert!(
                reply.headers.contains_key(LIMIT_HEADER),
                "a username the handler reads was not counted"
            );
        }
        assert!(
            !reply.headers.contains_key("x-usernames-differ"),
            "two different usernames reached the handler"
        );
    }
});
