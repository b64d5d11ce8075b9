//! JSON Web Tokens for APIs: access and refresh tokens, rotation, revocation.
//!
//! What Flask-JWT-Extended does, with the parts it leaves to the user done:
//!
//! - **Keys.** HS256 with the keyring's `jwt` subkey by default: every token names its
//!   key in `kid`, new tokens are signed with the current key, and tokens signed with a
//!   fallback key still verify until that key leaves the ring. EdDSA (Ed25519) keys
//!   from PEM files are the alternative ([`JwtKeys::ed25519`]).
//! - **Validation pins the algorithm** (a token whose header names another, `none`
//!   included, is refused before any signature check), requires `exp`, `nbf`, `iss`,
//!   `aud` and `sub`, and allows at most 30 seconds of clock skew.
//! - **Two kinds.** Access tokens (15 minutes) and refresh tokens (30 days) carry
//!   `typ`; neither is accepted where the other is expected.
//! - **Revocation.** Each login starts a refresh family: one record with its current
//!   refresh token id and the user's revocation generation, kept until its last token
//!   expires (leeway included). Each refresh makes a new token current; presenting any
//!   other token of the family again revokes the whole family (the refresh token was
//!   stolen, and one of the two holders is an attacker). Revoking a user (log out
//!   everywhere, password change) bumps its generation, which ends every family begun
//!   before, refreshes in flight included. State follows live logins, never the number
//!   of refreshes, and a full store refuses new logins rather than forget.
//! - **The extractor** [`BearerUser`] answers 401 with `WWW-Authenticate: Bearer
//!   error="invalid_token"` and the uniform JSON error, never 422 or 500.
//!
//! Refresh rotation with reuse detection and the deny list are something no crate
//! does, so Portcullis writes them itself; signing and verification are jsonwebtoken's
//! (with its aws-lc-rs backend).
//!
//! ```
//! use std::sync::Arc;
//! use portcullis::jwt::{Jwt, JwtConfig, JwtKeys, MemoryRevocationStore};
//! use portcullis::keys::{Keyring, SecretKey};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let keyring = Keyring::new(SecretKey::generate(), vec![]);
//! let jwt = Jwt::new(
//!     JwtConfig::default(),
//!     JwtKeys::from_keyring(&keyring),
//!     Arc::new(MemoryRevocationStore::default()),
//! );
//! let pair = jwt.issue(42).await.unwrap();
//! let claims = jwt.verify_access(&pair.access_token).await.unwrap();
//! assert_eq!(claims.user_id(), Some(42));
//! // A refresh token is not an access token.
//! assert!(jwt.verify_access(&pair.refresh_token).await.is_err());
//! # }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_util::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::keys::{fill_random, Keyring, Purpose};

/// The most clock skew Portcullis accepts: more would stretch every token's life.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Which kind a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived; authenticates API requests.
    Access,
    /// Long-lived; only buys a new pair at the refresh endpoint.
    Refresh,
}

/// The claims of every Portcullis token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// This token's unique id.
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Access or refresh.
    pub typ: TokenType,
    /// The refresh family this token belongs to (all tokens descended from one login).
    pub fam: String,
}

impl Claims {
    /// The user id, when `sub` is one.
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// Settings. `Default`: issuer `portcullis`, audience `portcullis-api`, access tokens
/// for 15 minutes, refresh tokens for 30 days, 30 seconds of leeway, 32 live logins per
/// user.
///
/// ```
/// use std::time::Duration;
/// use portcullis::jwt::JwtConfig;
///
/// let config = JwtConfig::default()
///     .issuer("https://auth.example.com")
///     .audience("example-api")
///     .access_ttl(Duration::from_secs(5 * 60));
/// ```
#[derive(Debug, Clone)]
pub struct JwtConfig {
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    leeway: Duration,
    max_families_per_user: usize,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: "portcullis".into(),
            audience: "portcullis-api".into(),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            leeway: MAX_LEEWAY,
            max_families_per_user: 32,
        }
    }
}

