//! The in-process store: `governor`'s GCRA in bounded pools of keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use governor::clock::Clock;

use super::{RateLimitStore, RateLimitStoreError};
use crate::expiring::spawn_purge;
use crate::ratelimit::key::is_username_key;
use crate::ratelimit::{Decision, Quota, RateLimitConfigError};

mod pool;

use pool::{Pool, WhenFull};

/// The default cap on the keys a [`MemoryRateLimitStore`] keeps.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Settings of [`MemoryRateLimitStore`]. `Default`: at most 100,000 address keys and 100,000
/// username keys, idle keys dropped every minute.
///
/// ```
/// use std::time::Duration;
/// use portcullis::ratelimit::MemoryRateLimitStoreConfig;
///
/// let store = MemoryRateLimitStoreConfig::default()
///     .max_keys(10_000)
///     .max_username_keys(5_000)
///     .sweep_interval(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// assert_eq!(store.max_keys(), 10_000);
/// assert_eq!(store.max_username_keys(), 5_000);
/// ```
#[derive(Debug, Clone)]
pub struct MemoryRateLimitStoreConfig {
    max_keys: usize,
    max_username_keys: usize,
    sweep_interval: Duration,
}

impl Default for MemoryRateLimitStoreConfig {
    fn default() -> Self {
        Self {
            max_keys: DEFAULT_MAX_KEYS,
            max_username_keys: DEFAULT_MAX_KEYS,
            sweep_interval: Duration::from_secs(60),
        }
    }
}

// Below this the watermarks (an eighth, a quarter, a half of the cap) stop meaning
// anything.
const MIN_MAX_KEYS: usize = 16;

impl MemoryRateLimitStoreConfig {
    /// The most address keys (and keys of any kind but usernames) kept at once (at
    /// least 16, or [`MemoryRateLimitStoreConfig::build`] refuses). See
    /// [`MemoryRateLimitStore`] for what happens when a flood of distinct keys reaches it.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// The most username keys kept at once (at least 16, or
    /// [`MemoryRateLimitStoreConfig::build`] refuses), in a pool of their own that no
    /// flood of addresses can empty. When it is full of active buckets, username
    /// checks fail (the layer answers 503) rather than forget one.
    pub fn max_username_keys(mut self, max_keys: usize) -> Self {
        self.max_username_keys = max_keys;
        self
    }

    /// How often a background task drops idle keys (not zero, or
    /// [`MemoryRateLimitStoreConfig::build`] refuses). The task
    /// runs only when the store is built inside a Tokio runtime with its timer on (as
    /// `#[tokio::main]` makes it), and ends with the store. Without it the cap still
    /// holds; idle keys are then dropped only when the count nears it.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// The store, or why these settings cannot work: a pool under 16 keys (its
    /// watermarks, an eighth, a quarter and a half of the cap, stop meaning anything),
    /// or a sweep interval of zero.
    pub fn build(self) -> Result<MemoryRateLimitStore, RateLimitConfigError> {
        for (pool, keys) in [
            ("max_keys", self.max_keys),
            ("max_username_keys", self.max_username_keys),
        ] {
            if keys < MIN_MAX_KEYS {
                return Err(RateLimitConfigError::TooFewKeys {
                    pool,
                    min: MIN_MAX_KEYS,
                });
            }
        }
        if self.sweep_interval.is_zero() {
            return Err(RateLimitConfigError::ZeroSweepInterval);
        }
        let inner = Arc::new(MemoryInner {
            addresses: Pool::new(self.max_keys, WhenFull::ForgetBusiest),
            usernames: Pool::new(self.max_username_keys, WhenFull::Refuse),
        });
        // The purge task every in-memory store shares. The keys themselves stay in
        // governor's keyed limiters rather than in the crate's expiring map: governor
        // keeps each key's GCRA state in a sharded map of its own, checked without a
        // global lock, and knows no deadline per key, only which keys are idle now
        // (`retain_recent`). Holding the state in the expiring map would mean one
        // lock per pool on every check and the GCRA arithmetic written here again;
        // the pools keep their own policy instead (idle first, then forget the
        // busiest addresses or refuse usernames), see `pool.rs`.
        spawn_purge(&inner, self.sweep_interval, MemoryInner::drop_idle_keys);
        Ok(MemoryRateLimitStore { inner })
    }
}

