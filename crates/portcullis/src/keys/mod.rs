//! Secret keys, rotation and purpose-separated subkeys.
//!
//! A [`Keyring`] holds the current secret and any number of fallback secrets (Flask's
//! `SECRET_KEY_FALLBACKS`). Every signed artifact — sessions, CSRF tokens, JWTs and
//! whatever comes later — signs with the current key and verifies with any key of the
//! ring, so rotating a key never logs anybody out: put the new key first, keep the old
//! one as a fallback until every artifact signed with it has expired, then drop it.
//!
//! No raw secret ever serves two purposes: each [`Purpose`] gets its own subkeys derived
//! with HKDF-SHA256, and its own key ids, so a CSRF token can never be replayed as a
//! session value and the key id of one purpose says nothing about another's.
//!
//! No crate rotates keys across every signed artifact, so Portcullis writes the keyring
//! itself; the primitives (HKDF, HMAC-SHA256, constant-time comparison) come from the
//! RustCrypto crates.
//!
//! ```
//! use portcullis::keys::{Keyring, Purpose, SecretKey};
//!
//! let old = SecretKey::generate();
//! let signed = Keyring::new(old.clone(), vec![]).signer(Purpose::CSRF).sign(b"hello");
//!
//! // Rotate: a new current key, the old one kept as a fallback.
//! let rotated = Keyring::new(SecretKey::generate(), vec![old]);
//! assert_eq!(rotated.signer(Purpose::CSRF).verify(&signed).unwrap(), b"hello");
//!
//! // Once the fallback is dropped, the old signature no longer verifies.
//! let dropped = Keyring::new(SecretKey::generate(), vec![]);
//! assert!(dropped.signer(Purpose::CSRF).verify(&signed).is_err());
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `secret.rs` | [`SecretKey`] and the checks that refuse a weak one ([`KeyWeakness`]) |
//! | `keyring.rs` | [`Keyring`], [`Purpose`] and the HKDF derivation of each [`Subkey`] |
//! | `signer.rs` | [`Signer`]: `payload.kid.mac` values, signed and verified |

mod keyring;
#[cfg(feature = "totp")]
mod sealer;
mod secret;
mod signer;

pub use keyring::{Keyring, Purpose, Subkey};
#[cfg(feature = "totp")]
pub use sealer::{SealError, Sealer};
pub use secret::{KeyWeakness, SecretKey, KNOWN_EXAMPLE_KEYS, MIN_KEY_BYTES};
pub use signer::{SignatureError, Signer};

/// Fills `buf` from the operating system's random source.
///
/// Failure of the OS source leaves no safe fallback, so it aborts the request with a
/// panic (caught and answered with a 500) rather than producing predictable values.
pub(crate) fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random source failed");
}
