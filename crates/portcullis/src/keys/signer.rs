//! Signing and verifying values for one purpose with every key of the ring.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Purpose, Subkey};

/// Signs and verifies values for one purpose with HMAC-SHA256.
///
/// A signed value reads `payload.kid.mac`, all base64url: the payload is readable by
/// anyone who holds the value (sign, do not encrypt, secrets), and the `kid` says which
/// key of the ring made it so that verification needs one MAC, not one per key.
///
/// ```
/// use portcullis::keys::{Keyring, Purpose, SecretKey};
///
/// let signer = Keyring::new(SecretKey::generate(), vec![]).signer(Purpose::COOKIE);
/// let signed = signer.sign(b"user=7");
/// assert_eq!(signer.verify(&signed).unwrap(), b"user=7");
/// let tampered = signed.replacen("dXNlcj03", "dXNlcj04", 1);
/// assert!(signer.verify(&tampered).is_err());
/// ```
#[derive(Clone)]
pub struct Signer {
    purpose: Purpose,
    subkeys: Arc<[Subkey]>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("purpose", &self.purpose)
            .field("keys", &self.subkeys.len())
            .finish()
    }
}

/// Why a signed value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not of the form `payload.kid.mac`, or not base64url.
    #[error("malformed signed value")]
    Malformed,
    /// Signed by a key that is not (or no longer) in the keyring.
    #[error("signed with an unknown key")]
    UnknownKey,
    /// The signature does not match the payload.
    #[error("bad signature")]
    BadSignature,
}

impl Signer {
    pub(super) fn new(purpose: Purpose, subkeys: Arc<[Subkey]>) -> Self {
        Self { purpose, subkeys }
    }

    fn mac(&self, subkey: &Subkey, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(subkey.bytes().as_ref())
            .expect("HMAC accepts keys of any length");
        // The purpose and key id are bound into the MAC as well as into the key.
        mac.update(self.purpose.label().as_bytes());
        mac.update(b"\0");
        mac.update(subkey.id().as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }

    /// Signs `payload` with the current key.
    pub fn sign(&self, payload: &[u8]) -> String {
        let subkey = &self.subkeys[0];
        let tag = self.mac(subkey, payload).finalize().into_bytes();
        let mut out = URL_SAFE_NO_PAD.encode(payload);
        out.push('.');
        out.push_str(subkey.id());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, &mut out);
        out
    }

    /// Verifies a value signed by any key of the ring and returns its payload.
    pub fn verify(&self, signed: &str) -> Result<Vec<u8>, SignatureError> {
        let mut parts = signed.splitn(3, '.');
        let (Some(payload), Some(kid), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SignatureError::Malformed);
        };
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| SignatureError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SignatureError::Malformed)?;
        let subkey = self
            .subkeys
            .iter()
            .find(|k| k.id() == kid)
            .ok_or(SignatureError::UnknownKey)?;
        // verify_slice compares in constant time.
        self.mac(subkey, &payload)
            .verify_slice(&tag)
            .map_err(|_| SignatureError::BadSignature)?;
        Ok(payload)
    }

    /// The key id new values are signed with.
    pub fn current_key_id(&self) -> &str {
        self.subkeys[0].id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Keyring, SecretKey};

    #[test]
    fn value_signed_for_one_purpose_is_refused_for_another() {
        let ring = Keyring::new(SecretKey::generate(), vec![]);
        let csrf = ring.signer(Purpose::CSRF).sign(b"x");
        assert!(ring.signer(Purpose::SESSION).verify(&csrf).is_err());
    }

    #[test]
    fn rotation_verifies_fallbacks_until_they_are_removed() {
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let signed_old = Keyring::new(old.clone(), vec![])
            .signer(Purpose::JWT)
            .sign(b"p");

        let rotated = Keyring::new(new.clone(), vec![old]);
        let signer = rotated.signer(Purpose::JWT);
        assert_eq!(signer.verify(&signed_old).unwrap(), b"p");
        // New values are signed with the new key.
        let signed_new = signer.sign(b"q");
        assert!(signed_new.contains(signer.current_key_id()));

        let retired = Keyring::new(new, vec![]).signer(Purpose::JWT);
        assert_eq!(retired.verify(&signed_old), Err(SignatureError::UnknownKey));
        assert_eq!(retired.verify(&signed_new).unwrap(), b"q");
    }

    #[test]
    fn forged_and_malformed_values_are_refused() {
        let signer = Keyring::new(SecretKey::generate(), vec![]).signer(Purpose::CSRF);
        let signed = signer.sign(b"data");
        let (rest, _) = signed.rsplit_once('.').unwrap();
        let forged = format!("{rest}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert_eq!(signer.verify(&forged), Err(SignatureError::BadSignature));
        // A different key with a stolen key id cannot sign.
        let other = Keyring::new(SecretKey::generate(), vec![]).signer(Purpose::CSRF);
        let foreign = other.sign(b"data");
        let mut pieces: Vec<&str> = foreign.split('.').collect();
        pieces[1] = signer.current_key_id();
        assert_eq!(
            signer.verify(&pieces.join(".")),
            Err(SignatureError::BadSignature)
        );
        for junk in ["", ".", "..", "a.b", "!!.??.##", "a.b.c.d"] {
            assert!(signer.verify(junk).is_err(), "{junk:?} verified");
        }
    }
}
