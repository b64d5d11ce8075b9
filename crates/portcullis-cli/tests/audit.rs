//! `portcullis audit` against real servers on loopback: the demo in development and in
//! production with built-in TLS, and small sites with deliberately weak headers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Output;

use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use portcullis::serve::ServeConfig;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const STRONG_KEY: &str = "7KHIAi9gsOHMjhZMVNScQDHLYfcgZwyIFsa9Fx04Wqw";

async fn audit(args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .arg("audit")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .unwrap()
}

/// Runs `audit --json` and returns the document; the exit status must be 0.
async fn audit_json(args: &[&str]) -> Value {
    let mut all = vec!["--json", "--timeout", "5"];
    all.extend_from_slice(args);
    let output = audit(&all).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn result<'a>(report: &'a Value, test: &str) -> &'a str {
    report["tests"][test]["result"]
        .as_str()
        .unwrap_or_else(|| panic!("no {test} in {report:#}"))
}

fn verdict<'a>(report: &'a Value, check: &str) -> &'a str {
    report["beyond"][check]["verdict"]
        .as_str()
        .unwrap_or_else(|| panic!("no {check} in {report:#}"))
}

/// The demo, served in this process as its binary serves it.
struct DemoSite {
    https: Option<SocketAddr>,
    plain: SocketAddr,
    cert: Option<std::path::PathBuf>,
    _data: tempfile::TempDir,
}

