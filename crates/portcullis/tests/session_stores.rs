//! Every session store here against the conformance suite that third-party stores run
//! (`portcullis::session::store::conformance`): memory, SQLite and Redis keep the same
//! rules, the logout race included.
//!
//! The Redis store needs `PORTCULLIS_TEST_REDIS` (e.g. `redis://127.0.0.1:6379`);
//! without it its test prints `SKIPPED` and passes, unless `PORTCULLIS_REQUIRE_REDIS`
//! is set. It uses a random key prefix and deletes its keys at the end.

#![cfg(feature = "session")]

use portcullis::session::store::conformance;
use portcullis::session::MemorySessionStore;

/// Small enough that the capacity check overflows it several times over.
const CAPACITY: usize = 32;

#[tokio::test]
async fn memory_store_keeps_the_session_store_rules() {
    let store = MemorySessionStore::new(CAPACITY);
    conformance::run(&store).await;
    conformance::anonymous_records_never_evict_signed_in(&store, CAPACITY).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_store_keeps_the_session_store_rules() {
    use portcullis::session::SqliteSessionStore;

    let dir = tempfile::tempdir().unwrap();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("sessions.db").display()
    ))
    .await
    .unwrap();
    let store = SqliteSessionStore::new(pool)
        .with_capacity(CAPACITY)
        .unwrap();
    store.migrate().await.unwrap();
    conformance::run(&store).await;
    conformance::anonymous_records_never_evict_signed_in(&store, CAPACITY).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_store_keeps_the_session_store_rules() {
    use fred::interfaces::{ClientLike, KeysInterface};
    use portcullis::redis::RedisConnection;
    use portcullis::session::RedisSessionStore;

    let url = match std::env::var("PORTCULLIS_TEST_REDIS") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_REDIS").is_none(),
                "PORTCULLIS_REQUIRE_REDIS is set but PORTCULLIS_TEST_REDIS is not"
            );
            eprintln!("SKIPPED: PORTCULLIS_TEST_REDIS is not set; the Redis store did not run");
            return;
        }
    };
    let prefix = format!("portcullis-test-{}", portcullis::upload::random_id());
    let redis = RedisConnection::connect(&url, &prefix).await.unwrap();
    let store = RedisSessionStore::new(redis.clone());
    conformance::run(&store).await;
    // Redis holds no cap of its own (its `maxmemory` policy is the operator's), so
    // the capacity rule holds trivially; run it all the same.
    conformance::anonymous_records_never_evict_signed_in(&store, CAPACITY).await;

    // Nothing left behind: the suite deletes what it wrote, and the rest goes here.
    let keys: Vec<String> = redis
        .client()
        .custom(fred::cmd!("KEYS"), vec![format!("{prefix}:*")])
        .await
        .unwrap();
    for key in keys {
        let _: i64 = redis.client().del(key).await.unwrap();
    }
}
