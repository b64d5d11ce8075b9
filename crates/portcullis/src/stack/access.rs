//! The request span and the access line: each request runs in a span that names it
//! (id, method, path, client address) and ends in one line that says how it was
//! answered (status and time taken).
//!
//! Written here rather than with tower-http's `TraceLayer` for what that costs on
//! every request, measured by `bench/instructions.sh`: its span is made before the
//! client's address is known, so the address was recorded into it afterwards (the
//! span's fields formatted a second time); its response line formats a latency
//! through a display adapter; its response body is wrapped to catch the end of the
//! stream, which the stack then had to box again; and it classifies every response
//! for a failure line of its own. Here the span is made once with every field, and
//! the line is one event when the response is ready.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderName, Request, Response};
use tower::{Layer, Service};

use crate::client_ip::{AddressText, ClientInfo};

/// The header the stack's request id travels in.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The target of the access lines, to filter them by (`portcullis::access=warn`
/// silences the lines of answered requests and keeps those of server errors).
pub(crate) const ACCESS_TARGET: &str = "portcullis::access";

/// Runs each request in its span and logs how it was answered. It reads the client's
/// address from [`ClientInfo`], so it goes inside the client-info layer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AccessLogLayer;

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLog { inner }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub(crate) struct AccessLog<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for AccessLog<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let span = request_span(&req);
        // What the layers inside log while handing the request on is in its span too.
        let inner = span.in_scope(|| self.inner.call(req));
        AccessLogFuture {
            inner,
            span,
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`AccessLog`]: polled in the request's span, it logs
    /// the access line when the response is ready.
    pub(crate) struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        started: Instant,
    }
}

impl<F, E> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let status = response.status().as_u16();
            // Whole microseconds: at these speeds milliseconds round to zero.
            let latency_us = u64::try_from(this.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            if response.status().is_server_error() {
                tracing::error!(target: ACCESS_TARGET, status, latency_us, "response");
            } else {
                tracing::info!(target: ACCESS_TARGET, status, latency_us, "response");
            }
        }
        Poll::Ready(result)
    }
}

/// The span of one request: id, method, path and client address; never the query,
/// which may hold a token, nor any header, nor a token in the path.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let client_ip = req
        .extensions()
        .get::<ClientInfo>()
        .map(|client| AddressText(client.ip));
    tracing::info_span!(
        target: ACCESS_TARGET,
        "request",
        id = %id,
        method = %req.method(),
        path = %LoggablePath(req.uri().path()),
        client_ip = client_ip.map(tracing::field::display),
    )
}

/// `path` as logged: a segment that looks like a signed token (long, base64url and
/// dots, at least one dot: a reset or confirmation link, a JWT) is replaced by
/// `[redacted]`, since a link that works once must not be readable in the logs until
/// it is used. Other segments (names, hex ids) are kept. Written straight into the
/// log line, only when the line is written.
struct LoggablePath<'a>(&'a str);

impl LoggablePath<'_> {
    fn secret(segment: &str) -> bool {
        segment.len() >= 40
            && segment.contains('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }
}

impl std::fmt::Display for LoggablePath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.0.split('/').any(Self::secret) {
            return f.write_str(self.0);
        }
        for (i, segment) in self.0.split('/').enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(if Self::secret(segment) {
                "[redacted]"
            } else {
                segment
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::CapturedLog;
    use axum::http::StatusCode;
    use axum::routing::get;
    use std::net::SocketAddr;
    use tower::ServiceExt as _;

    fn loggable_path(path: &str) -> String {
        LoggablePath(path).to_string()
    }

    #[test]
    fn tokens_in_paths_are_not_logged() {
        let link = "/reset/eyJ1IjoxLCJ4IjoxNzk2MTY3MTAwLCJiIjoiQzFEVGpkLW1KTDM4RXVWM3Zudjh6dyJ9.xWhHYYom.wa8-K5Xm8juXHW4O3hjA5V1gfLha4xMfGGEHMS5M4ig";
        assert_eq!(loggable_path(link), "/reset/[redacted]");
        assert_eq!(
            loggable_path(&format!("/a{link}/b")),
            "/a/reset/[redacted]/b"
        );
        for kept in [
            "/",
            "/files/0123456789abcdef0123456789abcdef",
            "/static/app.js",
            "/api/me",
        ] {
            assert_eq!(loggable_path(kept), kept);
        }
    }

    /// Serves `path` through the whole stack with a capturing subscriber; the lines.
    fn lines_of(path: &str, forwarded: Option<&str>) -> Vec<String> {
        let captured = CapturedLog::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let app = axum::Router::new()
            .route(
                "/ok",
                get(|| async {
                    tracing::info!(username = "alice", "in the handler");
                    "fine"
                }),
            )
            .route(
                "/broken",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            );
        let proxies = crate::client_ip::TrustedProxies::new(["127.0.0.1/32".parse().unwrap()]);
        let app = crate::stack::SecureStack::default()
            .without_https_redirect()
            .client_info(crate::client_ip::ClientInfoConfig::default().trusted_proxies(proxies))
            .apply(app)
            .unwrap();
        let mut request = Request::get(path)
            .header("host", "localhost")
            .header("x-request-id", "forged-by-the-client")
            .extension(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 1],
                4000,
            ))));
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        let request = request.body(Body::empty()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(app.oneshot(request)).unwrap();
        });
        captured.text().lines().map(str::to_owned).collect()
    }

    #[test]
    fn every_line_of_a_request_names_it_and_the_last_says_how_it_ended() {
        let lines = lines_of("/ok?token=s3cr3t-query", Some("198.51.100.7"));
        let handler = lines
            .iter()
            .find(|line| line.contains("in the handler"))
            .expect("the handler's line");
        let access = lines.last().expect("the access line");
        for line in [handler, access] {
            // The resolved client, not the proxy; the stack's id, not the client's.
            assert!(line.contains("client_ip=198.51.100.7"), "{line}");
            assert!(line.contains("method=GET path=/ok"), "{line}");
            assert!(!line.contains("forged-by-the-client"), "{line}");
            assert!(!line.contains("s3cr3t-query"), "{line}");
        }
        assert!(access.contains(" INFO "), "{access}");
        assert!(
            access.contains("portcullis::access: response status=200 latency_us="),
            "{access}"
        );
    }

    #[test]
    fn a_server_error_is_an_error_line() {
        let lines = lines_of("/broken", None);
        let access = lines.last().expect("the access line");
        assert!(access.contains(" ERROR "), "{access}");
        assert!(access.contains("status=500"), "{access}");
        assert!(access.contains("client_ip=127.0.0.1"), "{access}");
    }
}