impl JwtConfig {
    /// The `iss` claim written and required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The `aud` claim written and required.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// How long access tokens live.
    pub fn access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// How long refresh tokens live.
    pub fn refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// How many logins (refresh families) one user may hold at once (default 32, at
    /// least 1); a new login beyond it revokes the oldest, so that one account cannot
    /// fill the revocation store.
    ///
    /// ```
    /// use portcullis::jwt::JwtConfig;
    ///
    /// let config = JwtConfig::default().max_families_per_user(5);
    /// ```
    pub fn max_families_per_user(mut self, max: usize) -> Self {
        self.max_families_per_user = max.max(1);
        self
    }

    /// Clock skew allowed on `exp` and `nbf`; capped at [`MAX_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// The access-token lifetime.
    pub fn access_lifetime(&self) -> Duration {
        self.access_ttl
    }
}

/// A key that signs or verifies, with its id.
struct VerifyingKey {
    kid: String,
    key: DecodingKey,
}

/// Signing and verification keys, of one algorithm.
pub struct JwtKeys {
    algorithm: Algorithm,
    signing: (String, EncodingKey),
    verifying: Vec<VerifyingKey>,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("signing_kid", &self.signing.0)
            .field(
                "verifying_kids",
                &self.verifying.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtKeyError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file does not hold an Ed25519 key of the expected kind.
    #[error("{0} does not hold an Ed25519 key")]
    NotEd25519(std::path::PathBuf),
}

impl JwtKeys {
    /// HS256 with the keyring's `jwt` subkeys: signs with the current key, verifies
    /// with the current key and every fallback.
    pub fn from_keyring(keyring: &Keyring) -> Self {
        let subkeys = keyring.subkeys(Purpose::JWT);
        let verifying = subkeys
            .iter()
            .map(|k| VerifyingKey {
                kid: k.id().to_owned(),
                key: DecodingKey::from_secret(k.bytes()),
            })
            .collect();
        let current = &subkeys[0];
        Self {
            algorithm: Algorithm::HS256,
            signing: (
                current.id().to_owned(),
                EncodingKey::from_secret(current.bytes()),
            ),
            verifying,
        }
    }

    /// EdDSA (Ed25519): signs with the private key in `private_pem` (PKCS#8), verifies
    /// with the public keys in `public_pems` (the signing key's own first, then keys
    /// being rotated out). Key ids are digests of the public keys.
    pub fn ed25519(
        private_pem: &std::path::Path,
        public_pems: &[&std::path::Path],
    ) -> Result<Self, JwtKeyError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| JwtKeyError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let private = read(private_pem)?;
        let signing_key = EncodingKey::from_ed_pem(&private)
            .map_err(|_| JwtKeyError::NotEd25519(private_pem.to_owned()))?;
        let mut verifying = Vec::new();
        for path in public_pems {
            let pem = read(path)?;
            let key = DecodingKey::from_ed_pem(&pem)
                .map_err(|_| JwtKeyError::NotEd25519(path.to_path_buf()))?;
            let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&pem)[..9]);
            verifying.push(VerifyingKey { kid, key });
        }
        let Some(first) = verifying.first() else {
            return Err(JwtKeyError::NotEd25519(private_pem.to_owned()));
        };
        Ok(Self {
            algorithm: Algorithm::EdDSA,
            signing: (first.kid.clone(), signing_key),
            verifying,
        })
    }
}

/// Why a token was refused. The message never says more than the client needs.
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
}

