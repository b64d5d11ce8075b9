//! Attacks on the token layer: every forged, altered, misused or revoked token is
//! refused, and rotation keeps what it should; and every revocation store here keeps
//! the rules of `portcullis::jwt::revocation::conformance`.
//!
//! The Redis runs need `PORTCULLIS_TEST_REDIS` (e.g. `redis://127.0.0.1:6379`); without
//! it they print `SKIPPED` and pass, unless `PORTCULLIS_REQUIRE_REDIS` is set. Each uses
//! a random key prefix and deletes its keys at the end.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::FutureExt as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis::jwt::{
    Claims, Jwt, JwtConfig, JwtError, JwtKeys, MemoryRevocationStore, RevocationStore as _,
    TokenType,
};
use portcullis::keys::{Keyring, Purpose, SecretKey};

fn service(keyring: &Keyring) -> Jwt {
    service_on_store(keyring, store_knowing_f1())
}

fn service_on_store(keyring: &Keyring, store: Arc<MemoryRevocationStore>) -> Jwt {
    Jwt::new(JwtConfig::default(), JwtKeys::from_keyring(keyring), store)
}

/// A store that knows the family `claims` names (`f1` of user `1`), as after that
/// user's login: a store refuses tokens of families it does not know.
fn store_knowing_f1() -> Arc<MemoryRevocationStore> {
    let store = Arc::new(MemoryRevocationStore::default());
    store
        .start_family("1", "f1", "r1", now() + 3_600, 10)
        .now_or_never()
        .expect("the memory store answers at once")
        .unwrap();
    store
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(typ: TokenType) -> Claims {
    Claims {
        sub: "1".into(),
        iat: now(),
        nbf: now(),
        exp: now() + 600,
        jti: "j1".into(),
        iss: "portcullis".into(),
        aud: "portcullis-api".into(),
        typ,
        fam: "f1".into(),
        auth_time: now(),
    }
}

/// Signs `claims` as an attacker would, with `secret` and the real `kid`.
fn forge(claims: &Claims, secret: &[u8], kid: &str, alg: Algorithm) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn setup() -> (Keyring, Jwt, String, Vec<u8>) {
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let subkey = &keyring.subkeys(Purpose::JWT)[0];
    let (kid, key) = (subkey.id().to_owned(), subkey.bytes().to_vec());
    let jwt = service(&keyring);
    (keyring, jwt, kid, key)
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (_, jwt, kid, _) = setup();
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(TokenType::Access)).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
        format!("{header}.{payload}.AAAA"),
    ] {
        assert_eq!(
            jwt.verify_access(&token).await,
            Err(JwtError::Invalid),
            "{token}"
        );
    }
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"None","kid":"{kid}"}}"#));
    assert!(jwt
        .verify_access(&format!("{header}.{payload}."))
        .await
        .is_err());
}

#[tokio::test]
async fn a_genuine_token_passes_and_the_forgery_checks_can_fail() {
    let (_, jwt, kid, key) = setup();
    let token = forge(&claims(TokenType::Access), &key, &kid, Algorithm::HS256);
    assert_eq!(jwt.verify_access(&token).await.unwrap().sub, "1");
}

#[tokio::test]
async fn tampered_payloads_and_signatures_are_refused() {
    let (_, jwt, _, _) = setup();
    let pair = jwt.issue(1).await.unwrap();
    let parts: Vec<&str> = pair.access_token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "2".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(jwt.verify_access(&tampered).await, Err(JwtError::Invalid));
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[0] ^= 1;
    let bad_signature = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    assert_eq!(
        jwt.verify_access(&bad_signature).await,
        Err(JwtError::Invalid)
    );
    for junk in ["", "a", "a.b", "a.b.c", "....", "eyJ.eyJ.sig"] {
        assert!(jwt.verify_access(junk).await.is_err(), "{junk}");
    }
}

#[tokio::test]
async fn unknown_or_missing_kid_is_refused() {
    let (_, jwt, _, key) = setup();
    let token = forge(
        &claims(TokenType::Access),
        &key,
        "unknown1",
        Algorithm::HS256,
    );
    assert_eq!(jwt.verify_access(&token).await, Err(JwtError::Invalid));
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(TokenType::Access),
        &EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert_eq!(jwt.verify_access(&no_kid).await, Err(JwtError::Invalid));
}

