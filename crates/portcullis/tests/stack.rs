//! The secure stack over real HTTP on 127.0.0.1: headers on every kind of response,
//! nonces, forwarding headers, the HTTPS redirect, limits and the CSP report collector.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis::client_ip::{ClientInfo, ClientInfoConfig};
use portcullis::csp::{CspNonce, ReportCollectorConfig};
use portcullis::headers::SecureHeadersConfig;
use portcullis::https::HttpsRedirectConfig;
use portcullis::stack::SecureStack;
use reqwest::header::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECURE_HEADERS: &[(&str, &str)] = &[
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("x-xss-protection", "0"),
    ("x-permitted-cross-domain-policies", "none"),
    ("origin-agent-cluster", "?1"),
];

fn routes() -> Router {
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
        }))
}

async fn serve(app: Router) -> SocketAddr {
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

async fn plain_stack() -> SocketAddr {
    let app = SecureStack::default()
        .without_https_redirect()
        .apply(routes())
        .unwrap();
    serve(app).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn assert_secure_headers(headers: &HeaderMap, what: &str) {
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
    assert!(csp.contains("script-src 'nonce-"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!headers.contains_key("server"), "{what}: Server leaked");
    assert!(!headers.contains_key("x-powered-by"), "{what}");
    // Plain HTTP: HSTS would be meaningless.
    assert!(!headers.contains_key("strict-transport-security"), "{what}");
    assert!(headers.contains_key("x-request-id"), "{what}");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_secure_headers() {
    let addr = plain_stack().await;
    let http = client();
    let base = format!("http://{addr}");

    let page = http.get(format!("{base}/page")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_secure_headers(page.headers(), "HTML page");

    let json = http.get(format!("{base}/api/thing")).send().await.unwrap();
    assert_eq!(json.status(), 200);
    assert_secure_headers(json.headers(), "JSON");

    let missing = http
        .get(format!("{base}/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_secure_headers(missing.headers(), "404");

    let big = http
        .post(format!("{base}/echo"))
        .body(vec![b'a'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_secure_headers(big.headers(), "413");

    let panic = http.get(format!("{base}/panic")).send().await.unwrap();
    assert_eq!(panic.status(), 500);
    assert_secure_headers(panic.headers(), "caught panic");
    let body = panic.text().await.unwrap();
    assert!(!body.contains("secret detail"), "{body}");
    assert!(!body.contains("main.rs"), "{body}");

    let legacy = http.get(format!("{base}/powered")).send().await.unwrap();
    assert_secure_headers(legacy.headers(), "handler that set Server");

    let wrong_method = http.delete(format!("{base}/page")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_secure_headers(wrong_method.headers(), "405");
}

#[tokio::test]
async fn error_bodies_are_uniform_and_chosen_by_route_and_accept() {
    let addr = plain_stack().await;
    let http = client();
    let api_missing = http
        .get(format!("http://{addr}/api/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(api_missing.status(), 404);
    let body: serde_json::Value = api_missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let page_missing = http
        .get(format!("http://{addr}/nope"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(page_missing.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let panic = http
        .get(format!("http://{addr}/panic"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = panic.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal_error");
}

#[tokio::test]
async fn nonce_is_fresh_per_request_and_matches_the_header() {
    let addr = plain_stack().await;
    let http = client();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let response = http
            .get(format!("http://{addr}/page"))
            .send()
            .await
            .unwrap();
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap()
            .to_owned();
        assert!(nonce.len() >= 22, "128 bits are 22 base64 characters");
        let body = response.text().await.unwrap();
        assert!(body.contains(&format!("nonce=\"{nonce}\"")), "{body}");
        assert!(seen.insert(nonce), "a nonce was reused");
    }
}

#[tokio::test]
async fn request_ids_are_ours_not_the_clients() {
    let addr = plain_stack().await;
    let response = client()
        .get(format!("http://{addr}/page"))
        .header("x-request-id", "forged\tid")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "forged\tid");
    assert_eq!(id.len(), 36, "a UUID");
}

#[tokio::test]
async fn spoofed_forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let addr = plain_stack().await;
    let response = client()
        .get(format!("http://{addr}/whoami"))
        .header("x-forwarded-for", "203.0.113.66")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "for=198.51.100.1;proto=https")
        .send()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("strict-transport-security"));
    assert_eq!(response.text().await.unwrap(), "127.0.0.1 http");
}

#[tokio::test]
async fn trusted_proxy_gives_the_rightmost_untrusted_hop() {
    let app = SecureStack::default()
        .without_https_redirect()
        .client_info(
            ClientInfoConfig::default().trusted_proxies("127.0.0.1, 10.0.0.0/8".parse().unwrap()),
        )
        .apply(routes())
        .unwrap();
    let addr = serve(app).await;
    let response = client()
        .get(format!("http://{addr}/whoami"))
        // The client wrote 6.6.6.6 itself; 203.0.113.7 is who reached our proxies.
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.2.3")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.ends_with("upgrade-insecure-requests"), "{csp}");
    assert_eq!(response.text().await.unwrap(), "203.0.113.7 https");
}

#[tokio::test]
async fn plain_http_is_redirected_with_308_and_spoofed_proto_does_not_skip_it() {
    let app = SecureStack::default()
        .https_redirect(HttpsRedirectConfig::default().exempt("/api/thing"))
        .allowed_hosts("app.example, localhost, 127.0.0.1".parse().unwrap())
        .apply(routes())
        .unwrap();
    let addr = serve(app).await;
    let http = client();
    let response = http
        .post(format!("http://{addr}/echo?next=%2Fhome&x=1"))
        .header("host", "app.example")
        .header("x-forwarded-proto", "https")
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://app.example/echo?next=%2Fhome&x=1"
    );
    assert_secure_headers(response.headers(), "redirect");

    let bad_host = http
        .get(format!("http://{addr}/page"))
        .header("host", "evil.example/\\")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_host.status(), 400);

    let exempt = http
        .get(format!("http://{addr}/api/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(exempt.status(), 200);
}

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

#[tokio::test]
async fn invalid_header_configuration_is_an_error_before_serving() {
    let result = SecureStack::default()
        .headers(SecureHeadersConfig::default().permissions_policy("camera=()\nx: y"))
        .apply(routes());
    assert!(result.is_err());
}

#[tokio::test]
async fn csp_report_collector_accepts_reports_and_refuses_abuse() {
    let addr = plain_stack().await;
    let http = client();
    let url = format!("http://{addr}/csp-report");
    let post = |content_type: &'static str, body: String| {
        http.post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let report = serde_json::json!({"csp-report": {
        "document-uri": "http://app.example/",
        "violated-directive": "script-src",
        "blocked-uri": "inline"
    }})
    .to_string();
    let reporting_api = serde_json::json!([{"type": "csp-violation", "body": {
        "documentURL": "http://app.example/", "effectiveDirective": "script-src-elem"
    }}])
    .to_string();
    let huge = format!(r#"{{"csp-report":{{"x":"{}"}}}}"#, "a".repeat(10_000));
    let cases = [
        ("application/csp-report", report.clone(), 204),
        ("application/reports+json", reporting_api, 204),
        ("text/html", "<script>".to_owned(), 415),
        ("application/csp-report", huge, 413),
        ("application/csp-report", "{not json".to_owned(), 400),
    ];
    for (content_type, body, status) in cases {
        let response = post(content_type, body).await.unwrap();
        assert_eq!(response.status(), status, "{content_type}");
    }
    // Five per minute in this configuration: the flood is cut off.
    let mut limited = false;
    for _ in 0..10 {
        let response = post("application/csp-report", report.clone())
            .await
            .unwrap();
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            limited = true;
            break;
        }
    }
    assert!(limited, "the collector never rate-limited");
}

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

#[tokio::test]
async fn hosts_that_are_not_allowed_get_400_before_the_redirect_or_the_handler() {
    let app = SecureStack::default()
        .allowed_hosts("app.example".parse().unwrap())
        .any_host_for("/api/thing")
        .apply(routes())
        .unwrap();
    let addr = serve(app).await;
    let http = client();
    for host in ["evil.example", "app.example.evil.example", "127.0.0.1"] {
        let response = http
            .post(format!("http://{addr}/echo"))
            .header("host", host)
            .body("data")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{host}");
        assert!(!response.headers().contains_key("location"), "{host}");
        assert_secure_headers(response.headers(), "host refusal");
    }
    // Without any Host at all (HTTP/1.0), nothing to check against: refused too.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /page HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    stream.read_to_end(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.0 400"));
    // The redirect goes to the allowed host, and exempt paths answer any host.
    let redirect = http
        .get(format!("http://{addr}/page"))
        .header("host", "APP.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.headers()["location"], "https://app.example/page");
    let exempt = http
        .get(format!("http://{addr}/api/thing"))
        .send()
        .await
        .unwrap();
    assert_ne!(exempt.status(), 400);
}
