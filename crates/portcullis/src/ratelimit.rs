//! Rate limits: GCRA per client IP and per submitted username, under one tower layer.
//!
//! A [`RateLimitConfig`] names **groups** of exact paths and what each group counts:
//! the client IP (always [`ClientInfo`], which believes forwarding headers from trusted
//! proxies only — never a header read here) and/or the username the request submits.
//! The contract's defaults:
//!
//! | group | requests | limit |
//! |---|---|---|
//! | `auth` | `POST /login`, `/register`, `/api/token` | 10 a minute per client IP **and** 10 a minute per username, counted separately; refused when either is spent |
//! | `default` | every other request | 600 a minute per client IP |
//!
//! The username is read wherever the handler's axum extractors could read it, by their
//! own rules: `Form` reads the query string of a `GET` and otherwise any body whose
//! `Content-Type` *starts with* `application/x-www-form-urlencoded`; `Json` reads a body
//! of type `application/json` or `application/*+json`. Every `username` field found
//! there is counted (bodies read up to 1 MiB and handed on unchanged); a request that
//! names two different usernames is refused with 400, as it cannot be counted against
//! one and the handler's parser might pick the other. On a username-counted route a
//! request none of those extractors would read is refused with 415, and a JSON body
//! that is not an object with 400 (serde fills a struct from an array by position,
//! where no field is called `username`): nothing reaches the handler uncounted. The
//! key is [`crate::input::username_key`] (trimmed, NFC, lowercase), the one name under
//! which the handler finds an account: `Alice` and ` alice ` share a bucket, and so do
//! `kevin` and `\u{212A}evin` (KELVIN SIGN, which NFC makes `K`). IPv6 clients are counted per `/64`, the block
//! one host controls, so that one machine cannot mint a fresh bucket per address.
//!
//! Refusals are `429 Too Many Requests` with `Retry-After` and the uniform error body
//! (code `rate_limited`), logged as a `portcullis::security` event that names the group,
//! the key kind, the client IP and the path — never the username. Every counted response,
//! allowed or refused, carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (seconds until the bucket is full again) of the tightest rule that
//! applied. When the backend fails, the answer is `503` with `Retry-After`: the limiter
//! fails closed. CORS preflights are answered before the limiter (the stack puts the
//! CORS layer outside it); any other `OPTIONS` request counts like every method.
//!
//! The client's address must be known: serve the app with [`crate::serve`] (or axum's
//! `into_make_service_with_connect_info::<SocketAddr>()`). Served without it, every
//! client would share one bucket, and ten failed logins a minute would lock out the
//! whole world; the client-info layer refuses such requests instead
//! ([`crate::client_ip::MissingPeerAddress`]).
//!
//! The counting lives behind [`RateLimitStore`], so a shared store (Redis, for
//! several instances) can replace the in-process [`MemoryRateLimitStore`], which runs the
//! `governor` crate's GCRA and keeps its memory bounded under a flood of distinct keys.
//! [`RateLimitMode::Bench`] multiplies every limit by 1,000,000: the limiter still
//! decides every request, but never refuses one.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::post, Router};
//! use portcullis::client_ip::ClientInfoConfig;
//! use portcullis::ratelimit::{MemoryRateLimitStore, Quota, RateLimitConfig, RateLimitGroup};
//!
//! let limits = RateLimitConfig::default()
//!     .group(RateLimitGroup::auth().per_ip(Quota::per_minute(20)))
//!     .layer(Arc::new(MemoryRateLimitStore::new()))
//!     .unwrap();
//! let app: Router = Router::new()
//!     .route("/login", post(|| async { "welcome" }))
//!     .layer(limits)
//!     // The limiter reads the client from `ClientInfo`: install that layer outside it.
//!     .layer(ClientInfoConfig::default().layer());
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::RateLimiter;
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use crate::client_ip::ClientInfo;
use crate::config::{RateLimitMode, Settings};
use crate::error::Error;
use crate::stack::buffer_body;

/// `RateLimit-Limit`: the bucket's size.
pub const LIMIT_HEADER: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left in the bucket.
pub const REMAINING_HEADER: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the bucket is full again.
pub const RESET_HEADER: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The name of the rule for requests that no group matches; reserved.
pub const DEFAULT_GROUP: &str = "default";

/// How much [`RateLimitMode::Bench`] multiplies every limit by.
pub const BENCH_FACTOR: u32 = 1_000_000;

/// The default largest body read for a username: 1 MiB, as the stack's body limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The default cap on the keys a [`MemoryRateLimitStore`] keeps.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// How many requests a key may make in a period: a bucket of `burst` requests that
/// refills completely in `period`, one request every `period / burst` (GCRA).
///
/// ```
/// use std::time::Duration;
/// use portcullis::ratelimit::Quota;
///
/// let quota = Quota::per_minute(10);
/// assert_eq!(quota.burst(), 10);
/// assert_eq!(quota.period(), Duration::from_secs(60));
/// assert_eq!(Quota::new(5, Duration::from_secs(1)).burst(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    burst: u32,
    period: Duration,
}

impl Quota {
    /// `burst` requests, refilled completely over `period`. Zero is a configuration
    /// error when the layer is built.
    pub const fn new(burst: u32, period: Duration) -> Self {
        Self { burst, period }
    }

    /// `n` requests a minute.
    pub const fn per_minute(n: u32) -> Self {
        Self::new(n, Duration::from_secs(60))
    }

    /// `n` requests a second.
    pub const fn per_second(n: u32) -> Self {
        Self::new(n, Duration::from_secs(1))
    }

    /// The bucket's size: how many requests may come at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// How long an empty bucket takes to fill completely.
    pub fn period(&self) -> Duration {
        self.period
    }

    fn is_valid(&self) -> bool {
        self.burst > 0 && !self.period.is_zero()
    }

    /// The same period with `factor` times the requests (capped at `u32::MAX`).
    fn scaled(self, factor: u32) -> Self {
        Self::new(self.burst.saturating_mul(factor), self.period)
    }

    /// The interval between two refilled requests, never zero (governor refuses zero).
    fn interval(&self) -> Duration {
        (self.period / self.burst.max(1)).max(Duration::from_nanos(1))
    }

    fn governor(&self) -> Option<governor::Quota> {
        let burst = std::num::NonZeroU32::new(self.burst)?;
        Some(governor::Quota::with_period(self.interval())?.allow_burst(burst))
    }
}

