//! What is counted where: [`RateLimitGroup`]s of exact paths, the default limit for
//! every other request, and the validation that turns them into a [`RateLimitLayer`].

use std::sync::Arc;

use axum::http::Method;

use super::layer::{RateLimitLayer, Rule, Shared};
use super::{Quota, RateLimitStore};
use crate::config::RateLimitMode;

/// The name of the rule for requests that no group matches; reserved.
pub const DEFAULT_GROUP: &str = "default";

/// How much [`RateLimitMode::Bench`] multiplies every limit by.
pub const BENCH_FACTOR: u32 = 1_000_000;

/// The default largest body read for a username: 1 MiB, as the stack's body limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

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
    sign_in: bool,
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
            sign_in: false,
        }
    }

    /// The contract's `auth` group: `POST` to `/login`, `/register` and `/api/token`,
    /// 10 a minute per client IP and 10 a minute per username; it guards sign-in.
    pub fn auth() -> Self {
        Self::new("auth")
            .sign_in()
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

    /// Marks the group as guarding sign-in (and other credential checks): its
    /// refusals carry [`Refused::sign_in`](super::Refused), which
    /// `account::SecurityLog::refusals_layer` (feature `account`) records as security events.
    ///
    /// ```
    /// use portcullis::ratelimit::{Quota, RateLimitGroup};
    ///
    /// let otp = RateLimitGroup::new("otp").path("/login/otp").per_ip(Quota::per_minute(10)).sign_in();
    /// assert!(otp.guards_sign_in());
    /// ```
    pub fn sign_in(mut self) -> Self {
        self.sign_in = true;
        self
    }

    /// Whether the group guards sign-in.
    pub fn guards_sign_in(&self) -> bool {
        self.sign_in
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn matches(&self, method: &Method, path: &str) -> bool {
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
    /// A memory store pool too small for its watermarks.
    #[error("the memory rate-limit store's {pool} must be at least {min}")]
    TooFewKeys {
        /// Which pool (`max_keys` or `max_username_keys`).
        pool: &'static str,
        /// The smallest pool that works.
        min: usize,
    },
    /// A memory store that would sweep without pause.
    #[error("the memory rate-limit store's sweep interval must be longer than zero")]
    ZeroSweepInterval,
    /// A zero body limit, which would leave no username to count.
    #[error("the rate limiter's body limit is zero")]
    ZeroBodyLimit,
}

/// Settings of [`RateLimitLayer`]. `Default` is the contract: the [`RateLimitGroup::auth`]
/// group, and 600 a minute per client IP for every other request. To limit sign-in
/// alone, add [`RateLimitConfig::without_default_limit`].
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

    /// Validates the settings and builds the layer, counting in `store`. Install it
    /// inside the client-info layer (it reads [`ClientInfo`](crate::client_ip::ClientInfo))
    /// and inside the error-page layer (its refusals are rendered there);
    /// [`crate::stack::SecureStack`] does both.
    pub fn layer(
        self,
        store: Arc<dyn RateLimitStore>,
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
                store,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::MemoryRateLimitStore;
    use std::time::Duration;

    #[test]
    fn invalid_configuration_is_refused() {
        let store: Arc<dyn RateLimitStore> = Arc::new(MemoryRateLimitStore::new());
        let build = |config: RateLimitConfig| config.layer(store.clone());
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
}
