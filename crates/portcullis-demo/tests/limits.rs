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
    // Three names, ten wrong passwords each: more than the limits allow per address
    // and per name, and no account past the ten free failures of its own delay,
    // which is no rate limit and stays on in bench mode.
    for i in 0..30 {
        let response = token_attempt(&demo, ["bench", "bench2", "bench3"][i % 3], None).await;
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

/// A form attempt as a script sends it: no cookie (so no CSRF token is asked for), a
/// bogus bearer token, and a `Content-Type` that axum's `Form` accepts because it
/// starts with the form type.
async fn odd_form_attempt(
    demo: &Demo,
    path: &str,
    content_type: &str,
    username: &str,
    forwarded_for: &str,
) -> reqwest::Response {
    client()
        .post(demo.url(path))
        .header("content-type", content_type)
        .header("authorization", "Bearer x")
        .header("x-forwarded-for", forwarded_for)
        .body(format!(
            "username={}&password=wrong+password+again",
            urlencode(username)
        ))
        .send()
        .await
        .unwrap()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_form_type_with_a_suffix_is_still_counted_per_username() {
    let demo = Demo::start(&[("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1")]);
    for path in ["/login", "/register"] {
        let name = if path == "/login" {
            "victim"
        } else {
            "newcomer"
        };
        let mut statuses = Vec::new();
        for n in 0..11 {
            let response = odd_form_attempt(
                &demo,
                path,
                "application/x-www-form-urlencodedX",
                name,
                &format!("203.0.113.{}", n + if path == "/login" { 0 } else { 100 }),
            )
            .await;
            statuses.push(response.status().as_u16());
        }
        // The handler reads these bodies (401 for a wrong password, 400 for a weak
        // one): they were guesses, and the eleventh on one name is refused.
        assert!(
            statuses[..10].iter().all(|s| *s != 429 && *s != 415),
            "{path}: {statuses:?}"
        );
        assert_eq!(statuses[10], 429, "{path}: {statuses:?}");
    }
}

#[tokio::test]
async fn bodies_no_extractor_reads_are_refused_on_counted_routes() {
    let demo = Demo::start(&[("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1")]);
    for content_type in [
        "text/plain",
        "application/x-www-form",
        "multipart/form-data",
    ] {
        let response =
            odd_form_attempt(&demo, "/login", content_type, "victim", "203.0.113.1").await;
        assert_eq!(response.status(), 415, "{content_type}");
    }
    // serde fills the handler's struct from an array by position: no field is named,
    // so the body is refused before it could be guessed with uncounted.
    let array = client()
        .post(demo.url("/api/token"))
        .header("x-forwarded-for", "203.0.113.2")
        .json(&json!(["victim", "wrong password, again"]))
        .send()
        .await
        .unwrap();
    assert_eq!(array.status(), 400);
}

#[tokio::test]
async fn look_alike_spellings_of_one_name_share_its_bucket() {
    let demo = Demo::start(&[("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1")]);
    // U+212A KELVIN SIGN becomes `K` under NFC, as the handler reads the name.
    for n in 0..10 {
        let spelling = if n % 2 == 0 {
            "\u{212A}elvin"
        } else {
            "kelvin"
        };
        let response = token_attempt(&demo, spelling, Some(&format!("203.0.113.{n}"))).await;
        assert_eq!(response.status(), 401, "attempt {n}");
    }
    let refused = token_attempt(&demo, "KELVIN", Some("203.0.113.99")).await;
    assert_eq!(refused.status(), 429);
}
