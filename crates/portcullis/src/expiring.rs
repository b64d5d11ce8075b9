//! The one expiring map of the in-memory stores, and the one way they purge it.
//!
//! As in mini-redis's `db.rs`: a hash map of entries, each with a deadline, and beside
//! it a `BTreeSet` of `(deadline, key)`, so that the entry that expires first is found
//! in O(log n), for a purge and for an eviction alike. The map is bounded; what happens
//! when it is full is the caller's choice ([`WhenFull`]): sessions evict the entry
//! closest to expiry, revocations refuse rather than forget one.
//!
//! Expiry is lazy on read: an entry is gone from its deadline on (`deadline <= now`),
//! whether or not a purge has run, so the background purge ([`spawn_purge`]) bounds
//! memory, never correctness. That is why it runs at an interval rather than at each
//! deadline: a busy store has a deadline every millisecond.
//!
//! Deadlines are whatever the store counts time in (Unix milliseconds for sessions,
//! Unix seconds for revocations); the map only compares them.

#[cfg(any(feature = "session", feature = "jwt"))]
use std::borrow::Borrow;
#[cfg(any(feature = "session", feature = "jwt"))]
use std::collections::{BTreeSet, HashMap};
#[cfg(any(feature = "session", feature = "jwt"))]
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// Runs `purge` on `store` every `interval` from a background task, when called inside
/// a Tokio runtime (outside one nothing runs, and reads still never see an expired
/// entry). The task holds only a `Weak`: it neither keeps the store alive nor outlives
/// it, ending at the first tick after the store is dropped.
pub(crate) fn spawn_purge<S>(store: &Arc<S>, interval: Duration, purge: fn(&S))
where
    S: ?Sized + Send + Sync + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(store);
    runtime.spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        // A purge that ran late (a busy runtime) is not made up for with a burst.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; a new store has nothing to purge.
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(store) = weak.upgrade() else {
                break;
            };
            purge(&store);
        }
    });
}

/// What [`ExpiringMap::insert`] does with a new key when the map is full, after
/// purging what has expired.
#[cfg(any(feature = "session", feature = "jwt"))]
// Sessions evict and revocations refuse: with one of them alone, one choice is unused.
#[cfg_attr(not(all(feature = "session", feature = "jwt")), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Evict the entries closest to expiry: for state that can be lost (a session).
    EvictSoonest,
    /// Refuse the new key: for state whose loss is a hole in security (a revocation).
    Refuse,
}

/// [`ExpiringMap::insert`] refused a new key: the map is full of live entries and
/// refuses rather than evicts ([`WhenFull::Refuse`]).
#[cfg(any(feature = "session", feature = "jwt"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// A bounded map whose entries expire; see the module docs.
#[cfg(any(feature = "session", feature = "jwt"))]
#[derive(Debug)]
pub(crate) struct ExpiringMap<K, V, T> {
    entries: HashMap<K, (V, T)>,
    // (deadline, key) of every entry and of nothing else: the first expires first.
    order: BTreeSet<(T, K)>,
    capacity: usize,
    when_full: WhenFull,
}

