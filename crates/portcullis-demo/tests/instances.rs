//! Several instances behind one load balancer: two demos on different loopback ports
//! sharing PostgreSQL and Redis. Also what happens when Redis goes away: a Redis server
//! of this test's own is stopped and started again (the machine's is never touched).
//!
//! Runs when `PORTCULLIS_TEST_POSTGRES` and `PORTCULLIS_TEST_REDIS` are set (`.ci/run`
//! sets both); says it skipped otherwise.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pg::TestDatabase;
use common::{browser_like, client, csrf_token, login, register, Demo, PASSWORD, STRONG_KEY};
use serde_json::{json, Value};

fn redis_url() -> Option<String> {
    match std::env::var("PORTCULLIS_TEST_REDIS") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_REDIS").is_none(),
                "PORTCULLIS_REQUIRE_REDIS is set but PORTCULLIS_TEST_REDIS is not"
            );
            eprintln!(
                "SKIPPED: PORTCULLIS_TEST_REDIS is not set; multi-instance tests did not run"
            );
            None
        }
    }
}

/// Two instances on one PostgreSQL database and one Redis prefix.
async fn pair(extra: &[(&str, &str)]) -> Option<(TestDatabase, Demo, Demo)> {
    let redis = redis_url()?;
    let db = TestDatabase::create().await?;
    let prefix = format!("pctest-{}", portcullis::upload::random_id());
    let mut envs = vec![
        ("DATABASE_URL", db.url.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("PORTCULLIS_REDIS_PREFIX", prefix.as_str()),
        ("PORTCULLIS_SECRET_KEY", STRONG_KEY),
        ("PORTCULLIS_INSTANCES", "2"),
    ];
    envs.extend_from_slice(extra);
    let a = Demo::start(&envs);
    let b = Demo::start(&envs);
    Some((db, a, b))
}

async fn finish(db: TestDatabase, a: Demo, b: Demo) {
    drop(b);
    db.drop_now(a).await;
}

async fn page_of(http: &reqwest::Client, demo: &Demo) -> String {
    http.get(demo.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_session_started_on_one_instance_is_valid_on_the_other() {
    let Some((db, a, b)) = pair(&[]).await else {
        return;
    };
    let http = browser_like();
    assert_eq!(register(&http, &a, "roamer", PASSWORD).await.status(), 303);
    // Cookies belong to the host, not the port: the same jar serves both instances,
    // as one browser behind a load balancer would.
    let page = page_of(&http, &b).await;
    assert!(
        page.contains("Signed in as <strong>roamer</strong>"),
        "{page}"
    );
    let token = csrf_token(&page);
    let out = http
        .post(b.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let on_a = page_of(&http, &a).await;
    assert!(!on_a.contains("Signed in as"), "{on_a}");
    // And a login on B is valid on A.
    assert_eq!(login(&http, &b, "roamer", PASSWORD).await.status(), 303);
    assert!(page_of(&http, &a).await.contains("Signed in as"));
    finish(db, a, b).await;
}

async fn tokens(demo: &Demo) -> Value {
    client()
        .post(demo.url("/api/token"))
        .json(&json!({"username": "api", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn me(demo: &Demo, token: &str) -> u16 {
    client()
        .get(demo.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn revocations_and_refresh_reuse_cross_instances() {
    let Some((db, a, b)) = pair(&[]).await else {
        return;
    };
    register(&browser_like(), &a, "api", PASSWORD).await;
    let first = tokens(&a).await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(me(&b, access).await, 200);
    let revoke = client()
        .post(a.url("/api/token/revoke"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    assert_eq!(
        me(&b, access).await,
        401,
        "a token revoked on A was accepted on B"
    );

    let second = tokens(&b).await;
    let refresh = |demo: &Demo, token: &str| {
        let request = client()
            .post(demo.url("/api/token/refresh"))
            .json(&json!({"refresh_token": token}));
        async move { request.send().await.unwrap() }
    };
    let old_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    let third: Value = refresh(&a, &old_refresh).await.json().await.unwrap();
    assert_eq!(me(&b, third["access_token"].as_str().unwrap()).await, 200);
    // The retired refresh token, replayed on the other instance: the family dies.
    assert_eq!(refresh(&b, &old_refresh).await.status(), 401);
    assert_eq!(me(&a, third["access_token"].as_str().unwrap()).await, 401);
    finish(db, a, b).await;
}

#[tokio::test]
async fn the_login_limit_counts_both_instances_together() {
    let Some((db, a, b)) = pair(&[]).await else {
        return;
    };
    let attempt = |demo: &Demo| {
        let request = client()
            .post(demo.url("/api/token"))
            .json(&json!({"username": "target", "password": "not it at all"}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for n in 0..10 {
        let demo = if n % 2 == 0 { &a } else { &b };
        assert_eq!(attempt(demo).await, 401, "attempt {n}");
    }
    assert_eq!(attempt(&a).await, 429);
    assert_eq!(attempt(&b).await, 429);
    finish(db, a, b).await;
}

#[tokio::test]
async fn a_thousand_concurrent_comments_are_stored_exactly_once() {
    // A thousand posts from one address within a minute: past the general limit,
    // which is not what this test is about.
    let Some((db, a, b)) = pair(&[("PORTCULLIS_RATE_LIMITS", "bench")]).await else {
        return;
    };
    register(&browser_like(), &a, "api", PASSWORD).await;
    let token = tokens(&a).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = client();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..1000 {
        let url = if n % 2 == 0 {
            a.url("/api/comments")
        } else {
            b.url("/api/comments")
        };
        let http = http.clone();
        let token = token.clone();
        tasks.spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"body": format!("comment {n}")}))
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        });
    }
    let mut statuses = std::collections::HashMap::new();
    while let Some(status) = tasks.join_next().await {
        *statuses.entry(status.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&201), Some(&1000), "{statuses:?}");
    let mut conn = db.connect().await;
    let (total, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT body) FROM comments")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((total, distinct), (1000, 1000));
    drop(conn);
    finish(db, a, b).await;
}

/// A Redis server of this test's own, on a free port, keeping nothing on disk.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "our redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn when_redis_goes_away_requests_fail_closed_and_service_resumes() {
    if redis_url().is_none()
        || std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
    {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = OwnRedis::start(port);
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let demo = Demo::start(&[
        ("REDIS_URL", url.as_str()),
        ("PORTCULLIS_SECRET_KEY", STRONG_KEY),
    ]);
    let http = browser_like();
    assert_eq!(
        register(&http, &demo, "steady", PASSWORD).await.status(),
        303
    );
    assert_eq!(
        client()
            .get(demo.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    redis.stop();
    let started = Instant::now();
    for path in ["/", "/healthz"] {
        let response = http.get(demo.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
    }
    let login_attempt = client()
        .post(demo.url("/api/token"))
        .json(&json!({"username": "steady", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login_attempt.status(),
        503,
        "the limiter must not be skipped"
    );
    let body: Value = login_attempt.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(started.elapsed() < Duration::from_secs(20), "requests hung");

    // Redis returns (empty: it keeps nothing on disk); service resumes unrestarted.
    let _redis = OwnRedis::start(port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client()
            .get(demo.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "service did not resume");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        login(&browser_like(), &demo, "steady", PASSWORD)
            .await
            .status(),
        303
    );
    assert!(page_of(&browser_like(), &demo)
        .await
        .contains("What people are saying"));
}

#[tokio::test]
async fn killed_database_connections_are_replaced_and_nothing_is_half_written() {
    let Some((db, a, b)) = pair(&[]).await else {
        return;
    };
    let http = browser_like();
    register(&http, &a, "writer", PASSWORD).await;
    let mut admin = db.connect().await;
    // Kill every connection the instances hold to this database.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let mut stored = 0;
    for n in 0..5 {
        let response = common::comment(&http, &a, &format!("after kill {n}")).await;
        let status = response.status().as_u16();
        assert!(status == 303 || status == 503, "{status}");
        if status == 303 {
            stored += 1;
        }
    }
    assert!(stored >= 4, "the pool did not reconnect");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM comments")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        count, stored,
        "an acknowledged write is missing or an unacknowledged one exists"
    );
    drop(admin);
    finish(db, a, b).await;
}

#[test]
fn an_unreachable_redis_stops_start_up_with_one_line() {
    let started = Instant::now();
    let (code, stderr) = common::refuse(&[("REDIS_URL", "redis://127.0.0.1:1")]);
    assert_ne!(code, Some(0));
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("PORTCULLIS_SECRET_KEY"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("redis"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// Password guesses spread over two instances meet one per-account delay: the
/// failure counts live in Redis, not in each instance.
#[tokio::test]
async fn guesses_spread_over_instances_meet_one_account_delay() {
    // The per-address limits lifted (every test client is 127.0.0.1), so that what
    // answers is the per-account delay.
    let Some((db, a, b)) = pair(&[("PORTCULLIS_RATE_LIMITS", "bench")]).await else {
        return;
    };
    assert_eq!(
        register(&browser_like(), &a, "target", PASSWORD)
            .await
            .status(),
        303
    );
    let mut statuses = Vec::new();
    for i in 0..13 {
        let demo = if i % 2 == 0 { &a } else { &b };
        let status = client()
            .post(demo.url("/api/token"))
            .json(&json!({ "username": "target", "password": "guess guess guess" }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        statuses.push(status);
    }
    // Ten failures are free in all, the eleventh starts the delay, and from then on
    // either instance makes the next attempt wait: each alone has seen six or seven.
    assert_eq!(&statuses[..11], &[401; 11], "{statuses:?}");
    assert_eq!(&statuses[11..], &[429, 429], "{statuses:?}");
    finish(db, a, b).await;
}
