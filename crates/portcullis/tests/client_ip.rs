//! Who is asking, over real HTTP on 127.0.0.1: forwarding headers believed from trusted
//! proxies only, the HTTPS redirect, and the allowed hosts.

#[path = "support/app.rs"]
mod app;

use axum::http::StatusCode;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::https::HttpsRedirectConfig;
use portcullis::stack::SecureStack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use app::*;

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
