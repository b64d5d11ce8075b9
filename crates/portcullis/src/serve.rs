//! Serving an app: the one way to put a [`Router`] on a socket, with the limits that
//! keep slow, idle and abandoned connections from holding the server.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never runs: a
//! client that sends half a request head and then nothing keeps its socket for good.
//! A few hundred such clients use up the process's open files; `accept` then fails
//! and no one else is served until they stop. [`serve`] (plain HTTP) and [`serve_tls`]
//! (built-in TLS, feature `tls`) serve every connection with hyper-util's HTTP/1 and
//! HTTP/2 builder under these limits, each set in [`ServeConfig`]:
//!
//! | limit | default | what it answers |
//! |---|---|---|
//! | header read | 10 s | a request head trickled byte by byte or never finished (slowloris) |
//! | first request | 15 s from `accept`; 2 s while every connection slot is taken | a connection that never sends a whole request head, TLS handshake included |
//! | TLS handshake | 10 s | a handshake that stalls |
//! | idle keep-alive | 60 s; none while every connection slot is taken | a kept-alive connection that sends no further request |
//! | HTTP/2 keep-alive ping | every 30 s, 20 s to answer | HTTP/2 peers that vanished without closing |
//! | concurrent connections | ¾ of the open-file limit, at most 10,000 | running out of file descriptors: beyond the cap, `accept` waits and new clients queue in the kernel |
//! | unread request body | up to 8 MiB or 5 s is read and discarded | a response sent before the body was read (413, 401, a CSRF refusal) lost to a TCP reset |
//! | graceful shutdown | 10 s | in-flight requests finish; then what is left is closed |
//!
//! An `accept` that fails for the process (too many open files, no buffers) is retried
//! after a pause that grows from 10 ms to 1 s, instead of spinning on the error.
//!
//! While every connection slot is taken and clients wait in the kernel's queue, the
//! connections that hold a slot without using it make room: one that has sent no
//! whole request head for 2 s is closed, and so is every idle kept-alive one (its
//! client simply reconnects). A flood of silent sockets then costs each of them a
//! slot for 2 s, not 15, and a fresh client gets in within seconds.
//!
//! Not bounded here: a client that reads a large response very slowly keeps its
//! connection busy for as long as the response takes.
//!
//! Why written here: hyper-util serves one connection, and axum-server adds TLS and a
//! shutdown handle, but neither closes a connection that never sends a request or
//! idles, caps connections, backs off on `accept` errors or drains an unread body.
//! The accept loop and each connection's watch over its deadlines are Portcullis's;
//! HTTP itself, the header-read timer and TLS are hyper's and rustls's.
//!
//! Every request carries the socket's peer address as
//! `axum::extract::ConnectInfo<SocketAddr>`, which [`crate::client_ip`] needs: served
//! any other way, requests through the client-info layer are refused (see there).
//!
//! Over HTTP/1.1, hyper's header-read timer also runs while a kept-alive connection
//! waits for its next request, so such a connection closes after the shorter of the
//! header-read and idle timeouts. The stack's request timeout
//! ([`crate::stack::SecureStack::request_timeout`]) takes over once a request head has
//! arrived: a body that trickles gets `408`.
//!
//! When the app answers before reading the whole request body, closing the socket with
//! unread bytes in it makes the kernel send a reset, and the client, still uploading,
//! never sees the answer (a browser shows "connection reset" instead of the 413 page).
//! So the rest of an HTTP/1 body is read and thrown away, within a bound, before the
//! connection closes or serves its next request — nginx's "lingering close". A client
//! that sent `Expect: 100-continue` and was answered without being asked for its body
//! is not waited for.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use portcullis::serve::ServeConfig;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let app = Router::new().route("/", get(|| async { "hello" }));
//! let config = ServeConfig::default().header_read_timeout(Duration::from_secs(5));
//! // Until the shutdown future completes; here at once.
//! portcullis::serve::serve(listener, app, config, async {}).await.unwrap();
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, Version};
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;
use tower::ServiceExt as _;

