//! The security-event stream: one typed record per security-relevant step of an
//! account, written to the `portcullis::security` log target and to a store the app
//! can show its users ("Recent activity").

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// What happened. The names (`snake_case`) are stable: logs and stores keep them.
///
/// ```
/// use portcullis::account::SecurityEventKind;
///
/// assert_eq!(SecurityEventKind::OtpFailed.as_str(), "otp_failed");
/// assert_eq!("lockout_started".parse(), Ok(SecurityEventKind::LockoutStarted));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecurityEventKind {
    /// A sign-in completed (every factor).
    LoginSucceeded,
    /// A password was wrong for an existing account.
    LoginFailed,
    /// A one-time or recovery code was wrong, reused or expired.
    OtpFailed,
    /// Repeated failures started a delay on the account.
    LockoutStarted,
    /// The password was changed by its owner.
    PasswordChanged,
    /// A reset link was asked for (whether or not it was sent).
    PasswordResetRequested,
    /// A reset link set a new password.
    PasswordResetCompleted,
    /// An email address was confirmed.
    EmailConfirmed,
    /// Two-factor sign-in was turned on.
    TotpEnabled,
    /// Two-factor sign-in was turned off.
    TotpDisabled,
    /// A recovery code was spent.
    RecoveryCodeUsed,
    /// A session was ended from the session list.
    SessionEnded,
    /// A used refresh token came back: its family was revoked.
    TokenReuseDetected,
    /// A rate limit refused a request to a sign-in route.
    RateLimited,
}

const KINDS: [SecurityEventKind; 14] = [
    SecurityEventKind::LoginSucceeded,
    SecurityEventKind::LoginFailed,
    SecurityEventKind::OtpFailed,
    SecurityEventKind::LockoutStarted,
    SecurityEventKind::PasswordChanged,
    SecurityEventKind::PasswordResetRequested,
    SecurityEventKind::PasswordResetCompleted,
    SecurityEventKind::EmailConfirmed,
    SecurityEventKind::TotpEnabled,
    SecurityEventKind::TotpDisabled,
    SecurityEventKind::RecoveryCodeUsed,
    SecurityEventKind::SessionEnded,
    SecurityEventKind::TokenReuseDetected,
    SecurityEventKind::RateLimited,
];

impl SecurityEventKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::OtpFailed => "otp_failed",
            Self::LockoutStarted => "lockout_started",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordResetCompleted => "password_reset_completed",
            Self::EmailConfirmed => "email_confirmed",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpDisabled => "totp_disabled",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::SessionEnded => "session_ended",
            Self::TokenReuseDetected => "token_reuse_detected",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl std::str::FromStr for SecurityEventKind {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        KINDS.into_iter().find(|k| k.as_str() == name).ok_or(())
    }
}

impl fmt::Display for SecurityEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and through which request an event happened: the client address (from the
/// client-info layer, so from trusted proxies only) and the request id. An extractor
/// that never refuses: a part the stack did not provide is `None`.
///
/// ```
/// use portcullis::account::EventContext;
///
/// async fn handler(context: EventContext) -> String {
///     format!("{:?} {:?}", context.ip, context.request_id)
/// }
/// # let _ = axum::Router::<()>::new().route("/", axum::routing::post(handler));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventContext {
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}

impl EventContext {
    /// The context of a request's parts.
    pub fn of(parts: &Parts) -> Self {
        Self {
            ip: parts
                .extensions
                .get::<crate::client_ip::ClientInfo>()
                .map(|client| client.ip),
            request_id: request_id(&parts.headers),
        }
    }
}

/// The request's `x-request-id` (the stack's own, set before any handler), when it is
/// one the log can carry.
pub(super) fn request_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| id.len() <= 128)
        .map(str::to_owned)
}

impl<S: Send + Sync> FromRequestParts<S> for EventContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: SecurityEventKind,
    /// When, UTC.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Whose account, when one is known.
    pub user_id: Option<i64>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The request's id, to find its log lines.
    pub request_id: Option<String>,
}

impl SecurityEvent {
    /// `kind` for `user_id`, now, from `context`.
    pub fn new(kind: SecurityEventKind, user_id: Option<i64>, context: &EventContext) -> Self {
        Self {
            kind,
            at: chrono::Utc::now(),
            user_id,
            ip: context.ip,
            request_id: context.request_id.clone(),
        }
    }
}

/// A store of events could not take or give one.
#[derive(Debug, thiserror::Error)]
#[error("security event store unavailable: {0}")]
pub struct EventStoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where events are kept for the app to show: an application's table, or
/// [`MemoryEventStore`].
pub trait SecurityEventStore: Send + Sync + fmt::Debug + 'static {
    /// Keeps `event`.
    fn append<'a>(&'a self, event: &'a SecurityEvent)
        -> BoxFuture<'a, Result<(), EventStoreError>>;
    /// The `limit` newest events of `user_id`, newest first.
    fn recent(
        &self,
        user_id: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<SecurityEvent>, EventStoreError>>;
}

