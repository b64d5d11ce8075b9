//! The bounded pools of [`MemoryRateLimitStore`](super::MemoryRateLimitStore): one keyed
//! `governor` limiter per quota, a cap on the keys they hold together, and what a pool
//! does when a flood of distinct keys reaches the cap.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::clock::DefaultClock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::RateLimiter;

use crate::ratelimit::Quota;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

// How long a full username pool refuses before it counts its keys again: counting
// scans every key, which must not happen on every request of a flood.
const FULL_RECHECK: Duration = Duration::from_secs(1);

/// Where a store counts as full and starts making room: seven eighths of the cap, so
/// that the stored count stays under the cap itself.
fn full_mark(max_keys: usize) -> usize {
    max_keys - max_keys / 8
}

fn to_isize(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

/// What a pool does when dropping idle keys does not make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WhenFull {
    /// Forget the busiest quotas' buckets: for addresses.
    ForgetBusiest,
    /// Refuse every check until keys go idle: for usernames.
    Refuse,
}

/// The keys of one kind, under one cap.
pub(super) struct Pool {
    limiters: RwLock<HashMap<Quota, Arc<Limiter>>>,
    max_keys: usize,
    when_full: WhenFull,
    // How many more checks may run before the key count has to be looked at again.
    // Each check adds at most one key, so while this stays positive the count cannot
    // pass the full mark, and the count (a lock per map shard) is not taken on every
    // check.
    headroom: AtomicIsize,
    // Held while counting; holds until when a full pool refuses without counting.
    sweeping: Mutex<Option<Instant>>,
}

impl Pool {
    pub(super) fn new(max_keys: usize, when_full: WhenFull) -> Self {
        Self {
            limiters: RwLock::new(HashMap::new()),
            max_keys,
            when_full,
            headroom: AtomicIsize::new(to_isize(full_mark(max_keys))),
            sweeping: Mutex::new(None),
        }
    }

    /// How many keys are stored now, across every quota.
    pub(super) fn len(&self) -> usize {
        self.read_limiters().values().map(|l| l.len()).sum()
    }

