//! Why a password could not be hashed or a stored hash could not be checked.

/// Why a password could not be hashed or a stored hash could not be checked.
///
/// No message ever includes the password or the stored hash.
///
/// ```
/// use portcullis::password::{PasswordConfig, PasswordError, Passwords};
///
/// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
/// assert_eq!(
///     passwords.verify_blocking("hunter2", "md5$abc$0123"),
///     Err(PasswordError::Malformed)
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The stored hash is not in a recognised format, or asks for parameters outside
    /// the accepted limits.
    #[error("the stored password hash is malformed, of an unsupported kind, or too costly")]
    Malformed,
    /// The [`PasswordConfig`](super::PasswordConfig) is not usable.
    #[error("invalid password hashing configuration: {0}")]
    InvalidConfig(String),
    /// Every hashing slot stayed taken for the whole [`PasswordConfig::permit_timeout`](super::PasswordConfig::permit_timeout):
    /// the machine is saturated; try again later (a 503).
    #[error("every password hashing slot is busy; try again later")]
    Busy,
    /// Hashing failed (the random source, the worker task); says nothing about the
    /// password.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}
