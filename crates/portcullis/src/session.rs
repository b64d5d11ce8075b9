//! Server-side sessions: the cookie carries a signed random id, the data stays on the
//! server.
//!
//! - Ids are 256 bits from the operating system's random source; the cookie holds the
//!   id signed with the keyring's `session` subkey (so key rotation covers sessions
//!   too), and stores index records by the SHA-256 of the id, so a leaked session table
//!   holds no usable cookie.
//! - The cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`, without `Domain`, `Secure`
//!   whenever the configuration says so or the request came over HTTPS, and named
//!   `__Host-session` over HTTPS (the browser then refuses it from subdomains and plain
//!   HTTP) or `session` over plain HTTP in development.
//! - Idle timeout (30 minutes) and absolute lifetime (12 hours), both enforced on the
//!   server; [`Session::login`] issues a new id (no fixation), [`Session::destroy`]
//!   deletes the record, so a replayed cookie is anonymous, and
//!   [`Session::end_other_sessions`] ends every other session of the user (after a
//!   password change).
//! - Stores sit behind one async trait, [`SessionStore`]: [`MemorySessionStore`] (sharded,
//!   TTL and a size cap, purged in the background) and [`SqliteSessionStore`].
//!
//! Portcullis writes this itself rather than using tower-sessions 0.14 because that
//! crate draws ids from a user-space PRNG, has no absolute lifetime, no way to end all
//! sessions of one user, one fixed cookie name whatever the scheme, no key rotation for
//! signed cookies, and a memory store that never evicts.
//!
//! ```
//! use std::sync::Arc;
//! use portcullis::keys::{Keyring, SecretKey};
//! use portcullis::session::{MemorySessionStore, Session, SessionConfig};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let keyring = Keyring::new(SecretKey::generate(), vec![]);
//! let layer = SessionConfig::default().layer(&keyring, Arc::new(MemorySessionStore::default()));
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(|session: Session| async move {
//!         format!("user: {:?}", session.user_id())
//!     }))
//!     .layer(layer);
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response};
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use crate::client_ip::ClientInfo;
use crate::error::Error;
use crate::keys::{fill_random, Keyring, Purpose, Signer};

/// The cookie name over plain HTTP.
pub const COOKIE_NAME: &str = "session";
/// The cookie name over HTTPS.
pub const SECURE_COOKIE_NAME: &str = "__Host-session";

/// Milliseconds since the Unix epoch: every instant of a session is kept this finely,
/// so that short timeouts are exact.
fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a session holds on the server.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    /// The logged-in user, if any.
    pub user_id: Option<i64>,
    /// The secret the CSRF tokens of this session are derived from (base64url).
    csrf_secret: String,
    /// When the session (or the login) began, Unix milliseconds: the absolute
    /// lifetime counts from here.
    pub created_at: i64,
    /// The last request, Unix milliseconds: the idle timeout counts from here.
    pub last_seen: i64,
    /// Application values.
    pub data: BTreeMap<String, String>,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SessionRecord {
    fn new(now: i64) -> Self {
        Self {
            user_id: None,
            csrf_secret: random_secret(),
            created_at: now,
            last_seen: now,
            data: BTreeMap::new(),
        }
    }

    /// The CSRF secret's bytes.
    pub fn csrf_secret(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(&self.csrf_secret)
            .unwrap_or_default()
    }
}

/// A store could not be reached or answered nonsense. Requests that need the session
/// get 503 (fail closed), never a silently anonymous or silently lost session.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct SessionStoreError(pub String);

/// Where session records live. Keys are opaque strings (the SHA-256 of the id).
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// The record under `key`, if it exists and has not expired.
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, SessionStoreError>>;
    /// Stores `record` under `key` until `expires_at` (Unix milliseconds), replacing
    /// whatever was there. The layer calls it for a new id only.
    fn save<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), SessionStoreError>>;
    /// Replaces the record under `key` only if it still exists (and has not expired);
    /// returns whether it did. The layer saves an existing session with this, so that
    /// a request still in flight when the session was ended (a logout, another
    /// device's password change) cannot write it back: the check and the write must be
    /// one atomic step in the store.
    fn update<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>>;
    /// Deletes the record under `key`.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SessionStoreError>>;
    /// Deletes every record of `user_id` except the one under `except`; returns how many.
    fn delete_user<'a>(
        &'a self,
        user_id: i64,
        except: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u64, SessionStoreError>>;
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<String, (SessionRecord, i64)>,
    // (expires_at, key) of signed-in sessions and of anonymous ones (a visitor's CSRF
    // secret): the next to expire first, as in mini-redis's `db.rs`. Two pools, each
    // with its own cap, so that a flood of anonymous form views only ever evicts
    // other anonymous records, never a signed-in user.
    signed_in: BTreeSet<(i64, String)>,
    anonymous: BTreeSet<(i64, String)>,
}

