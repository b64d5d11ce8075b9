//! What a token says: its kind and its claims.

use serde::{Deserialize, Serialize};

/// The current time, in the Unix seconds of `iat`, `nbf`, `exp` and every deadline.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Which kind a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived; authenticates API requests.
    Access,
    /// Long-lived; only buys a new pair at the refresh endpoint.
    Refresh,
}

/// The claims of every Portcullis token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// This token's unique id.
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Access or refresh.
    pub typ: TokenType,
    /// The refresh family this token belongs to (all tokens descended from one login).
    pub fam: String,
    /// When the user last proved the password (and the second factor) for this family:
    /// the time of the sign-in, kept through every refresh (OpenID Connect's
    /// `auth_time`). Tokens without it read as 0: never recent.
    ///
    /// 0 is written as no claim at all, so that a token issued before the claim
    /// existed has one spelling only: re-signing its claims gives the same token.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub auth_time: i64,
}

/// Whether `auth_time` is the value of a token that has none.
fn is_unset(auth_time: &i64) -> bool {
    *auth_time == 0
}

impl Claims {
    /// The user id, when `sub` is one.
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }

    /// Whether the sign-in behind this token happened within `window` (ASVS 7.5.1:
    /// recent authentication before sensitive changes). A refresh does not make a
    /// token recent; only a new sign-in does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::jwt::{Claims, TokenType};
    ///
    /// let now = chrono::Utc::now().timestamp();
    /// let mut claims = Claims {
    ///     sub: "7".into(), iat: now, nbf: now, exp: now + 900, jti: "j".into(),
    ///     iss: "portcullis".into(), aud: "portcullis-api".into(),
    ///     typ: TokenType::Access, fam: "f".into(), auth_time: now - 60,
    /// };
    /// assert!(claims.authenticated_within(Duration::from_secs(15 * 60)));
    /// claims.auth_time = now - 3600;
    /// assert!(!claims.authenticated_within(Duration::from_secs(15 * 60)));
    /// ```
    pub fn authenticated_within(&self, window: std::time::Duration) -> bool {
        let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        self.auth_time > 0 && now().saturating_sub(self.auth_time) <= window
    }
}
