//! The token service: issuing, verifying, refreshing and revoking.

use std::fmt;
use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Header;
use serde::Serialize;

use super::claims::now;
use super::keys::Verifier;
use super::{
    Claims, JwtConfig, JwtError, JwtKeys, RefreshUse, RevocationError, RevocationStore, TokenType,
};
use crate::error::Error;
use crate::keys::fill_random;

/// The longest header `decode` reads, decoded: ours are about 40 bytes
/// (`{"typ":"JWT","alg":"HS256","kid":"…"}`).
const MAX_HEADER_BYTES: usize = 512;

/// The length of an HS256 signature (an HMAC-SHA-256 tag).
const HS256_TAG_BYTES: usize = 32;

/// The header fields `decode` reads; the others (`typ`, …) are ignored, as
/// `jsonwebtoken` ignores them.
#[derive(serde::Deserialize)]
struct TokenHeader<'a> {
    alg: jsonwebtoken::Algorithm,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new access and refresh token, as the token endpoint returns them.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The token endpoint's answer: the pair as JSON, with `Cache-Control: no-store` and
/// `Pragma: no-cache` (RFC 6749 §5.1), so that no cache keeps a copy of the tokens.
///
/// ```
/// use axum::response::IntoResponse;
/// use portcullis::jwt::TokenPair;
///
/// let pair = TokenPair {
///     access_token: "a".into(),
///     refresh_token: "r".into(),
///     token_type: "Bearer",
///     expires_in: 900,
/// };
/// let response = pair.into_response();
/// assert_eq!(response.headers()["cache-control"], "no-store");
/// ```
impl IntoResponse for TokenPair {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// Issues, verifies, refreshes and revokes tokens. Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use portcullis::jwt::{Jwt, JwtConfig, JwtError, JwtKeys, MemoryRevocationStore};
/// use portcullis::keys::{Keyring, SecretKey};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let keys = JwtKeys::from_keyring(&Keyring::new(SecretKey::generate(), vec![]));
/// let jwt = Jwt::new(JwtConfig::default(), keys, Arc::new(MemoryRevocationStore::default()));
/// let login = jwt.issue(7).await.unwrap();
/// let next = jwt.refresh(&login.refresh_token).await.unwrap();
/// // The first refresh token again: a stolen copy. The whole login is revoked.
/// assert_eq!(jwt.refresh(&login.refresh_token).await.unwrap_err(), JwtError::RefreshReused);
/// assert_eq!(jwt.verify_access(&next.access_token).await, Err(JwtError::Revoked));
/// # }
/// ```
#[derive(Clone)]
pub struct Jwt {
    inner: Arc<JwtInner>,
}

struct JwtInner {
    config: JwtConfig,
    keys: JwtKeys,
    store: Arc<dyn RevocationStore>,
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("config", &self.inner.config)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

fn unavailable(error: RevocationError) -> JwtError {
    tracing::error!(%error, "the revocation store could not answer; refused with 503");
    JwtError::Unavailable
}

impl Jwt {
    /// Tokens for `config`, signed and verified with `keys`, revocations in `store`.
    pub fn new(config: JwtConfig, keys: JwtKeys, store: Arc<dyn RevocationStore>) -> Self {
        Self {
            inner: Arc::new(JwtInner {
                config,
                keys,
                store,
            }),
        }
    }

    fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let mut header = Header::new(self.inner.keys.algorithm);
        header.kid = Some(self.inner.keys.signing.0.clone());
        jsonwebtoken::encode(&header, claims, &self.inner.keys.signing.1).map_err(|e| {
            tracing::error!(error = %e, "cannot sign a token");
            Error::internal()
        })
    }

    fn claims(&self, user: &str, typ: TokenType, family: &str, now: i64, auth_time: i64) -> Claims {
        let ttl = match typ {
            TokenType::Access => self.inner.config.access_ttl,
            TokenType::Refresh => self.inner.config.refresh_ttl,
        };
        Claims {
            sub: user.to_owned(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4),
            jti: random_id(),
            iss: self.inner.config.issuer.clone(),
            aud: self.inner.config.audience.clone(),
            typ,
            fam: family.to_owned(),
            auth_time,
        }
    }

    /// A signed pair, and the id of its refresh token. `auth_time` is the sign-in's
    /// (now for a new family, the presented token's on a refresh).
    fn pair(
        &self,
        user: &str,
        family: &str,
        auth_time: Option<i64>,
    ) -> Result<(TokenPair, String), Error> {
        let now = now();
        let auth_time = auth_time.unwrap_or(now);
        let refresh = self.claims(user, TokenType::Refresh, family, now, auth_time);
        let access = self.claims(user, TokenType::Access, family, now, auth_time);
        let pair = TokenPair {
            access_token: self.sign(&access)?,
            refresh_token: self.sign(&refresh)?,
            token_type: "Bearer",
            expires_in: self.inner.config.access_ttl.as_secs(),
        };
        Ok((pair, refresh.jti))
    }

