//! The one-call secure preset: every layer of the response side, in the right order.
//!
//! [`SecureStack::apply`] wraps a `Router` in, from the outside in:
//!
//! 1. a fresh request id (`x-request-id`, also on the response) and a request span
//!    carrying it, the method and the path (never the query, headers or body);
//! 2. `Authorization`, `Cookie` and `Set-Cookie` marked sensitive;
//! 3. [`crate::client_ip`]: who is asking, believing forwarding headers from trusted
//!    proxies only; a request without its socket's peer address is refused (`500`
//!    `client_address_unknown`) rather than counted as everyone's, so serve the app
//!    with [`crate::serve`];
//! 4. [`crate::headers`]: the secure headers and a CSP nonce on every response;
//! 5. when configured, [`crate::cors`]: preflights are answered here, before rate
//!    limits, sessions and CSRF, and still get the secure headers;
//! 6. [`crate::error`]: uniform error bodies, JSON under `/api` or when asked, HTML
//!    elsewhere;
//! 7. [`crate::hosts`]: `400` for a `Host` the app does not serve (by default only the
//!    loopback names: set [`SecureStack::allowed_hosts`] before deploying);
//! 8. [`crate::https`]: the redirect to HTTPS (outside development);
//! 9. a time limit on the whole request, body included (a client that trickles its
//!    body gets 408), and a body-size limit (1 MiB by default; larger gets 413);
//! 10. caught panics (a generic 500, the panic logged with the request id);
//! 11. when configured, [`crate::ratelimit`], then [`crate::session`] and then
//!     [`crate::csrf`].
//!
//! Wiring these by hand is where apps go wrong (headers missing on error pages, panics
//! answered without headers, the redirect trusting a spoofed `X-Forwarded-Proto`), so
//! Portcullis ships the order as one piece.
//!
//! ```
//! use axum::{routing::get, Router};
//! use portcullis::stack::SecureStack;
//!
//! let app: Router = Router::new().route("/", get(|| async { "hello" }));
//! let app = SecureStack::default()
//!     .without_https_redirect() // plain HTTP on loopback, for this example
//!     .apply(app)
//!     .unwrap();
//! // Then `portcullis::serve::serve(listener, app, ServeConfig::default(), shutdown)`,
//! // which gives every request its peer address.
//! ```

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, Request};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::body::BodyLimitLayer;
use crate::client_ip::ClientInfoConfig;
#[cfg(feature = "cors")]
use crate::cors::CorsConfigError;
#[cfg(feature = "csrf")]
use crate::csrf::{CsrfConfigError, CsrfLayer};
use crate::error::{panic_response, ErrorPagesConfig};
use crate::headers::{HeadersError, SecureHeadersConfig};
use crate::hosts::AllowedHosts;
use crate::https::HttpsRedirectConfig;
#[cfg(feature = "jwt")]
use crate::jwt::Jwt;
#[cfg(feature = "ratelimit")]
use crate::ratelimit::{RateLimitConfigError, RateLimitLayer};
#[cfg(feature = "session")]
use crate::session::SessionLayer;
use crate::timeout::RequestTimeoutLayer;

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
#[cfg(feature = "jwt")]
type JwtSlot = axum::Extension<Jwt>;
#[cfg(not(feature = "jwt"))]
type JwtSlot = tower::layer::util::Identity;

