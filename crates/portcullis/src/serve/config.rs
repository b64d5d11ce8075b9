use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

/// The most connections the default cap allows, however high the open-file limit.
pub const DEFAULT_MAX_CONNECTIONS_CEILING: usize = 10_000;

/// The limits of [`serve`](super::serve()) and [`serve_tls`](super::serve_tls()). `Default` is the secure choice (see the
/// [module docs](super) for each value); every limit can be changed, and [`serve`](super::serve())
/// refuses a configuration that would switch one off.
///
/// ```
/// use std::time::Duration;
/// use portcullis::serve::ServeConfig;
///
/// let config = ServeConfig::default()
///     .header_read_timeout(Duration::from_secs(5))
///     .idle_timeout(Duration::from_secs(30))
///     .max_connections(2_000);
/// assert!(config.validate().is_ok());
/// assert_eq!(config.connection_limit(), 2_000);
/// assert!(ServeConfig::default().max_connections(0).validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub(super) header_read_timeout: Duration,
    pub(super) first_request_timeout: Duration,
    pub(super) first_request_timeout_at_capacity: Duration,
    pub(super) tls_handshake_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) http2_keep_alive_interval: Duration,
    pub(super) http2_keep_alive_timeout: Duration,
    pub(super) max_connections: Option<usize>,
    pub(super) unread_body_drain_bytes: u64,
    pub(super) unread_body_drain_timeout: Duration,
    pub(super) shutdown_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(15),
            first_request_timeout_at_capacity: Duration::from_secs(2),
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_keep_alive_interval: Duration::from_secs(30),
            http2_keep_alive_timeout: Duration::from_secs(20),
            max_connections: None,
            unread_body_drain_bytes: 8 * 1024 * 1024,
            unread_body_drain_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// A [`ServeConfig`] that would switch a limit off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeConfigError {
    /// A timeout of zero: it would close every connection at once.
    #[error("the {0} must be longer than zero")]
    ZeroTimeout(&'static str),
    /// A connection cap of zero: nothing would ever be served.
    #[error("the connection cap must allow at least one connection")]
    NoConnections,
}

/// Why [`serve`](super::serve()) could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is invalid.
    #[error("serving: {0}")]
    Config(#[from] ServeConfigError),
    /// The app around the listener could not be built, or the listener could not be used.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeConfig {
    /// The longest a request head may take to arrive, from its first byte (or, on a
    /// kept-alive HTTP/1.1 connection, from the end of the previous response).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The longest from `accept` to the first request head, TLS handshake included: a
    /// connection that has sent no whole request by then is closed.
    pub fn first_request_timeout(mut self, timeout: Duration) -> Self {
        self.first_request_timeout = timeout;
        self
    }

    /// The first-request timeout while every connection slot is taken: then a
    /// connection that has sent no whole request head this long is closed, and so is
    /// every idle kept-alive one, to make room for the clients waiting in the queue.
    pub fn first_request_timeout_at_capacity(mut self, timeout: Duration) -> Self {
        self.first_request_timeout_at_capacity = timeout;
        self
    }

    /// The longest a TLS handshake may take (within the first-request timeout).
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.tls_handshake_timeout = timeout;
        self
    }

    /// How long a connection with no request in flight stays open.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// HTTP/2 pings every `interval`; a peer that does not answer within `timeout` is
    /// closed.
    pub fn http2_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.http2_keep_alive_interval = interval;
        self.http2_keep_alive_timeout = timeout;
        self
    }

    /// At most `connections` open at once; beyond it, `accept` waits until one closes.
    /// Keep it below the process's open-file limit, with room for files and database
    /// connections. Unset, it is ¾ of that limit (at most
    /// [`DEFAULT_MAX_CONNECTIONS_CEILING`]).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = Some(connections);
        self
    }

    /// When the app answered before reading the whole HTTP/1 request body, read and
    /// discard up to `bytes` more of it, for at most `timeout`, so that the client
    /// can read the answer; a body beyond that is cut off by closing the connection.
    pub fn unread_body_drain(mut self, bytes: u64, timeout: Duration) -> Self {
        self.unread_body_drain_bytes = bytes;
        self.unread_body_drain_timeout = timeout;
        self
    }

    /// How long in-flight requests get to finish once shutdown begins.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The connection cap in effect: the configured one, or the default derived from
    /// the open-file limit.
    pub fn connection_limit(&self) -> usize {
        self.max_connections.unwrap_or_else(default_max_connections)
    }

    /// Whether every limit is on.
    pub fn validate(&self) -> Result<(), ServeConfigError> {
        let timeouts = [
            (self.header_read_timeout, "header-read timeout"),
            (self.first_request_timeout, "first-request timeout"),
            (
                self.first_request_timeout_at_capacity,
                "first-request timeout at capacity",
            ),
            (self.tls_handshake_timeout, "TLS handshake timeout"),
            (self.idle_timeout, "idle timeout"),
            (self.http2_keep_alive_interval, "HTTP/2 keep-alive interval"),
            (self.http2_keep_alive_timeout, "HTTP/2 keep-alive timeout"),
            (self.unread_body_drain_timeout, "unread-body drain timeout"),
            (self.shutdown_timeout, "shutdown timeout"),
        ];
        if let Some((_, name)) = timeouts.iter().find(|(timeout, _)| timeout.is_zero()) {
            return Err(ServeConfigError::ZeroTimeout(name));
        }
        if self.max_connections == Some(0) {
            return Err(ServeConfigError::NoConnections);
        }
        Ok(())
    }

    pub(super) fn first_request_limit(&self, at_capacity: bool) -> Duration {
        if at_capacity {
            self.first_request_timeout
                .min(self.first_request_timeout_at_capacity)
        } else {
            self.first_request_timeout
        }
    }

    pub(super) fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Without a timer, hyper's header-read timeout silently never runs.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.http2_keep_alive_interval)
            .keep_alive_timeout(self.http2_keep_alive_timeout);
        builder
    }
}

/// ¾ of the soft open-file limit: the rest is left for files, logs and the database.
fn default_max_connections() -> usize {
    #[cfg(unix)]
    {
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        match files {
            Some(files) => usize::try_from(files.saturating_mul(3) / 4)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_CEILING)
                .clamp(1, DEFAULT_MAX_CONNECTIONS_CEILING),
            None => DEFAULT_MAX_CONNECTIONS_CEILING,
        }
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_switched_off_is_refused() {
        assert_eq!(
            ServeConfig::default()
                .header_read_timeout(Duration::ZERO)
                .validate(),
            Err(ServeConfigError::ZeroTimeout("header-read timeout"))
        );
        assert_eq!(
            ServeConfig::default().max_connections(0).validate(),
            Err(ServeConfigError::NoConnections)
        );
        assert!(ServeConfig::default().validate().is_ok());
    }

    #[test]
    fn the_default_cap_leaves_room_below_the_open_file_limit() {
        let cap = ServeConfig::default().connection_limit();
        assert!((1..=DEFAULT_MAX_CONNECTIONS_CEILING).contains(&cap));
        #[cfg(unix)]
        if let Some(files) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            assert!((cap as u64) < files.max(2));
        }
    }
}
