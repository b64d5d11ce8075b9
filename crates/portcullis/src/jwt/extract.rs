//! The bearer of a request's access token, and why a request has none.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Claims, Jwt, JwtError};
use crate::client_ip::ClientInfo;
use crate::error::Error;

/// The bearer of a valid, unrevoked access token. Needs the [`Jwt`] in the request
/// extensions (`axum::Extension(jwt)`); refuses with a [`JwtRejection`].
///
/// ```
/// use portcullis::jwt::BearerUser;
///
/// async fn me(user: BearerUser) -> String {
///     format!("user {}", user.id)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct BearerUser {
    /// The user id.
    pub id: i64,
    /// Every claim of the token.
    pub claims: Claims,
}

/// The raw bearer token of a request, if it has one.
///
/// ```
/// use axum::http::Request;
/// use portcullis::jwt::bearer_token;
///
/// let (parts, ()) = Request::builder()
///     .header("authorization", "Bearer abc.def.ghi")
///     .body(())
///     .unwrap()
///     .into_parts();
/// assert_eq!(bearer_token(&parts), Some("abc.def.ghi"));
/// ```
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Why [`BearerUser`] refused a request.
///
/// Each variant has its status, a stable code (the JSON body's `code`, the log line's
/// `reason`), the message the client reads and its line in the `portcullis::security`
/// log. As a response it is the uniform error body (`{"error":{"code","message"}}`),
/// with a `Bearer` challenge on 401 (RFC 6750), and carries the rejection in its
/// extensions so that outer layers can tell why.
///
/// ```
/// use axum::response::IntoResponse;
/// use portcullis::jwt::{JwtError, JwtRejection};
///
/// let rejection = JwtRejection::from(JwtError::Expired);
/// assert_eq!(rejection.status(), 401);
/// assert_eq!(rejection.code(), "token_expired");
/// let response = rejection.into_response();
/// assert!(response.headers().contains_key("www-authenticate"));
/// assert_eq!(response.extensions().get::<JwtRejection>(), Some(&rejection));
///
/// // A route without the `Jwt` is the app's mistake: a 500 that tells the client nothing.
/// assert_eq!(JwtRejection::MissingJwtExtension.status(), 500);
/// assert_eq!(JwtRejection::MissingJwtExtension.code(), "internal_error");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtRejection {
    /// No token, a token refused (401, see [`JwtError`]), or one that could not be
    /// checked because the revocation store is unavailable (503).
    #[error(transparent)]
    Token(#[from] JwtError),
    /// The route has no [`Jwt`] in its request extensions: the app is misconfigured.
    /// A 500 with the generic message (the client learns nothing of the app's
    /// set-up); the log says what is missing, once per process, since every request
    /// of the route fails the same way.
    #[error(
        "BearerUser needs the Jwt in the request extensions: add \
         `.layer(axum::Extension(jwt))` to the routes that take a BearerUser"
    )]
    MissingJwtExtension,
}

/// Whether [`JwtRejection::MissingJwtExtension`] has been logged (once is enough).
static MISSING_JWT_LOGGED: AtomicBool = AtomicBool::new(false);

/// One line in the security log for a rejection: its event, its code, the client and
/// the path.
macro_rules! security_log {
    ($level:ident, $rejection:expr, $parts:expr, $message:literal) => {
        tracing::$level!(
            target: "portcullis::security",
            event = $rejection.event(),
            reason = $rejection.code(),
            client_ip = %$parts
                .extensions
                .get::<ClientInfo>()
                .map(|c| c.ip.to_string())
                .unwrap_or_default(),
            path = $parts.uri.path(),
            $message
        )
    };
}

impl JwtRejection {
    /// The HTTP status: 401 for a missing or refused token, 503 when it could not be
    /// checked, 500 when the app is misconfigured.
    pub fn status(self) -> StatusCode {
        self.error().status()
    }

    /// The stable code of the JSON error body.
    pub fn code(self) -> &'static str {
        self.error().code()
    }

    /// The message the client reads.
    pub fn message(self) -> String {
        self.error().message().to_owned()
    }

    /// The uniform error the client gets.
    fn error(self) -> Error {
        match self {
            Self::Token(error) => error.error(),
            Self::MissingJwtExtension => Error::internal(),
        }
    }

    /// The `event` of the rejection's line in the security log.
    pub fn event(self) -> &'static str {
        match self {
            Self::Token(JwtError::Missing) => "bearer_token_missing",
            Self::Token(JwtError::Expired) => "bearer_token_expired",
            Self::Token(JwtError::Revoked | JwtError::RefreshReused) => "bearer_token_revoked",
            Self::Token(JwtError::Unavailable) => "bearer_token_unchecked",
            Self::Token(_) => "bearer_token_invalid",
            Self::MissingJwtExtension => "jwt_extension_missing",
        }
    }

    /// Writes the rejection's line: a forged, misused or revoked token is a warning,
    /// an expired one information, a missing one (or one left unchecked, whose cause
    /// the token service has logged already) a debug line.
    fn log(self, parts: &Parts) {
        match self {
            Self::Token(JwtError::Missing) => {
                security_log!(debug, self, parts, "a request without a bearer token");
            }
            Self::Token(JwtError::Unavailable) => {
                security_log!(debug, self, parts, "a bearer token could not be checked");
            }
            Self::Token(JwtError::Expired | JwtError::NotYetValid) => {
                security_log!(info, self, parts, "a bearer token out of its lifetime");
            }
            Self::Token(JwtError::Revoked | JwtError::RefreshReused) => {
                security_log!(warn, self, parts, "a revoked bearer token was presented");
            }
            Self::Token(_) => {
                security_log!(warn, self, parts, "a forged or misused bearer token");
            }
            Self::MissingJwtExtension => {
                if !MISSING_JWT_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        event = self.event(),
                        path = parts.uri.path(),
                        "{self}; every such request answers 500"
                    );
                }
            }
        }
    }
}

