//! The settings of the CSRF layer, validated when the layer is built.

use std::time::Duration;

use crate::keys::{Keyring, Purpose};
use crate::origin::{Origin, OriginError};

use super::layer::{CsrfLayer, Origins};
use super::token::CsrfMinter;

/// A configuration that cannot work.
///
/// ```
/// use portcullis::csrf::{CsrfConfig, CsrfConfigError};
/// use portcullis::keys::{Keyring, SecretKey};
///
/// let keyring = Keyring::new(SecretKey::generate(), vec![]);
/// let err = CsrfConfig::default()
///     .trusted_origin("https://admin.example:443")
///     .layer(&keyring)
///     .unwrap_err();
/// assert!(matches!(err, CsrfConfigError::InvalidOrigin(_)));
/// assert!(err.to_string().contains("default port"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfConfigError {
    /// A trusted or API origin that a browser would never send.
    #[error("CSRF: {0}")]
    InvalidOrigin(#[from] OriginError),
    /// An exemption that is not an absolute path.
    #[error("invalid CSRF exemption {0:?}: expected an absolute path")]
    InvalidExemption(String),
    /// A token lifetime of zero: every form would be refused.
    #[error("the CSRF token lifetime must be longer than zero")]
    ZeroMaxAge,
}

/// Settings of [`CsrfLayer`]. `Default`: no trusted origins besides the app's own, no
/// exemptions, tokens valid for 12 hours, form bodies read up to 1 MiB (inside
/// [`crate::stack::SecureStack`], up to the stack's body limit instead).
///
/// ```
/// use std::time::Duration;
/// use portcullis::csrf::CsrfConfig;
/// use portcullis::keys::{Keyring, SecretKey};
///
/// let keyring = Keyring::new(SecretKey::generate(), vec![]);
/// let layer = CsrfConfig::default()
///     .max_age(Duration::from_secs(3600))
///     .layer(&keyring)
///     .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct CsrfConfig {
    trusted_origins: Vec<String>,
    api_origins: Vec<String>,
    exempt: Vec<String>,
    max_age: Duration,
    max_form_bytes: usize,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        Self {
            trusted_origins: Vec::new(),
            api_origins: Vec::new(),
            exempt: Vec::new(),
            max_age: Duration::from_secs(12 * 3600),
            max_form_bytes: crate::body::DEFAULT_BODY_LIMIT,
        }
    }
}

impl CsrfConfig {
    /// Another origin (`https://host[:port]`) allowed to send unsafe requests.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted_origins.push(origin.into());
        self
    }

    /// An origin that CORS allows to call the API with a Bearer token (`*` for any,
    /// when CORS allows any). Its requests that carry `Authorization: Bearer` and no
    /// cookie pass the origin line: a browser never attaches that header by itself, so
    /// such a request cannot be forged. Its requests with cookies are still refused
    /// unless it is also a [`CsrfConfig::trusted_origin`]. Give it the same list as
    /// [`crate::cors::CorsConfig`], or an allowed page cannot call the API at all.
    ///
    /// ```
    /// use portcullis::csrf::CsrfConfig;
    /// use portcullis::keys::{Keyring, SecretKey};
    ///
    /// let keyring = Keyring::new(SecretKey::generate(), vec![]);
    /// let layer = CsrfConfig::default()
    ///     .api_origin("https://app.example.com")
    ///     .layer(&keyring)
    ///     .unwrap();
    /// ```
    pub fn api_origin(mut self, origin: impl Into<String>) -> Self {
        self.api_origins.push(origin.into());
        self
    }

    /// A path that is not checked at all. Keep these few and visible.
    pub fn exempt(mut self, path: impl Into<String>) -> Self {
        self.exempt.push(path.into());
        self
    }

    /// How long a token stays valid.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Validates the settings and builds the layer. Install it inside the session
    /// layer (the session must be loaded first).
    pub fn layer(self, keyring: &Keyring) -> Result<CsrfLayer, CsrfConfigError> {
        let parse = |origins: &[String]| -> Result<Vec<Origin>, OriginError> {
            origins.iter().map(|o| Origin::parse_web(o)).collect()
        };
        let trusted = parse(&self.trusted_origins)?;
        let any_api_origin = self.api_origins.iter().any(|o| o == "*");
        let api: Vec<String> = self
            .api_origins
            .iter()
            .filter(|o| *o != "*")
            .cloned()
            .collect();
        let api = parse(&api)?;
        if let Some(bad) = self.exempt.iter().find(|p| !p.starts_with('/')) {
            return Err(CsrfConfigError::InvalidExemption(bad.clone()));
        }
        if self.max_age.is_zero() {
            return Err(CsrfConfigError::ZeroMaxAge);
        }
        Ok(CsrfLayer::new(
            CsrfMinter::new(keyring.signer(Purpose::CSRF)),
            Origins {
                trusted,
                api,
                any_api_origin,
            },
            self.exempt,
            self.max_age,
            self.max_form_bytes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_configuration_is_refused() {
        let keyring = Keyring::new(crate::keys::SecretKey::generate(), vec![]);
        for origin in [
            "evil.example",
            "https://*.example",
            "https://admin.example:443",
            "https://admin.example/",
            "capacitor://localhost",
        ] {
            assert!(
                matches!(
                    CsrfConfig::default().trusted_origin(origin).layer(&keyring),
                    Err(CsrfConfigError::InvalidOrigin(_))
                ),
                "{origin}"
            );
            assert!(
                CsrfConfig::default()
                    .api_origin(origin)
                    .layer(&keyring)
                    .is_err(),
                "{origin}"
            );
        }
        assert!(CsrfConfig::default()
            .exempt("login")
            .layer(&keyring)
            .is_err());
        assert!(matches!(
            CsrfConfig::default()
                .max_age(Duration::ZERO)
                .layer(&keyring),
            Err(CsrfConfigError::ZeroMaxAge)
        ));
        assert!(CsrfConfig::default()
            .trusted_origin("https://Admin.Example:8443")
            .api_origin("*")
            .layer(&keyring)
            .is_ok());
    }
}
