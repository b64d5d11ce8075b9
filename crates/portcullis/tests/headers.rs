//! The secure stack's response side over real HTTP on 127.0.0.1: secure headers on every kind of
//! response, nonces, request ids, uniform error bodies and the CSP report collector.

#[path = "support/app.rs"]
mod app;

use portcullis::headers::SecureHeadersConfig;
use portcullis::stack::SecureStack;

use app::*;

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
async fn json_and_empty_responses_get_the_strict_policy_without_a_nonce() {
    let addr = plain_stack().await;
    let http = client();
    for (path, content_type) in [
        ("/api/thing", Some("application/json")),
        ("/echo", Some("text/plain; charset=utf-8")),
    ] {
        let request = if path == "/echo" {
            http.post(format!("http://{addr}{path}")).body("abc")
        } else {
            http.get(format!("http://{addr}{path}"))
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            content_type,
            "{path}"
        );
        assert_eq!(headers["content-security-policy"], STRICT_CSP, "{path}");
        assert!(!headers.contains_key("cache-control"), "{path}");
    }
    // A CSP report is answered 204, with no body and no type.
    let report = serde_json::json!({"csp-report": {"blocked-uri": "inline"}}).to_string();
    let empty = http
        .post(format!("http://{addr}/csp-report"))
        .header("content-type", "application/csp-report")
        .body(report)
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 204);
    assert!(!empty.headers().contains_key("content-type"));
    assert_eq!(empty.headers()["content-security-policy"], STRICT_CSP);
}

#[tokio::test]
async fn html_error_pages_get_the_page_policy_and_json_errors_the_strict_one() {
    let addr = plain_stack().await;
    let http = client();
    let page = http
        .get(format!("http://{addr}/nope"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let api = http
        .get(format!("http://{addr}/api/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(api.headers()["content-security-policy"], STRICT_CSP);
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
