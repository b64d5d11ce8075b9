//! The rules every [`SessionStore`] keeps, as one suite a store's own tests run.
//!
//! The session layer trusts its store with more than storage: a record must come back
//! exactly as it went in, never after its expiry, and an ended session must stay
//! ended even when a request of it, still in flight, tries to write it back (the
//! logout race). A store that breaks one of these rules breaks a protection, not a
//! feature: a logged-out cookie that works again, a password change that leaves the
//! attacker signed in. Portcullis runs this suite against [`MemorySessionStore`],
//! `SqliteSessionStore` and `RedisSessionStore`; a store written elsewhere (PostgreSQL,
//! DynamoDB, …) runs it in its own tests, in the manner of rustls's provider tests.
//!
//! [`run`] checks the rules of the trait; [`anonymous_records_never_evict_signed_in`]
//! adds the rule of a store with a size cap. Each panics on the first broken rule with
//! a message that names it, and fails on any store error (a store under test must be
//! reachable).
//!
//! The suite writes under random keys (`conformance-…`) and for random user ids, deletes
//! what it wrote when a check passes, and waits about a second for expiries to pass:
//! point it at a test database, never at one that serves users.
//!
//! ```
//! use portcullis::session::store::conformance;
//! use portcullis::session::MemorySessionStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // In a store's own tests: `#[tokio::test] async fn keeps_the_session_store_rules()`.
//! let store = MemorySessionStore::new(1_000);
//! conformance::run(&store).await;
//! conformance::anonymous_records_never_evict_signed_in(&store, 1_000).await;
//! # }
//! ```
//!
//! [`MemorySessionStore`]: super::MemorySessionStore

use std::time::Duration;

use super::{SessionStore, SessionStoreError};
use crate::keys::fill_random;
use crate::session::record::{now, SessionRecord};

/// How far ahead a record that must outlive the suite expires (Unix ms from now).
const LATER_MS: i64 = 3_600_000;
/// How far ahead a record that must expire during the suite expires, and how long the
/// suite waits for it to be gone (generous, so that a slow machine never fails a
/// store that keeps the rule).
const SOON_MS: i64 = 700;
const WAIT_FOR_EXPIRY: Duration = Duration::from_millis(1_000);

/// Checks every rule of the [`SessionStore`] trait against `store`; panics, naming the
/// rule, on the first that is broken.
///
/// - a saved record loads back unchanged, a key never saved loads nothing, and saving
///   again replaces the record;
/// - a record is never returned from its expiry on (already expired when saved, or
///   expired since), and `update` does not bring it back;
/// - a deleted record is gone, and deleting a missing key is no error;
/// - `update` replaces a live record and moves its expiry, and returns `false` for a
///   deleted or never-saved record without writing it: an ended session stays ended
///   when a request still in flight saves it (the logout race);
/// - `delete_user` ends every session of the user but the one it spares, leaves
///   other users and anonymous sessions alone, counts what it ended (a session
///   deleted before does not count), and goes by the record's current user;
/// - `list_user` returns every live record of the user, unchanged and under its key,
///   and no expired, deleted, anonymous or other user's record, going by the record's
///   current user;
/// - `delete_of_user` ends a live session of the user and answers `true`, and ends
///   nothing and answers `false` for another user's session, an anonymous one, one
///   that changed hands, an expired, deleted or never-saved key; a session it ended
///   stays ended when a request still in flight saves it.
pub async fn run<S: SessionStore + ?Sized>(store: &S) {
    round_trip(store).await;
    expiry(store).await;
    delete(store).await;
    update_never_resurrects(store).await;
    update_replaces_and_moves_the_expiry(store).await;
    delete_user_spares_the_current_session_and_other_users(store).await;
    delete_user_follows_the_current_user(store).await;
    list_user_lists_the_live_sessions_of_the_user_only(store).await;
    delete_of_user_ends_only_the_users_own_session(store).await;
}

