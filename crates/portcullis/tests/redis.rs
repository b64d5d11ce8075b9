//! The Redis stores against a real server: sessions, GCRA rate limits, revocations
//! and per-account failure counts,
//! their atomicity across two clients ("instances"), TTLs on every key, and failing
//! closed when Redis is absent, stalled or drops the connection.
//!
//! Set `PORTCULLIS_TEST_REDIS` (e.g. `redis://127.0.0.1:6379`); without it these tests
//! print `SKIPPED` and pass, unless `PORTCULLIS_REQUIRE_REDIS` is set. Each test uses
//! a random key prefix and deletes its keys at the end.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::cmd;
use fred::interfaces::{ClientLike, KeysInterface};
use portcullis::account::{AccountThrottle, MemoryThrottleStore, ThrottleConfig, ThrottleError};
use portcullis::jwt::{Claims, RefreshUse, RevocationStore, TokenType};
use portcullis::ratelimit::{MemoryRateLimitStore, Quota, RateLimitStore};
use portcullis::redis::{RedisConnectError, RedisConnection};
use portcullis::session::{SessionRecord, SessionStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

use support::redis::{backend, clean_up, keys_of, redis_url};

/// A second client ("another instance") on the same prefix.
async fn second_instance(first: &RedisConnection) -> RedisConnection {
    let url = redis_url().unwrap();
    RedisConnection::connect(&url, first.prefix())
        .await
        .unwrap()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

fn record(user_id: Option<i64>, theme: &str) -> SessionRecord {
    serde_json::from_value(serde_json::json!({
        "user_id": user_id,
        "csrf_secret": "c2VjcmV0",
        "created_at": now_ms(),
        "last_seen": now_ms(),
        "data": { "theme": theme },
    }))
    .unwrap()
}

fn claims(sub: &str, jti: &str, fam: &str, iat: i64) -> Claims {
    Claims {
        sub: sub.to_owned(),
        iat,
        nbf: iat,
        exp: iat + 900,
        jti: jti.to_owned(),
        iss: "portcullis".to_owned(),
        aud: "portcullis-api".to_owned(),
        typ: TokenType::Access,
        fam: fam.to_owned(),
        auth_time: iat,
    }
}

#[tokio::test]
async fn sessions_round_trip_expire_and_delete() {
    let Some(redis) = backend().await else { return };
    let store = redis.sessions();
    let later = now_ms() + 60_000;

    let r = record(Some(7), "dark");
    store.save("k1", &r, later).await.unwrap();
    assert_eq!(store.load("k1").await.unwrap(), Some(r.clone()));
    assert_eq!(store.load("missing").await.unwrap(), None);

    // Saving again replaces the record.
    let r2 = record(Some(7), "light");
    store.save("k1", &r2, later).await.unwrap();
    assert_eq!(store.load("k1").await.unwrap(), Some(r2));

    // An anonymous session has no user index.
    store.save("anon", &record(None, "x"), later).await.unwrap();
    assert!(store.load("anon").await.unwrap().is_some());

    // A short TTL, to the millisecond.
    store
        .save("short", &record(Some(7), "x"), now_ms() + 300)
        .await
        .unwrap();
    assert!(store.load("short").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.load("short").await.unwrap().is_none());

    // Already expired: never returned.
    store
        .save("past", &record(Some(7), "x"), now_ms() - 1)
        .await
        .unwrap();
    assert!(store.load("past").await.unwrap().is_none());

    store.delete("k1").await.unwrap();
    assert!(store.load("k1").await.unwrap().is_none());
    store.delete("never-existed").await.unwrap();

    // Something that is not a session record under a session key is an anonymous
    // session, not an error.
    let _: () = redis
        .client()
        .set(
            format!("{}:sess:garbage", redis.prefix()),
            "not json",
            Some(fred::types::Expiration::PX(60_000)),
            None,
            false,
        )
        .await
        .unwrap();
    assert!(store.load("garbage").await.unwrap().is_none());

    clean_up(&redis).await;
}

#[tokio::test]
async fn deleting_a_users_sessions_spares_the_current_one_and_other_users() {
    let Some(redis) = backend().await else { return };
    let store = redis.sessions();
    let later = now_ms() + 60_000;
    for key in ["a1", "a2", "a3"] {
        store.save(key, &record(Some(1), key), later).await.unwrap();
    }
    store
        .save("b1", &record(Some(2), "b1"), later)
        .await
        .unwrap();
    // One of user 1's sessions already ended: it must not be counted.
    store
        .save("a4", &record(Some(1), "a4"), later)
        .await
        .unwrap();
    store.delete("a4").await.unwrap();
    store
        .save("a5", &record(Some(1), "a5"), now_ms() + 100)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(store.delete_user(1, Some("a2")).await.unwrap(), 2);
    assert!(store.load("a1").await.unwrap().is_none());
    assert!(store.load("a2").await.unwrap().is_some());
    assert!(store.load("a3").await.unwrap().is_none());
    assert!(store.load("b1").await.unwrap().is_some());

    // The index keeps only the spared session.
    let members: Vec<String> = redis
        .client()
        .custom(
            cmd!("SMEMBERS"),
            vec![format!("{}:sessuser:1", redis.prefix())],
        )
        .await
        .unwrap();
    assert_eq!(members, vec!["a2".to_owned()]);

    // Without an exception every session goes; a user without sessions has none.
    assert_eq!(store.delete_user(1, None).await.unwrap(), 1);
    assert!(store.load("a2").await.unwrap().is_none());
    assert_eq!(store.delete_user(3, None).await.unwrap(), 0);
    assert_eq!(store.delete_user(2, None).await.unwrap(), 1);

    clean_up(&redis).await;
}

/// Lua numbers are doubles: 2^53 and 2^53 + 1 are one number to `cjson`. Ending or
/// listing one user's sessions must still never take the other for them.
#[tokio::test]
async fn users_whose_ids_a_double_cannot_tell_apart_stay_apart() {
    let Some(redis) = backend().await else { return };
    let store = redis.sessions();
    // The victim's id reads as the attacker's once it is a double.
    let (victim, attacker) = ((1_i64 << 53) + 1, 1_i64 << 53);
    let later = now_ms() + 60_000;
    store
        .save("victim", &record(Some(victim), "v"), later)
        .await
        .unwrap();
    store
        .save("attacker", &record(Some(attacker), "a"), later)
        .await
        .unwrap();
    assert!(!store.delete_of_user(attacker, "victim").await.unwrap());
    assert!(store.load("victim").await.unwrap().is_some());
    let listed = store.list_user(attacker).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|(key, _)| key.as_str())
            .collect::<Vec<_>>(),
        ["attacker"]
    );
    assert!(store.delete_of_user(victim, "victim").await.unwrap());
    assert!(store.load("victim").await.unwrap().is_none());
    assert!(store.load("attacker").await.unwrap().is_some());

    clean_up(&redis).await;
}

