//! The keyring, and the purpose-separated subkeys derived from each of its secrets.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{SecretKey, Signer};

const HKDF_SALT: &[u8] = b"portcullis keyring v1";
const SUBKEY_LEN: usize = 64;
const KEY_ID_LEN: usize = 6;

/// What a subkey is for. Each purpose gets its own HKDF-derived keys and key ids.
///
/// ```
/// use portcullis::keys::Purpose;
///
/// const INVITES: Purpose = Purpose::new("myapp/invites");
/// assert_eq!(INVITES.label(), "myapp/invites");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Purpose(&'static str);

impl Purpose {
    /// Server-side session cookies.
    pub const SESSION: Purpose = Purpose("portcullis/session");
    /// CSRF tokens.
    pub const CSRF: Purpose = Purpose("portcullis/csrf");
    /// JSON Web Tokens.
    pub const JWT: Purpose = Purpose("portcullis/jwt");
    /// Signed or private cookies other than the session.
    pub const COOKIE: Purpose = Purpose("portcullis/cookie");
    /// TOTP secrets sealed at rest.
    pub const TOTP: Purpose = Purpose("portcullis/totp");
    /// Recovery codes, hashed under a key so that a copy of the database alone
    /// cannot test guesses.
    pub const RECOVERY: Purpose = Purpose("portcullis/recovery");
    /// Password-reset links.
    pub const RESET: Purpose = Purpose("portcullis/reset");
    /// Email-confirmation links.
    pub const EMAIL: Purpose = Purpose("portcullis/email");

    /// A purpose of the application's own; use a label nobody else uses.
    pub const fn new(label: &'static str) -> Self {
        Self(label)
    }

    /// The label mixed into the derivation.
    pub const fn label(&self) -> &'static str {
        self.0
    }
}

/// One derived subkey and the id that names it in signed artifacts.
#[derive(Clone)]
pub struct Subkey {
    id: String,
    bytes: Zeroizing<[u8; SUBKEY_LEN]>,
}

impl Subkey {
    /// The key id (`kid`): 8 base64url characters, derived, never the key itself.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The 64 subkey bytes, for a primitive that needs raw key material (an HS256
    /// JWT key, a cookie `Key`).
    pub fn bytes(&self) -> &[u8; SUBKEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for Subkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subkey")
            .field("id", &self.id)
            .field("bytes", &"[redacted]")
            .finish()
    }
}

fn derive(secret: &SecretKey, purpose: Purpose) -> Subkey {
    let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.bytes());
    let mut bytes = Zeroizing::new([0u8; SUBKEY_LEN]);
    // 64 bytes is far below HKDF-SHA256's limit of 255 × 32, so expand cannot fail.
    hkdf.expand_multi_info(&[b"key:", purpose.0.as_bytes()], bytes.as_mut())
        .expect("64 bytes is a valid HKDF-SHA256 output length");
    let mut id = [0u8; KEY_ID_LEN];
    hkdf.expand_multi_info(&[b"kid:", purpose.0.as_bytes()], &mut id)
        .expect("6 bytes is a valid HKDF-SHA256 output length");
    Subkey {
        id: URL_SAFE_NO_PAD.encode(id),
        bytes,
    }
}

/// The current secret and its fallbacks.
///
/// Cheap to clone (the secrets are shared). `Debug` never shows a secret.
///
/// ```
/// use portcullis::keys::{Keyring, Purpose, SecretKey};
///
/// let keyring = Keyring::new(SecretKey::generate(), vec![SecretKey::generate()]);
/// let subkeys = keyring.subkeys(Purpose::JWT);
/// assert_eq!(subkeys.len(), 2);
/// assert_ne!(subkeys[0].id(), subkeys[1].id());
/// assert!(format!("{keyring:?}").contains("[redacted]"));
/// ```
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<KeyringInner>,
}

struct KeyringInner {
    current: SecretKey,
    fallbacks: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring that signs with `current` and also accepts `fallbacks`.
    pub fn new(current: SecretKey, fallbacks: Vec<SecretKey>) -> Self {
        Self {
            inner: Arc::new(KeyringInner { current, fallbacks }),
        }
    }

    /// A keyring with a fresh random key known to this process only: for examples,
    /// tests and development. Everything it signs (sessions, CSRF tokens, API tokens)
    /// stops verifying when the process ends, and instances never share it; a
    /// deployment reads its key with [`crate::config::Settings::keyring`].
    ///
    /// ```
    /// use portcullis::keys::Keyring;
    ///
    /// let keyring = Keyring::ephemeral();
    /// ```
    pub fn ephemeral() -> Self {
        Self::new(SecretKey::generate(), Vec::new())
    }

