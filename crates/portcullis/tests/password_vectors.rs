//! Known-answer vectors from the reference implementations (werkzeug and Python's
//! bcrypt; see tests/fixtures/README.md), and stored hashes that must be refused.

use portcullis::password::{PasswordConfig, PasswordError, Passwords};
use serde_json::Value;

struct Vector {
    password: String,
    hash: String,
    source: String,
}

fn vectors() -> Vec<Vector> {
    let json: Value = serde_json::from_str(include_str!("fixtures/password_vectors.json")).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            password: v["password"].as_str().unwrap().to_owned(),
            hash: v["hash"].as_str().unwrap().to_owned(),
            source: v["source"].as_str().unwrap().to_owned(),
        })
        .collect()
}

fn passwords() -> Passwords {
    Passwords::new(PasswordConfig::default()).unwrap()
}

#[test]
fn the_fixture_covers_every_format() {
    let vectors = vectors();
    assert!(vectors.len() >= 25, "{}", vectors.len());
    for prefix in [
        "scrypt:32768:8:1$",
        "scrypt:16384:8:1$",
        "pbkdf2:sha256:1000000$",
        "pbkdf2:sha256:1000$",
        "pbkdf2:sha512:1000$",
        "$2a$04$",
        "$2b$04$",
        "$2y$04$",
        "$2a$10$",
        "$2b$10$",
        "$2y$10$",
    ] {
        assert!(
            vectors.iter().any(|v| v.hash.starts_with(prefix)),
            "no {prefix} vector"
        );
    }
    assert!(vectors.iter().any(|v| !v.password.is_ascii()));
    assert!(vectors.iter().any(|v| v.password.chars().count() > 100));
}

#[test]
fn every_vector_verifies() {
    let passwords = passwords();
    for v in vectors() {
        assert_eq!(
            passwords.verify_blocking(&v.password, &v.hash),
            Ok(true),
            "{} ({})",
            v.hash,
            v.source
        );
    }
}

// Two tests rather than one loop, so the two slow passes (werkzeug's default scrypt and
// its 1,000,000 PBKDF2 iterations take seconds each in a debug build) run in parallel.
fn assert_wrong_password_refused(wrong: impl Fn(&str) -> String) {
    let passwords = passwords();
    for v in vectors() {
        let wrong = wrong(&v.password);
        assert_eq!(
            passwords.verify_blocking(&wrong, &v.hash),
            Ok(false),
            "{wrong:?} matched {} ({})",
            v.hash,
            v.source
        );
    }
}

#[test]
fn a_longer_password_does_not_verify() {
    assert_wrong_password_refused(|password| format!("{password}x"));
}

#[test]
fn the_empty_password_does_not_verify() {
    assert_wrong_password_refused(|_| String::new());
}

#[test]
fn every_vector_needs_rehash() {
    let passwords = passwords();
    for v in vectors() {
        assert!(passwords.needs_rehash(&v.hash), "{}", v.hash);
    }
}

#[tokio::test]
async fn vectors_verify_through_the_async_api() {
    let passwords = passwords();
    for v in vectors()
        .into_iter()
        .filter(|v| v.hash.starts_with("$2b$04$"))
    {
        assert_eq!(
            passwords
                .verify(v.password.clone(), Some(v.hash.clone()))
                .await,
            Ok(true)
        );
        assert_eq!(
            passwords
                .verify(format!("{}x", v.password), Some(v.hash))
                .await,
            Ok(false)
        );
    }
}

