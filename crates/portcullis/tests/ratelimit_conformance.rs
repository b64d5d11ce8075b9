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

/// The two GCRAs side by side on generated sequences: each check goes to both stores
/// at once, so that both see the same moment, and their answers must agree.
#[cfg(feature = "redis")]
mod memory_and_redis_agree {
    use std::time::Duration;

    use portcullis::ratelimit::{Decision, MemoryRateLimitStore, Quota, RateLimitStore};
    use proptest::prelude::*;

    use super::support;

    /// Three requests, then one back every 100 ms.
    const QUOTA: Quota = Quota::new(3, Duration::from_millis(300));

    /// Two clocks read a fraction of a millisecond apart can sit on either side of
    /// the moment a request comes back; only there may the stores differ.
    const BOUNDARY: Duration = Duration::from_millis(10);

    fn agree(memory: &Decision, redis: &Decision) -> Result<(), String> {
        if memory.allowed != redis.allowed {
            let refusal = if memory.allowed { redis } else { memory };
            let wait = refusal.retry_after.unwrap_or(Duration::MAX);
            if wait > BOUNDARY {
                return Err(format!("memory {memory:?} but redis {redis:?}"));
            }
        } else if memory.allowed && memory.remaining.abs_diff(redis.remaining) > 1 {
            return Err(format!("remaining: memory {memory:?} but redis {redis:?}"));
        } else if !memory.allowed {
            let (a, b) = (memory.retry_after, redis.retry_after);
            let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
            if a.abs_diff(b) > BOUNDARY {
                return Err(format!(
                    "retry after: memory {memory:?} but redis {redis:?}"
                ));
            }
        }
        Ok(())
    }

    proptest! {
        // Each case waits in real time (neither store takes a clock), about half a
        // second.
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn the_memory_and_redis_gcras_decide_alike_on_any_sequence(
            steps in proptest::collection::vec((0usize..3, 0u64..5), 5..30),
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            let outcome: Result<(), String> = runtime.block_on(async {
                let Some(redis) = support::redis::backend().await else {
                    return Ok(());
                };
                let redis_store = redis.rate_limits();
                let memory_store = MemoryRateLimitStore::new();
                let mut outcome = Ok(());
                for (index, (key, wait)) in steps.iter().enumerate() {
                    tokio::time::sleep(Duration::from_millis(wait * 25)).await;
                    let key = format!("agree-{key}");
                    let (memory, redis) = tokio::join!(
                        memory_store.check(&key, &QUOTA),
                        redis_store.check(&key, &QUOTA)
                    );
                    let (memory, redis) = (memory.unwrap(), redis.unwrap());
                    if let Err(why) = agree(&memory, &redis) {
                        outcome = Err(format!("step {index} ({key}): {why}"));
                        break;
                    }
                }
                support::redis::clean_up(&redis).await;
                outcome
            });
            prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        }
    }
}
