//! A real Redis for the tests that need one: `PORTCULLIS_TEST_REDIS` names it, each
//! test gets a connection on a random key prefix and deletes its keys at the end.
//! Without the variable the tests print `SKIPPED` and pass, unless
//! `PORTCULLIS_REQUIRE_REDIS` is set.

use fred::cmd;
use fred::interfaces::{ClientLike, KeysInterface};
use portcullis::redis::RedisConnection;

pub(crate) fn redis_url() -> Option<String> {
    match std::env::var("PORTCULLIS_TEST_REDIS") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_REDIS").is_none(),
                "PORTCULLIS_REQUIRE_REDIS is set but PORTCULLIS_TEST_REDIS is not"
            );
            eprintln!("SKIPPED: PORTCULLIS_TEST_REDIS is not set; Redis store tests did not run");
            None
        }
    }
}

fn random_prefix() -> String {
    format!("portcullis-test-{}", portcullis::upload::random_id())
}

/// A connection on a fresh prefix, or `None` when the tests are skipped.
pub(crate) async fn backend() -> Option<RedisConnection> {
    let url = redis_url()?;
    Some(
        RedisConnection::connect(&url, &random_prefix())
            .await
            .unwrap(),
    )
}

/// Every key under the connection's prefix.
pub(crate) async fn keys_of(backend: &RedisConnection) -> Vec<String> {
    let pattern = format!("{}:*", backend.prefix());
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    loop {
        let (next, batch): (String, Vec<String>) = backend
            .client()
            .custom(
                cmd!("SCAN"),
                vec![cursor.as_str(), "MATCH", &pattern, "COUNT", "1000"],
            )
            .await
            .unwrap();
        keys.extend(batch);
        if next == "0" {
            return keys;
        }
        cursor = next;
    }
}

/// Deletes every key under the connection's prefix.
pub(crate) async fn clean_up(backend: &RedisConnection) {
    for key in keys_of(backend).await {
        let _: i64 = backend.client().del(key).await.unwrap();
    }
}
