//! One error type for the whole stack, and uniform error pages.
//!
//! An [`Error`] carries a status, a stable machine-readable code and a message written
//! for the user — never a stack trace, a file path, a SQL error or a secret. It renders
//! as JSON (`{"error":{"code","message"}}`) or as an HTML page; which one is decided by
//! [`ErrorPagesLayer`], which sees the route and the `Accept` header: `/api` routes and
//! clients that ask for JSON get JSON, browsers get a page.
//!
//! The layer also rewrites error responses that the framework produced on its own —
//! unknown routes (404), wrong methods (405), body limits (413), extractor rejections
//! whose text may quote parser internals — into the same uniform bodies. A handler
//! that deliberately renders its own HTML or JSON error keeps it.
//!
//! ```
//! use axum::response::IntoResponse;
//! use portcullis::error::Error;
//!
//! let response = Error::not_found().into_response();
//! assert_eq!(response.status(), 404);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use crate::csp::CspNonce;

/// An error answered to the client.
///
/// ```
/// use portcullis::error::Error;
///
/// let e = Error::bad_request("the comment is empty");
/// assert_eq!(e.status(), 400);
/// assert_eq!(e.code(), "bad_request");
/// assert_eq!(e.message(), "the comment is empty");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct Error {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
}

impl Error {
    /// An error with any status, code and message.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed; `message` says what to fix.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: authentication is missing or failed.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: authenticated but not allowed, or a failed CSRF check.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404, the same for "absent" and "not yours".
    pub fn not_found() -> Self {
        Self::for_status(StatusCode::NOT_FOUND)
    }

    /// 413: the body is larger than this route accepts.
    pub fn payload_too_large() -> Self {
        Self::for_status(StatusCode::PAYLOAD_TOO_LARGE)
    }

    /// 415: the body's type is not one this route accepts.
    pub fn unsupported_media_type(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::for_status(StatusCode::TOO_MANY_REQUESTS).with_retry_after(retry_after_secs)
    }

    /// 503 with `Retry-After`: a backend this request needs is unavailable.
    pub fn service_unavailable(retry_after_secs: u64) -> Self {
        Self::for_status(StatusCode::SERVICE_UNAVAILABLE).with_retry_after(retry_after_secs)
    }

    /// 500 with no detail. Log the cause before returning it.
    pub fn internal() -> Self {
        Self::for_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The generic error for `status`, with the uniform code and message.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = describe(status);
        Self::new(status, code, message)
    }

    /// Adds a `Retry-After` of `secs` seconds.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code in the JSON body.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for the user.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body `{"error":{"code","message"}}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } }).to_string()
    }
}

fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad_request", "The request could not be understood."),
        401 => ("unauthorized", "Authentication is required."),
        403 => ("forbidden", "You are not allowed to do that."),
        404 => ("not_found", "Nothing is here."),
        405 => ("method_not_allowed", "That method is not allowed here."),
        406 => (
            "not_acceptable",
            "No acceptable representation is available.",
        ),
        408 => ("request_timeout", "The request took too long to arrive."),
        409 => ("conflict", "The request conflicts with the current state."),
        411 => ("length_required", "A Content-Length is required."),
        413 => ("payload_too_large", "The request body is too large."),
        414 => ("uri_too_long", "The address is too long."),
        415 => (
            "unsupported_media_type",
            "That content type is not accepted here.",
        ),
        422 => (
            "invalid_input",
            "The request body is not valid for this route.",
        ),
        429 => (
            "rate_limited",
            "Too many requests; slow down and retry later.",
        ),
        431 => ("headers_too_large", "The request headers are too large."),
        503 => (
            "unavailable",
            "The service is temporarily unavailable; retry later.",
        ),
        504 => ("timeout", "The request took too long to process."),
        s if s >= 500 => ("internal_error", "Something went wrong on our side."),
        _ => ("error", "The request could not be completed."),
    }
}

/// The error of a response, attached as an extension so that outer layers can render
/// it for the route (JSON or HTML) without parsing the body.
#[derive(Debug, Clone)]
pub struct ErrorDetails(pub Error);

