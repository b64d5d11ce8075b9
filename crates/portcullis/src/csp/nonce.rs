use std::fmt;
use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Extensions;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::{Error, MissingLayer};

const NONCE_BYTES: usize = 16;
pub(super) const NONCE_LEN: usize = 22; // base64url of 16 bytes, no padding

/// A fresh 128-bit nonce for this request's `script-src` and `style-src`.
///
/// The security-headers layer gives every request a place for one; handlers take it
/// as an extractor, templates read it with `csp_nonce()`, and middleware with
/// [`CspNonce::from_extensions`]. It is made when first asked for, and the page's
/// policy names that same nonce; a response that is no page asked for none and
/// gets a policy without one (see [`crate::headers`]).
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

impl CspNonce {
    /// This request's nonce, made now if nothing asked for it before; `None` when no
    /// security-headers layer is outside (nor a nonce put there by hand). For
    /// middleware inside the layer; handlers take [`CspNonce`] as an extractor.
    ///
    /// ```
    /// use axum::http::Extensions;
    /// use portcullis::csp::CspNonce;
    ///
    /// let mut extensions = Extensions::new();
    /// assert!(CspNonce::from_extensions(&extensions).is_none());
    /// let nonce = CspNonce::generate();
    /// extensions.insert(nonce);
    /// assert_eq!(CspNonce::from_extensions(&extensions), Some(nonce));
    /// ```
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        match extensions.get::<NonceSlot>() {
            Some(slot) => Some(slot.get()),
            None => extensions.get::<CspNonce>().copied(),
        }
    }
}

/// Where a request's nonce is made on first use, shared by the request (handlers,
/// error pages) and the headers layer that writes the response's policy: most
/// responses (JSON, redirects, files) never need one, and a nonce costs random bytes
/// and a policy rendered per response.
#[derive(Clone, Default)]
pub(crate) struct NonceSlot(Arc<OnceLock<CspNonce>>);

impl NonceSlot {
    /// The nonce, made on the first call.
    pub(crate) fn get(&self) -> CspNonce {
        *self.0.get_or_init(CspNonce::generate)
    }
}

impl fmt::Debug for NonceSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NonceSlot").field(&self.0.get()).finish()
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
        CspNonce::from_extensions(&parts.extensions)
            .ok_or_else(|| MissingLayer::new("CspNonce", "the secure-headers layer").into())
    }
}