async fn start_demo(production: bool) -> DemoSite {
    let data = tempfile::tempdir().unwrap();
    let mut vars: HashMap<&str, String> = HashMap::from([
        (
            "PORTCULLIS_DATA_DIR",
            data.path().to_str().unwrap().to_owned(),
        ),
        ("PORTCULLIS_ADDR", "127.0.0.1:0".to_owned()),
    ]);
    let mut tls = None;
    if production {
        let (cert, key) = portcullis::https::write_dev_cert(&data.path().join("tls")).unwrap();
        vars.insert("PORTCULLIS_ENV", "production".into());
        vars.insert("PORTCULLIS_SECRET_KEY", STRONG_KEY.into());
        vars.insert("PORTCULLIS_ALLOWED_HOSTS", "localhost,127.0.0.1".into());
        vars.insert("PORTCULLIS_TLS_CERT", cert.to_str().unwrap().into());
        vars.insert("PORTCULLIS_TLS_KEY", key.to_str().unwrap().into());
        tls = Some((cert, key));
    }
    let settings =
        portcullis::config::Settings::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let app = portcullis_demo::app(&settings).await.unwrap();
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    let limits = ServeConfig::default();
    match tls {
        None => {
            tokio::spawn(portcullis::serve::serve(
                plain,
                app,
                limits,
                std::future::pending(),
            ));
            DemoSite {
                https: None,
                plain: plain_addr,
                cert: None,
                _data: data,
            }
        }
        Some((cert, key)) => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let https = listener.local_addr().unwrap();
            let config = portcullis::https::load_tls(&cert, &key).await.unwrap();
            tokio::spawn(portcullis::serve::serve_tls(
                listener,
                config,
                app,
                limits.clone(),
                std::future::pending(),
            ));
            tokio::spawn(portcullis::https::serve_redirect(
                plain,
                https.port(),
                settings.served_hosts(),
                limits,
                std::future::pending(),
            ));
            DemoSite {
                https: Some(https),
                plain: plain_addr,
                cert: Some(cert),
                _data: data,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_in_production_with_tls_grades_a_plus_at_the_highest_score_without_preload() {
    let demo = start_demo(true).await;
    let https = demo.https.unwrap();
    let ca = demo.cert.as_ref().unwrap().to_str().unwrap().to_owned();
    let http_port = demo.plain.port().to_string();
    let login = format!("https://localhost:{}/login", https.port());
    let report = audit_json(&[&login, "--ca", &ca, "--http-port", &http_port]).await;

    assert_eq!(report["grade"], "A+", "{report:#}");
    // 100 + CSP default-src 'none' 10 + cookies 5 + referrer 5 + SRI 5 + frame-ancestors
    // 5 + CORP 10: every bonus but the preload list's.
    assert_eq!(report["score"], 140, "{report:#}");
    for (test, expected) in [
        (
            "content-security-policy",
            "csp-implemented-with-no-unsafe-default-src-none",
        ),
        (
            "cookies",
            "cookies-secure-with-httponly-sessions-and-samesite",
        ),
        (
            "cross-origin-resource-sharing",
            "cross-origin-resource-sharing-not-implemented",
        ),
        ("redirection", "redirection-to-https"),
        ("referrer-policy", "referrer-policy-private"),
        (
            "strict-transport-security",
            "hsts-implemented-max-age-at-least-six-months",
        ),
        (
            "subresource-integrity",
            "sri-implemented-and-all-scripts-loaded-securely",
        ),
        ("x-content-type-options", "x-content-type-options-nosniff"),
        ("x-frame-options", "x-frame-options-implemented-via-csp"),
        (
            "cross-origin-resource-policy",
            "corp-implemented-with-same-origin",
        ),
        (
            "cross-origin-opener-policy",
            "coop-implemented-with-same-origin",
        ),
    ] {
        assert_eq!(result(&report, test), expected, "{test}");
        assert_eq!(report["tests"][test]["pass"], true, "{test}");
    }
    for check in [
        "server-version-leak",
        "trace-method",
        "csrf-form-tokens",
        "cookie-caching",
        "cookie-prefixes",
        "mixed-content",
        "permissions-policy",
        "security-txt",
        "error-page-leak",
        "hsts-over-http",
        "tls-versions",
        "certificate",
    ] {
        assert_eq!(
            verdict(&report, check),
            "pass",
            "{check}: {:#}",
            report["beyond"][check]
        );
    }
    let tls = report["beyond"]["tls-versions"]["why"].as_str().unwrap();
    assert_eq!(tls, "accepts TLS 1.3, TLS 1.2", "{tls}");

    // The home page sets no cookie (no form for a visitor): the cookie bonus is out of
    // reach there, everything else the same; by IP address too.
    let home = format!("https://127.0.0.1:{}/", https.port());
    let report = audit_json(&[&home, "--ca", &ca, "--http-port", &http_port]).await;
    assert_eq!(result(&report, "cookies"), "cookies-not-found");
    assert_eq!(report["score"], 135, "{report:#}");
    assert_eq!(report["grade"], "A+");

    // --fail-under passes at A+.
    let output = audit(&[
        &home,
        "--ca",
        &ca,
        "--http-port",
        &http_port,
        "--fail-under",
        "A+",
    ])
    .await;
    assert_eq!(output.status.code(), Some(0));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("Grade A+"), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_stops_the_audit_unless_insecure_and_is_then_graded_as_such() {
    let demo = start_demo(true).await;
    let url = format!("https://localhost:{}/", demo.https.unwrap().port());
    let refused = audit(&[&url]).await;
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--ca FILE") && stderr.contains("--insecure"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());

    let report = audit_json(&[&url, "--insecure"]).await;
    assert_eq!(
        result(&report, "strict-transport-security"),
        "hsts-invalid-cert"
    );
    assert_eq!(verdict(&report, "certificate"), "fail");
    assert!(report["score"].as_i64().unwrap() < 100, "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_in_development_is_graded_as_a_plain_http_site() {
    let demo = start_demo(false).await;
    let url = format!("http://127.0.0.1:{}/", demo.plain.port());
    let report = audit_json(&[&url]).await;
    assert_eq!(result(&report, "redirection"), "redirection-missing");
    assert_eq!(
        result(&report, "strict-transport-security"),
        "hsts-not-implemented-no-https"
    );
    assert_eq!(
        result(&report, "content-security-policy"),
        "csp-implemented-with-no-unsafe-default-src-none"
    );
    // Integrity without HTTPS earns nothing: a network attacker rewrites the page too.
    assert_eq!(
        result(&report, "subresource-integrity"),
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    );
    // Two penalties of 20 leave 60: no bonus counts below 90.
    assert_eq!(report["score"], 60);
    assert_eq!(report["grade"], "C+");
    assert_eq!(verdict(&report, "tls-versions"), "n/a");
    assert_eq!(verdict(&report, "trace-method"), "pass");
    assert_eq!(verdict(&report, "error-page-leak"), "pass");
}

/// A site written the way the checklist warns against.
async fn weak_site(request: axum::extract::Request) -> Response {
    let path = request.uri().path().to_owned();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SERVER,
        "Werkzeug/3.0.1 Python/3.12.1".parse().unwrap(),
    );
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000".parse().unwrap(),
    );
    match (request.method().clone(), path.as_str()) {
        (Method::OPTIONS, _) => {
            // Flask-CORS with a reflecting origin and credentials, on the home page.
            if let Some(origin) = origin.filter(|_| path == "/") {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    "true".parse().unwrap(),
                );
            }
            (StatusCode::OK, headers).into_response()
        }
        (Method::TRACE, _) => {
            headers.insert(header::CONTENT_TYPE, "message/http".parse().unwrap());
            (headers, format!("TRACE {path} HTTP/1.1\r\n")).into_response()
        }
        (_, "/") => {
            headers.insert(
                "content-security-policy-report-only",
                "default-src 'self'".parse().unwrap(),
            );
            headers.insert(header::SET_COOKIE, "sessionid=abc; Path=/".parse().unwrap());
            headers.insert(
                header::CONTENT_TYPE,
                "text/html; charset=utf-8".parse().unwrap(),
            );
            let body = "<!doctype html><title>weak</title>\
                <script src=\"http://cdn.example.com/jquery.js\"></script>\
                <form method=\"post\" action=\"/transfer\"><input name=\"amount\"></form>";
            (headers, body).into_response()
        }
        (_, "/unsafe-inline") => {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline'"
                    .parse()
                    .unwrap(),
            );
            headers.insert(header::X_FRAME_OPTIONS, "DENY".parse().unwrap());
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, "nosniff".parse().unwrap());
            headers.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
            (headers, "<!doctype html><p>inline").into_response()
        }
        (_, "/mixed") => {
            headers.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
            let body = "<!doctype html><img src=\"http://img.example.com/a.png\">\
                <script src=\"http://cdn.example.com/lib.js\"></script>";
            (headers, body).into_response()
        }
        _ => {
            headers.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
            let trace = "<h1>Internal error</h1><pre>Traceback (most recent call last):\n  \
                File \"app.py\", line 12</pre>";
            (StatusCode::NOT_FOUND, headers, trace).into_response()
        }
    }
}