/// The most connections the default cap allows, however high the open-file limit.
pub const DEFAULT_MAX_CONNECTIONS_CEILING: usize = 10_000;

const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long connections get to close once the shutdown timeout has run out.
const FORCED_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The limits of [`serve`] and [`serve_tls`]. `Default` is the secure choice (see the
/// [module docs](self) for each value); every limit can be changed, and [`serve`]
/// refuses a configuration that would switch one off.
///
/// ```
/// use std::time::Duration;
/// use portcullis::serve::ServeConfig;
///
/// let config = ServeConfig::default()
///     .header_read_timeout(Duration::from_secs(5))
///     .idle_timeout(Duration::from_secs(30))
///     .max_connections(2_000);
/// assert!(config.validate().is_ok());
/// assert_eq!(config.connection_limit(), 2_000);
/// assert!(ServeConfig::default().max_connections(0).validate().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ServeConfig {
    header_read_timeout: Duration,
    first_request_timeout: Duration,
    first_request_timeout_at_capacity: Duration,
    tls_handshake_timeout: Duration,
    idle_timeout: Duration,
    http2_keep_alive_interval: Duration,
    http2_keep_alive_timeout: Duration,
    max_connections: Option<usize>,
    unread_body_drain_bytes: u64,
    unread_body_drain_timeout: Duration,
    shutdown_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(15),
            first_request_timeout_at_capacity: Duration::from_secs(2),
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_keep_alive_interval: Duration::from_secs(30),
            http2_keep_alive_timeout: Duration::from_secs(20),
            max_connections: None,
            unread_body_drain_bytes: 8 * 1024 * 1024,
            unread_body_drain_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// A [`ServeConfig`] that would switch a limit off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeConfigError {
    /// A timeout of zero: it would close every connection at once.
    #[error("the {0} must be longer than zero")]
    ZeroTimeout(&'static str),
    /// A connection cap of zero: nothing would ever be served.
    #[error("the connection cap must allow at least one connection")]
    NoConnections,
}

/// Why [`serve`] could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is invalid.
    #[error("serving: {0}")]
    Config(#[from] ServeConfigError),
    /// The app around the listener could not be built, or the listener could not be used.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

impl ServeConfig {
    /// The longest a request head may take to arrive, from its first byte (or, on a
    /// kept-alive HTTP/1.1 connection, from the end of the previous response).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The longest from `accept` to the first request head, TLS handshake included: a
    /// connection that has sent no whole request by then is closed.
    pub fn first_request_timeout(mut self, timeout: Duration) -> Self {
        self.first_request_timeout = timeout;
        self
    }

    /// The first-request timeout while every connection slot is taken: then a
    /// connection that has sent no whole request head this long is closed, and so is
    /// every idle kept-alive one, to make room for the clients waiting in the queue.
    pub fn first_request_timeout_at_capacity(mut self, timeout: Duration) -> Self {
        self.first_request_timeout_at_capacity = timeout;
        self
    }

    /// The longest a TLS handshake may take (within the first-request timeout).
    pub fn tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.tls_handshake_timeout = timeout;
        self
    }

    /// How long a connection with no request in flight stays open.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// HTTP/2 pings every `interval`; a peer that does not answer within `timeout` is
    /// closed.
    pub fn http2_keep_alive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.http2_keep_alive_interval = interval;
        self.http2_keep_alive_timeout = timeout;
        self
    }

    /// At most `connections` open at once; beyond it, `accept` waits until one closes.
    /// Keep it below the process's open-file limit, with room for files and database
    /// connections. Unset, it is ¾ of that limit (at most
    /// [`DEFAULT_MAX_CONNECTIONS_CEILING`]).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = Some(connections);
        self
    }

    /// When the app answered before reading the whole HTTP/1 request body, read and
    /// discard up to `bytes` more of it, for at most `timeout`, so that the client
    /// can read the answer; a body beyond that is cut off by closing the connection.
    pub fn unread_body_drain(mut self, bytes: u64, timeout: Duration) -> Self {
        self.unread_body_drain_bytes = bytes;
        self.unread_body_drain_timeout = timeout;
        self
    }

    /// How long in-flight requests get to finish once shutdown begins.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The connection cap in effect: the configured one, or the default derived from
    /// the open-file limit.
    pub fn connection_limit(&self) -> usize {
        self.max_connections.unwrap_or_else(default_max_connections)
    }

    /// Whether every limit is on.
    pub fn validate(&self) -> Result<(), ServeConfigError> {
        let timeouts = [
            (self.header_read_timeout, "header-read timeout"),
            (self.first_request_timeout, "first-request timeout"),
            (
                self.first_request_timeout_at_capacity,
                "first-request timeout at capacity",
            ),
            (self.tls_handshake_timeout, "TLS handshake timeout"),
            (self.idle_timeout, "idle timeout"),
            (self.http2_keep_alive_interval, "HTTP/2 keep-alive interval"),
            (self.http2_keep_alive_timeout, "HTTP/2 keep-alive timeout"),
            (self.unread_body_drain_timeout, "unread-body drain timeout"),
            (self.shutdown_timeout, "shutdown timeout"),
        ];
        if let Some((_, name)) = timeouts.iter().find(|(timeout, _)| timeout.is_zero()) {
            return Err(ServeConfigError::ZeroTimeout(name));
        }
        if self.max_connections == Some(0) {
            return Err(ServeConfigError::NoConnections);
        }
        Ok(())
    }

    fn first_request_limit(&self, at_capacity: bool) -> Duration {
        if at_capacity {
            self.first_request_timeout
                .min(self.first_request_timeout_at_capacity)
        } else {
            self.first_request_timeout
        }
    }

    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Without a timer, hyper's header-read timeout silently never runs.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.http2_keep_alive_interval)
            .keep_alive_timeout(self.http2_keep_alive_timeout);
        builder
    }
}