    fn read_limiters(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Quota, Arc<Limiter>>> {
        // A panic elsewhere while holding the lock leaves the map itself intact.
        self.limiters.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_limiters(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Quota, Arc<Limiter>>> {
        self.limiters.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The limiter of `quota`, made on first use; `None` for a quota governor cannot
    /// count against.
    pub(super) fn limiter(&self, quota: &Quota) -> Option<Arc<Limiter>> {
        if let Some(limiter) = self.read_limiters().get(quota) {
            return Some(limiter.clone());
        }
        let fresh = new_limiter(quota)?;
        Some(
            self.write_limiters()
                .entry(*quota)
                .or_insert_with(|| Arc::new(fresh))
                .clone(),
        )
    }

    /// Drops idle keys, key by key, and returns how many are left.
    pub(super) fn drop_idle_keys(&self) -> usize {
        let limiters: Vec<Arc<Limiter>> = self.read_limiters().values().cloned().collect();
        for limiter in &limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let count = limiters.iter().map(|l| l.len()).sum::<usize>();
        self.headroom.store(
            to_isize(full_mark(self.max_keys).saturating_sub(count)),
            Ordering::Release,
        );
        count
    }

    /// The cap on the keys this pool stores.
    pub(super) fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Takes one key's worth of headroom before a check, which may add a key; when the
    /// headroom runs out, counts the keys and makes room ([`Self::enforce_cap`]).
    /// `false`: the pool is full of active username buckets and refuses the check.
    pub(super) fn make_room(&self) -> bool {
        self.headroom.fetch_sub(1, Ordering::AcqRel) > 0 || self.enforce_cap()
    }

    /// Called when the headroom runs out: count the keys, and make room if needed.
    /// `false`: the pool is full of active username buckets and refuses the check.
    fn enforce_cap(&self) -> bool {
        let mut refusing_until = self.sweeping.lock().unwrap_or_else(|e| e.into_inner());
        // Another check made room while this one waited for the lock.
        if self.headroom.load(Ordering::Acquire) > 0 {
            return true;
        }
        if refusing_until.is_some_and(|until| Instant::now() < until) {
            return false;
        }
        let full = full_mark(self.max_keys);
        let three_quarters = self.max_keys - self.max_keys / 4;
        let mut count = self.len();
        match self.when_full {
            WhenFull::ForgetBusiest => {
                if count > three_quarters {
                    count = self.drop_idle_keys();
                    if count > three_quarters {
                        count = self.forget_busiest(count);
                    }
                }
            }
            WhenFull::Refuse => {
                if count >= full {
                    count = self.drop_idle_keys();
                }
                if count >= full {
                    *refusing_until = Some(Instant::now() + FULL_RECHECK);
                    self.headroom.store(0, Ordering::Release);
                    tracing::warn!(
                        target: "portcullis::security",
                        event = "rate_limit_usernames_full",
                        keys = count,
                        "too many usernames are being tried at once; username-counted requests are refused (fail closed)"
                    );
                    return false;
                }
                *refusing_until = None;
            }
        }
        // For addresses at most three quarters of the cap is left in use, so at least
        // an eighth of it passes before the next count: a nearly full store is not
        // counted on every check.
        self.headroom
            .store(to_isize(full.saturating_sub(count)), Ordering::Release);
        true
    }

    /// Forgets whole quotas, the busiest first, until at most half the cap is in use.
    fn forget_busiest(&self, mut count: usize) -> usize {
        let target = self.max_keys / 2;
        let mut limiters = self.write_limiters();
        let mut by_size: Vec<(Quota, usize)> =
            limiters.iter().map(|(q, l)| (*q, l.len())).collect();
        by_size.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
        for (quota, size) in by_size {
            if count <= target {
                break;
            }
            if let Some(fresh) = new_limiter(&quota) {
                limiters.insert(quota, Arc::new(fresh));
                count = count.saturating_sub(size);
                tracing::warn!(
                    target: "portcullis::security",
                    event = "rate_limit_keys_forgotten",
                    keys = size,
                    burst = quota.burst(),
                    period_secs = quota.period().as_secs_f64(),
                    "too many distinct clients are active at once; their rate-limit buckets start afresh"
                );
            }
        }
        count
    }
}

/// A keyed limiter for `quota`: a bucket of the burst that gets one request back every
/// interval. `None` for a zero burst (governor has no empty bucket).
fn new_limiter(quota: &Quota) -> Option<Limiter> {
    let burst = NonZeroU32::new(quota.burst())?;
    let per_request = governor::Quota::with_period(quota.interval())?.allow_burst(burst);
    Some(RateLimiter::keyed(per_request).with_middleware::<StateInformationMiddleware>())
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::time::{Duration, Instant};

    use crate::ratelimit::{
        Decision, MemoryRateLimitStore, MemoryRateLimitStoreConfig, Quota, RateLimitStore,
        RateLimitStoreError, DEFAULT_MAX_KEYS,
    };

    use crate::ratelimit::store::memory::tests::block_on;

    #[test]
    fn the_key_count_never_passes_the_cap() {
        block_on(async {
            let store = MemoryRateLimitStoreConfig::default()
                .max_keys(1_000)
                .build()
                .unwrap();
            let quota = Quota::per_minute(10);
            for i in 0..20_000 {
                store.check(&format!("t:ip:{i}"), &quota).await.unwrap();
                assert!(store.len() < 1_000, "{} keys after {i}", store.len());
            }
        });
    }

    #[test]
    fn idle_keys_are_dropped_without_forgetting_active_ones() {
        block_on(async {
            let store = MemoryRateLimitStoreConfig::default()
                .max_keys(1_000)
                .build()
                .unwrap();
            let slow = Quota::per_minute(1);
            // Spent: must survive every sweep.
            assert!(store.check("t:user:victim", &slow).await.unwrap().allowed);
            let fast = Quota::new(1, Duration::from_millis(1));
            for i in 0..500 {
                store.check(&format!("t:ip:{i}"), &fast).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            // Past the cap, idle keys go first; nothing active is forgotten.
            for i in 500..1_400 {
                store.check(&format!("t:ip:{i}"), &fast).await.unwrap();
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
            assert!(store.len() < 1_000);
            assert!(!store.check("t:user:victim", &slow).await.unwrap().allowed);
        });
    }

    #[test]
    fn a_flood_of_addresses_leaves_a_spent_username_bucket_spent() {
        block_on(async {
            let store = MemoryRateLimitStoreConfig::default()
                .max_keys(1_000)
                .build()
                .unwrap();
            // The contract's auth quota, for the username and the addresses alike.
            let quota = Quota::per_minute(10);
            for _ in 0..10 {
                assert!(
                    store
                        .check("auth:user:victim", &quota)
                        .await
                        .unwrap()
                        .allowed
                );
            }
            assert!(
                !store
                    .check("auth:user:victim", &quota)
                    .await
                    .unwrap()
                    .allowed
            );
            // 900 distinct, active addresses: past the cap's watermarks, so the
            // address pool forgets its busiest buckets.
            for i in 0..900 {
                let key = format!("auth:ip:198.51.{}.{}", i / 256, i % 256);
                assert!(store.check(&key, &quota).await.unwrap().allowed);
            }
            assert!(store.len() - store.username_len() < 1_000);
            let after = store.check("auth:user:victim", &quota).await.unwrap();
            assert!(
                !after.allowed,
                "the flood of addresses reset the victim's bucket"
            );
        });
    }

    #[test]
    fn a_full_username_pool_refuses_rather_than_forgets() {
        block_on(async {
            let store = MemoryRateLimitStoreConfig::default()
                .max_username_keys(1_000)
                .build()
                .unwrap();
            let quota = Quota::per_minute(10);
            for _ in 0..10 {
                store.check("auth:user:victim", &quota).await.unwrap();
            }
            let mut full = 0;
            for i in 0..2_000 {
                match store.check(&format!("auth:user:guess{i}"), &quota).await {
                    Ok(decision) => assert!(decision.allowed),
                    Err(RateLimitStoreError::Full) => full += 1,
                    Err(other) => panic!("{other}"),
                }
                assert!(store.username_len() < 1_000);
                // Never allowed again, whatever the flood did.
                let victim = store.check("auth:user:victim", &quota).await;
                assert!(
                    matches!(
                        victim,
                        Ok(Decision { allowed: false, .. }) | Err(RateLimitStoreError::Full)
                    ),
                    "{victim:?} after {i}"
                );
            }
            assert!(full > 1_000, "{full} refusals");
            // Addresses are counted in their own pool meanwhile.
            assert!(
                store
                    .check("auth:ip:192.0.2.1", &quota)
                    .await
                    .unwrap()
                    .allowed
            );
        });
    }

    #[test]
    fn idle_username_keys_make_room_one_by_one() {
        block_on(async {
            let store = MemoryRateLimitStoreConfig::default()
                .max_username_keys(1_000)
                .build()
                .unwrap();
            let slow = Quota::per_minute(1);
            assert!(store.check("t:user:victim", &slow).await.unwrap().allowed);
            let fast = Quota::new(1, Duration::from_millis(1));
            for i in 0..3_000 {
                // Idle a moment after use: dropped, never a reason to refuse.
                store
                    .check(&format!("t:user:name{i}"), &fast)
                    .await
                    .unwrap();
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
            assert!(store.username_len() < 1_000);
            assert!(!store.check("t:user:victim", &slow).await.unwrap().allowed);
        });
    }

    /// One million distinct addresses, as from a flood of spoofed ones: the stored
    /// count stays under the cap throughout.
    #[test]
    fn a_million_distinct_keys_stay_under_the_cap() {
        block_on(async {
            let store = MemoryRateLimitStore::new();
            let quota = Quota::per_minute(10);
            let started = Instant::now();
            let mut key = String::with_capacity(32);
            let mut peak = 0;
            for i in 0..1_000_000u32 {
                key.clear();
                write!(key, "auth:ip:flood{i}").unwrap();
                let decision = store.check(&key, &quota).await.unwrap();
                assert!(decision.allowed);
                if i % 1_000 == 0 {
                    peak = peak.max(store.len());
                }
            }
            peak = peak.max(store.len());
            assert!(peak < DEFAULT_MAX_KEYS, "{peak} keys stored");
            assert!(
                peak > DEFAULT_MAX_KEYS / 2,
                "{peak}: the cap was never approached"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "a million distinct addresses: {:?}, peak {peak} keys",
                    started.elapsed()
                );
            }
        });
    }
}