/// Checks the rule of a store that holds at most `capacity` signed-in and `capacity`
/// anonymous records: a flood of anonymous records (a visitor's CSRF secret is one)
/// only ever evicts other anonymous records, never a signed-in user's session. Saves
/// `2 × capacity + 16` records, so keep `capacity` small in tests.
pub async fn anonymous_records_never_evict_signed_in<S: SessionStore + ?Sized>(
    store: &S,
    capacity: usize,
) {
    let run = Run::new();
    let user = run.user(0);
    let signed_in = run.key("signed-in");
    save(store, &signed_in, &record(Some(user), "signed in"), later()).await;
    let flood: Vec<String> = (0..capacity.saturating_mul(2).saturating_add(16))
        .map(|i| run.key(&format!("anonymous-{i}")))
        .collect();
    for key in &flood {
        save(store, key, &record(None, "anonymous"), later()).await;
    }
    require(
        load(store, &signed_in).await.is_some(),
        "anonymous records never evict a signed-in session",
    );
    let newest = flood.last().map(String::as_str).unwrap_or_default();
    require(
        load(store, newest).await.is_some(),
        "a store at its cap still takes new anonymous records",
    );
    for key in flood.iter().chain([&signed_in]) {
        delete_key(store, key).await;
    }
}

async fn round_trip<S: SessionStore + ?Sized>(store: &S) {
    let run = Run::new();
    let key = run.key("round-trip");
    let mut original = record(Some(run.user(0)), "sombre \"☾\" \\ <b>");
    original.data.insert("cart".into(), "[1,2,3]".into());
    original.data.insert(String::new(), String::new());
    save(store, &key, &original, later()).await;
    require(
        load(store, &key).await.as_ref() == Some(&original),
        "a saved record loads back unchanged (user, CSRF secret, instants, every value)",
    );
    require(
        load(store, &run.key("never-saved")).await.is_none(),
        "a key that was never saved loads nothing",
    );
    let replacement = record(None, "clair");
    save(store, &key, &replacement, later()).await;
    require(
        load(store, &key).await == Some(replacement),
        "saving under a key again replaces its record",
    );
    delete_key(store, &key).await;
}

async fn expiry<S: SessionStore + ?Sized>(store: &S) {
    let run = Run::new();
    let user = run.user(0);
    let expired = run.key("expired");
    save(store, &expired, &record(Some(user), "x"), now() - 1).await;
    require(
        load(store, &expired).await.is_none(),
        "a record saved with an expiry in the past is never returned",
    );
    require(
        !update(store, &expired, &record(Some(user), "y"), later()).await,
        "update of an expired record answers false",
    );
    require(
        load(store, &expired).await.is_none(),
        "update does not bring an expired record back",
    );

    let soon = run.key("soon");
    save(store, &soon, &record(Some(user), "x"), now() + SOON_MS).await;
    tokio::time::sleep(WAIT_FOR_EXPIRY).await;
    require(
        load(store, &soon).await.is_none(),
        "a record is not returned once its expiry has passed",
    );
    require(
        !update(store, &soon, &record(Some(user), "y"), later()).await,
        "update of a record whose expiry has passed answers false",
    );
    require(
        load(store, &soon).await.is_none(),
        "update does not bring a record back once its expiry has passed",
    );
    for key in [expired, soon] {
        delete_key(store, &key).await;
    }
}

async fn delete<S: SessionStore + ?Sized>(store: &S) {
    let run = Run::new();
    let key = run.key("deleted");
    save(store, &key, &record(Some(run.user(0)), "x"), later()).await;
    delete_key(store, &key).await;
    require(
        load(store, &key).await.is_none(),
        "a deleted record is gone",
    );
    // Deleting what is not there (a second logout, a replayed cookie) is no error.
    delete_key(store, &key).await;
    delete_key(store, &run.key("never-saved")).await;
}

