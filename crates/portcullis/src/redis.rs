//! Sessions, rate limits and revocations in Redis, shared by every instance of an app.
//!
//! One [`RedisConnection`] (one `fred` client, one connection that pipelines every
//! command) hands out the three stores the other modules take behind their traits:
//!
//! | store | trait | keys |
//! |---|---|---|
//! | [`RedisSessionStore`] | [`SessionStore`](crate::session::SessionStore) | `{prefix}:sess:{key}` (the record as JSON), `{prefix}:sessuser:{user}` (a set: the user's sessions) |
//! | [`RedisRateLimitStore`] | [`RateLimitStore`](crate::ratelimit::RateLimitStore) | `{prefix}:rl:{key}` (the bucket's theoretical arrival time, Unix ms) |
//! | [`RedisRevocationStore`] | [`RevocationStore`](crate::jwt::RevocationStore) | `{prefix}:fam:{family}`, `{prefix}:user:{user}`, `{prefix}:ufam:{user}` (hashes and a sorted set: one per live login, two per user) |
//!
//! Every key carries a TTL, so nothing outlives its purpose: a session its expiry, a
//! bucket the moment it is full again, a revocation the deadline it was given.
//!
//! What has to be atomic runs as a Lua script inside Redis, so that instances racing
//! for the same key never disagree: the GCRA step of a rate limit (with Redis's own
//! clock, so the instances' clocks do not matter), each step of a refresh family,
//! saving a session together with its user's index, and ending a user's sessions.
//!
//! Failure is never silent. [`RedisConnection::connect`] fails within three seconds when
//! nothing answers, instead of starting an app that cannot work; afterwards the client
//! reconnects on its own, forever, with backoff (100 ms doubling to 5 s), so service
//! resumes when Redis comes back without a restart. Every operation has a deadline
//! (2 s by default, [`RedisConnection::connect_with`]): a stalled or unreachable Redis is
//! an error, which the layers turn into `503` (fail closed), never a hang, an
//! anonymous session, an unlimited client or an unrevoked token. A command that was in
//! flight when its connection dropped fails rather than being sent again, since running
//! a script twice (two counted requests, a refresh token "reused" by its own retry)
//! would be a wrong answer. Errors never contain the URL's password.
//!
//! ```no_run
//! use std::sync::Arc;
//! use portcullis::ratelimit::RateLimitConfig;
//! use portcullis::redis::RedisConnection;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = RedisConnection::connect("redis://127.0.0.1:6379", "myapp").await?;
//! redis.ping().await?; // for /healthz
//! let limits = RateLimitConfig::default().layer(Arc::new(redis.rate_limits()))?;
//! let sessions = Arc::new(redis.sessions());
//! let revocations = Arc::new(redis.revocations());
//! # let _ = (limits, sessions, revocations);
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::ClientLike;
use fred::types::config::{Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy};
use fred::types::scripts::Script;
use fred::types::Builder;

/// The revocation store lives beside its trait, in [`crate::jwt`]; it is named here
/// too, with the connection that makes it.
#[cfg(feature = "jwt")]
#[doc(no_inline)]
pub use crate::jwt::RedisRevocationStore;
/// The session store lives beside its trait, in [`crate::session`]; it is named here
/// too, with the connection that makes it.
#[cfg(feature = "session")]
#[doc(no_inline)]
pub use crate::session::RedisSessionStore;

/// The rate-limit store lives beside its trait, in [`crate::ratelimit`]; it is named
/// here too, and [`RedisConnection::rate_limits`] makes it.
#[cfg(feature = "ratelimit")]
#[doc(no_inline)]
pub use crate::ratelimit::RedisRateLimitStore;

/// How long one operation may take by default before it is an error.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`RedisConnection::connect`] waits for the first connection at most.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

// Reconnection backoff: 100 ms, doubling, at most 5 s between attempts, forever.
const RECONNECT_MIN_MS: u32 = 100;
const RECONNECT_MAX_MS: u32 = 5_000;

/// Connecting to Redis failed, or Redis did not answer a ping. The message names the
/// server without its password.
///
/// ```
/// use portcullis::redis::RedisConnectError;
///
/// let e = RedisConnectError::InvalidUrl;
/// assert!(e.to_string().contains("redis://"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConnectError {
    /// The URL does not parse. It is not repeated: it may hold a password.
    #[error("invalid Redis URL (expected redis://[user:password@]host:port[/db] or rediss://…)")]
    InvalidUrl,
    /// The server could not be reached, refused the client, or answered nonsense.
    #[error("cannot reach Redis at {endpoint}: {reason}")]
    Unreachable {
        /// The server, as the URL names it, password removed.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("Redis at {endpoint} did not answer within {timeout:?}")]
    Timeout {
        /// The server, as the URL names it, password removed.
        endpoint: String,
        /// How long was waited.
        timeout: Duration,
    },
}

