//! Signed single-use links: password reset and email confirmation.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::keys::{Keyring, Purpose, Signer};

/// A link was refused. Answer every case alike ("this link is invalid or has
/// expired").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Not signed by this site for this purpose, or altered.
    #[error("the link is not valid")]
    Invalid,
    /// Past its lifetime.
    #[error("the link has expired")]
    Expired,
    /// Valid once, but what it was bound to has changed: it was used already, or
    /// overtaken (a new password, another address).
    #[error("the link was already used")]
    Used,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    u: i64,
    x: i64,
    b: String,
}

/// Links that carry a user id, an expiry and a fingerprint of the state they act on,
/// signed under one keyring purpose ([`Purpose::RESET`] for password resets,
/// [`Purpose::EMAIL`] for address confirmation): rotation of the keyring applies.
///
/// A link is single-use because it is bound to that state: a reset link to the
/// account's current password hash (once the password changes, every reset link
/// issued before is dead, this one included), a confirmation link to the address
/// awaiting confirmation. Nothing needs storing to refuse a second use.
///
/// ```
/// use std::time::Duration;
/// use portcullis::account::{LinkError, SignedLinks};
/// use portcullis::keys::{Keyring, SecretKey};
///
/// let keyring = Keyring::new(SecretKey::generate(), vec![]);
/// let resets = SignedLinks::password_reset(&keyring);
/// let token = resets.issue(7, "$argon2id$…current hash…");
/// let claim = resets.open(&token).unwrap();
/// assert_eq!(claim.user_id(), 7);
/// assert!(claim.check("$argon2id$…current hash…").is_ok());
/// // After the reset, the hash is another: the same link is refused.
/// assert_eq!(claim.check("$argon2id$…new hash…"), Err(LinkError::Used));
/// ```
#[derive(Debug, Clone)]
pub struct SignedLinks {
    signer: Signer,
    lifetime: Duration,
}

/// What an authentic, unexpired link says; [`LinkClaim::check`] it against the
/// current state before acting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a link's claim must be checked against the current state"]
pub struct LinkClaim {
    user_id: i64,
    fingerprint: Vec<u8>,
}

fn fingerprint(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes())[..16].to_vec()
}

impl LinkClaim {
    /// The user the link was issued for.
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// `Ok` when `current` is the state the link was issued against.
    pub fn check(&self, current: &str) -> Result<(), LinkError> {
        if bool::from(fingerprint(current).ct_eq(&self.fingerprint)) {
            Ok(())
        } else {
            Err(LinkError::Used)
        }
    }
}

impl SignedLinks {
    /// Password-reset links: 30 minutes, bound to the password hash.
    pub fn password_reset(keyring: &Keyring) -> Self {
        Self {
            signer: keyring.signer(Purpose::RESET),
            lifetime: Duration::from_secs(30 * 60),
        }
    }

    /// Email-confirmation links: 24 hours, bound to the address to confirm.
    pub fn email_confirmation(keyring: &Keyring) -> Self {
        Self {
            signer: keyring.signer(Purpose::EMAIL),
            lifetime: Duration::from_secs(24 * 3600),
        }
    }

    /// Links of the application's own `purpose`, valid for `lifetime`.
    pub fn new(keyring: &Keyring, purpose: Purpose, lifetime: Duration) -> Self {
        Self {
            signer: keyring.signer(purpose),
            lifetime,
        }
    }

    /// A token for `user_id`, bound to `state`: put it in the link's path.
    pub fn issue(&self, user_id: i64, state: &str) -> String {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let payload = Payload {
            u: user_id,
            x: chrono::Utc::now().timestamp().saturating_add(lifetime),
            b: URL_SAFE_NO_PAD.encode(fingerprint(state)),
        };
        self.signer
            .sign(&serde_json::to_vec(&payload).expect("the payload serialises"))
    }

    /// The claim of an authentic token that has not expired.
    pub fn open(&self, token: &str) -> Result<LinkClaim, LinkError> {
        if token.len() > 512 {
            return Err(LinkError::Invalid);
        }
        let bytes = self.signer.verify(token).map_err(|_| LinkError::Invalid)?;
        let payload: Payload = serde_json::from_slice(&bytes).map_err(|_| LinkError::Invalid)?;
        if payload.x <= chrono::Utc::now().timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(LinkClaim {
            user_id: payload.u,
            fingerprint: URL_SAFE_NO_PAD
                .decode(payload.b)
                .map_err(|_| LinkError::Invalid)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    #[test]
    fn forged_foreign_and_expired_links_are_refused() {
        let keyring = Keyring::new(SecretKey::generate(), vec![]);
        let resets = SignedLinks::password_reset(&keyring);
        let token = resets.issue(1, "hash");
        // A confirmation link is no reset link, though signed by the same keyring.
        let confirm = SignedLinks::email_confirmation(&keyring).issue(1, "hash");
        assert_eq!(resets.open(&confirm), Err(LinkError::Invalid));
        // Another user id in the payload breaks the signature.
        let (payload, rest) = token.split_once('.').unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        json["u"] = 2.into();
        let forged = format!(
            "{}.{rest}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap())
        );
        assert_eq!(resets.open(&forged), Err(LinkError::Invalid));
        let expired = SignedLinks::new(&keyring, Purpose::RESET, Duration::ZERO).issue(1, "hash");
        assert_eq!(resets.open(&expired), Err(LinkError::Expired));
        for junk in ["", "a.b.c", &"x".repeat(10_000)] {
            assert_eq!(resets.open(junk), Err(LinkError::Invalid));
        }
        // Another keyring's link.
        let other = SignedLinks::password_reset(&Keyring::new(SecretKey::generate(), vec![]));
        assert_eq!(
            resets.open(&other.issue(1, "hash")),
            Err(LinkError::Invalid)
        );
    }
}
