use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore, TryAcquireError};

use super::config::{ServeConfig, ServeError};
use super::connection::serve_connection;
use super::tls::TlsAcceptor;

const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long connections get to close once the shutdown timeout has run out.
const FORCED_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves `app` over plain HTTP on `listener` until `shutdown` completes, then lets
/// in-flight requests finish (up to the shutdown timeout). See the [module docs](super).
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    run(listener, None, app, config, shutdown).await
}

/// What every connection of one server shares.
pub(super) struct Server {
    pub(super) app: Router,
    pub(super) builder: auto::Builder<TokioExecutor>,
    pub(super) config: ServeConfig,
    pub(super) tls: Option<TlsAcceptor>,
    /// Whether every connection slot is taken and clients are waiting.
    pub(super) at_capacity: watch::Sender<bool>,
}

/// Where the server is in its life; connections watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Serving,
    /// Shutdown has begun: finish what is in flight, take nothing new.
    Draining,
    /// The shutdown timeout ran out: close now.
    Closing,
}

pub(super) async fn run<F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    config: ServeConfig,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    config.validate()?;
    let permits = Arc::new(Semaphore::new(config.connection_limit()));
    let server = Arc::new(Server {
        app,
        builder: config.builder(),
        config,
        tls,
        at_capacity: watch::Sender::new(false),
    });
    let (phase, _) = watch::channel(Phase::Serving);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = None;
    loop {
        // At the cap, wait here: the kernel queues new clients until a slot frees,
        // and the process never runs out of file descriptors.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => break,
            Err(TryAcquireError::NoPermits) => {
                // Connections that hold a slot without using it now make room.
                server.at_capacity.send_replace(true);
                let permit = tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                server.at_capacity.send_replace(false);
                permit
            }
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = None;
                // Small answers go out at once rather than waiting for Nagle's timer.
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    server.clone(),
                    phase.subscribe(),
                    permit,
                ));
            }
            // One client's failed handshake, not the listener's: take the next.
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                let delay = backoff.map_or(ACCEPT_BACKOFF_FIRST, |last: Duration| {
                    (last * 2).min(ACCEPT_BACKOFF_MAX)
                });
                backoff = Some(delay);
                tracing::warn!(
                    %error,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "cannot accept connections"
                );
                drop(permit);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    drop(listener);
    let _ = phase.send(Phase::Draining);
    let finished = tokio::time::timeout(server.config.shutdown_timeout, phase.closed()).await;
    if finished.is_err() {
        tracing::warn!("closing the connections still open at the end of the shutdown timeout");
        let _ = phase.send(Phase::Closing);
        let _ = tokio::time::timeout(FORCED_CLOSE_GRACE, phase.closed()).await;
    }
    Ok(())
}

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
