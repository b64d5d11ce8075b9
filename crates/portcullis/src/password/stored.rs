//! A stored hash of any supported kind: parsed and bounded before any work is done,
//! then checked.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Params, Version};

use super::legacy::{self, parse_bcrypt, parse_werkzeug};
use super::limits::argon2_limit_exceeded;
use super::memory::WorkingMemory;
use super::PasswordError;

#[cfg(test)]
thread_local! {
    /// Key derivations run on this thread: what a test counts instead of timing them.
    static DERIVATIONS_ON_THIS_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Key derivations run on this thread so far.
#[cfg(test)]
pub(super) fn derivations() -> usize {
    DERIVATIONS_ON_THIS_THREAD.with(std::cell::Cell::get)
}

/// A stored hash, parsed and checked against the limits before any work is done.
pub(super) enum Stored<'a> {
    Argon2(PasswordHash<'a>),
    Bcrypt(&'a str),
    Scrypt {
        params: scrypt::Params,
        salt: &'a [u8],
        expected: Vec<u8>,
    },
    Pbkdf2 {
        sha512: bool,
        iterations: u32,
        salt: &'a [u8],
        expected: Vec<u8>,
    },
}

impl<'a> Stored<'a> {
    pub(super) fn parse(stored: &'a str) -> Result<Self, PasswordError> {
        if stored.starts_with("$argon2") {
            parse_argon2(stored).map(Stored::Argon2)
        } else if stored.starts_with("$2") {
            parse_bcrypt(stored).map(Stored::Bcrypt)
        } else if stored.starts_with("scrypt") || stored.starts_with("pbkdf2") {
            parse_werkzeug(stored)
        } else {
            Err(PasswordError::Malformed)
        }
    }

    // Hashes written by Flask applications, which hashed the password as typed.
    pub(super) fn is_legacy(&self) -> bool {
        !matches!(self, Stored::Argon2(_))
    }

    pub(super) fn matches(
        &self,
        password: &[u8],
        memory: &WorkingMemory,
    ) -> Result<bool, PasswordError> {
        #[cfg(test)]
        DERIVATIONS_ON_THIS_THREAD.with(|count| count.set(count.get() + 1));
        match self {
            Stored::Argon2(hash) => verify_argon2(hash, password, memory),
            Stored::Bcrypt(hash) => legacy::bcrypt_matches(password, hash),
            Stored::Scrypt {
                params,
                salt,
                expected,
            } => legacy::scrypt_matches(password, params, salt, expected),
            Stored::Pbkdf2 {
                sha512,
                iterations,
                salt,
                expected,
            } => Ok(legacy::pbkdf2_matches(
                password,
                *sha512,
                *iterations,
                salt,
                expected,
            )),
        }
    }
}

/// What `PasswordVerifier::verify_password` does for Argon2, with working memory from
/// the pool instead of a fresh allocation (see [`WorkingMemory`]): the algorithm,
/// version and parameters come from the stored hash, and the outputs are compared by
/// `password_hash::Output`'s constant-time equality.
fn verify_argon2(
    hash: &PasswordHash<'_>,
    password: &[u8],
    memory: &WorkingMemory,
) -> Result<bool, PasswordError> {
    fn malformed<E>(_: E) -> PasswordError {
        PasswordError::Malformed
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(PasswordError::Malformed);
    };
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(malformed)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(malformed)?
        .unwrap_or_default();
    // Carries the output length of the stored hash.
    let params = Params::try_from(hash).map_err(malformed)?;
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(malformed)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = memory.derive(&argon2, password, salt, expected.len());
    Ok(computed.map_err(malformed)? == expected)
}

fn parse_argon2(stored: &str) -> Result<PasswordHash<'_>, PasswordError> {
    let hash = PasswordHash::new(stored).map_err(|_| PasswordError::Malformed)?;
    Algorithm::try_from(hash.algorithm).map_err(|_| PasswordError::Malformed)?;
    if let Some(version) = hash.version {
        Version::try_from(version).map_err(|_| PasswordError::Malformed)?;
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(PasswordError::Malformed);
    }
    // argon2 computes `p × 8` in a u32 before it compares `p` with its maximum, so a
    // larger `p` overflows (a panic where overflow checks are on) instead of being
    // refused: refused here first.
    if hash
        .params
        .get_decimal("p")
        .is_some_and(|p| p > Params::MAX_P_COST)
    {
        return Err(PasswordError::Malformed);
    }
    let params = Params::try_from(&hash).map_err(|_| PasswordError::Malformed)?;
    if argon2_limit_exceeded(params.m_cost(), params.t_cost(), params.p_cost()).is_some() {
        return Err(PasswordError::Malformed);
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};

    use crate::password::hasher::tests::fast;

    /// Found by the `password_hash_strings` fuzz target
    /// (`fuzz/artifacts-found/password_hash_strings-parallelism-overflow.bin`): a
    /// parallelism above argon2's maximum overflowed its `p × 8` check.
    #[test]
    fn a_parallelism_too_large_to_check_is_malformed_not_a_panic() {
        for p in ["16777216", "536870912", "999993841", "4294967295"] {
            let stored = format!("$argon2d$v=16$m=8,t=1,p={p}$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAA");
            assert_eq!(
                fast().verify_blocking("x", &stored),
                Err(crate::password::PasswordError::Malformed),
                "{stored}"
            );
            assert!(fast().needs_rehash(&stored), "{stored}");
        }
    }

    #[test]
    fn argon2i_and_argon2d_hashes_verify() {
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(256, 1, 1, None).unwrap();
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            let stored = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"legacy", &salt)
                .unwrap()
                .to_string();
            assert_eq!(fast().verify_blocking("legacy", &stored), Ok(true));
            assert_eq!(fast().verify_blocking("legacyx", &stored), Ok(false));
        }
    }

    #[test]
    fn hashes_with_other_costs_and_lengths_verify_with_pooled_memory() {
        let passwords = fast(); // m = 256 KiB in its pool
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        // Less memory than the pool's buffers, more (a buffer of its own), two lanes,
        // and outputs of 16 and 64 bytes (argon2-cffi and passlib allow any length).
        for (m, t, p, len) in [
            (64, 1, 1, 32),
            (1024, 1, 1, 32),
            (512, 2, 2, 16),
            (256, 1, 1, 64),
        ] {
            let params = Params::new(m, t, p, Some(len)).unwrap();
            let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"costly", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                passwords.verify_blocking("costly", &stored),
                Ok(true),
                "{stored}"
            );
            assert_eq!(
                passwords.verify_blocking("costlz", &stored),
                Ok(false),
                "{stored}"
            );
        }
        // A hash whose output was cut short, or lengthened, no longer verifies.
        let stored = passwords.hash_blocking("costly").unwrap();
        let (head, output) = stored.rsplit_once('$').unwrap();
        let shorter = format!("{head}${}", &output[..output.len() - 4]);
        assert_ne!(passwords.verify_blocking("costly", &shorter), Ok(true));
        let longer = format!("{head}${output}AAAA");
        assert_ne!(passwords.verify_blocking("costly", &longer), Ok(true));
    }
}
