//! The session layer's settings: timeouts and the cookie's `Secure` flag.

use std::sync::Arc;
use std::time::Duration;

use super::layer::SessionLayer;
use super::record::SessionRecord;
use super::store::SessionStore;
use crate::keys::{Keyring, Purpose};

/// Settings of the session layer. `Default`: idle 30 minutes, absolute 12 hours,
/// `Secure` cookies even over plain HTTP.
///
/// ```
/// use std::time::Duration;
/// use portcullis::session::SessionConfig;
///
/// let config = SessionConfig::default()
///     .idle_timeout(Duration::from_secs(15 * 60))
///     .absolute_lifetime(Duration::from_secs(8 * 3600));
/// ```
#[derive(Debug, Clone)]
pub struct SessionConfig {
    idle_timeout: Duration,
    absolute_lifetime: Duration,
    plain_http: PlainHttpCookie,
    touch_interval: Duration,
}

/// What the cookie is over plain HTTP (over HTTPS it is always `Secure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainHttpCookie {
    Secure,
    Insecure,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_lifetime: Duration::from_secs(12 * 3600),
            plain_http: PlainHttpCookie::Secure,
            touch_interval: Duration::from_secs(60),
        }
    }
}

impl SessionConfig {
    /// How long a session survives without requests.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a session survives at all, counted from login.
    pub fn absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute_lifetime = lifetime;
        self
    }

    /// Sends the session cookie without `Secure` when the request came over plain
    /// HTTP, so that a browser keeps it on `http://192.168.1.5:3000` (development on
    /// a LAN address). Over HTTPS the cookie is always `Secure`. Without this, a
    /// `Secure` cookie sent over plain HTTP to a host other than a loopback name is
    /// dropped by the browser, and the layer logs once that this is happening.
    /// Never in production: a cookie without `Secure` travels in clear.
    ///
    /// ```
    /// use portcullis::session::SessionConfig;
    ///
    /// let development = SessionConfig::default().insecure_cookie_over_plain_http();
    /// ```
    pub fn insecure_cookie_over_plain_http(mut self) -> Self {
        self.plain_http = PlainHttpCookie::Insecure;
        self
    }

    /// The layer, signing cookies with `keyring` and keeping records in `store`.
    pub fn layer(mut self, keyring: &Keyring, store: Arc<dyn SessionStore>) -> SessionLayer {
        // `last_seen` is written at most once per interval to spare the store; a short
        // idle timeout needs a shorter interval or active sessions would expire.
        self.touch_interval = self.touch_interval.min(self.idle_timeout / 4);
        SessionLayer::new(self, keyring.signer(Purpose::SESSION), store)
    }

    /// When `record` expires: at its idle timeout or its absolute lifetime, whichever
    /// comes first (Unix milliseconds).
    pub(super) fn expires_at(&self, record: &SessionRecord) -> i64 {
        let idle = record.last_seen + millis(self.idle_timeout);
        let absolute = record.created_at + millis(self.absolute_lifetime);
        idle.min(absolute)
    }

    /// Whether a record last seen at `last_seen` is due for a new `last_seen` at `now`.
    pub(super) fn touch_due(&self, last_seen: i64, now: i64) -> bool {
        now - last_seen >= millis(self.touch_interval)
    }

    /// Whether cookies carry `Secure` over plain HTTP too.
    pub(super) fn is_secure(&self) -> bool {
        self.plain_http == PlainHttpCookie::Secure
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}