async fn update_never_resurrects<S: SessionStore + ?Sized>(store: &S) {
    let run = Run::new();
    let user = run.user(0);
    // A request of this session is in flight when the user logs out: its write-back
    // must not sign the stolen cookie in again.
    let logged_out = run.key("logged-out");
    save(store, &logged_out, &record(Some(user), "x"), later()).await;
    delete_key(store, &logged_out).await;
    require(
        !update(store, &logged_out, &record(Some(user), "y"), later()).await,
        "update of a deleted record answers false",
    );
    require(
        load(store, &logged_out).await.is_none(),
        "update never resurrects a deleted record (the logout race)",
    );
    // The same after "log out everywhere".
    let ended = run.key("ended-elsewhere");
    save(store, &ended, &record(Some(user), "x"), later()).await;
    delete_user(store, user, None).await;
    require(
        !update(store, &ended, &record(Some(user), "y"), later()).await,
        "update of a record ended by delete_user answers false",
    );
    require(
        load(store, &ended).await.is_none(),
        "update never resurrects a record ended by delete_user",
    );
    let never = run.key("never-saved");
    require(
        !update(store, &never, &record(None, "y"), later()).await,
        "update of a key never saved answers false",
    );
    require(
        load(store, &never).await.is_none(),
        "update never creates a record",
    );
}

async fn update_replaces_and_moves_the_expiry<S: SessionStore + ?Sized>(store: &S) {
    let run = Run::new();
    let user = run.user(0);
    let key = run.key("updated");
    save(store, &key, &record(Some(user), "before"), later()).await;
    let changed = record(Some(user), "after");
    require(
        update(store, &key, &changed, later()).await,
        "update of a live record answers true",
    );
    require(
        load(store, &key).await == Some(changed.clone()),
        "update replaces a live record",
    );
    require(
        delete_user(store, user, None).await == 1,
        "an updated record still belongs to its user for delete_user",
    );

    let extended = run.key("extended");
    let shortened = run.key("shortened");
    save(store, &extended, &changed, now() + SOON_MS).await;
    save(store, &shortened, &changed, later()).await;
    require(
        update(store, &extended, &changed, later()).await,
        "update of a live record answers true",
    );
    require(
        update(store, &shortened, &changed, now() - 1).await,
        "update of a live record answers true",
    );
    require(
        load(store, &shortened).await.is_none(),
        "update to an expiry in the past ends the record",
    );
    tokio::time::sleep(WAIT_FOR_EXPIRY).await;
    require(
        load(store, &extended).await.is_some(),
        "update moves a record's expiry to the one it is given",
    );
    for key in [key, extended, shortened] {
        delete_key(store, &key).await;
    }
}

async fn delete_user_spares_the_current_session_and_other_users<S: SessionStore + ?Sized>(
    store: &S,
) {
    let run = Run::new();
    let (user, other_user) = (run.user(0), run.user(1));
    let [a1, a2, a3, a4] = ["a1", "a2", "a3", "a4"].map(|name| run.key(name));
    let [b1, anonymous] = ["b1", "anonymous"].map(|name| run.key(name));
    for key in [&a1, &a2, &a3, &a4] {
        save(store, key, &record(Some(user), key), later()).await;
    }
    save(store, &b1, &record(Some(other_user), "b1"), later()).await;
    save(store, &anonymous, &record(None, "anonymous"), later()).await;
    // Ended before: not counted again.
    delete_key(store, &a4).await;

    require(
        delete_user(store, user, Some(&a2)).await == 2,
        "delete_user counts the sessions it ended",
    );
    require(
        load(store, &a1).await.is_none() && load(store, &a3).await.is_none(),
        "delete_user ends every other session of the user",
    );
    require(
        load(store, &a2).await.is_some(),
        "delete_user spares the current session",
    );
    require(
        load(store, &b1).await.is_some(),
        "delete_user leaves other users' sessions alone",
    );
    require(
        load(store, &anonymous).await.is_some(),
        "delete_user leaves anonymous sessions alone",
    );
    require(
        delete_user(store, user, None).await == 1 && load(store, &a2).await.is_none(),
        "delete_user without an exception ends every session of the user",
    );
    require(
        delete_user(store, run.user(2), None).await == 0,
        "delete_user of a user without sessions ends none",
    );
    delete_user(store, other_user, None).await;
    delete_key(store, &anonymous).await;
}