/// A backend's answer for one key.
///
/// ```
/// use std::time::Duration;
/// use portcullis::ratelimit::Decision;
///
/// let ok = Decision::allowed(10, 9, Duration::from_secs(6));
/// assert!(ok.allowed && ok.retry_after.is_none());
/// let no = Decision::refused(10, Duration::from_secs(60), Duration::from_secs(6));
/// assert!(!no.allowed && no.remaining == 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The bucket's size.
    pub limit: u32,
    /// Requests left after this one.
    pub remaining: u32,
    /// How long until the bucket is full again.
    pub reset_after: Duration,
    /// When refused: how long until one more request would be allowed.
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// An allowed request that leaves `remaining` of `limit`.
    pub fn allowed(limit: u32, remaining: u32, reset_after: Duration) -> Self {
        Self {
            allowed: true,
            limit,
            remaining,
            reset_after,
            retry_after: None,
        }
    }

    /// A refused request; one more would be allowed after `retry_after`.
    pub fn refused(limit: u32, reset_after: Duration, retry_after: Duration) -> Self {
        Self {
            allowed: false,
            limit,
            remaining: 0,
            reset_after,
            retry_after: Some(retry_after),
        }
    }
}

/// A backend could not decide. The layer answers 503 (fail closed): a limiter that
/// lets requests through when its store is down protects nothing when it matters.
///
/// ```
/// use portcullis::ratelimit::RateLimitStoreError;
///
/// let e = RateLimitStoreError::Unavailable("connection refused".into());
/// assert!(e.to_string().contains("connection refused"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitStoreError {
    /// The store could not be reached or answered nonsense.
    #[error("rate-limit backend unavailable: {0}")]
    Unavailable(String),
    /// The store holds as many keys of this kind as it may, all in use, and would have
    /// to forget one to count this request (see [`MemoryRateLimitStore`]).
    #[error("rate-limit backend full: too many keys are active at once")]
    Full,
    /// The quota has a zero size or period.
    #[error("invalid rate-limit quota: {burst} per {period:?}")]
    InvalidQuota {
        /// The bucket's size.
        burst: u32,
        /// Its period.
        period: Duration,
    },
}

/// Where buckets live. Object-safe so that a shared store (Redis) can replace
/// [`MemoryRateLimitStore`] without touching the layer.
///
/// Keys already name the group and the key kind (`auth:ip:192.0.2.7`,
/// `auth:user:alice`); a backend only has to count under them. Each call counts one
/// request when allowed; a refused request does not use up the bucket.
///
/// ```
/// use futures_util::future::BoxFuture;
/// use portcullis::ratelimit::{RateLimitStoreError, Decision, Quota, RateLimitStore};
///
/// /// Refuses nothing and counts nothing: for a test, never for production.
/// #[derive(Debug)]
/// struct Unlimited;
///
/// impl RateLimitStore for Unlimited {
///     fn check<'a>(
///         &'a self,
///         _key: &'a str,
///         quota: &'a Quota,
///     ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>> {
///         let limit = quota.burst();
///         Box::pin(async move { Ok(Decision::allowed(limit, limit, Default::default())) })
///     }
/// }
/// ```
pub trait RateLimitStore: Send + Sync + fmt::Debug + 'static {
    /// Counts one request under `key` against `quota`.
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: &'a Quota,
    ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>>;
}

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Settings of [`MemoryRateLimitStore`]. `Default`: at most 100,000 address keys and 100,000
/// username keys, idle keys dropped every minute.
///
/// ```
/// use std::time::Duration;
/// use portcullis::ratelimit::MemoryRateLimitStoreConfig;
///
/// let backend = MemoryRateLimitStoreConfig::default()
///     .max_keys(10_000)
///     .max_username_keys(5_000)
///     .sweep_interval(Duration::from_secs(30))
///     .build();
/// assert_eq!(backend.max_keys(), 10_000);
/// assert_eq!(backend.max_username_keys(), 5_000);
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

// How long a full username pool refuses before it counts its keys again: counting
// scans every key, which must not happen on every request of a flood.
const FULL_RECHECK: Duration = Duration::from_secs(1);

impl MemoryRateLimitStoreConfig {
    /// The most address keys (and keys of any kind but usernames) kept at once (at
    /// least 16). See [`MemoryRateLimitStore`] for what happens when a flood of distinct keys
    /// reaches it.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(MIN_MAX_KEYS);
        self
    }

    /// The most username keys kept at once (at least 16), in a pool of their own that
    /// no flood of addresses can empty. When it is full of active buckets, username
    /// checks fail (the layer answers 503) rather than forget one.
    pub fn max_username_keys(mut self, max_keys: usize) -> Self {
        self.max_username_keys = max_keys.max(MIN_MAX_KEYS);
        self
    }

    /// How often a background task drops idle keys (at least one millisecond). The task
    /// runs only when the backend is built inside a Tokio runtime with its timer on (as
    /// `#[tokio::main]` makes it), and ends with the backend. Without it the cap still
    /// holds; idle keys are then dropped only when the count nears it.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The backend.
    pub fn build(self) -> MemoryRateLimitStore {
        let inner = Arc::new(MemoryInner {
            addresses: Pool::new(self.max_keys, WhenFull::ForgetBusiest),
            usernames: Pool::new(self.max_username_keys, WhenFull::Refuse),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // A Weak, so that the task neither keeps the backend alive nor outlives it.
            let weak = Arc::downgrade(&inner);
            runtime.spawn(sweep_periodically(weak, self.sweep_interval));
        }
        MemoryRateLimitStore { inner }
    }
}

async fn sweep_periodically(backend: Weak<MemoryInner>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; there is nothing to sweep yet.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(backend) = backend.upgrade() else {
            break;
        };
        backend.drop_idle_keys();
    }
}

/// Where a backend counts as full and starts making room: seven eighths of the cap, so
/// that the stored count stays under the cap itself.
fn full_mark(max_keys: usize) -> usize {
    max_keys - max_keys / 8
}

fn to_isize(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

/// Whether a key names a user: the layer writes `group:user:name`, and a group name
/// has no `:`.
fn is_username_key(key: &str) -> bool {
    key.split(':').nth(1) == Some(KeyKind::User.as_str())
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
/// let backend = MemoryRateLimitStore::new();
/// let quota = Quota::per_minute(2);
/// assert!(backend.check("demo:ip:192.0.2.1", &quota).await.unwrap().allowed);
/// assert!(backend.check("demo:ip:192.0.2.1", &quota).await.unwrap().allowed);
/// let third = backend.check("demo:ip:192.0.2.1", &quota).await.unwrap();
/// assert!(!third.allowed);
/// assert!(third.retry_after.unwrap().as_secs() <= 30);
/// assert_eq!(backend.len(), 1);
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

/// What a pool does when dropping idle keys does not make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// Forget the busiest quotas' buckets: for addresses.
    ForgetBusiest,
    /// Refuse every check until keys go idle: for usernames.
    Refuse,
}

struct Pool {
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

impl fmt::Debug for MemoryRateLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRateLimitStore")
            .field("address_keys", &self.inner.addresses.len())
            .field("max_keys", &self.inner.addresses.max_keys)
            .field("username_keys", &self.inner.usernames.len())
            .field("max_username_keys", &self.inner.usernames.max_keys)
            .finish()
    }
}

