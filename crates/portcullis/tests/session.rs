//! Sessions over real HTTP: expiry, revocation of a user's other sessions, "your
//! sessions" (listing and ending them, on every store), the SQLite store, and failing
//! closed when the store is gone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::keys::{Keyring, SecretKey};
use portcullis::session::{
    MemorySessionStore, Session, SessionConfig, SessionStore, SqliteSessionStore, UserSessions,
};

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
    serve_routes(routes(), config, store).await
}

/// Serves `router` behind the session layer of `config` over `store`, on loopback.
async fn serve_routes(
    router: Router,
    config: SessionConfig,
    store: Arc<dyn SessionStore>,
) -> SocketAddr {
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let app = router.layer(
        config
            .insecure_cookie_over_plain_http()
            .layer(&keyring, store),
    );
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
        Arc::new(MemorySessionStore::default()),
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
        Arc::new(MemorySessionStore::default()),
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
    password_change_ends_every_other_session(Arc::new(MemorySessionStore::default())).await;
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
    let store = SqliteSessionStore::new(pool);
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
    let store = SqliteSessionStore::new(pool.clone());
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
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let old = SecretKey::generate();
    let serve_with = |keyring: Keyring| {
        let store = store.clone();
        async move {
            let app = routes().layer(
                SessionConfig::default()
                    .insecure_cookie_over_plain_http()
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

/// A route that loads the session, says so, waits to be released, then writes to it:
/// a request still in flight while the session is ended elsewhere.
#[derive(Clone, Default)]
struct InFlight {
    entered: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

async fn serve_with_in_flight(store: Arc<dyn SessionStore>) -> (SocketAddr, InFlight) {
    let in_flight = InFlight::default();
    let gate = in_flight.clone();
    let app = routes()
        .route(
            "/slow-write",
            get(move |session: Session| {
                let gate = gate.clone();
                async move {
                    gate.entered.notify_one();
                    gate.release.notified().await;
                    session.insert("theme", "dark");
                    "written"
                }
            }),
        )
        .route(
            "/logout",
            get(|session: Session| async move {
                session.destroy();
                "bye"
            }),
        );
    let addr = serve_routes(app, SessionConfig::default(), store).await;
    (addr, in_flight)
}

/// The `session=…` cookie a response set.
fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

async fn get_with(addr: SocketAddr, path: &str, cookie: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Logs in, starts a slow request, ends the session with `end` (from `ender`'s
/// cookie), releases the slow request: the stolen cookie must stay anonymous.
async fn a_request_in_flight_cannot_revive(
    store: Arc<dyn SessionStore>,
    end: &'static str,
    ender_is_other_device: bool,
) {
    let (addr, in_flight) = serve_with_in_flight(store).await;
    let login = reqwest::get(format!("http://{addr}/login/42"))
        .await
        .unwrap();
    let stolen = session_cookie(&login);
    let ender = if ender_is_other_device {
        session_cookie(
            &reqwest::get(format!("http://{addr}/login/42"))
                .await
                .unwrap(),
        )
    } else {
        stolen.clone()
    };
    assert_eq!(
        get_with(addr, "/whoami", &stolen)
            .await
            .text()
            .await
            .unwrap(),
        "42"
    );

    let slow = tokio::spawn({
        let stolen = stolen.clone();
        async move { get_with(addr, "/slow-write", &stolen).await }
    });
    in_flight.entered.notified().await;
    let ended = get_with(addr, end, &ender).await;
    assert_eq!(ended.status(), 200);
    in_flight.release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status(), 200);
    // The late write was dropped, and the cookie is cleared.
    let cleared = slow
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("session=;") || v.contains("Max-Age=0"));
    assert!(cleared, "{:?}", slow.headers());
    assert_eq!(
        get_with(addr, "/whoami", &stolen)
            .await
            .text()
            .await
            .unwrap(),
        "anonymous",
        "the ended session came back"
    );
}

async fn sqlite_store(capacity: Option<usize>) -> (SqliteSessionStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("s.db").display()
    ))
    .await
    .unwrap();
    let mut store = SqliteSessionStore::new(pool);
    if let Some(capacity) = capacity {
        store = store.with_capacity(capacity).unwrap();
    }
    store.migrate().await.unwrap();
    (store, dir)
}

#[tokio::test]
async fn a_request_in_flight_cannot_undo_a_logout_in_memory() {
    a_request_in_flight_cannot_revive(Arc::new(MemorySessionStore::default()), "/logout", false)
        .await;
}

#[tokio::test]
async fn a_request_in_flight_cannot_undo_a_logout_in_sqlite() {
    let (store, _dir) = sqlite_store(None).await;
    a_request_in_flight_cannot_revive(Arc::new(store), "/logout", false).await;
}

#[tokio::test]
async fn a_request_in_flight_cannot_undo_ending_other_sessions_in_memory() {
    a_request_in_flight_cannot_revive(
        Arc::new(MemorySessionStore::default()),
        "/password-changed",
        true,
    )
    .await;
}

#[tokio::test]
async fn a_request_in_flight_cannot_undo_ending_other_sessions_in_sqlite() {
    let (store, _dir) = sqlite_store(None).await;
    a_request_in_flight_cannot_revive(Arc::new(store), "/password-changed", true).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_request_in_flight_cannot_undo_a_logout_or_ending_other_sessions_in_redis() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS") else {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_REDIS").is_none(),
            "PORTCULLIS_REQUIRE_REDIS is set but PORTCULLIS_TEST_REDIS is not"
        );
        eprintln!("SKIPPED: PORTCULLIS_TEST_REDIS is not set");
        return;
    };
    let prefix = format!("portcullis-test-{}", portcullis::upload::random_id());
    let redis = portcullis::redis::RedisConnection::connect(&url, &prefix)
        .await
        .unwrap();
    a_request_in_flight_cannot_revive(Arc::new(redis.sessions()), "/logout", false).await;
    a_request_in_flight_cannot_revive(Arc::new(redis.sessions()), "/password-changed", true).await;
}

