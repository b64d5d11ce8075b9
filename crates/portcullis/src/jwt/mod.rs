//! JSON Web Tokens for APIs: access and refresh tokens, rotation, revocation.
//!
//! What Flask-JWT-Extended does, with the parts it leaves to the user done:
//!
//! - **Keys.** HS256 with the keyring's `jwt` subkey by default: every token names its
//!   key in `kid`, new tokens are signed with the current key, and tokens signed with a
//!   fallback key still verify until that key leaves the ring. EdDSA (Ed25519) keys
//!   from PEM files are the alternative ([`JwtKeys::ed25519`]).
//! - **Validation pins the algorithm** (a token whose header names another, `none`
//!   included, is refused before any signature check), requires `exp`, `nbf`, `iss`,
//!   `aud` and `sub`, and allows at most 30 seconds of clock skew.
//! - **Two kinds.** Access tokens (15 minutes) and refresh tokens (30 days) carry
//!   `typ`; neither is accepted where the other is expected.
//! - **Revocation.** Each login starts a refresh family: one record with its current
//!   refresh token id and the user's revocation generation, kept until its last token
//!   expires (leeway included). Each refresh makes a new token current; presenting any
//!   other token of the family again revokes the whole family (the refresh token was
//!   stolen, and one of the two holders is an attacker). Revoking a user (log out
//!   everywhere, password change) bumps its generation, which ends every family begun
//!   before, refreshes in flight included. State follows live logins, never the number
//!   of refreshes, and a full store refuses new logins rather than forget.
//! - **The extractor** [`BearerUser`] answers 401 with `WWW-Authenticate: Bearer
//!   error="invalid_token"` and the uniform JSON error, never 422 or 500; each refusal
//!   is a [`JwtRejection`] with its status, code and security log line.
//!
//! Refresh rotation with reuse detection and the deny list are something no crate
//! does, so Portcullis writes them itself; signing and verification are jsonwebtoken's
//! (with its aws-lc-rs backend).
//!
//! ```
//! use std::sync::Arc;
//! use portcullis::jwt::{Jwt, JwtConfig, JwtKeys, MemoryRevocationStore};
//! use portcullis::keys::{Keyring, SecretKey};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let keyring = Keyring::new(SecretKey::generate(), vec![]);
//! let jwt = Jwt::new(
//!     JwtConfig::default(),
//!     JwtKeys::from_keyring(&keyring),
//!     Arc::new(MemoryRevocationStore::default()),
//! );
//! let pair = jwt.issue(42).await.unwrap();
//! let claims = jwt.verify_access(&pair.access_token).await.unwrap();
//! assert_eq!(claims.user_id(), Some(42));
//! // A refresh token is not an access token.
//! assert!(jwt.verify_access(&pair.refresh_token).await.is_err());
//! # }
//! ```

mod claims;
mod config;
mod error;
mod extract;
mod keys;
pub mod revocation;
mod service;

pub use claims::{Claims, TokenType};
pub use config::{JwtConfig, MAX_LEEWAY};
pub use error::JwtError;
pub use extract::{bearer_token, BearerUser, JwtRejection};
pub use keys::{JwtKeyError, JwtKeys};
#[cfg(feature = "redis")]
pub use revocation::RedisRevocationStore;
pub use revocation::{MemoryRevocationStore, RefreshUse, RevocationError, RevocationStore};
pub use service::{Jwt, TokenPair};
