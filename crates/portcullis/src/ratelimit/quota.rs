//! What a key may do ([`Quota`]), what a store answers ([`Decision`]), and the GCRA
//! arithmetic that joins them, shared by every store and by the conformance suite.

use std::time::Duration;

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
/// assert_eq!(quota.interval(), Duration::from_secs(6));
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

    /// How long one request takes to come back: `period / burst`, never zero (a
    /// store's GCRA cannot step by nothing). A bucket refills one request per
    /// interval; a refused request may retry one interval after the bucket ran dry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::ratelimit::Quota;
    ///
    /// assert_eq!(Quota::new(10, Duration::from_millis(600)).interval(), Duration::from_millis(60));
    /// assert_eq!(Quota::new(3, Duration::from_nanos(1)).interval(), Duration::from_nanos(1));
    /// ```
    pub fn interval(&self) -> Duration {
        (self.period / self.burst.max(1)).max(Duration::from_nanos(1))
    }

    /// Whether a store can count against this quota: a size and a period above zero.
    pub(crate) fn is_valid(&self) -> bool {
        self.burst > 0 && !self.period.is_zero()
    }

    /// The same period with `factor` times the requests (capped at `u32::MAX`).
    pub(crate) fn scaled(self, factor: u32) -> Self {
        Self::new(self.burst.saturating_mul(factor), self.period)
    }

    /// How long until the bucket is full again when `used` of its requests are spent:
    /// one interval per spent request.
    fn until_full(&self, used: u32) -> Duration {
        self.interval().saturating_mul(used)
    }
}

/// A store's answer for one key.
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

    /// GCRA's answer to an allowed request that leaves `remaining` in `quota`'s bucket:
    /// full again after one interval per spent request (an upper bound: part of the
    /// next interval may already have passed).
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::ratelimit::{Decision, Quota};
    ///
    /// let first = Decision::gcra_allowed(&Quota::per_minute(10), 9);
    /// assert_eq!(first, Decision::allowed(10, 9, Duration::from_secs(6)));
    /// ```
    pub fn gcra_allowed(quota: &Quota, remaining: u32) -> Self {
        let remaining = remaining.min(quota.burst);
        Self::allowed(
            quota.burst,
            remaining,
            quota.until_full(quota.burst - remaining),
        )
    }

    /// GCRA's answer to a refused request whose next request fits after `retry_after`:
    /// the rest of the bucket refills one interval at a time after that.
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::ratelimit::{Decision, Quota};
    ///
    /// let no = Decision::gcra_refused(&Quota::per_minute(10), Duration::from_secs(6));
    /// assert_eq!(no.reset_after, Duration::from_secs(60));
    /// assert_eq!(no.retry_after, Some(Duration::from_secs(6)));
    /// ```
    pub fn gcra_refused(quota: &Quota, retry_after: Duration) -> Self {
        Self::refused(
            quota.burst,
            retry_after.saturating_add(quota.until_full(quota.burst.saturating_sub(1))),
            retry_after,
        )
    }
}
