//! How long tokens live, whom they name, and how much clock skew is forgiven.

use std::time::Duration;

/// The most clock skew Portcullis accepts: more would stretch every token's life.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

/// Settings. `Default`: issuer `portcullis`, audience `portcullis-api`, access tokens
/// for 15 minutes, refresh tokens for 30 days, 30 seconds of leeway, 32 live logins per
/// user.
///
/// ```
/// use std::time::Duration;
/// use portcullis::jwt::JwtConfig;
///
/// let config = JwtConfig::default()
///     .issuer("https://auth.example.com")
///     .audience("example-api")
///     .access_ttl(Duration::from_secs(5 * 60));
/// ```
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub(super) issuer: String,
    pub(super) audience: String,
    pub(super) access_ttl: Duration,
    pub(super) refresh_ttl: Duration,
    pub(super) leeway: Duration,
    pub(super) max_families_per_user: usize,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: "portcullis".into(),
            audience: "portcullis-api".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            leeway: MAX_LEEWAY,
            max_families_per_user: 32,
        }
    }
}

impl JwtConfig {
    /// The `iss` claim written and required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The `aud` claim written and required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// How long access tokens live.
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// How long refresh tokens live.
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// How many logins (refresh families) one user may hold at once (default 32, at
    /// least 1); a new login beyond it revokes the oldest, so that one account cannot
    /// fill the revocation store.
    ///
    /// ```
    /// use portcullis::jwt::JwtConfig;
    ///
    /// let config = JwtConfig::default().max_families_per_user(5);
    /// ```
    pub fn max_families_per_user(mut self, max: usize) -> Self {
        self.max_families_per_user = max.max(1);
        self
    }

    /// Clock skew allowed on `exp` and `nbf`; capped at [`MAX_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// The access-token lifetime.
    pub fn access_lifetime(&self) -> Duration {
        self.access_ttl
    }
}
