//! Why the stack could not be built.

#[cfg(feature = "cors")]
use crate::cors::CorsConfigError;
#[cfg(feature = "csrf")]
use crate::csrf::CsrfConfigError;
use crate::headers::HeadersError;
#[cfg(feature = "ratelimit")]
use crate::ratelimit::RateLimitConfigError;

/// Why the stack could not be built: every part's configuration error, and the
/// mistakes that only show when the parts are put together. Each message says the fix.
///
/// ```
/// use portcullis::csrf::CsrfConfig;
/// use portcullis::keys::{Keyring, SecretKey};
/// use portcullis::stack::{SecureStack, StackError};
///
/// fn build() -> Result<axum::Router, StackError> {
///     let keyring = Keyring::new(SecretKey::generate(), vec![]);
///     // `?` turns each part's configuration error into a `StackError`.
///     let csrf = CsrfConfig::default().layer(&keyring)?;
///     SecureStack::default().csrf(csrf).apply(axum::Router::new())
/// }
/// // CSRF tokens live in the session: without the session layer, nothing could pass.
/// assert!(matches!(build(), Err(StackError::CsrfWithoutSessions)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The header configuration is invalid.
    #[error(transparent)]
    Headers(#[from] HeadersError),
    /// The CSP or its report collector is invalid.
    #[error(transparent)]
    Csp(#[from] crate::csp::CspError),
    /// The CSRF configuration is invalid.
    #[cfg(feature = "csrf")]
    #[error(transparent)]
    Csrf(#[from] CsrfConfigError),
    /// The CORS configuration is invalid.
    #[cfg(feature = "cors")]
    #[error(transparent)]
    Cors(#[from] CorsConfigError),
    /// The rate-limit configuration is invalid.
    #[cfg(feature = "ratelimit")]
    #[error(transparent)]
    RateLimit(#[from] RateLimitConfigError),
    /// CSRF protection without sessions: its tokens are bound to the session, so every
    /// unsafe request with a cookie would be refused.
    #[error(
        "CSRF protection needs sessions: add SecureStack::sessions(…) before SecureStack::csrf(…)"
    )]
    CsrfWithoutSessions,
    /// A body limit of zero bytes: every request with a body would get 413.
    #[error("the body limit for {route} is 0 bytes: every request with a body would be refused")]
    ZeroBodyLimit {
        /// The route, or `every route` for the default.
        route: String,
    },
    /// A per-route body limit for a path that is not absolute: it could never match.
    #[error("the body limit route {0:?} must be an absolute path (it is compared with the request path)")]
    InvalidBodyLimitRoute(String),
    /// A request timeout of zero: every request would get 408.
    #[error("the request timeout is zero: every request would get 408")]
    ZeroRequestTimeout,
}