/// ¾ of the soft open-file limit: the rest is left for files, logs and the database.
fn default_max_connections() -> usize {
    #[cfg(unix)]
    {
        let files = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        match files {
            Some(files) => usize::try_from(files.saturating_mul(3) / 4)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_CEILING)
                .clamp(1, DEFAULT_MAX_CONNECTIONS_CEILING),
            None => DEFAULT_MAX_CONNECTIONS_CEILING,
        }
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Serves `app` over plain HTTP on `listener` until `shutdown` completes, then lets
/// in-flight requests finish (up to the shutdown timeout). See the [module docs](self).
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
type TlsAcceptor = tokio_rustls::TlsAcceptor;

/// Without the `tls` feature there is no acceptor: the type has no value.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
enum TlsAcceptor {}

/// What every connection of one server shares.
struct Server {
    app: Router,
    builder: auto::Builder<TokioExecutor>,
    config: ServeConfig,
    tls: Option<TlsAcceptor>,
    /// Whether every connection slot is taken and clients are waiting.
    at_capacity: watch::Sender<bool>,
}

/// Where the server is in its life; connections watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Shutdown has begun: finish what is in flight, take nothing new.
    Draining,
    /// The shutdown timeout ran out: close now.
    Closing,
}

async fn run<F>(
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

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    server: Arc<Server>,
    mut phase: watch::Receiver<Phase>,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let mut at_capacity = server.at_capacity.subscribe();
    match &server.tls {
        None => {
            let io = TokioIo::new(stream);
            drive(io, peer, &server, &activity, &mut phase, &mut at_capacity).await;
        }
        #[cfg(feature = "tls")]
        Some(acceptor) => {
            let config = &server.config;
            let mut handshake = std::pin::pin!(acceptor.accept(stream));
            let stream = loop {
                let busy = *at_capacity.borrow_and_update();
                let deadline = activity.started
                    + config
                        .tls_handshake_timeout
                        .min(config.first_request_limit(busy));
                tokio::select! {
                    handshake = handshake.as_mut() => match handshake {
                        Ok(stream) => break stream,
                        Err(error) => {
                            tracing::debug!(%error, %peer, "TLS handshake failed");
                            return;
                        }
                    },
                    () = tokio::time::sleep_until(deadline) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                    changed = at_capacity.changed() => if changed.is_err() {
                        return;
                    },
                    _ = phase.wait_for(|phase| *phase != Phase::Serving) => return,
                }
            };
            let io = TokioIo::new(stream);
            drive(io, peer, &server, &activity, &mut phase, &mut at_capacity).await;
        }
        #[cfg(not(feature = "tls"))]
        Some(acceptor) => match *acceptor {},
    }
}