// Each store uses the part of this API it needs: with only one store's feature on, the
// other part is unused there, and only there.
#[cfg(any(feature = "session", feature = "jwt"))]
#[cfg_attr(not(all(feature = "session", feature = "jwt")), allow(dead_code))]
impl<K, V, T> ExpiringMap<K, V, T>
where
    K: Hash + Eq + Ord + Clone,
    T: Ord + Copy,
{
    /// An empty map of at most `capacity` entries.
    pub(crate) fn new(capacity: usize, when_full: WhenFull) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeSet::new(),
            capacity,
            when_full,
        }
    }

    /// How many entries are held, expired ones not yet purged included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `key` is held, live or expired.
    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.contains_key(key)
    }

    /// The value under `key` if it is live at `now`. An expired entry is never
    /// returned; it stays until a purge or a [`Self::get_mut`] (this takes `&self`, for
    /// readers that share a lock).
    pub(crate) fn get<Q>(&self, key: &Q, now: T) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .get(key)
            .filter(|(_, deadline)| *deadline > now)
            .map(|(value, _)| value)
    }

    /// The value under `key` if it is live at `now`; an expired entry is removed.
    pub(crate) fn get_mut<Q>(&mut self, key: &Q, now: T) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.expiry(key).is_some_and(|deadline| deadline <= now) {
            self.remove(key);
            return None;
        }
        self.entries.get_mut(key).map(|(value, _)| value)
    }

    /// The value under `key`, live or expired, removing nothing: for a caller that has
    /// just set its deadline itself.
    pub(crate) fn peek_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get_mut(key).map(|(value, _)| value)
    }

    /// The deadline of `key`, live or expired.
    pub(crate) fn expiry<Q>(&self, key: &Q) -> Option<T>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key).map(|(_, deadline)| *deadline)
    }

    /// Moves `key`'s deadline to `deadline`; `false` if `key` is not held.
    pub(crate) fn set_expiry<Q>(&mut self, key: &Q, deadline: T) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some((key, (_, old))) = self.entries.get_key_value(key) else {
            return false;
        };
        let key = key.clone();
        self.order.remove(&(*old, key.clone()));
        self.order.insert((deadline, key.clone()));
        if let Some((_, old)) = self.entries.get_mut::<K>(&key) {
            *old = deadline;
        }
        true
    }

    /// Puts `value` under `key` until `deadline`. A key already held is replaced in
    /// place; a new one needs room ([`Self::make_room`]), which a full map with
    /// [`WhenFull::Refuse`] does not give.
    pub(crate) fn insert(&mut self, key: K, value: V, deadline: T, now: T) -> Result<(), Full> {
        if let Some((_, old)) = self.entries.get(&key) {
            self.order.remove(&(*old, key.clone()));
        } else if !self.make_room(1, now) {
            return Err(Full);
        }
        self.order.insert((deadline, key.clone()));
        self.entries.insert(key, (value, deadline));
        Ok(())
    }

    /// Whether `needed` more entries fit: when they do not, purges what has expired at
    /// `now` and then, with [`WhenFull::EvictSoonest`], evicts the entries closest to
    /// expiry until they do.
    pub(crate) fn make_room(&mut self, needed: usize, now: T) -> bool {
        let fits = |map: &Self| map.entries.len().saturating_add(needed) <= map.capacity;
        if fits(self) {
            return true;
        }
        self.purge_expired(now);
        if self.when_full == WhenFull::EvictSoonest {
            while !fits(self) {
                let Some((_, soonest)) = self.order.pop_first() else {
                    break;
                };
                self.entries.remove(&soonest);
            }
        }
        fits(self)
    }

    /// Removes `key`, returning its value, live or expired.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (key, (value, deadline)) = self.entries.remove_entry(key)?;
        self.order.remove(&(deadline, key));
        Some(value)
    }

    /// Every entry live at `now`, in no particular order.
    pub(crate) fn live(&self, now: T) -> impl Iterator<Item = (&K, &V)> {
        self.entries
            .iter()
            .filter(move |(_, (_, deadline))| *deadline > now)
            .map(|(key, (value, _))| (key, value))
    }

    /// Removes every entry, live or expired, for which `remove` is true; returns how
    /// many went.
    pub(crate) fn remove_where(&mut self, mut remove: impl FnMut(&K, &V) -> bool) -> usize {
        let keys: Vec<K> = self
            .entries
            .iter()
            .filter(|(key, (value, _))| remove(key, value))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &keys {
            self.remove(key);
        }
        keys.len()
    }

    /// Removes every entry expired at `now` (`deadline <= now`), and nothing else;
    /// returns how many went.
    pub(crate) fn purge_expired(&mut self, now: T) -> usize {
        let mut purged = 0;
        while let Some((deadline, _)) = self.order.first() {
            if *deadline > now {
                break;
            }
            if let Some((_, key)) = self.order.pop_first() {
                self.entries.remove(&key);
                purged += 1;
            }
        }
        purged
    }
}

