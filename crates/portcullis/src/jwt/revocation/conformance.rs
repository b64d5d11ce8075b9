//! The rules every [`RevocationStore`] keeps, as one suite a store written outside
//! Portcullis runs against itself (feature `test-util`).
//!
//! [`run`] checks, in order, and panics with the rule's name on the first it finds
//! broken:
//!
//! 1. A family's current refresh token is [`RefreshUse::Fresh`] once; the token it
//!    replaced, presented again, is [`RefreshUse::Reused`] and revokes the family, its
//!    current token and its access tokens included. An unknown family, or another
//!    user's, buys nothing and harms no one.
//! 2. [`RevocationStore::revoke_family`] revokes every token of the family and of no
//!    other family, and remembers a family it never saw.
//! 3. [`RevocationStore::revoke_user`] revokes every family the user has begun, whatever
//!    the tokens' `iat` say, refreshes in flight included; other users and later
//!    logins are untouched. A token of a family the store does not know is revoked,
//!    whatever its `iat`: a family's record outlives its tokens, so an unknown family
//!    means the store lost its records (a restart, an emptied Redis), and revoked
//!    tokens must not come back with them.
//! 4. Concurrent uses of one refresh token give exactly one `Fresh`, and the family is
//!    revoked by the others.
//! 5. Beyond `max_per_user` live families, a new login revokes the user's oldest (by
//!    login, not by last use); revoked families do not count; other users are
//!    untouched.
//! 6. A record lasts until the deadline it was given, not until its token's `exp`: a
//!    token past its expiry but within the leeway is judged like any other, a refresh
//!    or a revocation moves the deadline later, and a user's revocation outlives the
//!    families it ended.
//!
//! The suite takes about three seconds (rule 6 waits for a deadline to pass), uses
//! random user and family ids, and leaves records behind until their deadlines (an
//! hour at most): run it on a store of its own (a fresh key prefix, a scratch
//! database) and clean up afterwards. Run it on a multi-threaded runtime: rule 4 starts
//! each use on its own thread, then runs their futures together, so that stores that
//! work when called and stores that work when polled both race for real.
//!
//! ```
//! use portcullis::jwt::revocation::conformance;
//! use portcullis::jwt::MemoryRevocationStore;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! conformance::run(&MemoryRevocationStore::default()).await;
//! # }
//! ```

use std::fmt::Debug;
use std::time::Duration;

use super::{RefreshUse, RevocationError, RevocationStore};
use crate::jwt::claims::now;
use crate::jwt::{Claims, TokenType};
use crate::keys::fill_random;

/// An hour: the deadline of every record the rules do not wait out.
const HOUR: i64 = 3_600;

/// Checks every rule against `store`; panics naming the first rule it breaks.
///
/// ```no_run
/// # async fn check(store: portcullis::jwt::MemoryRevocationStore) {
/// use portcullis::jwt::revocation::conformance;
///
/// // In a `#[tokio::test(flavor = "multi_thread")]` of the store's own crate:
/// conformance::run(&store).await;
/// # }
/// ```
pub async fn run<S: RevocationStore + ?Sized>(store: &S) {
    let check = Check::new(store);
    a_fresh_refresh_token_is_fresh_once_and_its_reuse_revokes_the_family(&check).await;
    revoking_a_family_revokes_it_and_nothing_else(&check).await;
    revoking_a_user_revokes_every_family_of_the_user_and_only_theirs(&check).await;
    concurrent_uses_of_one_refresh_token_give_exactly_one_fresh(&check).await;
    a_users_live_families_are_capped(&check).await;
    records_last_until_their_deadline_leeway_included(&check).await;
}

/// The store under test and this run's ids: users and families unique to the run, so
/// that runs sharing a store do not meet.
struct Check<'s, S: ?Sized> {
    store: &'s S,
    run: u64,
}

#[track_caller]
fn ok<T>(result: Result<T, RevocationError>, step: &str) -> T {
    result.unwrap_or_else(|error| {
        panic!("revocation store conformance: {step} failed: {error}");
    })
}

#[track_caller]
fn expect<T: PartialEq + Debug>(got: T, want: T, rule: &str) {
    assert!(
        got == want,
        "revocation store conformance: {rule}\n  expected {want:?}, got {got:?}"
    );
}

impl<'s, S: RevocationStore + ?Sized> Check<'s, S> {
    fn new(store: &'s S) -> Self {
        let mut bytes = [0u8; 4];
        fill_random(&mut bytes);
        // Numeric user ids, as `Jwt` writes them, well apart from real ones.
        let run = 1_000_000_000_000 + u64::from(u32::from_le_bytes(bytes)) * 1_000;
        Self { store, run }
    }