#[tokio::test]
async fn expired_premature_and_misaddressed_tokens_are_refused() {
    let (_, jwt, kid, key) = setup();
    let sign = |c: &Claims| forge(c, &key, &kid, Algorithm::HS256);
    let expired = Claims {
        exp: now() - 60,
        ..claims(TokenType::Access)
    };
    assert_eq!(
        jwt.verify_access(&sign(&expired)).await,
        Err(JwtError::Expired)
    );
    let future = Claims {
        nbf: now() + 120,
        ..claims(TokenType::Access)
    };
    assert_eq!(
        jwt.verify_access(&sign(&future)).await,
        Err(JwtError::NotYetValid)
    );
    // Within the 30-second leeway, clock skew is forgiven.
    let skewed = Claims {
        exp: now() - 10,
        ..claims(TokenType::Access)
    };
    assert!(jwt.verify_access(&sign(&skewed)).await.is_ok());
    let wrong_issuer = Claims {
        iss: "https://evil.example".into(),
        ..claims(TokenType::Access)
    };
    assert_eq!(
        jwt.verify_access(&sign(&wrong_issuer)).await,
        Err(JwtError::Invalid)
    );
    let wrong_audience = Claims {
        aud: "another-api".into(),
        ..claims(TokenType::Access)
    };
    assert_eq!(
        jwt.verify_access(&sign(&wrong_audience)).await,
        Err(JwtError::Invalid)
    );
    // Missing required claims.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.clone());
    let bare = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"sub": "1", "exp": now() + 600, "typ": "access"}),
        &EncodingKey::from_secret(&key),
    )
    .unwrap();
    assert!(jwt.verify_access(&bare).await.is_err());
}

#[tokio::test]
async fn tokens_signed_with_guessed_weak_keys_are_refused() {
    let (_, jwt, kid, _) = setup();
    for guess in [
        "secret",
        "supersecretkey",
        "your_secret_key",
        "changeme",
        "",
    ] {
        let token = forge(
            &claims(TokenType::Access),
            guess.as_bytes(),
            &kid,
            Algorithm::HS256,
        );
        assert_eq!(
            jwt.verify_access(&token).await,
            Err(JwtError::Invalid),
            "{guess}"
        );
    }
    // Nor with the raw secret key: the JWT key is a derived subkey.
    let keyring = Keyring::new(
        SecretKey::parse("q8Lr2mVx9TnW4bKy7HsD1cFg6JpZ3eAu0QiN5oRtXvM"),
        vec![],
    );
    let jwt = service(&keyring);
    let kid = keyring.subkeys(Purpose::JWT)[0].id().to_owned();
    let token = forge(
        &claims(TokenType::Access),
        b"q8Lr2mVx9TnW4bKy7HsD1cFg6JpZ3eAu0QiN5oRtXvM",
        &kid,
        Algorithm::HS256,
    );
    assert_eq!(jwt.verify_access(&token).await, Err(JwtError::Invalid));
}

#[tokio::test]
async fn other_hmac_algorithms_are_refused_even_with_the_right_key() {
    let (_, jwt, kid, key) = setup();
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let token = forge(&claims(TokenType::Access), &key, &kid, alg);
        assert_eq!(
            jwt.verify_access(&token).await,
            Err(JwtError::Invalid),
            "{alg:?}"
        );
    }
}

#[tokio::test]
async fn hs256_signed_with_the_eddsa_public_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let private = dir.path().join("jwt.key");
    let public = dir.path().join("jwt.pub");
    std::fs::write(&private, pair.serialize_pem()).unwrap();
    std::fs::write(&public, pair.public_key_pem()).unwrap();
    let jwt = Jwt::new(
        JwtConfig::default(),
        JwtKeys::ed25519(&private, &[&public]).unwrap(),
        Arc::new(MemoryRevocationStore::default()),
    );
    let genuine = jwt.issue(1).await.unwrap();
    let claims = jwt.verify_access(&genuine.access_token).await.unwrap();
    let header = jsonwebtoken::decode_header(&genuine.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.unwrap();
    // Algorithm confusion: the public key (which anyone may hold) as an HMAC secret.
    let public_pem = std::fs::read(&public).unwrap();
    let confused = forge(&claims, &public_pem, &kid, Algorithm::HS256);
    assert_eq!(jwt.verify_access(&confused).await, Err(JwtError::Invalid));
    let der = pair.public_key_raw().to_vec();
    let confused = forge(&claims, &der, &kid, Algorithm::HS256);
    assert_eq!(jwt.verify_access(&confused).await, Err(JwtError::Invalid));
}