impl IntoResponse for JwtError {
    fn into_response(self) -> Response {
        if self == Self::Unavailable {
            return Error::service_unavailable(5).into_response();
        }
        let mut response =
            Error::new(StatusCode::UNAUTHORIZED, self.code(), self.to_string()).into_response();
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

/// A revocation store could not be reached, or (in memory) is full. Either way the
/// answer is 503: a revocation is never dropped to make room, and a token is never
/// taken as valid because its state could not be read.
#[derive(Debug, thiserror::Error)]
#[error("revocation store: {0}")]
pub struct RevocationError(pub String);

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
pub trait RevocationStore: Send + Sync + fmt::Debug + 'static {
    /// Whether a token is revoked: its family is revoked, or began before its user's
    /// latest revocation; for a family the store does not know (it expired, or an
    /// in-memory store restarted), whether the token was issued before the user's
    /// "not before". One call, so a networked store needs one round trip.
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

#[derive(Debug)]
struct Family {
    user: String,
    current: String,
    generation: u64,
    revoked: bool,
    until: i64,
}

#[derive(Debug, Default)]
struct UserRecord {
    generation: u64,
    not_before: i64,
    until: i64,
    // The user's families in the order they began, for the per-user cap.
    families: std::collections::VecDeque<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Family,
    User,
}

#[derive(Debug, Default)]
struct Shard {
    families: HashMap<String, Family>,
    users: HashMap<String, UserRecord>,
    // (deadline, kind, id): the next to expire first, for the purge.
    deadlines: BTreeSet<(i64, Kind, String)>,
}

impl Shard {
    fn len(&self) -> usize {
        self.families.len() + self.users.len()
    }

    fn purge(&mut self, now: i64) {
        while let Some((until, kind, id)) = self.deadlines.first().cloned() {
            if until > now {
                break;
            }
            self.deadlines.pop_first();
            match kind {
                Kind::Family => {
                    self.families.remove(&id);
                }
                Kind::User => {
                    self.users.remove(&id);
                }
            }
        }
    }

    fn generation(&self, user: &str) -> u64 {
        self.users.get(user).map_or(0, |u| u.generation)
    }

    /// Moves a family's deadline to `until` if that is later, and its user's with it:
    /// a user record must outlive every family it judges.
    fn extend(&mut self, user: &str, family: &str, until: i64) {
        if let Some(f) = self.families.get_mut(family) {
            if until > f.until {
                self.deadlines
                    .remove(&(f.until, Kind::Family, family.to_owned()));
                f.until = until;
                self.deadlines
                    .insert((until, Kind::Family, family.to_owned()));
            }
        }
        let record = self.users.entry(user.to_owned()).or_default();
        if until > record.until {
            let old = record.until;
            record.until = until;
            self.deadlines.remove(&(old, Kind::User, user.to_owned()));
            self.deadlines.insert((until, Kind::User, user.to_owned()));
        }
    }

    /// Room for `needed` more records, or the store's refusal.
    fn make_room(
        &mut self,
        needed: usize,
        capacity: usize,
        now: i64,
    ) -> Result<(), RevocationError> {
        if self.len() + needed > capacity {
            self.purge(now);
        }
        if self.len() + needed > capacity {
            tracing::error!(
                target: "portcullis::security",
                event = "revocation_store_full",
                "the in-memory revocation store is full: new logins are refused until entries expire"
            );
            return Err(RevocationError("the in-memory store is full".to_owned()));
        }
        Ok(())
    }
}

/// In-memory refresh families and revocations for one process: one record per live
/// family and per user that has one, each with a deadline, at most `capacity` records,
/// purged in the background. When full it refuses new logins (the token endpoint
/// answers 503 and logs it) rather than forget a revocation.
///
/// The records are spread over up to 16 shards by user, each behind its own lock, so
/// that the checks of concurrent requests do not queue on one lock, and everything of
/// one user (its families, its generation) changes under one lock: a refresh and a
/// revocation of the same user cannot interleave.
#[derive(Debug)]
pub struct MemoryRevocationStore {
    shards: Arc<[RwLock<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    capacity_per_shard: usize,
}

impl Default for MemoryRevocationStore {
    /// One million records at most.
    fn default() -> Self {
        Self::new(1_000_000)
    }
}

// One shard per this many records of capacity, up to MAX_SHARDS.
const ENTRIES_PER_SHARD: usize = 4096;
const MAX_SHARDS: usize = 16;

impl MemoryRevocationStore {
    /// A store of at most `capacity` records; inside a Tokio runtime, expired records
    /// are purged every minute by a task that ends with the store.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        let count = (capacity / ENTRIES_PER_SHARD).clamp(1, MAX_SHARDS);
        let shards: Arc<[RwLock<Shard>]> =
            (0..count).map(|_| RwLock::new(Shard::default())).collect();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak: Weak<[RwLock<Shard>]> = Arc::downgrade(&shards);
            handle.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(shards) = weak.upgrade() else { break };
                    for shard in shards.iter() {
                        shard
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .purge(now());
                    }
                }
            });
        }
        Self {
            shards,
            hasher: std::collections::hash_map::RandomState::new(),
            // Rounded down, so that all shards together never exceed `capacity`.
            capacity_per_shard: (capacity / count).max(2),
        }
    }

    fn shard(&self, user: &str) -> &RwLock<Shard> {
        use std::hash::BuildHasher as _;
        let index = self.hasher.hash_one(user) as usize % self.shards.len();
        &self.shards[index]
    }

    fn write<R>(&self, user: &str, f: impl FnOnce(&mut Shard) -> R) -> R {
        f(&mut self.shard(user).write().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many records are held (families and users).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevocationStore for MemoryRevocationStore {
    fn is_revoked<'a>(
        &'a self,
        claims: &'a Claims,
    ) -> BoxFuture<'a, Result<bool, RevocationError>> {
        let now = now();
        // Checks far outnumber changes: readers share the lock.
        let shard = self
            .shard(&claims.sub)
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let user = shard.users.get(&claims.sub).filter(|u| u.until > now);
        let revoked = match shard.families.get(&claims.fam).filter(|f| f.until > now) {
            Some(family) => {
                family.revoked
                    || family.user != claims.sub
                    || family.generation < user.map_or(0, |u| u.generation)
            }
            None => user.is_some_and(|u| claims.iat < u.not_before),
        };
        Box::pin(async move { Ok(revoked) })
    }

    fn start_family<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        refresh_jti: &'a str,
        until: i64,
        max_per_user: usize,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let now = now();
        let capacity = self.capacity_per_shard;
        let outcome = self.write(user, |shard| {
            let needed = 1 + usize::from(!shard.users.contains_key(user));
            shard.make_room(needed, capacity, now)?;
            let generation = shard.generation(user);
            shard.families.insert(
                family.to_owned(),
                Family {
                    user: user.to_owned(),
                    current: refresh_jti.to_owned(),
                    generation,
                    revoked: false,
                    until,
                },
            );
            shard
                .deadlines
                .insert((until, Kind::Family, family.to_owned()));
            shard.extend(user, family, until);
            // The user's live families, oldest first; beyond the cap the oldest end.
            let mut listed =
                std::mem::take(&mut shard.users.get_mut(user).expect("extended above").families);
            listed.retain(|id| {
                shard
                    .families
                    .get(id)
                    .is_some_and(|f| !f.revoked && f.until > now && f.generation == generation)
            });
            listed.push_back(family.to_owned());
            while listed.len() > max_per_user.max(1) {
                if let Some(oldest) = listed.pop_front() {
                    if let Some(f) = shard.families.get_mut(&oldest) {
                        f.revoked = true;
                    }
                }
            }
            shard.users.get_mut(user).expect("extended above").families = listed;
            Ok(())
        });
        Box::pin(async move { outcome })
    }

    fn rotate_refresh<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        presented: &'a str,
        next: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<RefreshUse, RevocationError>> {
        let now = now();
        let outcome = self.write(user, |shard| {
            let generation = shard.generation(user);
            let Some(f) = shard
                .families
                .get_mut(family)
                .filter(|f| f.until > now && f.user == user)
            else {
                return RefreshUse::Revoked;
            };
            if f.revoked {
                return RefreshUse::Revoked;
            }
            if f.generation < generation {
                f.revoked = true;
                return RefreshUse::Revoked;
            }
            if f.current != presented {
                f.revoked = true;
                return RefreshUse::Reused;
            }
            f.current = next.to_owned();
            shard.extend(user, family, until);
            RefreshUse::Fresh
        });
        Box::pin(async move { Ok(outcome) })
    }

    fn revoke_family<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let now = now();
        let capacity = self.capacity_per_shard;
        let outcome = self.write(user, |shard| {
            if let Some(f) = shard.families.get_mut(family) {
                f.revoked = true;
            } else {
                // Unknown here (an in-memory store restarted): remembered as revoked,
                // so its access tokens stop verifying too.
                let needed = 1 + usize::from(!shard.users.contains_key(user));
                shard.make_room(needed, capacity, now)?;
                shard.families.insert(
                    family.to_owned(),
                    Family {
                        user: user.to_owned(),
                        current: String::new(),
                        generation: 0,
                        revoked: true,
                        until: now,
                    },
                );
                shard
                    .deadlines
                    .insert((now, Kind::Family, family.to_owned()));
            }
            shard.extend(user, family, until);
            Ok(())
        });
        Box::pin(async move { outcome })
    }

    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        not_before: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        let now = now();
        let capacity = self.capacity_per_shard;
        let outcome = self.write(user, |shard| {
            if !shard.users.contains_key(user) {
                shard.make_room(1, capacity, now)?;
            }
            shard.extend(user, "", until);
            let record = shard.users.get_mut(user).expect("extended above");
            record.generation += 1;
            record.not_before = record.not_before.max(not_before);
            record.families.clear();
            Ok(())
        });
        Box::pin(async move { outcome })
    }
}

