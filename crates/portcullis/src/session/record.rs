//! What a session holds on the server, and the clock its instants are read from.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::client::SessionClient;
use crate::keys::fill_random;

/// Milliseconds since the Unix epoch: every instant of a session is kept this finely,
/// so that short timeouts are exact.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a session holds on the server.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionRecord {
    /// The logged-in user, if any.
    pub user_id: Option<i64>,
    /// The secret the CSRF tokens of this session are derived from (base64url).
    pub(super) csrf_secret: String,
    /// When the session (or the login) began, Unix milliseconds: the absolute
    /// lifetime counts from here.
    pub created_at: i64,
    /// The last request, Unix milliseconds: the idle timeout counts from here.
    pub last_seen: i64,
    /// Application values.
    pub data: BTreeMap<String, String>,
    /// The device the session began on, or last signed in from (coarse: a browser
    /// family and a network). Records saved before it was kept have it empty.
    #[serde(default)]
    pub client: SessionClient,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SessionRecord {
    /// An anonymous record begun at `now` on `client`, with a new CSRF secret.
    pub(crate) fn new(now: i64, client: SessionClient) -> Self {
        Self {
            user_id: None,
            csrf_secret: random_secret(),
            created_at: now,
            last_seen: now,
            data: BTreeMap::new(),
            client,
        }
    }

    /// A record of `user_id` (anonymous with `None`) begun now, with a new CSRF
    /// secret: what store tests save.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn begun_now(user_id: Option<i64>) -> Self {
        Self {
            user_id,
            ..Self::new(now(), SessionClient::default())
        }
    }

    /// The record as stores keep it: JSON.
    #[cfg(any(feature = "sqlite", feature = "redis"))]
    pub(crate) fn to_json(&self) -> Result<String, super::store::SessionStoreError> {
        Ok(serde_json::to_string(self)?)
    }

    /// A record as a store kept it. One that no longer parses (an older format, or
    /// something else under a session key) is no record: an anonymous session, in
    /// every store alike, rather than an error that would lock its holder out.
    #[cfg(any(feature = "sqlite", feature = "redis"))]
    pub(crate) fn from_json(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }

    /// The CSRF secret's bytes.
    pub fn csrf_secret(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(&self.csrf_secret)
            .unwrap_or_default()
    }
}
