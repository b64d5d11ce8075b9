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

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The shortest secret Portcullis accepts in production, in decoded bytes (256 bits).
pub const MIN_KEY_BYTES: usize = 32;

/// Secrets that appear in tutorials, templates and this project's own documentation.
///
/// A key equal to one of these (ignoring case and punctuation) is refused in
/// production: an attacker tries them first.
pub const KNOWN_EXAMPLE_KEYS: &[&str] = &[
    "your_secret_key",
    "your-secret-key",
    "yoursecretkey",
    "supersecretkey",
    "super-secret-key",
    "my-super-secret-key",
    "my_secret_key",
    "mysecretkey",
    "development-key",
    "dev-key",
    "devkey",
    "1234567890",
    "123456789",
    "12345678",
    "secret",
    "secret-key",
    "secretkey",
    "changeme",
    "change-me",
    "changethis",
    "change-this-secret",
    "password",
    "test",
    "testing",
    "default",
    "flask-secret-key",
    "django-insecure",
    "notasecret",
    "keyboard cat",
    "s3cr3t",
    // The placeholder this project's own README shows where a key goes.
    "replace-with-the-output-of-portcullis-keygen",
];

const HKDF_SALT: &[u8] = b"portcullis keyring v1";
const SUBKEY_LEN: usize = 64;
const KEY_ID_LEN: usize = 6;

/// A secret key: raw bytes, zeroized on drop, never printed.
///
/// ```
/// use portcullis::keys::SecretKey;
///
/// let key = SecretKey::generate();
/// assert_eq!(format!("{key:?}"), "SecretKey([redacted])");
/// assert!(key.weakness().is_none());
/// ```
#[derive(Clone)]
pub struct SecretKey {
    bytes: Zeroizing<Vec<u8>>,
    // What the operator typed, kept only to recognise example values; zeroized too.
    text: Zeroizing<String>,
    // Whether the text was base64 or hex (random bytes written down) rather than a
    // phrase used as its own bytes.
    encoded: bool,
}

impl SecretKey {
    /// A new 256-bit key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; MIN_KEY_BYTES]);
        fill_random(&mut bytes);
        let text = Zeroizing::new(URL_SAFE_NO_PAD.encode(&*bytes));
        Self {
            bytes,
            text,
            encoded: true,
        }
    }

    /// Reads a key as an operator writes it: base64url or base64 (the output of
    /// `portcullis keygen`, `openssl rand -base64 32`), otherwise the raw bytes of the
    /// text. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Self {
        let trimmed = text.trim();
        let decoded = [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(trimmed).ok())
            .filter(|bytes| !bytes.is_empty());
        let encoded = decoded.is_some();
        let bytes = decoded.unwrap_or_else(|| trimmed.as_bytes().to_vec());
        Self {
            bytes: Zeroizing::new(bytes),
            text: Zeroizing::new(trimmed.to_owned()),
            encoded,
        }
    }

    /// The key in the form `portcullis keygen` prints (base64url, no padding).
    pub fn to_base64url(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE_NO_PAD.encode(&*self.bytes))
    }

    /// The key's length in decoded bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the key has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Why this key must not protect production data, or `None` when it is fit.
    ///
    /// ```
    /// use portcullis::keys::{KeyWeakness, SecretKey};
    ///
    /// assert_eq!(SecretKey::parse("changeme").weakness(), Some(KeyWeakness::KnownExample));
    /// assert!(matches!(
    ///     SecretKey::parse("c2hvcnQ").weakness(),
    ///     Some(KeyWeakness::TooShort { .. })
    /// ));
    /// ```
    pub fn weakness(&self) -> Option<KeyWeakness> {
        if is_known_example(&self.text) {
            return Some(KeyWeakness::KnownExample);
        }
        if self.bytes.len() < MIN_KEY_BYTES {
            return Some(KeyWeakness::TooShort {
                bytes: self.bytes.len(),
            });
        }
        if is_patterned(self.text.as_bytes()) || is_patterned(&self.bytes) {
            return Some(KeyWeakness::RepeatedPattern);
        }
        if looks_low_entropy(self.text.as_bytes()) || looks_low_entropy(&self.bytes) {
            return Some(KeyWeakness::LowEntropy);
        }
        // A phrase carries a few bits a character however long it is; only random bytes,
        // written as base64 or hex, make a key.
        if !self.encoded || looks_like_words(&self.text) {
            return Some(KeyWeakness::NotRandom);
        }
        None
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// Why a secret key is refused in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyWeakness {
    /// Fewer than [`MIN_KEY_BYTES`] bytes once decoded.
    #[error("is {bytes} bytes long; at least 32 random bytes are required")]
    TooShort {
        /// The decoded length.
        bytes: usize,
    },
    /// Too few distinct characters, or too little information for its length.
    #[error("has too little entropy (few distinct characters)")]
    LowEntropy,
    /// A short unit repeated, or a run such as `abcdef…` or `0123…`.
    #[error("is a repeated or sequential pattern")]
    RepeatedPattern,
    /// A value from tutorials, templates or this project's documentation.
    #[error("is a well-known example value")]
    KnownExample,
    /// Text rather than random bytes: a passphrase, or words that happen to be valid
    /// base64.
    #[error(
        "is not random bytes written as base64 or hex (a passphrase is not a key); use `portcullis keygen`, `openssl rand -base64 32` or `openssl rand -hex 32`"
    )]
    NotRandom,
}

