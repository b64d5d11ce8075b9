//! The per-account delay after repeated failures: exponential and bounded, never a
//! lockout that only an administrator lifts.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::expiring::{ExpiringMap, WhenFull};

/// How failures slow an account down.
///
/// After `free_failures` consecutive failures, each further attempt must wait
/// `base_delay × 2^(failures − free_failures)`, at most `max_delay`; a success
/// clears the count, and so does `forget_after` without a failure. An attacker
/// guessing one account's password gets a few dozen guesses a day instead of
/// thousands; the real owner waits at most `max_delay`, and never for a lock an
/// administrator must lift, so that locking users out is no attack.
///
/// ```
/// use std::time::Duration;
/// use portcullis::account::ThrottleConfig;
///
/// let config = ThrottleConfig::default();
/// assert_eq!(config.delay_after(5), Duration::ZERO);
/// assert_eq!(config.delay_after(6), Duration::from_secs(2));
/// assert_eq!(config.delay_after(7), Duration::from_secs(4));
/// assert_eq!(config.delay_after(40), Duration::from_secs(15 * 60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures allowed before any delay (5).
    pub free_failures: u32,
    /// The first delay (1 s, doubled at once: 2 s after the sixth failure).
    pub base_delay: Duration,
    /// The longest delay (15 minutes).
    pub max_delay: Duration,
    /// How long a count lasts without a new failure (24 hours).
    pub forget_after: Duration,
    /// Accounts tracked at once (100,000; the entries closest to expiry go first).
    pub capacity: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(24 * 3600),
            capacity: 100_000,
        }
    }
}

impl ThrottleConfig {
    /// The delay owed after `failures` consecutive failures.
    pub fn delay_after(&self, failures: u32) -> Duration {
        if failures <= self.free_failures {
            return Duration::ZERO;
        }
        let exponent = (failures - self.free_failures).min(31);
        self.base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay)
    }
}

/// Why an attempt may not go on now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleError {
    /// The account is delayed: try again after this long.
    #[error("too many failures: wait {0:?}")]
    Wait(Duration),
    /// The store of failure counts did not answer; the attempt is refused (fail
    /// closed), since an unreachable store must not lift every delay.
    #[error("the throttle store is unavailable: {0}")]
    Unavailable(String),
}

/// Where failure counts live: [`MemoryThrottleStore`] for one instance, or a store
/// every instance shares (`RedisThrottleStore`, feature `redis`), so that an attacker
/// spreading guesses over instances meets the same delay.
///
/// Keys come namespaced from [`AccountThrottle`] (`{name}:{account}`). Both stores
/// apply [`ThrottleConfig::delay_after`] atomically with the count, on one clock.
pub trait ThrottleStore: Send + Sync + fmt::Debug + 'static {
    /// How long `key` must still wait (zero when it may try).
    fn wait(&self, key: &str) -> BoxFuture<'_, Result<Duration, ThrottleError>>;
    /// Counts a failure of `key` under `config`; the count after it.
    fn failure<'a>(
        &'a self,
        key: &'a str,
        config: &'a ThrottleConfig,
    ) -> BoxFuture<'a, Result<u32, ThrottleError>>;
    /// Forgets `key`'s failures.
    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ThrottleError>>;
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// Unix milliseconds before which the account takes no attempt.
    blocked_until: i64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Failure counts in this process, at most [`ThrottleConfig::capacity`] of them
/// (the entries closest to expiry go first).
///
/// ```
/// use std::sync::Arc;
/// use portcullis::account::{AccountThrottle, MemoryThrottleStore, ThrottleConfig};
///
/// let store = Arc::new(MemoryThrottleStore::new(100_000));
/// let sign_in = AccountThrottle::shared("sign-in", ThrottleConfig::default(), store.clone());
/// let resets = AccountThrottle::shared("resets", ThrottleConfig::default(), store);
/// # let _ = (sign_in, resets);
/// ```
#[derive(Debug)]
pub struct MemoryThrottleStore {
    accounts: Mutex<ExpiringMap<String, Failures, i64>>,
}