/// A capacity-32 store, 64 cookie-less visitors who each get a form (and so an
/// anonymous session for its CSRF secret): the signed-in user is still signed in.
async fn anonymous_visitors_cannot_evict(store: Arc<dyn SessionStore>) {
    let app = routes().route(
        "/form",
        get(|session: Session| async move {
            session.csrf_secret();
            "form"
        }),
    );
    let addr = serve_routes(app, SessionConfig::default(), store).await;

    let user = agent();
    fetch(&user, addr, "/login/5").await;
    for _ in 0..64 {
        let visitor = reqwest::get(format!("http://{addr}/form")).await.unwrap();
        assert!(visitor.headers().contains_key("set-cookie"));
    }
    assert_eq!(fetch(&user, addr, "/whoami").await, "5");
}

#[tokio::test]
async fn anonymous_visitors_cannot_evict_a_signed_in_user_in_memory() {
    anonymous_visitors_cannot_evict(Arc::new(MemorySessionStore::new(32))).await;
}

#[tokio::test]
async fn anonymous_visitors_cannot_evict_a_signed_in_user_in_sqlite() {
    let (store, _dir) = sqlite_store(Some(32)).await;
    let store = Arc::new(store);
    anonymous_visitors_cannot_evict(store.clone()).await;
    // And the table stays bounded.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM portcullis_sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(rows <= 33, "{rows} rows");
}

#[tokio::test]
async fn another_user_does_not_inherit_the_session_data() {
    let app = routes()
        .route(
            "/set",
            get(|session: Session| async move {
                session.insert("draft", "alice's private note");
                "set"
            }),
        )
        .route(
            "/get",
            get(|session: Session| async move { session.get("draft").unwrap_or_default() }),
        )
        .route(
            "/remove",
            get(|session: Session| async move { format!("{:?}", session.remove("draft")) }),
        );
    let addr = serve_routes(
        app,
        SessionConfig::default(),
        Arc::new(MemorySessionStore::default()),
    )
    .await;

    // Removing from a session that does not exist creates none.
    let nothing = reqwest::get(format!("http://{addr}/remove")).await.unwrap();
    assert!(!nothing.headers().contains_key("set-cookie"));

    let browser = agent();
    fetch(&browser, addr, "/login/1").await;
    fetch(&browser, addr, "/set").await;
    // The same user signing in again keeps their values.
    fetch(&browser, addr, "/login/1").await;
    assert_eq!(fetch(&browser, addr, "/get").await, "alice's private note");
    // Another user on the same browser does not see them.
    fetch(&browser, addr, "/login/2").await;
    assert_eq!(fetch(&browser, addr, "/get").await, "");
}

