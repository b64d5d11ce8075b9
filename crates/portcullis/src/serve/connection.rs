use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit};
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::accept::{Phase, Server};
use super::body::{Drain, RequestBody, ResponseBody};
use super::config::ServeConfig;

/// Serves one accepted connection, TLS handshake included, holding its slot until it
/// closes.
pub(super) async fn serve_connection(
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
            let Some(stream) = super::tls::handshake(
                acceptor,
                stream,
                peer,
                &server.config,
                &activity,
                &mut phase,
                &mut at_capacity,
            )
            .await
            else {
                return;
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
    let mut busy = *at_capacity.borrow_and_update();
    // One timer for the connection's life, moved only when it fires. Requests do not
    // wake this task: waking it and setting a new timer at every request's start and
    // end cost more than the rest of the connection's bookkeeping together. Instead
    // the timer is never set later than one idle timeout from now, and a request
    // never makes a deadline earlier than that: the idle time starts when a request
    // ends, after the timer was set. So the timer fires at or before every deadline,
    // finds it moved or due, and is set again. The deadlines that capacity makes
    // earlier come with a wake-up of their own.
    let now = Instant::now();
    let timer = tokio::time::sleep_until(match activity.check(config, now, busy) {
        Check::At(at) => at.min(now + config.idle_timeout),
        Check::Close | Check::WindDown => now,
    });
    let mut timer = std::pin::pin!(timer);
    loop {
        let act = tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            // A request ended while clients wait for a slot.
            () = activity.changed.notified(), if !winding_down => true,
            changed = at_capacity.changed(), if !winding_down => {
                if changed.is_err() {
                    return;
                }
                busy = *at_capacity.borrow_and_update();
                true
            }
            () = timer.as_mut(), if !winding_down => true,
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == Phase::Closing {
                    return;
                }
                if !winding_down {
                    connection.as_mut().graceful_shutdown();
                    winding_down = true;
                }
                false
            }
        };
        if !act || winding_down {
            continue;
        }
        let now = Instant::now();
        match activity.check(config, now, busy) {
            Check::Close => {
                tracing::debug!(%peer, "closing a connection that sent no request in time");
                return;
            }
            Check::WindDown => {
                connection.as_mut().graceful_shutdown();
                winding_down = true;
            }
            Check::At(at) => {
                let at = at.min(now + config.idle_timeout);
                if at != timer.deadline() || timer.is_elapsed() {
                    timer.as_mut().reset(at);
                }
            }
        }
    }
}

/// What a connection is doing, for its timeouts: updated by its requests, read by the
/// task that serves it.
pub(super) struct Activity {
    pub(super) started: Instant,
    /// Requests whose head has arrived, ever.
    requests: AtomicU64,
    /// Requests not yet answered in full (response body included).
    in_flight: AtomicUsize,
    /// When `in_flight` last dropped to zero, in milliseconds since `started`.
    idle_since_ms: AtomicU64,
    /// Wakes the connection's task to look at its deadlines again: when a request
    /// ends while clients wait for a slot, so that the connection gives its slot up.
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
    pub(super) fn new() -> Self {
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
pub(super) struct InFlight {
    activity: Arc<Activity>,
    server: Arc<Server>,
}

impl InFlight {
    fn start(activity: Arc<Activity>, server: Arc<Server>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.requests.fetch_add(1, Ordering::AcqRel);
        Self { activity, server }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.activity;
        let elapsed = u64::try_from(activity.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Before the count drops, so that whoever sees zero sees this time.
        activity.idle_since_ms.store(elapsed, Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        // Only when clients wait does an idle connection have to act at once.
        if *self.server.at_capacity.borrow() {
            activity.changed.notify_one();
        }
    }
}

async fn handle(
    mut request: Request<Incoming>,
    peer: SocketAddr,
    server: Arc<Server>,
    activity: Arc<Activity>,
) -> Result<Response<ResponseBody>, Infallible> {
    let in_flight = InFlight::start(activity, server);
    let server = &in_flight.server;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let server = Arc::new(Server {
            app: axum::Router::new(),
            builder: config.builder(),
            config: config.clone(),
            tls: None,
            at_capacity: watch::Sender::new(false),
        });
        let request = InFlight::start(activity.clone(), server);
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