/// In-process buckets: `governor`'s keyed GCRA limiters, one per distinct quota, in two
/// pools: usernames (keys `group:user:…`) in one, every other key (addresses) in the
/// other, each with its own cap.
///
/// Keys a client chooses (addresses, usernames) could otherwise grow without bound, so
/// the number of keys in each pool is capped:
///
/// - a background task drops idle keys (those whose bucket is full again, so that
///   forgetting them changes nothing) every [`MemoryRateLimitStoreConfig::sweep_interval`];
/// - when a pool's count reaches seven eighths of its cap, its idle keys are dropped at
///   once, key by key (the stored count so stays under the cap itself);
/// - when that still leaves the **address** pool more than three quarters full — a
///   flood of distinct addresses that are all active — the buckets of its busiest
///   quotas are forgotten until at most half the cap is in use, and a
///   `portcullis::security` warning says so. Memory stays bounded; the price is that a
///   client able to present that many distinct active addresses at once (a botnet)
///   gets fresh address buckets, which such a pool of addresses has anyway;
/// - the **username** pool never forgets an active bucket: forgetting one would hand a
///   password guesser a fresh count for the account it attacks. When idle keys do not
///   make room, username checks fail with [`RateLimitStoreError::Full`] — the layer answers
///   503, fail closed — until keys go idle again (counted again at most once a second).
///   A flood of addresses cannot reach this pool at all.
///
/// Each check costs one hash-map lookup; the count is looked at only every so many
/// checks, never on each one. Clones share the buckets.
///
/// ```
/// use portcullis::ratelimit::{MemoryRateLimitStore, Quota, RateLimitStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = MemoryRateLimitStore::new();
/// let quota = Quota::per_minute(2);
/// assert!(store.check("demo:ip:192.0.2.1", &quota).await.unwrap().allowed);
/// assert!(store.check("demo:ip:192.0.2.1", &quota).await.unwrap().allowed);
/// let third = store.check("demo:ip:192.0.2.1", &quota).await.unwrap();
/// assert!(!third.allowed);
/// assert!(third.retry_after.unwrap().as_secs() <= 30);
/// assert_eq!(store.len(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryRateLimitStore {
    inner: Arc<MemoryInner>,
}

struct MemoryInner {
    addresses: Pool,
    usernames: Pool,
}

impl fmt::Debug for MemoryRateLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRateLimitStore")
            .field("address_keys", &self.inner.addresses.len())
            .field("max_keys", &self.inner.addresses.max_keys())
            .field("username_keys", &self.inner.usernames.len())
            .field("max_username_keys", &self.inner.usernames.max_keys())
            .finish()
    }
}

impl Default for MemoryRateLimitStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimitStore {
    /// A store with the default settings ([`MemoryRateLimitStoreConfig`]).
    pub fn new() -> Self {
        MemoryRateLimitStoreConfig::default()
            .build()
            .expect("the default settings are valid")
    }

    /// How many keys are stored now, across every quota and both pools.
    pub fn len(&self) -> usize {
        self.inner.addresses.len() + self.inner.usernames.len()
    }

