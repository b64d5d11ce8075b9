//! The demo on PostgreSQL (`DATABASE_URL=postgres://…`): the same flows as on SQLite,
//! each test in a database of its own, created and dropped here. Runs when
//! `PORTCULLIS_TEST_POSTGRES` names a server (`.ci/run` sets it); says it skipped
//! otherwise, and fails if `PORTCULLIS_REQUIRE_POSTGRES` is set.

mod common;

use common::pg::TestDatabase;
use common::{browser_like, comment, login, register, Demo, PASSWORD};

#[tokio::test]
async fn accounts_comments_api_and_uploads_work_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let demo = Demo::start(&[("DATABASE_URL", &db.url)]);
    let http = browser_like();
    assert_eq!(
        register(&http, &demo, "pg-user", PASSWORD).await.status(),
        303
    );
    assert_eq!(
        register(&browser_like(), &demo, "pg-user", PASSWORD)
            .await
            .status(),
        409
    );
    for body in [
        "first",
        "'; DROP TABLE users;--",
        "<script>alert(1)</script>",
    ] {
        assert_eq!(comment(&http, &demo, body).await.status(), 303);
    }
    let page = http
        .get(demo.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<p>'; DROP TABLE users;--</p>"));
    assert!(!page.contains("<script>alert"));
    assert_eq!(
        login(&browser_like(), &demo, "pg-user", "wrong password here")
            .await
            .status(),
        401
    );

    let tokens: serde_json::Value = common::client()
        .post(demo.url("/api/token"))
        .json(&serde_json::json!({"username": "pg-user", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let created = common::client()
        .post(demo.url("/api/comments"))
        .bearer_auth(access)
        .json(&serde_json::json!({"body": "from the API"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let list: Vec<serde_json::Value> = common::client()
        .get(demo.url("/api/comments?limit=2"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["body"], "from the API");

    // An upload: the row is in PostgreSQL, the bytes in the upload folder.
    let token = common::token_from(&http, &demo, "/files").await;
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    )
    .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part(
            "file",
            reqwest::multipart::Part::bytes(png.clone()).file_name("pg.png"),
        );
    let uploaded = http
        .post(demo.url("/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 303);

    let mut conn = db.connect().await;
    let (users, comments, files): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM comments), (SELECT count(*) FROM files)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((users, comments, files), (1, 4, 1));
    let id: String = sqlx::query_scalar("SELECT id FROM files")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let download = http
        .get(demo.url(&format!("/files/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(download.bytes().await.unwrap().as_ref(), png.as_slice());
    drop(conn);
    db.drop_now(demo).await;
}

#[tokio::test]
async fn both_migrations_describe_the_same_tables() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let demo = Demo::start(&[("DATABASE_URL", &db.url)]);
    let mut pg = db.connect().await;
    let mut pg_columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name IN ('users', 'comments', 'files')",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap();
    pg_columns.sort();
    drop(pg);

    // The SQLite side, from a demo on the embedded default.
    let lite = Demo::start(&[]);
    let mut sqlite = common::database(&lite).await;
    let mut lite_columns = Vec::new();
    for table in ["users", "comments", "files"] {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(table)
            .fetch_all(&mut sqlite)
            .await
            .unwrap();
        lite_columns.extend(names.into_iter().map(|n| (table.to_owned(), n)));
    }
    lite_columns.sort();
    assert_eq!(pg_columns, lite_columns);
    db.drop_now(demo).await;
}

#[test]
fn an_unreachable_database_stops_start_up_with_one_line() {
    let (code, stderr) =
        common::refuse(&[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")]);
    assert_ne!(code, Some(0));
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("PORTCULLIS_SECRET_KEY"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("database"), "{stderr}");
}

#[tokio::test]
async fn a_name_differing_only_in_case_cannot_register_again_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let demo = Demo::start(&[("DATABASE_URL", &db.url)]);
    common::usernames_differing_in_case_are_one_account(&demo).await;
    let mut pg = db.connect().await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut pg)
        .await
        .unwrap();
    assert_eq!(users, 1);
    let direct = sqlx::query(
        "INSERT INTO users (username, password_hash, created_at) VALUES ('ALICE', 'x', 'now')",
    )
    .execute(&mut pg)
    .await;
    assert!(direct.is_err());
    drop(pg);
    db.drop_now(demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_cannot_pass_the_quota_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let demo = Demo::start(&[("DATABASE_URL", &db.url)]);
    let accepted = common::race_the_quota(&demo, "racer").await;
    let mut conn = db.connect().await;
    let (rows, bytes): (i64, i64) =
        sqlx::query_as("SELECT count(*), COALESCE(SUM(size), 0)::BIGINT FROM files")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    drop(conn);
    assert_eq!(accepted, 1, "exactly one of the eight fits");
    assert_eq!(rows, 10);
    assert!(bytes <= 50 * 1024 * 1024, "{bytes} bytes stored");
    db.drop_now(demo).await;
}