/// A new access and refresh token, as the token endpoint returns them.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The token endpoint's answer: the pair as JSON, with `Cache-Control: no-store` and
/// `Pragma: no-cache` (RFC 6749 §5.1), so that no cache keeps a copy of the tokens.
///
/// ```
/// use axum::response::IntoResponse;
/// use portcullis::jwt::TokenPair;
///
/// let pair = TokenPair {
///     access_token: "a".into(),
///     refresh_token: "r".into(),
///     token_type: "Bearer",
///     expires_in: 900,
/// };
/// let response = pair.into_response();
/// assert_eq!(response.headers()["cache-control"], "no-store");
/// ```
impl IntoResponse for TokenPair {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// Issues, verifies, refreshes and revokes tokens. Cheap to clone.
#[derive(Clone)]
pub struct Jwt {
    inner: Arc<JwtInner>,
}

struct JwtInner {
    config: JwtConfig,
    keys: JwtKeys,
    validation: Validation,
    store: Arc<dyn RevocationStore>,
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("config", &self.inner.config)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

fn unavailable(error: RevocationError) -> JwtError {
    tracing::error!(%error, "revocation store unavailable");
    JwtError::Unavailable
}

impl Jwt {
    /// Tokens for `config`, signed and verified with `keys`, revocations in `store`.
    pub fn new(config: JwtConfig, keys: JwtKeys, store: Arc<dyn RevocationStore>) -> Self {
        let mut validation = Validation::new(keys.algorithm);
        // Exactly one algorithm: the header cannot choose another.
        validation.algorithms = vec![keys.algorithm];
        validation.leeway = config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        Self {
            inner: Arc::new(JwtInner {
                config,
                keys,
                validation,
                store,
            }),
        }
    }

    fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let mut header = Header::new(self.inner.keys.algorithm);
        header.kid = Some(self.inner.keys.signing.0.clone());
        jsonwebtoken::encode(&header, claims, &self.inner.keys.signing.1).map_err(|e| {
            tracing::error!(error = %e, "cannot sign a token");
            Error::internal()
        })
    }

    fn claims(&self, user: &str, typ: TokenType, family: &str, now: i64) -> Claims {
        let ttl = match typ {
            TokenType::Access => self.inner.config.access_ttl,
            TokenType::Refresh => self.inner.config.refresh_ttl,
        };
        Claims {
            sub: user.to_owned(),
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4),
            jti: random_id(),
            iss: self.inner.config.issuer.clone(),
            aud: self.inner.config.audience.clone(),
            typ,
            fam: family.to_owned(),
        }
    }

    /// A signed pair, and the id of its refresh token.
    fn pair(&self, user: &str, family: &str) -> Result<(TokenPair, String), Error> {
        let now = now();
        let refresh = self.claims(user, TokenType::Refresh, family, now);
        let pair = TokenPair {
            access_token: self.sign(&self.claims(user, TokenType::Access, family, now))?,
            refresh_token: self.sign(&refresh)?,
            token_type: "Bearer",
            expires_in: self.inner.config.access_ttl.as_secs(),
        };
        Ok((pair, refresh.jti))
    }

    /// A new pair for `user_id`, starting a new refresh family (a login). When the
    /// user already has [`JwtConfig::max_families_per_user`] live families, the oldest
    /// is revoked; when the revocation store is full or unreachable, nothing is issued
    /// (503).
    pub async fn issue(&self, user_id: i64) -> Result<TokenPair, JwtError> {
        let user = user_id.to_string();
        let family = random_id();
        let (pair, refresh_jti) = self
            .pair(&user, &family)
            .map_err(|_| JwtError::Unavailable)?;
        self.inner
            .store
            .start_family(
                &user,
                &family,
                &refresh_jti,
                self.family_deadline(),
                self.inner.config.max_families_per_user,
            )
            .await
            .map_err(unavailable)?;
        Ok(pair)
    }

