//! Putting the parts together: mistakes that only show when layers are combined are
//! refused when the stack is built, with the fix in the message, and what a new user
//! tries first works without hand-wiring (over real HTTP on 127.0.0.1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::csrf::CsrfConfig;
use portcullis::jwt::{BearerUser, Jwt, JwtConfig, JwtKeys, MemoryRevocationStore};
use portcullis::keys::{Keyring, SecretKey};
use portcullis::serve::{serve, ServeConfig};
use portcullis::session::{MemorySessionStore, SessionConfig};
use portcullis::stack::{SecureStack, StackError};

fn keyring() -> Keyring {
    Keyring::new(SecretKey::generate(), vec![])
}

async fn start(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        app,
        ServeConfig::default(),
        std::future::pending(),
    ));
    addr
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn csrf_without_sessions_is_refused_when_the_stack_is_built() {
    let csrf = CsrfConfig::default().layer(&keyring()).unwrap();
    let error = SecureStack::default()
        .csrf(csrf)
        .apply(Router::new())
        .unwrap_err();
    assert!(matches!(error, StackError::CsrfWithoutSessions), "{error}");
    assert!(
        error.to_string().contains("SecureStack::sessions"),
        "{error}"
    );
}

#[test]
fn limits_that_refuse_everything_are_refused_when_the_stack_is_built() {
    let built = |stack: SecureStack| stack.apply(Router::new()).map(|_| ());
    assert!(matches!(
        built(SecureStack::default().body_limit(0)),
        Err(StackError::ZeroBodyLimit { .. })
    ));
    assert!(matches!(
        built(SecureStack::default().route_body_limit("/upload", 0)),
        Err(StackError::ZeroBodyLimit { .. })
    ));
    assert!(matches!(
        built(SecureStack::default().route_body_limit("upload", 1024)),
        Err(StackError::InvalidBodyLimitRoute(_))
    ));
    assert!(matches!(
        built(SecureStack::default().request_timeout(Duration::ZERO)),
        Err(StackError::ZeroRequestTimeout)
    ));
}

#[test]
fn every_parts_configuration_error_is_a_stack_error() {
    fn build() -> Result<Router, StackError> {
        let csrf = CsrfConfig::default()
            .trusted_origin("https://admin.example:443")
            .layer(&keyring())?;
        SecureStack::default().csrf(csrf).apply(Router::new())
    }
    let error = build().unwrap_err();
    assert!(matches!(error, StackError::Csrf(_)), "{error}");
    assert!(error.to_string().contains("default port"), "{error}");
}

fn page_routes() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/page", get(|| async { "page" }))
}

#[tokio::test]
async fn plain_http_for_a_loopback_name_from_this_machine_is_served_by_default() {
    let app = SecureStack::default()
        .allowed_hosts("app.example, localhost, 127.0.0.1".parse().unwrap())
        .apply(page_routes())
        .unwrap();
    let addr = start(app).await;
    let http = client();
    for host in ["127.0.0.1", "localhost"] {
        for path in ["/healthz", "/page"] {
            let response = http
                .get(format!("http://{addr}{path}"))
                .header("host", format!("{host}:{}", addr.port()))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{host}{path}");
        }
    }
    // A public name over plain HTTP is still sent to HTTPS, even from this machine.
    let public = http
        .get(format!("http://{addr}/page"))
        .header("host", "app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 308);
}

#[tokio::test]
async fn a_remote_client_naming_localhost_is_still_redirected() {
    // Through a trusted proxy on this machine, the client is the address it forwards:
    // a remote one, whatever `Host` it wrote.
    let app = SecureStack::default()
        .client_info(ClientInfoConfig::default().trusted_proxies("127.0.0.1".parse().unwrap()))
        .allowed_hosts("localhost".parse().unwrap())
        .apply(page_routes())
        .unwrap();
    let addr = start(app).await;
    let response = client()
        .get(format!("http://{addr}/page"))
        .header("host", "localhost")
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], "https://localhost/page");
}

async fn csrf_app() -> SocketAddr {
    let keyring = keyring();
    let sessions =
        SessionConfig::default().layer(&keyring, Arc::new(MemorySessionStore::new(1024)));
    let app = SecureStack::default()
        .sessions(sessions)
        .csrf(CsrfConfig::default().layer(&keyring).unwrap())
        .apply(
            Router::new()
                .route("/api/token", post(|| async { "token" }))
                .route("/form", post(|| async { "posted" })),
        )
        .unwrap();
    start(app).await
}

#[tokio::test]
async fn a_cookieless_post_needs_no_token_but_still_passes_the_origin_line() {
    let addr = csrf_app().await;
    let http = client();
    // A client with no cookie (an API client signing in) needs no token and no
    // exemption: there is no session for a forgery to ride.
    let api = http
        .post(format!("http://{addr}/api/token"))
        .header("content-type", "application/json")
        .body(r#"{"username":"a","password":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    // Cross-site, cookie or not: refused by the first line.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let forged = http
            .post(format!("http://{addr}/api/token"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "{name}");
        assert!(forged.text().await.unwrap().contains("csrf_origin"));
    }
    // A cookie-less form post is the sign-in form: a forged one would sign the visitor
    // in to the attacker's account, so it still needs the token.
    let login_csrf = http
        .post(format!("http://{addr}/form"))
        .header("accept", "application/json")
        .form(&[("username", "mallory"), ("password", "mallory's")])
        .send()
        .await
        .unwrap();
    assert_eq!(login_csrf.status(), 403);
    assert!(login_csrf.text().await.unwrap().contains("csrf_missing"));
    // A browser that holds a cookie must bring the token.
    let with_cookie = http
        .post(format!("http://{addr}/form"))
        .header("cookie", "__Host-session=anything")
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("comment=hi")
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), 403);
    assert!(with_cookie.text().await.unwrap().contains("csrf_missing"));
}

#[tokio::test]
async fn the_stack_installs_the_jwt_its_extractor_needs() {
    let keyring = keyring();
    let jwt = Jwt::new(
        JwtConfig::default(),
        JwtKeys::from_keyring(&keyring),
        Arc::new(MemoryRevocationStore::default()),
    );
    let pair = jwt.issue(7).await.unwrap();
    let app = SecureStack::default()
        .jwt(jwt)
        .apply(Router::new().route(
            "/api/me",
            get(|user: BearerUser| async move { user.id.to_string() }),
        ))
        .unwrap();
    let addr = start(app).await;
    let me = client()
        .get(format!("http://{addr}/api/me"))
        .bearer_auth(&pair.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.text().await.unwrap(), "7");
    let anonymous = client()
        .get(format!("http://{addr}/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
