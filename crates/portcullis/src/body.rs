//! Request bodies: the size limit every body is read under, and the one way a layer
//! that must look inside a body (the CSRF field of a form, the username of a login,
//! a CSP report) reads it.
//!
//! [`BodyLimitLayer`] refuses a declared `Content-Length` over the limit at once
//! (413) and wraps every body so that reading past the limit fails; extractors and
//! the layers inside then answer 413. [`crate::stack::SecureStack`] installs it with
//! a 1 MiB default ([`DEFAULT_BODY_LIMIT`]) and per-route limits for uploads, and the
//! layers inside read up to that limit rather than a second one of their own.
//!
//! ```
//! use axum::{routing::post, Router};
//! use portcullis::body::BodyLimitLayer;
//!
//! let app: Router = Router::new()
//!     .route("/comments", post(|body: String| async move { body.len().to_string() }))
//!     .route("/upload", post(|| async { "stored" }))
//!     .layer(BodyLimitLayer::new(64 * 1024).route("/upload", 8 * 1024 * 1024));
//! ```

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};

/// The default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone)]
struct BodyLimits {
    default: usize,
    routes: Vec<(String, usize)>,
}

/// Reads a request's body into memory, at most `limit` bytes, for a layer that has to
/// look inside it (the CSRF field of a form, the username of a login), and gives the
/// request back with the same bytes as its body, so the handler still reads it. A
/// larger body is answered 413, one that fails while it is read 400 (see
/// [`body_error_response`]).
#[cfg(any(feature = "csrf", feature = "ratelimit"))]
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

/// A limit on the size of request bodies, chosen by path.
///
/// tower-http's `RequestBodyLimitLayer` with a limit chosen by path: a declared
/// `Content-Length` over the limit is refused at once, and every body is wrapped so
/// that reading past the limit fails (extractors then answer 413) — the body is never
/// buffered here.
///
/// ```
/// use portcullis::body::BodyLimitLayer;
///
/// let layer = BodyLimitLayer::new(16 * 1024).route("/upload", 5 * 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct BodyLimitLayer {
    limits: Arc<BodyLimits>,
}

impl BodyLimitLayer {
    /// Bodies of every route up to `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self {
            limits: Arc::new(BodyLimits {
                default: bytes,
                routes: Vec::new(),
            }),
        }
    }

    /// Bodies of requests to exactly `path` up to `bytes` instead (an upload route).
    pub fn route(mut self, path: impl Into<String>, bytes: usize) -> Self {
        Arc::make_mut(&mut self.limits)
            .routes
            .push((path.into(), bytes));
        self
    }

    /// The largest body any route accepts.
    pub fn largest(&self) -> usize {
        self.limits
            .routes
            .iter()
            .map(|(_, bytes)| *bytes)
            .fold(self.limits.default, usize::max)
    }
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

/// The service of [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
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