    /// How many username keys are stored now.
    pub fn username_len(&self) -> usize {
        self.inner.usernames.len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cap on stored address keys (and keys of any kind but usernames).
    pub fn max_keys(&self) -> usize {
        self.inner.addresses.max_keys()
    }

    /// The cap on stored username keys.
    pub fn max_username_keys(&self) -> usize {
        self.inner.usernames.max_keys()
    }

    /// Drops every key whose bucket is full again; the background task does this
    /// periodically.
    pub fn drop_idle_keys(&self) {
        self.inner.drop_idle_keys();
    }

    fn decide(&self, key: &str, quota: &Quota) -> Result<Decision, RateLimitStoreError> {
        RateLimitStoreError::check_quota(quota)?;
        let pool = if is_username_key(key) {
            &self.inner.usernames
        } else {
            &self.inner.addresses
        };
        let limiter = pool
            .limiter(quota)
            .ok_or_else(|| RateLimitStoreError::invalid_quota(quota))?;
        if !pool.make_room() {
            return Err(RateLimitStoreError::Full);
        }
        Ok(match limiter.check_key(&key.to_owned()) {
            // An upper bound: the bucket is full again at most this long from now.
            Ok(snapshot) => Decision::gcra_allowed(quota, snapshot.remaining_burst_capacity()),
            Err(not_until) => {
                Decision::gcra_refused(quota, not_until.wait_time_from(limiter.clock().now()))
            }
        })
    }
}

impl MemoryInner {
    fn drop_idle_keys(&self) {
        self.addresses.drop_idle_keys();
        self.usernames.drop_idle_keys();
    }
}

impl RateLimitStore for MemoryRateLimitStore {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: &'a Quota,
    ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>> {
        let decision = self.decide(key, quota);
        Box::pin(std::future::ready(decision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_work_are_refused_not_clamped() {
        let config = MemoryRateLimitStoreConfig::default;
        assert!(matches!(
            config().max_keys(15).build(),
            Err(RateLimitConfigError::TooFewKeys {
                pool: "max_keys",
                ..
            })
        ));
        assert!(matches!(
            config().max_username_keys(0).build(),
            Err(RateLimitConfigError::TooFewKeys {
                pool: "max_username_keys",
                ..
            })
        ));
        assert!(matches!(
            config().sweep_interval(Duration::ZERO).build(),
            Err(RateLimitConfigError::ZeroSweepInterval)
        ));
        assert_eq!(config().max_keys(16).build().unwrap().max_keys(), 16);
    }

    /// Runs `future` as the store runs in an app: a Tokio runtime with its timer on.
    pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn decisions_count_down_and_say_when_to_retry() {
        block_on(async {
            let store = MemoryRateLimitStore::new();
            let quota = Quota::per_minute(3);
            let mut remaining = Vec::new();
            for _ in 0..3 {
                let d = store.check("t:ip:1", &quota).await.unwrap();
                assert!(d.allowed);
                assert_eq!(d.limit, 3);
                remaining.push(d.remaining);
            }
            assert_eq!(remaining, [2, 1, 0]);
            let refused = store.check("t:ip:1", &quota).await.unwrap();
            assert!(!refused.allowed);
            let retry = refused.retry_after.unwrap();
            assert!(retry > Duration::from_secs(18) && retry <= Duration::from_secs(20));
            assert!(refused.reset_after > Duration::from_secs(58));
            assert!(refused.reset_after <= Duration::from_secs(60));
            // Another key and another quota have their own buckets.
            assert!(store.check("t:ip:2", &quota).await.unwrap().allowed);
            assert!(
                store
                    .check("t:ip:1", &Quota::per_minute(4))
                    .await
                    .unwrap()
                    .allowed
            );
            assert_eq!(
                store.check("t:ip:1", &Quota::per_minute(0)).await,
                Err(RateLimitStoreError::InvalidQuota {
                    burst: 0,
                    period: Duration::from_secs(60)
                })
            );
        });
    }

    #[test]
    fn the_background_task_sweeps_and_does_not_keep_the_store_alive() {
        block_on(async {
            let store = MemoryRateLimitStoreConfig::default()
                .sweep_interval(Duration::from_millis(20))
                .build()
                .unwrap();
            let weak = Arc::downgrade(&store.inner);
            let fast = Quota::new(1, Duration::from_millis(1));
            for i in 0..100 {
                store.check(&format!("t:ip:{i}"), &fast).await.unwrap();
            }
            let mut swept = false;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if store.is_empty() {
                    swept = true;
                    break;
                }
            }
            assert!(swept, "{} keys left", store.len());
            drop(store);
            // The task held only a Weak: the store is gone at once.
            assert!(weak.upgrade().is_none());
        });
    }
}