#[tokio::test]
async fn revoked_tokens_and_families_are_refused() {
    let (_, jwt, _, _) = setup();
    let pair = jwt.issue(1).await.unwrap();
    let claims = jwt.verify_access(&pair.access_token).await.unwrap();
    jwt.revoke(&claims).await.unwrap();
    assert_eq!(
        jwt.verify_access(&pair.access_token).await,
        Err(JwtError::Revoked)
    );
    // Revoking the access token also ended its refresh token.
    assert!(jwt.refresh(&pair.refresh_token).await.is_err());
}

#[tokio::test]
async fn rotation_keeps_fallback_tokens_and_drops_retired_ones() {
    let old = SecretKey::generate();
    // One store, as the instances of one deployment share it across a rotation.
    let store = store_knowing_f1();
    let token = service_on_store(&Keyring::new(old.clone(), vec![]), store.clone())
        .issue(9)
        .await
        .unwrap();
    let rotated = service_on_store(
        &Keyring::new(SecretKey::generate(), vec![old]),
        store.clone(),
    );
    assert_eq!(
        rotated
            .verify_access(&token.access_token)
            .await
            .unwrap()
            .user_id(),
        Some(9)
    );
    // New tokens carry the new key's id.
    let fresh = rotated.issue(9).await.unwrap();
    let kid_old = jsonwebtoken::decode_header(&token.access_token)
        .unwrap()
        .kid;
    let kid_new = jsonwebtoken::decode_header(&fresh.access_token)
        .unwrap()
        .kid;
    assert_ne!(kid_old, kid_new);
    let retired = service_on_store(&Keyring::new(SecretKey::generate(), vec![]), store);
    assert_eq!(
        retired.verify_access(&token.access_token).await,
        Err(JwtError::Invalid)
    );
}

#[tokio::test]
async fn leeway_is_capped_at_thirty_seconds() {
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let jwt = Jwt::new(
        JwtConfig::default().leeway(Duration::from_secs(3600)),
        JwtKeys::from_keyring(&keyring),
        Arc::new(MemoryRevocationStore::default()),
    );
    let expired = Claims {
        exp: now() - 120,
        ..claims(TokenType::Access)
    };
    let token = jwt.sign_claims(&expired).unwrap();
    assert_eq!(jwt.verify_access(&token).await, Err(JwtError::Expired));
}

fn service_on(store: Arc<dyn portcullis::jwt::RevocationStore>) -> Jwt {
    Jwt::new(
        JwtConfig::default().max_families_per_user(4),
        JwtKeys::from_keyring(&Keyring::new(SecretKey::generate(), vec![])),
        store,
    )
}

/// A client refreshing in a loop, with a revoked login and a stolen, already-rotated
/// refresh token lying about: the flood revives neither.
async fn a_refresh_flood_revives_nothing(store: Arc<dyn portcullis::jwt::RevocationStore>) {
    let jwt = service_on(store);
    let revoked = jwt.issue(1).await.unwrap();
    let claims = jwt.verify_access(&revoked.access_token).await.unwrap();
    jwt.revoke(&claims).await.unwrap();

    let stolen = jwt.issue(2).await.unwrap();
    let mut current = jwt.refresh(&stolen.refresh_token).await.unwrap();
    for _ in 0..2_000 {
        current = jwt.refresh(&current.refresh_token).await.unwrap();
    }
    assert_eq!(
        jwt.verify_access(&revoked.access_token).await,
        Err(JwtError::Revoked)
    );
    assert!(jwt.refresh(&revoked.refresh_token).await.is_err());
    // The stolen token was rotated away long ago: presenting it is reuse, and ends
    // the family the flood kept alive.
    assert_eq!(
        jwt.refresh(&stolen.refresh_token).await.unwrap_err(),
        JwtError::RefreshReused
    );
    assert_eq!(
        jwt.verify_access(&current.access_token).await,
        Err(JwtError::Revoked)
    );
    assert!(jwt.refresh(&current.refresh_token).await.is_err());
}