pub use crate::body::DEFAULT_BODY_LIMIT;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
    client_info: ClientInfoConfig,
    headers: SecureHeadersConfig,
    https_redirect: Option<HttpsRedirectConfig>,
    allowed_hosts: AllowedHosts,
    host_check_exempt: Vec<String>,
    error_pages: ErrorPagesConfig,
    body_limit: usize,
    route_body_limits: Vec<(String, usize)>,
    request_timeout: Duration,
    sessions: Option<SessionSlot>,
    csrf: Option<CsrfSlot>,
    rate_limit: Option<RateLimitSlot>,
    cors: Option<CorsSlot>,
    jwt: Option<JwtSlot>,
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

    /// Wraps `router` in every layer. Invalid settings are an error here, never a
    /// panic while serving.
    ///
    /// The layers form one service around the whole router, which the returned router
    /// serves for every path: each request passes through each layer once. (Adding
    /// them with `Router::layer` instead wraps every route in every layer, boxing and
    /// cloning the stack below each layer on every request: several times the cost.)
    /// Routes merged into the returned router afterwards are outside the stack, as
    /// with any axum layer, so add every route first, and give the router its state
    /// (`Router::with_state`) before applying the stack.
    pub fn apply(self, router: Router) -> Result<Router, StackError> {
        if self.csrf.is_some() && self.sessions.is_none() {
            return Err(StackError::CsrfWithoutSessions);
        }
        if self.request_timeout.is_zero() {
            return Err(StackError::ZeroRequestTimeout);
        }
        if self.body_limit == 0 {
            return Err(StackError::ZeroBodyLimit {
                route: "every route".to_owned(),
            });
        }
        for (route, bytes) in &self.route_body_limits {
            if !route.starts_with('/') {
                return Err(StackError::InvalidBodyLimitRoute(route.clone()));
            }
            if *bytes == 0 {
                return Err(StackError::ZeroBodyLimit {
                    route: route.clone(),
                });
            }
        }
        let headers = self.headers.layer()?;
        let allowed_hosts = self
            .host_check_exempt
            .into_iter()
            .fold(self.allowed_hosts.layer(), |layer, path| layer.exempt(path));
        let body_limit = self.route_body_limits.into_iter().fold(
            BodyLimitLayer::new(self.body_limit),
            |layer, (route, bytes)| layer.route(route, bytes),
        );
        // The layers inside read bodies up to the stack's limit, never a second one.
        #[cfg(feature = "csrf")]
        let csrf = self.csrf.map(CsrfLayer::within_body_limit);
        #[cfg(not(feature = "csrf"))]
        let csrf = self.csrf;
        #[cfg(feature = "ratelimit")]
        let rate_limit = self.rate_limit.map(RateLimitLayer::within_body_limit);
        #[cfg(not(feature = "ratelimit"))]
        let rate_limit = self.rate_limit;
        // From the outside in. The CSRF check reads form bodies, so it sits inside the
        // body limit; it needs the session, so it sits inside the session layer.
        //
        // The rate limiter reads login bodies for the username, so it too sits inside
        // the body limit and the time limit; outside the session layer, so that a
        // refused request costs no session lookup; inside the error pages and the
        // headers, so that its 429 and 503 get the uniform body and every header; and
        // inside the client-info layer, whose `ClientInfo` is its only source for the
        // client's address.
        //
        // CORS answers preflights itself, so it goes outside everything that could
        // refuse one (rate limits, sessions, CSRF, the redirect: browsers do not follow
        // a redirected preflight) and outside the error pages, so that an allowed
        // origin's script can read a 429's body; inside the headers, so preflight
        // answers still carry them.
        let service = tower::ServiceBuilder::new()
            // The id is ours: a client-chosen one could forge or flood log correlation.
            .map_request(|mut req: Request<Body>| {
                req.headers_mut().remove(REQUEST_ID);
                req
            })
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ]))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            )
            .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
            .layer(self.client_info.layer())
            .layer(headers)
            .option_layer(self.cors)
            .layer(self.error_pages.layer())
            .layer(allowed_hosts)
            .option_layer(self.https_redirect.map(HttpsRedirectConfig::layer))
            .layer(RequestTimeoutLayer::new(self.request_timeout))
            .layer(body_limit)
            // The body limit above bounds every body; axum's extractors would
            // otherwise add their own 2 MB cap, and an upload route would need it
            // lifted by hand.
            .layer(axum::extract::DefaultBodyLimit::disable())
            // The panic answer's body type is tower-http's; the layers inside and
            // outside speak axum's.
            .map_response(axum::response::IntoResponse::into_response)
            .layer(CatchPanicLayer::custom(panic_response))
            .option_layer(rate_limit)
            .option_layer(self.sessions)
            .option_layer(csrf)
            .option_layer(self.jwt)
            .service(router);
        Ok(Router::new().fallback_service(service))
    }
}

/// The span of one request: id, method and path; never the query, which may hold a
/// token, nor any header.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // `client_ip` is filled in by the client-info layer, once it knows who is asking.
    tracing::info_span!(
        "request",
        id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        client_ip = tracing::field::Empty,
    )
}