    /// The secret that signs.
    pub fn current(&self) -> &SecretKey {
        &self.inner.current
    }

    /// The secrets that still verify.
    pub fn fallbacks(&self) -> &[SecretKey] {
        &self.inner.fallbacks
    }

    /// The subkeys for `purpose`: the current key's first, then each fallback's.
    pub fn subkeys(&self, purpose: Purpose) -> Vec<Subkey> {
        std::iter::once(&self.inner.current)
            .chain(&self.inner.fallbacks)
            .map(|secret| derive(secret, purpose))
            .collect()
    }

    /// A sealer for `purpose`: authenticated encryption of stored secrets under its
    /// subkeys (feature `totp`).
    #[cfg(feature = "totp")]
    pub fn sealer(&self, purpose: Purpose) -> super::Sealer {
        super::Sealer::new(self.subkeys(purpose).into())
    }

    /// A signer for `purpose`, with its subkeys derived once.
    pub fn signer(&self, purpose: Purpose) -> Signer {
        Signer::new(purpose, self.subkeys(purpose).into())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &"[redacted]")
            .field("fallbacks", &self.inner.fallbacks.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_get_unrelated_subkeys_and_ids() {
        let ring = Keyring::new(SecretKey::generate(), vec![]);
        let csrf = &ring.subkeys(Purpose::CSRF)[0];
        let session = &ring.subkeys(Purpose::SESSION)[0];
        assert_ne!(csrf.bytes(), session.bytes());
        assert_ne!(csrf.id(), session.id());
    }

    use crate::keys::SignatureError;
    use proptest::prelude::*;

    /// The keyring of a deployment at rotation step `step`: `keys[step]` current and
    /// the `kept` keys before it as fallbacks, newest first.
    fn ring_at(keys: &[SecretKey], step: usize, kept: usize) -> Keyring {
        let fallbacks = keys[step.saturating_sub(kept)..step]
            .iter()
            .rev()
            .cloned()
            .collect();
        Keyring::new(keys[step].clone(), fallbacks)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Through any rotation schedule, a value signed at one step verifies at a
        /// later step exactly while its key is still in the ring (current or one of
        /// the `kept` fallbacks), gives back its payload unchanged, and is otherwise
        /// `UnknownKey`; a ring that never held its key (an older instance) does not
        /// accept it either; and no other purpose's signer accepts it.
        #[test]
        fn signatures_survive_rotation_exactly_while_their_key_is_kept(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            steps in 1usize..6,
            kept in 0usize..3,
            signed_at in 0usize..6,
        ) {
            let keys: Vec<SecretKey> = (0..steps).map(|_| SecretKey::generate()).collect();
            let signed_at = signed_at % steps;
            let token = ring_at(&keys, signed_at, kept).signer(Purpose::CSRF).sign(&payload);
            for step in 0..steps {
                let ring = ring_at(&keys, step, kept);
                let verified = ring.signer(Purpose::CSRF).verify(&token);
                if step >= signed_at && step - signed_at <= kept {
                    prop_assert_eq!(verified, Ok(payload.clone()), "step {}", step);
                } else {
                    prop_assert_eq!(verified, Err(SignatureError::UnknownKey), "step {}", step);
                }
                prop_assert!(ring.signer(Purpose::SESSION).verify(&token).is_err());
            }
        }

        /// Any one character of a signed value changed is refused, whichever part
        /// it falls in (payload, key id or tag).
        #[test]
        fn any_altered_character_is_refused(
            payload in proptest::collection::vec(any::<u8>(), 0..48),
            position in any::<prop::sample::Index>(),
            replacement in prop::sample::select(b"AZaz09-_.".to_vec()),
        ) {
            let ring = Keyring::new(SecretKey::generate(), vec![SecretKey::generate()]);
            let token = ring.signer(Purpose::SESSION).sign(&payload);
            let mut altered = token.clone().into_bytes();
            let at = position.index(altered.len());
            altered[at] = replacement;
            let altered = String::from_utf8(altered).expect("ASCII");
            prop_assume!(altered != token);
            prop_assert!(ring.signer(Purpose::SESSION).verify(&altered).is_err());
        }
    }
}