    fn user(&self, n: u64) -> String {
        (self.run + n).to_string()
    }

    fn family(&self, name: &str) -> String {
        format!("{}-{name}", self.run)
    }

    /// A token of `user`'s `family` issued at `iat`, expiring 15 minutes later.
    fn token(&self, user: u64, family: &str, iat: i64) -> Claims {
        Claims {
            sub: self.user(user),
            iat,
            nbf: iat,
            exp: iat + 900,
            jti: format!("{}-access", self.family(family)),
            iss: "portcullis".into(),
            aud: "portcullis-api".into(),
            typ: TokenType::Access,
            fam: self.family(family),
            auth_time: iat,
        }
    }

    async fn start(&self, user: u64, family: &str, jti: &str, until: i64, cap: usize) {
        let (user, family) = (self.user(user), self.family(family));
        let started = self.store.start_family(&user, &family, jti, until, cap);
        ok(started.await, "start_family");
    }

    async fn rotate(&self, user: u64, family: &str, presented: &str, next: &str) -> RefreshUse {
        self.rotate_until(user, family, presented, next, now() + HOUR)
            .await
    }

    async fn rotate_until(
        &self,
        user: u64,
        family: &str,
        presented: &str,
        next: &str,
        until: i64,
    ) -> RefreshUse {
        let (user, family) = (self.user(user), self.family(family));
        let rotated = self
            .store
            .rotate_refresh(&user, &family, presented, next, until);
        ok(rotated.await, "rotate_refresh")
    }

    async fn is_revoked(&self, token: &Claims) -> bool {
        ok(self.store.is_revoked(token).await, "is_revoked")
    }

    /// Whether an access token of `user`'s `family`, issued now, is revoked.
    async fn revoked(&self, user: u64, family: &str) -> bool {
        self.is_revoked(&self.token(user, family, now())).await
    }

    async fn revoke_family(&self, user: u64, family: &str, until: i64) {
        let (user, family) = (self.user(user), self.family(family));
        let revoked = self.store.revoke_family(&user, &family, until);
        ok(revoked.await, "revoke_family");
    }

    /// Revokes `user` as `Jwt::revoke_user` does: not before the next second.
    async fn revoke_user(&self, user: u64, until: i64) {
        let user = self.user(user);
        let revoked = self.store.revoke_user(&user, now() + 1, until);
        ok(revoked.await, "revoke_user");
    }
}

async fn a_fresh_refresh_token_is_fresh_once_and_its_reuse_revokes_the_family<
    S: RevocationStore + ?Sized,
>(
    check: &Check<'_, S>,
) {
    let until = now() + HOUR;
    check.start(1, "r", "r1", until, 10).await;
    check.start(1, "s", "s1", until, 10).await;
    expect(
        check.revoked(1, "r").await,
        false,
        "a new family's tokens are not revoked",
    );
    expect(
        check.rotate(1, "r", "r1", "r2").await,
        RefreshUse::Fresh,
        "a family's current refresh token is fresh",
    );
    expect(
        check.rotate(1, "r", "r2", "r3").await,
        RefreshUse::Fresh,
        "the refresh token a rotation made current is fresh in turn",
    );
    expect(
        check.revoked(1, "r").await,
        false,
        "rotating a family does not revoke its tokens",
    );
    expect(
        check.rotate(1, "r", "r1", "r4").await,
        RefreshUse::Reused,
        "a refresh token presented again after its rotation is reuse",
    );
    expect(
        check.revoked(1, "r").await,
        true,
        "reuse revokes every access token of the family",
    );
    expect(
        check.rotate(1, "r", "r3", "r5").await,
        RefreshUse::Revoked,
        "after reuse even the family's current refresh token is refused",
    );
    expect(
        check.rotate(1, "unknown", "x", "y").await,
        RefreshUse::Revoked,
        "a family the store does not know buys nothing",
    );
    expect(
        check.rotate(2, "s", "s1", "s2").await,
        RefreshUse::Revoked,
        "another user's family buys nothing",
    );
    expect(
        check.rotate(1, "s", "s1", "s2").await,
        RefreshUse::Fresh,
        "another user presenting a family neither revokes nor rotates it, and reuse in \
         one family leaves the user's other families alone",
    );
}

