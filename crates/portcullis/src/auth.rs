//! Logging in and out on top of [`crate::session`], the way Flask-Login does, with the
//! parts it leaves to the user done.
//!
//! - [`login`] is the whole password check of a sign-in, for every path that signs
//!   in (a form, a token endpoint): it finds the account through a
//!   [`CredentialStore`], verifies the password (or runs a dummy verification at the
//!   current cost when the account does not exist, so that the time a login takes does
//!   not tell which usernames exist), and when the stored hash is a legacy one
//!   (werkzeug, bcrypt) or weaker than today's parameters, stores an Argon2id hash in
//!   its place. Every path that calls it upgrades hashes alike.
//! - [`authenticate`] is the verification step alone.
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

use std::future::Future;

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

/// Where [`login`] finds accounts and keeps their upgraded hashes: the application's
/// user table.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use portcullis::auth::{login, CredentialStore};
/// use portcullis::password::{PasswordConfig, Passwords};
///
/// /// Accounts in memory: id, username, hash.
/// struct Users(Mutex<HashMap<String, (i64, String)>>);
///
/// impl CredentialStore for Users {
///     type Error = std::convert::Infallible;
///
///     async fn find(&self, username: &str) -> Result<Option<(i64, String)>, Self::Error> {
///         let key = portcullis::input::username_key(username);
///         Ok(self.0.lock().unwrap().get(&key).cloned())
///     }
///
///     async fn replace_hash(&self, id: i64, hash: &str) -> Result<(), Self::Error> {
///         for (user, stored) in self.0.lock().unwrap().values_mut() {
///             if *user == id {
///                 *stored = hash.to_owned();
///             }
///         }
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
/// // A hash a Flask application stored with werkzeug.
/// let werkzeug = "pbkdf2:sha256:1000$jVQSL8WokIR5QutD$\
///     c9de3721856f71318afdc41075d60db1afbc89e2d5f37c2f642dfbed6220d559";
/// let users = Users(Mutex::new(HashMap::from([(
///     "alice".to_owned(),
///     (7, werkzeug.to_owned()),
/// )])));
/// let password = "correct horse battery staple";
/// assert_eq!(login(&passwords, &users, "Alice", password).await.unwrap(), Some(7));
/// // The werkzeug hash is gone: the account now has an Argon2id hash.
/// let upgraded = users.0.lock().unwrap()["alice"].1.clone();
/// assert!(upgraded.starts_with("$argon2id$"));
/// assert_eq!(login(&passwords, &users, "alice", "wrong").await.unwrap(), None);
/// assert_eq!(login(&passwords, &users, "nobody", password).await.unwrap(), None);
/// # });
/// ```
pub trait CredentialStore: Send + Sync {
    /// What a lookup or a write fails with: logged, and answered 503.
    type Error: std::fmt::Display + Send;