async fn delete_user_follows_the_current_user<S: SessionStore + ?Sized>(store: &S) {
    let run = Run::new();
    let (first, second) = (run.user(0), run.user(1));
    let key = run.key("changed-hands");
    save(store, &key, &record(Some(first), "first"), later()).await;
    save(store, &key, &record(Some(second), "second"), later()).await;
    require(
        delete_user(store, first, None).await == 0 && load(store, &key).await.is_some(),
        "delete_user goes by the record's current user, not one it had before",
    );
    require(
        delete_user(store, second, None).await == 1,
        "delete_user finds a record saved over another user's",
    );
}

async fn list_user_lists_the_live_sessions_of_the_user_only<S: SessionStore + ?Sized>(store: &S) {
    let run = Run::new();
    let (user, other_user) = (run.user(0), run.user(1));
    let [a1, a2, deleted, expired] = ["a1", "a2", "deleted", "expired"].map(|n| run.key(n));
    let [b1, anonymous, to_user, from_user] =
        ["b1", "anonymous", "to-user", "from-user"].map(|n| run.key(n));
    let mut first = record(Some(user), "a1");
    first.data.insert("cart".into(), "[1]".into());
    save(store, &a1, &first, later()).await;
    save(store, &a2, &record(Some(user), "a2"), later()).await;
    let second = record(Some(user), "a2 updated");
    require(
        update(store, &a2, &second, later()).await,
        "update of a live record answers true",
    );
    save(store, &deleted, &record(Some(user), "x"), later()).await;
    delete_key(store, &deleted).await;
    save(store, &expired, &record(Some(user), "x"), now() - 1).await;
    save(store, &b1, &record(Some(other_user), "b1"), later()).await;
    save(store, &anonymous, &record(None, "anonymous"), later()).await;
    save(store, &to_user, &record(Some(other_user), "x"), later()).await;
    let handed = record(Some(user), "handed over");
    save(store, &to_user, &handed, later()).await;
    save(store, &from_user, &record(Some(user), "x"), later()).await;
    save(store, &from_user, &record(Some(other_user), "x"), later()).await;

    let mut listed = list_user(store, user).await;
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![(a1, first), (a2, second), (to_user, handed)];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let keys = |pairs: &[(String, SessionRecord)]| -> Vec<String> {
        pairs.iter().map(|(key, _)| key.clone()).collect()
    };
    require(
        keys(&listed) == keys(&expected),
        "list_user returns exactly the user's live sessions: no expired, deleted,          anonymous or other user's one, and goes by the record's current user",
    );
    require(
        listed == expected,
        "list_user returns each record unchanged (as last saved or updated)",
    );
    require(
        list_user(store, run.user(2)).await.is_empty(),
        "list_user of a user without sessions returns none",
    );
    delete_user(store, user, None).await;
    delete_user(store, other_user, None).await;
    for key in [anonymous, expired] {
        delete_key(store, &key).await;
    }
    require(
        list_user(store, user).await.is_empty(),
        "list_user returns nothing once delete_user ended every session",
    );
}

