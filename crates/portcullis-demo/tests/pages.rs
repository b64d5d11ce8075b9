//! The demo's pages over real HTTP: headers, escaping of stored payloads, static
//! files, error pages, the data folder, and built-in TLS.

mod common;

use common::{client, Demo, STRONG_KEY};
use sqlx::Connection as _;

#[tokio::test]
async fn home_page_is_served_with_every_protection() {
    let demo = Demo::start(&[]);
    let response = client().get(demo.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(!headers.contains_key("server"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap();
    // Nothing is allowed unless a directive names it.
    assert!(csp.starts_with("default-src 'none'; "), "{csp}");
    let body = response.text().await.unwrap();
    assert!(body.contains(&format!(
        "<script nonce=\"{nonce}\" src=\"/static/app.js\" integrity=\"{}\">",
        portcullis_demo::app_js_integrity()
    )));
    assert!(body.contains("<link rel=\"stylesheet\" href=\"/static/style.css\">"));
    // The development warning is loud, and the key itself is never logged.
    assert!(demo.log_text().contains("PORTCULLIS_SECRET_KEY is not set"));
    assert!(demo.data_dir.path().join("portcullis.db").is_file());
}

#[tokio::test]
async fn healthz_and_static_files() {
    let demo = Demo::start(&[]);
    let http = client();
    let health = http.get(demo.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(health.text().await.unwrap(), "ok");
    let css = http
        .get(demo.url("/static/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let js = http.get(demo.url("/static/app.js")).send().await.unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(js.headers()["x-content-type-options"], "nosniff");
    // The integrity digest the pages carry is that of the bytes served: a browser
    // refuses to run the script otherwise.
    let served = js.bytes().await.unwrap();
    let digest = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&served))
    };
    let page = http.get(demo.url("/login")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!("integrity=\"sha384-{digest}\"")),
        "{page}"
    );
}

#[tokio::test]
async fn stored_xss_and_sql_payloads_are_inert() {
    // The running app has created and migrated the database; store payloads in it.
    let demo = Demo::start(&[]);
    let db_path = demo.data_dir.path().join("portcullis.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .unwrap();
    let payloads = [
        "<script>document.title='pwned'</script>",
        "\"><img src=x onerror=alert(1)>",
        "'); DROP TABLE comments; --",
        "{{ 7*7 }} {% raw %}",
    ];
    sqlx::query("INSERT INTO users (username, password_hash, created_at) VALUES (?, 'x', ?)")
        .bind("<b>mallory</b>")
        .bind("2026-01-01T00:00:00Z")
        .execute(&mut conn)
        .await
        .unwrap();
    for (i, payload) in payloads.iter().enumerate() {
        sqlx::query("INSERT INTO comments (user_id, body, created_at) VALUES (1, ?, ?)")
            .bind(payload)
            .bind(format!("2026-01-01T00:00:0{i}Z"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let body = client()
        .get(demo.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("<script>document"), "{body}");
    assert!(!body.contains("<img src=x"), "{body}");
    assert!(!body.contains("<b>mallory"), "{body}");
    // Comment bodies are Markdown, sanitised: the script goes with its content. The
    // username is plain text, escaped.
    assert!(!body.contains("document.title="), "{body}");
    assert!(body.contains("&lt;b&gt;mallory"), "{body}");
    // Template syntax in data is data, not template code.
    assert!(body.contains("{{ 7*7 }}"), "{body}");
    assert!(body.contains("DROP TABLE comments"), "{body}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM comments")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

#[tokio::test]
async fn error_pages_are_styled_html_without_internals() {
    let demo = Demo::start(&[]);
    let response = client()
        .get(demo.url("/no/such/page?<script>"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    // The page's script carries the nonce of the policy it was sent with, or the
    // browser blocks it and files a violation report for every error page.
    let page_nonce = body
        .split("nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no nonced element in {body}"));
    assert!(
        csp.contains(&format!("'nonce-{page_nonce}'")),
        "{csp} / {page_nonce}"
    );
    assert!(body.contains("/static/style.css"), "{body}");
    assert!(body.contains("Not Found"), "{body}");
    assert!(!body.contains("<script>"), "{body}");

    let big = client()
        .post(demo.url("/csp-report"))
        .header("content-type", "application/csp-report")
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(big.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn built_in_tls_serves_https_with_hsts_and_the_plain_port_only_redirects() {
    let data_dir = tempfile::tempdir().unwrap();
    let (cert, key) = portcullis::https::write_dev_cert(&data_dir.path().join("tls")).unwrap();
    let demo = Demo::start_in(
        &[
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_ALLOWED_HOSTS", "localhost"),
            ("PORTCULLIS_SECRET_KEY", STRONG_KEY),
            ("PORTCULLIS_TLS_CERT", cert.to_str().unwrap()),
            ("PORTCULLIS_TLS_KEY", key.to_str().unwrap()),
            ("PORTCULLIS_HTTP_ADDR", "127.0.0.1:0"),
        ],
        data_dir,
    );
    assert!(demo.base.starts_with("https://"), "{}", demo.base);
    let addr: std::net::SocketAddr = demo.base.trim_start_matches("https://").parse().unwrap();
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(root)
        .resolve("localhost", addr)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = https
        .get(format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.ends_with("upgrade-insecure-requests"), "{csp}");

    let plain = demo
        .redirect_base
        .clone()
        .expect("the redirect port is logged");
    let redirected = client()
        .post(format!("{plain}/login?next=%2F"))
        .header("host", "localhost:80")
        .send()
        .await
        .unwrap();
    assert_eq!(redirected.status(), 308);
    assert_eq!(
        redirected.headers()["location"],
        format!("https://localhost:{}/login?next=%2F", addr.port())
    );
    assert!(!redirected
        .headers()
        .contains_key("strict-transport-security"));
}
