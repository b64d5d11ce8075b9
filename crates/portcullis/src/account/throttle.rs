//! The per-account delay after repeated failures: exponential and bounded, never a
//! lockout that only an administrator lifts.

use std::sync::Mutex;
use std::time::Duration;

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

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// Unix milliseconds before which the account takes no attempt.
    blocked_until: i64,
}

/// Per-account failure counts and the delays they impose (in memory, per instance).
///
/// ```
/// use portcullis::account::{AccountThrottle, ThrottleConfig};
///
/// let throttle = AccountThrottle::new(ThrottleConfig { free_failures: 2, ..Default::default() });
/// assert!(throttle.check("user:7").is_ok());
/// assert!(!throttle.failure("user:7"));
/// assert!(!throttle.failure("user:7"));
/// // The third failure starts a delay: attempts are refused until it passes.
/// assert!(throttle.failure("user:7"));
/// let wait = throttle.check("user:7").unwrap_err();
/// assert!(wait.as_secs() >= 1);
/// assert!(throttle.check("user:8").is_ok());
/// ```
#[derive(Debug)]
pub struct AccountThrottle {
    config: ThrottleConfig,
    accounts: Mutex<ExpiringMap<String, Failures, i64>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl AccountThrottle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            accounts: Mutex::new(ExpiringMap::new(
                config.capacity.max(1),
                WhenFull::EvictSoonest,
            )),
            config,
        }
    }

    /// `Ok` when `account` may try now; otherwise how long it must wait. Check before
    /// verifying anything: a delayed attempt costs no password verification.
    pub fn check(&self, account: &str) -> Result<(), Duration> {
        let now = now_ms();
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        match accounts.get(account, now) {
            Some(failures) if failures.blocked_until > now => Err(Duration::from_millis(
                u64::try_from(failures.blocked_until - now).unwrap_or(0),
            )),
            _ => Ok(()),
        }
    }

    /// Counts a failure of `account`; `true` when it starts a delay (the first
    /// failure past the free ones: record a `lockout_started` event).
    pub fn failure(&self, account: &str) -> bool {
        let now = now_ms();
        let forget = i64::try_from(self.config.forget_after.as_millis()).unwrap_or(i64::MAX);
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let count = accounts.get(account, now).map_or(0, |f| f.count) + 1;
        let delay = i64::try_from(self.config.delay_after(count).as_millis()).unwrap_or(i64::MAX);
        let entry = Failures {
            count,
            blocked_until: now.saturating_add(delay),
        };
        // Evicting the entry closest to expiry when full: the capacity bounds memory
        // under a flood of distinct accounts.
        let _ = accounts.insert(account.to_owned(), entry, now.saturating_add(forget), now);
        count == self.config.free_failures + 1
    }

    /// Clears `account`'s failures after a success.
    pub fn success(&self, account: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
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

    #[test]
    fn a_flood_of_accounts_stays_bounded_and_success_clears() {
        let throttle = AccountThrottle::new(ThrottleConfig {
            free_failures: 0,
            capacity: 100,
            ..Default::default()
        });
        for i in 0..10_000 {
            throttle.failure(&format!("user:{i}"));
        }
        assert!(throttle.accounts.lock().unwrap().len() <= 100);
        throttle.failure("alice");
        assert!(throttle.check("alice").is_err());
        throttle.success("alice");
        assert!(throttle.check("alice").is_ok());
    }
}