#[tokio::test]
async fn gcra_admits_exactly_the_burst_like_the_memory_store() {
    let Some(redis) = backend().await else { return };
    let limiter = redis.rate_limits();
    let memory = MemoryRateLimitStore::new();

    // The demo's login limit: 10 a minute.
    let quota = Quota::per_minute(10);
    let mut redis_answers = Vec::new();
    let mut memory_answers = Vec::new();
    for _ in 0..15 {
        redis_answers.push(limiter.check("auth:user:alice", &quota).await.unwrap());
        memory_answers.push(memory.check("auth:user:alice", &quota).await.unwrap());
    }
    let admitted = redis_answers.iter().filter(|d| d.allowed).count();
    assert_eq!(admitted, 10);
    for (i, decision) in redis_answers.iter().enumerate() {
        assert_eq!(decision.limit, 10);
        if i < 10 {
            assert!(decision.allowed, "{i}: {decision:?}");
            assert_eq!(decision.remaining, 9 - i as u32, "{i}: {decision:?}");
            assert!(decision.retry_after.is_none());
        } else {
            assert!(!decision.allowed, "{i}: {decision:?}");
            assert_eq!(decision.remaining, 0);
            let retry = decision.retry_after.unwrap();
            assert!(
                retry > Duration::from_millis(5_500) && retry <= Duration::from_secs(6),
                "{retry:?}"
            );
            // The next request fits after `retry`, the bucket is full 9 intervals later.
            let reset = decision.reset_after;
            assert!(reset >= retry + Duration::from_secs(54), "{reset:?}");
            assert!(reset <= Duration::from_secs(60), "{reset:?}");
        }
    }
    // The same answers as the in-process store (times aside, which differ by the
    // microseconds between the calls).
    let shape = |d: &portcullis::ratelimit::Decision| (d.allowed, d.remaining, d.limit);
    assert_eq!(
        redis_answers.iter().map(shape).collect::<Vec<_>>(),
        memory_answers.iter().map(shape).collect::<Vec<_>>()
    );
    assert_eq!(redis_answers[0].reset_after, Duration::from_secs(6));

    // Keys are separate buckets.
    assert!(
        limiter
            .check("auth:user:bob", &quota)
            .await
            .unwrap()
            .allowed
    );

    // Refilling: 10 per 600 ms is one request every 60 ms.
    let fast = Quota::new(10, Duration::from_millis(600));
    for _ in 0..10 {
        assert!(limiter.check("fast", &fast).await.unwrap().allowed);
    }
    let refused = limiter.check("fast", &fast).await.unwrap();
    assert!(!refused.allowed);
    tokio::time::sleep(refused.retry_after.unwrap() + Duration::from_millis(10)).await;
    assert!(limiter.check("fast", &fast).await.unwrap().allowed);
    assert!(!limiter.check("fast", &fast).await.unwrap().allowed);

    // A zero quota is a configuration error, not a request.
    assert!(matches!(
        limiter
            .check("x", &Quota::new(0, Duration::from_secs(1)))
            .await,
        Err(portcullis::ratelimit::RateLimitStoreError::InvalidQuota { .. })
    ));

    clean_up(&redis).await;
}