impl Default for MemoryRateLimitStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimitStore {
    /// A backend with the default settings ([`MemoryRateLimitStoreConfig`]).
    pub fn new() -> Self {
        MemoryRateLimitStoreConfig::default().build()
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
        self.inner.addresses.max_keys
    }

    /// The cap on stored username keys.
    pub fn max_username_keys(&self) -> usize {
        self.inner.usernames.max_keys
    }

    /// Drops every key whose bucket is full again; the background task does this
    /// periodically.
    pub fn drop_idle_keys(&self) {
        self.inner.drop_idle_keys();
    }

    fn decide(&self, key: &str, quota: &Quota) -> Result<Decision, RateLimitStoreError> {
        let invalid = || RateLimitStoreError::InvalidQuota {
            burst: quota.burst,
            period: quota.period,
        };
        let pool = if is_username_key(key) {
            &self.inner.usernames
        } else {
            &self.inner.addresses
        };
        let limiter = pool.limiter(quota).ok_or_else(invalid)?;
        if pool.headroom.fetch_sub(1, Ordering::AcqRel) <= 0 && !pool.enforce_cap() {
            return Err(RateLimitStoreError::Full);
        }
        let interval = quota.interval();
        let until_full = |used: u32| interval.saturating_mul(used);
        match limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(quota.burst);
                // An upper bound: the bucket is full again at most this long from now.
                Ok(Decision::allowed(
                    quota.burst,
                    remaining,
                    until_full(quota.burst - remaining),
                ))
            }
            Err(not_until) => {
                let retry = not_until.wait_time_from(limiter.clock().now());
                // The next request fits after `retry`; the rest of the bucket refills
                // one interval at a time after that.
                Ok(Decision::refused(
                    quota.burst,
                    retry.saturating_add(until_full(quota.burst - 1)),
                    retry,
                ))
            }
        }
    }
}

impl MemoryInner {
    fn drop_idle_keys(&self) {
        self.addresses.drop_idle_keys();
        self.usernames.drop_idle_keys();
    }
}

impl Pool {
    fn new(max_keys: usize, when_full: WhenFull) -> Self {
        Self {
            limiters: RwLock::new(HashMap::new()),
            max_keys,
            when_full,
            headroom: AtomicIsize::new(to_isize(full_mark(max_keys))),
            sweeping: Mutex::new(None),
        }
    }

    fn len(&self) -> usize {
        self.read_limiters().values().map(|l| l.len()).sum()
    }

    fn read_limiters(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Quota, Arc<Limiter>>> {
        // A panic elsewhere while holding the lock leaves the map itself intact.
        self.limiters.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_limiters(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Quota, Arc<Limiter>>> {
        self.limiters.write().unwrap_or_else(|e| e.into_inner())
    }

    fn limiter(&self, quota: &Quota) -> Option<Arc<Limiter>> {
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
    fn drop_idle_keys(&self) -> usize {
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
        // an eighth of it passes before the next count: a nearly full backend is not
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
                    burst = quota.burst,
                    period_secs = quota.period.as_secs_f64(),
                    "too many distinct clients are active at once; their rate-limit buckets start afresh"
                );
            }
        }
        count
    }
}

fn new_limiter(quota: &Quota) -> Option<Limiter> {
    Some(RateLimiter::keyed(quota.governor()?).with_middleware::<StateInformationMiddleware>())
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

/// A set of exact paths and what is counted for their requests.
///
/// ```
/// use axum::http::Method;
/// use portcullis::ratelimit::{Quota, RateLimitGroup};
///
/// // Five password resets an hour per address, whatever the method.
/// let group = RateLimitGroup::new("reset")
///     .path("/password-reset")
///     .per_ip(Quota::new(5, std::time::Duration::from_secs(3600)));
/// assert_eq!(group.name(), "reset");
///
/// // The contract's login group, with a tighter limit per username.
/// let auth = RateLimitGroup::auth().per_username(Quota::per_minute(5));
/// assert_eq!(auth.name(), "auth");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitGroup {
    name: String,
    methods: Vec<Method>,
    paths: Vec<String>,
    per_ip: Option<Quota>,
    per_username: Option<Quota>,
}

impl RateLimitGroup {
    /// An empty group: no paths, nothing counted, every method.
    /// The name is part of every key: lowercase letters, digits, `-` and `_`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            methods: Vec::new(),
            paths: Vec::new(),
            per_ip: None,
            per_username: None,
        }
    }

    /// The contract's `auth` group: `POST` to `/login`, `/register` and `/api/token`,
    /// 10 a minute per client IP and 10 a minute per username.
    pub fn auth() -> Self {
        Self::new("auth")
            .method(Method::POST)
            .path("/login")
            .path("/register")
            .path("/api/token")
            .per_ip(Quota::per_minute(10))
            .per_username(Quota::per_minute(10))
    }

    /// Adds an exact path (`/login`; no query, no pattern).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Restricts the group to this method (call again for more). Without any, every
    /// method matches.
    pub fn method(mut self, method: Method) -> Self {
        self.methods.push(method);
        self
    }

    /// Counts each client IP against `quota`.
    pub fn per_ip(mut self, quota: Quota) -> Self {
        self.per_ip = Some(quota);
        self
    }

    /// Does not count client IPs.
    pub fn without_ip_limit(mut self) -> Self {
        self.per_ip = None;
        self
    }

    /// Counts each submitted username against `quota`.
    pub fn per_username(mut self, quota: Quota) -> Self {
        self.per_username = Some(quota);
        self
    }

    /// Does not count usernames.
    pub fn without_username_limit(mut self) -> Self {
        self.per_username = None;
        self
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method))
            && self.paths.iter().any(|p| p == path)
    }

    fn overlaps(&self, other: &Self) -> Option<&str> {
        let methods_overlap = self.methods.is_empty()
            || other.methods.is_empty()
            || self.methods.iter().any(|m| other.methods.contains(m));
        if !methods_overlap {
            return None;
        }
        self.paths
            .iter()
            .find(|p| other.paths.contains(p))
            .map(String::as_str)
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitConfigError {
    /// A group name that is empty, reserved, or has characters other than lowercase
    /// letters, digits, `-` and `_`.
    #[error("invalid rate-limit group name {0:?}: use lowercase letters, digits, - and _ (and not \"default\")")]
    InvalidGroupName(String),
    /// Two groups with the same name.
    #[error("two rate-limit groups are named {0:?}")]
    DuplicateGroup(String),
    /// A group without paths.
    #[error("rate-limit group {0:?} has no paths")]
    NoPaths(String),
    /// A path that is not an exact absolute path.
    #[error(
        "rate-limit group {group:?}: invalid path {path:?}: expected an exact path such as /login"
    )]
    InvalidPath {
        /// The group.
        group: String,
        /// The path.
        path: String,
    },
    /// A path that two groups claim for the same method.
    #[error("rate-limit groups {first:?} and {second:?} both claim {path:?}")]
    OverlappingPath {
        /// The first group.
        first: String,
        /// The second group.
        second: String,
        /// The path.
        path: String,
    },
    /// A group that counts neither IPs nor usernames.
    #[error("rate-limit group {0:?} counts nothing: set per_ip or per_username")]
    NothingCounted(String),
    /// A quota with a zero size or period.
    #[error("rate-limit group {0:?} has a zero quota")]
    ZeroQuota(String),
    /// A zero body limit, which would leave no username to count.
    #[error("the rate limiter's body limit is zero")]
    ZeroBodyLimit,
}