/// The newest events in memory, at most `capacity` in all (the oldest go first).
///
/// ```
/// use portcullis::account::{EventContext, MemoryEventStore, SecurityEvent, SecurityEventKind, SecurityEventStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryEventStore::new(1000);
/// let event = SecurityEvent::new(SecurityEventKind::LoginFailed, Some(7), &EventContext::default());
/// store.append(&event).await.unwrap();
/// assert_eq!(store.recent(7, 10).await.unwrap(), vec![event]);
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryEventStore {
    events: Mutex<VecDeque<SecurityEvent>>,
    capacity: usize,
}

impl MemoryEventStore {
    /// A store of at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self {
            events: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl SecurityEventStore for MemoryEventStore {
    fn append<'a>(
        &'a self,
        event: &'a SecurityEvent,
    ) -> BoxFuture<'a, Result<(), EventStoreError>> {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() == self.capacity {
            events.pop_front();
        }
        events.push_back(event.clone());
        Box::pin(std::future::ready(Ok(())))
    }

    fn recent(
        &self,
        user_id: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<SecurityEvent>, EventStoreError>> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let found = events
            .iter()
            .rev()
            .filter(|e| e.user_id == Some(user_id))
            .take(limit)
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// Records events: one line on the `portcullis::security` log target each (kind,
/// user, address, request id; never a secret), and the event in the store.
///
/// A store that fails does not fail the request that caused the event: the log line
/// is still written, and the failure logged beside it.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::account::{EventContext, MemoryEventStore, SecurityEventKind, SecurityLog};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let log = SecurityLog::new(Arc::new(MemoryEventStore::default()));
/// log.record(SecurityEventKind::TotpEnabled, Some(7), &EventContext::default()).await;
/// let recent = log.recent(7, 10).await.unwrap();
/// assert_eq!(recent[0].kind, SecurityEventKind::TotpEnabled);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct SecurityLog {
    store: Arc<dyn SecurityEventStore>,
}

impl SecurityLog {
    /// A log that keeps events in `store`.
    pub fn new(store: Arc<dyn SecurityEventStore>) -> Self {
        Self { store }
    }

    /// Records `kind` for `user_id` from `context`, now.
    pub async fn record(
        &self,
        kind: SecurityEventKind,
        user_id: Option<i64>,
        context: &EventContext,
    ) {
        let event = SecurityEvent::new(kind, user_id, context);
        tracing::info!(
            target: "portcullis::security",
            event = kind.as_str(),
            user_id = event.user_id,
            ip = event.ip.map(tracing::field::display),
            request_id = event.request_id.as_deref(),
            "security event"
        );
        if let Err(error) = self.store.append(&event).await {
            tracing::error!(
                target: "portcullis::security",
                %error,
                event = kind.as_str(),
                "a security event could not be stored"
            );
        }
    }

    /// A layer that records the rate limiter's refusals on sign-in routes as
    /// [`SecurityEventKind::RateLimited`] events, one per client and group a minute.
    /// [`crate::stack::SecureStack::security_log`] installs it where it belongs.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use portcullis::account::{MemoryEventStore, SecurityLog};
    ///
    /// let layer = SecurityLog::new(Arc::new(MemoryEventStore::default())).refusals_layer();
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "ratelimit")]
    pub fn refusals_layer(&self) -> super::RecordRefusalsLayer {
        super::RecordRefusalsLayer::new(self.clone())
    }

    /// The `limit` newest events of `user_id`, newest first.
    pub async fn recent(
        &self,
        user_id: i64,
        limit: usize,
    ) -> Result<Vec<SecurityEvent>, EventStoreError> {
        self.store.recent(user_id, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_by_name_and_in_json() {
        for kind in KINDS {
            assert_eq!(kind.as_str().parse(), Ok(kind));
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
        assert!("LoginFailed".parse::<SecurityEventKind>().is_err());
    }

    #[tokio::test]
    async fn the_memory_store_is_bounded_and_per_user() {
        let store = MemoryEventStore::new(3);
        for user in [1, 2, 1, 1] {
            let event = SecurityEvent::new(
                SecurityEventKind::LoginFailed,
                Some(user),
                &EventContext::default(),
            );
            store.append(&event).await.unwrap();
        }
        assert_eq!(store.recent(1, 10).await.unwrap().len(), 2);
        assert_eq!(store.recent(2, 10).await.unwrap().len(), 1);
        assert_eq!(store.recent(1, 1).await.unwrap().len(), 1);
    }
}
