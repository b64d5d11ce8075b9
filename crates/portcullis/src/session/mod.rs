//! Server-side sessions: the cookie carries a signed random id, the data stays on the
//! server.
//!
//! - Ids are 256 bits from the operating system's random source; the cookie holds the
//!   id signed with the keyring's `session` subkey (so key rotation covers sessions
//!   too), and stores index records by the SHA-256 of the id, so a leaked session table
//!   holds no usable cookie.
//! - The cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`, without `Domain`, `Secure`
//!   whenever the configuration says so or the request came over HTTPS, and named
//!   `__Host-session` over HTTPS (the browser then refuses it from subdomains and plain
//!   HTTP) or `session` over plain HTTP in development.
//! - Idle timeout (30 minutes) and absolute lifetime (12 hours), both enforced on the
//!   server; [`Session::login`] issues a new id (no fixation), [`Session::destroy`]
//!   deletes the record, so a replayed cookie is anonymous, and
//!   [`Session::end_other_sessions`] ends every other session of the user (after a
//!   password change).
//! - "Your sessions": [`UserSessions`] lists a user's active sessions (a browser
//!   family and a /24 or /48 network each, never the full User-Agent or address) and
//!   ends one, only ever one of that user's own, or all others; it needs only the
//!   store, so a Bearer-token API can offer it. [`Session::listing_id`] marks this
//!   device in the list.
//! - Stores sit behind one async trait, [`SessionStore`]: [`MemorySessionStore`] (sharded,
//!   TTL and a size cap, purged in the background), `SqliteSessionStore` (feature
//!   `sqlite`) and `RedisSessionStore` (feature `redis`, shared by every instance of an
//!   app). A store written elsewhere proves it keeps the trait's rules with the
//!   conformance suite, `store::conformance` (feature `test-util`).
//!
//! Portcullis writes this itself rather than using tower-sessions 0.14 because that
//! crate draws ids from a user-space PRNG, has no absolute lifetime, no way to end all
//! sessions of one user, one fixed cookie name whatever the scheme, no key rotation for
//! signed cookies, and a memory store that never evicts.
//!
//! ```
//! use std::sync::Arc;
//! use portcullis::keys::{Keyring, SecretKey};
//! use portcullis::session::{MemorySessionStore, Session, SessionConfig};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let keyring = Keyring::new(SecretKey::generate(), vec![]);
//! let layer = SessionConfig::default().layer(&keyring, Arc::new(MemorySessionStore::default()));
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(|session: Session| async move {
//!         format!("user: {:?}", session.user_id())
//!     }))
//!     .layer(layer);
//! # }
//! ```

mod client;
mod config;
mod cookie;
mod handle;
mod layer;
mod listing;
mod record;
pub mod store;

pub use client::SessionClient;
pub use config::SessionConfig;
pub use cookie::{COOKIE_NAME, SECURE_COOKIE_NAME};
pub use handle::Session;
pub use layer::{SessionLayer, SessionService};
pub use listing::{ActiveSession, UserSessions};
pub use record::SessionRecord;
#[cfg(feature = "redis")]
pub use store::RedisSessionStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteSessionStore;
pub use store::{MemorySessionStore, SessionStore, SessionStoreError};
