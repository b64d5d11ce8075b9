//! The token format.
//!
//! A token is the keyring's signature (`csrf` subkey) over
//! `issued (8 bytes, big-endian seconds) ‖ mask (32 bytes) ‖ secret ⊕ mask (32 bytes)`,
//! where the secret is the session's and the mask is fresh for every token. The mask
//! makes every token different, so a compression side channel (BREACH) learns nothing
//! from the page; the signature makes a token unforgeable without the key; the issue
//! time bounds its life; the secret binds it to one session, so a token stolen from
//! another session, or from a session that has since ended, is worthless.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use crate::error::MissingLayer;
use crate::keys::{fill_random, SignatureError, Signer};
use crate::session::Session;

use super::CsrfRejection;

const SECRET_LEN: usize = 32;
const PAYLOAD_LEN: usize = 8 + 2 * SECRET_LEN;
/// How far a token's issue time may lie in the future: clocks of several instances
/// disagree a little.
const CLOCK_SKEW_SECS: i64 = 300;

/// Mints and checks tokens for one keyring. The layer puts one into every request's
/// extensions, where [`CsrfToken`] and the templates find it.
///
/// ```
/// use axum::Extension;
/// use portcullis::csrf::CsrfMinter;
/// use portcullis::session::Session;
///
/// async fn token_for_a_script(Extension(minter): Extension<CsrfMinter>, session: Session) -> String {
///     minter.mint(&session)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CsrfMinter {
    signer: Signer,
}

impl CsrfMinter {
    pub(super) fn new(signer: Signer) -> Self {
        Self { signer }
    }

    /// A fresh token for `session` (creating its secret, and so the session, if needed).
    pub fn mint(&self, session: &Session) -> String {
        self.mint_for_secret(&session.csrf_secret(), now())
    }

    /// Checks `token` against `session`.
    pub fn check(
        &self,
        session: &Session,
        token: &str,
        max_age: Duration,
    ) -> Result<(), CsrfRejection> {
        self.check_against(
            session.existing_csrf_secret().as_deref(),
            token,
            max_age,
            now(),
        )
    }

    fn mint_for_secret(&self, secret: &[u8], issued: i64) -> String {
        let mut mask = [0u8; SECRET_LEN];
        fill_random(&mut mask);
        self.signer.sign(&encode(issued, secret, &mask))
    }