/// Whether base64-looking text reads like words rather than random bytes: random
/// base64 of 32 bytes or more uses upper and lower case letters (the chance that 43
/// random characters lack either is below one in a billion), hex uses neither mix.
fn looks_like_words(text: &str) -> bool {
    let hex = text.bytes().all(|b| b.is_ascii_hexdigit());
    if hex {
        return false;
    }
    let upper = text.bytes().any(|b| b.is_ascii_uppercase());
    let lower = text.bytes().any(|b| b.is_ascii_lowercase());
    !(upper && lower)
}

fn is_known_example(text: &str) -> bool {
    let normalise = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let candidate = normalise(text);
    KNOWN_EXAMPLE_KEYS
        .iter()
        .any(|known| normalise(known) == candidate)
}

/// A unit repeated (`abcabcabc…`) or a run with a constant step (`abcdef…`, `0000…`).
fn is_patterned(bytes: &[u8]) -> bool {
    let n = bytes.len();
    if n < 4 {
        return true;
    }
    let periodic = (1..=n / 2).any(|p| (p..n).all(|i| bytes[i] == bytes[i - p]));
    if periodic {
        return true;
    }
    // More than half of the neighbouring pairs sharing one step means a sequence.
    let mut steps = [0usize; 256];
    for pair in bytes.windows(2) {
        steps[usize::from(pair[1].wrapping_sub(pair[0]))] += 1;
    }
    steps.iter().any(|&count| count * 2 > n - 1)
}

/// Estimates the information in `bytes` from the frequency of each symbol.
///
/// Random base64 or hex keys carry 4–6 bits a character; human-chosen phrases with
/// few distinct characters fall well short of 128 bits in total.
fn looks_low_entropy(bytes: &[u8]) -> bool {
    let distinct: HashSet<u8> = bytes.iter().copied().collect();
    if distinct.len() < 8 {
        return true;
    }
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let bits_per_symbol: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    bits_per_symbol * n < 128.0
}

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
    let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), &secret.bytes);
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

    /// A signer for `purpose`, with its subkeys derived once.
    pub fn signer(&self, purpose: Purpose) -> Signer {
        Signer {
            purpose,
            subkeys: self.subkeys(purpose).into(),
        }
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
    fn mac(&self, subkey: &Subkey, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(subkey.bytes.as_ref())
            .expect("HMAC accepts keys of any length");
        // The purpose and key id are bound into the MAC as well as into the key.
        mac.update(self.purpose.0.as_bytes());
        mac.update(b"\0");
        mac.update(subkey.id.as_bytes());
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
        out.push_str(&subkey.id);
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
            .find(|k| k.id == kid)
            .ok_or(SignatureError::UnknownKey)?;
        // verify_slice compares in constant time.
        self.mac(subkey, &payload)
            .verify_slice(&tag)
            .map_err(|_| SignatureError::BadSignature)?;
        Ok(payload)
    }

    /// The key id new values are signed with.
    pub fn current_key_id(&self) -> &str {
        &self.subkeys[0].id
    }
}

/// Fills `buf` from the operating system's random source.
///
/// Failure of the OS source leaves no safe fallback, so it aborts the request with a
/// panic (caught and answered with a 500) rather than producing predictable values.
pub(crate) fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random source failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_strong_and_distinct() {
        let a = SecretKey::generate();
        let b = SecretKey::generate();
        assert_eq!(a.len(), 32);
        assert_ne!(&*a.bytes, &*b.bytes);
        assert_eq!(a.weakness(), None);
        assert_eq!(SecretKey::parse(&a.to_base64url()).weakness(), None);
    }

    #[test]
    fn every_listed_example_is_refused() {
        for example in [
            "your_secret_key",
            "supersecretkey",
            "my-super-secret-key",
            "development-key",
            "1234567890",
            "secret",
            "changeme",
            "CHANGEME",
            "  Super-Secret-Key ",
        ] {
            assert!(
                SecretKey::parse(example).weakness().is_some(),
                "{example} was accepted"
            );
        }
        assert_eq!(
            SecretKey::parse("changeme").weakness(),
            Some(KeyWeakness::KnownExample)
        );
    }

    #[test]
    fn short_keys_are_refused() {
        let short = URL_SAFE_NO_PAD.encode([7u8, 91, 3, 200, 17, 66, 120, 9, 250, 1, 2, 3]);
        assert_eq!(
            SecretKey::parse(&short).weakness(),
            Some(KeyWeakness::TooShort { bytes: 12 })
        );
    }

    #[test]
    fn patterned_and_low_entropy_keys_are_refused() {
        let repeated = "abcdefgh".repeat(8);
        assert_eq!(
            SecretKey::parse(&repeated).weakness(),
            Some(KeyWeakness::RepeatedPattern)
        );
        let sequential: String = (b'!'..=b'~').map(char::from).take(60).collect();
        assert_eq!(
            SecretKey::parse(&sequential).weakness(),
            Some(KeyWeakness::RepeatedPattern)
        );
        let few = "aabbaabbabababbbaaabbbabababaabbbabababbabbabaabab".to_owned();
        assert!(SecretKey::parse(&few).weakness().is_some());
        let phrase = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab";
        assert!(SecretKey::parse(phrase).weakness().is_some());
    }

    #[test]
    fn hex_keys_from_openssl_are_accepted() {
        let mut raw = [0u8; 32];
        fill_random(&mut raw);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(SecretKey::parse(&hex).weakness(), None);
    }

    #[test]
    fn purposes_get_unrelated_subkeys_and_ids() {
        let ring = Keyring::new(SecretKey::generate(), vec![]);
        let csrf = &ring.subkeys(Purpose::CSRF)[0];
        let session = &ring.subkeys(Purpose::SESSION)[0];
        assert_ne!(csrf.bytes(), session.bytes());
        assert_ne!(csrf.id(), session.id());
    }

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