/// Settings of [`RateLimitLayer`]. `Default` is the contract: the [`RateLimitGroup::auth`]
/// group, and 600 a minute per client IP for every other request.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::config::RateLimitMode;
/// use portcullis::ratelimit::{MemoryRateLimitStore, Quota, RateLimitConfig, RateLimitGroup};
///
/// let layer = RateLimitConfig::default()
///     .group(RateLimitGroup::new("comments").path("/comments").per_ip(Quota::per_minute(30)))
///     .default_per_ip(Quota::per_minute(1200))
///     .mode(RateLimitMode::Normal)
///     .layer(Arc::new(MemoryRateLimitStore::new()))
///     .unwrap();
///
/// // Misconfiguration is found here, not while serving.
/// let zero = RateLimitConfig::default()
///     .group(RateLimitGroup::auth().per_ip(Quota::per_minute(0)))
///     .layer(Arc::new(MemoryRateLimitStore::new()));
/// assert!(zero.is_err());
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    groups: Vec<RateLimitGroup>,
    default_per_ip: Option<Quota>,
    mode: RateLimitMode,
    max_body_bytes: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            groups: vec![RateLimitGroup::auth()],
            default_per_ip: Some(Quota::per_minute(600)),
            mode: RateLimitMode::Normal,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl RateLimitConfig {
    /// The contract's limits in the mode `settings.rate_limits` names.
    ///
    /// ```
    /// use portcullis::config::Settings;
    /// use portcullis::ratelimit::RateLimitConfig;
    ///
    /// let settings = Settings::from_lookup(|name| {
    ///     (name == "PORTCULLIS_RATE_LIMITS").then(|| "bench".to_owned())
    /// })
    /// .unwrap();
    /// let config = RateLimitConfig::from_settings(&settings);
    /// ```
    pub fn from_settings(settings: &Settings) -> Self {
        Self::default().mode(settings.rate_limits)
    }

    /// Adds `group`, replacing the group of the same name if there is one.
    pub fn group(mut self, group: RateLimitGroup) -> Self {
        match self.groups.iter_mut().find(|g| g.name == group.name) {
            Some(existing) => *existing = group,
            None => self.groups.push(group),
        }
        self
    }

    /// Removes the group called `name`; its paths fall under the default limit.
    pub fn without_group(mut self, name: &str) -> Self {
        self.groups.retain(|g| g.name != name);
        self
    }

    /// The limit per client IP for requests that no group matches.
    pub fn default_per_ip(mut self, quota: Quota) -> Self {
        self.default_per_ip = Some(quota);
        self
    }

    /// Leaves requests that no group matches uncounted.
    pub fn without_default_limit(mut self) -> Self {
        self.default_per_ip = None;
        self
    }

    /// [`RateLimitMode::Bench`] multiplies every limit by [`BENCH_FACTOR`].
    pub fn mode(mut self, mode: RateLimitMode) -> Self {
        self.mode = mode;
        self
    }

    /// The largest body read to find a username (default 1 MiB); larger gets 413.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Validates the settings and builds the layer, counting in `backend`. Install it
    /// inside the client-info layer (it reads [`ClientInfo`]) and inside the error-page
    /// layer (its refusals are rendered there); [`crate::stack::SecureStack`] does both.
    pub fn layer(
        self,
        backend: Arc<dyn RateLimitStore>,
    ) -> Result<RateLimitLayer, RateLimitConfigError> {
        if self.max_body_bytes == 0 {
            return Err(RateLimitConfigError::ZeroBodyLimit);
        }
        let factor = match self.mode {
            RateLimitMode::Normal => 1,
            RateLimitMode::Bench => BENCH_FACTOR,
        };
        let mut rules = Vec::with_capacity(self.groups.len());
        for (i, group) in self.groups.iter().enumerate() {
            let name_ok = !group.name.is_empty()
                && group.name != DEFAULT_GROUP
                && group
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b));
            if !name_ok {
                return Err(RateLimitConfigError::InvalidGroupName(group.name.clone()));
            }
            if self.groups[..i].iter().any(|g| g.name == group.name) {
                return Err(RateLimitConfigError::DuplicateGroup(group.name.clone()));
            }
            if group.paths.is_empty() {
                return Err(RateLimitConfigError::NoPaths(group.name.clone()));
            }
            if let Some(path) = group.paths.iter().find(|p| !is_exact_path(p)) {
                return Err(RateLimitConfigError::InvalidPath {
                    group: group.name.clone(),
                    path: path.clone(),
                });
            }
            for earlier in &self.groups[..i] {
                if let Some(path) = earlier.overlaps(group) {
                    return Err(RateLimitConfigError::OverlappingPath {
                        first: earlier.name.clone(),
                        second: group.name.clone(),
                        path: path.to_owned(),
                    });
                }
            }
            if group.per_ip.is_none() && group.per_username.is_none() {
                return Err(RateLimitConfigError::NothingCounted(group.name.clone()));
            }
            if [group.per_ip, group.per_username]
                .iter()
                .flatten()
                .any(|q| !q.is_valid())
            {
                return Err(RateLimitConfigError::ZeroQuota(group.name.clone()));
            }
            rules.push(Rule {
                group: group.clone(),
                per_ip: group.per_ip.map(|q| q.scaled(factor)),
                per_username: group.per_username.map(|q| q.scaled(factor)),
            });
        }
        let default = match self.default_per_ip {
            Some(quota) if !quota.is_valid() => {
                return Err(RateLimitConfigError::ZeroQuota(DEFAULT_GROUP.to_owned()));
            }
            Some(quota) => Some(Rule {
                group: RateLimitGroup::new(DEFAULT_GROUP),
                per_ip: Some(quota.scaled(factor)),
                per_username: None,
            }),
            None => None,
        };
        Ok(RateLimitLayer {
            shared: Arc::new(Shared {
                rules,
                default,
                backend,
                max_body_bytes: self.max_body_bytes,
            }),
        })
    }
}