impl Shard {
    fn pool(&mut self, record: &SessionRecord) -> &mut BTreeSet<(i64, String)> {
        if record.user_id.is_some() {
            &mut self.signed_in
        } else {
            &mut self.anonymous
        }
    }

    fn remove(&mut self, key: &str) -> Option<(SessionRecord, i64)> {
        let removed = self.entries.remove(key);
        if let Some((record, expires_at)) = &removed {
            self.pool(record).remove(&(*expires_at, key.to_owned()));
        }
        removed
    }

    /// Inserts `record`, first evicting the records of its own pool closest to expiry
    /// while that pool holds `cap` or more.
    fn insert(&mut self, key: &str, record: SessionRecord, expires_at: i64, cap: usize, now: i64) {
        self.remove(key);
        if self.pool(&record).len() >= cap {
            self.purge_expired(now);
        }
        while self.pool(&record).len() >= cap {
            let Some((_, oldest)) = self.pool(&record).pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.pool(&record).insert((expires_at, key.to_owned()));
        self.entries.insert(key.to_owned(), (record, expires_at));
    }

    fn purge_expired(&mut self, now: i64) {
        for pool in [&mut self.signed_in, &mut self.anonymous] {
            while let Some((expires_at, key)) = pool.first().cloned() {
                if expires_at > now {
                    break;
                }
                pool.pop_first();
                self.entries.remove(&key);
            }
        }
    }
}

const SHARDS: usize = 16;

/// An in-memory store for one process: sharded (no global lock), every record with a
/// deadline, at most `capacity` signed-in sessions and as many anonymous ones, each
/// pool evicting its own records closest to expiry (so anonymous visitors never push
/// out a signed-in user), expired records purged in the background every minute.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use portcullis::session::{MemorySessionStore, SessionStore};
///
/// let store = MemorySessionStore::new(10_000);
/// assert_eq!(store.len(), 0);
/// # }
/// ```
#[derive(Debug)]
pub struct MemorySessionStore {
    shards: Arc<Vec<Mutex<Shard>>>,
    per_shard: usize,
}

impl Default for MemorySessionStore {
    /// 100,000 sessions at most.
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl MemorySessionStore {
    /// A store of at most `capacity` signed-in and `capacity` anonymous records. Inside
    /// a Tokio runtime it starts a task
    /// that purges expired records every minute; the task ends with the store.
    pub fn new(capacity: usize) -> Self {
        let shards: Arc<Vec<Mutex<Shard>>> =
            Arc::new((0..SHARDS).map(|_| Mutex::new(Shard::default())).collect());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Vec<Mutex<Shard>>> = Arc::downgrade(&shards);
            handle.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(shards) = weak.upgrade() else { break };
                    let now = now();
                    for shard in shards.iter() {
                        lock(shard).purge_expired(now);
                    }
                }
            });
        }
        Self {
            shards,
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        let index = key
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        &self.shards[index % SHARDS]
    }

    /// How many records are held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// A poisoned shard only means another request panicked mid-update; the map itself is