impl IntoResponse for JwtRejection {
    fn into_response(self) -> Response {
        let mut response = match self {
            Self::Token(error) => error.into_response(),
            Self::MissingJwtExtension => Error::internal().into_response(),
        };
        response.extensions_mut().insert(self);
        response
    }
}

impl BearerUser {
    async fn authenticate(parts: &Parts) -> Result<Self, JwtRejection> {
        let jwt = parts
            .extensions
            .get::<Jwt>()
            .ok_or(JwtRejection::MissingJwtExtension)?;
        let token = bearer_token(parts).ok_or(JwtError::Missing)?;
        let claims = jwt.verify_access(token).await?;
        let id = claims.user_id().ok_or(JwtError::Invalid)?;
        Ok(Self { id, claims })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerUser {
    type Rejection = JwtRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let user = Self::authenticate(parts).await;
        if let Err(rejection) = user {
            rejection.log(parts);
        }
        user
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use axum::{Extension, Router};
    use tower::ServiceExt as _;

    use super::*;
    use crate::error::ErrorDetails;
    use crate::jwt::{JwtConfig, JwtKeys, MemoryRevocationStore};
    use crate::keys::{Keyring, SecretKey};

    async fn me(user: BearerUser) -> String {
        user.id.to_string()
    }

    async fn call(app: Router, authorization: Option<&str>) -> Response {
        let mut request = Request::get("/me");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        app.oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_route_without_the_jwt_answers_500_and_says_nothing_of_why() {
        let app = Router::new().route("/me", get(me));
        let response = call(app, Some("Bearer abc")).await;
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.extensions().get::<JwtRejection>(),
            Some(&JwtRejection::MissingJwtExtension)
        );
        let ErrorDetails(error) = response.extensions().get::<ErrorDetails>().unwrap();
        assert_eq!(error.code(), "internal_error");
        assert!(!error.message().contains("Jwt"));
        // The log names what is missing and where to add it.
        let explained = JwtRejection::MissingJwtExtension.to_string();
        assert!(explained.contains("Extension(jwt)"), "{explained}");
    }

    #[tokio::test]
    async fn rejections_carry_their_status_code_and_challenge() {
        let keyring = Keyring::new(SecretKey::generate(), vec![]);
        let jwt = Jwt::new(
            JwtConfig::default(),
            JwtKeys::from_keyring(&keyring),
            Arc::new(MemoryRevocationStore::default()),
        );
        let pair = jwt.issue(7).await.unwrap();
        let app = Router::new().route("/me", get(me)).layer(Extension(jwt));

        let missing = call(app.clone(), None).await;
        assert_eq!(missing.status(), 401);
        assert_eq!(
            missing.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"api\""
        );
        assert_eq!(
            missing.extensions().get::<JwtRejection>(),
            Some(&JwtRejection::Token(JwtError::Missing))
        );

        let forged = call(app.clone(), Some("Bearer a.b.c")).await;
        assert_eq!(forged.status(), 401);
        assert!(forged.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
        let ErrorDetails(error) = forged.extensions().get::<ErrorDetails>().unwrap();
        assert_eq!(error.code(), "invalid_token");

        let refresh = format!("Bearer {}", pair.refresh_token);
        let wrong_type = call(app.clone(), Some(&refresh)).await;
        assert_eq!(
            wrong_type.extensions().get::<JwtRejection>(),
            Some(&JwtRejection::Token(JwtError::WrongType))
        );

        let access = format!("Bearer {}", pair.access_token);
        let ok = call(app, Some(&access)).await;
        assert_eq!(ok.status(), 200);
    }

    #[test]
    fn every_rejection_declares_what_it_answers() {
        let all = [
            (
                JwtError::Missing,
                401,
                "unauthorized",
                "bearer_token_missing",
            ),
            (
                JwtError::Invalid,
                401,
                "invalid_token",
                "bearer_token_invalid",
            ),
            (
                JwtError::Expired,
                401,
                "token_expired",
                "bearer_token_expired",
            ),
            (
                JwtError::NotYetValid,
                401,
                "invalid_token",
                "bearer_token_invalid",
            ),
            (
                JwtError::WrongType,
                401,
                "invalid_token",
                "bearer_token_invalid",
            ),
            (
                JwtError::Revoked,
                401,
                "token_revoked",
                "bearer_token_revoked",
            ),
            (
                JwtError::Unavailable,
                503,
                "unavailable",
                "bearer_token_unchecked",
            ),
        ];
        for (error, status, code, event) in all {
            let rejection = JwtRejection::from(error);
            assert_eq!(rejection.status(), status, "{error:?}");
            assert_eq!(rejection.code(), code, "{error:?}");
            assert_eq!(rejection.event(), event, "{error:?}");
            let response = rejection.into_response();
            assert_eq!(response.status(), status, "{error:?}");
            let ErrorDetails(body) = response.extensions().get::<ErrorDetails>().unwrap();
            assert_eq!(body.code(), code);
            assert_eq!(body.message(), rejection.message());
        }
    }
}
