use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use super::connection::InFlight;

/// How much of an unread HTTP/1 request body to read and discard.
#[derive(Debug, Clone, Copy)]
pub(super) struct Drain {
    pub(super) max_bytes: u64,
    pub(super) timeout: Duration,
    pub(super) expects_continue: bool,
}

impl Drain {
    async fn run(self, mut body: Incoming) {
        let mut left = self.max_bytes;
        let discard = async {
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return };
                if let Some(data) = frame.data_ref() {
                    let Some(rest) = left.checked_sub(data.len() as u64) else {
                        // Over the bound: dropping the body makes hyper close.
                        tracing::debug!("unread request body over the drain limit");
                        return;
                    };
                    left = rest;
                }
            }
        };
        let _ = tokio::time::timeout(self.timeout, discard).await;
    }
}

/// The request body the app reads. Dropped unread, the rest is drained (see [`Drain`]).
pub(super) struct RequestBody {
    pub(super) inner: Option<Incoming>,
    pub(super) drain: Option<Drain>,
    pub(super) polled: bool,
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        this.polled = true;
        match this.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let (Some(body), Some(drain)) = (self.inner.take(), self.drain.take()) else {
            return;
        };
        // Asked to wait for our "100 Continue" and never given it, the client sends
        // nothing: there is nothing to drain.
        if body.is_end_stream() || (drain.expects_continue && !self.polled) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain.run(body));
        }
    }
}

pin_project_lite::pin_project! {
    /// The response body, holding its request in flight until it is sent or dropped.
    pub(super) struct ResponseBody {
        #[pin]
        pub(super) inner: Body,
        pub(super) _in_flight: InFlight,
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