fn is_exact_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains(['?', '#', '*', '{', '}', ' '])
        && path.parse::<axum::http::uri::PathAndQuery>().is_ok()
}

#[derive(Debug)]
struct Rule {
    group: RateLimitGroup,
    // The effective quotas, after the mode's factor.
    per_ip: Option<Quota>,
    per_username: Option<Quota>,
}

#[derive(Debug)]
struct Shared {
    rules: Vec<Rule>,
    default: Option<Rule>,
    backend: Arc<dyn RateLimitStore>,
    max_body_bytes: usize,
}

impl Shared {
    fn rule(&self, method: &Method, path: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.group.matches(method, path))
            .or(self.default.as_ref())
    }
}

/// Counts requests and refuses those over their limit. See the module docs.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::ratelimit::{MemoryRateLimitStore, RateLimitConfig, RateLimitLayer};
///
/// let layer: RateLimitLayer = RateLimitConfig::default()
///     .layer(Arc::new(MemoryRateLimitStore::new()))
///     .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`RateLimitLayer`].
///
/// ```
/// use std::sync::Arc;
/// use portcullis::ratelimit::{MemoryRateLimitStore, RateLimit, RateLimitConfig};
/// use tower::Layer;
///
/// let layer = RateLimitConfig::default().layer(Arc::new(MemoryRateLimitStore::new())).unwrap();
/// let service: RateLimit<_> = layer.layer(tower::service_fn(|_req: axum::http::Request<axum::body::Body>| async {
///     Ok::<_, std::convert::Infallible>(axum::http::Response::new(axum::body::Body::empty()))
/// }));
/// ```
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit").finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum KeyKind {
    Ip,
    User,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::User => "user",
        }
    }
}

/// The part of an address that identifies a client: the whole IPv4 address (an
/// IPv4-mapped IPv6 one included), the /64 of an IPv6 one, with the host bits zeroed
/// (a single host is routinely given a whole /64). Every per-client limit keys by
/// this, so that one machine cannot get a fresh bucket per address it picks.
pub(crate) fn client_block(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from_bits(
            v6.to_bits() & !u128::from(u64::MAX),
        )),
    }
}

/// [`client_block`] as a key: `192.0.2.7`, `2001:db8:1:2::/64`.
fn ip_key(ip: IpAddr) -> String {
    match client_block(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

// Longer usernames are hashed so that a key's size stays small whatever a client sends.
const MAX_PLAIN_USERNAME: usize = 64;

/// The username as counted: [`crate::input::username_key`] (trimmed, NFC, lowercase),
/// the name under which the handler finds one account; `None` when empty.
fn username_key(raw: &str) -> Option<String> {
    let name = crate::input::username_key(raw);
    if name.is_empty() {
        return None;
    }
    // `#` marks a hash; a name that starts with one is hashed too, so none collide.
    if name.len() > MAX_PLAIN_USERNAME || name.starts_with('#') {
        return Some(format!(
            "#{}",
            URL_SAFE_NO_PAD.encode(Sha256::digest(name.as_bytes()))
        ));
    }
    Some(name)
}

#[derive(Debug, PartialEq, Eq)]
enum Username {
    None,
    One(String),
    Several,
}

/// Where the handler's extractors can read a username from, by the rules of axum
/// 0.8's own extractors, so that the limiter reads every place the handler might:
///
/// - `Form` reads the query string of a `GET`, and otherwise the body when the
///   `Content-Type` header, as text, *starts with* `application/x-www-form-urlencoded`
///   (a byte prefix: `application/x-www-form-urlencodedX` is read as a form);
/// - `Json` reads the body when the header parses as a media type `application/json`
///   or `application/*+json`, whatever the method.
///
/// Both look at the first `Content-Type` header only, as this does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UsernameSources {
    query: bool,
    form_body: bool,
    json_body: bool,
}

impl UsernameSources {
    fn of(method: &Method, headers: &HeaderMap) -> Self {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        let is_get = method == Method::GET;
        let form_body = !is_get
            && content_type.is_some_and(|value| {
                value.starts_with(mime::APPLICATION_WWW_FORM_URLENCODED.as_ref())
            });
        let json_body = content_type
            .and_then(|value| value.parse::<mime::Mime>().ok())
            .is_some_and(|media| {
                media.type_() == mime::APPLICATION
                    && (media.subtype() == mime::JSON
                        || media.suffix().is_some_and(|suffix| suffix == mime::JSON))
            });
        Self {
            query: is_get,
            form_body,
            json_body,
        }
    }

    /// Whether a handler could read a username at all: when not, the request is
    /// refused (415) rather than let through uncounted.
    fn any(self) -> bool {
        self.query || self.form_body || self.json_body
    }

    fn reads_body(self) -> bool {
        self.form_body || self.json_body
    }
}

/// Why a body on a username-counted route is refused before it is counted.
#[derive(Debug, PartialEq, Eq)]
enum UnreadableUsername {
    /// JSON that is not an object: serde reads a struct from an array as well, by
    /// position, where no field is called `username`.
    NotAnObject,
}

/// The `username` values of a urlencoded form, decoded pair by pair.
fn form_usernames(bytes: &[u8]) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
    form_urlencoded::parse(bytes)
        .filter(|(key, _)| key == "username")
        .map(|(_, value)| value)
}

