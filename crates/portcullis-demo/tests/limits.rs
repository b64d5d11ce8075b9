//! Rate limits and CORS on the real app: the contract's limits, headers and refusals.

mod common;

use common::{browser_like, client, register, Demo, PASSWORD};
use serde_json::json;

async fn token_attempt(
    demo: &Demo,
    username: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .post(demo.url("/api/token"))
        .json(&json!({ "username": username, "password": "wrong password, again" }));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_eleventh_token_attempt_in_a_minute_is_refused() {
    let demo = Demo::start(&[]);
    for attempt in 1..=10 {
        let response = token_attempt(&demo, "target", None).await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
        assert_eq!(response.headers()["ratelimit-limit"], "10");
    }
    let refused = token_attempt(&demo, "target", None).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    assert!(refused.headers().contains_key("ratelimit-reset"));
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn spoofed_forwarded_for_does_not_earn_a_fresh_bucket() {
    let demo = Demo::start(&[]);
    // Ten attempts, each claiming to come from somewhere else, each for another user.
    for n in 0..10 {
        let response =
            token_attempt(&demo, &format!("user{n}"), Some(&format!("203.0.113.{n}"))).await;
        assert_eq!(response.status(), 401);
    }
    let refused = token_attempt(&demo, "user-new", Some("198.51.100.77")).await;
    assert_eq!(
        refused.status(),
        429,
        "the spoofed header bought a new bucket"
    );
}

#[tokio::test]
async fn the_username_bucket_counts_whatever_the_spelling() {
    let demo = Demo::start(&[("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1")]);
    // Behind a trusted proxy each client has its own IP bucket, but the username
    // bucket still fills: ten tries on one account from ten addresses.
    for n in 0..10 {
        let spelling = if n % 2 == 0 { "Victim" } else { " victim " };
        let response = token_attempt(&demo, spelling, Some(&format!("203.0.113.{n}"))).await;
        assert_eq!(response.status(), 401, "attempt {n}");
    }
    let refused = token_attempt(&demo, "VICTIM", Some("203.0.113.200")).await;
    assert_eq!(refused.status(), 429);
    // Another account from another address is not affected.
    let other = token_attempt(&demo, "someone-else", Some("203.0.113.201")).await;
    assert_eq!(other.status(), 401);
}

#[tokio::test]
async fn login_form_attempts_are_limited_too() {
    let demo = Demo::start(&[]);
    let http = browser_like();
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(
            common::login(&http, &demo, "nobody", PASSWORD)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[10], 429);
}

#[tokio::test]
async fn bench_mode_decides_every_request_but_refuses_none() {
    let demo = Demo::start(&[("PORTCULLIS_RATE_LIMITS", "bench")]);
    for _ in 0..30 {
        let response = token_attempt(&demo, "bench", None).await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("ratelimit-remaining"));
    }
}

#[tokio::test]
async fn cors_allows_only_the_configured_origin() {
    let demo = Demo::start(&[("PORTCULLIS_CORS_ORIGINS", "https://app.example")]);
    register(&browser_like(), &demo, "cors-user", PASSWORD).await;
    let preflight = |origin: &'static str| {
        let request = client()
            .request(reqwest::Method::OPTIONS, demo.url("/api/comments"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            );
        async move { request.send().await.unwrap() }
    };
    let allowed = preflight("https://app.example").await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let vary = allowed.headers()["vary"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(vary.contains("origin"), "{vary}");
    // Preflights are answered before the rate limiter: many in a row all pass.
    for _ in 0..30 {
        assert!(preflight("https://app.example").await.status().is_success());
    }
    for origin in [
        "https://evil.example",
        "http://app.example",
        "https://app.example.evil.example",
        "null",
    ] {
        let refused = preflight(origin).await;
        assert!(
            !refused
                .headers()
                .contains_key("access-control-allow-origin"),
            "{origin} was allowed"
        );
    }
    let simple = client()
        .get(demo.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!simple.headers().contains_key("access-control-allow-origin"));
}

#[test]
fn wildcard_with_credentials_stops_the_app_at_start_up() {
    let (code, stderr) = common::refuse(&[
        ("PORTCULLIS_CORS_ORIGINS", "*"),
        ("PORTCULLIS_CORS_CREDENTIALS", "true"),
    ]);
    assert_ne!(code, Some(0));
    assert!(stderr.to_ascii_lowercase().contains("cors"), "{stderr}");
}
