//! The session cookie: a signed random id, named for the scheme it travels over.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::keys::{fill_random, Signer};

/// The cookie name over plain HTTP.
pub const COOKIE_NAME: &str = "session";
/// The cookie name over HTTPS.
pub const SECURE_COOKIE_NAME: &str = "__Host-session";

/// A session id: 256 random bits.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct SessionId([u8; 32]);

impl SessionId {
    pub(super) fn generate() -> Self {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// The store key: a digest, so that the store never holds a usable id.
    pub(super) fn store_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.0))
    }
}

/// The cookie's name: over HTTPS only the `__Host-` cookie counts, since a plain
/// `session` cookie could have been planted by a sibling subdomain or over HTTP.
fn cookie_name(https: bool) -> &'static str {
    if https {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

/// The session id from the request's cookie, if one is present and authentic.
pub(super) fn read_cookie(headers: &HeaderMap, https: bool, signer: &Signer) -> Option<SessionId> {
    let name = cookie_name(https);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .find_map(|c| {
            let payload = signer.verify(c.value()).ok()?;
            <[u8; 32]>::try_from(payload.as_slice()).ok().map(SessionId)
        })
}

/// The `Set-Cookie` value carrying `value` signed with `signer`, or clearing the
/// cookie when `value` is `None`. `Secure` over HTTPS, and over plain HTTP when
/// `secure` says so.
pub(super) fn set_cookie(
    signer: &Signer,
    secure: bool,
    https: bool,
    value: Option<&SessionId>,
) -> Option<HeaderValue> {
    let mut builder = cookie::Cookie::build((
        cookie_name(https),
        value.map(|id| signer.sign(&id.0)).unwrap_or_default(),
    ))
    .http_only(true)
    .secure(https || secure)
    .same_site(cookie::SameSite::Lax)
    .path("/");
    if value.is_none() {
        builder = builder.max_age(cookie::time::Duration::ZERO);
    }
    HeaderValue::try_from(builder.build().to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_256_random_bits_and_keys_are_digests() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert!(a != b);
        assert_ne!(a.store_key(), URL_SAFE_NO_PAD.encode(a.0));
        assert_eq!(a.store_key().len(), 43);
    }
}
