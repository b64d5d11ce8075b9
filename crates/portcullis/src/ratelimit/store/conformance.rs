//! The rules every [`RateLimitStore`] keeps, as one suite any store can be run through
//! (feature `test-util`).
//!
//! The GCRA exists more than once — `governor` in
//! [`MemoryRateLimitStore`](super::MemoryRateLimitStore), a Lua
//! script in [`RedisRateLimitStore`](super::RedisRateLimitStore), and whatever a
//! third-party store runs — and the layer must not be able to tell them apart. [`run`]
//! drives the same sequence of checks through the store it is given and compares every
//! answer with the quota's arithmetic ([`Quota::interval`], [`Decision::gcra_allowed`],
//! [`Decision::gcra_refused`]):
//!
//! - a fresh key admits exactly its burst, `remaining` counting down to 0, for address
//!   keys and username keys alike; the next check is refused with `remaining` 0 and a
//!   `retry_after` of at most one interval;
//! - refused checks use nothing up; a request comes back once `retry_after` has passed,
//!   and only one; a bucket left idle holds its burst again, and no more;
//! - keys are counted apart, an address key and a username key of the same name too;
//! - fifty checks of one key running at once admit exactly the burst; no answer
//!   says more is left than is, and none says less by more than one (governor, in
//!   the memory store, reads the clock before its atomic step, so a check that read
//!   it a moment before another's can land after it and count one less);
//! - a quota with a zero size or period is [`RateLimitStoreError::InvalidQuota`].
//!
//! It panics with `rate-limit store conformance: …` and the broken rule on the first
//! answer that differs. Times are compared within 500 ms, since a store's clock runs
//! on between two checks (and Redis's is not the test's). The suite sleeps for about
//! two seconds in all, on short quotas; it needs a Tokio runtime with its timer on,
//! and runs its concurrent checks as tasks, in parallel on a multi-thread runtime
//! (`#[tokio::test(flavor = "multi_thread")]`). Its keys start with
//! `conformance-{random}:`, so that it can run on a store in use; they are left to
//! expire as the store expires any full bucket.
//!
//! The trait has no clock to inject and no way to forget a key, so neither is tested:
//! time passes for real.
//!
//! ```
//! use portcullis::ratelimit::store::conformance;
//! use portcullis::ratelimit::MemoryRateLimitStore;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! // In a store's own tests: `#[tokio::test(flavor = "multi_thread")]`.
//! conformance::run(MemoryRateLimitStore::new()).await;
//! # });
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{RateLimitStore, RateLimitStoreError};
use crate::ratelimit::key::{store_key, KeyKind};
use crate::ratelimit::{Decision, Quota};

/// How far a store's times may be from the arithmetic's: the time that passes between
/// two checks on a loaded machine, and a remote clock.
const SLACK: Duration = Duration::from_millis(500);

/// How long past a promised time the suite waits before it holds the store to it.
const MARGIN: Duration = Duration::from_millis(30);

/// The login limit: long enough that no request comes back while a rule runs.
const SLOW: Quota = Quota::per_minute(10);

/// One request back every 300 ms: short enough to wait for.
const FAST: Quota = Quota::new(2, Duration::from_millis(600));

/// How many checks race for one key.
const RACERS: usize = 50;

/// Runs every rule against `store`; panics on the first one it breaks.
///
/// See the [module docs](self) for the rules, the time it takes and the runtime it
/// needs.
pub async fn run<S: RateLimitStore>(store: S) {
    let store = Arc::new(store);
    let keys = Keys::new();
    for kind in [KeyKind::Ip, KeyKind::User] {
        exact_burst_then_refused(&*store, &keys.of(kind, "burst"), &SLOW).await;
    }
    keys_are_counted_apart(&*store, &keys).await;
    refusals_use_nothing_and_requests_come_back(&*store, &keys.of(KeyKind::Ip, "refill")).await;
    concurrent_checks_admit_exactly_the_burst(&store, &keys.of(KeyKind::User, "race")).await;
    invalid_quotas_are_refused(&*store, &keys.of(KeyKind::Ip, "invalid")).await;
}

/// Keys of one run: `conformance-{random}:{kind}:{name}`, as the layer shapes them.
struct Keys {
    group: String,
}

impl Keys {
    fn new() -> Self {
        Self {
            group: format!("conformance-{:032x}", rand::random::<u128>()),
        }
    }

    fn of(&self, kind: KeyKind, name: &str) -> String {
        store_key(&self.group, kind, name)
    }
}

/// The panic of a broken rule.
macro_rules! broken {
    ($rule:expr, $($detail:tt)+) => {
        panic!("rate-limit store conformance: {}: {}", $rule, format_args!($($detail)+))
    };
}

async fn check<S: RateLimitStore + ?Sized>(store: &S, key: &str, quota: &Quota) -> Decision {
    match store.check(key, quota).await {
        Ok(decision) => decision,
        Err(error) => broken!("every valid check is answered", "{key}: {error}"),
    }
}

fn close(actual: Duration, expected: Duration) -> bool {
    actual.abs_diff(expected) <= SLACK
}

/// Asserts an allowed answer that leaves `remaining`, with GCRA's reset time.
fn assert_allowed(rule: &str, decision: &Decision, quota: &Quota, remaining: u32) {
    let expected = Decision::gcra_allowed(quota, remaining);
    let ok = decision.allowed
        && decision.limit == expected.limit
        && decision.remaining == expected.remaining
        && decision.retry_after.is_none()
        && decision.reset_after <= expected.reset_after
        && close(decision.reset_after, expected.reset_after);
    if !ok {
        broken!(
            rule,
            "expected {expected:?} (times within {SLACK:?}), got {decision:?}"
        );
    }
}