/// A refresh that verified its token before the user was revoked, and rotates after:
/// the revocation wins, however late the new pair's clock says it was minted.
async fn a_revocation_beats_a_refresh_in_flight(store: Arc<dyn portcullis::jwt::RevocationStore>) {
    let jwt = service_on(store.clone());
    let pair = jwt.issue(3).await.unwrap();
    let presented = jwt.decode(&pair.refresh_token).unwrap();
    // The refresh has verified `presented`; now the user is revoked elsewhere.
    jwt.revoke_user(3).await.unwrap();
    assert_eq!(
        store
            .rotate_refresh(
                "3",
                &presented.fam,
                &presented.jti,
                "next-jti",
                now() + 3600
            )
            .await
            .unwrap(),
        portcullis::jwt::RefreshUse::Revoked
    );
    // A pair of that family minted "later" (another instance's clock running ahead)
    // is revoked all the same: the family began before the revocation.
    let mut later = presented.clone();
    later.iat = now() + 120;
    later.typ = TokenType::Access;
    assert!(store.is_revoked(&later).await.unwrap());
    // A login after the revocation is unaffected.
    let fresh = jwt.issue(3).await.unwrap();
    assert!(jwt.verify_access(&fresh.access_token).await.is_ok());
    assert!(jwt.refresh(&fresh.refresh_token).await.is_ok());
}

/// Beyond its cap of live logins, a user's oldest is revoked, not the store filled.
async fn a_users_logins_are_capped(store: Arc<dyn portcullis::jwt::RevocationStore>) {
    let jwt = service_on(store);
    let mut pairs = Vec::new();
    for _ in 0..6 {
        pairs.push(jwt.issue(4).await.unwrap());
    }
    for (i, pair) in pairs.iter().enumerate() {
        let verdict = jwt.verify_access(&pair.access_token).await;
        if i < 2 {
            assert_eq!(verdict, Err(JwtError::Revoked), "login {i}");
        } else {
            assert!(verdict.is_ok(), "login {i}");
        }
    }
}

#[tokio::test]
async fn a_refresh_flood_revives_no_revoked_family_or_used_token_in_memory() {
    // Small, so that the old design's eviction would have struck within the flood.
    a_refresh_flood_revives_nothing(Arc::new(MemoryRevocationStore::new(64))).await;
}

#[tokio::test]
async fn a_revocation_beats_a_refresh_in_flight_in_memory() {
    a_revocation_beats_a_refresh_in_flight(Arc::new(MemoryRevocationStore::default())).await;
}

#[tokio::test]
async fn a_users_logins_are_capped_in_memory() {
    a_users_logins_are_capped(Arc::new(MemoryRevocationStore::default())).await;
}