    /// A new pair for `user_id`, starting a new refresh family (a login). When the
    /// user already has [`JwtConfig::max_families_per_user`] live families, the oldest
    /// is revoked; when the revocation store is full or unreachable, nothing is issued
    /// (503).
    pub async fn issue(&self, user_id: i64) -> Result<TokenPair, JwtError> {
        let user = user_id.to_string();
        let family = random_id();
        let (pair, refresh_jti) = self
            .pair(&user, &family, None)
            .map_err(|_| JwtError::Unavailable)?;
        self.inner
            .store
            .start_family(
                &user,
                &family,
                &refresh_jti,
                self.family_deadline(),
                self.inner.config.max_families_per_user,
            )
            .await
            .map_err(unavailable)?;
        Ok(pair)
    }

    /// Signs arbitrary claims with the current key, for tests and tools that need a
    /// token Portcullis would not issue on its own (an expired one, say).
    pub fn sign_claims(&self, claims: &Claims) -> Result<String, Error> {
        self.sign(claims)
    }

    /// Verifies signature, algorithm, key id and claims, without revocation checks.
    ///
    /// The signature is checked by aws-lc-rs's HMAC with a key prepared once (HS256)
    /// or by `jsonwebtoken::crypto::verify` (EdDSA); the token is taken
    /// apart here rather than by `jsonwebtoken::decode`, because that decodes the
    /// header three times (once more to choose the key by `kid`) and the claims twice,
    /// which cost a quarter of an authenticated API request. Here each part is decoded
    /// once, the header into the two fields it is read for, and the claims only once
    /// the signature holds. The checks are `jsonwebtoken::decode`'s for this service's
    /// `Validation`: one algorithm, a known `kid`, every claim present (`Claims` has no
    /// optional registered claim), `exp` and `nbf` within the leeway, `iss` and `aud`
    /// exactly this service's.
    pub fn decode(&self, token: &str) -> Result<Claims, JwtError> {
        let (message, signature) = token.rsplit_once('.').ok_or(JwtError::Invalid)?;
        let (header, payload) = message.split_once('.').ok_or(JwtError::Invalid)?;
        // Decoded into a buffer on the stack: a header longer than this is no header
        // of ours.
        let mut decoded = [0u8; MAX_HEADER_BYTES];
        let length = URL_SAFE_NO_PAD
            .decode_slice(header, &mut decoded)
            .map_err(|_| JwtError::Invalid)?;
        let header: TokenHeader<'_> =
            serde_json::from_slice(&decoded[..length]).map_err(|_| JwtError::Invalid)?;
        let keys = &self.inner.keys;
        if header.alg != keys.algorithm {
            return Err(JwtError::Invalid);
        }
        let kid = header.kid.ok_or(JwtError::Invalid)?;
        let key = keys
            .verifying
            .iter()
            .find(|k| k.kid == *kid)
            .ok_or(JwtError::Invalid)?;
        let signed = match &key.key {
            // The tag is 32 bytes, compared in constant time by aws-lc.
            Verifier::Hs256(hmac) => {
                let mut tag = [0u8; 64];
                URL_SAFE_NO_PAD.decode_slice(signature, &mut tag) == Ok(HS256_TAG_BYTES)
                    && aws_lc_rs::hmac::verify(hmac, message.as_bytes(), &tag[..HS256_TAG_BYTES])
                        .is_ok()
            }
            Verifier::Other(key) => {
                jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, keys.algorithm)
                    .map_err(|_| JwtError::Invalid)?
            }
        };
        if !signed {
            return Err(JwtError::Invalid);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| JwtError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| JwtError::Invalid)?;
        let config = &self.inner.config;
        let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        let now = now();
        if claims.exp < now.saturating_sub(leeway) {
            return Err(JwtError::Expired);
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(JwtError::NotYetValid);
        }
        if claims.iss != config.issuer || claims.aud != config.audience {
            return Err(JwtError::Invalid);
        }
        Ok(claims)
    }

    async fn verify(&self, token: &str, typ: TokenType) -> Result<Claims, JwtError> {
        let claims = self.decode(token)?;
        if claims.typ != typ {
            return Err(JwtError::WrongType);
        }
        if self
            .inner
            .store
            .is_revoked(&claims)
            .await
            .map_err(unavailable)?
        {
            return Err(JwtError::Revoked);
        }
        Ok(claims)
    }

    /// Verifies an access token, revocations included.
    pub async fn verify_access(&self, token: &str) -> Result<Claims, JwtError> {
        self.verify(token, TokenType::Access).await
    }