/// Serves one connection until it ends, closing it when it outlives a limit.
async fn drive<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    server: &Arc<Server>,
    activity: &Arc<Activity>,
    phase: &mut watch::Receiver<Phase>,
    at_capacity: &mut watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let service = hyper::service::service_fn({
        let server = server.clone();
        let activity = activity.clone();
        move |request| handle(request, peer, server.clone(), activity.clone())
    });
    let connection = server.builder.serve_connection_with_upgrades(io, service);
    let mut connection = std::pin::pin!(connection);
    let config = &server.config;
    // Once a graceful shutdown has begun, hyper ends the connection by itself when
    // what is in flight is done.
    let mut winding_down = false;
    loop {
        let busy = *at_capacity.borrow_and_update();
        let check = activity.check(config, Instant::now(), busy);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            // A request began or ended, or the slots ran out or freed: the deadlines moved.
            () = activity.changed.notified(), if !winding_down => {}
            changed = at_capacity.changed(), if !winding_down => if changed.is_err() {
                return;
            },
            () = sleep_until(check), if !winding_down => {
                match activity.check(config, Instant::now(), busy) {
                    Check::Close => {
                        tracing::debug!(%peer, "closing a connection that sent no request in time");
                        return;
                    }
                    Check::WindDown => {
                        connection.as_mut().graceful_shutdown();
                        winding_down = true;
                    }
                    Check::At(_) => {}
                }
            }
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Closing {
                    return;
                }
                if !winding_down {
                    connection.as_mut().graceful_shutdown();
                    winding_down = true;
                }
            }
        }
    }
}

async fn sleep_until(check: Check) {
    match check {
        Check::At(at) => tokio::time::sleep_until(at).await,
        // Due now: the caller acts on it at once.
        Check::Close | Check::WindDown => {}
    }
}

/// What a connection is doing, for its timeouts: updated by its requests, read by the
/// task that serves it.
struct Activity {
    started: Instant,
    /// Requests whose head has arrived, ever.
    requests: AtomicU64,
    /// Requests not yet answered in full (response body included).
    in_flight: AtomicUsize,
    /// When `in_flight` last dropped to zero, in milliseconds since `started`.
    idle_since_ms: AtomicU64,
    /// Wakes the connection's task to look at its deadlines again.
    changed: Notify,
}

/// What a connection's timeouts ask for now.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// Close at once: no request came in time.
    Close,
    /// Idle too long: stop keeping it alive.
    WindDown,
    /// Nothing yet; look again then.
    At(Instant),
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    /// What the timeouts ask for at `now`; `at_capacity` when clients wait for a slot.
    fn check(&self, config: &ServeConfig, now: Instant, at_capacity: bool) -> Check {
        if self.requests.load(Ordering::Acquire) == 0 {
            let deadline = self.started + config.first_request_limit(at_capacity);
            return if now >= deadline {
                Check::Close
            } else {
                Check::At(deadline)
            };
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Busy: the stack's request timeout bounds the request itself.
            return Check::At(now + config.idle_timeout);
        }
        if at_capacity {
            // Kept alive but unused, while others wait: its client can reconnect.
            return Check::WindDown;
        }
        let idle_since =
            self.started + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        let deadline = idle_since + config.idle_timeout;
        if now >= deadline {
            Check::WindDown
        } else {
            Check::At(deadline)
        }
    }
}