// "Your sessions": listing a user's sessions and ending them, over real HTTP.

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The session routes plus "your sessions" on `sessions`: list (JSON), end one by
/// id, end all others. Served with the peer address (`ConnectInfo`) and, when
/// `behind_proxy`, behind the client-info layer trusting loopback as a proxy.
async fn serve_your_sessions(
    config: SessionConfig,
    store: Arc<dyn SessionStore>,
    behind_proxy: bool,
) -> SocketAddr {
    let sessions = UserSessions::new(store.clone());
    let listing =
        Router::new()
            .route(
                "/sessions",
                get(
                    |State(sessions): State<UserSessions>, session: Session| async move {
                        let user = session.user_id().expect("signed in");
                        let listed = sessions
                            .list(user, session.listing_id().as_deref())
                            .await
                            .unwrap();
                        serde_json::to_string(&listed).unwrap()
                    },
                ),
            )
            .route(
                "/sessions/end/{id}",
                get(
                    |State(sessions): State<UserSessions>,
                     session: Session,
                     Path(id): Path<String>| async move {
                        let user = session.user_id().expect("signed in");
                        sessions.end(user, &id).await.unwrap().to_string()
                    },
                ),
            )
            .route(
                "/sessions/end-others",
                get(
                    |State(sessions): State<UserSessions>, session: Session| async move {
                        let user = session.user_id().expect("signed in");
                        sessions
                            .end_others(user, session.listing_id().as_deref())
                            .await
                            .unwrap()
                            .to_string()
                    },
                ),
            )
            .with_state(sessions);
    let app = routes().merge(listing);
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let mut app = app.layer(
        config
            .insecure_cookie_over_plain_http()
            .layer(&keyring, store),
    );
    if behind_proxy {
        app = app.layer(
            ClientInfoConfig::default()
                .trusted_proxies("127.0.0.1/32".parse().unwrap())
                .layer(),
        );
    }
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

/// Signs in as `user` with `user_agent` (and `X-Forwarded-For`, when given); the
/// session cookie.
async fn sign_in(addr: SocketAddr, user: i64, user_agent: &str, forwarded: Option<&str>) -> String {
    let mut request = reqwest::Client::new()
        .get(format!("http://{addr}/login/{user}"))
        .header("user-agent", user_agent);
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    session_cookie(&request.send().await.unwrap())
}

async fn text_with(addr: SocketAddr, path: &str, cookie: &str) -> String {
    get_with(addr, path, cookie).await.text().await.unwrap()
}

async fn listed(addr: SocketAddr, cookie: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&text_with(addr, "/sessions", cookie).await).unwrap()
}

/// Two devices of user 7, one of user 8: each lists only their own; user 8 cannot end
/// user 7's session by its id; user 7 ends the phone's, whose cookie replayed is then
/// anonymous; "end all others" ends the rest. The store keeps neither the whole
/// address nor the whole User-Agent.
async fn your_sessions(store: Arc<dyn SessionStore>) {
    let addr = serve_your_sessions(SessionConfig::default(), store.clone(), false).await;
    let laptop = sign_in(addr, 7, FIREFOX, None).await;
    let phone = sign_in(addr, 7, CHROME, None).await;
    let attacker = sign_in(addr, 8, "curl/8.5.0", None).await;

    let mine = listed(addr, &laptop).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    let (this, other): (Vec<_>, Vec<_>) = mine.iter().partition(|s| s["current"] == true);
    assert_eq!(this.len(), 1, "{mine:?}");
    assert_eq!(this[0]["client"]["browser"], "Firefox");
    assert_eq!(this[0]["client"]["network"], "127.0.0.0/24");
    assert_eq!(other[0]["client"]["browser"], "Chrome");
    let phone_id = other[0]["id"].as_str().unwrap().to_owned();
    assert!(
        mine[0]["created_at"].as_i64() >= mine[1]["created_at"].as_i64(),
        "newest first"
    );

    // The attacker lists only their own session, and cannot end the phone's.
    let theirs = listed(addr, &attacker).await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["client"]["browser"], "curl");
    assert_ne!(theirs[0]["id"], phone_id);
    let path = format!("/sessions/end/{phone_id}");
    assert_eq!(text_with(addr, &path, &attacker).await, "false");
    assert_eq!(text_with(addr, "/whoami", &phone).await, "7");
    assert_eq!(text_with(addr, "/whoami", &attacker).await, "8");

    // Nothing of the address past its /24, nothing of the User-Agent but its family.
    for (_, record) in store.list_user(7).await.unwrap() {
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("127.0.0.1"), "{json}");
        assert!(!json.contains("Gecko") && !json.contains("131.0"), "{json}");
    }

    // The owner ends the phone's session: its cookie, replayed, is anonymous.
    assert_eq!(text_with(addr, &path, &laptop).await, "true");
    assert_eq!(text_with(addr, &path, &laptop).await, "false", "ended once");
    assert_eq!(text_with(addr, "/whoami", &phone).await, "anonymous");
    assert_eq!(listed(addr, &laptop).await.len(), 1);

    // End all others: the laptop stays, the tablet goes, user 8 stays.
    let tablet = sign_in(addr, 7, CHROME, None).await;
    assert_eq!(text_with(addr, "/sessions/end-others", &laptop).await, "1");
    assert_eq!(text_with(addr, "/whoami", &tablet).await, "anonymous");
    assert_eq!(text_with(addr, "/whoami", &laptop).await, "7");
    assert_eq!(text_with(addr, "/whoami", &attacker).await, "8");
}

