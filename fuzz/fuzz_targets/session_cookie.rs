//! A `Cookie` header through the session layer, and the signed-id decoder beneath it.
//!
//! Properties: nothing panics or answers 5xx; a cookie that is not the one the layer
//! issued is anonymous; a signed value that verifies is exactly what signing its
//! payload gives (no second spelling of a MAC or a payload is accepted).
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request};
use axum::routing::get;
use axum::Router;
use libfuzzer_sys::fuzz_target;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::keys::{Purpose, Signer};
use portcullis::session::{MemorySessionStore, Session, SessionConfig, COOKIE_NAME};
use portcullis_fuzz::{keyring, send, write_seeds};

struct Fixture {
    app: Router,
    signer: Signer,
    /// The cookie value of a session signed in as user 7.
    live: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keyring = keyring();
        let app = Router::new()
            .route(
                "/login",
                get(|session: Session| async move {
                    session.login(7);
                    "ok"
                }),
            )
            .route(
                "/whoami",
                get(|session: Session| async move {
                    session
                        .user_id()
                        .map(|id| id.to_string())
                        .unwrap_or_else(|| "anonymous".into())
                }),
            )
            .layer(
                SessionConfig::default()
                    .insecure_cookie_over_plain_http()
                    .layer(&keyring, Arc::new(MemorySessionStore::default())),
            )
            .layer(ClientInfoConfig::default().layer());
        let login = send(
            &app,
            Request::get("/login")
                .header(header::HOST, "localhost")
                .body(Body::empty())
                .unwrap(),
        );
        let live = login.cookie(COOKIE_NAME).expect("the login sets a cookie");
        let signer = keyring.signer(Purpose::SESSION);
        // Well-formed ids signed with the fixed key, unknown to the store: the fuzzer
        // starts past the MAC check, into the store lookup and the cookie clearing.
        write_seeds(
            "session_cookie",
            &[
                format!("{COOKIE_NAME}={}", signer.sign(&[7u8; 32])).into_bytes(),
                format!("a=b; {COOKIE_NAME}={}; c=d", signer.sign(&[0u8; 32])).into_bytes(),
                signer.sign(&[1u8; 31]).into_bytes(),
                format!(
                    "{COOKIE_NAME}={}",
                    keyring.signer(Purpose::CSRF).sign(&[7u8; 32])
                )
                .into_bytes(),
            ],
        );
        Fixture { app, signer, live }
    })
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(payload) = fx.signer.verify(text) {
            assert_eq!(
                fx.signer.sign(&payload),
                text,
                "a second spelling of a signed value verifies"
            );
        }
    }

    // A bare value is sent as the session cookie; anything with `=` as the whole header.
    let cookie = if data.contains(&b'=') {
        data.to_vec()
    } else {
        [format!("{COOKIE_NAME}=").as_bytes(), data].concat()
    };
    let Ok(value) = HeaderValue::from_bytes(&cookie) else {
        return;
    };
    let reply = send(
        &fx.app,
        Request::get("/whoami")
            .header(header::HOST, "localhost")
            .header(header::COOKIE, value)
            .body(Body::empty())
            .unwrap(),
    );
    assert!(reply.status.is_success(), "status {}", reply.status);
    let carries_live = cookie
        .windows(fx.live.len())
        .any(|w| w == fx.live.as_bytes());
    if !carries_live {
        assert_eq!(reply.text(), "anonymous", "a forged cookie was signed in");
    }
});
