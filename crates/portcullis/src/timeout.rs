//! A time limit on the whole request, body included: 408 when it runs out.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use portcullis::timeout::RequestTimeoutLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(RequestTimeoutLayer::new(Duration::from_secs(10)));
//! ```

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};

/// A time limit on the whole request, body included: 408 when it runs out.
///
/// Written here rather than taken from tower-http. Its `TimeoutLayer` polls its timer
/// before the request and so registers one with the runtime for every request, even
/// those answered at the first poll, which costs about a tenth of the throughput of a
/// cheap route; its per-frame body timeout would answer a stalled body with an
/// extractor's 400 instead of 408. Here the request is polled first, and the timer,
/// set to the deadline fixed when the request arrived, is only made once the request
/// has to wait.
///
/// ```
/// use std::time::Duration;
/// use portcullis::timeout::RequestTimeoutLayer;
///
/// let layer = RequestTimeoutLayer::new(Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeoutLayer {
    timeout: Duration,
}

impl RequestTimeoutLayer {
    /// Requests that take longer than `timeout`, body included, get 408.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
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

/// The service of [`RequestTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct RequestTimeout<S> {
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
    /// The future of [`RequestTimeout`].
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
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
