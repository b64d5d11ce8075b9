#[cfg(feature = "tls")]
use std::future::Future;
#[cfg(feature = "tls")]
use std::net::SocketAddr;
#[cfg(feature = "tls")]
use std::sync::Arc;

#[cfg(feature = "tls")]
use axum::Router;
#[cfg(feature = "tls")]
use tokio::net::{TcpListener, TcpStream};
#[cfg(feature = "tls")]
use tokio::sync::watch;

#[cfg(feature = "tls")]
use super::accept::{run, Phase};
#[cfg(feature = "tls")]
use super::config::{ServeConfig, ServeError};
#[cfg(feature = "tls")]
use super::connection::Activity;

/// Serves `app` over HTTPS on `listener` until `shutdown` completes, with the limits of
/// `config`. `tls` comes from [`crate::https::load_tls`] or is built by hand (then set
/// its ALPN protocols to `h2` and `http/1.1` for HTTP/2).
///
/// ```
/// use axum::{routing::get, Router};
/// use portcullis::serve::ServeConfig;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let dir = tempfile::tempdir().unwrap();
/// let (cert, key) = portcullis::https::write_dev_cert(dir.path()).unwrap();
/// let tls = portcullis::https::load_tls(&cert, &key).await.unwrap();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let app = Router::new().route("/", get(|| async { "hello" }));
/// portcullis::serve::serve_tls(listener, tls, app, ServeConfig::default(), async {})
///     .await
///     .unwrap();
/// # }
/// ```
#[cfg(feature = "tls")]
pub async fn serve_tls<F>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    config: ServeConfig,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    run(listener, Some(acceptor), app, config, shutdown).await
}

#[cfg(feature = "tls")]
pub(super) type TlsAcceptor = tokio_rustls::TlsAcceptor;

/// Without the `tls` feature there is no acceptor: the type has no value.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(super) enum TlsAcceptor {}

/// Completes the TLS handshake of a connection accepted at `activity.started`, within
/// the handshake timeout and the first-request timeout (the shorter one while every
/// slot is taken); `None` when it failed, ran out of time or shutdown began.
#[cfg(feature = "tls")]
pub(super) async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    config: &ServeConfig,
    activity: &Activity,
    phase: &mut watch::Receiver<Phase>,
    at_capacity: &mut watch::Receiver<bool>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut handshake = std::pin::pin!(acceptor.accept(stream));
    loop {
        let busy = *at_capacity.borrow_and_update();
        let deadline = activity.started
            + config
                .tls_handshake_timeout
                .min(config.first_request_limit(busy));
        tokio::select! {
            handshake = handshake.as_mut() => match handshake {
                Ok(stream) => return Some(stream),
                Err(error) => {
                    tracing::debug!(%error, %peer, "TLS handshake failed");
                    return None;
                }
            },
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return None;
            }
            changed = at_capacity.changed() => if changed.is_err() {
                return None;
            },
            _ = phase.wait_for(|phase| *phase != Phase::Serving) => return None,
        }
    }
}
