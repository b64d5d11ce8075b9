//! [`UserSessions`]: a user's own view of their sessions, "your sessions": list them,
//! end one, end all others. It works on the store alone, outside any request, so an
//! API authenticated by a Bearer token (no session cookie) can offer it too.

use std::sync::Arc;

use serde::Serialize;

use super::client::SessionClient;
use super::store::{SessionStore, SessionStoreError};

/// One of a user's active sessions, as a "your sessions" page shows it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use portcullis::session::{ActiveSession, MemorySessionStore, UserSessions};
///
/// let sessions = UserSessions::new(Arc::new(MemorySessionStore::default()));
/// let listed: Vec<ActiveSession> = sessions.list(7, None).await.unwrap();
/// for session in &listed {
///     println!("{} on {} since {}", session.client.browser, session.client.network, session.created_at);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ActiveSession {
    /// What names the session to [`UserSessions::end`]: the store's key, a SHA-256
    /// digest of the cookie's id (base64url). It is not a credential: the cookie holds
    /// the id itself, signed, and the digest cannot be turned back into it.
    pub id: String,
    /// When the session began or last signed in, Unix milliseconds.
    pub created_at: i64,
    /// Its last request, Unix milliseconds (written at most once a minute, so up to a
    /// minute early).
    pub last_seen_at: i64,
    /// The device it began on: a browser family and a network.
    pub client: SessionClient,
    /// Whether it is the session the listing was asked from ("this device").
    pub current: bool,
}

/// A user's sessions on a [`SessionStore`]: listing them and ending them, by user id,
/// always within that user's own sessions. Cheap to clone; share the store the session
/// layer uses.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use portcullis::session::{MemorySessionStore, SessionStore, UserSessions};
///
/// let store: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
/// let sessions = UserSessions::new(store.clone());
/// // The layer shares the store: `SessionConfig::default().layer(&keyring, store)`.
/// assert!(sessions.list(7, None).await.unwrap().is_empty());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct UserSessions {
    store: Arc<dyn SessionStore>,
}

impl UserSessions {
    /// The sessions kept in `store`.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self { store }
    }

    /// The active sessions of `user_id`, newest first; the one whose id is `current`
    /// (from [`Session::listing_id`]) is marked. Expired sessions are not listed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::Arc;
    /// use portcullis::session::{MemorySessionStore, UserSessions};
    ///
    /// let sessions = UserSessions::new(Arc::new(MemorySessionStore::default()));
    /// let listed = sessions.list(7, Some("the id of this request's session")).await.unwrap();
    /// assert!(listed.iter().filter(|s| s.current).count() <= 1);
    /// # }
    /// ```
    ///
    /// [`Session::listing_id`]: super::Session::listing_id
    pub async fn list(
        &self,
        user_id: i64,
        current: Option<&str>,
    ) -> Result<Vec<ActiveSession>, SessionStoreError> {
        let mut listed: Vec<ActiveSession> = self
            .store
            .list_user(user_id)
            .await?
            .into_iter()
            // The store's word is checked, not trusted: another user's record is never
            // shown, whatever a store written elsewhere returns.
            .filter(|(_, record)| record.user_id == Some(user_id))
            .map(|(id, record)| ActiveSession {
                current: current == Some(id.as_str()),
                id,
                created_at: record.created_at,
                last_seen_at: record.last_seen,
                client: record.client,
            })
            .collect();
        listed.sort_by(|a, b| {
            (b.created_at, b.last_seen_at, &b.id).cmp(&(a.created_at, a.last_seen_at, &a.id))
        });
        Ok(listed)
    }

    /// Ends the session `id` of `user_id`; `false` when there is no such active
    /// session of this user, whoever else's it may be: a user can only end their own.
    /// The session's cookie, replayed, is then anonymous.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::Arc;
    /// use portcullis::session::{MemorySessionStore, UserSessions};
    ///
    /// let sessions = UserSessions::new(Arc::new(MemorySessionStore::default()));
    /// assert!(!sessions.end(7, "an id that is not one of user 7's").await.unwrap());
    /// # }
    /// ```
    pub async fn end(&self, user_id: i64, id: &str) -> Result<bool, SessionStoreError> {
        if !is_listing_id(id) {
            return Ok(false);
        }
        self.store.delete_of_user(user_id, id).await
    }

    /// Ends every session of `user_id` but `except` (this device's, from
    /// [`Session::listing_id`]; `None` ends them all); returns how many ended.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::Arc;
    /// use portcullis::session::{MemorySessionStore, UserSessions};
    ///
    /// let sessions = UserSessions::new(Arc::new(MemorySessionStore::default()));
    /// assert_eq!(sessions.end_others(7, None).await.unwrap(), 0);
    /// # }
    /// ```
    ///
    /// [`Session::listing_id`]: super::Session::listing_id
    pub async fn end_others(
        &self,
        user_id: i64,
        except: Option<&str>,
    ) -> Result<u64, SessionStoreError> {
        self.store.delete_user(user_id, except).await
    }
}

