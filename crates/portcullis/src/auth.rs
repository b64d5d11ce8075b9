//! Logging in and out on top of [`crate::session`], the way Flask-Login does, with the
//! parts it leaves to the user done.
//!
//! - [`authenticate`] verifies a password against a stored hash, or runs a dummy
//!   verification at the current cost when the user does not exist, so that the time a
//!   login takes does not tell which usernames exist.
//! - [`CurrentUser`] is an extractor that refuses anonymous requests (401); [`MaybeUser`]
//!   lets them through.
//! - [`safe_next`] keeps a `next` redirect on this site (no open redirect).
//!
//! Logging in is [`Session::login`] (a new session id), logging out
//! [`Session::destroy`] (the record deleted on the server).
//!
//! ```
//! use portcullis::auth::{safe_next, CurrentUser};
//!
//! async fn profile(user: CurrentUser) -> String {
//!     format!("user {}", user.id)
//! }
//! assert_eq!(safe_next(Some("/files?page=2")), "/files?page=2");
//! assert_eq!(safe_next(Some("//evil.example")), "/");
//! ```

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::Error;
use crate::password::Passwords;
use crate::session::Session;

/// The logged-in user; anonymous requests get 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    /// The user's id.
    pub id: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match MaybeUser::from_request_parts(parts, state).await? {
            MaybeUser(Some(id)) => Ok(Self { id }),
            MaybeUser(None) => Err(Error::unauthorized("Log in to do that.")),
        }
    }
}

/// The logged-in user, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeUser(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        Ok(Self(session.user_id()))
    }
}

/// Whether `password` matches `stored` (`None`: the user does not exist).
///
/// Both cases cost one verification at the current parameters. A stored hash that
/// cannot be parsed is logged and counts as a mismatch; the caller answers the same
/// either way. Errors of the hashing pool are a 503.
pub async fn authenticate(
    passwords: &Passwords,
    stored: Option<String>,
    password: &str,
) -> Result<bool, Error> {
    match passwords.verify(password.to_owned(), stored).await {
        Ok(matches) => Ok(matches),
        Err(crate::password::PasswordError::Malformed) => {
            tracing::error!(
                target: "portcullis::security",
                "a stored password hash cannot be parsed; the login is refused"
            );
            Ok(false)
        }
        Err(error) => {
            tracing::error!(%error, "password verification failed");
            Err(Error::service_unavailable(5))
        }
    }
}

/// `next` when it is a path on this site, else `/`.
///
/// Refused: absolute URLs (`https://evil`), scheme-relative ones (`//evil`), the
/// backslash forms browsers read as such (`/\evil`), and anything with control
/// characters or whitespace.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 2048
                && !path
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '\\') =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        for ok in ["/", "/files", "/a?b=c&d=%2F"] {
            assert_eq!(safe_next(Some(ok)), ok);
        }
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/ /evil",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
