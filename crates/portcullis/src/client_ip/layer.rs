//! The layer that computes [`ClientInfo`](super::ClientInfo) once per request, and
//! its refusal when the socket's peer address is missing.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::ConnectInfo;
use axum::http::Request;
use tower::{Layer, Service};

use super::ClientInfoConfig;
use crate::error::Error;

/// Computes [`ClientInfo`](super::ClientInfo) for each request and puts it in the request's extensions.
#[derive(Clone)]
pub struct ClientInfoLayer {
    config: Arc<ClientInfoConfig>,
    /// Whether a request without a peer address has been logged (once is enough).
    missing_peer_logged: Arc<AtomicBool>,
}

impl ClientInfoLayer {
    pub(super) fn new(config: ClientInfoConfig) -> Self {
        Self {
            config: Arc::new(config),
            missing_peer_logged: Arc::default(),
        }
    }
}

impl fmt::Debug for ClientInfoLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInfoLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl<S> Layer<S> for ClientInfoLayer {
    type Service = ClientInfoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientInfoService {
            inner,
            config: self.config.clone(),
            missing_peer_logged: self.missing_peer_logged.clone(),
        }
    }
}

/// The service of [`ClientInfoLayer`].
#[derive(Clone)]
pub struct ClientInfoService<S> {
    inner: S,
    config: Arc<ClientInfoConfig>,
    missing_peer_logged: Arc<AtomicBool>,
}

impl<S> fmt::Debug for ClientInfoService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInfoService").finish_non_exhaustive()
    }
}

/// A request reached the client-info layer without the socket's peer address: the
/// app was served without `ConnectInfo<SocketAddr>` (plain `axum::serve(listener,
/// app)`, or a test calling the service directly).
///
/// Guessing an address would put every client behind one (`0.0.0.0`): the rate
/// limiter would then keep one bucket for the whole world, so ten failed logins a
/// minute would lock everybody out. Every such request is refused with `500` and
/// code `client_address_unknown`, and the first one is logged with the fix: serve with
/// [`crate::serve::serve`], or `app.into_make_service_with_connect_info::<SocketAddr>()`;
/// in tests, add axum's `MockConnectInfo` layer.
///
/// ```
/// use axum::response::IntoResponse;
/// use portcullis::client_ip::MissingPeerAddress;
///
/// let response = MissingPeerAddress.into_response();
/// assert_eq!(response.status(), 500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the client's address is unknown: no ConnectInfo<SocketAddr> on the request; serve the \
     app with portcullis::serve::serve (or into_make_service_with_connect_info::<SocketAddr>())"
)]
pub struct MissingPeerAddress;

impl axum::response::IntoResponse for MissingPeerAddress {
    fn into_response(self) -> axum::response::Response {
        Error::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "client_address_unknown",
            "The server cannot tell clients apart, so it refuses every request until its \
             operator fixes how it is served.",
        )
        .into_response()
    }
}

impl<S, B> Service<Request<B>> for ClientInfoService<S>
where
    S: Service<Request<B>, Response = axum::response::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        S::Future,
        futures_util::future::Ready<Result<S::Response, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        use futures_util::future::{ready, Either};
        // `MockConnectInfo` is how tests give an app called directly its peer.
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer)
            .or_else(|| {
                req.extensions()
                    .get::<MockConnectInfo<SocketAddr>>()
                    .map(|MockConnectInfo(peer)| *peer)
            });
        let Some(peer) = peer else {
            if !self.missing_peer_logged.swap(true, Ordering::Relaxed) {
                tracing::error!(target: "portcullis::security", "{MissingPeerAddress}");
            }
            let response = axum::response::IntoResponse::into_response(MissingPeerAddress);
            return Either::Right(ready(Ok(response)));
        };
        let info = self.config.resolve(peer.ip(), req.uri(), req.headers());
        req.extensions_mut().insert(info);
        Either::Left(self.inner.call(req))
    }
}
