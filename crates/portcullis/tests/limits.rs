//! The stack's limits over real HTTP on 127.0.0.1: slow bodies and slow handlers get 408.

#[path = "support/app.rs"]
mod app;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use portcullis::stack::SecureStack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use app::*;

#[tokio::test]
async fn slow_bodies_time_out_with_408() {
    let app = SecureStack::default()
        .without_https_redirect()
        .request_timeout(Duration::from_millis(500))
        .apply(routes())
        .unwrap();
    let addr = serve(app).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\nab")
        .await
        .unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            response.extend_from_slice(&buf[..n]);
            if n == 0 || response.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept waiting for the slow body");
    let head = String::from_utf8_lossy(&response);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(head.contains("x-frame-options: DENY"), "{head}");
}

#[tokio::test]
async fn slow_handlers_time_out_and_quick_ones_do_not() {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/waits",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                "in time"
            }),
        )
        .route("/instant", get(|| async { "at once" }));
    let app = SecureStack::default()
        .without_https_redirect()
        .request_timeout(Duration::from_millis(400))
        .apply(app)
        .unwrap();
    let addr = serve(app).await;
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let slow = http
        .get(format!("http://{addr}/slow"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        slow.headers()["x-content-type-options"],
        "nosniff",
        "the 408 passes the header layer"
    );
    let body: serde_json::Value = slow.json().await.unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    for (path, text) in [("/waits", "in time"), ("/instant", "at once")] {
        let answer = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.text().await.unwrap(), text);
    }
}