/// Whether `id` has the shape of a store key (43 base64url characters, a SHA-256
/// digest): anything else from a client names no session and reaches no store.
fn is_listing_id(id: &str) -> bool {
    id.len() == 43
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::cookie::SessionId;
    use crate::session::record::{now, SessionRecord};
    use crate::session::MemorySessionStore;

    fn key() -> String {
        SessionId::generate().store_key()
    }

    async fn saved(
        store: &dyn SessionStore,
        user: i64,
        created_at: i64,
        expires_at: i64,
    ) -> String {
        let key = key();
        let mut record = SessionRecord::begun_now(Some(user));
        record.created_at = created_at;
        store.save(&key, &record, expires_at).await.unwrap();
        key
    }

    #[tokio::test]
    async fn a_user_lists_and_ends_only_their_own_sessions() {
        let store = Arc::new(MemorySessionStore::default());
        let sessions = UserSessions::new(store.clone());
        let later = now() + 60_000;
        let old = saved(&*store, 1, now() - 5_000, later).await;
        let new = saved(&*store, 1, now() - 1_000, later).await;
        let bobs = saved(&*store, 2, now(), later).await;

        let listed = sessions.list(1, Some(&new)).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [new.as_str(), old.as_str()],
            "newest first, only user 1's"
        );
        assert!(listed[0].current && !listed[1].current);

        // User 1 holds Bob's id (a shared link, a guess): it ends nothing.
        assert!(!sessions.end(1, &bobs).await.unwrap());
        assert!(store.load(&bobs).await.unwrap().is_some());
        // Ids that are no store key reach no store.
        assert!(!sessions.end(1, "").await.unwrap());
        assert!(!sessions.end(1, &format!("{old}*")).await.unwrap());

        assert!(sessions.end(1, &old).await.unwrap());
        assert!(!sessions.end(1, &old).await.unwrap(), "ended once");
        assert!(store.load(&old).await.unwrap().is_none());
        assert_eq!(sessions.end_others(1, Some(&new)).await.unwrap(), 0);
        assert_eq!(sessions.end_others(2, None).await.unwrap(), 1);
        assert_eq!(sessions.list(1, None).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn expired_sessions_are_not_listed() {
        let store = Arc::new(MemorySessionStore::default());
        let sessions = UserSessions::new(store.clone());
        let expired = saved(&*store, 1, now(), now() - 1).await;
        let live = saved(&*store, 1, now(), now() + 60_000).await;
        let listed = sessions.list(1, None).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, live);
        assert!(!sessions.end(1, &expired).await.unwrap());
    }

    #[test]
    fn listing_ids_are_store_keys() {
        assert!(is_listing_id(&key()));
        assert!(!is_listing_id("../../etc"));
        assert!(!is_listing_id(&"a".repeat(44)));
    }
}
