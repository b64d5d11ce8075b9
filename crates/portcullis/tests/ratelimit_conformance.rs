//! Every rate-limit store here through the one conformance suite
//! (`portcullis::ratelimit::store::conformance`): the in-process GCRA of `governor`
//! and the Redis Lua script must give the layer the same answers.
//!
//! The Redis run needs `PORTCULLIS_TEST_REDIS` (e.g. `redis://127.0.0.1:6379`); without
//! it, it prints `SKIPPED` and passes, unless `PORTCULLIS_REQUIRE_REDIS` is set. It uses
//! a random key prefix and deletes its keys at the end.

use portcullis::ratelimit::store::conformance;
use portcullis::ratelimit::MemoryRateLimitStore;

mod support;

// Multi-thread: the suite's concurrent checks then really run in parallel.
#[tokio::test(flavor = "multi_thread")]
async fn the_memory_store_keeps_every_rate_limit_rule() {
    conformance::run(MemoryRateLimitStore::new()).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn the_redis_store_keeps_every_rate_limit_rule() {
    let Some(redis) = support::redis::backend().await else {
        return;
    };
    conformance::run(redis.rate_limits()).await;
    support::redis::clean_up(&redis).await;
}
