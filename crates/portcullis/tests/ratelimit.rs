//! Rate limits over real HTTP on 127.0.0.1: the login contract per username and per
//! address, forwarding headers, bench mode, preflights, and failing closed.

#[path = "support/log_capture.rs"]
mod log_capture;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use futures_util::future::BoxFuture;
use log_capture::CapturedLog;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::config::RateLimitMode;
use portcullis::ratelimit::{
    Decision, MemoryRateLimitStore, Quota, RateLimitConfig, RateLimitStore, RateLimitStoreError,
};

/// Echoes the body, so that a test sees the handler got it intact after the limiter
/// read it; counts its calls.
fn routes(calls: Arc<AtomicUsize>) -> Router {
    let echo = move |body: Bytes| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            body
        }
    };
    Router::new()
        .route("/api/token", post(echo.clone()))
        .route("/login", post(echo.clone()).get(|| async { "login page" }))
        .route("/register", post(echo))
        .route("/", get(|| async { "home" }))
}

struct Server {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

async fn serve_with(
    config: RateLimitConfig,
    store: Arc<dyn RateLimitStore>,
    client_info: ClientInfoConfig,
) -> Server {
    let calls = Arc::new(AtomicUsize::new(0));
    // As `SecureStack` does: the client-info layer outside the limiter.
    let app = routes(calls.clone())
        .layer(config.layer(store).unwrap())
        .layer(client_info.layer());
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
    Server { addr, calls }
}

async fn serve(config: RateLimitConfig) -> Server {
    serve_with(
        config,
        Arc::new(MemoryRateLimitStore::new()),
        ClientInfoConfig::default(),
    )
    .await
}

async fn behind_proxy() -> Server {
    serve_with(
        RateLimitConfig::default(),
        Arc::new(MemoryRateLimitStore::new()),
        ClientInfoConfig::default().trusted_proxies("127.0.0.1".parse().unwrap()),
    )
    .await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn number(response: &reqwest::Response, name: &str) -> u64 {
    header(response, name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .parse()
        .unwrap()
}

async fn token(
    http: &reqwest::Client,
    addr: SocketAddr,
    username: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = http
        .post(format!("http://{addr}/api/token"))
        .json(&serde_json::json!({ "username": username, "password": "correct horse" }));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

async fn assert_rate_limited(response: reqwest::Response, limit: u64) {
    assert_eq!(response.status(), 429);
    let retry = number(&response, "retry-after");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(number(&response, "ratelimit-limit"), limit);
    assert_eq!(number(&response, "ratelimit-remaining"), 0);
    let reset = number(&response, "ratelimit-reset");
    assert!(reset >= retry && reset <= 60, "RateLimit-Reset {reset}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn the_eleventh_token_request_for_one_username_is_refused() {
    let server = serve(RateLimitConfig::default()).await;
    let http = reqwest::Client::new();
    for i in 0..10 {
        let response = token(&http, server.addr, "alice", None).await;
        assert_eq!(response.status(), 200, "request {}", i + 1);
        assert_eq!(number(&response, "ratelimit-limit"), 10);
        assert_eq!(number(&response, "ratelimit-remaining"), 9 - i);
        assert!(number(&response, "ratelimit-reset") <= 60);
        // The handler got the body the limiter read.
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["username"], "alice");
    }
    assert_rate_limited(token(&http, server.addr, "alice", None).await, 10).await;
    assert_eq!(server.calls.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn ten_usernames_from_one_address_hit_the_address_limit() {
    let server = serve(RateLimitConfig::default()).await;
    let http = reqwest::Client::new();
    for i in 0..10 {
        let response = token(&http, server.addr, &format!("user{i}"), None).await;
        assert_eq!(response.status(), 200);
    }
    assert_rate_limited(token(&http, server.addr, "user10", None).await, 10).await;
    // The group's paths share the address's bucket.
    let form = http
        .post(format!("http://{}/login", server.addr))
        .form(&[("username", "someone-else"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 429);
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_earns_no_fresh_bucket() {
    let server = serve(RateLimitConfig::default()).await;
    let http = reqwest::Client::new();
    for i in 0..10 {
        let spoofed = format!("203.0.113.{i}");
        let response = token(&http, server.addr, &format!("user{i}"), Some(&spoofed)).await;
        assert_eq!(response.status(), 200);
    }
    let response = token(&http, server.addr, "fresh", Some("198.51.100.99")).await;
    assert_rate_limited(response, 10).await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let server = behind_proxy().await;
    let http = reqwest::Client::new();
    for i in 0..10 {
        let response = token(&http, server.addr, &format!("a{i}"), Some("203.0.113.1")).await;
        assert_eq!(response.status(), 200);
    }
    let response = token(&http, server.addr, "a10", Some("203.0.113.1")).await;
    assert_rate_limited(response, 10).await;
    // The client wrote 203.0.113.1 itself; the proxy appended who it really is.
    let response = token(&http, server.addr, "b0", Some("203.0.113.1, 198.51.100.2")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(number(&response, "ratelimit-remaining"), 9);
}

#[tokio::test]
async fn one_username_bucket_whatever_its_case_and_spaces() {
    // Behind a proxy, each request from a different client: only the username counts.
    let server = behind_proxy().await;
    let http = reqwest::Client::new();
    let variants = [
        "Alice", "alice ", " ALICE", "aLiCe", "alice", "\talice", "ALICE ", "Alice", "alice",
        "aliCE",
    ];
    for (i, name) in variants.iter().enumerate() {
        let ip = format!("198.51.100.{i}");
        let response = token(&http, server.addr, name, Some(&ip)).await;
        assert_eq!(response.status(), 200, "{name:?}");
    }
    let response = token(&http, server.addr, "  aLICE  ", Some("198.51.100.77")).await;
    assert_rate_limited(response, 10).await;
    // A form post to another path of the group shares the bucket too.
    let form = http
        .post(format!("http://{}/login", server.addr))
        .header("x-forwarded-for", "198.51.100.78")
        .form(&[("username", "ALICE"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 429);
    let other = token(&http, server.addr, "bob", Some("198.51.100.79")).await;
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn a_request_naming_two_usernames_is_refused() {
    let server = behind_proxy().await;
    let response = reqwest::Client::new()
        .post(format!("http://{}/login", server.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=mallory&username=victim&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bench_mode_decides_every_request_but_never_refuses() {
    let server = serve(RateLimitConfig::default().mode(RateLimitMode::Bench)).await;
    let http = reqwest::Client::new();
    for i in 0..2000u64 {
        let response = token(&http, server.addr, "bench", None).await;
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(number(&response, "ratelimit-limit"), 10_000_000);
        // A request's cell refills in 6 µs at this rate, so fewer are ever used up.
        let remaining = number(&response, "ratelimit-remaining");
        assert!(remaining < 10_000_000 && remaining >= 10_000_000 - 1 - i);
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 2000);
}

#[tokio::test]
async fn options_floods_count_when_no_cors_layer_answers_them() {
    // Without a CORS layer in front (the stack puts it outside the limiter), nothing
    // answers OPTIONS before the limiter: it must count like any other method, or it
    // is a free, unlimited way in.
    let server = serve(RateLimitConfig::default().default_per_ip(Quota::per_minute(3))).await;
    let http = reqwest::Client::new();
    let mut refused = None;
    for _ in 0..10 {
        let response = http
            .request(
                reqwest::Method::OPTIONS,
                format!("http://{}/api/token", server.addr),
            )
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(number(&response, "ratelimit-limit"), 3);
    }
    assert_rate_limited(refused.expect("OPTIONS was never limited"), 3).await;
    // The login group counts POSTs only, in buckets of its own.
    let response = token(&http, server.addr, "carol", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(number(&response, "ratelimit-remaining"), 9);
}

#[tokio::test]
async fn other_requests_count_against_the_default_limit() {
    let server = serve(RateLimitConfig::default().default_per_ip(Quota::per_minute(3))).await;
    let http = reqwest::Client::new();
    for (path, remaining) in [("/", 2), ("/login", 1), ("/", 0)] {
        let response = http
            .get(format!("http://{}{path}", server.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(number(&response, "ratelimit-limit"), 3);
        assert_eq!(number(&response, "ratelimit-remaining"), remaining);
    }
    let refused = http
        .get(format!("http://{}/", server.addr))
        .send()
        .await
        .unwrap();
    assert_rate_limited(refused, 3).await;
    // The login group has its own buckets.
    let response = token(&http, server.addr, "dave", None).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_not_truncated() {
    let server = serve(RateLimitConfig::default().max_body_bytes(64)).await;
    let response = reqwest::Client::new()
        .post(format!("http://{}/login", server.addr))
        .form(&[("username", "erin"), ("password", &"x".repeat(100))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

/// A POST of `body` to `path` in the chunked transfer coding, one byte per chunk
/// (hyper makes a frame of each), over a raw socket: the raw response.
async fn post_in_one_byte_chunks(addr: SocketAddr, path: &str, body: &[u8], tail: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
         content-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for byte in body {
        request.extend_from_slice(b"1\r\n");
        request.push(*byte);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(tail);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_login_sent_in_one_byte_chunks_is_read_whole_and_counted() {
    let server = serve(RateLimitConfig::default()).await;
    let mut body = b"username=alice&password=correct+horse&padding=".to_vec();
    body.resize(16 * 1024, b'x');
    let response = post_in_one_byte_chunks(server.addr, "/login", &body, b"0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{}", &response[..100]);
    // Counted against alice (ten a minute), and the handler got every byte.
    assert!(
        response.contains("ratelimit-limit: 10\r\n"),
        "{response:.300}"
    );
    assert!(
        response.contains("ratelimit-remaining: 9\r\n"),
        "{response:.300}"
    );
    assert!(response.ends_with(std::str::from_utf8(&body).unwrap()));
}

#[tokio::test]
async fn a_body_that_breaks_mid_read_is_a_400_not_a_413_nor_a_truncated_body() {
    let server = serve(RateLimitConfig::default()).await;
    let response = post_in_one_byte_chunks(
        server.addr,
        "/login",
        b"username=alice&pass",
        b"zz\r\nnot a chunk\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("could not be read"), "{response}");
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
}

/// Stands for a network store (Redis) that cannot be reached.
#[derive(Debug)]
struct Unreachable;

impl RateLimitStore for Unreachable {
    fn check<'a>(
        &'a self,
        _key: &'a str,
        _quota: &'a Quota,
    ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>> {
        Box::pin(async {
            Err(RateLimitStoreError::Unavailable(
                "connection refused".into(),
            ))
        })
    }
}

#[tokio::test]
async fn a_failing_store_fails_closed_with_503() {
    let server = serve_with(
        RateLimitConfig::default(),
        Arc::new(Unreachable),
        ClientInfoConfig::default(),
    )
    .await;
    let http = reqwest::Client::new();
    let response = token(&http, server.addr, "frank", None).await;
    assert_eq!(response.status(), 503);
    assert!(number(&response, "retry-after") > 0);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    let page = http
        .get(format!("http://{}/", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(server.calls.load(Ordering::SeqCst), 0, "the handler ran");
}

// A current-thread runtime: the server runs on this thread, under this subscriber.
#[tokio::test(flavor = "current_thread")]
async fn refusals_are_logged_without_the_username() {
    let (captured, _guard) = CapturedLog::install();
    let server = serve(RateLimitConfig::default()).await;
    let http = reqwest::Client::new();
    for _ in 0..11 {
        token(&http, server.addr, "Secret-Username-7", None).await;
    }
    let log = captured.text();
    assert!(log.contains("rate_limited"), "{log}");
    assert!(log.contains("portcullis::security"), "{log}");
    assert!(
        log.contains("group=\"auth\"") || log.contains("group=auth"),
        "{log}"
    );
    assert!(log.contains("127.0.0.1"), "{log}");
    assert!(!log.to_lowercase().contains("secret-username-7"), "{log}");
}

/// A flood of distinct usernames from distinct addresses, each bucket active, fills the
/// username pool: the limiter then answers 503 (fail closed) rather than forget a
/// spent bucket, and the victim's name never gets another try.
#[tokio::test]
async fn a_full_username_pool_fails_closed_over_http() {
    let store = portcullis::ratelimit::MemoryRateLimitStoreConfig::default()
        .max_username_keys(16)
        .build()
        .unwrap();
    let server = serve_with(
        RateLimitConfig::default(),
        Arc::new(store),
        ClientInfoConfig::default().trusted_proxies("127.0.0.1".parse().unwrap()),
    )
    .await;
    let http = reqwest::Client::new();
    for n in 0..10 {
        let response = token(
            &http,
            server.addr,
            "victim",
            Some(&format!("203.0.113.{n}")),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    let mut statuses = Vec::new();
    for n in 0..40 {
        let forwarded = format!("198.51.100.{n}");
        statuses.push(
            token(&http, server.addr, &format!("guess{n}"), Some(&forwarded))
                .await
                .status()
                .as_u16(),
        );
        let victim = token(&http, server.addr, "victim", Some(&forwarded)).await;
        assert!(
            [429, 503].contains(&victim.status().as_u16()),
            "the victim's bucket was forgotten after {n} other names"
        );
    }
    assert!(statuses.contains(&503), "{statuses:?}");
    let calls_before = server.calls.load(Ordering::SeqCst);
    let refused = token(&http, server.addr, "guess-more", Some("192.0.2.200")).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(server.calls.load(Ordering::SeqCst), calls_before);
}

/// The attack on a shared pool: spend the victim's bucket, then present 900 distinct,
/// active addresses under the same quota at a 1,000-key cap. The addresses' buckets may
/// be forgotten; the victim's username bucket is not.
#[tokio::test]
async fn a_flood_of_addresses_does_not_reset_a_username_bucket_over_http() {
    let store = portcullis::ratelimit::MemoryRateLimitStoreConfig::default()
        .max_keys(1_000)
        .build()
        .unwrap();
    let server = serve_with(
        RateLimitConfig::default(),
        Arc::new(store),
        ClientInfoConfig::default().trusted_proxies("127.0.0.1".parse().unwrap()),
    )
    .await;
    let http = reqwest::Client::new();
    for n in 0..10 {
        let response = token(
            &http,
            server.addr,
            "victim",
            Some(&format!("203.0.113.{n}")),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        token(&http, server.addr, "victim", Some("203.0.113.50"))
            .await
            .status(),
        429
    );
    // Bodies without a username: each counts one address, in the auth quota.
    for n in 0..900u32 {
        let response = http
            .post(format!("http://{}/api/token", server.addr))
            .header("x-forwarded-for", format!("10.{}.{}.1", n / 256, n % 256))
            .json(&serde_json::json!({ "password": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        token(&http, server.addr, "victim", Some("203.0.113.51"))
            .await
            .status(),
        429,
        "the flood of addresses gave the victim's name a fresh bucket"
    );
}