/// A connection to Redis and the stores built on it. Cheap to clone: clones share the
/// connection, which closes when the last clone is dropped.
///
/// `Debug` shows the server without the URL's password.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    prefix: String,
    timeout: Duration,
    endpoint: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The client's connection task holds the client too and would otherwise keep
        // reconnecting forever after the app has let go of it.
        let client = self.client.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("endpoint", &self.inner.endpoint)
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// `url` with any user name and password replaced by `***`, and no query string (it
/// can carry credentials too).
fn redact(url: &str) -> String {
    match crate::config::url_parts(url) {
        None => "[unparsable URL]".to_owned(),
        Some((scheme, Some(_), host)) => format!("{scheme}://***@{host}"),
        Some((scheme, None, host)) => format!("{scheme}://{host}"),
    }
}

/// A message for `error` that can be logged: fred's errors name the failure, never
/// the credentials, but a server's reply is cut short all the same.
fn describe(error: &FredError) -> String {
    let mut text = format!("{:?}: {}", error.kind(), error.details());
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl RedisConnection {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` for
    /// TLS) with [`DEFAULT_TIMEOUT`]; every key starts with `prefix:`.
    ///
    /// Fails within [`CONNECT_TIMEOUT`] when the server cannot be reached: an app that
    /// is configured to use Redis must not start without it.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RedisConnectError> {
        Self::connect_with(url, prefix, DEFAULT_TIMEOUT).await
    }

    /// [`connect`](Self::connect) with `timeout` for every later operation (at least
    /// one millisecond).
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self, RedisConnectError> {
        let timeout = timeout.max(Duration::from_millis(1));
        let endpoint = redact(url);
        // fred's parse errors may quote the URL, and with it the password: say only
        // that it did not parse.
        let config = Config::from_url(url).map_err(|_| RedisConnectError::InvalidUrl)?;
        let mut builder = Builder::from_config(config);
        builder.with_config(|config| {
            // At start-up an unreachable server is an error, not a reason to retry.
            config.fail_fast = true;
        });
        builder.set_policy(ReconnectPolicy::new_exponential(
            0, // no limit: keep trying until Redis is back
            RECONNECT_MIN_MS,
            RECONNECT_MAX_MS,
            2,
        ));
        builder.set_performance_config(PerformanceConfig {
            default_command_timeout: timeout,
            ..PerformanceConfig::default()
        });
        builder.set_connection_config(ConnectionConfig {
            connection_timeout: CONNECT_TIMEOUT.min(timeout.max(Duration::from_secs(1))),
            internal_command_timeout: timeout,
            // A command that was written when its connection died is not sent again:
            // the scripts are not idempotent, and a duplicate would be a wrong answer.
            max_command_attempts: 1,
            // A connection that stops answering (a half-open socket, a frozen server)
            // is closed and replaced rather than waited on forever.
            unresponsive: fred::types::config::UnresponsiveConfig {
                max_timeout: Some(timeout.saturating_mul(2)),
                interval: (timeout / 2).max(Duration::from_millis(100)),
            },
            ..ConnectionConfig::default()
        });
        let client = builder
            .build()
            .map_err(|error| RedisConnectError::Unreachable {
                endpoint: endpoint.clone(),
                reason: describe(&error),
            })?;
        match tokio::time::timeout(CONNECT_TIMEOUT, client.init()).await {
            Ok(Ok(_task)) => {}
            Ok(Err(error)) => {
                return Err(RedisConnectError::Unreachable {
                    endpoint,
                    reason: describe(&error),
                })
            }
            Err(_) => {
                // Stop the half-started connection task; it must not retry forever
                // behind the caller's back.
                let _ = tokio::time::timeout(Duration::from_millis(100), client.quit()).await;
                return Err(RedisConnectError::Timeout {
                    endpoint,
                    timeout: CONNECT_TIMEOUT,
                });
            }
        }
        let backend = Self {
            inner: Arc::new(Inner {
                client,
                prefix: prefix.to_owned(),
                timeout,
                endpoint,
            }),
        };
        backend.ping().await?;
        Ok(backend)
    }

    /// Asks Redis for a `PONG` within the operation timeout: for a health check.
    pub async fn ping(&self) -> Result<(), RedisConnectError> {
        let answer = self.run(self.inner.client.ping::<String>(None)).await;
        match answer {
            Ok(pong) if pong.eq_ignore_ascii_case("pong") => Ok(()),
            Ok(_) => Err(RedisConnectError::Unreachable {
                endpoint: self.inner.endpoint.clone(),
                reason: "unexpected answer to PING".to_owned(),
            }),
            Err(Failure::Timeout) => Err(RedisConnectError::Timeout {
                endpoint: self.inner.endpoint.clone(),
                timeout: self.inner.timeout,
            }),
            Err(Failure::Redis(reason)) => Err(RedisConnectError::Unreachable {
                endpoint: self.inner.endpoint.clone(),
                reason,
            }),
        }
    }

    /// The session store on this connection.
    #[cfg(feature = "session")]
    pub fn sessions(&self) -> RedisSessionStore {
        RedisSessionStore::new(self.clone())
    }

    /// The revocation store on this connection.
    #[cfg(feature = "jwt")]
    pub fn revocations(&self) -> RedisRevocationStore {
        RedisRevocationStore::new(self.clone())
    }

    /// The per-account failure counts ([`crate::account::AccountThrottle`]) on this
    /// connection.
    #[cfg(feature = "account")]
    pub fn account_throttles(&self) -> crate::account::RedisThrottleStore {
        crate::account::RedisThrottleStore::new(self.clone())
    }

    /// The key prefix (without its trailing `:`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The deadline of every operation.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The underlying `fred` client, for commands Portcullis does not wrap (and for
    /// tests). Commands sent through it get the same default timeout.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// `{prefix}:{kind}:{name}`: every key a store writes.
    #[cfg_attr(
        not(any(
            feature = "session",
            feature = "ratelimit",
            feature = "jwt",
            feature = "account"
        )),
        allow(dead_code)
    )]
    pub(crate) fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.inner.prefix)
    }

    /// Runs `operation` under the deadline. fred already times each command out; this
    /// bounds a whole operation (a script reload included) all the same.
    pub(crate) async fn run<T>(
        &self,
        operation: impl Future<Output = Result<T, FredError>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.inner.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) if *error.kind() == fred::error::ErrorKind::Timeout => {
                Err(Failure::Timeout)
            }
            Ok(Err(error)) => Err(Failure::Redis(describe(&error))),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Runs `script` (EVALSHA, loading it on `NOSCRIPT`) under the deadline.
    #[cfg_attr(
        not(any(
            feature = "session",
            feature = "ratelimit",
            feature = "jwt",
            feature = "account"
        )),
        allow(dead_code)
    )]
    pub(crate) async fn script<T: fred::types::FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, Failure> {
        self.run(script.evalsha_with_reload(&self.inner.client, keys, args))
            .await
    }
}

/// Why an operation failed, before it becomes the calling trait's error type.
#[derive(Debug)]
pub(crate) enum Failure {
    Timeout,
    Redis(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("Redis did not answer in time"),
            Self::Redis(reason) => write!(f, "Redis: {reason}"),
        }
    }
}

impl std::error::Error for Failure {}

// --- Scripts --------------------------------------------------------------------------

// Extends a key's expiry to ARGV-given Unix seconds, never shortening it.
#[cfg_attr(not(feature = "jwt"), allow(unused_macros))]
macro_rules! lua_extend {
    () => {
        r"
local function extend(key, at)
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIREAT', key, at)
  else
    redis.call('EXPIREAT', key, at, 'GT')
  end
end
"
    };
}
#[cfg(feature = "jwt")]
pub(crate) use lua_extend;

/// The script of `$source`, loaded once per process (`EVALSHA`, reloaded on `NOSCRIPT`).
#[cfg_attr(
    not(any(feature = "session", feature = "jwt", feature = "account")),
    allow(unused_macros)
)]
macro_rules! script {
    ($source:expr) => {{
        static SCRIPT: std::sync::LazyLock<::fred::types::scripts::Script> =
            std::sync::LazyLock::new(|| ::fred::types::scripts::Script::from_lua($source));
        &*SCRIPT
    }};
}
#[cfg(any(feature = "session", feature = "jwt", feature = "account"))]
pub(crate) use script;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact("redis://user:s3cret@cache.internal:6379/2?password=x"),
            "redis://***@cache.internal:6379/2"
        );
        assert_eq!(redact("rediss://:p%40ss@h:1"), "rediss://***@h:1");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("nonsense"), "[unparsable URL]");
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_without_repeating_it() {
        let error = RedisConnection::connect("redis://user:s3cret@[::1", "t")
            .await
            .unwrap_err();
        assert_eq!(error, RedisConnectError::InvalidUrl);
        assert!(!error.to_string().contains("s3cret"));
    }
}
