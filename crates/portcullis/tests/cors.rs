//! CORS through the whole stack over real HTTP on 127.0.0.1.

#[path = "support/app.rs"]
mod app;

use portcullis::stack::SecureStack;

use app::*;

#[tokio::test]
async fn cors_preflights_are_answered_before_the_rate_limiter_with_every_header() {
    use portcullis::cors::CorsConfig;
    use portcullis::ratelimit::{MemoryRateLimitStore, Quota, RateLimitConfig};

    let limits = RateLimitConfig::default()
        .default_per_ip(Quota::per_minute(1))
        .layer(std::sync::Arc::new(MemoryRateLimitStore::new()))
        .unwrap();
    let cors = CorsConfig::default()
        .origin("https://app.example")
        .allow_credentials()
        .layer()
        .unwrap();
    let app = SecureStack::default()
        .without_https_redirect()
        .rate_limit(limits)
        .cors(cors)
        .apply(routes())
        .unwrap();
    let addr = serve(app).await;
    let http = client();
    for i in 0..25 {
        let preflight = http
            .request(reqwest::Method::OPTIONS, format!("http://{addr}/api/thing"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 200, "preflight {i}");
        assert_eq!(
            preflight.headers()["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(
            preflight.headers()["access-control-allow-credentials"],
            "true"
        );
        assert!(!preflight.headers().contains_key("ratelimit-limit"));
        assert_secure_headers(preflight.headers(), "CORS preflight");
    }
    // The limiter is there all the same: one request a minute.
    let get = |http: &reqwest::Client| {
        http.get(format!("http://{addr}/api/thing"))
            .header("origin", "https://app.example")
            .send()
    };
    let first = get(&http).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["ratelimit-limit"], "1");
    let refused = get(&http).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_secure_headers(refused.headers(), "429");
    // An allowed origin's script can read why it was refused.
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
}
