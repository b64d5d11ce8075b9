//! The app, server and assertions the stack's test files share. Each test file uses
//! a part of them.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis::client_ip::ClientInfo;
use portcullis::csp::{CspNonce, ReportCollectorConfig};
use portcullis::stack::SecureStack;
use reqwest::header::HeaderMap;

pub(crate) const SECURE_HEADERS: &[(&str, &str)] = &[
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("x-xss-protection", "0"),
    ("x-permitted-cross-domain-policies", "none"),
    ("origin-agent-cluster", "?1"),
];

/// The policy of every response that is no page, over plain HTTP.
pub(crate) const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

pub(crate) fn routes() -> Router {
    Router::new()
        .route(
            "/page",
            get(|nonce: CspNonce| async move {
                axum::response::Html(format!(
                    "<p>hi</p><script nonce=\"{nonce}\">1</script>"
                ))
            }),
        )
        .route(
            "/api/thing",
            get(|| async { Json(serde_json::json!({ "ok": true })) }),
        )
        .route(
            "/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("secret detail /home/app/src/main.rs:42");
                }
                "unreachable"
            }),
        )
        .route("/echo", post(|body: Bytes| async move { body.len().to_string() }))
        .route(
            "/whoami",
            get(|client: ClientInfo| async move {
                format!("{} {}", client.ip, client.scheme.as_str())
            }),
        )
        .route(
            "/powered",
            get(|| async {
                (
                    [("server", "Apache/2.4.1"), ("x-powered-by", "PHP/5.4")],
                    "legacy",
                )
            }),
        )
        .merge(portcullis::csp::report_collector(ReportCollectorConfig {
            per_client_per_minute: 5,
            max_body_bytes: 2048,
            ..ReportCollectorConfig::default()
        })
        .unwrap())
}

pub(crate) async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

pub(crate) async fn plain_stack() -> SocketAddr {
    let app = SecureStack::default()
        .without_https_redirect()
        .apply(routes())
        .unwrap();
    serve(app).await
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn assert_secure_headers(headers: &HeaderMap, what: &str) {
    for (name, value) in SECURE_HEADERS {
        assert_eq!(
            headers.get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{what}: {name}"
        );
    }
    let permissions = headers["permissions-policy"].to_str().unwrap();
    for feature in [
        "camera=()",
        "microphone=()",
        "geolocation=()",
        "payment=()",
        "usb=()",
        "browsing-topics=()",
    ] {
        assert!(permissions.contains(feature), "{what}: {permissions}");
    }
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    let page = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if page {
        assert!(csp.contains("script-src 'nonce-"), "{what}: {csp}");
    } else {
        // Nothing in a response that is no page runs: nothing may load, no nonce.
        assert_eq!(csp, STRICT_CSP, "{what}");
    }
    assert!(!headers.contains_key("server"), "{what}: Server leaked");
    assert!(!headers.contains_key("x-powered-by"), "{what}");
    // Plain HTTP: HSTS would be meaningless.
    assert!(!headers.contains_key("strict-transport-security"), "{what}");
    assert!(headers.contains_key("x-request-id"), "{what}");
}
