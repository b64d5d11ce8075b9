use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::{Error, MissingLayer};

const NONCE_BYTES: usize = 16;
pub(super) const NONCE_LEN: usize = 22; // base64url of 16 bytes, no padding

/// A fresh 128-bit nonce for this request's `script-src` and `style-src`.
///
/// The security-headers layer puts one into every request's extensions; handlers take
/// it as an extractor and templates read it with `csp_nonce()`.
///
/// ```
/// use portcullis::csp::CspNonce;
///
/// let a = CspNonce::generate();
/// let b = CspNonce::generate();
/// assert_ne!(a.as_str(), b.as_str());
/// assert_eq!(a.as_str().len(), 22);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CspNonce([u8; NONCE_LEN]);

impl CspNonce {
    /// A new nonce: 128 bits from the thread's CSPRNG (`rand::rng()`, ChaCha12
    /// seeded and regularly reseeded from the operating system). A nonce only has to
    /// be unpredictable to whoever injects markup, which a CSPRNG is; it is made for
    /// every response, where a system call each would cost more than the rest of the
    /// header layer. Keys, session ids and CSRF secrets still come from the operating
    /// system directly.
    pub fn generate() -> Self {
        use rand::RngCore as _;
        let mut raw = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut raw);
        let mut out = [0u8; NONCE_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .expect("22 bytes hold the base64 of 16");
        debug_assert_eq!(written, NONCE_LEN);
        Self(out)
    }

    /// The nonce as it goes into `nonce="…"` attributes.
    pub fn as_str(&self) -> &str {
        // Only base64url characters were written.
        std::str::from_utf8(&self.0).expect("base64 is ASCII")
    }
}

impl fmt::Debug for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CspNonce").field(&self.as_str()).finish()
    }
}

impl fmt::Display for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CspNonce {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CspNonce>()
            .copied()
            .ok_or_else(|| MissingLayer::new("CspNonce", "the secure-headers layer").into())
    }
}
