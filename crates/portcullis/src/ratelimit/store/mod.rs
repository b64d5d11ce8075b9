//! Where buckets live: the [`RateLimitStore`] trait the layer counts through, the
//! in-process [`MemoryRateLimitStore`], and [`RedisRateLimitStore`] (feature `redis`)
//! for several instances that must share their counts.
//!
//! Every store runs the same GCRA: a key's bucket holds [`Quota::burst`] requests and
//! gets one back every [`Quota::interval`]. The arithmetic of its answers is
//! [`Decision::gcra_allowed`] and [`Decision::gcra_refused`]; the
//! [`conformance`] suite (feature `test-util`) checks that a store keeps to it.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Decision, Quota};

#[cfg(feature = "test-util")]
pub mod conformance;
mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use memory::{MemoryRateLimitStore, MemoryRateLimitStoreConfig, DEFAULT_MAX_KEYS};
#[cfg(feature = "redis")]
pub use redis::RedisRateLimitStore;

/// A store could not decide. The layer answers 503 (fail closed): a limiter that
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
    #[error("rate-limit store unavailable: {0}")]
    Unavailable(String),
    /// The store holds as many keys of this kind as it may, all in use, and would have
    /// to forget one to count this request (see [`MemoryRateLimitStore`]).
    #[error("rate-limit store full: too many keys are active at once")]
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
/// `auth:user:alice`); a store only has to count under them. The layer checks a key
/// against one quota only, always the same. What every store does, and the
/// [`conformance`] suite checks:
///
/// - a key's first [`Quota::burst`] checks are allowed, `remaining` counting down to
///   0, each with [`Decision::gcra_allowed`]'s `reset_after`; the next is refused,
///   with a `retry_after` of at most one [`Quota::interval`] (the time until one
///   request has come back) and [`Decision::gcra_refused`]'s `reset_after`;
/// - one request comes back per interval, and a full bucket holds no more than the
///   burst however long the key was idle;
/// - each call counts one request when allowed; a refused request does not use up the
///   bucket;
/// - keys are counted apart;
/// - checks of one key that run at the same time, from one instance or several,
///   admit exactly the burst between them (each check is one atomic step); the
///   `remaining` of each may be one less than exact, never more;
/// - a quota with a zero size or period is [`RateLimitStoreError::InvalidQuota`];
/// - a store that cannot answer says so with an error, never with a guess: the layer
///   then fails closed.
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

impl RateLimitStoreError {
    /// [`RateLimitStoreError::InvalidQuota`] for `quota`.
    pub(crate) fn invalid_quota(quota: &Quota) -> Self {
        Self::InvalidQuota {
            burst: quota.burst(),
            period: quota.period(),
        }
    }

    /// [`RateLimitStoreError::InvalidQuota`] unless `quota` has a size and a period
    /// above zero: what every store answers before it counts.
    pub(crate) fn check_quota(quota: &Quota) -> Result<(), Self> {
        if quota.is_valid() {
            Ok(())
        } else {
            Err(Self::invalid_quota(quota))
        }
    }
}