#[cfg(all(test, any(feature = "session", feature = "jwt")))]
mod tests {
    use super::*;

    type Map = ExpiringMap<String, u32, i64>;

    /// The index and the entries name the same keys, each once.
    fn assert_consistent(map: &Map) {
        assert_eq!(map.order.len(), map.entries.len(), "stale index entries");
        for (deadline, key) in &map.order {
            assert_eq!(map.entries[key].1, *deadline, "{key}");
        }
    }

    #[test]
    fn a_flood_of_distinct_keys_never_exceeds_the_bound() {
        for when_full in [WhenFull::EvictSoonest, WhenFull::Refuse] {
            let mut map = Map::new(100, when_full);
            for i in 0..10_000 {
                let _ = map.insert(format!("k{i}"), 0, 1_000 + i64::from(i % 37), 0);
                assert!(map.len() <= 100, "{} entries after {i}", map.len());
            }
            assert_eq!(map.len(), 100);
            assert_consistent(&map);
        }
    }

    #[test]
    fn expired_entries_are_never_returned_even_before_a_purge() {
        let mut map = Map::new(10, WhenFull::Refuse);
        map.insert("old".into(), 1, 100, 0).unwrap();
        map.insert("new".into(), 2, 101, 0).unwrap();
        // The deadline itself is already past: gone from its expiry on.
        assert_eq!(map.get("old", 100), None);
        assert_eq!(map.get("new", 100), Some(&2));
        assert_eq!(map.len(), 2, "get takes &self and removes nothing");
        assert_eq!(map.get_mut("old", 100), None);
        assert_eq!(map.len(), 1, "get_mut removes what it finds expired");
        assert_eq!(map.get_mut("new", 101), None);
        assert_eq!(map.len(), 0);
        assert_consistent(&map);
    }

    #[test]
    fn purge_removes_exactly_the_expired() {
        let mut map = Map::new(100, WhenFull::Refuse);
        for i in 0..50 {
            map.insert(format!("k{i}"), i as u32, i, 0).unwrap();
        }
        assert_eq!(map.purge_expired(19), 20);
        assert_eq!(map.len(), 30);
        for i in 0..50 {
            assert_eq!(map.contains(format!("k{i}").as_str()), i >= 20, "k{i}");
        }
        assert_eq!(map.purge_expired(19), 0);
        assert_consistent(&map);
    }