#[tokio::test]
async fn a_full_memory_store_refuses_new_logins_and_forgets_nothing() {
    let jwt = service_on(Arc::new(MemoryRevocationStore::new(8)));
    let first = jwt.issue(1).await.unwrap();
    let claims = jwt.verify_access(&first.access_token).await.unwrap();
    jwt.revoke(&claims).await.unwrap();
    let mut refused = 0;
    for user in 2..40 {
        match jwt.issue(user).await {
            Ok(_) => {}
            Err(JwtError::Unavailable) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(refused > 0, "the store never filled");
    // The revocation made before the flood is still there.
    assert_eq!(
        jwt.verify_access(&first.access_token).await,
        Err(JwtError::Revoked)
    );
}

#[cfg(feature = "redis")]
async fn redis_store() -> Option<(
    portcullis::redis::RedisConnection,
    Arc<dyn portcullis::jwt::RevocationStore>,
)> {
    let Ok(url) = std::env::var("PORTCULLIS_TEST_REDIS") else {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_REDIS").is_none(),
            "PORTCULLIS_REQUIRE_REDIS is set but PORTCULLIS_TEST_REDIS is not"
        );
        eprintln!("SKIPPED: PORTCULLIS_TEST_REDIS is not set");
        return None;
    };
    let prefix = format!("portcullis-test-{}", portcullis::upload::random_id());
    let backend = portcullis::redis::RedisConnection::connect(&url, &prefix)
        .await
        .unwrap();
    let store = Arc::new(backend.revocations());
    Some((backend, store))
}

#[cfg(feature = "redis")]
async fn redis_keys(backend: &portcullis::redis::RedisConnection) -> Vec<String> {
    use fred::interfaces::ClientLike as _;
    let pattern = format!("{}:*", backend.prefix());
    let (_, keys): (String, Vec<String>) = backend
        .client()
        .custom(
            fred::cmd!("SCAN"),
            vec!["0", "MATCH", pattern.as_str(), "COUNT", "100000"],
        )
        .await
        .unwrap();
    keys
}

#[cfg(feature = "redis")]
async fn redis_clean(backend: &portcullis::redis::RedisConnection) {
    use fred::interfaces::KeysInterface as _;
    for key in redis_keys(backend).await {
        let _: i64 = backend.client().del(key).await.unwrap();
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn the_revocation_attacks_fail_on_redis_and_its_keys_follow_the_logins() {
    let Some((backend, store)) = redis_store().await else {
        return;
    };
    a_refresh_flood_revives_nothing(store.clone()).await;
    a_revocation_beats_a_refresh_in_flight(store.clone()).await;
    a_users_logins_are_capped(store.clone()).await;
    redis_clean(&backend).await;

    // Ten logins of five users, each refreshed 200 times: the keys follow the logins
    // (one per family, two per user), not the 2,000 refreshes.
    let jwt = service_on(store);
    for user in 0..5 {
        for _ in 0..2 {
            let mut pair = jwt.issue(100 + user).await.unwrap();
            for _ in 0..200 {
                pair = jwt.refresh(&pair.refresh_token).await.unwrap();
            }
        }
    }
    let keys = redis_keys(&backend).await;
    assert!(keys.len() <= 10 + 2 * 5, "{} keys: {keys:?}", keys.len());
    redis_clean(&backend).await;
}

// Every store here keeps every rule of the conformance suite that third-party stores
// run against themselves.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_every_revocation_rule() {
    portcullis::jwt::revocation::conformance::run(&MemoryRevocationStore::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_sharded_memory_store_keeps_every_revocation_rule() {
    // Little room and several shards: the rules hold whatever the store's shape.
    portcullis::jwt::revocation::conformance::run(&MemoryRevocationStore::new(3 * 4096)).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_every_revocation_rule() {
    let Some((backend, store)) = redis_store().await else {
        return;
    };
    portcullis::jwt::revocation::conformance::run(&*store).await;
    redis_clean(&backend).await;
}

/// An instance restarted with an in-memory store (or a Redis that lost its data)
/// forgets every family: the tokens it revoked before must not verify after, so it
/// refuses every token it cannot vouch for, and clients sign in again.
#[tokio::test]
async fn a_restarted_store_refuses_the_tokens_it_can_no_longer_vouch_for() {
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let before = service_on_store(&keyring, Arc::new(MemoryRevocationStore::default()));
    let stolen = before.issue(5).await.unwrap();
    let claims = before.verify_access(&stolen.access_token).await.unwrap();
    before.revoke(&claims).await.unwrap();
    assert_eq!(
        before.verify_access(&stolen.access_token).await,
        Err(JwtError::Revoked)
    );

    let after = service_on_store(&keyring, Arc::new(MemoryRevocationStore::default()));
    assert_eq!(
        after.verify_access(&stolen.access_token).await,
        Err(JwtError::Revoked),
        "a revoked token came back after a restart"
    );
    assert!(after.refresh(&stolen.refresh_token).await.is_err());
    // Signing in again works at once.
    let fresh = after.issue(5).await.unwrap();
    assert!(after.verify_access(&fresh.access_token).await.is_ok());
}

/// A refresh keeps the sign-in's time: a stolen refresh token, or a client that
/// refreshes forever, never passes for a recent sign-in.
#[tokio::test]
async fn a_refresh_keeps_the_sign_in_time() {
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let jwt = service_on_store(&keyring, Arc::new(MemoryRevocationStore::default()));
    let pair = jwt.issue(7).await.unwrap();
    let first = jwt.verify_access(&pair.access_token).await.unwrap();
    assert_eq!(first.auth_time, first.iat);
    assert!(first.authenticated_within(Duration::from_secs(60)));

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let refreshed = jwt.refresh(&pair.refresh_token).await.unwrap();
    let second = jwt.verify_access(&refreshed.access_token).await.unwrap();
    assert!(second.iat > first.iat);
    assert_eq!(second.auth_time, first.auth_time);
    let refresh = jwt.decode(&refreshed.refresh_token).unwrap();
    assert_eq!(refresh.auth_time, first.auth_time);

    // A token without the claim (issued before it existed) is never recent.
    let mut old = second.clone();
    old.auth_time = 0;
    assert!(!old.authenticated_within(Duration::from_secs(u64::MAX / 4)));
    let legacy = serde_json::to_value(&second).unwrap();
    let mut legacy = legacy.as_object().unwrap().clone();
    legacy.remove("auth_time");
    let parsed: Claims = serde_json::from_value(legacy.into()).unwrap();
    assert_eq!(parsed.auth_time, 0);
}

/// A token from before `auth_time` existed has one spelling: its claims, signed again,
/// give the very same token (so no second spelling of it verifies).
#[tokio::test]
async fn a_token_without_auth_time_signs_back_to_itself() {
    let keyring = Keyring::new(SecretKey::generate(), vec![]);
    let jwt = service(&keyring);
    let mut legacy = serde_json::to_value(claims(TokenType::Access)).unwrap();
    legacy.as_object_mut().unwrap().remove("auth_time");
    let legacy: Claims = serde_json::from_value(legacy).unwrap();
    let token = jwt.sign_claims(&legacy).unwrap();
    let payload = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    assert!(!String::from_utf8(payload).unwrap().contains("auth_time"));
    let decoded = jwt.decode(&token).unwrap();
    assert_eq!(decoded.auth_time, 0);
    assert_eq!(jwt.sign_claims(&decoded).unwrap(), token);
}

/// `header.payload` signed with `secret` as HS256, whatever bytes the two parts hold.
fn sign_raw(header: &str, payload: &str, secret: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

/// The token is taken apart by Portcullis (each part decoded once), so every shape
/// that a stricter or looser split could let through is tried, signed with the real
/// key: only the canonical shape verifies, and nothing panics.
#[tokio::test]
async fn tokens_in_odd_shapes_are_refused_even_when_signed() {
    let (_, jwt, kid, key) = setup();
    let header = format!(r#"{{"typ":"JWT","alg":"HS256","kid":"{kid}"}}"#);
    let good = serde_json::to_string(&claims(TokenType::Access)).unwrap();
    let genuine = sign_raw(&header, &good, &key);
    assert!(
        jwt.verify_access(&genuine).await.is_ok(),
        "the control passes"
    );
    // Header fields in another order, with extras, and `kid` spelt with an escape:
    // the same header to a JSON reader, so it passes as jsonwebtoken would pass it.
    let escaped = format!(r#"{{"k\u0069d":"{kid}","alg":"HS256","cty":"x","typ":"JWT"}}"#);
    assert!(jwt
        .verify_access(&sign_raw(&escaped, &good, &key))
        .await
        .is_ok());

    let mut claims_value = serde_json::to_value(claims(TokenType::Access)).unwrap();
    claims_value["aud"] = serde_json::json!(["portcullis-api"]);
    let array_audience = claims_value.to_string();
    let duplicate_exp = good.replacen('{', &format!("{{\"exp\":{},", now() + 99_999), 1);
    let long_kid = format!(r#"{{"alg":"HS256","kid":"{kid}{}"}}"#, "a".repeat(600));
    // A genuine token spelt in the standard base64 alphabet: one with a `-` or `_` to
    // respell (issued a second earlier until one has), or the case would be the
    // genuine token itself.
    let other_alphabet = (0..)
        .map(|earlier| {
            let claims = Claims {
                iat: now() - earlier,
                ..claims(TokenType::Access)
            };
            sign_raw(&header, &serde_json::to_string(&claims).unwrap(), &key)
        })
        .find(|token| token.contains(['-', '_']))
        .unwrap()
        .replace('-', "+")
        .replace('_', "/");
    let refused = [
        // A fourth part, and parts moved around.
        format!("{genuine}.x"),
        format!(".{genuine}"),
        genuine.replacen('.', "..", 1),
        // Padding, and base64 of the other alphabet.
        {
            let (message, signature) = genuine.rsplit_once('.').unwrap();
            format!("{message}=.{signature}")
        },
        other_alphabet,
        // Headers: no algorithm, `none`, a different one, a `kid` of another type,
        // one too long to be ours, not JSON at all.
        sign_raw(&format!(r#"{{"kid":"{kid}"}}"#), &good, &key),
        sign_raw(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#), &good, &key),
        sign_raw(&format!(r#"{{"alg":"HS512","kid":"{kid}"}}"#), &good, &key),
        sign_raw(r#"{"alg":"HS256","kid":7}"#, &good, &key),
        sign_raw(&long_kid, &good, &key),
        sign_raw("not json", &good, &key),
        // Claims: an audience list, a second `exp`, not an object.
        sign_raw(&header, &array_audience, &key),
        sign_raw(&header, &duplicate_exp, &key),
        sign_raw(&header, "[]", &key),
        sign_raw(&header, "", &key),
    ];
    for token in &refused {
        assert_eq!(
            jwt.verify_access(token).await,
            Err(JwtError::Invalid),
            "{token}"
        );
    }
}
