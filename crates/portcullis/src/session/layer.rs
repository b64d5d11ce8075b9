//! The session layer: loads the session before the handler, saves it after, and keeps
//! responses that depend on it out of shared caches.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response};
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::client::ClientSource;
use super::config::SessionConfig;
use super::cookie::{read_cookie, set_cookie, SessionId};
use super::handle::{Session, SessionIdSlot, State};
use super::record::now;
use super::store::{SessionStore, SessionStoreError};
use crate::client_ip::ClientInfo;
use crate::error::Error;
use crate::keys::Signer;

/// What every request of one layer shares: the settings, the cookie signer, the store.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: SessionConfig,
    pub(super) signer: Signer,
    pub(super) store: Arc<dyn SessionStore>,
    /// Whether the layer has said once that browsers drop its cookie over plain HTTP.
    pub(super) warned_plain_http: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The `Set-Cookie` value carrying `id`, or clearing the cookie.
    fn cookie(&self, https: bool, id: Option<&SessionId>) -> Option<HeaderValue> {
        set_cookie(&self.signer, self.config.is_secure(), https, id)
    }
}

/// Loads the session before the handler and saves it after. Built by
/// [`SessionConfig::layer`]; a store that fails makes the request a 503, never an
/// anonymous or silently unsaved session.
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl SessionLayer {
    pub(super) fn new(config: SessionConfig, signer: Signer, store: Arc<dyn SessionStore>) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                signer,
                store,
                warned_plain_http: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`SessionLayer`].
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

/// A `Secure` cookie set over plain HTTP for a host other than a loopback name: the
/// browser drops it, every form then fails its CSRF check and nobody can sign in, with
/// nothing in the log. Said once, with the fix.
fn warn_if_dropped<B>(shared: &Shared, req: &Request<B>, https: bool) {
    use std::sync::atomic::Ordering;
    if https || !shared.config.is_secure() || shared.warned_plain_http.load(Ordering::Relaxed) {
        return;
    }
    let host = req
        .extensions()
        .get::<ClientInfo>()
        .and_then(|client| client.host.clone());
    let Some(host) = host.filter(|host| !crate::https::is_loopback_name(host)) else {
        return;
    };
    if !shared.warned_plain_http.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "portcullis::config",
            %host,
            "the session cookie is Secure but this request came over plain HTTP: browsers drop it, \
             so sessions and CSRF tokens will not work on this host; serve HTTPS, or in development \
             use SessionConfig::insecure_cookie_over_plain_http()"
        );
    }
}

fn is_https<B>(req: &Request<B>) -> bool {
    match req.extensions().get::<ClientInfo>() {
        Some(client) => client.is_https(),
        None => req.uri().scheme_str() == Some("https"),
    }
}

impl<S, B> Service<Request<B>> for SessionService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        // The clone that was made ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let https = is_https(&req);
            let now = now();
            let mut state = State::default();
            let cookie = read_cookie(req.headers(), https, &shared.signer);
            // What this response shows may depend on who asked.
            let personal = cookie.is_some();
            if let Some(id) = cookie {
                let key = id.store_key();
                match shared.store.load(&key).await {
                    Ok(Some(record)) if shared.config.expires_at(&record) > now => {
                        state.current = Some(SessionIdSlot(id));
                        state.record = Some(record);
                    }
                    Ok(Some(_)) => {
                        // Idle or absolute expiry: the record goes, the client is anonymous.
                        state.retired.push(key);
                        state.clear_cookie = true;
                    }
                    Ok(None) => state.clear_cookie = true,
                    Err(error) => {
                        tracing::error!(%error, "session store unavailable");
                        return Ok(Error::service_unavailable(5).into_response());
                    }
                }
            }
            warn_if_dropped(&shared, &req, https);
            state.client = ClientSource::of_request(req.headers(), req.extensions());
            let handle = Session::new(state, shared.clone());
            req.extensions_mut().insert(handle.clone());
            let mut response = inner.call(req).await?;

            let state = handle.take_state();
            let unavailable = |error: SessionStoreError| {
                tracing::error!(%error, "cannot write a session");
                Ok(Error::service_unavailable(5).into_response())
            };
            for key in &state.retired {
                if let Err(error) = shared.store.delete(key).await {
                    return unavailable(error);
                }
            }
            match (state.record, state.current) {
                (Some(mut record), Some(SessionIdSlot(id))) => {
                    let touch_due = shared.config.touch_due(record.last_seen, now);
                    if state.changed || touch_due || state.new_cookie {
                        record.last_seen = now;
                        let expires_at = shared.config.expires_at(&record);
                        let key = id.store_key();
                        let saved = if state.new_cookie {
                            shared
                                .store
                                .save(&key, &record, expires_at)
                                .await
                                .map(|()| true)
                        } else {
                            // Only while it exists: ended meanwhile, it stays ended.
                            shared.store.update(&key, &record, expires_at).await
                        };
                        match saved {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::info!(
                                    target: "portcullis::security",
                                    "a session ended while a request of it was in flight; its write was dropped"
                                );
                                if let Some(cookie) = shared.cookie(https, None) {
                                    response.headers_mut().append(header::SET_COOKIE, cookie);
                                }
                                keep_out_of_shared_caches(response.headers_mut());
                                return Ok(response);
                            }
                            Err(error) => return unavailable(error),
                        }
                    }
                    if state.new_cookie {
                        if let Some(cookie) = shared.cookie(https, Some(&id)) {
                            response.headers_mut().append(header::SET_COOKIE, cookie);
                        }
                    }
                }
                _ if state.clear_cookie => {
                    if let Some(cookie) = shared.cookie(https, None) {
                        response.headers_mut().append(header::SET_COOKIE, cookie);
                    }
                }
                _ => {}
            }
            if personal || response.headers().contains_key(header::SET_COOKIE) {
                keep_out_of_shared_caches(response.headers_mut());
            }
            Ok(response)
        })
    }
}

