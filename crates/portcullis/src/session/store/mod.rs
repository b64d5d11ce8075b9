//! Where session records live: the [`SessionStore`] trait, its error, and the stores
//! Portcullis ships. Every store keeps the same rules (listed on the trait); a store
//! written elsewhere checks them with [`conformance`] (feature `test-util`).

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::record::SessionRecord;

#[cfg(feature = "test-util")]
pub mod conformance;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemorySessionStore;
#[cfg(feature = "redis")]
pub use redis::RedisSessionStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteSessionStore;

/// A store could not be reached, did not answer in time, or could not take a record.
/// Requests that need the session get 503 (fail closed), never a silently anonymous or
/// silently lost session.
///
/// A store written elsewhere reports its own failures as [`Unavailable`] with the
/// underlying error as the source:
///
/// ```
/// use portcullis::session::SessionStoreError;
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let error = SessionStoreError::unavailable(io);
/// assert_eq!(error.to_string(), "session store unavailable: refused");
/// assert!(std::error::Error::source(&error).is_some());
/// ```
///
/// [`Unavailable`]: SessionStoreError::Unavailable
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionStoreError {
    /// The store could not be reached or refused the operation (a closed pool, a
    /// dropped connection, a failed query).
    #[error("session store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store did not answer within its deadline.
    #[error("session store did not answer within {0:?}")]
    Timeout(Duration),
    /// The record could not be encoded for the store.
    #[error("cannot encode a session record: {0}")]
    Encode(#[from] serde_json::Error),
    /// A store was given room for no session: every save would evict the record it
    /// saves. Refused when the store is built, never raised to one.
    #[error("a session store's capacity must be at least 1")]
    ZeroCapacity,
}

impl SessionStoreError {
    /// [`SessionStoreError::Unavailable`] caused by `source`.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(source.into())
    }
}

/// Where session records live. Keys are opaque strings (the SHA-256 of the id).
///
/// Each method's documentation states a rule the session layer relies on; a store
/// written elsewhere checks that it keeps them all with the conformance suite,
/// `store::conformance::run` (feature `test-util`), as the stores here do.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::session::{MemorySessionStore, SessionStore};
///
/// // The layer takes any store behind the trait.
/// let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
/// # let _ = store;
/// ```
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
    /// Every live (unexpired) record of `user_id`, with its key, in no particular
    /// order: a record that was another user's and is now this one's is listed, one
    /// that was this user's and is now another's (or anonymous) is not.
    fn list_user<'a>(
        &'a self,
        user_id: i64,
    ) -> BoxFuture<'a, Result<Vec<(String, SessionRecord)>, SessionStoreError>>;
    /// Deletes the record under `key` only if it is live and belongs to `user_id`;
    /// returns whether it did. A user ends one of their sessions by its key with this,
    /// so a key that names another user's session (guessed, or copied from elsewhere)
    /// ends nothing: the check and the delete must be one atomic step in the store, or
    /// a session that changed hands between them could be ended by its former owner.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use portcullis::session::{MemorySessionStore, SessionStore};
    ///
    /// let store = MemorySessionStore::default();
    /// // Nothing under this key, so nothing of user 7's to end.
    /// assert!(!store.delete_of_user(7, "some-key").await.unwrap());
    /// # }
    /// ```
    fn delete_of_user<'a>(
        &'a self,
        user_id: i64,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>>;
}
