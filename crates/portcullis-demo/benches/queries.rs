//! The demo's query path alone, without HTTP: `cargo bench -p portcullis-demo --bench queries`.
//!
//! What a read of `/` and a `POST /api/comments` cost in the data layer, and what the
//! choices behind it change: the demo's typed SQLite pools against sqlx's `Any` driver
//! (which the demo used before) running the same statement on the same file, and a
//! commit under `synchronous = NORMAL` (the demo's) against `FULL` (SQLite's default).
//! BENCHMARKS.md holds the figures.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::config::Settings;
use portcullis_demo::db::{Comment, Database};
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, SqlitePool};

const NEWEST: &str = "SELECT c.id, u.username, c.body, c.created_at \
     FROM comments c JOIN users u ON u.id = c.user_id \
     ORDER BY c.created_at DESC, c.id DESC LIMIT $1";

const INSERT: &str =
    "INSERT INTO comments (user_id, body, created_at) VALUES ($1, $2, $3) RETURNING id";

/// The demo's database in `dir`, with a user and 200 comments.
async fn seeded(dir: &std::path::Path) -> (Database, i64) {
    let data_dir = dir.display().to_string();
    let settings = Settings::from_lookup(|name| match name {
        "PORTCULLIS_DATA_DIR" => Some(data_dir.clone()),
        _ => None,
    })
    .expect("settings");
    let db = Database::open(&settings).await.expect("database");
    let user = db
        .create_user("bench", "x")
        .await
        .expect("user")
        .expect("new user");
    for i in 0..200 {
        db.add_comment(user, &format!("Comment number {i}, of a realistic length."))
            .await
            .expect("comment");
    }
    (db, user)
}

/// A typed pool of one connection on the same file, with the demo's settings and
/// `synchronous`.
async fn typed(dir: &std::path::Path, synchronous: SqliteSynchronous) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("portcullis.db"))
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(std::time::Duration::from_secs(5))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("typed pool")
}

/// An `Any` pool of one connection on the same file, with the demo's settings.
async fn any(dir: &std::path::Path) -> AnyPool {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rw", dir.join("portcullis.db").display());
    AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = NORMAL",
                    "PRAGMA busy_timeout = 5000",
                    "PRAGMA foreign_keys = ON",
                ] {
                    sqlx::Executor::execute(&mut *conn, pragma).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .expect("any pool")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn queries(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary folder");
    let (db, user) = runtime.block_on(seeded(dir.path()));
    let any = runtime.block_on(any(dir.path()));
    let full = runtime.block_on(typed(dir.path(), SqliteSynchronous::Full));

    let mut group = c.benchmark_group("queries");
    for limit in [50_i64, 1] {
        group.bench_function(format!("newest_{limit}/demo"), |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(db.newest_comments(limit).await.expect("read")) });
        });
        group.bench_function(format!("newest_{limit}/any"), |b| {
            b.to_async(&runtime).iter(|| async {
                let rows: Vec<Comment> = sqlx::query_as(NEWEST)
                    .bind(limit)
                    .fetch_all(&any)
                    .await
                    .expect("read");
                black_box(rows)
            });
        });
    }
    group.bench_function("insert/demo", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(
                db.add_comment(user, "A benchmark comment.")
                    .await
                    .expect("write"),
            )
        });
    });
    group.bench_function("insert/any_normal", |b| {
        b.to_async(&runtime).iter(|| async {
            let id: i64 = sqlx::query_scalar(INSERT)
                .bind(user)
                .bind("A benchmark comment.")
                .bind(now())
                .fetch_one(&any)
                .await
                .expect("write");
            black_box(id)
        });
    });
    group.bench_function("insert/sqlite_full", |b| {
        b.to_async(&runtime).iter(|| async {
            let id: i64 = sqlx::query_scalar(INSERT)
                .bind(user)
                .bind("A benchmark comment.")
                .bind(now())
                .fetch_one(&full)
                .await
                .expect("write");
            black_box(id)
        });
    });
    group.finish();
}

/// criterion_group! defines a public function that cannot carry documentation, so it
/// lives in a private module that allows that.
#[allow(missing_docs, unreachable_pub)]
mod groups {
    use super::*;

    criterion_group! {
        name = benches;
        config = Criterion::default()
            .warm_up_time(std::time::Duration::from_secs(1))
            .measurement_time(std::time::Duration::from_secs(4));
        targets = queries
    }
}

criterion_main!(groups::benches);
