//! The error-pages layer: one uniform body per error, JSON or HTML as the route and
//! `Accept` ask, including the errors the framework writes itself.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response};
use axum::response::IntoResponse;
use tower::{Layer, Service};

use super::{Error, ErrorDetails};
use crate::csp::{CspNonce, NonceSlot};

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
    let title = error.status().canonical_reason().unwrap_or("Error");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{status} {title}</title></head><body><main><h1>{title}</h1><p>{message}</p>\
         <p><a href=\"/\">Back to the home page</a></p></main></body></html>\n",
        status = error.status().as_u16(),
        message = escape_html(error.message()),
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
    let under_prefix = path
        .strip_prefix(api_prefix.trim_end_matches('/'))
        .is_some_and(|rest| rest.starts_with('/'));
    if path == api_prefix || under_prefix {
        return true;
    }
    let accept = accept.and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("json") && !accept.contains("text/html")
}

impl<S, B> Service<Request<B>> for ErrorPages<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ErrorPagesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let json = wants_json(
            req.uri().path(),
            req.headers().get(header::ACCEPT),
            &self.config.api_prefix,
        );
        // The headers layer outside left the place of this request's nonce here, made
        // only if an HTML page asks for it, so that its policy names the same one. With
        // no such layer there is no policy, and any nonce will do.
        let nonce = req.extensions().get::<NonceSlot>().cloned();
        ErrorPagesFuture {
            inner: self.inner.call(req),
            config: self.config.clone(),
            json,
            nonce,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`ErrorPages`]: the inner service's response, its body made
    /// uniform when it is an error. (Not boxed: every response passes through it.)
    pub struct ErrorPagesFuture<F> {
        #[pin]
        inner: F,
        config: Arc<ErrorPagesConfig>,
        json: bool,
        nonce: Option<NonceSlot>,
    }
}

impl<F> fmt::Debug for ErrorPagesFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorPagesFuture")
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl<F, E> Future for ErrorPagesFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        Poll::Ready(Ok(uniform(
            response,
            this.config,
            *this.json,
            this.nonce.as_ref(),
        )))
    }
}

/// `response`, with the uniform JSON or HTML body when it is an error.
fn uniform(
    response: Response<Body>,
    config: &ErrorPagesConfig,
    json: bool,
    nonce: Option<&NonceSlot>,
) -> Response<Body> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
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
            if content_type.starts_with("text/html") || content_type.starts_with("application/json")
            {
                return response;
            }
            Error::for_status(status)
        }
    };
    let (mut parts, _) = response.into_parts();
    let (content_type, body) = if json {
        ("application/json", error.to_json())
    } else {
        let nonce = nonce.map_or_else(CspNonce::generate, NonceSlot::get);
        ("text/html; charset=utf-8", (config.html)(&error, &nonce))
    };
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.extensions.insert(ErrorDetails(error));
    Response::from_parts(parts, Body::from(body))
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