// still consistent for our operations, so keep serving rather than failing forever.
fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SessionStore for MemorySessionStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, SessionStoreError>> {
        let now = now();
        let mut shard = lock(self.shard(key));
        let found = match shard.entries.get(key) {
            Some((record, expires_at)) if *expires_at > now => Some(record.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        };
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        lock(self.shard(key)).insert(key, record.clone(), expires_at, self.per_shard, now());
        Box::pin(async { Ok(()) })
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>> {
        let now = now();
        let mut shard = lock(self.shard(key));
        let live = shard.entries.get(key).is_some_and(|(_, at)| *at > now);
        if live {
            shard.insert(key, record.clone(), expires_at, self.per_shard, now);
        }
        Box::pin(async move { Ok(live) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        lock(self.shard(key)).remove(key);
        Box::pin(async { Ok(()) })
    }

    fn delete_user<'a>(
        &'a self,
        user_id: i64,
        except: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u64, SessionStoreError>> {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let keys: Vec<String> = shard
                .entries
                .iter()
                .filter(|(key, (record, _))| {
                    record.user_id == Some(user_id) && Some(key.as_str()) != except
                })
                .map(|(key, _)| key.clone())
                .collect();
            for key in keys {
                shard.remove(&key);
                removed += 1;
            }
        }
        Box::pin(async move { Ok(removed) })
    }
}

/// Sessions in an SQLite database (the table `portcullis_sessions`, created by
/// [`SqliteSessionStore::migrate`]); expired rows are purged in the background. Like
/// [`MemorySessionStore`] it holds at most `capacity` signed-in and `capacity` anonymous
/// sessions (100,000 each by default), each pool evicting its own rows closest to
/// expiry, so a flood of anonymous visitors neither fills the disk nor ends anyone's
/// signed-in session.
///
/// ```no_run
/// # async fn run(pool: sqlx::SqlitePool) -> Result<(), portcullis::session::SessionStoreError> {
/// let store = portcullis::session::SqliteSessionStore::new(pool);
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    pool: sqlx::SqlitePool,
    capacity: i64,
}

fn store_error(error: impl fmt::Display) -> SessionStoreError {
    SessionStoreError(error.to_string())
}

impl SqliteSessionStore {
    /// A store on `pool`, of at most 100,000 signed-in and 100,000 anonymous sessions.
    pub fn new(pool: sqlx::SqlitePool) -> Self {
        Self {
            pool,
            capacity: 100_000,
        }
    }

    /// The pool the sessions live in.
    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }

    /// At most `capacity` signed-in and `capacity` anonymous sessions (at least 1).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = i64::try_from(capacity.max(1)).unwrap_or(i64::MAX);
        self
    }

    /// Creates the table if needed and starts the background purge (every 5 minutes).
    pub async fn migrate(&self) -> Result<(), SessionStoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS portcullis_sessions (\
                key TEXT PRIMARY KEY NOT NULL, \
                user_id INTEGER, \
                record TEXT NOT NULL, \
                expires_at INTEGER NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        sqlx::query(
            "CREATE INDEX IF NOT EXISTS portcullis_sessions_user ON portcullis_sessions (user_id)",
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        // Each pool's eviction reads its rows in expiry order.
        sqlx::query(
            "CREATE INDEX IF NOT EXISTS portcullis_sessions_pool \
             ON portcullis_sessions (user_id IS NULL, expires_at)",
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    break;
                }
                let result = sqlx::query("DELETE FROM portcullis_sessions WHERE expires_at <= ?")
                    .bind(now())
                    .execute(&pool)
                    .await;
                if let Err(error) = result {
                    tracing::warn!(%error, "cannot purge expired sessions");
                }
            }
        });
        Ok(())
    }
}

impl SessionStore for SqliteSessionStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, SessionStoreError>> {
        Box::pin(async move {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT record FROM portcullis_sessions WHERE key = ? AND expires_at > ?",
            )
            .bind(key)
            .bind(now())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
            // A record that no longer parses (an older format) is an anonymous session.
            Ok(row.and_then(|(json,)| serde_json::from_str(&json).ok()))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        Box::pin(async move {
            let json = serde_json::to_string(record).map_err(store_error)?;
            let anonymous = record.user_id.is_none();
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            // Room for one more in this record's pool: the rows closest to expiry go.
            sqlx::query(
                "DELETE FROM portcullis_sessions WHERE key IN (\
                   SELECT key FROM portcullis_sessions \
                   WHERE (user_id IS NULL) = ? AND key <> ? \
                   ORDER BY expires_at LIMIT max(0, 1 - ? + (\
                     SELECT count(*) FROM portcullis_sessions \
                     WHERE (user_id IS NULL) = ? AND key <> ?)))",
            )
            .bind(anonymous)
            .bind(key)
            .bind(self.capacity)
            .bind(anonymous)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            sqlx::query(
                "INSERT INTO portcullis_sessions (key, user_id, record, expires_at) \
                 VALUES (?, ?, ?, ?) \
                 ON CONFLICT (key) DO UPDATE SET user_id = excluded.user_id, \
                 record = excluded.record, expires_at = excluded.expires_at",
            )
            .bind(key)
            .bind(record.user_id)
            .bind(json)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            Ok(())
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>> {
        Box::pin(async move {
            let json = serde_json::to_string(record).map_err(store_error)?;
            let result = sqlx::query(
                "UPDATE portcullis_sessions SET user_id = ?, record = ?, expires_at = ? \
                 WHERE key = ? AND expires_at > ?",
            )
            .bind(record.user_id)
            .bind(json)
            .bind(expires_at)
            .bind(key)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
            Ok(result.rows_affected() == 1)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM portcullis_sessions WHERE key = ?")
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
            Ok(())
        })
    }

    fn delete_user<'a>(
        &'a self,
        user_id: i64,
        except: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u64, SessionStoreError>> {
        Box::pin(async move {
            let result =
                sqlx::query("DELETE FROM portcullis_sessions WHERE user_id = ? AND key IS NOT ?")
                    .bind(user_id)
                    .bind(except)
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
            Ok(result.rows_affected())
        })
    }
}

/// Settings of the session layer. `Default`: idle 30 minutes, absolute 12 hours,
/// `Secure` cookies.
///
/// ```
/// use std::time::Duration;
/// use portcullis::session::SessionConfig;
///
/// let config = SessionConfig::default()
///     .idle_timeout(Duration::from_secs(15 * 60))
///     .absolute_lifetime(Duration::from_secs(8 * 3600))
///     .secure(false); // plain HTTP in development only
/// ```
#[derive(Debug, Clone)]
pub struct SessionConfig {
    idle_timeout: Duration,
    absolute_lifetime: Duration,
    secure: bool,
    touch_interval: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_lifetime: Duration::from_secs(12 * 3600),
            secure: true,
            touch_interval: Duration::from_secs(60),
        }
    }
}

impl SessionConfig {
    /// How long a session survives without requests.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a session survives at all, counted from login.
    pub fn absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute_lifetime = lifetime;
        self
    }

