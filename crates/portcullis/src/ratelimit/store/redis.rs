//! The Redis store: one GCRA step per check, as an atomic script on Redis's clock, so
//! that every instance of an app counts in the same buckets.

use std::time::Duration;

use fred::types::scripts::Script;
use futures_util::future::BoxFuture;

use super::{RateLimitStore, RateLimitStoreError};
use crate::ratelimit::{Decision, Quota};
use crate::redis::RedisConnection;

/// One GCRA step, as `governor` takes it in [`MemoryRateLimitStore`](super::MemoryRateLimitStore),
/// on Redis's clock. KEYS: the bucket. ARGV: the interval between two requests (µs, at
/// least 1), the burst. The bucket holds the theoretical arrival time in Unix ms (with
/// a µs fraction) and expires when the bucket is full again. Returns allowed (1/0),
/// remaining, reset-after (µs), retry-after (µs).
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tau = interval * (burst - 1)
local tat = now
local stored = tonumber(redis.call('GET', KEYS[1]) or '')
if stored then tat = math.floor(stored * 1000 + 0.5) end
local earliest = tat - tau
if now < earliest then
  local retry = earliest - now
  return {0, 0, retry + tau, retry}
end
local next_tat = math.max(tat, now) + interval
redis.call('SET', KEYS[1], string.format('%.3f', next_tat / 1000),
  'PX', math.ceil((next_tat - now) / 1000))
local remaining = math.floor(math.min(now + tau + interval - next_tat, tau + interval) / interval)
return {1, remaining, interval * (burst - remaining), 0}
";

/// Rate-limit buckets in Redis, shared by every instance: one atomic script per check
/// (GCRA, with Redis's clock), the same answers as
/// [`MemoryRateLimitStore`](super::MemoryRateLimitStore) (both pass the
/// [`conformance`](super::conformance) suite). A bucket is
/// `{prefix}:rl:{key}`: its theoretical arrival time in Unix ms, expiring the moment the
/// bucket is full again.
///
/// ```no_run
/// # async fn run(redis: portcullis::redis::RedisConnection) {
/// use std::sync::Arc;
/// use portcullis::ratelimit::RateLimitConfig;
///
/// let layer = RateLimitConfig::default().layer(Arc::new(redis.rate_limits())).unwrap();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisRateLimitStore {
    connection: RedisConnection,
}

impl RateLimitStore for RedisRateLimitStore {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: &'a Quota,
    ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>> {
        static SCRIPT: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::from_lua(GCRA));
        Box::pin(async move {
            RateLimitStoreError::check_quota(quota)?;
            let burst = quota.burst();
            // Whole microseconds keep the script's arithmetic exact in Lua's doubles.
            let interval_us = quota.interval().as_micros().max(1);
            let keys = vec![self.connection.key("rl", key)];
            let args = vec![interval_us.to_string(), burst.to_string()];
            let answer: Vec<i64> = self
                .connection
                .script(&SCRIPT, keys, args)
                .await
                .map_err(|failure| RateLimitStoreError::Unavailable(failure.to_string()))?;
            let &[allowed, remaining, reset_us, retry_us] = answer.as_slice() else {
                return Err(RateLimitStoreError::Unavailable(
                    "Redis: unexpected answer from the rate-limit script".to_owned(),
                ));
            };
            let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or_default());
            Ok(if allowed == 1 {
                Decision::allowed(
                    burst,
                    u32::try_from(remaining).unwrap_or_default().min(burst),
                    micros(reset_us),
                )
            } else {
                Decision::refused(burst, micros(reset_us), micros(retry_us))
            })
        })
    }
}

impl RedisRateLimitStore {
    /// The store on `connection` (what [`RedisConnection::rate_limits`] returns).
    pub fn new(connection: RedisConnection) -> Self {
        Self { connection }
    }
}

impl RedisConnection {
    /// The rate-limit store on this connection: buckets under `{prefix}:rl:{key}`.
    pub fn rate_limits(&self) -> RedisRateLimitStore {
        RedisRateLimitStore::new(self.clone())
    }
}