#[tokio::test]
async fn your_sessions_in_memory() {
    your_sessions(Arc::new(MemorySessionStore::default())).await;
}

#[tokio::test]
async fn your_sessions_in_sqlite() {
    let (store, _dir) = sqlite_store(None).await;
    your_sessions(Arc::new(store)).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn your_sessions_in_redis() {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS") else {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_REDIS").is_none(),
            "PORTCULLIS_REQUIRE_REDIS is set but PORTCULLIS_TEST_REDIS is not"
        );
        eprintln!("SKIPPED: PORTCULLIS_TEST_REDIS is not set");
        return;
    };
    let prefix = format!("portcullis-test-{}", portcullis::upload::random_id());
    let redis = portcullis::redis::RedisConnection::connect(&url, &prefix)
        .await
        .unwrap();
    your_sessions(Arc::new(redis.sessions())).await;
    // The two sessions left (user 7's laptop, user 8's) go with the test.
    let sessions = UserSessions::new(Arc::new(redis.sessions()));
    assert_eq!(sessions.end_others(7, None).await.unwrap(), 1);
    assert_eq!(sessions.end_others(8, None).await.unwrap(), 1);
}

#[tokio::test]
async fn expired_sessions_are_not_listed() {
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let addr = serve_your_sessions(
        SessionConfig::default().idle_timeout(Duration::from_secs(1)),
        store,
        false,
    )
    .await;
    let idle = sign_in(addr, 7, FIREFOX, None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fresh = sign_in(addr, 7, CHROME, None).await;
    let mine = listed(addr, &fresh).await;
    assert_eq!(
        mine.len(),
        1,
        "an idle-expired session was listed: {mine:?}"
    );
    assert_eq!(mine[0]["client"]["browser"], "Chrome");
    assert_eq!(text_with(addr, "/whoami", &idle).await, "anonymous");
}

#[tokio::test]
async fn behind_a_proxy_the_client_network_is_the_forwarded_clients() {
    let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
    let addr = serve_your_sessions(SessionConfig::default(), store.clone(), true).await;
    let cookie = sign_in(addr, 7, FIREFOX, Some("2001:db8:aa:bb::17")).await;
    let mine = listed(addr, &cookie).await;
    assert_eq!(mine[0]["client"]["network"], "2001:db8:aa::/48");
    let cookie = sign_in(addr, 8, FIREFOX, Some("203.0.113.77")).await;
    assert_eq!(
        listed(addr, &cookie).await[0]["client"]["network"],
        "203.0.113.0/24"
    );
    for user in [7, 8] {
        for (_, record) in store.list_user(user).await.unwrap() {
            let json = serde_json::to_string(&record).unwrap();
            assert!(
                !json.contains("203.0.113.77") && !json.contains("aa:bb"),
                "{json}"
            );
        }
    }
}