/// The `username` of every source the handler may read (see [`UsernameSources`]).
/// Bodies that do not parse name nobody: the handler refuses them anyway.
fn find_username(
    sources: UsernameSources,
    query: &str,
    body: &[u8],
) -> Result<Username, UnreadableUsername> {
    let mut json_names = Vec::new();
    if sources.json_body {
        let first = body
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(&b'{') {
            return Err(UnreadableUsername::NotAnObject);
        }
        if let Ok(names) = serde_json::from_slice::<JsonUsernames>(body) {
            json_names = names.0;
        }
    }
    // Pair by pair: nothing is kept of the other fields, and reading stops at a
    // second, different username.
    let query_names = sources
        .query
        .then(|| form_usernames(query.as_bytes()))
        .into_iter()
        .flatten();
    let body_names = sources
        .form_body
        .then(|| form_usernames(body))
        .into_iter()
        .flatten();
    Ok(one_username(query_names.chain(body_names).chain(
        json_names.into_iter().map(std::borrow::Cow::Owned),
    )))
}

/// `One` when every non-empty value names the same user (after [`username_key`]),
/// `Several` as soon as one names another.
fn one_username<'a>(values: impl Iterator<Item = std::borrow::Cow<'a, str>>) -> Username {
    let mut found: Option<String> = None;
    for value in values {
        let Some(name) = username_key(&value) else {
            continue;
        };
        match &found {
            None => found = Some(name),
            Some(first) if *first == name => {}
            Some(_) => return Username::Several,
        }
    }
    found.map_or(Username::None, Username::One)
}

/// Every top-level `"username"` string of a JSON object, duplicates included: parsers
/// disagree on which duplicate wins, so all of them are seen.
struct JsonUsernames(Vec<String>);

impl<'de> serde::Deserialize<'de> for JsonUsernames {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonUsernames;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "username" {
                        if let serde_json::Value::String(name) = map.next_value()? {
                            names.push(name);
                        }
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(JsonUsernames(names))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn set_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert(LIMIT_HEADER, HeaderValue::from(decision.limit));
    headers.insert(REMAINING_HEADER, HeaderValue::from(decision.remaining));
    headers.insert(
        RESET_HEADER,
        HeaderValue::from(ceil_secs(decision.reset_after)),
    );
}

struct Refusal<'a> {
    group: &'a str,
    kind: KeyKind,
    client: IpAddr,
    path: &'a str,
}

fn refuse(refusal: Refusal<'_>, decision: &Decision) -> Response<Body> {
    tracing::warn!(
        target: "portcullis::security",
        event = "rate_limited",
        group = refusal.group,
        key_kind = refusal.kind.as_str(),
        client_ip = %refusal.client,
        path = refusal.path,
        "refused a request over its rate limit"
    );
    let retry = decision
        .retry_after
        .map(ceil_secs)
        .unwrap_or_else(|| ceil_secs(decision.reset_after))
        .max(1);
    let mut response = Error::too_many_requests(retry).into_response();
    set_headers(response.headers_mut(), decision);
    response
}

fn unavailable(error: &RateLimitStoreError, group: &str, path: &str) -> Response<Body> {
    tracing::error!(
        target: "portcullis::security",
        event = "rate_limit_backend_error",
        error = %error,
        group,
        path,
        "the rate-limit backend failed; refused the request (fail closed)"
    );
    Error::service_unavailable(5).into_response()
}

/// Counts one request under `key`; the response to send when it may not go on.
async fn count(
    shared: &Shared,
    at: Refusal<'_>,
    key: &str,
    quota: Quota,
) -> Result<Decision, Response<Body>> {
    let key = format!("{}:{}:{key}", at.group, at.kind.as_str());
    match shared.backend.check(&key, &quota).await {
        Ok(decision) if decision.allowed => Ok(decision),
        Ok(decision) => Err(refuse(at, &decision)),
        Err(error) => Err(unavailable(&error, at.group, at.path)),
    }
}

/// Keeps the decision with the fewest requests left: the one a client should heed.
fn tighter(current: Option<Decision>, new: Decision) -> Option<Decision> {
    match current {
        Some(c) if c.remaining <= new.remaining => Some(c),
        _ => Some(new),
    }
}

