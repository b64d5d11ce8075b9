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

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, Request, StatusCode};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::client_ip::{ClientInfoConfig, Scheme};
use crate::config::Settings;
use crate::csrf::CsrfLayer;
use crate::error::{panic_response, ErrorPagesConfig};
use crate::headers::{HeadersError, SecureHeadersConfig};
use crate::hosts::AllowedHosts;
use crate::https::HttpsRedirectConfig;
use crate::ratelimit::RateLimitLayer;
use crate::session::SessionLayer;

/// The default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Why the stack could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The header configuration is invalid.
    #[error(transparent)]
    Headers(#[from] HeadersError),
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
    sessions: Option<SessionLayer>,
    csrf: Option<CsrfLayer>,
    rate_limit: Option<RateLimitLayer>,
    cors: Option<tower_http::cors::CorsLayer>,
}

impl Default for SecureStack {
    fn default() -> Self {
        Self {
            client_info: ClientInfoConfig::default(),
            headers: SecureHeadersConfig::default(),
            https_redirect: Some(HttpsRedirectConfig::default()),
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
        }
    }
}

impl SecureStack {
    /// The stack for `settings`: trusted proxies, the socket's scheme with built-in
    /// TLS, the allowed hosts (`PORTCULLIS_ALLOWED_HOSTS`, plus the loopback names in
    /// development; `/healthz` answers whatever the host), and the HTTPS redirect
    /// outside development.
    pub fn from_settings(settings: &Settings) -> Self {
        let mut client_info =
            ClientInfoConfig::default().trusted_proxies(settings.trusted_proxies.clone());
        if settings.trust_forwarded_host {
            client_info = client_info.trust_forwarded_host();
        }
        let mut stack = Self {
            allowed_hosts: settings.served_hosts(),
            host_check_exempt: vec!["/healthz".to_owned()],
            ..Self::default()
        };
        if settings.tls.is_some() {
            client_info = client_info.connection_scheme(Scheme::Https);
            if settings.addr.port() != 443 {
                stack.https_redirect = Some(
                    HttpsRedirectConfig::default()
                        .https_port(settings.addr.port())
                        .exempt("/healthz"),
                );
            }
        } else {
            stack.https_redirect = Some(HttpsRedirectConfig::default().exempt("/healthz"));
        }
        if !settings.is_production() {
            stack.https_redirect = None;
        }
        stack.client_info = client_info;
        stack
    }

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

    /// Serves plain HTTP without redirecting (development, or tests on loopback).
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

    /// The longest a request may take, body included; longer gets 408.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Server-side sessions (see [`crate::session`]).
    pub fn sessions(mut self, layer: SessionLayer) -> Self {
        self.sessions = Some(layer);
        self
    }

    /// CSRF protection (see [`crate::csrf`]); needs [`SecureStack::sessions`].
    pub fn csrf(mut self, layer: CsrfLayer) -> Self {
        self.csrf = Some(layer);
        self
    }

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
        let headers = self.headers.layer()?;
        let allowed_hosts = self
            .host_check_exempt
            .into_iter()
            .fold(self.allowed_hosts.layer(), |layer, path| layer.exempt(path));
        let body_limit = BodyLimitLayer {
            limits: Arc::new(BodyLimits {
                default: self.body_limit,
                routes: self.route_body_limits,
            }),
        };
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
            .layer(RequestTimeoutLayer {
                timeout: self.request_timeout,
            })
            .layer(body_limit)
            // The panic answer's body type is tower-http's; the layers inside and
            // outside speak axum's.
            .map_response(axum::response::IntoResponse::into_response)
            .layer(CatchPanicLayer::custom(panic_response))
            .option_layer(self.rate_limit)
            .option_layer(self.sessions)
            .option_layer(self.csrf)
            .service(router);
        Ok(Router::new().fallback_service(service))
    }
}

#[derive(Debug)]
struct BodyLimits {
    default: usize,
    routes: Vec<(String, usize)>,
}

/// Reads a request's body into memory, at most `limit` bytes, for a layer that has to
/// look inside it (the CSRF field of a form, the username of a login), and gives the
/// request back with the same bytes as its body, so the handler still reads it. A
/// larger body is answered 413, one that fails while it is read 400 (see
/// [`body_error_response`]).
pub(crate) async fn buffer_body(
    req: Request<Body>,
    limit: usize,
) -> Result<(Request<Body>, bytes::Bytes), axum::response::Response> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, limit).await?;
    // `Bytes` clones share one buffer.
    Ok((Request::from_parts(parts, Body::from(bytes.clone())), bytes))
}

