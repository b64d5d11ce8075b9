//! The settings of every layer of the stack, secure by default.

use std::time::Duration;

use super::DEFAULT_BODY_LIMIT;
use crate::client_ip::ClientInfoConfig;
#[cfg(feature = "csrf")]
use crate::csrf::CsrfLayer;
use crate::error::ErrorPagesConfig;
use crate::headers::SecureHeadersConfig;
use crate::hosts::AllowedHosts;
use crate::https::HttpsRedirectConfig;
#[cfg(feature = "jwt")]
use crate::jwt::Jwt;
#[cfg(feature = "ratelimit")]
use crate::ratelimit::RateLimitLayer;
#[cfg(feature = "session")]
use crate::session::SessionLayer;

// Each optional part is a layer slot; without its feature the slot holds a layer that
// does nothing, so that `apply` composes the same chain whatever is compiled in.
#[cfg(feature = "session")]
type SessionSlot = SessionLayer;
#[cfg(not(feature = "session"))]
type SessionSlot = tower::layer::util::Identity;
#[cfg(feature = "csrf")]
type CsrfSlot = CsrfLayer;
#[cfg(not(feature = "csrf"))]
type CsrfSlot = tower::layer::util::Identity;
#[cfg(feature = "ratelimit")]
type RateLimitSlot = RateLimitLayer;
#[cfg(not(feature = "ratelimit"))]
type RateLimitSlot = tower::layer::util::Identity;
#[cfg(feature = "cors")]
type CorsSlot = tower_http::cors::CorsLayer;
#[cfg(not(feature = "cors"))]
type CorsSlot = tower::layer::util::Identity;
#[cfg(all(feature = "account", feature = "ratelimit"))]
type RefusalsSlot = crate::account::RecordRefusalsLayer;
#[cfg(not(all(feature = "account", feature = "ratelimit")))]
type RefusalsSlot = tower::layer::util::Identity;
#[cfg(feature = "jwt")]
type JwtSlot = axum::Extension<Jwt>;
#[cfg(not(feature = "jwt"))]
type JwtSlot = tower::layer::util::Identity;

/// The settings of every layer. `Default` is secure: HTTPS redirect on, strict headers,
/// 1 MiB bodies, 30 s per request.
///
/// ```
/// use std::time::Duration;
/// use portcullis::stack::SecureStack;
///
/// let stack = SecureStack::default()
///     .body_limit(64 * 1024)
///     .request_timeout(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct SecureStack {
    pub(super) client_info: ClientInfoConfig,
    pub(super) headers: SecureHeadersConfig,
    pub(super) https_redirect: Option<HttpsRedirectConfig>,
    pub(super) allowed_hosts: AllowedHosts,
    pub(super) host_check_exempt: Vec<String>,
    pub(super) error_pages: ErrorPagesConfig,
    pub(super) body_limit: usize,
    pub(super) route_body_limits: Vec<(String, usize)>,
    pub(super) request_timeout: Duration,
    pub(super) sessions: Option<SessionSlot>,
    pub(super) csrf: Option<CsrfSlot>,
    pub(super) rate_limit: Option<RateLimitSlot>,
    pub(super) refusals: Option<RefusalsSlot>,
    pub(super) cors: Option<CorsSlot>,
    pub(super) jwt: Option<JwtSlot>,
}

impl Default for SecureStack {
    fn default() -> Self {
        Self {
            client_info: ClientInfoConfig::default(),
            headers: SecureHeadersConfig::default(),
            // A request from this machine for a loopback name never crosses a network.
            https_redirect: Some(HttpsRedirectConfig::default().plain_http_on_loopback()),
            allowed_hosts: AllowedHosts::loopback(),
            host_check_exempt: Vec::new(),
            error_pages: ErrorPagesConfig::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            route_body_limits: Vec::new(),
            request_timeout: Duration::from_secs(30),
            sessions: None,
            csrf: None,
            rate_limit: None,
            refusals: None,
            cors: None,
            jwt: None,
        }
    }
}

impl SecureStack {
    /// Replaces the client-info settings.
    pub fn client_info(mut self, config: ClientInfoConfig) -> Self {
        self.client_info = config;
        self
    }

    /// Replaces the header settings.
    pub fn headers(mut self, config: SecureHeadersConfig) -> Self {
        self.headers = config;
        self
    }

    /// The host names the app answers to; any other `Host` gets `400`. The default is
    /// the loopback names only ([`AllowedHosts::loopback`]), so a deployed app must name
    /// its own.
    ///
    /// ```
    /// use portcullis::hosts::AllowedHosts;
    /// use portcullis::stack::SecureStack;
    ///
    /// let stack = SecureStack::default()
    ///     .allowed_hosts("example.com, www.example.com".parse().unwrap());
    /// ```
    pub fn allowed_hosts(mut self, hosts: AllowedHosts) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// A path answered whatever the `Host` (a load balancer's health check by IP).
    pub fn any_host_for(mut self, path: impl Into<String>) -> Self {
        self.host_check_exempt.push(path.into());
        self
    }

    /// Replaces the HTTPS redirect settings.
    pub fn https_redirect(mut self, config: HttpsRedirectConfig) -> Self {
        self.https_redirect = Some(config);
        self
    }