impl<S> Service<Request<Body>> for RateLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            let Some(rule) = shared.rule(req.method(), &path) else {
                return inner.call(req).await;
            };
            let Some(client) = req.extensions().get::<ClientInfo>().map(|c| c.ip) else {
                // Counting by a header here would let any client pick its bucket.
                tracing::error!("the rate limiter needs the client-info layer outside it");
                return Ok(Error::internal().into_response());
            };
            let group = rule.group.name.as_str();
            let mut tightest = None;
            let at = |kind| Refusal {
                group,
                kind,
                client,
                path: &path,
            };

            // The address first: a client over its limit is refused before its body
            // is read.
            if let Some(quota) = rule.per_ip {
                match count(&shared, at(KeyKind::Ip), &ip_key(client), quota).await {
                    Ok(decision) => tightest = tighter(tightest, decision),
                    Err(response) => return Ok(response),
                }
            }
            if let Some(quota) = rule.per_username {
                let sources = UsernameSources::of(req.method(), req.headers());
                if !sources.any() {
                    // Counting nothing here would let a body of a type the handler
                    // also reads (an extractor the limiter does not know) guess
                    // without limit.
                    return Ok(Error::unsupported_media_type(
                        "Send the body as application/x-www-form-urlencoded or application/json.",
                    )
                    .into_response());
                }
                let query = req.uri().query().unwrap_or("").to_owned();
                let mut bytes = bytes::Bytes::new();
                if sources.reads_body() {
                    (req, bytes) = match buffer_body(req, shared.max_body_bytes).await {
                        Ok(buffered) => buffered,
                        Err(too_large) => return Ok(too_large),
                    };
                }
                match find_username(sources, &query, &bytes) {
                    Ok(Username::None) => {}
                    Ok(Username::One(name)) => {
                        match count(&shared, at(KeyKind::User), &name, quota).await {
                            Ok(decision) => tightest = tighter(tightest, decision),
                            Err(response) => return Ok(response),
                        }
                    }
                    Ok(Username::Several) => {
                        return Ok(Error::bad_request(
                            "The request names more than one username; send one.",
                        )
                        .into_response());
                    }
                    Err(UnreadableUsername::NotAnObject) => {
                        return Ok(
                            Error::bad_request("Send the JSON body as an object.").into_response()
                        );
                    }
                }
            }
            let mut response = inner.call(req).await?;
            if let Some(decision) = tightest {
                set_headers(response.headers_mut(), &decision);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn usernames_are_normalised_and_long_ones_hashed() {
        assert_eq!(username_key("  Alice "), Some("alice".to_owned()));
        assert_eq!(username_key("ALICE"), username_key("alice\t"));
        assert_eq!(username_key("   "), None);
        // NFC, as the handler reads names: KELVIN SIGN is `K`.
        assert_eq!(username_key("\u{212A}elvin"), Some("kelvin".to_owned()));
        let long = username_key(&"a".repeat(10_000)).unwrap();
        assert!(long.starts_with('#') && long.len() < 50, "{long}");
        // A name that looks like a hash is hashed itself, so it cannot collide with one.
        let fake = format!("#{}", &long[1..]);
        assert_ne!(username_key(&fake).unwrap(), long);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a = ip_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ip_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, ip_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(ip_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    fn sources(method: Method, content_type: &str) -> UsernameSources {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        UsernameSources::of(&method, &headers)
    }

    #[test]
    fn usernames_are_found_in_forms_and_json() {
        let form = sources(Method::POST, "application/x-www-form-urlencoded");
        let json = sources(Method::POST, "application/json");
        let one = |name: &str| Ok(Username::One(name.to_owned()));
        let find = |sources, body: &[u8]| find_username(sources, "", body);
        assert_eq!(find(form, b"username=Alice+&password=x"), one("alice"));
        assert_eq!(
            find(json, br#"{"password":"x","username":" ALICE"}"#),
            one("alice")
        );
        assert_eq!(find(json, br#"{"username":7}"#), Ok(Username::None));
        assert_eq!(find(json, b"{broken"), Ok(Username::None));
        assert_eq!(find(form, b"password=x"), Ok(Username::None));
        // serde reads a struct from an array too, by position: refused.
        assert_eq!(
            find(json, br#" ["victim", "guess"]"#),
            Err(UnreadableUsername::NotAnObject)
        );
        assert_eq!(find(json, b""), Err(UnreadableUsername::NotAnObject));
        // Parsers disagree about duplicates: two different names are refused.
        assert_eq!(
            find(form, b"username=a&username=victim"),
            Ok(Username::Several)
        );
        assert_eq!(
            find(json, br#"{"username":"a","username":"victim"}"#),
            Ok(Username::Several)
        );
        assert_eq!(find(form, b"username=bob&username=BOB"), one("bob"));
        // A GET form is read from the query string, as axum's `Form` reads it.
        let get = sources(Method::GET, "text/plain");
        assert_eq!(
            find_username(get, "username=Victim", b"username=other"),
            one("victim")
        );
    }

    #[test]
    fn sources_follow_the_extractors_rules() {
        let form = UsernameSources {
            query: false,
            form_body: true,
            json_body: false,
        };
        let json = UsernameSources {
            query: false,
            form_body: false,
            json_body: true,
        };
        // `Form` takes any type that starts with its own, byte for byte.
        for read_as_form in [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencodedX",
            "application/x-www-form-urlencoded; charset=utf-8",
            "application/x-www-form-urlencoded/evil",
        ] {
            assert_eq!(sources(Method::POST, read_as_form), form, "{read_as_form}");
        }
        for read_as_json in [
            "application/json",
            "application/json;charset=utf-8",
            "application/problem+json",
            "Application/JSON",
        ] {
            assert_eq!(sources(Method::POST, read_as_json), json, "{read_as_json}");
        }
        // Both at once: every name the two could read is counted.
        let both = sources(Method::POST, "application/x-www-form-urlencoded+json");
        assert!(both.form_body && both.json_body);
        assert_eq!(
            find_username(both, "", br#"{"a":"&username=victim&","username":"other"}"#),
            Ok(Username::Several)
        );
        for unread in [
            "text/plain",
            "multipart/form-data; boundary=x",
            " application/x-www-form-urlencoded",
            "APPLICATION/X-WWW-FORM-URLENCODED",
            "text/json",
        ] {
            assert!(!sources(Method::POST, unread).any(), "{unread}");
        }
        assert!(!UsernameSources::of(&Method::POST, &HeaderMap::new()).any());
        assert!(UsernameSources::of(&Method::GET, &HeaderMap::new()).query);
    }

    #[test]
    fn invalid_configuration_is_refused() {
        let backend: Arc<dyn RateLimitStore> = Arc::new(MemoryRateLimitStore::new());
        let build = |config: RateLimitConfig| config.layer(backend.clone());
        let base = RateLimitConfig::default;
        assert!(build(base()).is_ok());
        let group = |name: &str| {
            RateLimitGroup::new(name)
                .path("/x")
                .per_ip(Quota::per_minute(1))
        };
        let cases = [
            base().group(RateLimitGroup::auth().per_ip(Quota::per_minute(0))),
            base().group(RateLimitGroup::auth().per_username(Quota::new(5, Duration::ZERO))),
            base().default_per_ip(Quota::per_minute(0)),
            base().group(group("x").path("login")),
            base().group(group("x").path("")),
            base().group(group("x").path("/a?b=1")),
            base().group(group("x").path("/users/{id}")),
            base().group(RateLimitGroup::new("empty").per_ip(Quota::per_minute(1))),
            base().group(group("Upper")),
            base().group(group("a:b")),
            base().group(group("")),
            base().group(group("default")),
            base().group(group("none").without_ip_limit()),
            base().group(group("twice").path("/login")),
            base().max_body_bytes(0),
        ];
        for (i, config) in cases.into_iter().enumerate() {
            assert!(build(config).is_err(), "case {i} was accepted");
        }
        // Different methods on the same path do not overlap.
        assert!(build(base().group(group("pages").method(Method::GET).path("/login"))).is_ok());
        // Adding a group with an existing name replaces it.
        let replaced = base().group(RateLimitGroup::auth().per_ip(Quota::per_minute(3)));
        assert_eq!(replaced.groups.len(), 1);
    }

    #[test]
    fn decisions_count_down_and_say_when_to_retry() {
        block_on(async {
            let backend = MemoryRateLimitStore::new();
            let quota = Quota::per_minute(3);
            let mut remaining = Vec::new();
            for _ in 0..3 {
                let d = backend.check("t:ip:1", &quota).await.unwrap();
                assert!(d.allowed);
                assert_eq!(d.limit, 3);
                remaining.push(d.remaining);
            }
            assert_eq!(remaining, [2, 1, 0]);
            let refused = backend.check("t:ip:1", &quota).await.unwrap();
            assert!(!refused.allowed);
            let retry = refused.retry_after.unwrap();
            assert!(retry > Duration::from_secs(18) && retry <= Duration::from_secs(20));
            assert!(refused.reset_after > Duration::from_secs(58));
            assert!(refused.reset_after <= Duration::from_secs(60));
            // Another key and another quota have their own buckets.
            assert!(backend.check("t:ip:2", &quota).await.unwrap().allowed);
            assert!(
                backend
                    .check("t:ip:1", &Quota::per_minute(4))
                    .await
                    .unwrap()
                    .allowed
            );
            assert_eq!(
                backend.check("t:ip:1", &Quota::per_minute(0)).await,
                Err(RateLimitStoreError::InvalidQuota {
                    burst: 0,
                    period: Duration::from_secs(60)
                })
            );
        });
    }

    #[test]
    fn bench_mode_multiplies_every_limit() {
        assert_eq!(
            Quota::per_minute(10).scaled(BENCH_FACTOR).burst(),
            10_000_000
        );
        assert_eq!(
            Quota::per_minute(10_000).scaled(BENCH_FACTOR).burst(),
            u32::MAX
        );
        let layer = RateLimitConfig::default()
            .mode(RateLimitMode::Bench)
            .layer(Arc::new(MemoryRateLimitStore::new()))
            .unwrap();
        let auth = &layer.shared.rules[0];
        assert_eq!(auth.per_ip.unwrap().burst(), 10_000_000);
        assert_eq!(
            layer
                .shared
                .default
                .as_ref()
                .unwrap()
                .per_ip
                .unwrap()
                .burst(),
            600_000_000
        );
    }

    #[test]
    fn the_key_count_never_passes_the_cap() {
        block_on(async {
            let backend = MemoryRateLimitStoreConfig::default()
                .max_keys(1_000)
                .build();
            let quota = Quota::per_minute(10);
            for i in 0..20_000 {
                backend.check(&format!("t:ip:{i}"), &quota).await.unwrap();
                assert!(backend.len() < 1_000, "{} keys after {i}", backend.len());
            }
        });
    }

    #[test]
    fn idle_keys_are_dropped_without_forgetting_active_ones() {
        block_on(async {
            let backend = MemoryRateLimitStoreConfig::default()
                .max_keys(1_000)
                .build();
            let slow = Quota::per_minute(1);
            // Spent: must survive every sweep.
            assert!(backend.check("t:user:victim", &slow).await.unwrap().allowed);
            let fast = Quota::new(1, Duration::from_millis(1));
            for i in 0..500 {
                backend.check(&format!("t:ip:{i}"), &fast).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            // Past the cap, idle keys go first; nothing active is forgotten.
            for i in 500..1_400 {
                backend.check(&format!("t:ip:{i}"), &fast).await.unwrap();
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
            assert!(backend.len() < 1_000);
            assert!(!backend.check("t:user:victim", &slow).await.unwrap().allowed);
        });
    }

    #[test]
    fn the_background_task_sweeps_and_does_not_keep_the_backend_alive() {
        block_on(async {
            let backend = MemoryRateLimitStoreConfig::default()
                .sweep_interval(Duration::from_millis(20))
                .build();
            let weak = Arc::downgrade(&backend.inner);
            let fast = Quota::new(1, Duration::from_millis(1));
            for i in 0..100 {
                backend.check(&format!("t:ip:{i}"), &fast).await.unwrap();
            }
            let mut swept = false;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if backend.is_empty() {
                    swept = true;
                    break;
                }
            }
            assert!(swept, "{} keys left", backend.len());
            drop(backend);
            // The task held only a Weak: the backend is gone at once.
            assert!(weak.upgrade().is_none());
        });
    }

    #[test]
    fn a_flood_of_addresses_leaves_a_spent_username_bucket_spent() {
        block_on(async {
            let backend = MemoryRateLimitStoreConfig::default()
                .max_keys(1_000)
                .build();
            // The contract's auth quota, for the username and the addresses alike.
            let quota = Quota::per_minute(10);
            for _ in 0..10 {
                assert!(
                    backend
                        .check("auth:user:victim", &quota)
                        .await
                        .unwrap()
                        .allowed
                );
            }
            assert!(
                !backend
                    .check("auth:user:victim", &quota)
                    .await
                    .unwrap()
                    .allowed
            );
            // 900 distinct, active addresses: past the cap's watermarks, so the
            // address pool forgets its busiest buckets.
            for i in 0..900 {
                let key = format!("auth:ip:198.51.{}.{}", i / 256, i % 256);
                assert!(backend.check(&key, &quota).await.unwrap().allowed);
            }
            assert!(backend.len() - backend.username_len() < 1_000);
            let after = backend.check("auth:user:victim", &quota).await.unwrap();
            assert!(
                !after.allowed,
                "the flood of addresses reset the victim's bucket"
            );
        });
    }

    #[test]
    fn a_full_username_pool_refuses_rather_than_forgets() {
        block_on(async {
            let backend = MemoryRateLimitStoreConfig::default()
                .max_username_keys(1_000)
                .build();
            let quota = Quota::per_minute(10);
            for _ in 0..10 {
                backend.check("auth:user:victim", &quota).await.unwrap();
            }
            let mut full = 0;
            for i in 0..2_000 {
                match backend.check(&format!("auth:user:guess{i}"), &quota).await {
                    Ok(decision) => assert!(decision.allowed),
                    Err(RateLimitStoreError::Full) => full += 1,
                    Err(other) => panic!("{other}"),
                }
                assert!(backend.username_len() < 1_000);
                // Never allowed again, whatever the flood did.
                let victim = backend.check("auth:user:victim", &quota).await;
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
                backend
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
            let backend = MemoryRateLimitStoreConfig::default()
                .max_username_keys(1_000)
                .build();
            let slow = Quota::per_minute(1);
            assert!(backend.check("t:user:victim", &slow).await.unwrap().allowed);
            let fast = Quota::new(1, Duration::from_millis(1));
            for i in 0..3_000 {
                // Idle a moment after use: dropped, never a reason to refuse.
                backend
                    .check(&format!("t:user:name{i}"), &fast)
                    .await
                    .unwrap();
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
            assert!(backend.username_len() < 1_000);
            assert!(!backend.check("t:user:victim", &slow).await.unwrap().allowed);
        });
    }

    /// One million distinct addresses, as from a flood of spoofed ones: the stored
    /// count stays under the cap throughout.
    #[test]
    fn a_million_distinct_keys_stay_under_the_cap() {
        block_on(async {
            let backend = MemoryRateLimitStore::new();
            let quota = Quota::per_minute(10);
            let started = Instant::now();
            let mut key = String::with_capacity(32);
            let mut peak = 0;
            for i in 0..1_000_000u32 {
                key.clear();
                write!(key, "auth:ip:flood{i}").unwrap();
                let decision = backend.check(&key, &quota).await.unwrap();
                assert!(decision.allowed);
                if i % 1_000 == 0 {
                    peak = peak.max(backend.len());
                }
            }
            peak = peak.max(backend.len());
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
