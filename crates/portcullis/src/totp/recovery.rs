//! Recovery codes: single-use stand-ins for the second factor.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::{Keyring, Purpose, Subkey};

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// The alphabet of a code: base32's lower-case letters and digits 2–7, which read
/// aloud and type without confusion (no 0/O, no 1/l).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Characters per code: 24 × 5 bits = 120 bits.
const CODE_CHARS: usize = 24;

/// Makes and checks recovery codes: 24 characters of 5 bits each (120 bits), shown
/// once as `xxxx-xxxx-xxxx-xxxx-xxxx-xxxx`, stored only as HMAC-SHA256 under a keyring
/// subkey ([`Purpose::RECOVERY`]). At 112 bits and more, a SHA-2 hash is enough for a
/// lookup secret (ASVS 5.0, 6.5.2): nobody can search that space; the key adds that
/// a stolen database alone cannot test any guess.
///
/// Single use is the store's: mark a code used with one conditional write (`UPDATE …
/// SET used_at = $now WHERE user_id = $1 AND code_hash = ANY($2) AND used_at IS
/// NULL`), so two requests racing with one code cannot both pass.
///
/// ```
/// use portcullis::keys::{Keyring, SecretKey};
/// use portcullis::totp::RecoveryCodes;
///
/// let codes = RecoveryCodes::new(&Keyring::new(SecretKey::generate(), vec![]));
/// let (shown, stored) = codes.generate();
/// assert_eq!(shown.len(), 10);
/// // What a user types, in any case and with or without dashes, hashes to a value
/// // among those stored.
/// let typed = shown[3].to_uppercase().replace('-', " ");
/// assert!(codes.candidates(&typed).iter().any(|hash| hash == &stored[3]));
/// assert!(codes.candidates("aaaa-aaaa-aaaa-aaaa").iter().all(|h| !stored.contains(h)));
/// ```
#[derive(Clone)]
pub struct RecoveryCodes {
    subkeys: Vec<Subkey>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("keys", &self.subkeys.len())
            .finish()
    }
}

impl RecoveryCodes {
    /// Codes hashed under `keyring`'s recovery subkeys.
    pub fn new(keyring: &Keyring) -> Self {
        Self {
            subkeys: keyring.subkeys(Purpose::RECOVERY),
        }
    }

    /// [`RECOVERY_CODE_COUNT`] new codes: what to show the user once, and what to
    /// store (the same order).
    pub fn generate(&self) -> (Vec<String>, Vec<String>) {
        (0..RECOVERY_CODE_COUNT)
            .map(|_| {
                let mut bytes = [0u8; CODE_CHARS];
                crate::keys::fill_random(&mut bytes);
                let plain: String = bytes
                    .iter()
                    .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                    .collect();
                let groups: Vec<&str> = (0..CODE_CHARS)
                    .step_by(4)
                    .map(|at| &plain[at..at + 4])
                    .collect();
                let shown = groups.join("-");
                let stored = hash(&self.subkeys[0], &plain);
                (shown, stored)
            })
            .unzip()
    }

    /// The stored forms `typed` would have under each key of the ring (the current
    /// key's first); empty when it cannot be a code. Look them up with one
    /// conditional write, as above.
    pub fn candidates(&self, typed: &str) -> Vec<String> {
        let Some(normal) = normalise(typed) else {
            return Vec::new();
        };
        self.subkeys.iter().map(|key| hash(key, &normal)).collect()
    }

    /// Whether a stored form was made under a key other than the current one.
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .split_once(':')
            .is_some_and(|(kid, _)| kid == self.subkeys[0].id())
    }
}

/// A typed code's characters, lower case, without spaces or dashes.
fn normalise(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let normal: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (normal.len() == CODE_CHARS && normal.bytes().all(|b| ALPHABET.contains(&b))).then_some(normal)
}

fn hash(key: &Subkey, normal: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes()).expect("HMAC takes any key");
    mac.update(normal.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("{}:{}", key.id(), data_encoding::HEXLOWER.encode(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    #[test]
    fn codes_are_distinct_random_and_survive_rotation() {
        let old = SecretKey::generate();
        let codes = RecoveryCodes::new(&Keyring::new(old.clone(), vec![]));
        let (shown, stored) = codes.generate();
        let unique: std::collections::HashSet<_> = shown.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODE_COUNT);
        assert!(shown.iter().all(|c| c.len() == 29));
        let rotated = RecoveryCodes::new(&Keyring::new(SecretKey::generate(), vec![old]));
        let candidates = rotated.candidates(&shown[0]);
        assert_eq!(candidates.len(), 2);
        assert_eq!(candidates[1], stored[0]);
        assert!(!rotated.is_current(&stored[0]));
    }

    #[test]
    fn junk_is_no_candidate() {
        let codes = RecoveryCodes::new(&Keyring::new(SecretKey::generate(), vec![]));
        for junk in [
            "",
            "abcd",
            "aaaa-aaaa-aaaa-aaa0",
            "аааа-аааа-аааа-аааа",
            &"a".repeat(100),
        ] {
            assert!(codes.candidates(junk).is_empty(), "{junk:?}");
        }
    }
}
