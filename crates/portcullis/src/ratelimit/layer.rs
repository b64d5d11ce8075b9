//! The tower layer: finds the rule for a request, counts its keys in the store, and
//! answers `429` over the limit and `503` when the store fails (fail closed).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::key::{
    find_username, ip_store_key, store_key, KeyKind, UnreadableUsername, Username, UsernameSources,
};
use super::{Decision, Quota, RateLimitGroup, RateLimitStore, RateLimitStoreError};
use crate::body::buffer_body;
use crate::client_ip::ClientInfo;
use crate::error::{Error, MissingLayer};

/// `RateLimit-Limit`: the bucket's size.
pub const LIMIT_HEADER: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left in the bucket.
pub const REMAINING_HEADER: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the bucket is full again.
pub const RESET_HEADER: HeaderName = HeaderName::from_static("ratelimit-reset");

/// A group as the layer applies it.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) group: RateLimitGroup,
    // The effective quotas, after the mode's factor.
    pub(super) per_ip: Option<Quota>,
    pub(super) per_username: Option<Quota>,
}

/// What every clone of the layer and its services share: the validated configuration
/// and the store.
#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub(super) rules: Vec<Rule>,
    pub(super) default: Option<Rule>,
    pub(super) store: Arc<dyn RateLimitStore>,
    pub(super) max_body_bytes: usize,
}

impl Shared {
    fn rule(&self, method: &Method, path: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.group.matches(method, path))
            .or(self.default.as_ref())
    }
}

/// Counts requests and refuses those over their limit. See the module docs.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::ratelimit::{MemoryRateLimitStore, RateLimitConfig, RateLimitLayer};
///
/// let layer: RateLimitLayer = RateLimitConfig::default()
///     .layer(Arc::new(MemoryRateLimitStore::new()))
///     .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    pub(super) shared: Arc<Shared>,
}

impl RateLimitLayer {
    /// Inside a stack whose body-limit layer bounds every body, login bodies are read
    /// up to that limit, not a second one of the layer's own that would have to agree.
    pub(crate) fn within_body_limit(self) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        shared.max_body_bytes = usize::MAX;
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`RateLimitLayer`].
///
/// ```
/// use std::sync::Arc;
/// use portcullis::ratelimit::{MemoryRateLimitStore, RateLimit, RateLimitConfig};
/// use tower::Layer;
///
/// let layer = RateLimitConfig::default().layer(Arc::new(MemoryRateLimitStore::new())).unwrap();
/// let service: RateLimit<_> = layer.layer(tower::service_fn(|_req: axum::http::Request<axum::body::Body>| async {
///     Ok::<_, std::convert::Infallible>(axum::http::Response::new(axum::body::Body::empty()))
/// }));
/// ```
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit").finish_non_exhaustive()
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn set_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert(LIMIT_HEADER, HeaderValue::from(decision.limit));
    headers.insert(REMAINING_HEADER, HeaderValue::from(decision.remaining));
    headers.insert(
        RESET_HEADER,
        HeaderValue::from(ceil_secs(decision.reset_after)),
    );
}

struct Refusal<'a> {
    group: &'a str,
    sign_in: bool,
    kind: KeyKind,
    client: IpAddr,
    path: &'a str,
}

/// What a `429` of the limiter carries in its response extensions, so that a layer
/// outside it can act on the refusal: `account::SecurityLog::refusals_layer` (feature `account`)
/// records refusals on sign-in routes as security events.
///
/// ```
/// use portcullis::ratelimit::Refused;
///
/// fn refused_sign_in(response: &axum::http::Response<axum::body::Body>) -> bool {
///     response.extensions().get::<Refused>().is_some_and(|r| r.sign_in)
/// }
/// # let _ = refused_sign_in;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refused {
    /// The group whose limit refused the request.
    pub group: String,
    /// Whether the group guards sign-in ([`RateLimitGroup::sign_in`]).
    pub sign_in: bool,
    /// `true` when the spent bucket was the submitted username's, `false` when the
    /// client address's.
    pub by_username: bool,
    /// The client's address.
    pub client: IpAddr,
}

