//! [`MemorySessionStore`]: sessions in this process's memory, bounded and expiring.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{SessionStore, SessionStoreError};
use crate::expiring::{spawn_purge, ExpiringMap, WhenFull};
use crate::session::record::{now, SessionRecord};

// Records by key, each until its `expires_at` (Unix milliseconds).
type Pool = ExpiringMap<String, SessionRecord, i64>;

#[derive(Debug)]
struct Shard {
    // Signed-in sessions and anonymous ones (a visitor's CSRF secret), each pool under
    // its own cap and evicting its own records closest to expiry, so that a flood of
    // anonymous form views never evicts a signed-in user. A key is in one pool at most.
    signed_in: Pool,
    anonymous: Pool,
}

impl Shard {
    fn new(per_pool: usize) -> Self {
        Self {
            signed_in: Pool::new(per_pool, WhenFull::EvictSoonest),
            anonymous: Pool::new(per_pool, WhenFull::EvictSoonest),
        }
    }

    fn len(&self) -> usize {
        self.signed_in.len() + self.anonymous.len()
    }

    fn remove(&mut self, key: &str) {
        self.signed_in.remove(key);
        self.anonymous.remove(key);
    }

    /// Inserts `record` into its pool, which evicts its own records closest to expiry
    /// when full; the key leaves the other pool.
    fn insert(&mut self, key: &str, record: SessionRecord, expires_at: i64, now: i64) {
        self.remove(key);
        let pool = if record.user_id.is_some() {
            &mut self.signed_in
        } else {
            &mut self.anonymous
        };
        // An evicting pool always makes room.
        let _ = pool.insert(key.to_owned(), record, expires_at, now);
    }

    /// The record under `key` if it is live at `now`; an expired one is removed.
    fn live(&mut self, key: &str, now: i64) -> Option<&SessionRecord> {
        let pool = if self.signed_in.contains(key) {
            &mut self.signed_in
        } else {
            &mut self.anonymous
        };
        pool.get_mut(key, now).map(|record| &*record)
    }

    fn purge_expired(&mut self, now: i64) {
        self.signed_in.purge_expired(now);
        self.anonymous.purge_expired(now);
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
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let shards: Arc<Vec<Mutex<Shard>>> = Arc::new(
            (0..SHARDS)
                .map(|_| Mutex::new(Shard::new(per_shard)))
                .collect(),
        );
        spawn_purge(&shards, Duration::from_secs(60), |shards| {
            let now = now();
            for shard in shards.iter() {
                lock(shard).purge_expired(now);
            }
        });
        Self { shards }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        let index = key
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        &self.shards[index % SHARDS]
    }

    /// How many records are held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
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
        let found = shard.live(key, now).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        lock(self.shard(key)).insert(key, record.clone(), expires_at, now());
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
        let live = shard.live(key, now).is_some();
        if live {
            shard.insert(key, record.clone(), expires_at, now);
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
            // Only signed-in records have a user.
            removed += lock(shard).signed_in.remove_where(|key, record| {
                record.user_id == Some(user_id) && Some(key.as_str()) != except
            }) as u64;
        }
        Box::pin(async move { Ok(removed) })
    }

    fn list_user<'a>(
        &'a self,
        user_id: i64,
    ) -> BoxFuture<'a, Result<Vec<(String, SessionRecord)>, SessionStoreError>> {
        let now = now();
        let mut found = Vec::new();
        for shard in self.shards.iter() {
            // Only signed-in records have a user.
            let shard = lock(shard);
            found.extend(
                shard
                    .signed_in
                    .live(now)
                    .filter(|(_, record)| record.user_id == Some(user_id))
                    .map(|(key, record)| (key.clone(), record.clone())),
            );
        }
        Box::pin(async move { Ok(found) })
    }

    fn delete_of_user<'a>(
        &'a self,
        user_id: i64,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>> {
        // The check and the removal under one lock of the key's shard.
        let mut shard = lock(self.shard(key));
        let owned = shard
            .signed_in
            .get(key, now())
            .is_some_and(|record| record.user_id == Some(user_id));
        if owned {
            shard.signed_in.remove(key);
        }
        Box::pin(async move { Ok(owned) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: Option<i64>) -> SessionRecord {
        SessionRecord::begun_now(user)
    }

    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn memory_store_keeps_the_session_store_rules() {
        super::super::conformance::run(&MemorySessionStore::new(64)).await;
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
}
