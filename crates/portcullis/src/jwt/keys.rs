//! The keys tokens are signed and verified with.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};

use crate::keys::{Keyring, Purpose};

/// A key that verifies, with its id.
pub(super) struct VerifyingKey {
    pub(super) kid: String,
    pub(super) key: Verifier,
}

/// How a key checks a signature.
pub(super) enum Verifier {
    /// HS256, with the HMAC key prepared once: jsonwebtoken's verifier prepares it
    /// from the secret at every verification (two SHA-256 blocks, a fifth of the
    /// signature check). Boxed: the prepared key holds two hash states.
    Hs256(Box<aws_lc_rs::hmac::Key>),
    /// Any other algorithm, through `jsonwebtoken::crypto::verify`.
    Other(DecodingKey),
}

/// Signing and verification keys, of one algorithm.
pub struct JwtKeys {
    pub(super) algorithm: Algorithm,
    pub(super) signing: (String, EncodingKey),
    pub(super) verifying: Vec<VerifyingKey>,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("signing_kid", &self.signing.0)
            .field(
                "verifying_kids",
                &self.verifying.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtKeyError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file does not hold an Ed25519 key of the expected kind.
    #[error("{0} does not hold an Ed25519 key")]
    NotEd25519(std::path::PathBuf),
}

impl JwtKeys {
    /// HS256 with the keyring's `jwt` subkeys: signs with the current key, verifies
    /// with the current key and every fallback.
    pub fn from_keyring(keyring: &Keyring) -> Self {
        let subkeys = keyring.subkeys(Purpose::JWT);
        let verifying = subkeys
            .iter()
            .map(|k| VerifyingKey {
                kid: k.id().to_owned(),
                key: Verifier::Hs256(Box::new(aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    k.bytes(),
                ))),
            })
            .collect();
        let current = &subkeys[0];
        Self {
            algorithm: Algorithm::HS256,
            signing: (
                current.id().to_owned(),
                EncodingKey::from_secret(current.bytes()),
            ),
            verifying,
        }
    }

    /// EdDSA (Ed25519): signs with the private key in `private_pem` (PKCS#8), verifies
    /// with the public keys in `public_pems` (the signing key's own first, then keys
    /// being rotated out). Key ids are digests of the public keys.
    pub fn ed25519(
        private_pem: &std::path::Path,
        public_pems: &[&std::path::Path],
    ) -> Result<Self, JwtKeyError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| JwtKeyError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let private = read(private_pem)?;
        let signing_key = EncodingKey::from_ed_pem(&private)
            .map_err(|_| JwtKeyError::NotEd25519(private_pem.to_owned()))?;
        let mut verifying = Vec::new();
        for path in public_pems {
            let pem = read(path)?;
            let key = DecodingKey::from_ed_pem(&pem)
                .map_err(|_| JwtKeyError::NotEd25519(path.to_path_buf()))?;
            let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&pem)[..9]);
            verifying.push(VerifyingKey {
                kid,
                key: Verifier::Other(key),
            });
        }
        let Some(first) = verifying.first() else {
            return Err(JwtKeyError::NotEd25519(private_pem.to_owned()));
        };
        Ok(Self {
            algorithm: Algorithm::EdDSA,
            signing: (first.kid.clone(), signing_key),
            verifying,
        })
    }
}
