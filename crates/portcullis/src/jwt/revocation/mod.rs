//! Where refresh families and revocations live, behind one trait.
//!
//! A [`Jwt`](crate::jwt::Jwt) keeps no state of its own: every login, refresh and
//! revocation is one call to a [`RevocationStore`], each atomic, each with a deadline
//! after which the record may go.
//!
//! | store | state | for |
//! |---|---|---|
//! | [`MemoryRevocationStore`] | one process, bounded, purged in the background | one instance, tests |
//! | `RedisRevocationStore` (feature `redis`) | `{prefix}:fam:{family}`, `{prefix}:user:{user}`, `{prefix}:ufam:{user}` | every instance of an app |
//!
//! A store that cannot answer is an error, and the token endpoint and the extractor
//! answer 503: a token is never taken as valid because its state could not be read,
//! and a revocation is never dropped to make room.
//!
//! Stores written elsewhere prove themselves with the conformance suite,
//! `conformance::run` (feature `test-util`), which checks every rule the stores here
//! keep.
//!
//! ```
//! use portcullis::jwt::revocation::{MemoryRevocationStore, RefreshUse, RevocationStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryRevocationStore::default();
//! let until = chrono::Utc::now().timestamp() + 3600;
//! store.start_family("42", "family", "refresh-1", until, 32).await.unwrap();
//! let first = store.rotate_refresh("42", "family", "refresh-1", "refresh-2", until);
//! assert_eq!(first.await.unwrap(), RefreshUse::Fresh);
//! // The same refresh token again: reuse, and the family is revoked.
//! let again = store.rotate_refresh("42", "family", "refresh-1", "refresh-3", until);
//! assert_eq!(again.await.unwrap(), RefreshUse::Reused);
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;

use futures_util::future::BoxFuture;

use super::Claims;

#[cfg(feature = "test-util")]
pub mod conformance;
mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use memory::MemoryRevocationStore;
#[cfg(feature = "redis")]
pub use redis::RedisRevocationStore;

/// Why a revocation store could not answer. Whatever the cause, the client gets 503:
/// a revocation is never dropped to make room, and a token is never taken as valid
/// because its state could not be read.
///
/// ```
/// use portcullis::jwt::RevocationError;
///
/// let error = RevocationError::unavailable("connection refused");
/// assert!(error.to_string().contains("connection refused"));
/// assert!(std::error::Error::source(&error).is_some());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The store could not be reached, refused the operation, or did not answer in
    /// time.
    #[error("the revocation store is unavailable: {source}")]
    Unavailable {
        /// What went wrong.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// The store holds as many records as it may: it refuses new ones rather than
    /// forget a revocation.
    #[error("the revocation store is full ({capacity} records)")]
    Full {
        /// How many records the store may hold.
        capacity: usize,
    },
    /// The store answered what no correct store holds (a record or a reply it cannot
    /// read): the state is unknown, so nothing is taken as valid.
    #[error("the revocation store gave an answer it cannot give: {detail}")]
    Corrupt {
        /// What the answer was.
        detail: String,
    },
}

impl RevocationError {
    /// [`RevocationError::Unavailable`] caused by `source`.
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self::Unavailable {
            source: source.into(),
        }
    }
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshUse {
    /// The family's current refresh token: the next one now takes its place.
    Fresh,
    /// An earlier refresh token of the family (a stolen copy, or the victim's after
    /// the thief refreshed first): the family is now revoked.
    Reused,
    /// The family is revoked, unknown or expired, or its user was revoked after it
    /// began.
    Revoked,
}

/// Where the state of refresh families and revocations lives. Times are Unix seconds.
///
/// The state is O(live families), not O(refreshes): each login starts a family that
/// records its *current* refresh token id and the user's revocation generation at its
/// start. A refresh presents a token id; anything but the current one is reuse and
/// revokes the family. Revoking a user bumps its generation, so every family begun
/// before is revoked by the same comparison inside the atomic refresh step, whatever
/// the instances' clocks say and however a refresh races the revocation. Every record
/// carries a deadline (the tokens' expiry plus the leeway), after which nothing it
/// concerns verifies anyway.
///
/// A store written outside Portcullis checks itself against every rule this one
/// keeps with `portcullis::jwt::revocation::conformance::run` (feature `test-util`).
pub trait RevocationStore: Send + Sync + fmt::Debug + 'static {
    /// Whether a token is revoked: its family is revoked, unknown, or began before
    /// its user's latest revocation. One call, so a networked store needs one round
    /// trip.
    ///
    /// An unknown family is revoked: every token names the family its login began,
    /// and the family's record is kept until after the last of its tokens expires, so
    /// a family the store does not know means the store lost its records (an
    /// in-memory store restarted, Redis restarted empty or evicted keys). Such a store
    /// cannot tell a revoked token from a good one, and refuses both: clients sign in
    /// again, as they must after losing their sessions.
    fn is_revoked<'a>(&'a self, claims: &'a Claims)
        -> BoxFuture<'a, Result<bool, RevocationError>>;
    /// Starts `family` for `user`, its current refresh token `refresh_jti`, kept until
    /// `until`. When the user has `max_per_user` live families already, the oldest are
    /// revoked. A full store refuses (an error), never forgets.
    fn start_family<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        refresh_jti: &'a str,
        until: i64,
        max_per_user: usize,
    ) -> BoxFuture<'a, Result<(), RevocationError>>;
    /// One atomic refresh step: `presented` must be the family's current refresh
    /// token, the family unrevoked and begun at the user's current generation; then
    /// `next` becomes current and the family is kept until `until`.
    fn rotate_refresh<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        presented: &'a str,
        next: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<RefreshUse, RevocationError>>;
    /// Revokes every token of `family` (of `user`), remembered until `until`.
    fn revoke_family<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<(), RevocationError>>;
    /// Revokes every family `user` has begun so far, and every token issued before
    /// `not_before`, remembered until `until`.
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        not_before: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<(), RevocationError>>;
}
