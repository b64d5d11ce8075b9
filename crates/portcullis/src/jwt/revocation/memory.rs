//! Refresh families and revocations in this process's memory.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{RefreshUse, RevocationError, RevocationStore};
use crate::expiring::{spawn_purge, ExpiringMap, Full, WhenFull};
use crate::jwt::claims::now;
use crate::jwt::Claims;

#[derive(Debug)]
struct Family {
    user: String,
    current: String,
    generation: u64,
    revoked: bool,
}

#[derive(Debug, Default)]
struct UserRecord {
    generation: u64,
    not_before: i64,
    // The user's families in the order they began, for the per-user cap.
    families: VecDeque<String>,
}

/// What a record is about. Families order before users: of a family and its user with
/// the same deadline, the family is purged first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Id {
    Family(String),
    User(String),
}

#[derive(Debug)]
enum Record {
    Family(Family),
    User(UserRecord),
}

#[derive(Debug)]
struct Shard {
    // Families and users under one cap, each until its deadline (Unix seconds, leeway
    // included). Refusing when full: forgetting a record could forget a revocation.
    records: ExpiringMap<Id, Record, i64>,
}

impl Shard {
    fn new(per_shard: usize) -> Self {
        Self {
            records: ExpiringMap::new(per_shard, WhenFull::Refuse),
        }
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    // Typed views of the one map: an `Id::Family` always holds a `Record::Family`, an
    // `Id::User` a `Record::User`.
    fn family(&self, id: &str, now: i64) -> Option<&Family> {
        match self.records.get(&Id::Family(id.to_owned()), now) {
            Some(Record::Family(family)) => Some(family),
            _ => None,
        }
    }

    fn family_mut(&mut self, id: &str, now: i64) -> Option<&mut Family> {
        match self.records.get_mut(&Id::Family(id.to_owned()), now) {
            Some(Record::Family(family)) => Some(family),
            _ => None,
        }
    }

    fn user(&self, id: &str, now: i64) -> Option<&UserRecord> {
        match self.records.get(&Id::User(id.to_owned()), now) {
            Some(Record::User(user)) => Some(user),
            _ => None,
        }
    }

    /// `id`'s record, live or expired: for a caller that has just extended it.
    fn user_mut(&mut self, id: &str) -> Option<&mut UserRecord> {
        match self.records.peek_mut(&Id::User(id.to_owned())) {
            Some(Record::User(user)) => Some(user),
            _ => None,
        }
    }

    fn generation(&self, user: &str, now: i64) -> u64 {
        self.user(user, now).map_or(0, |u| u.generation)
    }

    /// Moves a family's deadline to `until` if that is later, and its user's with it
    /// (made if missing): a user record must outlive every family it judges.
    fn extend(&mut self, user: &str, family: &str, until: i64, now: i64) -> Result<(), Full> {
        for id in [Id::Family(family.to_owned()), Id::User(user.to_owned())] {
            match self.records.expiry(&id) {
                Some(old) if until > old => {
                    self.records.set_expiry(&id, until);
                }
                Some(_) => {}
                None if matches!(id, Id::User(_)) => {
                    self.records
                        .insert(id, Record::User(UserRecord::default()), until, now)?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Room for a new family (if `family`) and for `user`'s record if it has no live
    /// one, or the store's refusal (`capacity`: of the whole store, for the error).
    fn make_room(
        &mut self,
        user: &str,
        family: bool,
        capacity: usize,
        now: i64,
    ) -> Result<(), RevocationError> {
        // An expired user record goes now (`get_mut`), so that what follows starts a
        // fresh one rather than reviving its generation.
        let live_user = self.records.get_mut(&Id::User(user.to_owned()), now);
        let needed = usize::from(family) + usize::from(live_user.is_none());
        if self.records.make_room(needed, now) {
            return Ok(());
        }
        Err(full(capacity))
    }
}

fn full(capacity: usize) -> RevocationError {
    tracing::error!(
        target: "portcullis::security",
        event = "revocation_store_full",
        "the in-memory revocation store is full: new logins are refused until entries expire"
    );
    RevocationError::Full { capacity }
}

/// In-memory refresh families and revocations for one process: one record per live
/// family and per user that has one, each with a deadline, at most `capacity` records,
/// purged in the background. When full it refuses new logins (the token endpoint
/// answers 503 and logs it) rather than forget a revocation.
///
/// The records are spread over up to 16 shards by user, each behind its own lock, so
/// that the checks of concurrent requests do not queue on one lock, and everything of
/// one user (its families, its generation) changes under one lock: a refresh and a
/// revocation of the same user cannot interleave.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::jwt::{Jwt, JwtConfig, JwtKeys, MemoryRevocationStore};
/// use portcullis::keys::{Keyring, SecretKey};
///
/// let keys = JwtKeys::from_keyring(&Keyring::new(SecretKey::generate(), vec![]));
/// // At most 100,000 records: logins beyond that wait for old ones to expire.
/// let store = Arc::new(MemoryRevocationStore::new(100_000));
/// let jwt = Jwt::new(JwtConfig::default(), keys, store.clone());
/// assert!(store.is_empty());
/// ```
#[derive(Debug)]
pub struct MemoryRevocationStore {
    shards: Arc<[RwLock<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    // How many records all shards together may hold.
    capacity: usize,
}

impl Default for MemoryRevocationStore {
    /// One million records at most.
    fn default() -> Self {
        Self::new(1_000_000)
    }
}

// One shard per this many records of capacity, up to MAX_SHARDS.
const ENTRIES_PER_SHARD: usize = 4096;
const MAX_SHARDS: usize = 16;

impl MemoryRevocationStore {
    /// A store of at most `capacity` records; inside a Tokio runtime, expired records
    /// are purged every minute by a task that ends with the store.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        let count = (capacity / ENTRIES_PER_SHARD).clamp(1, MAX_SHARDS);
        // Rounded down, so that all shards together never exceed `capacity`.
        let per_shard = (capacity / count).max(2);
        let shards: Arc<[RwLock<Shard>]> = (0..count)
            .map(|_| RwLock::new(Shard::new(per_shard)))
            .collect();
        spawn_purge(&shards, Duration::from_secs(60), |shards| {
            for shard in shards.iter() {
                shard
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .records
                    .purge_expired(now());
            }
        });
        Self {
            shards,
            hasher: std::collections::hash_map::RandomState::new(),
            capacity: per_shard * count,
        }
    }

    fn shard(&self, user: &str) -> &RwLock<Shard> {
        use std::hash::BuildHasher as _;
        let index = self.hasher.hash_one(user) as usize % self.shards.len();
        &self.shards[index]
    }

    fn write<R>(&self, user: &str, f: impl FnOnce(&mut Shard) -> R) -> R {
        f(&mut self.shard(user).write().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many records are held (families and users).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevocationStore for MemoryRevocationStore {
    fn is_revoked<'a>(
        &'a self,
        claims: &'a Claims,
    ) -> BoxFuture<'a, Result<bool, RevocationError>> {
        let now = now();
        // Checks far outnumber changes: readers share the lock.
        let shard = self
            .shard(&claims.sub)
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let user = shard.user(&claims.sub, now);
        let revoked = match shard.family(&claims.fam, now) {
            Some(family) => {
                family.revoked
                    || family.user != claims.sub
                    || family.generation < user.map_or(0, |u| u.generation)
            }
            // Its record would outlive the token: lost (a restart), so refused.
            None => true,
        };
        Box::pin(async move { Ok(revoked) })
    }

    fn start_family<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        refresh_jti: &'a str,
        until: i64,
        max_per_user: usize,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let now = now();
        let capacity = self.capacity;
        let outcome = self.write(user, |shard| {
            shard.make_room(user, true, capacity, now)?;
            let generation = shard.generation(user, now);
            shard
                .records
                .insert(
                    Id::Family(family.to_owned()),
                    Record::Family(Family {
                        user: user.to_owned(),
                        current: refresh_jti.to_owned(),
                        generation,
                        revoked: false,
                    }),
                    until,
                    now,
                )
                .map_err(|Full| full(capacity))?;
            shard
                .extend(user, family, until, now)
                .map_err(|Full| full(capacity))?;
            // The user's live families, oldest first; beyond the cap the oldest end.
            let mut listed =
                std::mem::take(&mut shard.user_mut(user).expect("extended above").families);
            listed.retain(|id| {
                shard
                    .family(id, now)
                    .is_some_and(|f| !f.revoked && f.generation == generation)
            });
            listed.push_back(family.to_owned());
            while listed.len() > max_per_user.max(1) {
                if let Some(oldest) = listed.pop_front() {
                    if let Some(f) = shard.family_mut(&oldest, now) {
                        f.revoked = true;
                    }
                }
            }
            shard.user_mut(user).expect("extended above").families = listed;
            Ok(())
        });
        Box::pin(async move { outcome })
    }

    fn rotate_refresh<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        presented: &'a str,
        next: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<RefreshUse, RevocationError>> {
        let now = now();
        let capacity = self.capacity;
        let outcome = self.write(user, |shard| {
            let generation = shard.generation(user, now);
            let Some(f) = shard.family_mut(family, now).filter(|f| f.user == user) else {
                return Ok(RefreshUse::Revoked);
            };
            if f.revoked {
                return Ok(RefreshUse::Revoked);
            }
            if f.generation < generation {
                f.revoked = true;
                return Ok(RefreshUse::Revoked);
            }
            if f.current != presented {
                f.revoked = true;
                return Ok(RefreshUse::Reused);
            }
            f.current = next.to_owned();
            // A live family has a live user record: nothing new is inserted here.
            shard
                .extend(user, family, until, now)
                .map_err(|Full| full(capacity))?;
            Ok(RefreshUse::Fresh)
        });
        Box::pin(async move { outcome })
    }

    fn revoke_family<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let now = now();
        let capacity = self.capacity;
        let outcome = self.write(user, |shard| {
            if let Some(f) = shard.family_mut(family, now) {
                f.revoked = true;
                // The family may be another user's: `user` may still need a record.
                shard.make_room(user, false, capacity, now)?;
            } else {
                // Unknown here (an in-memory store restarted): remembered as revoked,
                // so its access tokens stop verifying too.
                shard.make_room(user, true, capacity, now)?;
                shard
                    .records
                    .insert(
                        Id::Family(family.to_owned()),
                        Record::Family(Family {
                            user: user.to_owned(),
                            current: String::new(),
                            generation: 0,
                            revoked: true,
                        }),
                        now,
                        now,
                    )
                    .map_err(|Full| full(capacity))?;
            }
            shard
                .extend(user, family, until, now)
                .map_err(|Full| full(capacity))?;
            Ok(())
        });
        Box::pin(async move { outcome })
    }

    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        not_before: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let now = now();
        let capacity = self.capacity;
        let outcome = self.write(user, |shard| {
            shard.make_room(user, false, capacity, now)?;
            shard
                .extend(user, "", until, now)
                .map_err(|Full| full(capacity))?;
            let record = shard.user_mut(user).expect("extended above");
            record.generation += 1;
            record.not_before = record.not_before.max(not_before);
            record.families.clear();
            Ok(())
        });
        Box::pin(async move { outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{Jwt, JwtConfig, JwtKeys, MAX_LEEWAY};
    use crate::keys::{Keyring, SecretKey};

    fn jwt_with(keyring: &Keyring, store: Arc<dyn RevocationStore>) -> Jwt {
        Jwt::new(JwtConfig::default(), JwtKeys::from_keyring(keyring), store)
    }

    #[tokio::test]
    async fn memory_records_follow_the_logins_not_the_refreshes() {
        let store = Arc::new(MemoryRevocationStore::new(100_000));
        assert_eq!(store.shards.len(), MAX_SHARDS);
        let jwt = jwt_with(&Keyring::new(SecretKey::generate(), vec![]), store.clone());
        for user in 0..20 {
            let mut pair = jwt.issue(user).await.unwrap();
            for _ in 0..50 {
                pair = jwt.refresh(&pair.refresh_token).await.unwrap();
            }
        }
        // One family and one user record per login: 40, whatever the 1,000 refreshes.
        assert_eq!(store.len(), 40);
    }

    #[tokio::test]
    async fn the_record_count_never_passes_the_capacity() {
        let store = MemoryRevocationStore::new(8);
        let until = now() + 3_600;
        store.start_family("u0", "f0", "j", until, 5).await.unwrap();
        for i in 1..40 {
            let _ = store
                .start_family(&format!("u{i}"), &format!("f{i}"), "j", until, 5)
                .await;
            // Revoking another user's family still needs a record for the revoker.
            let _ = store.revoke_family(&format!("v{i}"), "f0", until).await;
            let _ = store.revoke_user(&format!("w{i}"), now(), until).await;
            assert!(store.len() <= 8, "{} records after {i}", store.len());
        }
        assert_eq!(store.len(), 8);
    }

    #[tokio::test]
    async fn a_deadline_already_past_is_kept_without_a_panic() {
        let store = MemoryRevocationStore::new(100);
        let past = now() - 10;
        store.start_family("u", "f", "j", past, 5).await.unwrap();
        store.revoke_user("u", now(), past).await.unwrap();
        store.revoke_family("u", "f", past).await.unwrap();
        store
            .start_family("u", "g", "j", now() + 60, 5)
            .await
            .unwrap();
        assert!(store.len() <= 3, "{}", store.len());
    }

    #[tokio::test]
    async fn deadlines_include_the_leeway() {
        let store = Arc::new(MemoryRevocationStore::default());
        let jwt = jwt_with(&Keyring::new(SecretKey::generate(), vec![]), store.clone());
        let pair = jwt.issue(1).await.unwrap();
        let claims = jwt.decode(&pair.refresh_token).unwrap();
        let shard = store.shard("1").read().unwrap();
        let family_until = shard
            .records
            .expiry(&Id::Family(claims.fam.clone()))
            .unwrap();
        let user_until = shard.records.expiry(&Id::User("1".into())).unwrap();
        // The record outlives the refresh token's last verifiable second.
        assert!(family_until >= claims.exp + MAX_LEEWAY.as_secs() as i64);
        assert!(user_until >= family_until);
    }
}
