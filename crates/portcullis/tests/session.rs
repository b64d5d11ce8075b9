//! Sessions over real HTTP: expiry, revocation of a user's other sessions, the SQLite
//! store, and failing closed when the store is gone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use portcullis::keys::{Keyring, SecretKey};
use portcullis::session::{MemoryStore, Session, SessionConfig, SessionStore, SqliteStore};

fn routes() -> Router {
    Router::new()
        .route(
            "/login/{id}",
            get(|session: Session, Path(id): Path<i64>| async move {
                session.login(id);
                "ok"
            }),
        )
        .route(
            "/whoami",
            get(|session: Session| async move {
                session
                    .user_id()
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "anonymous".into())
            }),
        )
        .route(
            "/password-changed",
            get(|session: Session| async move {
                session.end_other_sessions().await.unwrap().to_string()
            }),
        )
}

async fn serve(config: SessionConfig, store: Arc<dyn SessionStore>) -> SocketAddr {
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let app = routes().layer(config.secure(false).layer(&keyring, store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

fn agent() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn fetch(client: &reqwest::Client, addr: SocketAddr, path: &str) -> String {
    client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn idle_sessions_expire() {
    let addr = serve(
        SessionConfig::default().idle_timeout(Duration::from_secs(1)),
        Arc::new(MemoryStore::default()),
    )
    .await;
    let user = agent();
    fetch(&user, addr, "/login/1").await;
    assert_eq!(fetch(&user, addr, "/whoami").await, "1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(fetch(&user, addr, "/whoami").await, "anonymous");
}

#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime_however_active() {
    let addr = serve(
        SessionConfig::default()
            .idle_timeout(Duration::from_secs(60))
            .absolute_lifetime(Duration::from_secs(2)),
        Arc::new(MemoryStore::default()),
    )
    .await;
    let user = agent();
    fetch(&user, addr, "/login/1").await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(fetch(&user, addr, "/whoami").await, "1");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fetch(&user, addr, "/whoami").await, "anonymous");
}

async fn password_change_ends_every_other_session(store: Arc<dyn SessionStore>) {
    let addr = serve(SessionConfig::default(), store).await;
    let (laptop, phone, tablet, other_user) = (agent(), agent(), agent(), agent());
    for device in [&laptop, &phone, &tablet] {
        fetch(device, addr, "/login/7").await;
    }
    fetch(&other_user, addr, "/login/8").await;
    assert_eq!(fetch(&laptop, addr, "/password-changed").await, "2");
    assert_eq!(fetch(&laptop, addr, "/whoami").await, "7");
    assert_eq!(fetch(&phone, addr, "/whoami").await, "anonymous");
    assert_eq!(fetch(&tablet, addr, "/whoami").await, "anonymous");
    assert_eq!(fetch(&other_user, addr, "/whoami").await, "8");
}

#[tokio::test]
async fn password_change_ends_every_other_session_in_memory() {
    password_change_ends_every_other_session(Arc::new(MemoryStore::default())).await;
}

#[tokio::test]
async fn password_change_ends_every_other_session_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("s.db").display()
    ))
    .await
    .unwrap();
    let store = SqliteStore::new(pool);
    store.migrate().await.unwrap();
    password_change_ends_every_other_session(Arc::new(store)).await;
}

#[tokio::test]
async fn a_store_that_is_gone_fails_closed_with_503() {
    // One connection: every connection to `:memory:` is a database of its own.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
        .unwrap();
    let store = SqliteStore::new(pool.clone());
    store.migrate().await.unwrap();
    let addr = serve(SessionConfig::default(), Arc::new(store)).await;
    let user = agent();
    fetch(&user, addr, "/login/1").await;
    assert_eq!(fetch(&user, addr, "/whoami").await, "1");
    pool.close().await;
    let response = user
        .get(format!("http://{addr}/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let login = user
        .get(format!("http://{addr}/login/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.status(),
        503,
        "a login that was not stored was acknowledged"
    );
}

#[tokio::test]
async fn cookies_signed_with_a_retired_key_are_anonymous_and_fallbacks_still_verify() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
    let old = SecretKey::generate();
    let serve_with = |keyring: Keyring| {
        let store = store.clone();
        async move {
            let app = routes().layer(
                SessionConfig::default()
                    .secure(false)
                    .layer(&keyring, store),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            addr
        }
    };
    let before = serve_with(Keyring::new(old.clone(), vec![])).await;
    let response = reqwest::get(format!("http://{before}/login/5"))
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let whoami = |addr: SocketAddr| {
        let cookie = cookie.clone();
        async move {
            reqwest::Client::new()
                .get(format!("http://{addr}/whoami"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let rotated = serve_with(Keyring::new(SecretKey::generate(), vec![old])).await;
    assert_eq!(whoami(rotated).await, "5");
    let retired = serve_with(Keyring::new(SecretKey::generate(), vec![])).await;
    assert_eq!(whoami(retired).await, "anonymous");
}