/// A response that read or set a session must not be stored by a shared cache and
/// served to someone else: `Cache-Control: no-store` unless the handler chose its own
/// caching (a route that knows its page is the same for everyone), and `Vary: Cookie`
/// in any case, so that a cache that stores it anyway keys it by the cookie.
fn keep_out_of_shared_caches(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let varies = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == "*" || v.trim().eq_ignore_ascii_case("cookie"));
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_ip::Scheme;
    use crate::keys::{Keyring, Purpose};
    use crate::session::{MemorySessionStore, SessionConfig};

    /// The log lines written while `f` runs.
    fn logged(f: impl FnOnce()) -> String {
        let captured = crate::test_support::CapturedLog::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber_for_tests(move || writer.clone());
        tracing::subscriber::with_default(subscriber, f);
        captured.text()
    }

    fn tracing_subscriber_for_tests<W>(make: W) -> impl tracing::Subscriber
    where
        W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(make)
            .finish()
    }

    fn shared(config: SessionConfig) -> Shared {
        Shared {
            config,
            signer: Keyring::ephemeral().signer(Purpose::SESSION),
            store: Arc::new(MemorySessionStore::default()),
            warned_plain_http: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn request(host: &str, scheme: Scheme) -> Request<()> {
        let mut req = Request::new(());
        req.extensions_mut().insert(ClientInfo {
            ip: "192.168.1.20".parse().unwrap(),
            scheme,
            host: Some(host.to_owned()),
        });
        req
    }

    #[test]
    fn a_secure_cookie_over_plain_http_on_a_lan_address_is_said_once() {
        let layer = shared(SessionConfig::default());
        let lines = logged(|| {
            for _ in 0..3 {
                let req = request("192.168.1.5:3000", Scheme::Http);
                warn_if_dropped(&layer, &req, false);
            }
        });
        assert_eq!(lines.matches("browsers drop it").count(), 1, "{lines}");
        assert!(lines.contains("insecure_cookie_over_plain_http"), "{lines}");
    }

    #[test]
    fn https_loopback_and_the_insecure_switch_say_nothing() {
        let quiet = |layer: &Shared, host: &str, https: bool| {
            logged(|| {
                let scheme = if https { Scheme::Https } else { Scheme::Http };
                warn_if_dropped(layer, &request(host, scheme), https);
            })
        };
        let secure = shared(SessionConfig::default());
        assert_eq!(quiet(&secure, "app.example", true), "");
        assert_eq!(quiet(&secure, "localhost:3000", false), "");
        assert_eq!(quiet(&secure, "127.0.0.1:3000", false), "");
        let insecure = shared(SessionConfig::default().insecure_cookie_over_plain_http());
        assert_eq!(quiet(&insecure, "192.168.1.5:3000", false), "");
    }
}
