//! Account security beyond the password check of [`crate::auth`]: what ASVS 5.0
//! Level 2 asks of sign-in and recovery, built so that the usual bugs of these flows
//! cannot happen.
//!
//! - [`SecondStep`]: the second sign-in step, bound to the password-verified attempt
//!   in the still-anonymous session, short-lived, with its own limit of tries; the
//!   session id changes when it completes. Codes themselves are [`crate::totp`]'s.
//! - [`require_recent_authentication`]: the password again before the email address,
//!   the password or the second factor change.
//! - [`SignedLinks`]: password-reset and email-confirmation links, signed under
//!   their own keyring purposes and single-use because bound to the state they act
//!   on (a reset link dies with the password hash it was issued against).
//! - [`AccountThrottle`]: an exponential, bounded delay per account after repeated
//!   failures, in place of a lockout an attacker could use against the owner.
//! - [`SecurityLog`]: one typed event stream ([`SecurityEventKind`]), written to the
//!   `portcullis::security` log target and to a [`SecurityEventStore`] the app shows;
//!   its refusals layer records the rate limiter's refusals on sign-in routes.
//! - [`AccountThrottle`] counts in a [`ThrottleStore`]: in memory for one instance, or
//!   in Redis (`RedisThrottleStore`, feature `redis`) for all of them.
//!
//! A reset never bypasses the second factor: the app asks for a code (or a recovery
//! code) before it accepts the new password of an account with one (see the demo's
//! `/reset/{token}`).
//!
//! ```
//! use portcullis::account::{SecurityEventKind, SignedLinks};
//! use portcullis::keys::{Keyring, SecretKey};
//!
//! let keyring = Keyring::new(SecretKey::generate(), vec![]);
//! let link = SignedLinks::password_reset(&keyring).issue(7, "$argon2id$…");
//! assert!(SignedLinks::password_reset(&keyring).open(&link).is_ok());
//! assert_eq!(SecurityEventKind::PasswordResetRequested.as_str(), "password_reset_requested");
//! ```

mod events;
mod links;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "ratelimit")]
mod refusals;
mod second_step;
mod throttle;

pub use events::{
    EventContext, EventStoreError, MemoryEventStore, SecurityEvent, SecurityEventKind,
    SecurityEventStore, SecurityLog,
};
pub use links::{LinkClaim, LinkError, SignedLinks};
#[cfg(feature = "redis")]
pub use redis::RedisThrottleStore;
#[cfg(feature = "ratelimit")]
pub use refusals::{RecordRefusals, RecordRefusalsLayer, REFUSAL_EVENT_INTERVAL};
pub use second_step::{
    mark_authenticated, require_recent_authentication, SecondStep, SECOND_STEP_LIFETIME,
    SECOND_STEP_TRIES,
};
pub use throttle::{
    AccountThrottle, MemoryThrottleStore, ThrottleConfig, ThrottleError, ThrottleStore,
};
