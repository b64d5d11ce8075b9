//! What several test files share.

#[cfg(feature = "redis")]
pub(crate) mod redis;