#[test]
fn malformed_hashes_are_refused_without_panicking() {
    let vectors = vectors();
    let find = |prefix: &str| {
        vectors
            .iter()
            .find(|v| v.hash.starts_with(prefix))
            .unwrap()
            .hash
            .clone()
    };
    let scrypt = find("scrypt:16384:8:1$");
    let pbkdf2 = find("pbkdf2:sha256:1000$");
    let bcrypt = find("$2b$04$");
    let (_, scrypt_rest) = scrypt.split_once('$').unwrap();
    let (_, pbkdf2_rest) = pbkdf2.split_once('$').unwrap();
    let bcrypt_rest = &bcrypt[7..];
    let argon2 = Passwords::new(PasswordConfig::default().memory_kib(256).iterations(1))
        .unwrap()
        .hash_blocking("pw")
        .unwrap();
    let argon2_tail = argon2.splitn(5, '$').nth(4).unwrap();

    let mut bad_hex = pbkdf2.clone();
    bad_hex.replace_range(pbkdf2.len() - 1.., "g");

    let malformed: Vec<String> = vec![
        // Empty, unknown, truncated.
        String::new(),
        "$".into(),
        "plain".into(),
        "md5$salt$0123456789abcdef0123456789abcdef".into(),
        format!("sha256${pbkdf2_rest}"),
        format!("pbkdf2:sha1:1000${pbkdf2_rest}"),
        format!("pbkdf2:sha256:1000:1${pbkdf2_rest}"),
        format!("bcrypt${pbkdf2_rest}"),
        scrypt[..scrypt.len() - 10].to_owned(),
        pbkdf2[..pbkdf2.len() - 1].to_owned(),
        pbkdf2.split('$').take(2).collect::<Vec<_>>().join("$"),
        "pbkdf2:sha256:1000".into(),
        bcrypt[..bcrypt.len() - 1].to_owned(),
        format!("{bcrypt}A"),
        "$argon2id$v=19$m=19456,t=2".into(),
        // Bad hex, bad salt, bad numbers.
        bad_hex,
        format!("{}$$0000", "pbkdf2:sha256:1000"),
        format!("pbkdf2:sha256:-1000${pbkdf2_rest}"),
        format!("pbkdf2:sha256: 1000${pbkdf2_rest}"),
        format!("pbkdf2:sha256:abc${pbkdf2_rest}"),
        format!("scrypt:16384:8${scrypt_rest}"),
        format!("scrypt:16384:8:1:1${scrypt_rest}"),
        format!("{}$…$", "scrypt:16384:8:1"),
        // scrypt's N must be a power of two, above 1.
        format!("scrypt:3:8:1${scrypt_rest}"),
        format!("scrypt:16383:8:1${scrypt_rest}"),
        format!("scrypt:1:8:1${scrypt_rest}"),
        format!("scrypt:0:8:1${scrypt_rest}"),
        // Costs that would exhaust the machine, or that scrypt forbids.
        format!("scrypt:2097152:8:1${scrypt_rest}"),
        format!("scrypt:1099511627776:8:1${scrypt_rest}"),
        format!("scrypt:1048576:8:2${scrypt_rest}"),
        format!("scrypt:16384:4294967295:4294967295${scrypt_rest}"),
        format!("scrypt:16384:0:1${scrypt_rest}"),
        format!("scrypt:16384:8:0${scrypt_rest}"),
        format!("scrypt:65536:1:1${scrypt_rest}"),
        format!("pbkdf2:sha256:10000001${pbkdf2_rest}"),
        format!("pbkdf2:sha256:0${pbkdf2_rest}"),
        format!("pbkdf2:sha256:99999999999999999999${pbkdf2_rest}"),
        format!("$2b$17${bcrypt_rest}"),
        format!("$2b$31${bcrypt_rest}"),
        format!("$2b$03${bcrypt_rest}"),
        format!("$2b$99${bcrypt_rest}"),
        format!("$2x$04${bcrypt_rest}"),
        format!("$2$04${bcrypt_rest}"),
        format!("$2b$4${bcrypt_rest}"),
        format!("$2b$04$!{}", &bcrypt_rest[1..]),
        format!("$argon2id$v=19$m=2097152,t=2,p=1${argon2_tail}"),
        format!("$argon2id$v=19$m=19456,t=101,p=1${argon2_tail}"),
        format!("$argon2id$v=19$m=19456,t=2,p=17${argon2_tail}"),
        format!("$argon2id$v=19$m=4294967295,t=4294967295,p=255${argon2_tail}"),
        // Garbage behind an Argon2 prefix.
        "$argon2id$".into(),
        "$argon2id$garbage".into(),
        "$argon2id$v=19$m=19456,t=2,p=1$!!!$!!!".into(),
        "$argon2id$v=19$m=19456,t=2,p=1".into(),
        format!("$argon2x$v=19$m=19456,t=2,p=1${argon2_tail}"),
        format!("$argon2id$v=18$m=256,t=1,p=1${argon2_tail}"),
        format!("$argon2id$v=19$m=256,t=1,p=1,x=1${argon2_tail}"),
        format!("$argon2id$v=19$m=1,t=1,p=1${argon2_tail}"),
        format!("$argon2id$v=19$m=256,t=0,p=1${argon2_tail}"),
    ];
    let passwords = passwords();
    for stored in &malformed {
        for password in ["pw", "", "pässwörd"] {
            assert_eq!(
                passwords.verify_blocking(password, stored),
                Err(PasswordError::Malformed),
                "{stored:?}"
            );
        }
        assert!(passwords.needs_rehash(stored), "{stored:?}");
    }
}