impl IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.to_json(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ErrorDetails(self));
        response
    }
}

/// A layer that an extractor or an inner layer needs is not installed: a mistake in
/// how the app was put together, never the client's. Answered `500` with no detail,
/// and logged with what is missing and what needs it, so the first request shows the
/// fix. [`crate::stack::SecureStack`] installs every layer its parts need; this is
/// for apps that compose layers by hand.
///
/// ```
/// use axum::response::IntoResponse;
/// use portcullis::error::MissingLayer;
///
/// let response = MissingLayer::new("CsrfToken", "the session layer").into_response();
/// assert_eq!(response.status(), 500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{needed_by} needs {layer} outside it")]
pub struct MissingLayer {
    needed_by: &'static str,
    layer: &'static str,
}

impl MissingLayer {
    /// `needed_by` (an extractor or layer) needs `layer` installed outside it.
    pub const fn new(needed_by: &'static str, layer: &'static str) -> Self {
        Self { needed_by, layer }
    }
}

impl MissingLayer {
    fn log(&self) {
        tracing::error!(
            target: "portcullis::config",
            needed_by = self.needed_by,
            missing = self.layer,
            "{self}: install it, or build the app with SecureStack"
        );
    }
}

impl IntoResponse for MissingLayer {
    fn into_response(self) -> axum::response::Response {
        Error::from(self).into_response()
    }
}

/// For extractors that answer with an [`Error`]: logged as it is converted, then a
/// plain 500.
impl From<MissingLayer> for Error {
    fn from(missing: MissingLayer) -> Self {
        missing.log();
        Error::internal()
    }
}

/// Gives a rejection enum its answer: each variant's status and stable code, its
/// message from `Display`, and a `portcullis::security` warning naming the event and
/// the code (the request span adds who asked and where). Implements `code()`,
/// `status()` and `IntoResponse`.
#[cfg_attr(not(feature = "csrf"), allow(unused_macros))]
macro_rules! security_rejection {
    ($ty:ty, event = $event:literal, { $($variant:ident => ($status:ident, $code:literal)),+ $(,)? }) => {
        impl $ty {
            /// The stable code in the error body and the log.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The status it is answered with.
            pub fn status(self) -> ::axum::http::StatusCode {
                match self {
                    $(Self::$variant => ::axum::http::StatusCode::$status,)+
                }
            }
        }

        impl ::axum::response::IntoResponse for $ty {
            fn into_response(self) -> ::axum::response::Response {
                ::tracing::warn!(
                    target: "portcullis::security",
                    event = $event,
                    reason = self.code(),
                    "{self}"
                );
                $crate::error::Error::new(self.status(), self.code(), self.to_string())
                    .into_response()
            }
        }
    };
}
#[cfg(feature = "csrf")]
pub(crate) use security_rejection;

/// Renders an HTML error page. The message is plain text: escape it. The nonce is the
/// one in this response's `Content-Security-Policy`: give it to the page's scripts and
/// styles, or the browser blocks them (and reports the violation).
pub type HtmlRenderer = Arc<dyn Fn(&Error, &CspNonce) -> String + Send + Sync>;

/// Settings of [`ErrorPagesLayer`].
///
/// ```
/// use std::sync::Arc;
/// use portcullis::error::ErrorPagesConfig;
///
/// let layer = ErrorPagesConfig::default()
///     .api_prefix("/v1")
///     .html_renderer(Arc::new(|e, nonce| {
///         format!("<h1>{}</h1><script nonce=\"{nonce}\" src=\"/app.js\"></script>", e.status())
///     }))
///     .layer();
/// ```
#[derive(Clone)]
pub struct ErrorPagesConfig {
    api_prefix: Cow<'static, str>,
    html: HtmlRenderer,
}

impl fmt::Debug for ErrorPagesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorPagesConfig")
            .field("api_prefix", &self.api_prefix)
            .finish_non_exhaustive()
    }
}

impl Default for ErrorPagesConfig {
    fn default() -> Self {
        Self {
            api_prefix: Cow::Borrowed("/api"),
            html: Arc::new(|error, _| default_html_page(error)),
        }
    }
}