async fn revoking_a_family_revokes_it_and_nothing_else<S: RevocationStore + ?Sized>(
    check: &Check<'_, S>,
) {
    let until = now() + HOUR;
    check.start(10, "a", "a1", until, 10).await;
    check.start(10, "b", "b1", until, 10).await;
    check.revoke_family(10, "a", until).await;
    expect(
        check.revoked(10, "a").await,
        true,
        "revoke_family revokes the family's access tokens",
    );
    expect(
        check.rotate(10, "a", "a1", "a2").await,
        RefreshUse::Revoked,
        "revoke_family revokes the family's refresh token",
    );
    expect(
        check.revoked(10, "b").await,
        false,
        "revoke_family leaves the user's other families alone",
    );
    expect(
        check.rotate(10, "b", "b1", "b2").await,
        RefreshUse::Fresh,
        "revoke_family leaves the user's other refresh tokens alone",
    );
    check.revoke_family(10, "never-started", until).await;
    expect(
        check.revoked(10, "never-started").await,
        true,
        "a family revoked before the store knew it (a restart, an expiry) is remembered \
         as revoked",
    );
}

async fn revoking_a_user_revokes_every_family_of_the_user_and_only_theirs<
    S: RevocationStore + ?Sized,
>(
    check: &Check<'_, S>,
) {
    let until = now() + HOUR;
    check.start(20, "a", "a1", until, 10).await;
    check.start(20, "b", "b1", until, 10).await;
    check.start(21, "c", "c1", until, 10).await;
    let issued = now();
    check.revoke_user(20, until).await;
    for family in ["a", "b"] {
        expect(
            check.revoked(20, family).await,
            true,
            "revoke_user revokes every family the user began",
        );
        expect(
            check
                .is_revoked(&check.token(20, family, issued + 600))
                .await,
            true,
            "revoke_user revokes a family begun before it whatever the token's iat says \
             (another instance's clock may run ahead)",
        );
    }
    expect(
        check.rotate(20, "a", "a1", "a2").await,
        RefreshUse::Revoked,
        "a refresh that verified its token before revoke_user and rotates after loses",
    );
    expect(
        check
            .is_revoked(&check.token(20, "forgotten", issued - 10))
            .await,
        true,
        "a token of a family the store does not know, issued before revoke_user, is \
         revoked by the user's not-before",
    );
    expect(
        check
            .is_revoked(&check.token(20, "forgotten", issued + 600))
            .await,
        true,
        "a token of a family the store does not know is revoked whatever its iat: \
         a family outlives its tokens, so an unknown one means lost records, and a \
         store that lost its records cannot tell a revoked token from a good one",
    );
    expect(
        check.revoked(21, "c").await,
        false,
        "revoke_user leaves other users' families alone",
    );
    expect(
        check.rotate(21, "c", "c1", "c2").await,
        RefreshUse::Fresh,
        "revoke_user leaves other users' refresh tokens alone",
    );
    check.start(20, "after", "d1", until, 10).await;
    expect(
        check.revoked(20, "after").await,
        false,
        "a login after revoke_user is not revoked",
    );
    expect(
        check.rotate(20, "after", "d1", "d2").await,
        RefreshUse::Fresh,
        "a login after revoke_user refreshes",
    );
}

async fn concurrent_uses_of_one_refresh_token_give_exactly_one_fresh<
    S: RevocationStore + ?Sized,
>(
    check: &Check<'_, S>,
) {
    const USES: usize = 8;
    let until = now() + HOUR;
    let user = check.user(30);
    let runtime = tokio::runtime::Handle::try_current().ok();
    for round in 0..10 {
        let name = format!("race-{round}");
        check.start(30, &name, "same", until, 100).await;
        let family = check.family(&name);
        let nexts: Vec<String> = (0..USES).map(|i| format!("next-{i}")).collect();
        // Each use begins on its own thread, so that a store doing its work when
        // called races for real; then the futures run together, so that a store
        // doing it when polled races too.
        let uses = std::thread::scope(|scope| {
            let started: Vec<_> = nexts
                .iter()
                .map(|next| {
                    let (runtime, user, family) = (runtime.clone(), &user, &family);
                    scope.spawn(move || {
                        let _entered = runtime.as_ref().map(|r| r.enter());
                        check
                            .store
                            .rotate_refresh(user, family, "same", next, until)
                    })
                })
                .collect();
            started
                .into_iter()
                .map(|thread| thread.join().expect("a use panicked"))
                .collect::<Vec<_>>()
        });
        let outcomes = futures_util::future::join_all(uses).await;
        let fresh = outcomes
            .into_iter()
            .map(|outcome| ok(outcome, "rotate_refresh"))
            .filter(|&outcome| outcome == RefreshUse::Fresh)
            .count();
        expect(
            fresh,
            1,
            &format!("{USES} concurrent uses of one refresh token give exactly one Fresh (round {round})"),
        );
        expect(
            check.revoked(30, &name).await,
            true,
            "the losing concurrent uses are reuse: the family is revoked",
        );
    }
}

