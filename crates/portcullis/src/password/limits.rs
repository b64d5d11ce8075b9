//! What a stored hash, or the configuration, may ask for.

// What a stored hash may ask for. Its parameters come from the database, so a
// hostile or corrupted hash could otherwise make one login allocate any amount of
// memory or run for minutes, with a hashing permit held all along. Each limit is a few
// times the default of the software that writes such hashes: enough for every hash a
// real deployment holds, too little to take the machine.

/// The most memory a stored Argon2 hash may ask for: 128 MiB, in KiB (6.7 times the
/// default 19 MiB; argon2-cffi writes 64 MiB, and 100 MiB before its version 21.2).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 128 * 1024;
/// The most passes a stored Argon2 hash may ask for (4 times the default 2).
pub const MAX_ARGON2_ITERATIONS: u32 = 8;
/// The most work a stored Argon2 hash may ask for, as memory × passes (KiB): 8 times
/// the default's 19,456 × 2, so that a hash cannot take the most memory and the most
/// passes at once.
pub const MAX_ARGON2_WORK: u64 = 8 * 19_456 * 2;
/// The most lanes a stored Argon2 hash may ask for. Lanes split the memory rather than
/// add to it, so they do not change the work.
pub const MAX_ARGON2_PARALLELISM: u32 = 16;
/// The highest bcrypt cost accepted: 14, 4 times the work of the cost 12 that bcrypt
/// and Flask-Bcrypt use by default.
pub const MAX_BCRYPT_COST: u32 = 14;
/// The highest scrypt cost N accepted: 2^17, 4 times werkzeug's 2^15.
pub const MAX_SCRYPT_N: u64 = 1 << 17;
/// The most work a stored scrypt hash may ask for, as N × r × p: 4 times werkzeug's
/// N = 2^15, r = 8, p = 1 (which takes 32 MiB); at most 128 MiB of memory.
pub const MAX_SCRYPT_WORK: u64 = 4 * (1 << 15) * 8;
/// The most PBKDF2 iterations accepted: twice werkzeug's current default of 1,000,000
/// (PBKDF2 needs no memory, so each iteration is pure time).
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;

/// The first Argon2 limit that `memory_kib`, `iterations` and `parallelism` pass, as
/// the configuration error names it; `None` within every limit. The one check for a
/// [`PasswordConfig`](super::PasswordConfig) and for a stored hash, so that this
/// module never writes a hash it would refuse to verify.
pub(super) fn argon2_limit_exceeded(
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
) -> Option<&'static str> {
    if memory_kib > MAX_ARGON2_MEMORY_KIB {
        return Some("memory_kib is above 128 MiB");
    }
    if iterations > MAX_ARGON2_ITERATIONS {
        return Some("iterations is above 8");
    }
    if u64::from(memory_kib) * u64::from(iterations) > MAX_ARGON2_WORK {
        return Some("memory_kib × iterations is above MAX_ARGON2_WORK");
    }
    if parallelism > MAX_ARGON2_PARALLELISM {
        return Some("parallelism is above 16");
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::password::hasher::tests::fast;
    use crate::password::stored::{derivations, Stored};
    use crate::password::PasswordError;

    #[test]
    fn hashes_demanding_more_than_the_limits_are_never_computed() {
        let passwords = fast();
        let argon2 = passwords.hash_blocking("pw").unwrap();
        let tail = argon2.splitn(5, '$').nth(4).unwrap();
        let argon2_with = |params: &str| format!("$argon2id$v=19${params}${tail}");
        let scrypt_hex = "0".repeat(128);
        let pbkdf2_hex = "0".repeat(64);
        let bcrypt_rest = "xeF9wOsXN/wmwKSw24i5eet6MOWLNCA31NOeuZy.LnAtUMauloyyS";
        let too_costly = [
            // 256 MiB, 9 passes, and 128 MiB × 3 passes (each limit kept, the work not).
            argon2_with("m=262144,t=1,p=1"),
            argon2_with("m=19456,t=9,p=1"),
            argon2_with("m=131072,t=3,p=1"),
            argon2_with("m=1048576,t=2,p=1"),
            format!("scrypt:262144:8:1$salt${scrypt_hex}"),
            format!("scrypt:131072:8:2$salt${scrypt_hex}"),
            format!("scrypt:32768:8:5$salt${scrypt_hex}"),
            format!("pbkdf2:sha256:2000001$salt${pbkdf2_hex}"),
            format!("pbkdf2:sha512:10000000$salt${scrypt_hex}"),
            format!("$2b$15${bcrypt_rest}"),
            format!("$2b$16${bcrypt_rest}"),
        ];
        for stored in &too_costly {
            let before = derivations();
            assert_eq!(
                passwords.verify_blocking("pw", stored),
                Err(PasswordError::Malformed),
                "{stored}"
            );
            assert_eq!(derivations(), before, "{stored} was computed");
            assert!(passwords.needs_rehash(stored));
        }
        // Up to the limits, hashes parse (and would be computed).
        for within in [
            argon2_with("m=131072,t=2,p=4"),
            argon2_with("m=38912,t=8,p=1"),
            format!("scrypt:131072:8:1$salt${scrypt_hex}"),
            format!("pbkdf2:sha256:2000000$salt${pbkdf2_hex}"),
            format!("$2b$14${bcrypt_rest}"),
        ] {
            assert!(Stored::parse(&within).is_ok(), "{within}");
        }
    }
}
