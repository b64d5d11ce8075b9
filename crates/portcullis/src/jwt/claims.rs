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
}

impl Claims {
    /// The user id, when `sub` is one.
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}
