//! Refresh families and revocations in this process's memory.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{RefreshUse, RevocationError, RevocationStore};
use crate::jwt::claims::now;
use crate::jwt::Claims;

#[derive(Debug)]
struct Family {
    user: String,
    current: String,
    generation: u64,
    revoked: bool,
    until: i64,
}

#[derive(Debug, Default)]
struct UserRecord {
    generation: u64,
    not_before: i64,
    until: i64,
    // The user's families in the order they began, for the per-user cap.
    families: VecDeque<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Family,
    User,
}

#[derive(Debug, Default)]
struct Shard {
    families: HashMap<String, Family>,
    users: HashMap<String, UserRecord>,
    // (deadline, kind, id): the next to expire first, for the purge.
    deadlines: BTreeSet<(i64, Kind, String)>,
}

impl Shard {
    fn len(&self) -> usize {
        self.families.len() + self.users.len()
    }

    fn purge(&mut self, now: i64) {
        while let Some((until, kind, id)) = self.deadlines.first().cloned() {
            if until > now {
                break;
            }
            self.deadlines.pop_first();
            match kind {
                Kind::Family => {
                    self.families.remove(&id);
                }
                Kind::User => {
                    self.users.remove(&id);
                }
            }
        }
    }

    fn generation(&self, user: &str) -> u64 {
        self.users.get(user).map_or(0, |u| u.generation)
    }

    /// Moves a family's deadline to `until` if that is later, and its user's with it:
    /// a user record must outlive every family it judges.
    fn extend(&mut self, user: &str, family: &str, until: i64) {
        if let Some(f) = self.families.get_mut(family) {
            if until > f.until {
                self.deadlines
                    .remove(&(f.until, Kind::Family, family.to_owned()));
                f.until = until;
                self.deadlines
                    .insert((until, Kind::Family, family.to_owned()));
            }
        }
        let record = self.users.entry(user.to_owned()).or_default();
        if until > record.until {
            let old = record.until;
            record.until = until;
            self.deadlines.remove(&(old, Kind::User, user.to_owned()));
            self.deadlines.insert((until, Kind::User, user.to_owned()));
        }
    }

    /// Room for `needed` more records, or the store's refusal.
    fn make_room(
        &mut self,
        needed: usize,
        capacity: Capacity,
        now: i64,
    ) -> Result<(), RevocationError> {
        if self.len() + needed > capacity.per_shard {
            self.purge(now);
        }
        if self.len() + needed > capacity.per_shard {
            tracing::error!(
                target: "portcullis::security",
                event = "revocation_store_full",
                "the in-memory revocation store is full: new logins are refused until entries expire"
            );
            return Err(RevocationError::Full {
                capacity: capacity.total,
            });
        }
        Ok(())
    }
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
    capacity: Capacity,
}

/// How many records a shard may hold, and all of them together.
#[derive(Debug, Clone, Copy)]
struct Capacity {
    per_shard: usize,
    total: usize,
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
        let shards: Arc<[RwLock<Shard>]> =
            (0..count).map(|_| RwLock::new(Shard::default())).collect();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak: Weak<[RwLock<Shard>]> = Arc::downgrade(&shards);
            handle.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(shards) = weak.upgrade() else { break };
                    for shard in shards.iter() {
                        shard
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .purge(now());
                    }
                }
            });
        }
        // Rounded down, so that all shards together never exceed `capacity`.
        let per_shard = (capacity / count).max(2);
        Self {
            shards,
            hasher: std::collections::hash_map::RandomState::new(),
            capacity: Capacity {
                per_shard,
                total: per_shard * count,
            },
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
        let user = shard.users.get(&claims.sub).filter(|u| u.until > now);
        let revoked = match shard.families.get(&claims.fam).filter(|f| f.until > now) {
            Some(family) => {
                family.revoked
                    || family.user != claims.sub
                    || family.generation < user.map_or(0, |u| u.generation)
            }
            None => user.is_some_and(|u| claims.iat < u.not_before),
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
            let needed = 1 + usize::from(!shard.users.contains_key(user));
            shard.make_room(needed, capacity, now)?;
            let generation = shard.generation(user);
            shard.families.insert(
                family.to_owned(),
                Family {
                    user: user.to_owned(),
                    current: refresh_jti.to_owned(),
                    generation,
                    revoked: false,
                    until,
                },
            );
            shard
                .deadlines
                .insert((until, Kind::Family, family.to_owned()));
            shard.extend(user, family, until);
            // The user's live families, oldest first; beyond the cap the oldest end.
            let mut listed =
                std::mem::take(&mut shard.users.get_mut(user).expect("extended above").families);
            listed.retain(|id| {
                shard
                    .families
                    .get(id)
                    .is_some_and(|f| !f.revoked && f.until > now && f.generation == generation)
            });
            listed.push_back(family.to_owned());
            while listed.len() > max_per_user.max(1) {
                if let Some(oldest) = listed.pop_front() {
                    if let Some(f) = shard.families.get_mut(&oldest) {
                        f.revoked = true;
                    }
                }
            }
            shard.users.get_mut(user).expect("extended above").families = listed;
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
        let outcome = self.write(user, |shard| {
            let generation = shard.generation(user);
            let Some(f) = shard
                .families
                .get_mut(family)
                .filter(|f| f.until > now && f.user == user)
            else {
                return RefreshUse::Revoked;
            };
            if f.revoked {
                return RefreshUse::Revoked;
            }
            if f.generation < generation {
                f.revoked = true;
                return RefreshUse::Revoked;
            }
            if f.current != presented {
                f.revoked = true;
                return RefreshUse::Reused;
            }
            f.current = next.to_owned();
            shard.extend(user, family, until);
            RefreshUse::Fresh
        });
        Box::pin(async move { Ok(outcome) })
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
            if let Some(f) = shard.families.get_mut(family) {
                f.revoked = true;
            } else {
                // Unknown here (an in-memory store restarted): remembered as revoked,
                // so its access tokens stop verifying too.
                let needed = 1 + usize::from(!shard.users.contains_key(user));
                shard.make_room(needed, capacity, now)?;
                shard.families.insert(
                    family.to_owned(),
                    Family {
                        user: user.to_owned(),
                        current: String::new(),
                        generation: 0,
                        revoked: true,
                        until: now,
                    },
                );
                shard
                    .deadlines
                    .insert((now, Kind::Family, family.to_owned()));
            }
            shard.extend(user, family, until);
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
            if !shard.users.contains_key(user) {
                shard.make_room(1, capacity, now)?;
            }
            shard.extend(user, "", until);
            let record = shard.users.get_mut(user).expect("extended above");
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
    async fn deadlines_include_the_leeway() {
        let store = Arc::new(MemoryRevocationStore::default());
        let jwt = jwt_with(&Keyring::new(SecretKey::generate(), vec![]), store.clone());
        let pair = jwt.issue(1).await.unwrap();
        let claims = jwt.decode(&pair.refresh_token).unwrap();
        let shard = store.shard("1").read().unwrap();
        let family = &shard.families[&claims.fam];
        // The record outlives the refresh token's last verifiable second.
        assert!(family.until >= claims.exp + MAX_LEEWAY.as_secs() as i64);
        assert!(shard.users["1"].until >= family.until);
    }
}