    /// Whether cookies carry `Secure` even over plain HTTP requests (over HTTPS they
    /// always do). Only development turns this off.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The layer, signing cookies with `keyring` and keeping records in `store`.
    pub fn layer(mut self, keyring: &Keyring, store: Arc<dyn SessionStore>) -> SessionLayer {
        // `last_seen` is written at most once per interval to spare the store; a short
        // idle timeout needs a shorter interval or active sessions would expire.
        self.touch_interval = self.touch_interval.min(self.idle_timeout / 4);
        SessionLayer {
            shared: Arc::new(Shared {
                config: self,
                signer: keyring.signer(Purpose::SESSION),
                store,
            }),
        }
    }
}

#[derive(Debug)]
struct Shared {
    config: SessionConfig,
    signer: Signer,
    store: Arc<dyn SessionStore>,
}

impl Shared {
    fn expires_at(&self, record: &SessionRecord) -> i64 {
        let idle = record.last_seen + millis(self.config.idle_timeout);
        let absolute = record.created_at + millis(self.config.absolute_lifetime);
        idle.min(absolute)
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// A session id: 256 random bits.
#[derive(Clone, PartialEq, Eq)]
struct SessionId([u8; 32]);

impl SessionId {
    fn generate() -> Self {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// The store key: a digest, so that the store never holds a usable id.
    fn store_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0))
    }
}

#[derive(Debug, Default)]
struct State {
    // The id the record lives under: the cookie's, or a new one.
    current: Option<SessionIdSlot>,
    // Whether the response must carry `current` in a new cookie.
    new_cookie: bool,
    // Whether the response must clear the cookie (no record left).
    clear_cookie: bool,
    // Store keys to delete after the handler: a logged-out or pre-login id.
    retired: Vec<String>,
    record: Option<SessionRecord>,
    changed: bool,
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

#[derive(Clone)]
struct SessionIdSlot(SessionId);

impl fmt::Debug for SessionIdSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[session id]")
    }
}

/// This request's session: an extractor, cheap to clone.
///
/// Nothing is stored and no cookie is set until something is written (a login, a
/// value, a CSRF secret), so anonymous readers of public pages cost nothing.
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
                state.record = Some(SessionRecord::new(now()));
            }
            state.changed = true;
            f(state.record.as_mut().expect("set above"))
        })
    }

    /// The logged-in user, if any.
    pub fn user_id(&self) -> Option<i64> {
        self.with(|s| s.record.as_ref().and_then(|r| r.user_id))
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
                ..SessionRecord::new(now)
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
        parts.extensions.get::<Session>().cloned().ok_or_else(|| {
            tracing::error!("Session requested but the session layer is not installed");
            Error::internal()
        })
    }
}

/// Loads the session before the handler and saves it after.
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
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

fn is_https<B>(req: &Request<B>) -> bool {
    match req.extensions().get::<ClientInfo>() {
        Some(client) => client.is_https(),
        None => req.uri().scheme_str() == Some("https"),
    }
}

