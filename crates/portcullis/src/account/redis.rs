//! Failure counts in Redis, shared by every instance.

use std::time::Duration;

use fred::interfaces::KeysInterface as _;
use futures_util::future::BoxFuture;

use super::throttle::{ThrottleConfig, ThrottleError, ThrottleStore};
use crate::redis::{script, RedisConnection};

/// One failure, on Redis's clock. KEYS: the account's hash. ARGV: free failures, the
/// base delay (ms), the longest delay (ms), how long a count lasts (ms). The delay is
/// [`ThrottleConfig::delay_after`]'s arithmetic (doubles hold 2^31 s exactly). Returns
/// the count.
const FAILURE: &str = r"
local free = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local forget = tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
local delay = 0
if count > free then
  delay = math.min(base * 2 ^ math.min(count - free, 31), max)
end
redis.call('HSET', KEYS[1], 'until', string.format('%d', now + delay))
redis.call('PEXPIRE', KEYS[1], forget)
return count
";

/// How long the account must still wait, in ms, on Redis's clock. KEYS: the hash.
const WAIT: &str = r"
local blocked = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if blocked > now then return blocked - now end
return 0
";

/// Per-account failure counts in Redis: every instance of an app delays the same
/// account alike, so guesses spread over instances meet one delay. An account is the
/// hash `{prefix}:throttle:{name}:{account}` (`count`, `until`), expiring
/// [`ThrottleConfig::forget_after`] after its last failure; each step is one atomic
/// script on Redis's clock.
///
/// ```no_run
/// # async fn run(redis: portcullis::redis::RedisConnection) {
/// use std::sync::Arc;
/// use portcullis::account::{AccountThrottle, ThrottleConfig};
///
/// let sign_in = AccountThrottle::shared(
///     "sign-in",
///     ThrottleConfig::default(),
///     Arc::new(redis.account_throttles()),
/// );
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisThrottleStore {
    connection: RedisConnection,
}

impl RedisThrottleStore {
    pub(crate) fn new(connection: RedisConnection) -> Self {
        Self { connection }
    }

    fn key(&self, key: &str) -> String {
        self.connection.key("throttle", key)
    }
}

fn unavailable(failure: impl std::fmt::Display) -> ThrottleError {
    ThrottleError::Unavailable(failure.to_string())
}

fn ms(duration: Duration) -> String {
    duration.as_millis().to_string()
}

impl ThrottleStore for RedisThrottleStore {
    fn wait(&self, key: &str) -> BoxFuture<'_, Result<Duration, ThrottleError>> {
        let keys = vec![self.key(key)];
        Box::pin(async move {
            let wait: i64 = self
                .connection
                .script(script!(WAIT), keys, vec![])
                .await
                .map_err(unavailable)?;
            Ok(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
        })
    }

    fn failure<'a>(
        &'a self,
        key: &'a str,
        config: &'a ThrottleConfig,
    ) -> BoxFuture<'a, Result<u32, ThrottleError>> {
        Box::pin(async move {
            let args = vec![
                config.free_failures.to_string(),
                ms(config.base_delay),
                ms(config.max_delay),
                config.forget_after.as_millis().max(1).to_string(),
            ];
            let count: i64 = self
                .connection
                .script(script!(FAILURE), vec![self.key(key)], args)
                .await
                .map_err(unavailable)?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ThrottleError>> {
        Box::pin(async move {
            self.connection
                .run(self.connection.client().del::<(), _>(self.key(key)))
                .await
                .map_err(unavailable)
        })
    }
}