async fn delete_of_user_ends_only_the_users_own_session<S: SessionStore + ?Sized>(store: &S) {
    let run = Run::new();
    let (user, other_user) = (run.user(0), run.user(1));
    let [mine, theirs, anonymous, expired] =
        ["mine", "theirs", "anonymous", "expired"].map(|n| run.key(n));
    let changed_hands = run.key("changed-hands");
    save(store, &mine, &record(Some(user), "mine"), later()).await;
    save(store, &theirs, &record(Some(other_user), "theirs"), later()).await;
    save(store, &anonymous, &record(None, "anonymous"), later()).await;
    save(store, &expired, &record(Some(user), "x"), now() - 1).await;
    save(store, &changed_hands, &record(Some(user), "x"), later()).await;
    save(
        store,
        &changed_hands,
        &record(Some(other_user), "x"),
        later(),
    )
    .await;

    require(
        !delete_of_user(store, user, &theirs).await && load(store, &theirs).await.is_some(),
        "delete_of_user never ends another user's session",
    );
    require(
        !delete_of_user(store, user, &anonymous).await && load(store, &anonymous).await.is_some(),
        "delete_of_user never ends an anonymous session",
    );
    require(
        !delete_of_user(store, user, &changed_hands).await
            && load(store, &changed_hands).await.is_some(),
        "delete_of_user goes by the record's current user, not one it had before",
    );
    require(
        !delete_of_user(store, user, &expired).await,
        "delete_of_user of an expired session answers false",
    );
    require(
        !delete_of_user(store, user, &run.key("never-saved")).await,
        "delete_of_user of a key never saved answers false",
    );
    require(
        delete_of_user(store, user, &mine).await,
        "delete_of_user of the user's live session answers true",
    );
    require(
        load(store, &mine).await.is_none(),
        "delete_of_user ends the session",
    );
    require(
        !delete_of_user(store, user, &mine).await,
        "delete_of_user of a session it already ended answers false",
    );
    require(
        !update(store, &mine, &record(Some(user), "y"), later()).await
            && load(store, &mine).await.is_none(),
        "update never resurrects a record ended by delete_of_user",
    );
    // (The expired record goes first: whether `delete_user` counts a record past its
    // expiry that the store has not purged yet is left to the store.)
    delete_key(store, &expired).await;
    require(
        list_user(store, user).await.is_empty() && delete_user(store, user, None).await == 0,
        "a session ended by delete_of_user is neither listed nor counted again",
    );
    delete_user(store, other_user, None).await;
    delete_key(store, &anonymous).await;
}

/// Random keys and user ids for one check, so that checks, runs and other data in
/// the store never meet.
struct Run {
    id: String,
    first_user: i64,
}

impl Run {
    fn new() -> Self {
        let mut bytes = [0u8; 8];
        fill_random(&mut bytes);
        let random = u64::from_le_bytes(bytes);
        Self {
            id: format!("{random:016x}"),
            // Below 2^48, positive, and exact as a double (Lua and JSON readers).
            first_user: i64::try_from(random >> 16).unwrap_or(1) | 1 << 40,
        }
    }

    fn key(&self, name: &str) -> String {
        format!("conformance-{}-{name}", self.id)
    }

    fn user(&self, n: i64) -> i64 {
        self.first_user + n
    }
}

fn later() -> i64 {
    now() + LATER_MS
}

fn record(user_id: Option<i64>, theme: &str) -> SessionRecord {
    let mut record = SessionRecord::begun_now(user_id);
    record.data.insert("theme".into(), theme.into());
    record
}

#[track_caller]
fn require(kept: bool, rule: &str) {
    assert!(kept, "session store breaks a rule: {rule}");
}

#[track_caller]
fn answer<T>(result: Result<T, SessionStoreError>, operation: &str) -> T {
    result.unwrap_or_else(|error| panic!("session store failed to {operation}: {error}"))
}

async fn load<S: SessionStore + ?Sized>(store: &S, key: &str) -> Option<SessionRecord> {
    answer(store.load(key).await, "load a record")
}

async fn save<S: SessionStore + ?Sized>(store: &S, key: &str, record: &SessionRecord, at: i64) {
    answer(store.save(key, record, at).await, "save a record");
}

async fn update<S: SessionStore + ?Sized>(
    store: &S,
    key: &str,
    record: &SessionRecord,
    at: i64,
) -> bool {
    answer(store.update(key, record, at).await, "update a record")
}

async fn delete_key<S: SessionStore + ?Sized>(store: &S, key: &str) {
    answer(store.delete(key).await, "delete a record");
}

async fn delete_user<S: SessionStore + ?Sized>(
    store: &S,
    user_id: i64,
    except: Option<&str>,
) -> u64 {
    answer(
        store.delete_user(user_id, except).await,
        "delete a user's records",
    )
}

async fn list_user<S: SessionStore + ?Sized>(
    store: &S,
    user_id: i64,
) -> Vec<(String, SessionRecord)> {
    answer(store.list_user(user_id).await, "list a user's records")
}

async fn delete_of_user<S: SessionStore + ?Sized>(store: &S, user_id: i64, key: &str) -> bool {
    answer(
        store.delete_of_user(user_id, key).await,
        "delete a user's record",
    )
}
