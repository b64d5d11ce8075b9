//! The hashes Flask applications stored: werkzeug's scrypt and PBKDF2, and bcrypt.

use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::stored::Stored;
use super::{PasswordError, MAX_BCRYPT_COST, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_N, MAX_SCRYPT_WORK};

// werkzeug's scrypt output length: hashlib.scrypt's default dklen.
const WERKZEUG_SCRYPT_LEN: usize = 64;
// What werkzeug 3.1.9's `_hash_internal` (werkzeug/security.py) uses when a stored
// method says `pbkdf2` or `pbkdf2:HASH` without iterations: its current
// DEFAULT_PBKDF2_ITERATIONS, which is 1,000,000 since 3.1 (600,000 in 2.3, 260,000 in
// 2.0). generate_password_hash writes the iterations it used, so such hashes only come
// from hand-made strings; following werkzeug's own check keeps the two in agreement.
const WERKZEUG_DEFAULT_PBKDF2_ITERATIONS: u32 = 1_000_000;
// What the same function uses for a bare `scrypt` method: n = 2^15, r = 8, p = 1.
const WERKZEUG_DEFAULT_SCRYPT: (u64, u32, u32) = (1 << 15, 8, 1);

// bcrypt::verify compares in constant time, and like every bcrypt only reads the first
// 72 bytes of the password.
pub(super) fn bcrypt_matches(password: &[u8], hash: &str) -> Result<bool, PasswordError> {
    bcrypt::verify(password, hash).map_err(|_| PasswordError::Malformed)
}

// werkzeug's scrypt: the derived key compared in constant time.
pub(super) fn scrypt_matches(
    password: &[u8],
    params: &scrypt::Params,
    salt: &[u8],
    expected: &[u8],
) -> Result<bool, PasswordError> {
    let mut derived = Zeroizing::new([0u8; WERKZEUG_SCRYPT_LEN]);
    scrypt::scrypt(password, salt, params, &mut derived[..])
        .map_err(|_| PasswordError::Malformed)?;
    Ok(derived[..].ct_eq(expected).into())
}

// werkzeug's PBKDF2 with SHA-256 or SHA-512: the derived key compared in constant time.
pub(super) fn pbkdf2_matches(
    password: &[u8],
    sha512: bool,
    iterations: u32,
    salt: &[u8],
    expected: &[u8],
) -> bool {
    let mut derived = Zeroizing::new([0u8; 64]);
    let derived = &mut derived[..expected.len()];
    if sha512 {
        pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, derived);
    } else {
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, derived);
    }
    derived.ct_eq(expected).into()
}

// `$2b$10$` + 22 characters of salt + 31 of hash, in bcrypt's base64 alphabet.
pub(super) fn parse_bcrypt(stored: &str) -> Result<&str, PasswordError> {
    let bytes = stored.as_bytes();
    let well_formed = bytes.len() == 60
        && matches!(&bytes[..4], b"$2a$" | b"$2b$" | b"$2y$")
        && bytes[4..6].iter().all(u8::is_ascii_digit)
        && bytes[6] == b'$'
        && bytes[7..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if !well_formed {
        return Err(PasswordError::Malformed);
    }
    let cost = u32::from(bytes[4] - b'0') * 10 + u32::from(bytes[5] - b'0');
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(PasswordError::Malformed);
    }
    Ok(stored)
}

// `method$salt$hex`, as werkzeug.security.check_password_hash splits it.
pub(super) fn parse_werkzeug(stored: &str) -> Result<Stored<'_>, PasswordError> {
    let mut parts = stored.splitn(3, '$');
    let (Some(method), Some(salt), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(PasswordError::Malformed);
    };
    // werkzeug never writes an empty salt; an unsalted hash is not accepted.
    if salt.is_empty() {
        return Err(PasswordError::Malformed);
    }
    // werkzeug hashes the salt's text as it is, without decoding it.
    let salt = salt.as_bytes();
    let args: Vec<&str> = method.split(':').collect();
    match args.as_slice() {
        ["scrypt", rest @ ..] => {
            let (n, r, p) = match rest {
                [] => WERKZEUG_DEFAULT_SCRYPT,
                [n, r, p] => (number(n)?, number(r)?, number(p)?),
                _ => return Err(PasswordError::Malformed),
            };
            let params = scrypt_params(n, r, p)?;
            let expected = decode_hex(hex, WERKZEUG_SCRYPT_LEN)?;
            Ok(Stored::Scrypt {
                params,
                salt,
                expected,
            })
        }
        ["pbkdf2", rest @ ..] => {
            let (digest, iterations) = match rest {
                [] => ("sha256", WERKZEUG_DEFAULT_PBKDF2_ITERATIONS),
                [digest] => (*digest, WERKZEUG_DEFAULT_PBKDF2_ITERATIONS),
                [digest, iterations] => (*digest, number(iterations)?),
                _ => return Err(PasswordError::Malformed),
            };
            let (sha512, len) = match digest {
                "sha256" => (false, 32),
                "sha512" => (true, 64),
                _ => return Err(PasswordError::Malformed),
            };
            if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
                return Err(PasswordError::Malformed);
            }
            let expected = decode_hex(hex, len)?;
            Ok(Stored::Pbkdf2 {
                sha512,
                iterations,
                salt,
                expected,
            })
        }
        _ => Err(PasswordError::Malformed),
    }
}

