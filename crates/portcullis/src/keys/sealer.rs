//! Secrets sealed at rest under a keyring subkey: authenticated encryption
//! (XChaCha20-Poly1305 from RustCrypto) whose key rotates with the keyring.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::Subkey;

const NONCE_LEN: usize = 24;

/// A sealed value could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Not the `kid.data` shape this sealer writes.
    #[error("a sealed value is malformed")]
    Malformed,
    /// Sealed under a key no longer (or never) in the ring.
    #[error("a sealed value names a key not in the ring")]
    UnknownKey,
    /// The value, or the context it was sealed for, was altered.
    #[error("a sealed value does not authenticate")]
    Forged,
}

/// Encrypts small secrets (a TOTP secret) for storage, under the current subkey of
/// one [`Purpose`](crate::keys::Purpose), and opens them under any subkey still in the ring: rotating the
/// keyring rotates these keys too, and [`Sealer::needs_reseal`] says which stored
/// values to write again.
///
/// Each value is sealed for a context (the owner's id, say): a value copied to
/// another row of the database does not open there.
///
/// ```
/// use portcullis::keys::{Keyring, Purpose, SecretKey};
///
/// let keyring = Keyring::new(SecretKey::generate(), vec![]);
/// let sealer = keyring.sealer(Purpose::TOTP);
/// let sealed = sealer.seal(b"JBSWY3DPEHPK3PXP", b"user:7");
/// assert_eq!(&sealer.open(&sealed, b"user:7").unwrap()[..], b"JBSWY3DPEHPK3PXP");
/// // Moved to another user's row, it does not open.
/// assert!(sealer.open(&sealed, b"user:8").is_err());
/// ```
#[derive(Clone)]
pub struct Sealer {
    subkeys: Arc<[Subkey]>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("keys", &self.subkeys.len())
            .finish()
    }
}

fn cipher(subkey: &Subkey) -> XChaCha20Poly1305 {
    // The first 32 of the subkey's 64 HKDF bytes: derived for this purpose only.
    XChaCha20Poly1305::new_from_slice(&subkey.bytes()[..32]).expect("32 bytes is the key length")
}

impl Sealer {
    pub(super) fn new(subkeys: Arc<[Subkey]>) -> Self {
        Self { subkeys }
    }

    /// `plaintext` encrypted under the current key for `context`: `kid.` followed by
    /// the base64url of a random 192-bit nonce and the ciphertext.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let subkey = &self.subkeys[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher(subkey)
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad(subkey, context),
                },
            )
            .expect("encryption of a bounded value cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{}.{}", subkey.id(), URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The plaintext of a value [`Sealer::seal`] wrote for `context`, under any key of
    /// the ring.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (kid, data) = sealed.split_once('.').ok_or(SealError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let subkey = self
            .subkeys
            .iter()
            .find(|k| k.id() == kid)
            .ok_or(SealError::UnknownKey)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        cipher(subkey)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad(subkey, context),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Forged)
    }

    /// Whether `sealed` was written under a key other than the current one, and should
    /// be opened and sealed again before that key leaves the ring.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed.split_once('.').map(|(kid, _)| kid) != Some(self.subkeys[0].id())
    }
}

/// The associated data: the key id (so a value cannot be relabelled) and the context.
fn aad(subkey: &Subkey, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(subkey.id().len() + 1 + context.len());
    aad.extend_from_slice(subkey.id().as_bytes());
    aad.push(0);
    aad.extend_from_slice(context);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Keyring, Purpose, SecretKey};

    #[test]
    fn sealed_values_survive_rotation_until_their_key_leaves() {
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let sealed = Keyring::new(old.clone(), vec![])
            .sealer(Purpose::TOTP)
            .seal(b"secret", b"user:1");
        let rotated = Keyring::new(new.clone(), vec![old]).sealer(Purpose::TOTP);
        assert_eq!(&rotated.open(&sealed, b"user:1").unwrap()[..], b"secret");
        assert!(rotated.needs_reseal(&sealed));
        let resealed = rotated.seal(b"secret", b"user:1");
        assert!(!rotated.needs_reseal(&resealed));
        let retired = Keyring::new(new, vec![]).sealer(Purpose::TOTP);
        assert_eq!(
            retired.open(&sealed, b"user:1").unwrap_err(),
            SealError::UnknownKey
        );
        assert_eq!(&retired.open(&resealed, b"user:1").unwrap()[..], b"secret");
    }

    #[test]
    fn altered_relabelled_and_misplaced_values_do_not_open() {
        let ring = Keyring::new(SecretKey::generate(), vec![]);
        let sealer = ring.sealer(Purpose::TOTP);
        let sealed = sealer.seal(b"secret", b"user:1");
        // Another purpose's keys do not open it, even under the same secret.
        let other = ring.sealer(Purpose::new("app/other"));
        assert!(other.open(&sealed, b"user:1").is_err());
        // A flipped bit anywhere in the data.
        let (kid, data) = sealed.split_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(data).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let forged = format!("{kid}.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(
                sealer.open(&forged, b"user:1").unwrap_err(),
                SealError::Forged
            );
            bytes[i] ^= 1;
        }
        assert_eq!(
            sealer.open(&sealed, b"user:2").unwrap_err(),
            SealError::Forged
        );
        for junk in ["", ".", "x", "kid.", "kid.AAAA", "a.b.c"] {
            assert!(sealer.open(junk, b"user:1").is_err(), "{junk:?}");
        }
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(sealed, sealer.seal(b"secret", b"user:1"));
    }
}