fn refuse(refusal: Refusal<'_>, decision: &Decision) -> Response<Body> {
    tracing::warn!(
        target: "portcullis::security",
        event = "rate_limited",
        group = refusal.group,
        key_kind = refusal.kind.as_str(),
        client_ip = %refusal.client,
        path = refusal.path,
        "refused a request over its rate limit"
    );
    let retry = decision
        .retry_after
        .map(ceil_secs)
        .unwrap_or_else(|| ceil_secs(decision.reset_after))
        .max(1);
    let mut response = Error::too_many_requests(retry).into_response();
    set_headers(response.headers_mut(), decision);
    response.extensions_mut().insert(Refused {
        group: refusal.group.to_owned(),
        sign_in: refusal.sign_in,
        by_username: matches!(refusal.kind, KeyKind::User),
        client: refusal.client,
    });
    response
}

fn unavailable(error: &RateLimitStoreError, group: &str, path: &str) -> Response<Body> {
    tracing::error!(
        target: "portcullis::security",
        event = "rate_limit_store_error",
        error = %error,
        group,
        path,
        "the rate-limit store failed; refused the request (fail closed)"
    );
    Error::service_unavailable(5).into_response()
}

/// Counts one request under the store key `key`; the response to send when it may
/// not go on.
async fn count(
    shared: &Shared,
    at: Refusal<'_>,
    key: String,
    quota: Quota,
) -> Result<Decision, Response<Body>> {
    match shared.store.check(&key, &quota).await {
        Ok(decision) if decision.allowed => Ok(decision),
        Ok(decision) => Err(refuse(at, &decision)),
        Err(error) => Err(unavailable(&error, at.group, at.path)),
    }
}

/// Keeps the decision with the fewest requests left: the one a client should heed.
fn tighter(current: Option<Decision>, new: Decision) -> Option<Decision> {
    match current {
        Some(c) if c.remaining <= new.remaining => Some(c),
        _ => Some(new),
    }
}

impl<S> Service<Request<Body>> for RateLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            let Some(rule) = shared.rule(req.method(), &path) else {
                return inner.call(req).await;
            };
            let Some(client) = req.extensions().get::<ClientInfo>().map(|c| c.ip) else {
                // Counting by a header here would let any client pick its bucket.
                let missing = MissingLayer::new("the rate limiter", "the client-info layer");
                return Ok(missing.into_response());
            };
            let group = rule.group.name();
            let mut tightest = None;
            let sign_in = rule.group.guards_sign_in();
            let at = |kind| Refusal {
                group,
                sign_in,
                kind,
                client,
                path: &path,
            };

            // The address first: a client over its limit is refused before its body
            // is read.
            if let Some(quota) = rule.per_ip {
                let key = ip_store_key(group, client);
                match count(&shared, at(KeyKind::Ip), key, quota).await {
                    Ok(decision) => tightest = tighter(tightest, decision),
                    Err(response) => return Ok(response),
                }
            }
            if let Some(quota) = rule.per_username {
                let sources = UsernameSources::of(req.method(), req.headers());
                if !sources.any() {
                    // Counting nothing here would let a body of a type the handler
                    // also reads (an extractor the limiter does not know) guess
                    // without limit.
                    return Ok(Error::unsupported_media_type(
                        "Send the body as application/x-www-form-urlencoded or application/json.",
                    )
                    .into_response());
                }
                let query = req.uri().query().unwrap_or("").to_owned();
                let mut bytes = bytes::Bytes::new();
                if sources.reads_body() {
                    (req, bytes) = match buffer_body(req, shared.max_body_bytes).await {
                        Ok(buffered) => buffered,
                        Err(too_large) => return Ok(too_large),
                    };
                }
                match find_username(sources, &query, &bytes) {
                    Ok(Username::None) => {}
                    Ok(Username::One(name)) => {
                        let key = store_key(group, KeyKind::User, &name);
                        match count(&shared, at(KeyKind::User), key, quota).await {
                            Ok(decision) => tightest = tighter(tightest, decision),
                            Err(response) => return Ok(response),
                        }
                    }
                    Ok(Username::Several) => {
                        return Ok(Error::bad_request(
                            "The request names more than one username; send one.",
                        )
                        .into_response());
                    }
                    Err(UnreadableUsername::NotAnObject) => {
                        return Ok(
                            Error::bad_request("Send the JSON body as an object.").into_response()
                        );
                    }
                }
            }
            let mut response = inner.call(req).await?;
            if let Some(decision) = tightest {
                set_headers(response.headers_mut(), &decision);
            }
            Ok(response)
        })
    }
}