    /// Trades a refresh token for a new pair of the same family, retiring it. A
    /// refresh token presented twice revokes its whole family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, JwtError> {
        let claims = self.verify(refresh_token, TokenType::Refresh).await?;
        let (pair, next) = self
            .pair(&claims.sub, &claims.fam, Some(claims.auth_time))
            .map_err(|_| JwtError::Unavailable)?;
        // The new pair counts only if this one atomic step makes its refresh token
        // the family's current one; a revocation that lands first wins.
        let outcome = self
            .inner
            .store
            .rotate_refresh(
                &claims.sub,
                &claims.fam,
                &claims.jti,
                &next,
                self.family_deadline(),
            )
            .await
            .map_err(unavailable)?;
        match outcome {
            RefreshUse::Fresh => Ok(pair),
            RefreshUse::Reused => {
                tracing::warn!(
                    target: "portcullis::security",
                    event = "refresh_token_reused",
                    user = %claims.sub,
                    "a refresh token was used twice; its family is revoked"
                );
                Err(JwtError::RefreshReused)
            }
            RefreshUse::Revoked => Err(JwtError::Revoked),
        }
    }

    /// How long a family's record is kept: as long as its newest refresh token can
    /// verify, leeway included.
    fn family_deadline(&self) -> i64 {
        let config = &self.inner.config;
        now()
            + i64::try_from((config.refresh_ttl + config.leeway).as_secs()).unwrap_or(i64::MAX / 4)
    }

    /// Revokes one token and every token of its family (its refresh token included).
    pub async fn revoke(&self, claims: &Claims) -> Result<(), JwtError> {
        self.inner
            .store
            .revoke_family(&claims.sub, &claims.fam, self.family_deadline())
            .await
            .map_err(unavailable)
    }

    /// Revokes every token issued to `user_id` until now (log out everywhere, a
    /// password change), refreshes in flight included.
    pub async fn revoke_user(&self, user_id: i64) -> Result<(), JwtError> {
        // For families the store no longer knows, the time decides: tokens issued in
        // this same second would otherwise survive (`iat` has one-second resolution).
        let not_before = now() + 1;
        self.inner
            .store
            .revoke_user(&user_id.to_string(), not_before, self.family_deadline())
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::MemoryRevocationStore;
    use crate::keys::{Keyring, SecretKey};

    fn jwt_with(keyring: &Keyring, store: Arc<dyn RevocationStore>) -> Jwt {
        Jwt::new(JwtConfig::default(), JwtKeys::from_keyring(keyring), store)
    }

    fn jwt() -> Jwt {
        jwt_with(
            &Keyring::new(SecretKey::generate(), vec![]),
            Arc::new(MemoryRevocationStore::default()),
        )
    }

    #[tokio::test]
    async fn access_and_refresh_tokens_are_not_interchangeable() {
        let jwt = jwt();
        let pair = jwt.issue(1).await.unwrap();
        assert_eq!(
            jwt.verify_access(&pair.refresh_token).await,
            Err(JwtError::WrongType)
        );
        assert!(matches!(
            jwt.refresh(&pair.access_token).await,
            Err(JwtError::WrongType)
        ));
    }

    #[tokio::test]
    async fn refresh_rotates_and_reuse_revokes_the_family() {
        let jwt = jwt();
        let first = jwt.issue(1).await.unwrap();
        let second = jwt.refresh(&first.refresh_token).await.unwrap();
        assert!(jwt.verify_access(&second.access_token).await.is_ok());
        // The attacker replays the first refresh token.
        assert!(matches!(
            jwt.refresh(&first.refresh_token).await,
            Err(JwtError::RefreshReused)
        ));
        // Everything of the family is now dead, the legitimate holder's too.
        assert_eq!(
            jwt.verify_access(&second.access_token).await,
            Err(JwtError::Revoked)
        );
        assert!(jwt.refresh(&second.refresh_token).await.is_err());
        // Another login is unaffected.
        let other = jwt.issue(1).await.unwrap();
        assert!(jwt.verify_access(&other.access_token).await.is_ok());
    }

    #[tokio::test]
    async fn revoking_a_user_kills_every_earlier_token() {
        let jwt = jwt();
        let a = jwt.issue(5).await.unwrap();
        let b = jwt.issue(5).await.unwrap();
        let other = jwt.issue(6).await.unwrap();
        jwt.revoke_user(5).await.unwrap();
        assert_eq!(
            jwt.verify_access(&a.access_token).await,
            Err(JwtError::Revoked)
        );
        assert_eq!(
            jwt.verify_access(&b.access_token).await,
            Err(JwtError::Revoked)
        );
        assert!(jwt.refresh(&a.refresh_token).await.is_err());
        assert!(jwt.verify_access(&other.access_token).await.is_ok());
    }
}