/// One request in flight on a connection, from its head until its response body is
/// sent or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.requests.fetch_add(1, Ordering::AcqRel);
        activity.changed.notify_one();
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let elapsed = u64::try_from(activity.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Before the count drops, so that whoever sees zero sees this time.
        activity.idle_since_ms.store(elapsed, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        activity.changed.notify_one();
    }
}

async fn handle(
    mut request: Request<Incoming>,
    peer: SocketAddr,
    server: Arc<Server>,
    activity: Arc<Activity>,
) -> Result<Response<ResponseBody>, Infallible> {
    let in_flight = InFlight::start(activity);
    request.extensions_mut().insert(ConnectInfo(peer));
    // HTTP/2 needs no draining: a stream answered early is reset on its own, and the
    // connection goes on.
    let drain = (request.version() <= Version::HTTP_11).then(|| Drain {
        max_bytes: server.config.unread_body_drain_bytes,
        timeout: server.config.unread_body_drain_timeout,
        expects_continue: request
            .headers()
            .get(header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue")),
    });
    let request = request.map(|body| RequestBody {
        inner: Some(body),
        drain,
        polled: false,
    });
    let Ok(response) = server.app.clone().oneshot(request).await;
    Ok(response.map(|body| ResponseBody {
        inner: body,
        _in_flight: in_flight,
    }))
}

/// How much of an unread HTTP/1 request body to read and discard.
#[derive(Debug, Clone, Copy)]
struct Drain {
    max_bytes: u64,
    timeout: Duration,
    expects_continue: bool,
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
struct RequestBody {
    inner: Option<Incoming>,
    drain: Option<Drain>,
    polled: bool,
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
    struct ResponseBody {
        #[pin]
        inner: Body,
        _in_flight: InFlight,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_switched_off_is_refused() {
        assert_eq!(
            ServeConfig::default()
                .header_read_timeout(Duration::ZERO)
                .validate(),
            Err(ServeConfigError::ZeroTimeout("header-read timeout"))
        );
        assert_eq!(
            ServeConfig::default().max_connections(0).validate(),
            Err(ServeConfigError::NoConnections)
        );
        assert!(ServeConfig::default().validate().is_ok());
    }

    #[test]
    fn the_default_cap_leaves_room_below_the_open_file_limit() {
        let cap = ServeConfig::default().connection_limit();
        assert!((1..=DEFAULT_MAX_CONNECTIONS_CEILING).contains(&cap));
        #[cfg(unix)]
        if let Some(files) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            assert!((cap as u64) < files.max(2));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn connections_are_checked_against_each_timeout() {
        let config = ServeConfig::default()
            .first_request_timeout(Duration::from_secs(2))
            .idle_timeout(Duration::from_secs(5));
        let activity = Arc::new(Activity::new());
        let start = activity.started;
        assert!(
            matches!(activity.check(&config, start, false), Check::At(at) if at == start + Duration::from_secs(2))
        );
        assert!(matches!(
            activity.check(&config, start + Duration::from_secs(2), false),
            Check::Close
        ));
        let at_capacity = config
            .clone()
            .first_request_timeout_at_capacity(Duration::from_secs(1));
        assert!(matches!(
            activity.check(&at_capacity, start + Duration::from_secs(1), true),
            Check::Close
        ));
        let request = InFlight::start(activity.clone());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(matches!(
            activity.check(&config, Instant::now(), false),
            Check::At(_)
        ));
        drop(request);
        let idle_from = Instant::now();
        assert!(
            matches!(activity.check(&config, idle_from, false), Check::At(at) if at >= idle_from + Duration::from_secs(4))
        );
        assert!(matches!(
            activity.check(&config, idle_from + Duration::from_secs(5), false),
            Check::WindDown
        ));
        // While clients wait for a slot, an idle connection gives its slot up at once.
        assert!(matches!(
            activity.check(&config, idle_from, true),
            Check::WindDown
        ));
    }
}
