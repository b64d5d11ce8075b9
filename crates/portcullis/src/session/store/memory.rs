//! [`MemorySessionStore`]: sessions in this process's memory, bounded and expiring.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{is_live, SessionStore, SessionStoreError};
use crate::session::record::{now, SessionRecord};

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

    /// The record under `key` if it is live at `now`; an expired one is removed.
    fn live(&mut self, key: &str, now: i64) -> Option<&SessionRecord> {
        let expired = self
            .entries
            .get(key)
            .is_some_and(|(_, expires_at)| !is_live(*expires_at, now));
        if expired {
            self.remove(key);
        }
        self.entries.get(key).map(|(record, _)| record)
    }

    fn purge_expired(&mut self, now: i64) {
        for pool in [&mut self.signed_in, &mut self.anonymous] {
            while let Some((expires_at, key)) = pool.first().cloned() {
                if is_live(expires_at, now) {
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
        let found = shard.live(key, now).cloned();
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
        let live = shard.live(key, now).is_some();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: Option<i64>) -> SessionRecord {
        SessionRecord::begun_now(user)
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
