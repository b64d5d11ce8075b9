//! Every revocation store here keeps every rule of the conformance suite
//! (`portcullis::jwt::revocation::conformance`): the in-memory store, and the Redis
//! store against a real server.
//!
//! Set `PORTCULLIS_TEST_REDIS` (e.g. `redis://127.0.0.1:6379`); without it the Redis
//! run prints `SKIPPED` and passes, unless `PORTCULLIS_REQUIRE_REDIS` is set. It uses
//! a random key prefix and deletes its keys at the end.

use portcullis::jwt::revocation::conformance;
use portcullis::jwt::MemoryRevocationStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_every_revocation_rule() {
    conformance::run(&MemoryRevocationStore::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_sharded_memory_store_keeps_every_revocation_rule() {
    // Little room and several shards: the rules hold whatever the store's shape.
    conformance::run(&MemoryRevocationStore::new(3 * 4096)).await;
}

#[cfg(feature = "redis")]
mod redis {
    use fred::interfaces::{ClientLike as _, KeysInterface as _};
    use portcullis::jwt::revocation::conformance;
    use portcullis::jwt::RedisRevocationStore;
    use portcullis::redis::RedisConnection;

    /// A connection on a fresh prefix, or `None` when the Redis tests are skipped.
    async fn connection() -> Option<RedisConnection> {
        let url = match std::env::var("PORTCULLIS_TEST_REDIS") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var_os("PORTCULLIS_REQUIRE_REDIS").is_none(),
                    "PORTCULLIS_REQUIRE_REDIS is set but PORTCULLIS_TEST_REDIS is not"
                );
                eprintln!("SKIPPED: PORTCULLIS_TEST_REDIS is not set; the Redis revocation store was not checked");
                return None;
            }
        };
        let prefix = format!("portcullis-test-{}", portcullis::upload::random_id());
        Some(RedisConnection::connect(&url, &prefix).await.unwrap())
    }

    /// Deletes every key under the connection's prefix.
    async fn clean_up(redis: &RedisConnection) {
        let pattern = format!("{}:*", redis.prefix());
        let mut cursor = "0".to_owned();
        loop {
            let (next, keys): (String, Vec<String>) = redis
                .client()
                .custom(
                    fred::cmd!("SCAN"),
                    vec![cursor.as_str(), "MATCH", &pattern, "COUNT", "1000"],
                )
                .await
                .unwrap();
            for key in keys {
                let _: i64 = redis.client().del(key).await.unwrap();
            }
            if next == "0" {
                return;
            }
            cursor = next;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_redis_store_keeps_every_revocation_rule() {
        let Some(redis) = connection().await else {
            return;
        };
        conformance::run(&RedisRevocationStore::new(redis.clone())).await;
        clean_up(&redis).await;
    }
}