    /// Serves plain HTTP without redirecting, from anywhere (development on a LAN
    /// address, or an app whose TLS ends at a proxy that is not a trusted proxy).
    /// By default only requests from this machine for a loopback name are served
    /// over plain HTTP (see [`HttpsRedirectConfig::plain_http_on_loopback`]).
    pub fn without_https_redirect(mut self) -> Self {
        self.https_redirect = None;
        self
    }

    /// Replaces the error-page settings.
    pub fn error_pages(mut self, config: ErrorPagesConfig) -> Self {
        self.error_pages = config;
        self
    }

    /// The largest request body, in bytes; larger ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// A different body limit for requests to exactly `path` (an upload route).
    pub fn route_body_limit(mut self, path: impl Into<String>, bytes: usize) -> Self {
        self.route_body_limits.push((path.into(), bytes));
        self
    }

    /// An upload route: requests to exactly `path` may be as large as `policy` allows
    /// ([`crate::upload::UploadPolicy::request_limit`]), so the policy's file limit and
    /// the body limit cannot disagree. Every route's body is bounded by the stack
    /// alone: axum's own 2 MB default is lifted inside it.
    ///
    /// ```
    /// use portcullis::stack::SecureStack;
    /// use portcullis::upload::UploadPolicy;
    ///
    /// let policy = UploadPolicy::default().max_file_bytes(8 * 1024 * 1024);
    /// let stack = SecureStack::default().upload_route("/upload", &policy);
    /// ```
    #[cfg(feature = "upload")]
    pub fn upload_route(
        self,
        path: impl Into<String>,
        policy: &crate::upload::UploadPolicy,
    ) -> Self {
        self.route_body_limit(path, policy.request_limit())
    }

    /// The longest a request may take, body included; longer gets 408.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    #[cfg(feature = "session")]
    /// Server-side sessions (see [`crate::session`]).
    pub fn sessions(mut self, layer: SessionLayer) -> Self {
        self.sessions = Some(layer);
        self
    }

    #[cfg(feature = "csrf")]
    /// CSRF protection (see [`crate::csrf`]); needs [`SecureStack::sessions`].
    pub fn csrf(mut self, layer: CsrfLayer) -> Self {
        self.csrf = Some(layer);
        self
    }

    #[cfg(feature = "ratelimit")]
    /// Rate limits (see [`crate::ratelimit`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use portcullis::ratelimit::{MemoryRateLimitStore, RateLimitConfig};
    /// use portcullis::stack::SecureStack;
    ///
    /// let limits = RateLimitConfig::default().layer(Arc::new(MemoryRateLimitStore::new())).unwrap();
    /// let stack = SecureStack::default().rate_limit(limits);
    /// ```
    pub fn rate_limit(mut self, layer: RateLimitLayer) -> Self {
        self.rate_limit = Some(layer);
        self
    }

    #[cfg(all(feature = "account", feature = "ratelimit"))]
    /// Records the rate limiter's refusals on sign-in routes
    /// ([`RateLimitGroup::sign_in`](crate::ratelimit::RateLimitGroup::sign_in)) in
    /// `log`, as `rate_limited` security events (see
    /// [`SecurityLog::refusals_layer`](crate::account::SecurityLog::refusals_layer)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use portcullis::account::{MemoryEventStore, SecurityLog};
    /// use portcullis::stack::SecureStack;
    ///
    /// let log = SecurityLog::new(Arc::new(MemoryEventStore::default()));
    /// let stack = SecureStack::default().security_log(&log);
    /// ```
    pub fn security_log(mut self, log: &crate::account::SecurityLog) -> Self {
        self.refusals = Some(log.refusals_layer());
        self
    }

    #[cfg(feature = "cors")]
    /// Cross-origin requests (see [`crate::cors`]); without it, none are allowed.
    ///
    /// ```
    /// use portcullis::cors::CorsConfig;
    /// use portcullis::stack::SecureStack;
    ///
    /// let cors = CorsConfig::default().origin("https://app.example.com").layer().unwrap();
    /// let stack = SecureStack::default().cors(cors);
    /// ```
    pub fn cors(mut self, layer: tower_http::cors::CorsLayer) -> Self {
        self.cors = Some(layer);
        self
    }

    #[cfg(feature = "jwt")]
    /// API tokens (see [`crate::jwt`]): the stack makes the [`Jwt`] available to the
    /// `BearerUser` extractor and to handlers (`Extension<Jwt>`), so that forgetting
    /// the extension cannot turn every API call into a 500.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use portcullis::jwt::{Jwt, JwtConfig, JwtKeys, MemoryRevocationStore};
    /// use portcullis::keys::{Keyring, SecretKey};
    /// use portcullis::stack::SecureStack;
    ///
    /// let keyring = Keyring::new(SecretKey::generate(), vec![]);
    /// let jwt = Jwt::new(
    ///     JwtConfig::default(),
    ///     JwtKeys::from_keyring(&keyring),
    ///     Arc::new(MemoryRevocationStore::default()),
    /// );
    /// let stack = SecureStack::default().jwt(jwt);
    /// ```
    pub fn jwt(mut self, jwt: Jwt) -> Self {
        self.jwt = Some(axum::Extension(jwt));
        self
    }

    /// The header settings in effect.
    pub fn headers_config(&self) -> &SecureHeadersConfig {
        &self.headers
    }
}
