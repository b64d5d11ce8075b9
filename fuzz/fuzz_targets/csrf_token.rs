//! The CSRF check with a live session: the token in `X-CSRF-Token`, in a urlencoded
//! form, and in a multipart body found by the multipart scanner, plus bodies with a
//! content type of the fuzzer's choosing.
//!
//! The first byte picks where the rest goes; every `TOKEN` in the rest is replaced by
//! the session's real token, so the fuzzer can build bodies around a valid one.
//!
//! Properties: nothing panics or answers 5xx; a request is accepted only if the input
//! held `TOKEN` (the fuzzer cannot mint a token); an accepted body reaches the handler
//! byte for byte (the scanner hands on what it read).
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request};
use axum::routing::{get, post};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::csrf::{CsrfConfig, CsrfToken, HEADER};
use portcullis::session::{MemorySessionStore, SessionConfig, COOKIE_NAME};
use portcullis_fuzz::{keyring, send};

struct Fixture {
    app: Router,
    cookie: String,
    token: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keyring = keyring();
        let app = Router::new()
            .route(
                "/form",
                get(|token: CsrfToken| async move { token.as_str().to_owned() }),
            )
            .route("/submit", post(|body: Bytes| async move { body }))
            .layer(CsrfConfig::default().layer(&keyring).unwrap())
            .layer(
                SessionConfig::default()
                    .insecure_cookie_over_plain_http()
                    .layer(&keyring, Arc::new(MemorySessionStore::default())),
            )
            .layer(ClientInfoConfig::default().layer());
        let form = send(
            &app,
            Request::get("/form")
                .header(header::HOST, "localhost")
                .body(Body::empty())
                .unwrap(),
        );
        assert!(form.status.is_success(), "{}", form.status);
        let cookie = form.cookie(COOKIE_NAME).expect("a session cookie");
        Fixture {
            app,
            cookie: format!("{COOKIE_NAME}={cookie}"),
            token: form.text(),
        }
    })
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let had_token = rest.windows(5).any(|w| w == b"TOKEN");
    let rest = replace_all(rest, b"TOKEN", fx.token.as_bytes());

    let builder = Request::post("/submit")
        .header(header::HOST, "localhost")
        .header(header::ORIGIN, "http://localhost")
        .header(header::COOKIE, &fx.cookie);
    let (builder, body) = match mode % 4 {
        0 => {
            let Ok(value) = HeaderValue::from_bytes(&rest) else {
                return;
            };
            (builder.header(HEADER, value), Vec::new())
        }
        1 => (
            builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            rest,
        ),
        2 => (
            builder.header(
                header::CONTENT_TYPE,
                "multipart/form-data; boundary=----fuzzBoundary7MA4YWxk",
            ),
            rest,
        ),
        _ => {
            // The first line is the content type (the boundary with it).
            let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let Ok(value) = HeaderValue::from_bytes(&rest[..split]) else {
                return;
            };
            let body = rest.get(split + 1..).unwrap_or_default().to_vec();
            (builder.header(header::CONTENT_TYPE, value), body)
        }
    };
    let reply = send(&fx.app, builder.body(Body::from(body.clone())).unwrap());
    assert!(
        !reply.status.is_server_error(),
        "status {}: {}",
        reply.status,
        reply.text()
    );
    if reply.status.is_success() {
        assert!(had_token, "accepted without the session's token");
        assert_eq!(&reply.body[..], &body[..], "the handler saw another body");
    }
});