/// Asserts a refusal whose retry comes within one interval, with GCRA's reset time;
/// returns the retry.
fn assert_refused(rule: &str, decision: &Decision, quota: &Quota) -> Duration {
    let Some(retry) = decision.retry_after.filter(|_| !decision.allowed) else {
        broken!(
            rule,
            "expected a refusal with a retry time, got {decision:?}"
        );
    };
    let expected = Decision::gcra_refused(quota, retry);
    let ok = decision.limit == expected.limit
        && decision.remaining == 0
        && retry <= quota.interval()
        && close(decision.reset_after, expected.reset_after);
    if !ok {
        broken!(
            rule,
            "expected a retry of at most {:?} and {expected:?}, got {decision:?}",
            quota.interval()
        );
    }
    retry
}

/// Spends a fresh key's burst, one check at a time, then asserts the next is refused.
async fn spend<S: RateLimitStore + ?Sized>(rule: &str, store: &S, key: &str, quota: &Quota) {
    for used in 1..=quota.burst() {
        let decision = check(store, key, quota).await;
        assert_allowed(rule, &decision, quota, quota.burst() - used);
    }
}

async fn exact_burst_then_refused<S: RateLimitStore + ?Sized>(store: &S, key: &str, quota: &Quota) {
    let rule = format!("a fresh key ({key}) admits exactly its burst");
    spend(&rule, store, key, quota).await;
    let refused = check(store, key, quota).await;
    let retry = assert_refused(&rule, &refused, quota);
    // The burst was spent at once: the first request comes back one interval after
    // the first check, which was a moment ago.
    if !close(retry, quota.interval()) {
        broken!(
            rule,
            "retry after {retry:?}, expected about {:?}",
            quota.interval()
        );
    }
}

async fn keys_are_counted_apart<S: RateLimitStore + ?Sized>(store: &S, keys: &Keys) {
    let rule = "keys are counted apart";
    let spent = keys.of(KeyKind::Ip, "apart");
    spend(rule, store, &spent, &SLOW).await;
    for other in [
        keys.of(KeyKind::Ip, "apart2"),
        keys.of(KeyKind::User, "apart"),
    ] {
        let decision = check(store, &other, &SLOW).await;
        assert_allowed(rule, &decision, &SLOW, SLOW.burst() - 1);
    }
    assert_refused(rule, &check(store, &spent, &SLOW).await, &SLOW);
}

async fn refusals_use_nothing_and_requests_come_back<S: RateLimitStore + ?Sized>(
    store: &S,
    key: &str,
) {
    let rule = "refused checks use nothing; one request comes back per interval";
    spend(rule, store, key, &FAST).await;
    let refused = check(store, key, &FAST).await;
    let refused_at = Instant::now();
    let retry = assert_refused(rule, &refused, &FAST);
    for _ in 0..3 {
        assert_refused(rule, &check(store, key, &FAST).await, &FAST);
    }
    // Well before the retry time, still refused.
    tokio::time::sleep(retry / 3).await;
    assert_refused(rule, &check(store, key, &FAST).await, &FAST);
    // Once it has passed: one request, and only one.
    tokio::time::sleep_until((refused_at + retry + MARGIN).into()).await;
    assert_allowed(rule, &check(store, key, &FAST).await, &FAST, 0);
    assert_refused(rule, &check(store, key, &FAST).await, &FAST);

    let rule = "an idle bucket holds its burst again, and no more";
    tokio::time::sleep(FAST.period() * 2).await;
    spend(rule, store, key, &FAST).await;
    assert_refused(rule, &check(store, key, &FAST).await, &FAST);
}

async fn concurrent_checks_admit_exactly_the_burst<S: RateLimitStore>(store: &Arc<S>, key: &str) {
    let rule = format!("{RACERS} checks of one key at once admit exactly the burst");
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            let key = key.to_owned();
            tokio::spawn(async move { store.check(&key, &SLOW).await })
        })
        .collect();
    let mut remaining = Vec::new();
    for racer in racers {
        match racer.await {
            Ok(Ok(decision)) if decision.allowed => remaining.push(decision.remaining),
            Ok(Ok(_refused)) => {}
            Ok(Err(error)) => broken!(rule, "{error}"),
            Err(panicked) => broken!(rule, "a check panicked: {panicked}"),
        }
    }
    // The most left first: after k + 1 admitted checks, burst - 1 - k are left.
    remaining.sort_unstable_by(|a, b| b.cmp(a));
    let expected: Vec<u32> = (0..SLOW.burst()).rev().collect();
    let each_within_one_below = remaining.len() == expected.len()
        && remaining
            .iter()
            .zip(&expected)
            .all(|(&said, &left)| said <= left && said + 1 >= left);
    if !each_within_one_below {
        broken!(
            rule,
            "admitted {} leaving {remaining:?}, expected {} leaving {expected:?} (or one less)",
            remaining.len(),
            SLOW.burst()
        );
    }
}

async fn invalid_quotas_are_refused<S: RateLimitStore + ?Sized>(store: &S, key: &str) {
    let rule = "a quota with a zero size or period is refused";
    for quota in [
        Quota::new(0, Duration::from_secs(60)),
        Quota::new(5, Duration::ZERO),
    ] {
        match store.check(key, &quota).await {
            Err(RateLimitStoreError::InvalidQuota { burst, period })
                if burst == quota.burst() && period == quota.period() => {}
            other => broken!(rule, "{quota:?}: expected InvalidQuota, got {other:?}"),
        }
    }
}