    /// Signs arbitrary claims with the current key, for tests and tools that need a
    /// token Portcullis would not issue on its own (an expired one, say).
    pub fn sign_claims(&self, claims: &Claims) -> Result<String, Error> {
        self.sign(claims)
    }

    /// Verifies signature, algorithm, key id and claims, without revocation checks.
    pub fn decode(&self, token: &str) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Invalid)?;
        if header.alg != self.inner.keys.algorithm {
            return Err(JwtError::Invalid);
        }
        let kid = header.kid.ok_or(JwtError::Invalid)?;
        let key = self
            .inner
            .keys
            .verifying
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(JwtError::Invalid)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &self.inner.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                _ => JwtError::Invalid,
            })?;
        Ok(data.claims)
    }

    async fn verify(&self, token: &str, typ: TokenType) -> Result<Claims, JwtError> {
        let claims = self.decode(token)?;
        if claims.typ != typ {
            return Err(JwtError::WrongType);
        }
        if self
            .inner
            .store
            .is_revoked(&claims)
            .await
            .map_err(unavailable)?
        {
            return Err(JwtError::Revoked);
        }
        Ok(claims)
    }

    /// Verifies an access token, revocations included.
    pub async fn verify_access(&self, token: &str) -> Result<Claims, JwtError> {
        self.verify(token, TokenType::Access).await
    }

    /// Trades a refresh token for a new pair of the same family, retiring it. A
    /// refresh token presented twice revokes its whole family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, JwtError> {
        let claims = self.verify(refresh_token, TokenType::Refresh).await?;
        let (pair, next) = self
            .pair(&claims.sub, &claims.fam)
            .map_err(|_| JwtError::Unavailable)?;
        // The new pair counts only if this one atomic step makes its refresh token
        // the family's current one; a revocation that lands first wins.
        let outcome = self
            .inner
            .store
            .rotate_refresh(
                &claims.sub,
                &claims.fam,
                &claims.jti,
                &next,
                self.family_deadline(),
            )
            .await
            .map_err(unavailable)?;
        match outcome {
            RefreshUse::Fresh => Ok(pair),
            RefreshUse::Reused => {
                tracing::warn!(
                    target: "portcullis::security",
                    event = "refresh_token_reused",
                    user = %claims.sub,
                    "a refresh token was used twice; its family is revoked"
                );
                Err(JwtError::RefreshReused)
            }
            RefreshUse::Revoked => Err(JwtError::Revoked),
        }
    }

    /// How long a family's record is kept: as long as its newest refresh token can
    /// verify, leeway included.
    fn family_deadline(&self) -> i64 {
        let config = &self.inner.config;
        now()
            + i64::try_from((config.refresh_ttl + config.leeway).as_secs()).unwrap_or(i64::MAX / 4)
    }

    /// Revokes one token and every token of its family (its refresh token included).
    pub async fn revoke(&self, claims: &Claims) -> Result<(), JwtError> {
        self.inner
            .store
            .revoke_family(&claims.sub, &claims.fam, self.family_deadline())
            .await
            .map_err(unavailable)
    }

    /// Revokes every token issued to `user_id` until now (log out everywhere, a
    /// password change), refreshes in flight included.
    pub async fn revoke_user(&self, user_id: i64) -> Result<(), JwtError> {
        // For families the store no longer knows, the time decides: tokens issued in
        // this same second would otherwise survive (`iat` has one-second resolution).
        let not_before = now() + 1;
        self.inner
            .store
            .revoke_user(&user_id.to_string(), not_before, self.family_deadline())
            .await
            .map_err(unavailable)
    }
}

/// The bearer of a valid, unrevoked access token. Needs the [`Jwt`] in the request
/// extensions (`axum::Extension(jwt)`).
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
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

