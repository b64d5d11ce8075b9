//! Stored password hashes (werkzeug `pbkdf2:`/`scrypt:`, bcrypt `$2b$`, Argon2 PHC
//! strings, anything) verified against a fixed password.
//!
//! `needs_rehash` (the stored-hash parser with no derivation) sees every input;
//! `verify_blocking` sees those whose declared cost is small, since the library's
//! bounds still allow a second or two of honest work per hash and the fuzzer wants
//! thousands of executions a second. Costs are read here from the text, roughly and
//! conservatively: anything that names a larger cost, or none (then the algorithm's
//! default applies), is only parsed.
//!
//! Properties: nothing panics; a hash that verifies also parses, so asks to be
//! rehashed only if it is not a current Argon2id hash (no property on the answer).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::password::{PasswordConfig, Passwords};

const PASSWORD: &str = "correct horse battery staple";

fn passwords() -> &'static Passwords {
    static PASSWORDS: OnceLock<Passwords> = OnceLock::new();
    PASSWORDS.get_or_init(|| {
        // The cheapest Argon2id the API allows: the dummy verification of an unknown
        // account and the pooled memory follow these parameters.
        Passwords::new(
            PasswordConfig::default()
                .memory_kib(8)
                .iterations(1)
                .parallelism(1)
                .max_concurrent(1),
        )
        .unwrap()
    })
}

/// The decimal number right after `key` in `s`, if any.
fn number_after(s: &str, key: &str) -> Option<u64> {
    let start = s.find(key)? + key.len();
    let digits: String = s[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Whether the cost `s` declares is small enough to compute in well under a
/// millisecond or so. Errs on the side of skipping.
fn cheap(s: &str) -> bool {
    if s.starts_with("pbkdf2") {
        // pbkdf2:sha256:ITER$salt$hash; no ITER means werkzeug's default (600,000).
        let iterations = s
            .split('$')
            .next()
            .and_then(|method| method.rsplit(':').next())
            .and_then(|n| n.parse::<u64>().ok());
        return matches!(iterations, Some(n) if n <= 2_000)
            && s.split('$')
                .next()
                .is_some_and(|m| m.matches(':').count() == 2);
    }
    if s.starts_with("scrypt") {
        // scrypt:N:r:p$salt$hash; missing parts mean werkzeug's 32768:8:1.
        let method = s.split('$').next().unwrap_or("");
        let parts: Vec<Option<u64>> = method.split(':').skip(1).map(|n| n.parse().ok()).collect();
        return match parts.as_slice() {
            [Some(n), Some(r), Some(p)] => n.saturating_mul(*r).saturating_mul(*p) <= 1 << 12,
            _ => false,
        };
    }
    if s.starts_with("$2") {
        // $2b$COST$...: bcrypt's cost is a power of two.
        let cost = s.get(4..6).and_then(|c| c.parse::<u32>().ok());
        return matches!(cost, Some(c) if c <= 5) && s.get(3..4) == Some("$");
    }
    if s.starts_with("$argon2") {
        let m = number_after(s, "m=");
        let t = number_after(s, "t=");
        let p = number_after(s, "p=");
        return matches!((m, t, p), (Some(m), Some(t), Some(p))
            if m.saturating_mul(t) <= 256 && p <= 4 && s.matches("m=").count() == 1
                && s.matches("t=").count() == 1);
    }
    // Anything else: unknown formats are refused before any work.
    true
}

fuzz_target!(|data: &[u8]| {
    let Ok(stored) = std::str::from_utf8(data) else {
        return;
    };
    let passwords = passwords();
    let _ = passwords.needs_rehash(stored);
    if cheap(stored) {
        let _ = passwords.verify_blocking(PASSWORD, stored);
    }
});
