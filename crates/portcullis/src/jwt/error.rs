//! Why a token was refused, and the answer the client gets.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// Why a token was refused. The message never says more than the client needs.
///
/// As a response: 401 with a `Bearer` challenge (RFC 6750) and the uniform JSON error,
/// or 503 when the revocation store could not be asked.
///
/// ```
/// use axum::response::IntoResponse;
/// use portcullis::jwt::JwtError;
///
/// let response = JwtError::Expired.into_response();
/// assert_eq!(response.status(), 401);
/// assert_eq!(JwtError::Expired.code(), "token_expired");
/// assert_eq!(JwtError::Unavailable.status(), 503);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// No `Authorization: Bearer` header.
    #[error("A bearer token is required.")]
    Missing,
    /// Malformed, badly signed, wrong algorithm, unknown key, wrong issuer or audience.
    #[error("The token is not valid.")]
    Invalid,
    /// Past its `exp`.
    #[error("The token has expired.")]
    Expired,
    /// Before its `nbf`.
    #[error("The token is not valid yet.")]
    NotYetValid,
    /// An access token where a refresh token belongs, or the reverse.
    #[error("The token is of the wrong type for this request.")]
    WrongType,
    /// Revoked: by its `jti`, its family, or the user's "not before".
    #[error("The token has been revoked.")]
    Revoked,
    /// A refresh token presented a second time: its family is now revoked.
    #[error("The refresh token was already used; every token of this session is revoked.")]
    RefreshReused,
    /// The revocation store is unreachable: refuse rather than guess (503).
    #[error("Token checks are temporarily unavailable.")]
    Unavailable,
}

impl JwtError {
    /// The HTTP status: 503 when the token could not be checked, 401 otherwise.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The stable code of the JSON error body.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "unauthorized",
            Self::Unavailable => "unavailable",
            Self::Expired => "token_expired",
            Self::Revoked | Self::RefreshReused => "token_revoked",
            _ => "invalid_token",
        }
    }

    /// The uniform error the client gets (without the `Bearer` challenge).
    pub(super) fn error(self) -> Error {
        match self {
            Self::Unavailable => Error::service_unavailable(5),
            _ => Error::new(self.status(), self.code(), self.to_string()),
        }
    }
}

impl IntoResponse for JwtError {
    fn into_response(self) -> Response {
        let mut response = self.error().into_response();
        if self == Self::Unavailable {
            return response;
        }
        // RFC 6750: no error code when the request carried no credentials at all.
        let challenge = if self == Self::Missing {
            HeaderValue::from_static("Bearer realm=\"api\"")
        } else {
            HeaderValue::from_static("Bearer realm=\"api\", error=\"invalid_token\"")
        };
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
        response
    }
}