impl<S: Send + Sync> FromRequestParts<S> for BearerUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(jwt) = parts.extensions.get::<Jwt>().cloned() else {
            tracing::error!("BearerUser needs the Jwt in the request extensions");
            return Err(Error::internal().into_response());
        };
        let token = bearer_token(parts).ok_or(JwtError::Missing.into_response())?;
        let claims = jwt
            .verify_access(token)
            .await
            .map_err(IntoResponse::into_response)?;
        let id = claims
            .user_id()
            .ok_or_else(|| JwtError::Invalid.into_response())?;
        Ok(Self { id, claims })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn jwt_with(keyring: &Keyring, store: Arc<dyn RevocationStore>) -> Jwt {
        Jwt::new(JwtConfig::default(), JwtKeys::from_keyring(keyring), store)
    }

    fn jwt() -> Jwt {
        jwt_with(
            &Keyring::new(SecretKey::generate(), vec![]),
            Arc::new(MemoryRevocationStore::default()),
        )
    }

    #[tokio::test]
    async fn access_and_refresh_tokens_are_not_interchangeable() {
        let jwt = jwt();
        let pair = jwt.issue(1).await.unwrap();
        assert_eq!(
            jwt.verify_access(&pair.refresh_token).await,
            Err(JwtError::WrongType)
        );
        assert!(matches!(
            jwt.refresh(&pair.access_token).await,
            Err(JwtError::WrongType)
        ));
    }

    #[tokio::test]
    async fn refresh_rotates_and_reuse_revokes_the_family() {
        let jwt = jwt();
        let first = jwt.issue(1).await.unwrap();
        let second = jwt.refresh(&first.refresh_token).await.unwrap();
        assert!(jwt.verify_access(&second.access_token).await.is_ok());
        // The attacker replays the first refresh token.
        assert!(matches!(
            jwt.refresh(&first.refresh_token).await,
            Err(JwtError::RefreshReused)
        ));
        // Everything of the family is now dead, the legitimate holder's too.
        assert_eq!(
            jwt.verify_access(&second.access_token).await,
            Err(JwtError::Revoked)
        );
        assert!(jwt.refresh(&second.refresh_token).await.is_err());
        // Another login is unaffected.
        let other = jwt.issue(1).await.unwrap();
        assert!(jwt.verify_access(&other.access_token).await.is_ok());
    }

    #[tokio::test]
    async fn revoking_a_user_kills_every_earlier_token() {
        let jwt = jwt();
        let a = jwt.issue(5).await.unwrap();
        let b = jwt.issue(5).await.unwrap();
        let other = jwt.issue(6).await.unwrap();
        jwt.revoke_user(5).await.unwrap();
        assert_eq!(
            jwt.verify_access(&a.access_token).await,
            Err(JwtError::Revoked)
        );
        assert_eq!(
            jwt.verify_access(&b.access_token).await,
            Err(JwtError::Revoked)
        );
        assert!(jwt.refresh(&a.refresh_token).await.is_err());
        assert!(jwt.verify_access(&other.access_token).await.is_ok());
    }

    #[tokio::test]
    async fn memory_records_follow_the_logins_not_the_refreshes() {
        let store = Arc::new(MemoryRevocationStore::new(100_000));
        assert_eq!(store.shards.len(), MAX_SHARDS);
        let jwt = jwt_with(&Keyring::new(SecretKey::generate(), vec![]), store.clone());
        for user in 0..20 {
            let mut pair = jwt.issue(user).await.unwrap();
            for _ in 0..50 {
                pair = jwt.refresh(&pair.refresh_token).await.unwrap();
            }
        }
        // One family and one user record per login: 40, whatever the 1,000 refreshes.
        assert_eq!(store.len(), 40);
    }

    #[tokio::test]
    async fn deadlines_include_the_leeway() {
        let store = Arc::new(MemoryRevocationStore::default());
        let jwt = jwt_with(&Keyring::new(SecretKey::generate(), vec![]), store.clone());
        let pair = jwt.issue(1).await.unwrap();
        let claims = jwt.decode(&pair.refresh_token).unwrap();
        let shard = store.shard("1").read().unwrap();
        let family = &shard.families[&claims.fam];
        // The record outlives the refresh token's last verifiable second.
        assert!(family.until >= claims.exp + MAX_LEEWAY.as_secs() as i64);
        assert!(shard.users["1"].until >= family.until);
    }
}