impl ErrorPagesConfig {
    /// Paths under this prefix always get JSON errors (default `/api`).
    pub fn api_prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.api_prefix = prefix.into();
        self
    }

    /// Renders HTML error pages (default: a minimal page).
    pub fn html_renderer(mut self, renderer: HtmlRenderer) -> Self {
        self.html = renderer;
        self
    }

    /// The layer.
    pub fn layer(self) -> ErrorPagesLayer {
        ErrorPagesLayer {
            config: Arc::new(self),
        }
    }
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

fn default_html_page(error: &Error) -> String {
    let title = error.status.canonical_reason().unwrap_or("Error");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{status} {title}</title></head><body><main><h1>{title}</h1><p>{message}</p>\
         <p><a href=\"/\">Back to the home page</a></p></main></body></html>\n",
        status = error.status.as_u16(),
        message = escape_html(&error.message),
    )
}

/// Gives every error response a uniform body for its route: JSON or HTML.
#[derive(Debug, Clone)]
pub struct ErrorPagesLayer {
    config: Arc<ErrorPagesConfig>,
}

impl<S> Layer<S> for ErrorPagesLayer {
    type Service = ErrorPages<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorPages {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`ErrorPagesLayer`].
#[derive(Debug, Clone)]
pub struct ErrorPages<S> {
    inner: S,
    config: Arc<ErrorPagesConfig>,
}

fn wants_json(path: &str, accept: Option<&HeaderValue>, api_prefix: &str) -> bool {
    if path == api_prefix || path.starts_with(&format!("{}/", api_prefix.trim_end_matches('/'))) {
        return true;
    }
    let accept = accept.and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("json") && !accept.contains("text/html")
}

impl<S, B> Service<Request<B>> for ErrorPages<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let json = wants_json(
            req.uri().path(),
            req.headers().get(header::ACCEPT),
            &self.config.api_prefix,
        );
        let config = self.config.clone();
        // The headers layer outside put the nonce of this response's policy here; with
        // no such layer there is no policy, and any nonce will do.
        let nonce = req
            .extensions()
            .get::<CspNonce>()
            .copied()
            .unwrap_or_else(CspNonce::generate);
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await?;
            let status = response.status();
            if !(status.is_client_error() || status.is_server_error()) {
                return Ok(response);
            }
            let error = match response.extensions().get::<ErrorDetails>() {
                Some(ErrorDetails(error)) => error.clone(),
                None => {
                    // A handler's own HTML or JSON error page is kept as it is.
                    let content_type = response
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if content_type.starts_with("text/html")
                        || content_type.starts_with("application/json")
                    {
                        return Ok(response);
                    }
                    Error::for_status(status)
                }
            };
            let (mut parts, _) = response.into_parts();
            let (content_type, body) = if json {
                ("application/json", error.to_json())
            } else {
                ("text/html; charset=utf-8", (config.html)(&error, &nonce))
            };
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.extensions.insert(ErrorDetails(error));
            Ok(Response::from_parts(parts, Body::from(body)))
        })
    }
}

/// The response for a caught panic: a generic 500, the panic logged (inside the
/// request's span, so with its request id), nothing about it sent to the client.
pub fn panic_response(
    payload: Box<dyn std::any::Any + Send + 'static>,
) -> axum::response::Response {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %detail, "a handler panicked; answered 500");
    Error::internal().into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_chosen_by_route_then_accept() {
        let html = HeaderValue::from_static("text/html,application/xhtml+xml");
        let json = HeaderValue::from_static("application/json");
        assert!(wants_json("/api/me", Some(&html), "/api"));
        assert!(wants_json("/api", None, "/api"));
        assert!(!wants_json("/apiary", None, "/api"));
        assert!(wants_json("/", Some(&json), "/api"));
        assert!(!wants_json("/", Some(&html), "/api"));
        assert!(!wants_json("/", None, "/api"));
    }

    #[test]
    fn html_pages_escape_the_message() {
        let page = default_html_page(&Error::bad_request("<script>alert(1)</script>"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
    }

    #[test]
    fn retry_after_is_sent() {
        let response = Error::too_many_requests(30).into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
    }
}
