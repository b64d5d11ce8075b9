//! The parameters new hashes are made with, and how many may be computed at once.

use argon2::Params;

/// How long [`Passwords::hash`](super::Passwords::hash) and [`Passwords::verify`](super::Passwords::verify) wait for a turn by default
/// before answering [`PasswordError::Busy`](super::PasswordError::Busy).
pub const DEFAULT_PERMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The parameters new hashes are made with, and how many may be computed at once.
///
/// The default is Argon2id with m = 19,456 KiB (19 MiB), t = 2, p = 1 (the minimum
/// OWASP recommends) and as many concurrent computations as the machine has CPUs.
///
/// ```
/// use portcullis::password::{PasswordConfig, Passwords};
///
/// // Stronger than the default: 64 MiB, 3 passes, at most 4 hashes at once.
/// let config = PasswordConfig::default()
///     .memory_kib(64 * 1024)
///     .iterations(3)
///     .max_concurrent(4);
/// assert!(Passwords::new(config).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordConfig {
    pub(super) memory_kib: u32,
    pub(super) iterations: u32,
    pub(super) parallelism: u32,
    pub(super) max_concurrent: usize,
    pub(super) permit_timeout: std::time::Duration,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
            // Each computation keeps one core busy; more at once than there are cores
            // only adds memory and latency.
            max_concurrent: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            permit_timeout: DEFAULT_PERMIT_TIMEOUT,
        }
    }
}

impl PasswordConfig {
    /// Argon2 memory cost in KiB (`m`), at most [`MAX_ARGON2_MEMORY_KIB`](super::MAX_ARGON2_MEMORY_KIB).
    ///
    /// ```
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().memory_kib(47_104);
    /// # let _ = config;
    /// ```
    pub fn memory_kib(mut self, memory_kib: u32) -> Self {
        self.memory_kib = memory_kib;
        self
    }

    /// Argon2 passes over the memory (`t`), at most [`MAX_ARGON2_ITERATIONS`](super::MAX_ARGON2_ITERATIONS).
    ///
    /// ```
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().iterations(3);
    /// # let _ = config;
    /// ```
    pub fn iterations(mut self, iterations: u32) -> Self {
        self.iterations = iterations;
        self
    }

    /// Argon2 lanes (`p`), at most [`MAX_ARGON2_PARALLELISM`](super::MAX_ARGON2_PARALLELISM).
    ///
    /// This implementation computes the lanes one after the other, so more lanes cost
    /// time without adding strength; keep 1 unless the hashes are shared with a
    /// system that uses more.
    ///
    /// ```
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().parallelism(1);
    /// # let _ = config;
    /// ```
    pub fn parallelism(mut self, parallelism: u32) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// How many hashes or verifications [`Passwords::hash`](super::Passwords::hash) and [`Passwords::verify`](super::Passwords::verify)
    /// run at once (at least 1); the others wait for a turn. Each keeps its Argon2
    /// working memory once used (`memory_kib`), so this also bounds what hashing holds.
    ///
    /// ```
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().max_concurrent(2);
    /// # let _ = config;
    /// ```
    pub fn max_concurrent(mut self, max_concurrent: usize) -> Self {
        self.max_concurrent = max_concurrent;
        self
    }

    /// How long a call waits for a turn when `max_concurrent` computations already run
    /// (default 5 s, [`DEFAULT_PERMIT_TIMEOUT`]). Past it the call fails with
    /// [`PasswordError::Busy`](super::PasswordError::Busy), a 503 for the client, rather than queue without end
    /// behind a flood of logins. Waiting needs Tokio's timer (on under
    /// `#[tokio::main]`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().permit_timeout(Duration::from_secs(2));
    /// # let _ = config;
    /// ```
    pub fn permit_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.permit_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::{PasswordError, Passwords, MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB};

    #[test]
    fn invalid_configurations_are_refused() {
        for config in [
            PasswordConfig::default().iterations(0),
            PasswordConfig::default().parallelism(0),
            PasswordConfig::default().memory_kib(1),
            PasswordConfig::default().memory_kib(MAX_ARGON2_MEMORY_KIB + 1),
            PasswordConfig::default().iterations(101),
            PasswordConfig::default().iterations(MAX_ARGON2_ITERATIONS + 1),
            // Each within its own limit, too much work together.
            PasswordConfig::default()
                .memory_kib(MAX_ARGON2_MEMORY_KIB)
                .iterations(3),
            PasswordConfig::default().parallelism(17),
            PasswordConfig::default().max_concurrent(0),
        ] {
            assert!(
                matches!(Passwords::new(config), Err(PasswordError::InvalidConfig(_))),
                "{config:?}"
            );
        }
        assert!(PasswordConfig::default().max_concurrent >= 1);
    }
}