    /// The check itself: `secret` is the session's, `None` when it has ended.
    fn check_against(
        &self,
        secret: Option<&[u8]>,
        token: &str,
        max_age: Duration,
        now: i64,
    ) -> Result<(), CsrfRejection> {
        let payload = match self.signer.verify(token) {
            Ok(payload) => payload,
            // Signed by a key that has since left the ring: an old form, not a forgery.
            Err(SignatureError::UnknownKey) => return Err(CsrfRejection::Expired),
            Err(_) => return Err(CsrfRejection::Invalid),
        };
        let (issued, unmasked) = decode(&payload).ok_or(CsrfRejection::Invalid)?;
        let age = now.saturating_sub(issued);
        if age > i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX) || age < -CLOCK_SKEW_SECS {
            return Err(CsrfRejection::Expired);
        }
        // The session ended (logout, expiry): its tokens ended with it.
        let secret = secret.ok_or(CsrfRejection::Expired)?;
        if bool::from(unmasked.as_slice().ct_eq(secret)) {
            Ok(())
        } else {
            Err(CsrfRejection::Invalid)
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `issued ‖ mask ‖ secret ⊕ mask`. A secret of another length (none is made) would
/// only ever fail the comparison.
fn encode(issued: i64, secret: &[u8], mask: &[u8; SECRET_LEN]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(PAYLOAD_LEN);
    payload.extend_from_slice(&issued.to_be_bytes());
    payload.extend_from_slice(mask);
    payload.extend(secret.iter().zip(mask).map(|(s, m)| s ^ m));
    payload
}

/// The issue time and the unmasked secret, or `None` for a payload of another shape.
fn decode(payload: &[u8]) -> Option<(i64, [u8; SECRET_LEN])> {
    if payload.len() != PAYLOAD_LEN {
        return None;
    }
    let (issued, rest) = payload.split_at(8);
    let issued = i64::from_be_bytes(issued.try_into().ok()?);
    let (mask, masked) = rest.split_at(SECRET_LEN);
    let mut secret = [0u8; SECRET_LEN];
    for (out, (a, b)) in secret.iter_mut().zip(masked.iter().zip(mask)) {
        *out = a ^ b;
    }
    Some((issued, secret))
}

/// A fresh token for this request's session, for handlers that render forms
/// themselves (templates use `csrf_token()` / `csrf_field()` instead). Taking it gives
/// an anonymous visitor a session (see the module docs).
///
/// ```
/// use portcullis::csrf::CsrfToken;
///
/// async fn form(token: CsrfToken) -> String {
///     format!("<input type=hidden name=csrf_token value=\"{}\">", token.as_str())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CsrfToken(String);

impl CsrfToken {
    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(minter) = parts.extensions.get::<CsrfMinter>() else {
            return Err(MissingLayer::new("CsrfToken", "the CSRF layer"));
        };
        let Some(session) = parts.extensions.get::<Session>() else {
            return Err(MissingLayer::new("CsrfToken", "the session layer"));
        };
        Ok(Self(minter.mint(session)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Keyring, Purpose, SecretKey};

    const HOUR: Duration = Duration::from_secs(3600);
    const NOW: i64 = 1_800_000_000;

    fn minter(keyring: &Keyring) -> CsrfMinter {
        CsrfMinter::new(keyring.signer(Purpose::CSRF))
    }

    fn secret(byte: u8) -> [u8; SECRET_LEN] {
        [byte; SECRET_LEN]
    }

    #[test]
    fn masking_round_trips_and_every_token_differs() {
        let keyring = Keyring::new(SecretKey::generate(), vec![]);
        let minter = minter(&keyring);
        let first = minter.mint_for_secret(&secret(7), NOW);
        let second = minter.mint_for_secret(&secret(7), NOW);
        assert_ne!(first, second, "the mask must be fresh for every token");
        for token in [&first, &second] {
            assert_eq!(
                minter.check_against(Some(&secret(7)), token, HOUR, NOW),
                Ok(())
            );
        }
        let payload = encode(NOW, &secret(9), &[0x5a; SECRET_LEN]);
        assert_eq!(payload.len(), PAYLOAD_LEN);
        assert_eq!(decode(&payload), Some((NOW, secret(9))));
        // The masked secret is not the secret.
        assert!(!payload.windows(SECRET_LEN).any(|w| w == secret(9)));
        assert_eq!(decode(&payload[1..]), None);
    }

    #[test]
    fn another_sessions_token_is_invalid_and_an_ended_sessions_expired() {
        let keyring = Keyring::new(SecretKey::generate(), vec![]);
        let minter = minter(&keyring);
        let token = minter.mint_for_secret(&secret(1), NOW);
        assert_eq!(
            minter.check_against(Some(&secret(2)), &token, HOUR, NOW),
            Err(CsrfRejection::Invalid)
        );
        assert_eq!(
            minter.check_against(None, &token, HOUR, NOW),
            Err(CsrfRejection::Expired)
        );
    }

    #[test]
    fn altered_or_foreign_tokens_are_invalid() {
        let keyring = Keyring::new(SecretKey::generate(), vec![]);
        let minter = minter(&keyring);
        let token = minter.mint_for_secret(&secret(3), NOW);
        let check = |token: &str| minter.check_against(Some(&secret(3)), token, HOUR, NOW);
        for i in 0..token.len() {
            let mut altered = token.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            if altered != token {
                assert!(check(&altered).is_err(), "byte {i} altered and accepted");
            }
        }
        for junk in ["", ".", "a.b.c", &"A".repeat(4096)] {
            assert!(check(junk).is_err(), "{junk:?}");
        }
        // Signed for another purpose with the same keyring: not a CSRF token (its key
        // id names no CSRF key, so it reads as a form from a retired key).
        let session_signed =
            keyring
                .signer(Purpose::SESSION)
                .sign(&encode(NOW, &secret(3), &[1; SECRET_LEN]));
        assert!(check(&session_signed).is_err());
        // A well-signed payload of another shape.
        let short = keyring.signer(Purpose::CSRF).sign(b"short");
        assert_eq!(check(&short), Err(CsrfRejection::Invalid));
    }

    #[test]
    fn tokens_expire_and_future_ones_beyond_the_clock_skew_are_refused() {
        let keyring = Keyring::new(SecretKey::generate(), vec![]);
        let minter = minter(&keyring);
        let s = secret(4);
        let at = |issued: i64| minter.mint_for_secret(&s, issued);
        let hour = 3600;
        assert_eq!(
            minter.check_against(Some(&s), &at(NOW - hour), HOUR, NOW),
            Ok(())
        );
        assert_eq!(
            minter.check_against(Some(&s), &at(NOW - hour - 1), HOUR, NOW),
            Err(CsrfRejection::Expired)
        );
        assert_eq!(
            minter.check_against(Some(&s), &at(NOW + CLOCK_SKEW_SECS), HOUR, NOW),
            Ok(())
        );
        assert_eq!(
            minter.check_against(Some(&s), &at(NOW + CLOCK_SKEW_SECS + 1), HOUR, NOW),
            Err(CsrfRejection::Expired)
        );
    }

    #[test]
    fn rotation_keeps_open_forms_and_a_retired_key_expires_them() {
        let old = SecretKey::generate();
        let before = Keyring::new(old.clone(), vec![]);
        let token = minter(&before).mint_for_secret(&secret(5), NOW);
        let rotated = Keyring::new(SecretKey::generate(), vec![old]);
        assert_eq!(
            minter(&rotated).check_against(Some(&secret(5)), &token, HOUR, NOW),
            Ok(())
        );
        let retired = Keyring::new(SecretKey::generate(), vec![]);
        assert_eq!(
            minter(&retired).check_against(Some(&secret(5)), &token, HOUR, NOW),
            Err(CsrfRejection::Expired)
        );
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Unmasking gives back exactly the secret and issue time masked in, for any
        /// secret, mask and time; and the secret never appears in the payload unless
        /// the mask is zero where it does.
        #[test]
        fn masking_round_trips_for_any_secret_mask_and_time(
            secret in any::<[u8; SECRET_LEN]>(),
            mask in any::<[u8; SECRET_LEN]>(),
            issued in any::<i64>(),
        ) {
            let payload = encode(issued, &secret, &mask);
            prop_assert_eq!(payload.len(), PAYLOAD_LEN);
            prop_assert_eq!(decode(&payload), Some((issued, secret)));
            if mask.iter().all(|&byte| byte != 0) {
                prop_assert!(payload[8 + SECRET_LEN..].iter().zip(&secret).all(|(m, s)| m != s));
            }
        }

        /// A minted token checks against its own session's secret and against no
        /// other, however close the other secret is (one bit apart included).
        #[test]
        fn a_token_checks_against_its_own_secret_and_no_other(
            secret in any::<[u8; SECRET_LEN]>(),
            other in any::<[u8; SECRET_LEN]>(),
            flipped_bit in 0usize..SECRET_LEN * 8,
            age in 0i64..3600,
        ) {
            let keyring = Keyring::new(SecretKey::generate(), vec![]);
            let minter = minter(&keyring);
            let token = minter.mint_for_secret(&secret, NOW - age);
            prop_assert_eq!(minter.check_against(Some(&secret), &token, HOUR, NOW), Ok(()));
            let mut near = secret;
            near[flipped_bit / 8] ^= 1 << (flipped_bit % 8);
            for wrong in [near, other] {
                if wrong != secret {
                    prop_assert_eq!(
                        minter.check_against(Some(&wrong), &token, HOUR, NOW),
                        Err(CsrfRejection::Invalid)
                    );
                }
            }
        }
    }
}