    /// The id and stored hash of the account that `username` names, as the user typed
    /// it; `Ok(None)` when there is none, or when the name cannot be one (the store
    /// applies the application's username rules).
    fn find(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<(i64, String)>, Self::Error>> + Send;

    /// Replaces the stored hash of account `id` by `hash`, after a login that proved
    /// the password.
    fn replace_hash(
        &self,
        id: i64,
        hash: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Checks a sign-in: the account's id when `password` is right for `username`, `None`
/// when the username is unknown or the password wrong — answer both alike.
///
/// Costs one verification whatever the outcome (a dummy one at the current parameters
/// for an unknown account). After a successful check against a hash that
/// [`Passwords::needs_rehash`] — werkzeug, bcrypt, an older Argon2 — the password is
/// hashed again with Argon2id and stored through [`CredentialStore::replace_hash`], so
/// that legacy hashes disappear as their users sign in, by whichever path. When that
/// new hash cannot be computed (the hasher is saturated) the login still succeeds and
/// the upgrade waits for the next one.
///
/// Errors: the store failing, or the hasher being unavailable or saturated for the
/// verification itself, are a 503. See [`CredentialStore`] for an example.
pub async fn login<S: CredentialStore>(
    passwords: &Passwords,
    store: &S,
    username: &str,
    password: &str,
) -> Result<Option<i64>, Error> {
    let unavailable = |error: S::Error| {
        tracing::error!(%error, "the credential store failed");
        Error::service_unavailable(5)
    };
    let account = store.find(username).await.map_err(unavailable)?;
    let (id, stored) = match account {
        Some((id, stored)) => (Some(id), Some(stored)),
        None => (None, None),
    };
    let matches = authenticate(passwords, stored.clone(), password).await?;
    let (Some(id), Some(stored), true) = (id, stored, matches) else {
        return Ok(None);
    };
    if passwords.needs_rehash(&stored) {
        match passwords.hash(password.to_owned()).await {
            Ok(hash) => {
                store.replace_hash(id, &hash).await.map_err(unavailable)?;
                tracing::info!(
                    target: "portcullis::security",
                    event = "password_hash_upgraded",
                    user_id = id,
                    "a password hash was replaced by one at the current parameters"
                );
            }
            Err(error) => tracing::warn!(%error, "cannot upgrade a password hash"),
        }
    }
    Ok(Some(id))
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
    use crate::password::PasswordConfig;
    use std::sync::Mutex;

    /// One account, `alice`, id 1.
    struct OneUser(Mutex<String>);

    impl CredentialStore for OneUser {
        type Error = std::convert::Infallible;

        async fn find(&self, username: &str) -> Result<Option<(i64, String)>, Self::Error> {
            Ok((crate::input::username_key(username) == "alice")
                .then(|| (1, self.0.lock().unwrap().clone())))
        }

        async fn replace_hash(&self, _id: i64, hash: &str) -> Result<(), Self::Error> {
            *self.0.lock().unwrap() = hash.to_owned();
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_saturated_hasher_makes_a_login_a_503_not_a_wait() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .max_concurrent(1)
                .permit_timeout(std::time::Duration::from_millis(100)),
        )
        .unwrap();
        let store = OneUser(Mutex::new(passwords.hash("pw".to_owned()).await.unwrap()));
        assert_eq!(
            login(&passwords, &store, "alice", "pw").await.unwrap(),
            Some(1)
        );
        // Every slot taken, as by a flood of logins that keeps them busy.
        let held = passwords.take_every_slot().await;
        for name in ["alice", "nobody"] {
            let error = login(&passwords, &store, name, "pw").await.unwrap_err();
            assert_eq!(error.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        }
        drop(held);
        assert_eq!(
            login(&passwords, &store, "alice", "pw").await.unwrap(),
            Some(1)
        );
    }

    #[tokio::test]
    async fn a_legacy_hash_is_replaced_only_after_the_right_password() {
        let passwords =
            Passwords::new(PasswordConfig::default().memory_kib(256).iterations(1)).unwrap();
        let werkzeug = "pbkdf2:sha256:1000$jVQSL8WokIR5QutD$\
            c9de3721856f71318afdc41075d60db1afbc89e2d5f37c2f642dfbed6220d559";
        let store = OneUser(Mutex::new(werkzeug.to_owned()));
        assert_eq!(
            login(&passwords, &store, "alice", "wrong").await.unwrap(),
            None
        );
        assert_eq!(*store.0.lock().unwrap(), werkzeug);
        let right = "correct horse battery staple";
        assert_eq!(
            login(&passwords, &store, " Alice", right).await.unwrap(),
            Some(1)
        );
        let upgraded = store.0.lock().unwrap().clone();
        assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
        assert!(!passwords.needs_rehash(&upgraded));
        // Signing in again keeps the new hash.
        assert_eq!(
            login(&passwords, &store, "alice", right).await.unwrap(),
            Some(1)
        );
        assert_eq!(*store.0.lock().unwrap(), upgraded);
    }

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