#[tokio::test]
async fn two_instances_checking_concurrently_admit_exactly_the_burst() {
    let Some(one) = backend().await else { return };
    let two = second_instance(&one).await;
    let quota = Quota::per_minute(10);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let limiter = if i % 2 == 0 {
            one.rate_limits()
        } else {
            two.rate_limits()
        };
        tasks.push(tokio::spawn(async move {
            limiter.check("auth:ip:192.0.2.7", &quota).await.unwrap()
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        if task.await.unwrap().allowed {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10);
    clean_up(&one).await;
}

#[tokio::test]
async fn revocations_by_family_and_user() {
    let Some(redis) = backend().await else { return };
    let store = redis.revocations();
    let now = now_s();
    let until = now + 3_600;

    store
        .start_family("42", "fam-1", "r1", until, 10)
        .await
        .unwrap();
    let token = claims("42", "jti-1", "fam-1", now);
    assert!(!store.is_revoked(&token).await.unwrap());
    // A token naming another user's family is not that family's.
    assert!(store
        .is_revoked(&claims("43", "jti-1", "fam-1", now))
        .await
        .unwrap());

    store.revoke_family("42", "fam-1", until).await.unwrap();
    assert!(store.is_revoked(&token).await.unwrap());
    // A family this store never saw is remembered as revoked too.
    store
        .revoke_family("42", "fam-unknown", until)
        .await
        .unwrap();
    assert!(store
        .is_revoked(&claims("42", "x", "fam-unknown", now))
        .await
        .unwrap());

    // Revoking the user: every family begun before, whatever the tokens' clocks say.
    store
        .start_family("42", "fam-2", "r2", until, 10)
        .await
        .unwrap();
    store
        .start_family("43", "fam-43", "r43", until, 10)
        .await
        .unwrap();
    store.revoke_user("42", now, until).await.unwrap();
    assert!(store
        .is_revoked(&claims("42", "a", "fam-2", now + 600))
        .await
        .unwrap());
    assert!(!store
        .is_revoked(&claims("43", "d", "fam-43", now - 10))
        .await
        .unwrap());
    // A family the store does not know is refused, whoever and whenever.
    for (user, iat) in [("42", now - 10), ("42", now + 600), ("43", now - 10)] {
        assert!(store
            .is_revoked(&claims(user, "c", "gone", iat))
            .await
            .unwrap());
    }
    // A login after the revocation is good.
    store
        .start_family("42", "fam-3", "r3", until, 10)
        .await
        .unwrap();
    assert!(!store
        .is_revoked(&claims("42", "e", "fam-3", now))
        .await
        .unwrap());

    clean_up(&redis).await;
}

/// Redis restarted without its data (no persistence, `FLUSHALL`, keys evicted under
/// memory pressure): a token revoked before must not verify after. Found by the soak
/// with faults (`bench/soak.sh --faults`), where revoked tokens came back once Redis
/// restarted empty.
#[tokio::test]
async fn revoked_tokens_stay_revoked_when_redis_loses_its_data() {
    let Some(redis) = backend().await else { return };
    let store = redis.revocations();
    let now = now_s();
    let until = now + 3_600;
    store
        .start_family("7", "stolen", "r1", until, 10)
        .await
        .unwrap();
    store
        .start_family("8", "ended-by-logout", "r2", until, 10)
        .await
        .unwrap();
    let stolen = claims("7", "a1", "stolen", now);
    let logged_out = claims("8", "a2", "ended-by-logout", now);
    store.revoke_family("7", "stolen", until).await.unwrap();
    store.revoke_user("8", now + 1, until).await.unwrap();
    assert!(store.is_revoked(&stolen).await.unwrap());
    assert!(store.is_revoked(&logged_out).await.unwrap());

    // Every record gone, as after a restart of a Redis that keeps nothing on disk.
    clean_up(&redis).await;
    assert!(keys_of(&redis).await.is_empty());
    assert!(
        store.is_revoked(&stolen).await.unwrap(),
        "a revoked family came back when Redis lost its records"
    );
    assert!(
        store.is_revoked(&logged_out).await.unwrap(),
        "a revoked user's token came back when Redis lost its records"
    );
    // A refresh of a lost family buys nothing either: the client signs in again.
    assert_eq!(
        store
            .rotate_refresh("7", "stolen", "r1", "r3", until)
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    clean_up(&redis).await;
}

#[tokio::test]
async fn a_refresh_token_is_fresh_once_and_its_reuse_revokes_the_family() {
    let Some(redis) = backend().await else { return };
    let store = redis.revocations();
    let until = now_s() + 3_600;
    store
        .start_family("5", "fam-r", "r1", until, 10)
        .await
        .unwrap();
    store
        .start_family("5", "fam-s", "s1", until, 10)
        .await
        .unwrap();

    assert_eq!(
        store
            .rotate_refresh("5", "fam-r", "r1", "r2", until)
            .await
            .unwrap(),
        RefreshUse::Fresh
    );
    assert_eq!(
        store
            .rotate_refresh("5", "fam-r", "r2", "r3", until)
            .await
            .unwrap(),
        RefreshUse::Fresh
    );
    let access = claims("5", "acc", "fam-r", now_s());
    assert!(!store.is_revoked(&access).await.unwrap());

    // Replaying r1: reuse, and every token of the family is revoked.
    assert_eq!(
        store
            .rotate_refresh("5", "fam-r", "r1", "r4", until)
            .await
            .unwrap(),
        RefreshUse::Reused
    );
    assert!(store.is_revoked(&access).await.unwrap());
    // Even the current token is now refused: its family is gone.
    assert_eq!(
        store
            .rotate_refresh("5", "fam-r", "r3", "r5", until)
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    // An unknown family, or another user's, buys nothing.
    assert_eq!(
        store
            .rotate_refresh("5", "nope", "x", "y", until)
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    assert_eq!(
        store
            .rotate_refresh("6", "fam-s", "s1", "s2", until)
            .await
            .unwrap(),
        RefreshUse::Revoked
    );
    // Another family is untouched.
    assert_eq!(
        store
            .rotate_refresh("5", "fam-s", "s1", "s2", until)
            .await
            .unwrap(),
        RefreshUse::Fresh
    );

    clean_up(&redis).await;
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_from_two_instances_give_one_fresh() {
    let Some(one) = backend().await else { return };
    let two = second_instance(&one).await;
    let until = now_s() + 3_600;
    for round in 0..10 {
        let family = format!("fam-{round}");
        one.revocations()
            .start_family("1", &family, "same-jti", until, 100)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..6 {
            let store = if i % 2 == 0 {
                one.revocations()
            } else {
                two.revocations()
            };
            let family = family.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .rotate_refresh("1", &family, "same-jti", &format!("next-{i}"), until)
                    .await
                    .unwrap()
            }));
        }
        let mut fresh = 0;
        for task in tasks {
            if task.await.unwrap() == RefreshUse::Fresh {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "round {round}");
        // The others were reuse: the family is revoked.
        assert!(one
            .revocations()
            .is_revoked(&claims("1", "x", &family, now_s()))
            .await
            .unwrap());
    }
    clean_up(&one).await;
}

#[tokio::test]
async fn every_key_has_a_ttl() {
    let Some(redis) = backend().await else { return };
    let until = now_s() + 3_600;
    let sessions = redis.sessions();
    sessions
        .save("s1", &record(Some(11), "x"), now_ms() + 60_000)
        .await
        .unwrap();
    sessions
        .save("s2", &record(None, "x"), now_ms() + 60_000)
        .await
        .unwrap();
    redis
        .rate_limits()
        .check("ttl", &Quota::per_minute(5))
        .await
        .unwrap();
    let revocations = redis.revocations();
    revocations
        .start_family("11", "f2", "r", until, 10)
        .await
        .unwrap();
    revocations.revoke_family("11", "f", until).await.unwrap();
    revocations.revoke_user("11", now_s(), until).await.unwrap();
    revocations
        .start_family("11", "f3", "r", until, 10)
        .await
        .unwrap();
    AccountThrottle::shared(
        "sign-in",
        ThrottleConfig::default(),
        Arc::new(redis.account_throttles()),
    )
    .failure("name:alice")
    .await
    .unwrap();

    let keys = keys_of(&redis).await;
    let prefix = redis.prefix();
    for kind in ["sess", "sessuser", "rl", "fam", "user", "ufam", "throttle"] {
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("{prefix}:{kind}:"))),
            "no {kind} key in {keys:?}"
        );
    }
    for key in &keys {
        let pttl: i64 = redis.client().pttl(key).await.unwrap();
        assert!(pttl > 0, "{key} has PTTL {pttl}");
    }
    // Revocations last until the deadline given, no longer.
    let pttl: i64 = redis
        .client()
        .pttl(format!("{prefix}:fam:f"))
        .await
        .unwrap();
    assert!(pttl <= 3_601_000 && pttl > 3_590_000, "{pttl}");
    // A bucket lives until it is full again: one interval (12 s) after one request.
    let pttl: i64 = redis
        .client()
        .pttl(format!("{prefix}:rl:ttl"))
        .await
        .unwrap();
    assert!(pttl <= 12_000 && pttl > 11_000, "{pttl}");
    // A failure count lasts `forget_after` (24 hours) after the last failure.
    let pttl: i64 = redis
        .client()
        .pttl(format!("{prefix}:throttle:sign-in:name:alice"))
        .await
        .unwrap();
    assert!(pttl <= 86_400_000 && pttl > 86_390_000, "{pttl}");

    clean_up(&redis).await;
}

/// The delays of [`ThrottleConfig::delay_after`], whichever store counts.
#[tokio::test]
async fn account_delays_in_redis_match_the_memory_store_and_reach_every_instance() {
    let Some(redis) = backend().await else { return };
    let other = second_instance(&redis).await;
    let config = ThrottleConfig {
        free_failures: 2,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(5),
        ..ThrottleConfig::default()
    };
    let memory = AccountThrottle::shared("t", config, Arc::new(MemoryThrottleStore::new(100)));
    let here = AccountThrottle::shared("t", config, Arc::new(redis.account_throttles()));
    let there = AccountThrottle::shared("t", config, Arc::new(other.account_throttles()));

    for throttle in [&memory, &here] {
        assert!(!throttle.failure("user:1").await.unwrap());
        assert!(!throttle.failure("user:1").await.unwrap());
        assert!(throttle.check("user:1").await.is_ok());
        // The third failure starts a delay of base × 2 = 400 ms.
        assert!(throttle.failure("user:1").await.unwrap());
    }
    let Err(ThrottleError::Wait(wait)) = there.check("user:1").await else {
        panic!("the other instance does not see the delay");
    };
    assert!(
        wait > Duration::from_millis(200) && wait <= Duration::from_millis(400),
        "{wait:?}"
    );
    // The fourth failure (from the other instance) doubles it.
    assert!(!there.failure("user:1").await.unwrap());
    let Err(ThrottleError::Wait(wait)) = here.check("user:1").await else {
        panic!("no delay after four failures");
    };
    assert!(wait > Duration::from_millis(600), "{wait:?}");
    // Other accounts and other names are counted apart.
    assert!(here.check("user:2").await.is_ok());
    let resets = AccountThrottle::shared("resets", config, Arc::new(redis.account_throttles()));
    assert!(resets.check("user:1").await.is_ok());
    // A success clears the count everywhere.
    there.success("user:1").await.unwrap();
    assert!(here.check("user:1").await.is_ok());
    assert!(!here.failure("user:1").await.unwrap());

    // The delay passes.
    for _ in 0..2 {
        here.failure("user:3").await.unwrap();
    }
    assert!(here.failure("user:3").await.unwrap());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(there.check("user:3").await.is_ok());
    clean_up(&redis).await;
}

/// Failures racing from two instances are all counted, and exactly one starts the
/// delay (one `lockout_started` event, not several or none).
#[tokio::test]
async fn concurrent_failures_from_two_instances_are_each_counted() {
    let Some(redis) = backend().await else { return };
    let other = second_instance(&redis).await;
    let config = ThrottleConfig {
        free_failures: 10,
        ..ThrottleConfig::default()
    };
    let here = AccountThrottle::shared("t", config, Arc::new(redis.account_throttles()));
    let there = AccountThrottle::shared("t", config, Arc::new(other.account_throttles()));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let throttle = if i % 2 == 0 {
            here.clone()
        } else {
            there.clone()
        };
        tasks.push(tokio::spawn(async move {
            throttle.failure("user:9").await.unwrap()
        }));
    }
    let mut started = 0;
    for task in tasks {
        started += usize::from(task.await.unwrap());
    }
    assert_eq!(started, 1);
    let count: String = redis
        .client()
        .custom(
            cmd!("HGET"),
            vec![
                format!("{}:throttle:t:user:9", redis.prefix()),
                "count".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(count, "30");
    // Twenty past the free ten: the delay is at its longest.
    let Err(ThrottleError::Wait(wait)) = here.check("user:9").await else {
        panic!("no delay");
    };
    assert!(wait > Duration::from_secs(14 * 60), "{wait:?}");
    clean_up(&redis).await;
}

#[tokio::test]
async fn an_unreachable_throttle_store_is_an_error_not_a_pass() {
    let Some(redis) = backend().await else { return };
    let throttle = AccountThrottle::shared(
        "t",
        ThrottleConfig::default(),
        Arc::new(redis.account_throttles()),
    );
    throttle.failure("user:1").await.unwrap();
    redis.client().quit().await.unwrap();
    assert!(matches!(
        throttle.check("user:1").await,
        Err(ThrottleError::Unavailable(_))
    ));
    assert!(matches!(
        throttle.failure("user:1").await,
        Err(ThrottleError::Unavailable(_))
    ));
    let cleaner = second_instance(&redis).await;
    clean_up(&cleaner).await;
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast() {
    // Needs no server: nothing listens on port 1.
    let started = Instant::now();
    let error = RedisConnection::connect("redis://127.0.0.1:1", "t")
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{error}");
    assert!(
        matches!(
            error,
            RedisConnectError::Unreachable { .. } | RedisConnectError::Timeout { .. }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("127.0.0.1:1"), "{error}");

    // Credentials never appear in the error.
    let error = RedisConnection::connect("redis://user:s3cret-pw@127.0.0.1:1", "t")
        .await
        .unwrap_err();
    assert!(!error.to_string().contains("s3cret-pw"), "{error}");
    assert!(!format!("{error:?}").contains("s3cret-pw"), "{error:?}");
}

#[tokio::test]
async fn a_black_hole_fails_within_the_connect_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            keep.lock().await.push(socket);
        }
    });
    let started = Instant::now();
    let error = RedisConnection::connect(&format!("redis://{addr}"), "t")
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{error}");
}

/// A fake server that answers `PING` (and anything else with `+OK`) until `stalled`,
/// then reads and never answers: a frozen Redis.
async fn stalling_server(stalled: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let stalled = stalled.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if stalled.load(Ordering::SeqCst) {
                        continue;
                    }
                    // One reply per command (each starts with `*` at a line start).
                    let chunk = &buf[..n];
                    let commands = chunk
                        .iter()
                        .enumerate()
                        .filter(|(i, b)| **b == b'*' && (*i == 0 || chunk[i - 1] == b'\n'))
                        .count();
                    let text = String::from_utf8_lossy(chunk).to_ascii_uppercase();
                    let reply: &[u8] = if text.contains("PING") {
                        b"+PONG\r\n"
                    } else {
                        b"+OK\r\n"
                    };
                    for _ in 0..commands {
                        if socket.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_stalled_server_is_an_error_within_the_timeout_never_a_hang() {
    let stalled = Arc::new(AtomicBool::new(false));
    let addr = stalling_server(stalled.clone()).await;
    let redis =
        RedisConnection::connect_with(&format!("redis://{addr}"), "t", Duration::from_millis(500))
            .await
            .unwrap();
    redis.ping().await.unwrap();
    stalled.store(true, Ordering::SeqCst);

    let started = Instant::now();
    assert!(redis.ping().await.is_err());
    assert!(redis
        .rate_limits()
        .check("k", &Quota::per_minute(10))
        .await
        .is_err());
    assert!(redis.sessions().load("k").await.is_err());
    assert!(redis
        .revocations()
        .is_revoked(&claims("1", "j", "f", now_s()))
        .await
        .is_err());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The debug form names the server and the prefix, nothing secret.
    let debug = format!("{redis:?}");
    assert!(debug.contains(&addr.to_string()), "{debug}");
}

#[tokio::test]
async fn a_killed_connection_never_gives_a_wrong_answer_and_recovers() {
    let Some(redis) = backend().await else { return };
    let killer = second_instance(&redis).await;
    let sessions = redis.sessions();
    let revocations = redis.revocations();
    let limiter = redis.rate_limits();
    let expected = record(Some(3), "kept");
    sessions
        .save("live", &expected, now_ms() + 60_000)
        .await
        .unwrap();
    revocations
        .revoke_family("3", "fam", now_s() + 3_600)
        .await
        .unwrap();
    let revoked = claims("3", "dead", "fam", now_s());
    let roomy = Quota::per_minute(1_000_000);

    let id: i64 = redis
        .client()
        .custom(cmd!("CLIENT"), vec!["ID"])
        .await
        .unwrap();
    let killed: i64 = killer
        .client()
        .custom(cmd!("CLIENT"), vec!["KILL", "ID", &id.to_string()])
        .await
        .unwrap();
    assert_eq!(killed, 1);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut errors = 0;
    let recovered = loop {
        assert!(Instant::now() < deadline, "no recovery within 10 s");
        let load = sessions.load("live").await;
        let check = revocations.is_revoked(&revoked).await;
        let limit = limiter.check("kill", &roomy).await;
        // Each answer is either an error or the right one.
        if let Ok(found) = &load {
            assert_eq!(found.as_ref(), Some(&expected));
        }
        if let Ok(is_revoked) = &check {
            assert!(*is_revoked);
        }
        if let Ok(decision) = &limit {
            assert!(decision.allowed);
        }
        if load.is_ok() && check.is_ok() && limit.is_ok() && redis.ping().await.is_ok() {
            break true;
        }
        errors += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(recovered);
    // It is a new connection.
    let new_id: i64 = redis
        .client()
        .custom(cmd!("CLIENT"), vec!["ID"])
        .await
        .unwrap();
    assert_ne!(new_id, id, "after {errors} errors");
    // And writes work again.
    sessions
        .save("after", &expected, now_ms() + 60_000)
        .await
        .unwrap();
    assert!(sessions.load("after").await.unwrap().is_some());

    clean_up(&redis).await;
}