/// The session id from the request's cookie, if one is present and authentic.
fn read_cookie(headers: &HeaderMap, https: bool, signer: &Signer) -> Option<SessionId> {
    // Over HTTPS only the `__Host-` cookie counts: a plain `session` cookie could have
    // been planted by a sibling subdomain or over HTTP.
    let name = if https {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .find_map(|c| {
            let payload = signer.verify(c.value()).ok()?;
            <[u8; 32]>::try_from(payload.as_slice()).ok().map(SessionId)
        })
}

fn set_cookie(shared: &Shared, https: bool, value: Option<&SessionId>) -> Option<HeaderValue> {
    let secure = https || shared.config.secure;
    let name = if https {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    };
    let mut builder = cookie::Cookie::build((
        name,
        value
            .map(|id| shared.signer.sign(&id.0))
            .unwrap_or_default(),
    ))
    .http_only(true)
    .secure(secure)
    .same_site(cookie::SameSite::Lax)
    .path("/");
    if value.is_none() {
        builder = builder.max_age(cookie::time::Duration::ZERO);
    }
    HeaderValue::try_from(builder.build().to_string()).ok()
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
                    Ok(Some(record)) if shared.expires_at(&record) > now => {
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
            let handle = Session {
                state: Arc::new(Mutex::new(state)),
                shared: shared.clone(),
            };
            req.extensions_mut().insert(handle.clone());
            let mut response = inner.call(req).await?;

            let state =
                std::mem::take(&mut *handle.state.lock().unwrap_or_else(|p| p.into_inner()));
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
                    let touch_due = now - record.last_seen >= millis(shared.config.touch_interval);
                    if state.changed || touch_due || state.new_cookie {
                        record.last_seen = now;
                        let expires_at = shared.expires_at(&record);
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
                                if let Some(cookie) = set_cookie(&shared, https, None) {
                                    response.headers_mut().append(header::SET_COOKIE, cookie);
                                }
                                keep_out_of_shared_caches(response.headers_mut());
                                return Ok(response);
                            }
                            Err(error) => return unavailable(error),
                        }
                    }
                    if state.new_cookie {
                        if let Some(cookie) = set_cookie(&shared, https, Some(&id)) {
                            response.headers_mut().append(header::SET_COOKIE, cookie);
                        }
                    }
                }
                _ if state.clear_cookie => {
                    if let Some(cookie) = set_cookie(&shared, https, None) {
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

    fn record(user: Option<i64>) -> SessionRecord {
        SessionRecord {
            user_id: user,
            ..SessionRecord::new(now())
        }
    }

    #[tokio::test]
    async fn memory_store_stays_within_its_capacity() {
        let store = MemorySessionStore::new(160);
        for i in 0..10_000 {
            store
                .save(&format!("key{i}"), &record(None), now() + 1_000_000 + i)
                .await
                .unwrap();
        }
        assert!(store.len() <= 160, "{}", store.len());
        // The newest survive; the ones closest to expiry went first.
        assert!(store.load("key9999").await.unwrap().is_some());
        assert!(store.load("key0").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn expired_records_are_not_returned() {
        let store = MemorySessionStore::new(10);
        store.save("old", &record(None), now() - 1).await.unwrap();
        assert!(store.load("old").await.unwrap().is_none());
        assert_eq!(store.len(), 0);
    }

    #[tokio::test]
    async fn deleting_a_users_sessions_spares_the_current_one_and_other_users() {
        let store = MemorySessionStore::new(100);
        let later = now() + 1_000_000;
        store.save("a1", &record(Some(1)), later).await.unwrap();
        store.save("a2", &record(Some(1)), later).await.unwrap();
        store.save("a3", &record(Some(1)), later).await.unwrap();
        store.save("b1", &record(Some(2)), later).await.unwrap();
        assert_eq!(store.delete_user(1, Some("a2")).await.unwrap(), 2);
        assert!(store.load("a2").await.unwrap().is_some());
        assert!(store.load("a1").await.unwrap().is_none());
        assert!(store.load("b1").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn sqlite_store_round_trips_and_expires() {
        // One connection: every connection to `:memory:` is a database of its own.
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let store = SqliteSessionStore::new(pool);
        store.migrate().await.unwrap();
        let later = now() + 1_000_000;
        let mut r = record(Some(7));
        r.data.insert("theme".into(), "dark".into());
        store.save("k", &r, later).await.unwrap();
        assert_eq!(store.load("k").await.unwrap(), Some(r.clone()));
        let other_user = record(Some(8));
        store.save("gone", &other_user, now() - 1).await.unwrap();
        assert!(store.load("gone").await.unwrap().is_none());
        store.save("k2", &r, later).await.unwrap();
        assert_eq!(store.delete_user(7, Some("k")).await.unwrap(), 1);
        assert!(store.load("k").await.unwrap().is_some());
        store.delete("k").await.unwrap();
        assert!(store.load("k").await.unwrap().is_none());
    }

    #[test]
    fn ids_are_256_random_bits_and_keys_are_digests() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert!(a != b);
        assert_ne!(a.store_key(), URL_SAFE_NO_PAD.encode(a.0));
        assert_eq!(a.store_key().len(), 43);
    }
}
