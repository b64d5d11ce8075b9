//! Putting the stack together: the checks that refuse a broken composition, then
//! every layer in its order around the router.

use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};

use crate::body::BodyLimitLayer;
#[cfg(feature = "csrf")]
use crate::csrf::CsrfLayer;
use crate::error::panic_response;
use crate::https::HttpsRedirectConfig;
#[cfg(feature = "ratelimit")]
use crate::ratelimit::RateLimitLayer;
use crate::timeout::RequestTimeoutLayer;

use super::access::{AccessLogLayer, REQUEST_ID};
use super::{SecureStack, StackError};

/// A random (v4) UUID for each request, as tower-http's `MakeRequestUuid` makes, in
/// one allocation that the request header, the extension and the response header then
/// share (rather than a `String`, its parse into a header value, and a copy for each
/// of those).
#[derive(Debug, Clone, Copy)]
struct MakeRequestUuid;

impl MakeRequestId for MakeRequestUuid {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
        let value = axum::http::HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text));
        // Hex digits and hyphens: always a valid value.
        value.ok().map(RequestId::new)
    }
}

impl SecureStack {
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
            .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
            .layer(self.client_info.layer())
            // Inside the client-info layer, whose address the span names.
            .layer(AccessLogLayer)
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
            // Outside the limiter, whose refusals it records; inside the error pages,
            // which answer with a response of their own.
            .option_layer(self.refusals)
            .option_layer(rate_limit)
            .option_layer(self.sessions)
            .option_layer(csrf)
            .option_layer(self.jwt)
            .service(router);
        Ok(Router::new().fallback_service(service))
    }
}