    #[test]
    fn a_full_refusing_map_refuses_new_keys_but_not_replacements() {
        let mut map = Map::new(3, WhenFull::Refuse);
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            map.insert(key.into(), 0, 10 + i as i64, 0).unwrap();
        }
        assert_eq!(map.insert("d".into(), 0, 100, 0), Err(Full));
        assert!(!map.contains("d"));
        // Nothing live was forgotten to make the room.
        assert!(["a", "b", "c"].iter().all(|key| map.contains(*key)));
        // A key already held takes no room.
        assert_eq!(map.insert("a".into(), 7, 50, 0), Ok(()));
        assert_eq!(map.get("a", 0), Some(&7));
        // Once something has expired there is room again.
        assert_eq!(map.insert("d".into(), 0, 100, 11), Ok(()));
        assert!(!map.contains("b"));
        assert_consistent(&map);
    }

    #[test]
    fn a_full_evicting_map_evicts_the_soonest_expiring() {
        let mut map = Map::new(3, WhenFull::EvictSoonest);
        map.insert("late".into(), 0, 300, 0).unwrap();
        map.insert("soon".into(), 0, 100, 0).unwrap();
        map.insert("middle".into(), 0, 200, 0).unwrap();
        map.insert("new".into(), 0, 50, 0).unwrap();
        assert!(!map.contains("soon"));
        assert!(map.contains("late") && map.contains("middle") && map.contains("new"));
        // The newcomer is the soonest now, and the next to go.
        map.insert("newer".into(), 0, 400, 0).unwrap();
        assert!(!map.contains("new"));
        assert_eq!(map.len(), 3);
        assert_consistent(&map);
    }

    #[test]
    fn a_new_expiry_moves_the_key_in_the_order_without_stale_entries() {
        let mut map = Map::new(3, WhenFull::EvictSoonest);
        map.insert("a".into(), 0, 100, 0).unwrap();
        map.insert("b".into(), 0, 200, 0).unwrap();
        map.insert("c".into(), 0, 300, 0).unwrap();
        // "a", the soonest, is extended past the others; "b" is now the soonest.
        assert!(map.set_expiry("a", 1_000));
        assert!(!map.set_expiry("missing", 1_000));
        assert_eq!(map.expiry("a"), Some(1_000));
        assert_consistent(&map);
        // Replacing a value moves its key too.
        map.insert("c".into(), 1, 50, 0).unwrap();
        assert_consistent(&map);
        assert_eq!(map.purge_expired(150), 1);
        assert!(!map.contains("c"));
        map.insert("d".into(), 0, 400, 0).unwrap();
        map.insert("e".into(), 0, 500, 0).unwrap();
        assert!(!map.contains("b"), "the soonest went, by its new deadline");
        assert!(map.contains("a"));
        // An extended key is not purged at its old deadline.
        assert_eq!(map.purge_expired(999), 2);
        assert_eq!(map.get("a", 999), Some(&0));
        assert_eq!(map.order.len(), 1);
        assert_consistent(&map);
    }

    #[tokio::test(start_paused = true)]
    async fn the_purge_task_runs_at_its_interval_and_does_not_keep_the_store_alive() {
        let store = Arc::new(std::sync::Mutex::new(Map::new(10, WhenFull::Refuse)));
        store.lock().unwrap().insert("a".into(), 0, 1, 0).unwrap();
        spawn_purge(&store, Duration::from_secs(60), |map| {
            map.lock().unwrap().purge_expired(i64::MAX);
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(store.lock().unwrap().len(), 1, "purged before its interval");
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(store.lock().unwrap().len(), 0);
        let weak = Arc::downgrade(&store);
        drop(store);
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn removal_by_key_or_predicate_keeps_the_index_in_step() {
        let mut map = Map::new(10, WhenFull::Refuse);
        for i in 0..10 {
            map.insert(format!("k{i}"), i, i64::from(i), 0).unwrap();
        }
        assert_eq!(map.remove("k3"), Some(3));
        assert_eq!(map.remove("k3"), None);
        assert_eq!(map.remove_where(|_, value| value % 2 == 0), 5);
        assert_eq!(map.len(), 4);
        assert_consistent(&map);
        assert_eq!(map.purge_expired(i64::MAX), 4);
        assert_consistent(&map);
    }

    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert { key: u8, value: u32, ttl: i64 },
        Get(u8),
        GetMut(u8),
        Remove(u8),
        SetExpiry { key: u8, ttl: i64 },
        Advance(i64),
        Purge,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few keys and short lives, so that the map fills, entries expire and keys
        // come back: the cases where the bound and the index can go wrong.
        prop_oneof![
            6 => (0u8..24, any::<u32>(), 0i64..40)
                .prop_map(|(key, value, ttl)| Op::Insert { key, value, ttl }),
            2 => (0u8..24).prop_map(Op::Get),
            2 => (0u8..24).prop_map(Op::GetMut),
            1 => (0u8..24).prop_map(Op::Remove),
            1 => (0u8..24, 0i64..40).prop_map(|(key, ttl)| Op::SetExpiry { key, ttl }),
            2 => (0i64..15).prop_map(Op::Advance),
            1 => Just(Op::Purge),
        ]
    }

    /// What the map must hold: every entry with its value and deadline, expired ones
    /// until something removes them. Eviction takes the smallest (deadline, key), as
    /// the map's order does.
    struct Model {
        entries: BTreeMap<String, (u32, i64)>,
        capacity: usize,
        when_full: WhenFull,
    }

    impl Model {
        fn insert(&mut self, key: String, value: u32, deadline: i64, now: i64) -> Result<(), Full> {
            if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
                self.entries.retain(|_, (_, d)| *d > now);
                if self.when_full == WhenFull::EvictSoonest {
                    while self.entries.len() >= self.capacity {
                        let soonest = self
                            .entries
                            .iter()
                            .map(|(k, (_, d))| (*d, k.clone()))
                            .min()
                            .expect("a full map has entries")
                            .1;
                        self.entries.remove(&soonest);
                    }
                } else if self.entries.len() >= self.capacity {
                    return Err(Full);
                }
            }
            self.entries.insert(key, (value, deadline));
            Ok(())
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any sequence of operations on a small map, against the model: the bound is
        /// never passed, an expired entry is never returned, a refusing map refuses
        /// only when full of live entries and loses nothing, an evicting map gives up
        /// only its soonest-expiring entries, and the index stays in step.
        #[test]
        fn any_sequence_of_operations_keeps_the_bound_and_the_model(
            capacity in 1usize..8,
            evicting in any::<bool>(),
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let when_full = if evicting { WhenFull::EvictSoonest } else { WhenFull::Refuse };
            let mut map = Map::new(capacity, when_full);
            let mut model = Model { entries: BTreeMap::new(), capacity, when_full };
            let mut now = 0i64;
            for op in ops {
                match op {
                    Op::Insert { key, value, ttl } => {
                        let key = format!("k{key}");
                        let expected = model.insert(key.clone(), value, now + ttl, now);
                        prop_assert_eq!(map.insert(key, value, now + ttl, now), expected);
                    }
                    Op::Get(key) => {
                        let key = format!("k{key}");
                        let expected = model.entries.get(&key).filter(|(_, d)| *d > now).map(|(v, _)| *v);
                        prop_assert_eq!(map.get(&key, now).copied(), expected);
                    }
                    Op::GetMut(key) => {
                        let key = format!("k{key}");
                        let expected = model.entries.get(&key).filter(|(_, d)| *d > now).map(|(v, _)| *v);
                        if expected.is_none() {
                            model.entries.remove(&key);
                        }
                        prop_assert_eq!(map.get_mut(&key, now).copied(), expected);
                    }
                    Op::Remove(key) => {
                        let key = format!("k{key}");
                        let expected = model.entries.remove(&key).map(|(v, _)| v);
                        prop_assert_eq!(map.remove(&key), expected);
                    }
                    Op::SetExpiry { key, ttl } => {
                        let key = format!("k{key}");
                        let held = match model.entries.get_mut(&key) {
                            Some((_, deadline)) => {
                                *deadline = now + ttl;
                                true
                            }
                            None => false,
                        };
                        prop_assert_eq!(map.set_expiry(&key, now + ttl), held);
                    }
                    Op::Advance(by) => now += by,
                    Op::Purge => {
                        let before = model.entries.len();
                        model.entries.retain(|_, (_, d)| *d > now);
                        prop_assert_eq!(map.purge_expired(now), before - model.entries.len());
                    }
                }
                prop_assert!(map.len() <= capacity, "{} entries at capacity {}", map.len(), capacity);
                prop_assert_eq!(map.len(), model.entries.len());
                for (key, (value, deadline)) in &model.entries {
                    prop_assert_eq!(map.entries.get(key), Some(&(*value, *deadline)));
                }
                assert_consistent(&map);
            }
        }
    }
}