async fn serve_weak() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(weak_site);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weak_site_gets_every_penalty_and_an_f() {
    let addr = serve_weak().await;
    let url = format!("http://{addr}/");
    let report = audit_json(&[&url]).await;
    for (test, expected, modifier) in [
        (
            "content-security-policy",
            "csp-not-implemented-but-reporting-enabled",
            -25,
        ),
        ("cookies", "cookies-session-without-secure-flag", -40),
        (
            "cross-origin-resource-sharing",
            "cross-origin-resource-sharing-implemented-with-universal-access",
            -50,
        ),
        ("redirection", "redirection-missing", -20),
        ("referrer-policy", "referrer-policy-not-implemented", 0),
        (
            "strict-transport-security",
            "hsts-not-implemented-no-https",
            -20,
        ),
        (
            "subresource-integrity",
            "sri-not-implemented-and-external-scripts-not-loaded-securely",
            -50,
        ),
        (
            "x-content-type-options",
            "x-content-type-options-not-implemented",
            -5,
        ),
        ("x-frame-options", "x-frame-options-not-implemented", -20),
        ("cross-origin-resource-policy", "corp-not-implemented", 0),
    ] {
        assert_eq!(result(&report, test), expected, "{test}");
        assert_eq!(report["tests"][test]["score_modifier"], modifier, "{test}");
    }
    assert_eq!(report["score"], 0);
    assert_eq!(report["grade"], "F");
    for (check, expected) in [
        ("server-version-leak", "fail"),
        ("trace-method", "fail"),
        ("csrf-form-tokens", "fail"),
        ("cookie-caching", "fail"),
        ("cookie-prefixes", "warn"),
        ("permissions-policy", "warn"),
        ("security-txt", "warn"),
        ("error-page-leak", "fail"),
        ("hsts-over-http", "warn"),
        ("mixed-content", "n/a"),
    ] {
        assert_eq!(
            verdict(&report, check),
            expected,
            "{check}: {:#}",
            report["beyond"][check]
        );
    }

    // The table names the check, the verdict, why and the fix on both sides.
    let output = audit(&[&url, "--fail-under", "C"]).await;
    assert_eq!(output.status.code(), Some(1), "below C: exit status 1");
    let table = String::from_utf8_lossy(&output.stdout);
    // Shown with --nocapture: the README's sample of a weak site.
    eprintln!("{table}");
    let cors = table
        .lines()
        .find(|l| l.starts_with("cross-origin-resource-sharing "))
        .unwrap();
    assert!(cors.contains("fail") && cors.contains("-50"), "{cors}");
    assert!(
        table.contains("Flask-CORS") && table.contains("PORTCULLIS_CORS_ORIGINS"),
        "{table}"
    );
    assert!(table.contains("Grade F"), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_weakness_alone_costs_exactly_its_penalty() {
    let addr = serve_weak().await;
    let report = audit_json(&[&format!("http://{addr}/unsafe-inline")]).await;
    assert_eq!(
        result(&report, "content-security-policy"),
        "csp-implemented-with-unsafe-inline"
    );
    assert_eq!(
        result(&report, "x-frame-options"),
        "x-frame-options-sameorigin-or-deny"
    );
    assert_eq!(result(&report, "cookies"), "cookies-not-found");
    assert_eq!(
        result(&report, "cross-origin-resource-sharing"),
        "cross-origin-resource-sharing-not-implemented"
    );
    // -20 unsafe-inline, -20 no redirect, -20 no HTTPS, and nothing else.
    assert_eq!(report["score"], 40, "{report:#}");
    assert_eq!(report["grade"], "D+");
    let missing = audit(&["http://127.0.0.1:9/"]).await;
    assert_eq!(missing.status.code(), Some(2));
    let bad = audit(&["ftp://example.com/"]).await;
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_resources_on_an_https_page_are_mixed_content() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = portcullis::https::write_dev_cert(dir.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = portcullis::https::load_tls(&cert, &key).await.unwrap();
    let app = Router::new().fallback(weak_site);
    tokio::spawn(portcullis::serve::serve_tls(
        listener,
        config,
        app,
        ServeConfig::default(),
        std::future::pending(),
    ));
    let url = format!("https://127.0.0.1:{}/mixed", addr.port());
    let report = audit_json(&[&url, "--ca", cert.to_str().unwrap()]).await;
    assert_eq!(verdict(&report, "mixed-content"), "fail", "{report:#}");
    let why = report["beyond"]["mixed-content"]["why"].as_str().unwrap();
    assert!(why.contains("http://cdn.example.com/lib.js"), "{why}");
    assert_eq!(
        result(&report, "subresource-integrity"),
        "sri-not-implemented-and-external-scripts-not-loaded-securely"
    );
    // HTTPS with a max-age of a year: HSTS passes, and the trusted certificate too.
    assert_eq!(
        result(&report, "strict-transport-security"),
        "hsts-implemented-max-age-at-least-six-months"
    );
    assert_eq!(verdict(&report, "certificate"), "pass");
    // Plain HTTP on the TLS port gets no answer: nothing to redirect, as the
    // Observatory grades a site without plain HTTP.
    assert_eq!(
        result(&report, "redirection"),
        "redirection-not-needed-no-http"
    );
}
