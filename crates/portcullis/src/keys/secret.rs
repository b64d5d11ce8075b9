//! A secret key, and the checks that refuse one an attacker would guess.

use std::collections::HashSet;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use zeroize::Zeroizing;

use super::fill_random;

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
    /// The raw bytes, for the derivation of subkeys only.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

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
}