// werkzeug writes N itself (a power of two); the scrypt crate takes log2(N).
fn scrypt_params(n: u64, r: u32, p: u32) -> Result<scrypt::Params, PasswordError> {
    let work = n
        .checked_mul(u64::from(r))
        .and_then(|nr| nr.checked_mul(u64::from(p)));
    let acceptable = n >= 2
        && n.is_power_of_two()
        && n <= MAX_SCRYPT_N
        && r >= 1
        && p >= 1
        && work.is_some_and(|work| work <= MAX_SCRYPT_WORK);
    if !acceptable {
        return Err(PasswordError::Malformed);
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| PasswordError::Malformed)?;
    // Also refuses what scrypt itself forbids, such as N ≥ 2^(16 r).
    scrypt::Params::new(log_n, r, p, WERKZEUG_SCRYPT_LEN).map_err(|_| PasswordError::Malformed)
}

// A decimal number of digits only (no sign, no spaces).
fn number<T: std::str::FromStr>(text: &str) -> Result<T, PasswordError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PasswordError::Malformed);
    }
    text.parse().map_err(|_| PasswordError::Malformed)
}

fn decode_hex(hex: &str, len: usize) -> Result<Vec<u8>, PasswordError> {
    let hex = hex.as_bytes();
    if hex.len() != len * 2 {
        return Err(PasswordError::Malformed);
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(PasswordError::Malformed),
    };
    hex.chunks_exact(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::hasher::tests::fast;
    use crate::password::stored::derivations;

    /// What werkzeug's `generate_password_hash(password, method="pbkdf2:sha256:1000")`
    /// stores, with the salt `saltsalt`.
    fn werkzeug_pbkdf2_sha256(password: &str) -> String {
        let mut derived = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), b"saltsalt", 1000, &mut derived);
        let hex: String = derived.iter().map(|b| format!("{b:02x}")).collect();
        format!("pbkdf2:sha256:1000$saltsalt${hex}")
    }

    #[test]
    fn a_password_nfkc_changes_costs_what_any_other_costs() {
        // A werkzeug hash of a decomposed accent, as a Flask app stored the raw input.
        let raw = "pa\u{308}sswo\u{308}rd";
        let legacy = werkzeug_pbkdf2_sha256(raw);
        let passwords = fast();
        let argon2 = passwords.hash_blocking("plain ascii").unwrap();
        let cost = |password: &str, stored: &str| {
            let before = derivations();
            let result = passwords.verify_blocking(password, stored);
            (result, derivations() - before)
        };
        // NFKC changes the first two (decomposed accent, fullwidth letters), not the
        // others; right or wrong, each costs two derivations of the legacy hash.
        assert_eq!(cost(raw, &legacy), (Ok(true), 2));
        assert_eq!(cost("ｆｕｌｌｗｉｄｔｈ", &legacy), (Ok(false), 2));
        assert_eq!(cost("plain ascii", &legacy), (Ok(false), 2));
        assert_eq!(cost("p\u{e4}ssw\u{f6}rd", &legacy), (Ok(false), 2));
        // Argon2 hashes are checked normalised only: one derivation, whatever typed.
        assert_eq!(cost("plain ascii", &argon2), (Ok(true), 1));
        assert_eq!(cost("ｐｌａｉｎ ａｓｃｉｉ", &argon2), (Ok(true), 1));
        assert_eq!(cost("pa\u{308}ss", &argon2), (Ok(false), 1));
    }

    #[test]
    fn werkzeug_methods_without_parameters_follow_werkzeug() {
        let sha256 = format!("pbkdf2$salt${}", "0".repeat(64));
        let Ok(Stored::Pbkdf2 {
            sha512, iterations, ..
        }) = Stored::parse(&sha256)
        else {
            panic!("{sha256} refused");
        };
        assert!(!sha512);
        assert_eq!(iterations, 1_000_000);
        let sha512 = format!("pbkdf2:sha512$salt${}", "0".repeat(128));
        assert!(matches!(
            Stored::parse(&sha512),
            Ok(Stored::Pbkdf2 {
                sha512: true,
                iterations: 1_000_000,
                ..
            })
        ));
        let scrypt = format!("scrypt$salt${}", "0".repeat(128));
        let Ok(Stored::Scrypt { params, .. }) = Stored::parse(&scrypt) else {
            panic!("{scrypt} refused");
        };
        assert_eq!((params.log_n(), params.r(), params.p()), (15, 8, 1));
        // Digest lengths follow the method.
        assert!(Stored::parse(&format!("pbkdf2:sha512$salt${}", "0".repeat(64))).is_err());
        assert!(Stored::parse(&format!("pbkdf2:sha256$salt${}", "0".repeat(128))).is_err());
    }

    #[test]
    fn legacy_hashes_of_raw_input_verify() {
        // A werkzeug hash of the decomposed form, as an old Flask app stored it.
        let raw = "pa\u{308}sswo\u{308}rd";
        let stored = werkzeug_pbkdf2_sha256(raw);
        let passwords = fast();
        assert_eq!(passwords.verify_blocking(raw, &stored), Ok(true));
        assert_eq!(
            passwords.verify_blocking("p\u{e4}ssw\u{f6}rd", &stored),
            Ok(false)
        );
    }
}