impl MemoryThrottleStore {
    /// A store of at most `capacity` accounts.
    pub fn new(capacity: usize) -> Self {
        Self {
            accounts: Mutex::new(ExpiringMap::new(capacity.max(1), WhenFull::EvictSoonest)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringMap<String, Failures, i64>> {
        self.accounts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ThrottleStore for MemoryThrottleStore {
    fn wait(&self, key: &str) -> BoxFuture<'_, Result<Duration, ThrottleError>> {
        let now = now_ms();
        let wait = match self.lock().get(key, now) {
            Some(failures) if failures.blocked_until > now => {
                Duration::from_millis(u64::try_from(failures.blocked_until - now).unwrap_or(0))
            }
            _ => Duration::ZERO,
        };
        Box::pin(std::future::ready(Ok(wait)))
    }

    fn failure<'a>(
        &'a self,
        key: &'a str,
        config: &'a ThrottleConfig,
    ) -> BoxFuture<'a, Result<u32, ThrottleError>> {
        let now = now_ms();
        let mut accounts = self.lock();
        let count = accounts
            .get(key, now)
            .map_or(0, |f| f.count)
            .saturating_add(1);
        let entry = Failures {
            count,
            blocked_until: now.saturating_add(millis(config.delay_after(count))),
        };
        // Evicting the entry closest to expiry when full: the capacity bounds memory
        // under a flood of distinct accounts.
        let expires = now.saturating_add(millis(config.forget_after));
        let _ = accounts.insert(key.to_owned(), entry, expires, now);
        Box::pin(std::future::ready(Ok(count)))
    }

    fn clear<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), ThrottleError>> {
        self.lock().remove(key);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Per-account failure counts and the delays they impose, in a [`ThrottleStore`].
///
/// ```
/// use portcullis::account::{AccountThrottle, ThrottleConfig, ThrottleError};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let throttle = AccountThrottle::new(ThrottleConfig { free_failures: 2, ..Default::default() });
/// assert!(throttle.check("user:7").await.is_ok());
/// assert!(!throttle.failure("user:7").await.unwrap());
/// assert!(!throttle.failure("user:7").await.unwrap());
/// // The third failure starts a delay: attempts are refused until it passes.
/// assert!(throttle.failure("user:7").await.unwrap());
/// let Err(ThrottleError::Wait(wait)) = throttle.check("user:7").await else { panic!() };
/// assert!(wait.as_secs() >= 1);
/// assert!(throttle.check("user:8").await.is_ok());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct AccountThrottle {
    name: String,
    config: ThrottleConfig,
    store: Arc<dyn ThrottleStore>,
}

impl AccountThrottle {
    /// A throttle with `config`, counting in memory for this instance alone.
    pub fn new(config: ThrottleConfig) -> Self {
        let store = Arc::new(MemoryThrottleStore::new(config.capacity));
        Self::shared("throttle", config, store)
    }

    /// A throttle with `config` counting in `store` under the namespace `name`
    /// (several throttles can share one store).
    pub fn shared(
        name: impl Into<String>,
        config: ThrottleConfig,
        store: Arc<dyn ThrottleStore>,
    ) -> Self {
        Self {
            name: name.into(),
            config,
            store,
        }
    }

    fn key(&self, account: &str) -> String {
        format!("{}:{account}", self.name)
    }

    /// `Ok` when `account` may try now; otherwise how long it must wait. Check before
    /// verifying anything: a delayed attempt costs no password verification.
    pub async fn check(&self, account: &str) -> Result<(), ThrottleError> {
        match self.store.wait(&self.key(account)).await? {
            wait if wait.is_zero() => Ok(()),
            wait => Err(ThrottleError::Wait(wait)),
        }
    }

    /// Counts a failure of `account`; `true` when it starts a delay (the first
    /// failure past the free ones: record a `lockout_started` event).
    pub async fn failure(&self, account: &str) -> Result<bool, ThrottleError> {
        let count = self.store.failure(&self.key(account), &self.config).await?;
        Ok(count == self.config.free_failures.saturating_add(1))
    }

    /// Clears `account`'s failures after a success.
    pub async fn success(&self, account: &str) -> Result<(), ThrottleError> {
        self.store.clear(&self.key(account)).await
    }
}

impl Default for AccountThrottle {
    fn default() -> Self {
        Self::new(ThrottleConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_are_capped() {
        let config = ThrottleConfig::default();
        let delays: Vec<u64> = (5..=12).map(|n| config.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [0, 2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(config.delay_after(u32::MAX), config.max_delay);
    }

    #[tokio::test]
    async fn a_flood_of_accounts_stays_bounded_and_success_clears() {
        let store = Arc::new(MemoryThrottleStore::new(100));
        let throttle = AccountThrottle::shared(
            "t",
            ThrottleConfig {
                free_failures: 0,
                ..Default::default()
            },
            store.clone(),
        );
        for i in 0..10_000 {
            throttle.failure(&format!("user:{i}")).await.unwrap();
        }
        assert!(store.lock().len() <= 100);
        throttle.failure("alice").await.unwrap();
        assert!(matches!(
            throttle.check("alice").await,
            Err(ThrottleError::Wait(_))
        ));
        throttle.success("alice").await.unwrap();
        assert!(throttle.check("alice").await.is_ok());
    }

    #[tokio::test]
    async fn throttles_sharing_a_store_count_apart() {
        let store = Arc::new(MemoryThrottleStore::new(100));
        let config = ThrottleConfig {
            free_failures: 0,
            ..Default::default()
        };
        let sign_in = AccountThrottle::shared("sign-in", config, store.clone());
        let resets = AccountThrottle::shared("resets", config, store);
        assert!(sign_in.failure("alice").await.unwrap());
        assert!(sign_in.check("alice").await.is_err());
        assert!(resets.check("alice").await.is_ok());
    }
}