/// Reads a body into memory, at most `limit` bytes: 413 past it, 400 when the body
/// fails while it is read.
///
/// The frames are copied into one buffer as they come. `axum::body::to_bytes` keeps
/// each frame as a node of a list until the end, and hyper makes a frame of every
/// chunk of a chunked body: a body sent in one-byte chunks would hold a 32-byte node,
/// and a share of hyper's read buffer, for every byte.
pub(crate) async fn read_body(
    mut body: Body,
    limit: usize,
) -> Result<bytes::Bytes, axum::response::Response> {
    use axum::response::IntoResponse as _;
    use http_body_util::BodyExt as _;
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(body_error_response)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - buffer.len() {
                return Err(crate::error::Error::payload_too_large().into_response());
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// The answer to a request body that failed while a layer read it: 413 when it ran
/// past the body limit (the limit layer's error), 400 otherwise (a malformed chunked
/// encoding, a connection that ended mid-body). Never a body cut short handed on.
pub(crate) fn body_error_response(error: axum::Error) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = cause {
        if current.is::<http_body_util::LengthLimitError>() {
            return crate::error::Error::payload_too_large().into_response();
        }
        cause = current.source();
    }
    crate::error::Error::bad_request("The request body could not be read.").into_response()
}

/// tower-http's `RequestBodyLimitLayer` with a limit chosen by path: a declared
/// `Content-Length` over the limit is refused at once, and every body is wrapped so
/// that reading past the limit fails (extractors then answer 413) — the body is never
/// buffered here.
#[derive(Debug, Clone)]
struct BodyLimitLayer {
    limits: Arc<BodyLimits>,
}

impl<S> tower::Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit {
            inner,
            limits: self.limits.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct BodyLimit<S> {
    inner: S,
    limits: Arc<BodyLimits>,
}

impl<S> tower::Service<Request<Body>> for BodyLimit<S>
where
    S: tower::Service<Request<Body>, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        S::Future,
        futures_util::future::Ready<Result<axum::response::Response, S::Error>>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        use axum::response::IntoResponse as _;
        let path = req.uri().path();
        let limit = self
            .limits
            .routes
            .iter()
            .find(|(route, _)| route == path)
            .map_or(self.limits.default, |(_, limit)| *limit);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            let response = crate::error::Error::payload_too_large().into_response();
            return futures_util::future::Either::Right(futures_util::future::ready(Ok(response)));
        }
        let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
        futures_util::future::Either::Left(self.inner.call(req))
    }
}

/// A time limit on the whole request, body included: 408 when it runs out.
///
/// Written here rather than taken from tower-http. Its `TimeoutLayer` polls its timer
/// before the request and so registers one with the runtime for every request, even
/// those answered at the first poll, which costs about a tenth of the throughput of a
/// cheap route; its per-frame body timeout would answer a stalled body with an
/// extractor's 400 instead of 408. Here the request is polled first, and the timer,
/// set to the deadline fixed when the request arrived, is only made once the request
/// has to wait.
#[derive(Debug, Clone, Copy)]
struct RequestTimeoutLayer {
    timeout: Duration,
}

impl<S> tower::Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Debug, Clone)]
struct RequestTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> tower::Service<Request<B>> for RequestTimeout<S>
where
    S: tower::Service<Request<B>, Response = axum::response::Response>,
{
    type Response = axum::response::Response;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        TimeoutFuture {
            deadline: tokio::time::Instant::now() + self.timeout,
            inner: self.inner.call(req),
            sleep: None,
        }
    }
}

pin_project_lite::pin_project! {
    struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        deadline: tokio::time::Instant,
        #[pin]
        sleep: Option<tokio::time::Sleep>,
    }
}

impl<F, E> std::future::Future for TimeoutFuture<F>
where
    F: std::future::Future<Output = Result<axum::response::Response, E>>,
{
    type Output = Result<axum::response::Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let mut this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        if this.sleep.is_none() {
            this.sleep
                .set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        if let Some(sleep) = this.sleep.as_pin_mut() {
            if sleep.poll(cx).is_ready() {
                // An empty 408: the error-page layer outside gives it the uniform body.
                let mut response = axum::response::Response::new(Body::empty());
                *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
                return Poll::Ready(Ok(response));
            }
        }
        Poll::Pending
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