async fn a_users_live_families_are_capped<S: RevocationStore + ?Sized>(check: &Check<'_, S>) {
    const CAP: usize = 3;
    let until = now() + HOUR;
    check.start(41, "other", "o1", until, CAP).await;
    for i in 0..5 {
        check
            .start(40, &format!("f{i}"), &format!("j{i}"), until, CAP)
            .await;
    }
    for i in 0..5 {
        let family = format!("f{i}");
        expect(
            check.revoked(40, &family).await,
            i < 2,
            &format!(
                "with a cap of {CAP}, the 5th login leaves the newest 3 of 5 live (login {i})"
            ),
        );
    }
    expect(
        check.rotate(40, "f0", "j0", "j0b").await,
        RefreshUse::Revoked,
        "a family revoked by the cap refuses its refresh token",
    );
    expect(
        check.revoked(41, "other").await,
        false,
        "the cap is per user: another user's logins are untouched",
    );

    // A revoked family does not count: revoking f3 makes room for one more.
    check.revoke_family(40, "f3", until).await;
    check.start(40, "f5", "j5", until, CAP).await;
    expect(
        check.revoked(40, "f2").await,
        false,
        "revoked families do not count towards the cap",
    );

    // Oldest by login, not by last use: refreshing f2 does not save it.
    expect(
        check.rotate(40, "f2", "j2", "j2b").await,
        RefreshUse::Fresh,
        "a live family under the cap refreshes",
    );
    check.start(40, "f6", "j6", until, CAP).await;
    expect(
        check.revoked(40, "f2").await,
        true,
        "beyond the cap the oldest login goes, however recently it refreshed",
    );
    for family in ["f4", "f5", "f6"] {
        expect(
            check.revoked(40, family).await,
            false,
            "beyond the cap only the oldest login goes",
        );
    }
}

/// Sleeps until `millis` past the start of Unix second `second`.
async fn sleep_until_second(second: i64, millis: i64) {
    let target = second * 1_000 + millis;
    let wait = target - chrono::Utc::now().timestamp_millis();
    if let Ok(wait) = u64::try_from(wait) {
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

async fn records_last_until_their_deadline_leeway_included<S: RevocationStore + ?Sized>(
    check: &Check<'_, S>,
) {
    let start = now();
    let soon = start + 2;
    let later = start + HOUR;

    // Past its expiry but within the leeway, a token still verifies: the store must
    // still judge it.
    check.start(50, "expired", "e1", later, 10).await;
    check.revoke_family(50, "expired", later).await;
    let past_expiry = Claims {
        exp: now() - 20,
        ..check.token(50, "expired", now() - 900)
    };
    expect(
        check.is_revoked(&past_expiry).await,
        true,
        "a revoked family's token past its exp (but within the leeway) is still revoked",
    );

    check.start(51, "live", "l1", soon, 10).await;
    check.start(51, "revoked", "v1", soon, 10).await;
    check.revoke_family(51, "revoked", soon).await;
    check.revoke_family(51, "unknown", soon).await;
    check.start(52, "rotated", "t1", soon, 10).await;
    expect(
        check.rotate_until(52, "rotated", "t1", "t2", later).await,
        RefreshUse::Fresh,
        "a family's current refresh token is fresh",
    );
    check.start(52, "revoked-later", "w1", soon, 10).await;
    check.revoke_family(52, "revoked-later", later).await;
    check.start(53, "before", "b1", soon, 10).await;
    let issued = now();
    check.revoke_user(53, later).await;

    // Before the deadline: everything is still known.
    sleep_until_second(soon - 1, 300).await;
    expect(
        check.revoked(51, "revoked").await,
        true,
        "a revoked family stays revoked until its deadline",
    );
    expect(
        check.revoked(51, "unknown").await,
        true,
        "a family revoked unknown stays revoked until its deadline",
    );
    expect(
        check.rotate_until(51, "live", "l1", "l2", soon).await,
        RefreshUse::Fresh,
        "a family is kept until its deadline",
    );

    // After the first deadline: what was moved later is still there.
    sleep_until_second(soon, 500).await;
    expect(
        check.rotate(52, "rotated", "t2", "t3").await,
        RefreshUse::Fresh,
        "a refresh keeps its family until the deadline it gives",
    );
    expect(
        check.revoked(52, "revoked-later").await,
        true,
        "revoke_family keeps the family revoked until the deadline it gives",
    );
    expect(
        check.is_revoked(&check.token(53, "before", issued)).await,
        true,
        "revoke_user is remembered until its deadline, after the families it ended",
    );
}
