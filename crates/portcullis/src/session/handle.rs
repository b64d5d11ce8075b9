//! [`Session`]: this request's session, as handlers see it.

use std::fmt;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::client::ClientSource;
use super::cookie::SessionId;
use super::layer::Shared;
use super::record::{now, SessionRecord};
use super::store::SessionStoreError;
use crate::error::{Error, MissingLayer};

/// What a request did to its session, for the layer to write back after the handler.
#[derive(Debug, Default)]
pub(super) struct State {
    // The id the record lives under: the cookie's, or a new one.
    pub(super) current: Option<SessionIdSlot>,
    // Whether the response must carry `current` in a new cookie.
    pub(super) new_cookie: bool,
    // Whether the response must clear the cookie (no record left).
    pub(super) clear_cookie: bool,
    // Store keys to delete after the handler: a logged-out or pre-login id.
    pub(super) retired: Vec<String>,
    pub(super) record: Option<SessionRecord>,
    pub(super) changed: bool,
    // The device this request came from: kept in a record begun or signed in by it.
    pub(super) client: ClientSource,
}

impl State {
    fn retire_current(&mut self) {
        if let Some(slot) = self.current.take() {
            if !self.new_cookie {
                self.retired.push(slot.0.store_key());
            }
        }
        self.new_cookie = false;
    }
}

/// A session id that `Debug` never prints.
#[derive(Clone)]
pub(super) struct SessionIdSlot(pub(super) SessionId);

impl fmt::Debug for SessionIdSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[session id]")
    }
}

/// This request's session: an extractor, cheap to clone.
///
/// Nothing is stored and no cookie is set until something is written (a login, a
/// value, a CSRF secret), so anonymous readers of public pages cost nothing.
///
/// ```
/// use portcullis::session::Session;
///
/// async fn sign_in(session: Session) -> &'static str {
///     // After the password was checked: a new id, so a planted one is worthless.
///     session.login(42);
///     session.insert("theme", "dark");
///     "welcome"
/// }
///
/// let _route: axum::routing::MethodRouter = axum::routing::post(sign_in);
/// ```
#[derive(Clone)]
pub struct Session {
    state: Arc<Mutex<State>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(super) fn new(state: State, shared: Arc<Shared>) -> Self {
        Self {
            state: Arc::new(Mutex::new(state)),
            shared,
        }
    }

    /// What the handler did, leaving an empty state behind.
    pub(super) fn take_state(&self) -> State {
        self.with(std::mem::take)
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    fn record_mut<R>(&self, f: impl FnOnce(&mut SessionRecord) -> R) -> R {
        self.with(|state| {
            if state.record.is_none() {
                // A new session always gets a new id, never a retired or expired one.
                state.retire_current();
                state.current = Some(SessionIdSlot(SessionId::generate()));
                state.new_cookie = true;
                state.record = Some(SessionRecord::new(now(), state.client.describe()));
            }
            state.changed = true;
            f(state.record.as_mut().expect("set above"))
        })
    }

    /// The logged-in user, if any.
    pub fn user_id(&self) -> Option<i64> {
        self.with(|s| s.record.as_ref().and_then(|r| r.user_id))
    }

    /// The id under which [`UserSessions::list`] shows this session, so that a "your
    /// sessions" page can mark this device and not offer to end it; `None` without a
    /// session. It is the store's key, a SHA-256 digest of the cookie's id: it names
    /// the session to its owner but signs nobody in.
    ///
    /// ```
    /// use axum::extract::State;
    /// use portcullis::session::{Session, UserSessions};
    ///
    /// async fn your_sessions(State(sessions): State<UserSessions>, session: Session) -> String {
    ///     let Some(user_id) = session.user_id() else { return "sign in".into() };
    ///     let this_device = session.listing_id();
    ///     let listed = sessions.list(user_id, this_device.as_deref()).await.unwrap_or_default();
    ///     listed
    ///         .iter()
    ///         .map(|s| {
    ///             let mark = if s.current { " (this device)" } else { "" };
    ///             format!("{}, {}{mark}", s.client.browser, s.client.network)
    ///         })
    ///         .collect::<Vec<_>>()
    ///         .join("\n")
    /// }
    ///
    /// let _route: axum::routing::MethodRouter<UserSessions> = axum::routing::get(your_sessions);
    /// ```
    ///
    /// [`UserSessions::list`]: super::UserSessions::list
    pub fn listing_id(&self) -> Option<String> {
        self.with(|s| {
            s.record.as_ref()?;
            s.current.as_ref().map(|slot| slot.0.store_key())
        })
    }

    /// A value stored under `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.with(|s| s.record.as_ref().and_then(|r| r.data.get(key).cloned()))
    }

    /// Stores `value` under `key`.
    pub fn insert(&self, key: impl Into<String>, value: impl Into<String>) {
        self.record_mut(|r| {
            r.data.insert(key.into(), value.into());
        });
    }

    /// Removes the value under `key`. Without a session there is nothing to remove,
    /// and none is created.
    pub fn remove(&self, key: &str) -> Option<String> {
        let present = self.with(|s| s.record.as_ref().is_some_and(|r| r.data.contains_key(key)));
        if !present {
            return None;
        }
        self.record_mut(|r| r.data.remove(key))
    }

    /// The CSRF secret, created (with the session) when there is none yet.
    pub fn csrf_secret(&self) -> Vec<u8> {
        if let Some(secret) = self.existing_csrf_secret() {
            return secret;
        }
        self.record_mut(|r| r.csrf_secret())
    }

    /// The CSRF secret if the session exists; never creates one.
    pub fn existing_csrf_secret(&self) -> Option<Vec<u8>> {
        self.with(|s| s.record.as_ref().map(SessionRecord::csrf_secret))
    }

    /// Logs `user_id` in: a new session id (the old one is deleted, so a fixated id
    /// is worthless), a new CSRF secret, and the absolute lifetime restarted. Values
    /// stored before are kept when the session was anonymous or already this user's
    /// (a cart filled before signing in); another user's values are dropped, so that
    /// nobody inherits what the previous user of a shared browser left behind.
    pub fn login(&self, user_id: i64) {
        self.with(|state| {
            let now = now();
            let data = state
                .record
                .take()
                .filter(|r| r.user_id.is_none() || r.user_id == Some(user_id))
                .map(|r| r.data)
                .unwrap_or_default();
            state.record = Some(SessionRecord {
                user_id: Some(user_id),
                data,
                ..SessionRecord::new(now, state.client.describe())
            });
            state.retire_current();
            state.current = Some(SessionIdSlot(SessionId::generate()));
            state.new_cookie = true;
            state.changed = true;
        });
    }

    /// Ends the session: the record is deleted on the server and the cookie cleared,
    /// so the old cookie, replayed, is anonymous.
    pub fn destroy(&self) {
        self.with(|state| {
            state.retire_current();
            state.record = None;
            state.changed = false;
            state.clear_cookie = true;
        });
    }

    /// Ends every other session of the logged-in user (after a password change, or
    /// "log out everywhere"); returns how many ended.
    pub async fn end_other_sessions(&self) -> Result<u64, SessionStoreError> {
        let Some(user_id) = self.user_id() else {
            return Ok(0);
        };
        let current = self.with(|s| s.current.as_ref().map(|slot| slot.0.store_key()));
        self.shared
            .store
            .delete_user(user_id, current.as_deref())
            .await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| MissingLayer::new("Session", "the session layer").into())
    }
}
