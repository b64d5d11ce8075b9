//! Rate-limit refusals on sign-in routes, recorded as security events.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use super::events::{request_id, EventContext, SecurityEventKind, SecurityLog};
use crate::expiring::{ExpiringMap, WhenFull};
use crate::ratelimit::Refused;

/// One event per client and group in this long: a flood of refused requests is one
/// event a minute per source, not one row per request (the refusals themselves are
/// each on the log already).
pub const REFUSAL_EVENT_INTERVAL: Duration = Duration::from_secs(60);

/// Sources remembered at once for [`REFUSAL_EVENT_INTERVAL`]; past it, the oldest are
/// forgotten and may be recorded again, so that memory stays bounded under a flood of
/// distinct addresses.
const REMEMBERED_SOURCES: usize = 10_000;

/// Records a `rate_limited` event (no user: the limiter counts addresses and names,
/// not accounts) for a `429` of a sign-in group. Install it just outside the rate
/// limiter; [`crate::stack::SecureStack::security_log`] does.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::account::{MemoryEventStore, SecurityLog};
///
/// let log = SecurityLog::new(Arc::new(MemoryEventStore::default()));
/// let layer = log.refusals_layer();
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct RecordRefusalsLayer {
    log: SecurityLog,
    recorded: Arc<Mutex<ExpiringMap<String, (), i64>>>,
}

impl RecordRefusalsLayer {
    pub(super) fn new(log: SecurityLog) -> Self {
        Self {
            log,
            recorded: Arc::new(Mutex::new(ExpiringMap::new(
                REMEMBERED_SOURCES,
                WhenFull::EvictSoonest,
            ))),
        }
    }

    /// Whether `refused` is the first of its source in the interval (and remembers it).
    fn first_in_interval(&self, refused: &Refused) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        let source = format!(
            "{}:{}:{}",
            refused.group, refused.by_username, refused.client
        );
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if recorded.get(&source, now).is_some() {
            return false;
        }
        let interval = i64::try_from(REFUSAL_EVENT_INTERVAL.as_millis()).unwrap_or(i64::MAX);
        let _ = recorded.insert(source, (), now.saturating_add(interval), now);
        true
    }
}

impl<S> Layer<S> for RecordRefusalsLayer {
    type Service = RecordRefusals<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordRefusals {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RecordRefusalsLayer`].
#[derive(Debug, Clone)]
pub struct RecordRefusals<S> {
    inner: S,
    layer: RecordRefusalsLayer,
}

impl<S> Service<Request<Body>> for RecordRefusals<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let request_id = request_id(req.headers());
        let future = self.inner.call(req);
        let layer = self.layer.clone();
        Box::pin(async move {
            let response = future.await?;
            if let Some(refused) = response.extensions().get::<Refused>() {
                if refused.sign_in && layer.first_in_interval(refused) {
                    let context = EventContext {
                        ip: Some(refused.client),
                        request_id,
                    };
                    layer
                        .log
                        .record(SecurityEventKind::RateLimited, None, &context)
                        .await;
                }
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::MemoryEventStore;

    #[test]
    fn one_event_per_source_and_interval() {
        let layer = SecurityLog::new(Arc::new(MemoryEventStore::default())).refusals_layer();
        let refused = |ip: [u8; 4], by_username| Refused {
            group: "auth".into(),
            sign_in: true,
            by_username,
            client: ip.into(),
        };
        assert!(layer.first_in_interval(&refused([10, 0, 0, 1], false)));
        assert!(!layer.first_in_interval(&refused([10, 0, 0, 1], false)));
        assert!(layer.first_in_interval(&refused([10, 0, 0, 1], true)));
        assert!(layer.first_in_interval(&refused([10, 0, 0, 2], false)));
        // A flood of distinct sources stays bounded.
        for i in 0..20_000u32 {
            layer.first_in_interval(&refused(i.to_be_bytes(), false));
        }
        assert!(layer.recorded.lock().unwrap().len() <= REMEMBERED_SOURCES);
    }
}
