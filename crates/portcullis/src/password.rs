//! Password hashing, verification of legacy hashes, and the password policy.
//!
//! [`Passwords`] hashes with Argon2id (OWASP's first choice; the defaults are OWASP's
//! minimum, m = 19 MiB, t = 2, p = 1) into standard PHC strings, and verifies what a
//! Flask application may already have stored, so its users keep their passwords when it
//! moves to Portcullis:
//!
//! | stored hash | written by |
//! |---|---|
//! | `$argon2id$…`, `$argon2i$…`, `$argon2d$…` | this module, argon2-cffi, passlib |
//! | `scrypt:N:r:p$salt$hex` | werkzeug ≥ 2.3 `generate_password_hash` (its default) |
//! | `pbkdf2:sha256:iterations$salt$hex`, `pbkdf2:sha512:…` | werkzeug `generate_password_hash(method="pbkdf2…")` |
//! | `$2a$…`, `$2b$…`, `$2y$…` | bcrypt, Flask-Bcrypt |
//!
//! After a successful login, [`Passwords::needs_rehash`] says whether the stored hash is
//! weaker than what this module would write today; hash the password again and store
//! the new hash, so old hashes disappear as users log in.
//!
//! Hashing is slow on purpose, so it must not run on the async executor's threads:
//! [`Passwords::hash`] and [`Passwords::verify`] move the work to
//! [`tokio::task::spawn_blocking`] and let at most [`PasswordConfig::max_concurrent`]
//! computations run at once, so a burst of logins queues instead of taking every core
//! and all the memory. Argon2's working memory (19 MiB with the defaults) is kept
//! between computations, one buffer per concurrent computation, so the memory that
//! hashing takes is bounded by `max_concurrent × m` and does not grow with the number
//! of threads. [`Passwords::verify`] with no stored hash (an unknown username)
//! does the same work as a real verification, so timing does not reveal which usernames
//! exist.
//!
//! The wait for a turn is bounded too ([`PasswordConfig::permit_timeout`], 5 s by
//! default): past it a call fails with [`PasswordError::Busy`], which sign-ins answer
//! with 503, rather than queue without end. What a *stored* hash may demand is bounded
//! before any work is done — Argon2 memory, passes and their product, scrypt's N and
//! N × r × p, PBKDF2 iterations, bcrypt's cost, each a few times the default of the
//! software that writes such hashes ([`MAX_ARGON2_MEMORY_KIB`] and the other `MAX_`
//! constants) — so a hostile or corrupted hash in the database cannot make a login
//! allocate a gigabyte or run for minutes: it counts as malformed and is never
//! computed.
//!
//! Passwords are normalised to Unicode NFKC before hashing and verification
//! ([`normalize`]), so a password typed on another keyboard or operating system (a
//! precomposed `é` or `e` + combining accent, fullwidth letters) still matches. A
//! legacy hash (werkzeug, bcrypt) is checked against the normalised password and the
//! password as typed, always both, so that a password NFKC changes costs exactly what
//! any other costs.
//!
//! # Timing while legacy hashes remain
//!
//! A login costs one verification of the account's stored hash, and an unknown
//! username one Argon2id verification at the current parameters: for accounts with an
//! Argon2id hash the two take the same time, so timing does not tell which usernames
//! exist. An account that still has a legacy hash is different until its next
//! successful login replaces it ([`crate::auth::login`] does this on every path): its
//! verification costs two derivations of *that* hash's algorithm and parameters — for
//! werkzeug's defaults two scrypt computations (N = 2^15, 32 MiB each) or two PBKDF2
//! runs of 1,000,000 iterations, for bcrypt two at its cost — which can be several
//! times slower or faster than the Argon2id dummy. During that migration window an
//! attacker who can time responses precisely may tell such an account from an unknown
//! name (never its password, and never which kind of mistake was made). To close the
//! window sooner, expire the remaining legacy hashes (force a password reset) once most
//! users have signed in again; the per-username rate limit bounds how many timings one
//! name can be sampled for.
//!
//! [`PasswordPolicy`] decides which new passwords to accept: 8 to 128 characters, not
//! the username, not one of the 19,640 most common passwords (Django's list), and hard
//! enough to guess according to zxcvbn.
//!
//! ```
//! use portcullis::password::{PasswordConfig, PasswordPolicy, Passwords};
//!
//! let passwords = Passwords::new(PasswordConfig::default()).unwrap();
//!
//! // Registration: the policy returns the normalised password to hash.
//! let chosen = PasswordPolicy::default()
//!     .check("alice", "violet tugboat marmalade ninety")
//!     .unwrap();
//! let stored = passwords.hash_blocking(&chosen).unwrap();
//! assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
//!
//! // Login.
//! assert!(passwords.verify_blocking("violet tugboat marmalade ninety", &stored).unwrap());
//! assert!(!passwords.verify_blocking("violet tugboat", &stored).unwrap());
//! assert!(!passwords.needs_rehash(&stored));
//!
//! // A hash stored by a Flask application with werkzeug verifies too, and asks to be
//! // replaced by an Argon2id hash.
//! let werkzeug = "pbkdf2:sha256:1000$jVQSL8WokIR5QutD$\
//!     c9de3721856f71318afdc41075d60db1afbc89e2d5f37c2f642dfbed6220d559";
//! assert!(passwords.verify_blocking("correct horse battery staple", werkzeug).unwrap());
//! assert!(passwords.needs_rehash(werkzeug));
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{self, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

// What a stored hash may ask for. Its parameters come from the database, so a
// hostile or corrupted hash could otherwise make one login allocate any amount of
// memory or run for minutes, with a hashing permit held all along. Each limit is a few
// times the default of the software that writes such hashes: enough for every hash a
// real deployment holds, too little to take the machine.

/// The most memory a stored Argon2 hash may ask for: 128 MiB, in KiB (6.7 times the
/// default 19 MiB; argon2-cffi writes 64 MiB, and 100 MiB before its version 21.2).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 128 * 1024;
/// The most passes a stored Argon2 hash may ask for (4 times the default 2).
pub const MAX_ARGON2_ITERATIONS: u32 = 8;
/// The most work a stored Argon2 hash may ask for, as memory × passes (KiB): 8 times
/// the default's 19,456 × 2, so that a hash cannot take the most memory and the most
/// passes at once.
pub const MAX_ARGON2_WORK: u64 = 8 * 19_456 * 2;
/// The most lanes a stored Argon2 hash may ask for. Lanes split the memory rather than
/// add to it, so they do not change the work.
pub const MAX_ARGON2_PARALLELISM: u32 = 16;
/// The highest bcrypt cost accepted: 14, 4 times the work of the cost 12 that bcrypt
/// and Flask-Bcrypt use by default.
pub const MAX_BCRYPT_COST: u32 = 14;
/// The highest scrypt cost N accepted: 2^17, 4 times werkzeug's 2^15.
pub const MAX_SCRYPT_N: u64 = 1 << 17;
/// The most work a stored scrypt hash may ask for, as N × r × p: 4 times werkzeug's
/// N = 2^15, r = 8, p = 1 (which takes 32 MiB); at most 128 MiB of memory.
pub const MAX_SCRYPT_WORK: u64 = 4 * (1 << 15) * 8;
/// The most PBKDF2 iterations accepted: twice werkzeug's current default of 1,000,000
/// (PBKDF2 needs no memory, so each iteration is pure time).
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;
/// How long [`Passwords::hash`] and [`Passwords::verify`] wait for a turn by default
/// before answering [`PasswordError::Busy`].
pub const DEFAULT_PERMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

// werkzeug's scrypt output length: hashlib.scrypt's default dklen.
const WERKZEUG_SCRYPT_LEN: usize = 64;
// What werkzeug 3.1.9's `_hash_internal` (werkzeug/security.py) uses when a stored
// method says `pbkdf2` or `pbkdf2:HASH` without iterations: its current
// DEFAULT_PBKDF2_ITERATIONS, which is 1,000,000 since 3.1 (600,000 in 2.3, 260,000 in
// 2.0). generate_password_hash writes the iterations it used, so such hashes only come
// from hand-made strings; following werkzeug's own check keeps the two in agreement.
const WERKZEUG_DEFAULT_PBKDF2_ITERATIONS: u32 = 1_000_000;
// What the same function uses for a bare `scrypt` method: n = 2^15, r = 8, p = 1.
const WERKZEUG_DEFAULT_SCRYPT: (u64, u32, u32) = (1 << 15, 8, 1);
// 16 bytes, as the Argon2 and PHC specifications recommend.
const SALT_LEN: usize = 16;
// The password the unknown-username verification checks against; any value will do.
const DUMMY_PASSWORD: &str = "portcullis: no such user";

/// The parameters new hashes are made with, and how many may be computed at once.
///
/// The default is Argon2id with m = 19,456 KiB (19 MiB), t = 2, p = 1 (the minimum
/// OWASP recommends) and as many concurrent computations as the machine has CPUs.
///
/// ```
/// use portcullis::password::{PasswordConfig, Passwords};
///
/// // Stronger than the default: 64 MiB, 3 passes, at most 4 hashes at once.
/// let config = PasswordConfig::default()
///     .memory_kib(64 * 1024)
///     .iterations(3)
///     .max_concurrent(4);
/// assert!(Passwords::new(config).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordConfig {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    max_concurrent: usize,
    permit_timeout: std::time::Duration,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
            // Each computation keeps one core busy; more at once than there are cores
            // only adds memory and latency.
            max_concurrent: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            permit_timeout: DEFAULT_PERMIT_TIMEOUT,
        }
    }
}

impl PasswordConfig {
    /// Argon2 memory cost in KiB (`m`), at most [`MAX_ARGON2_MEMORY_KIB`].
    ///
    /// ```
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().memory_kib(47_104);
    /// # let _ = config;
    /// ```
    pub fn memory_kib(mut self, memory_kib: u32) -> Self {
        self.memory_kib = memory_kib;
        self
    }

    /// Argon2 passes over the memory (`t`), at most [`MAX_ARGON2_ITERATIONS`].
    ///
    /// ```
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().iterations(3);
    /// # let _ = config;
    /// ```
    pub fn iterations(mut self, iterations: u32) -> Self {
        self.iterations = iterations;
        self
    }

    /// Argon2 lanes (`p`), at most [`MAX_ARGON2_PARALLELISM`].
    ///
    /// This implementation computes the lanes one after the other, so more lanes cost
    /// time without adding strength; keep 1 unless the hashes are shared with a
    /// system that uses more.
    ///
    /// ```
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().parallelism(1);
    /// # let _ = config;
    /// ```
    pub fn parallelism(mut self, parallelism: u32) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// How many hashes or verifications [`Passwords::hash`] and [`Passwords::verify`]
    /// run at once (at least 1); the others wait for a turn. Each keeps its Argon2
    /// working memory once used (`memory_kib`), so this also bounds what hashing holds.
    ///
    /// ```
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().max_concurrent(2);
    /// # let _ = config;
    /// ```
    pub fn max_concurrent(mut self, max_concurrent: usize) -> Self {
        self.max_concurrent = max_concurrent;
        self
    }

    /// How long a call waits for a turn when `max_concurrent` computations already run
    /// (default 5 s, [`DEFAULT_PERMIT_TIMEOUT`]). Past it the call fails with
    /// [`PasswordError::Busy`], a 503 for the client, rather than queue without end
    /// behind a flood of logins. Waiting needs Tokio's timer (on under
    /// `#[tokio::main]`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use portcullis::password::PasswordConfig;
    ///
    /// let config = PasswordConfig::default().permit_timeout(Duration::from_secs(2));
    /// # let _ = config;
    /// ```
    pub fn permit_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.permit_timeout = timeout;
        self
    }
}

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
    /// The [`PasswordConfig`] is not usable.
    #[error("invalid password hashing configuration: {0}")]
    InvalidConfig(String),
    /// Every hashing slot stayed taken for the whole [`PasswordConfig::permit_timeout`]:
    /// the machine is saturated; try again later (a 503).
    #[error("every password hashing slot is busy; try again later")]
    Busy,
    /// Hashing failed (the random source, the worker task); says nothing about the
    /// password.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes and verifies passwords; cheap to clone (the state is shared).
///
/// ```
/// use portcullis::password::{PasswordConfig, Passwords};
///
/// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
/// let stored = passwords.hash_blocking("correct horse battery staple").unwrap();
/// assert!(passwords.verify_blocking("correct horse battery staple", &stored).unwrap());
/// assert!(format!("{passwords:?}").contains("argon2id"));
/// ```
#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

struct Inner {
    config: PasswordConfig,
    params: Params,
    // An Arc so a permit can move into the blocking task and be released there, when
    // the computation ends, even if the caller stopped waiting for it.
    permits: Arc<Semaphore>,
    // A hash of DUMMY_PASSWORD with the current parameters, made on first need.
    dummy: OnceLock<String>,
    memory: WorkingMemory,
}

/// Argon2's working memory (19 MiB with the defaults), kept between computations.
///
/// `Argon2::hash_password` allocates it afresh for every computation, on whichever
/// blocking thread runs it. The allocator then serves the next one from that thread's
/// arena and keeps the freed block resident there, so a server whose logins land on
/// many blocking threads ends up holding one such block per arena: hundreds of MiB
/// for a few MiB of live data. Keeping at most `max_concurrent` buffers here, and
/// handing one to each computation, bounds the memory hashing ever takes to
/// `max_concurrent × m` and stops it from growing with the number of threads.
struct WorkingMemory {
    // Each buffer holds exactly `blocks` blocks: the current parameters' need.
    idle: Mutex<Vec<Vec<Block>>>,
    blocks: usize,
    keep: usize,
}

impl WorkingMemory {
    /// Runs `compute` with at least `needed` blocks: a kept buffer when one is idle and
    /// large enough, else a new one, kept afterwards if the pool has room. A stored hash
    /// asking for more than the current parameters gets a buffer of its own, freed
    /// after use, so one rare strong hash does not pin its size for good.
    fn with<T>(&self, needed: usize, compute: impl FnOnce(&mut [Block]) -> T) -> T {
        if needed > self.blocks {
            let mut own = vec![Block::default(); needed];
            return compute(&mut own);
        }
        // A poisoned lock only means another computation panicked; the buffers are
        // plain memory, overwritten by the next computation, so they stay usable.
        let taken = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut buffer = taken.unwrap_or_else(|| vec![Block::default(); self.blocks]);
        let result = compute(&mut buffer[..needed]);
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.keep {
            idle.push(buffer);
        }
        result
    }
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        f.debug_struct("Passwords")
            .field("algorithm", &"argon2id")
            .field("memory_kib", &config.memory_kib)
            .field("iterations", &config.iterations)
            .field("parallelism", &config.parallelism)
            .field("max_concurrent", &config.max_concurrent)
            .finish()
    }
}

impl Passwords {
    /// Checks `config` and prepares to hash with it.
    ///
    /// Parameters that Argon2 refuses, or that this module would refuse in a stored
    /// hash (see [`MAX_ARGON2_MEMORY_KIB`] and the other limits), are an error, as is a
    /// `max_concurrent` of 0.
    ///
    /// ```
    /// use portcullis::password::{PasswordConfig, PasswordError, Passwords};
    ///
    /// let bad = PasswordConfig::default().iterations(0);
    /// assert!(matches!(Passwords::new(bad), Err(PasswordError::InvalidConfig(_))));
    /// ```
    pub fn new(config: PasswordConfig) -> Result<Self, PasswordError> {
        let invalid = |why: &str| Err(PasswordError::InvalidConfig(why.to_owned()));
        if config.memory_kib > MAX_ARGON2_MEMORY_KIB {
            return invalid("memory_kib is above 128 MiB");
        }
        if config.iterations > MAX_ARGON2_ITERATIONS {
            return invalid("iterations is above 8");
        }
        if u64::from(config.memory_kib) * u64::from(config.iterations) > MAX_ARGON2_WORK {
            return invalid("memory_kib × iterations is above MAX_ARGON2_WORK");
        }
        if config.parallelism > MAX_ARGON2_PARALLELISM {
            return invalid("parallelism is above 16");
        }
        if config.max_concurrent == 0 || config.max_concurrent > Semaphore::MAX_PERMITS {
            return invalid("max_concurrent must be at least 1 and at most Semaphore::MAX_PERMITS");
        }
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| PasswordError::InvalidConfig(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                permits: Arc::new(Semaphore::new(config.max_concurrent)),
                dummy: OnceLock::new(),
                memory: WorkingMemory {
                    idle: Mutex::new(Vec::new()),
                    blocks: params.block_count(),
                    keep: config.max_concurrent,
                },
                params,
            }),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            self.inner.params.clone(),
        )
    }

    /// Hashes the NFKC-normalised `password` with Argon2id and a fresh 16-byte salt
    /// from the operating system, on the calling thread.
    ///
    /// Returns a PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$salt$hash`. Takes
    /// tens of milliseconds with the defaults: in async code use [`Passwords::hash`].
    ///
    /// ```
    /// use portcullis::password::{PasswordConfig, Passwords};
    ///
    /// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
    /// let a = passwords.hash_blocking("same password").unwrap();
    /// let b = passwords.hash_blocking("same password").unwrap();
    /// assert_ne!(a, b, "every hash has its own salt");
    /// ```
    pub fn hash_blocking(&self, password: &str) -> Result<String, PasswordError> {
        let password = Zeroizing::new(normalize(password));
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|_| {
            PasswordError::Hashing("the operating system's random source failed".to_owned())
        })?;
        let failed = |e: password_hash::Error| PasswordError::Hashing(e.to_string());
        let salt_string = SaltString::encode_b64(&salt).map_err(failed)?;
        let argon2 = self.argon2();
        let output = self
            .inner
            .memory
            .with(argon2.params().block_count(), |blocks| {
                password_hash::Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
                    Ok(argon2.hash_password_into_with_memory(
                        password.as_bytes(),
                        &salt,
                        out,
                        blocks,
                    )?)
                })
            });
        // The PHC string `Argon2::hash_password` would write, from the same parts.
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon2.params()).map_err(failed)?,
            salt: Some(salt_string.as_salt()),
            hash: Some(output.map_err(failed)?),
        };
        Ok(hash.to_string())
    }

    /// Checks `password` against a stored hash of any supported format, on the calling
    /// thread.
    ///
    /// `Ok(false)` means the password is wrong; [`PasswordError::Malformed`] means the
    /// stored hash is not one this module recognises, or asks for more work than the
    /// limits allow. Every comparison takes constant time.
    ///
    /// The password is normalised to NFKC first. For werkzeug and bcrypt hashes the
    /// password as given is tried too: Flask applications hashed the raw input, so a
    /// user who typed a decomposed accent or fullwidth letters at registration could
    /// otherwise never log in again. Both derivations always run, for every password,
    /// so that a password NFKC changes costs exactly what one it leaves alone costs.
    /// Argon2 hashes are only checked normalised (this module normalises before
    /// hashing): one derivation.
    ///
    /// ```
    /// use portcullis::password::{PasswordConfig, Passwords};
    ///
    /// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
    /// // werkzeug.security.generate_password_hash("pässwörd", method="pbkdf2:sha512:1000")
    /// let stored = "pbkdf2:sha512:1000$CgeHz1I0XiZNxKgO$\
    ///     9090ccbc22fdd6fd46bac7542d9dcdc2174e6598cb874f460f5ba0fe35d589d1\
    ///     99ca454467fc8dcdf6648eaa6466652dbffc1aed56cca416e5cd8642010852c1";
    /// assert_eq!(passwords.verify_blocking("pässwörd", stored), Ok(true));
    /// // The same word typed with combining accents is the same password.
    /// assert_eq!(passwords.verify_blocking("pa\u{308}sswo\u{308}rd", stored), Ok(true));
    /// assert_eq!(passwords.verify_blocking("passwort", stored), Ok(false));
    /// assert!(passwords.verify_blocking("passwort", "pbkdf2:md5:1000$salt$00").is_err());
    /// ```
    pub fn verify_blocking(&self, password: &str, stored: &str) -> Result<bool, PasswordError> {
        let stored = Stored::parse(stored).inspect_err(|_| {
            // Never the hash itself: it is as sensitive as the password it protects.
            tracing::warn!("a stored password hash is malformed, unsupported or too costly");
        })?;
        let normalized = Zeroizing::new(normalize(password));
        let memory = &self.inner.memory;
        let as_normalized = stored.matches(normalized.as_bytes(), memory)?;
        if !stored.is_legacy() {
            return Ok(as_normalized);
        }
        // Always the second derivation, whether or not NFKC changed the password and
        // whether or not the first matched: a legacy verification costs the same for
        // every password, so its time tells nothing about what was typed.
        let as_typed = stored.matches(password.as_bytes(), memory)?;
        Ok(as_normalized || as_typed)
    }

    /// Whether `stored` should be replaced by a new hash after the next successful
    /// login: true for everything but an Argon2id hash of version 19 whose m, t and p
    /// are each at least the current ones — so for werkzeug, bcrypt, Argon2i and
    /// Argon2d hashes, weaker Argon2id hashes and anything malformed.
    ///
    /// ```
    /// use portcullis::password::{PasswordConfig, Passwords};
    ///
    /// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
    /// let current = passwords.hash_blocking("pw").unwrap();
    /// assert!(!passwords.needs_rehash(&current));
    ///
    /// let stronger = Passwords::new(PasswordConfig::default().iterations(3)).unwrap();
    /// assert!(stronger.needs_rehash(&current));
    /// ```
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(Stored::Argon2(hash)) = Stored::parse(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return true;
        };
        let current = &self.inner.params;
        hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(Version::V0x13.into())
            || params.m_cost() < current.m_cost()
            || params.t_cost() < current.t_cost()
            || params.p_cost() < current.p_cost()
    }

    /// [`Passwords::hash_blocking`] on a blocking thread, at most
    /// [`PasswordConfig::max_concurrent`] at once.
    ///
    /// ```
    /// use portcullis::password::{PasswordConfig, Passwords};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
    /// let stored = passwords.hash("a long passphrase".to_owned()).await.unwrap();
    /// assert!(passwords.verify("a long passphrase".to_owned(), Some(stored)).await.unwrap());
    /// # });
    /// ```
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let password = Zeroizing::new(password);
        let this = self.clone();
        self.run(move || this.hash_blocking(&password)).await
    }

    /// [`Passwords::verify_blocking`] on a blocking thread, at most
    /// [`PasswordConfig::max_concurrent`] at once.
    ///
    /// Pass `None` when the username is unknown: an Argon2id verification with the
    /// current parameters runs anyway (against a hash made once, on first need) and the
    /// answer is `Ok(false)`, so the response takes as long as for a known user with a
    /// wrong password and does not reveal which usernames exist.
    ///
    /// ```
    /// use portcullis::password::{PasswordConfig, Passwords};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
    /// // The user does not exist: as slow as a real check, and false.
    /// assert!(!passwords.verify("guess".to_owned(), None).await.unwrap());
    /// # });
    /// ```
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let password = Zeroizing::new(password);
        let this = self.clone();
        self.run(move || match stored {
            Some(stored) => this.verify_blocking(&password, &stored),
            None => {
                let dummy = this.dummy_hash()?;
                // The result is discarded: only the time it takes matters.
                let _ = this.verify_blocking(&password, dummy);
                Ok(false)
            }
        })
        .await
    }

    /// Takes every hashing slot until the permit is dropped: a saturated hasher.
    #[cfg(test)]
    pub(crate) async fn take_every_slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        let slots = u32::try_from(self.inner.config.max_concurrent).unwrap_or(u32::MAX);
        Arc::clone(&self.inner.permits)
            .acquire_many_owned(slots)
            .await
            .expect("the semaphore is never closed")
    }

    fn dummy_hash(&self) -> Result<&str, PasswordError> {
        if let Some(hash) = self.inner.dummy.get() {
            return Ok(hash);
        }
        // Two threads may both compute it the first time; one result is kept.
        let hash = self.hash_blocking(DUMMY_PASSWORD)?;
        Ok(self.inner.dummy.get_or_init(|| hash))
    }

    async fn run<T, F>(&self, job: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
    {
        let permits = Arc::clone(&self.inner.permits);
        // A free slot is taken without a timer; only a wait is bounded.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tokio::time::timeout(self.inner.config.permit_timeout, permits.acquire_owned())
                    .await
                    .map_err(|_| {
                        tracing::warn!(
                            target: "portcullis::security",
                            event = "password_hashing_busy",
                            "every password hashing slot stayed busy; the request is refused (503)"
                        );
                        PasswordError::Busy
                    })?
                    .map_err(|_| {
                        PasswordError::Hashing("the password worker pool is closed".to_owned())
                    })?
            }
        };
        tokio::task::spawn_blocking(move || {
            // Held until the computation ends, not until the caller stops waiting: a
            // cancelled request must not free a slot while its hash still runs.
            let _permit = permit;
            job()
        })
        .await
        .map_err(|_| PasswordError::Hashing("the password worker task failed".to_owned()))?
    }
}

#[cfg(test)]
thread_local! {
    /// Key derivations run on this thread: what a test counts instead of timing them.
    static DERIVATIONS_ON_THIS_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A stored hash, parsed and checked against the limits before any work is done.
enum Stored<'a> {
    Argon2(PasswordHash<'a>),
    Bcrypt(&'a str),
    Scrypt {
        params: scrypt::Params,
        salt: &'a [u8],
        expected: Vec<u8>,
    },
    Pbkdf2 {
        sha512: bool,
        iterations: u32,
        salt: &'a [u8],
        expected: Vec<u8>,
    },
}

impl<'a> Stored<'a> {
    fn parse(stored: &'a str) -> Result<Self, PasswordError> {
        if stored.starts_with("$argon2") {
            parse_argon2(stored).map(Stored::Argon2)
        } else if stored.starts_with("$2") {
            parse_bcrypt(stored).map(Stored::Bcrypt)
        } else if stored.starts_with("scrypt") || stored.starts_with("pbkdf2") {
            parse_werkzeug(stored)
        } else {
            Err(PasswordError::Malformed)
        }
    }

    // Hashes written by Flask applications, which hashed the password as typed.
    fn is_legacy(&self) -> bool {
        !matches!(self, Stored::Argon2(_))
    }

    fn matches(&self, password: &[u8], memory: &WorkingMemory) -> Result<bool, PasswordError> {
        #[cfg(test)]
        DERIVATIONS_ON_THIS_THREAD.with(|count| count.set(count.get() + 1));
        match self {
            Stored::Argon2(hash) => verify_argon2(hash, password, memory),
            // bcrypt::verify compares in constant time, and like every bcrypt only
            // reads the first 72 bytes of the password.
            Stored::Bcrypt(hash) => {
                bcrypt::verify(password, hash).map_err(|_| PasswordError::Malformed)
            }
            Stored::Scrypt {
                params,
                salt,
                expected,
            } => {
                let mut derived = Zeroizing::new([0u8; WERKZEUG_SCRYPT_LEN]);
                scrypt::scrypt(password, salt, params, &mut derived[..])
                    .map_err(|_| PasswordError::Malformed)?;
                Ok(derived[..].ct_eq(expected).into())
            }
            Stored::Pbkdf2 {
                sha512,
                iterations,
                salt,
                expected,
            } => {
                let mut derived = Zeroizing::new([0u8; 64]);
                let derived = &mut derived[..expected.len()];
                if *sha512 {
                    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, derived);
                } else {
                    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, *iterations, derived);
                }
                Ok(derived.ct_eq(expected).into())
            }
        }
    }
}

/// What `PasswordVerifier::verify_password` does for Argon2, with working memory from
/// the pool instead of a fresh allocation (see [`WorkingMemory`]): the algorithm,
/// version and parameters come from the stored hash, and the outputs are compared by
/// `password_hash::Output`'s constant-time equality.
fn verify_argon2(
    hash: &PasswordHash<'_>,
    password: &[u8],
    memory: &WorkingMemory,
) -> Result<bool, PasswordError> {
    fn malformed<E>(_: E) -> PasswordError {
        PasswordError::Malformed
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(PasswordError::Malformed);
    };
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(malformed)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(malformed)?
        .unwrap_or_default();
    // Carries the output length of the stored hash.
    let params = Params::try_from(hash).map_err(malformed)?;
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(malformed)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = memory.with(argon2.params().block_count(), |blocks| {
        password_hash::Output::init_with(expected.len(), |out| {
            Ok(argon2.hash_password_into_with_memory(password, salt, out, blocks)?)
        })
    });
    Ok(computed.map_err(malformed)? == expected)
}

fn parse_argon2(stored: &str) -> Result<PasswordHash<'_>, PasswordError> {
    let hash = PasswordHash::new(stored).map_err(|_| PasswordError::Malformed)?;
    Algorithm::try_from(hash.algorithm).map_err(|_| PasswordError::Malformed)?;
    if let Some(version) = hash.version {
        Version::try_from(version).map_err(|_| PasswordError::Malformed)?;
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(PasswordError::Malformed);
    }
    let params = Params::try_from(&hash).map_err(|_| PasswordError::Malformed)?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB
        || params.t_cost() > MAX_ARGON2_ITERATIONS
        || u64::from(params.m_cost()) * u64::from(params.t_cost()) > MAX_ARGON2_WORK
        || params.p_cost() > MAX_ARGON2_PARALLELISM
    {
        return Err(PasswordError::Malformed);
    }
    Ok(hash)
}

// `$2b$10$` + 22 characters of salt + 31 of hash, in bcrypt's base64 alphabet.
fn parse_bcrypt(stored: &str) -> Result<&str, PasswordError> {
    let bytes = stored.as_bytes();
    let well_formed = bytes.len() == 60
        && matches!(&bytes[..4], b"$2a$" | b"$2b$" | b"$2y$")
        && bytes[4..6].iter().all(u8::is_ascii_digit)
        && bytes[6] == b'$'
        && bytes[7..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if !well_formed {
        return Err(PasswordError::Malformed);
    }
    let cost = u32::from(bytes[4] - b'0') * 10 + u32::from(bytes[5] - b'0');
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(PasswordError::Malformed);
    }
    Ok(stored)
}

// `method$salt$hex`, as werkzeug.security.check_password_hash splits it.
fn parse_werkzeug(stored: &str) -> Result<Stored<'_>, PasswordError> {
    let mut parts = stored.splitn(3, '$');
    let (Some(method), Some(salt), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(PasswordError::Malformed);
    };
    // werkzeug never writes an empty salt; an unsalted hash is not accepted.
    if salt.is_empty() {
        return Err(PasswordError::Malformed);
    }
    // werkzeug hashes the salt's text as it is, without decoding it.
    let salt = salt.as_bytes();
    let args: Vec<&str> = method.split(':').collect();
    match args.as_slice() {
        ["scrypt", rest @ ..] => {
            let (n, r, p) = match rest {
                [] => WERKZEUG_DEFAULT_SCRYPT,
                [n, r, p] => (number(n)?, number(r)?, number(p)?),
                _ => return Err(PasswordError::Malformed),
            };
            let params = scrypt_params(n, r, p)?;
            let expected = decode_hex(hex, WERKZEUG_SCRYPT_LEN)?;
            Ok(Stored::Scrypt {
                params,
                salt,
                expected,
            })
        }
        ["pbkdf2", rest @ ..] => {
            let (digest, iterations) = match rest {
                [] => ("sha256", WERKZEUG_DEFAULT_PBKDF2_ITERATIONS),
                [digest] => (*digest, WERKZEUG_DEFAULT_PBKDF2_ITERATIONS),
                [digest, iterations] => (*digest, number(iterations)?),
                _ => return Err(PasswordError::Malformed),
            };
            let (sha512, len) = match digest {
                "sha256" => (false, 32),
                "sha512" => (true, 64),
                _ => return Err(PasswordError::Malformed),
            };
            if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
                return Err(PasswordError::Malformed);
            }
            let expected = decode_hex(hex, len)?;
            Ok(Stored::Pbkdf2 {
                sha512,
                iterations,
                salt,
                expected,
            })
        }
        _ => Err(PasswordError::Malformed),
    }
}

// werkzeug writes N itself (a power of two); the scrypt crate takes log2(N).
fn scrypt_params(n: u64, r: u32, p: u32) -> Result<scrypt::Params, PasswordError> {
    let work = n
        .checked_mul(u64::from(r))
        .and_then(|nr| nr.checked_mul(u64::from(p)));
    let acceptable = n >= 2
        && n.is_power_of_two()
        && n <= MAX_SCRYPT_N
        && r >= 1
        && p >= 1
        && work.is_some_and(|work| work <= MAX_SCRYPT_WORK);
    if !acceptable {
        return Err(PasswordError::Malformed);
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| PasswordError::Malformed)?;
    // Also refuses what scrypt itself forbids, such as N ≥ 2^(16 r).
    scrypt::Params::new(log_n, r, p, WERKZEUG_SCRYPT_LEN).map_err(|_| PasswordError::Malformed)
}

// A decimal number of digits only (no sign, no spaces).
fn number<T: std::str::FromStr>(text: &str) -> Result<T, PasswordError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PasswordError::Malformed);
    }
    text.parse().map_err(|_| PasswordError::Malformed)
}

fn decode_hex(hex: &str, len: usize) -> Result<Vec<u8>, PasswordError> {
    let hex = hex.as_bytes();
    if hex.len() != len * 2 {
        return Err(PasswordError::Malformed);
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(PasswordError::Malformed),
    };
    hex.chunks_exact(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The password in Unicode normalisation form NFKC, as it is hashed and checked.
///
/// NFKC makes the different ways of typing the same text equal: a precomposed `é` and
/// `e` followed by a combining accent, fullwidth and ordinary letters, ligatures and
/// their letters. It is what NIST SP 800-63B recommends for passwords.
///
/// ```
/// use portcullis::password::normalize;
///
/// assert_eq!(normalize("ｐａｓｓｗｏｒｄ"), "password");
/// assert_eq!(normalize("e\u{301}t\u{e9}"), "\u{e9}t\u{e9}");
/// ```
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

// zxcvbn's matching tries dictionary words, keyboard patterns and dates at every
// position and for every length, so its cost grows faster than the length; the first
// 64 characters decide whether a password is guessable (its own limit is 100).
const ZXCVBN_MAX_CHARS: usize = 64;

/// Which new passwords to accept.
///
/// The default follows NIST SP 800-63B and OWASP: 8 to 128 characters (counted after
/// NFKC normalisation), not the username, not in Django's list of the 19,640 most common
/// passwords, and a zxcvbn score of at least 3 of 4 ("safely unguessable"). No rules
/// about character classes: they make passwords harder to remember, not to guess.
///
/// ```
/// use portcullis::password::{PasswordPolicy, PolicyViolation};
///
/// let policy = PasswordPolicy::default();
/// assert_eq!(policy.check("bob", "password123"), Err(PolicyViolation::Common));
/// let to_hash = policy.check("bob", "violet tugboat marmalade ninety").unwrap();
/// assert_eq!(to_hash, "violet tugboat marmalade ninety");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_len: usize,
    max_len: usize,
    min_score: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_len: 8,
            // Long enough for any passphrase, short enough to bound the work.
            max_len: 128,
            min_score: 3,
        }
    }
}

/// Why a new password was refused; the `Display` text is written for the user.
///
/// ```
/// use portcullis::password::PolicyViolation;
///
/// assert_eq!(
///     PolicyViolation::TooShort { min: 8 }.to_string(),
///     "Use at least 8 characters."
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// Fewer characters than the minimum.
    #[error("Use at least {min} characters.")]
    TooShort {
        /// The minimum number of characters.
        min: usize,
    },
    /// More characters than the maximum.
    #[error("Use at most {max} characters.")]
    TooLong {
        /// The maximum number of characters.
        max: usize,
    },
    /// The password is the username, ignoring case.
    #[error("The password must not be your username.")]
    SameAsUsername,
    /// The password is in the list of common passwords, ignoring case.
    #[error("This password is one of the most common ones; choose another.")]
    Common,
    /// zxcvbn estimates the password is too easy to guess.
    #[error("This password is too easy to guess.{}", with_space(.suggestion))]
    TooWeak {
        /// zxcvbn's warning and suggestions, when it has any.
        suggestion: Option<String>,
    },
}

fn with_space(suggestion: &Option<String>) -> String {
    suggestion
        .as_deref()
        .map(|text| format!(" {text}"))
        .unwrap_or_default()
}

impl PasswordPolicy {
    /// The fewest characters accepted (default 8).
    ///
    /// ```
    /// use portcullis::password::{PasswordPolicy, PolicyViolation};
    ///
    /// let policy = PasswordPolicy::default().min_len(12);
    /// assert_eq!(
    ///     policy.check("bob", "plum-tart-9"),
    ///     Err(PolicyViolation::TooShort { min: 12 })
    /// );
    /// ```
    pub fn min_len(mut self, min_len: usize) -> Self {
        self.min_len = min_len;
        self
    }

    /// The most characters accepted (default 128).
    ///
    /// ```
    /// use portcullis::password::{PasswordPolicy, PolicyViolation};
    ///
    /// let policy = PasswordPolicy::default().max_len(20);
    /// assert_eq!(
    ///     policy.check("bob", "violet tugboat marmalade ninety"),
    ///     Err(PolicyViolation::TooLong { max: 20 })
    /// );
    /// ```
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The lowest zxcvbn score accepted, 0 to 4 (default 3); above 4 counts as 4.
    ///
    /// ```
    /// use portcullis::password::PasswordPolicy;
    ///
    /// let lenient = PasswordPolicy::default().min_score(0);
    /// assert!(lenient.check("bob", "abcdefgh12345").is_ok());
    /// ```
    pub fn min_score(mut self, min_score: u8) -> Self {
        self.min_score = min_score.min(4);
        self
    }

    /// Checks a new password for `username` and returns it NFKC-normalised, ready for
    /// [`Passwords::hash`].
    ///
    /// The checks run in this order and the first failure is returned: length, equal to
    /// the username (ignoring case), in the common-password list (ignoring case), then
    /// zxcvbn, which is also given the username so that passwords built on it score low.
    ///
    /// ```
    /// use portcullis::password::{PasswordPolicy, PolicyViolation};
    ///
    /// let policy = PasswordPolicy::default();
    /// assert_eq!(
    ///     policy.check("Alice.Liddell", "alice.liddell"),
    ///     Err(PolicyViolation::SameAsUsername)
    /// );
    /// ```
    pub fn check(&self, username: &str, password: &str) -> Result<String, PolicyViolation> {
        // NFKC can make one character many (U+FDFA becomes 18): bound the input before
        // normalising, so the work and memory stay proportional to the limit, not to
        // whatever the request carried. Four bytes is the longest UTF-8 character.
        if password.len() > self.max_len.saturating_mul(4) {
            return Err(PolicyViolation::TooLong { max: self.max_len });
        }
        let normalized = normalize(password);
        let len = normalized.chars().count();
        if len < self.min_len {
            return Err(PolicyViolation::TooShort { min: self.min_len });
        }
        if len > self.max_len {
            return Err(PolicyViolation::TooLong { max: self.max_len });
        }
        let username = normalize(username);
        let lowered = normalized.to_lowercase();
        if !username.is_empty() && lowered == username.to_lowercase() {
            return Err(PolicyViolation::SameAsUsername);
        }
        if common_passwords().contains(lowered.as_str()) {
            return Err(PolicyViolation::Common);
        }
        let head: String = normalized.chars().take(ZXCVBN_MAX_CHARS).collect();
        let user_inputs: &[&str] = if username.is_empty() {
            &[]
        } else {
            &[username.as_str()]
        };
        let entropy = zxcvbn::zxcvbn(&head, user_inputs);
        if u8::from(entropy.score()) < self.min_score {
            return Err(PolicyViolation::TooWeak {
                suggestion: entropy.feedback().and_then(feedback_text),
            });
        }
        Ok(normalized)
    }
}

// zxcvbn's warning, then its suggestions, as one text.
fn feedback_text(feedback: &zxcvbn::feedback::Feedback) -> Option<String> {
    let parts: Vec<String> = feedback
        .warning()
        .map(|warning| warning.to_string())
        .into_iter()
        .chain(feedback.suggestions().iter().map(ToString::to_string))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

// Django's list (see data/README.md), loaded into a set on first use.
fn common_passwords() -> &'static HashSet<&'static str> {
    static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();
    COMMON.get_or_init(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .filter(|line| !line.is_empty())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    // Small parameters keep the tests fast; one test uses the defaults.
    fn fast() -> Passwords {
        Passwords::new(
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .parallelism(1),
        )
        .unwrap()
    }

    #[test]
    fn default_parameters_round_trip_and_need_no_rehash() {
        let passwords = Passwords::new(PasswordConfig::default()).unwrap();
        let stored = passwords
            .hash_blocking("correct horse battery staple")
            .unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert_eq!(
            passwords.verify_blocking("correct horse battery staple", &stored),
            Ok(true)
        );
        assert_eq!(
            passwords.verify_blocking("correct horse", &stored),
            Ok(false)
        );
        assert!(!passwords.needs_rehash(&stored));
        // A hash made with the defaults is at least as strong as weaker settings ask.
        assert!(!fast().needs_rehash(&stored));
    }

    #[test]
    fn round_trip_with_small_parameters() {
        let passwords = fast();
        for password in ["pässwörd", "密码密码密码", "🦀 crab-key 🔑", ""] {
            let stored = passwords.hash_blocking(password).unwrap();
            assert!(stored.starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
            assert_eq!(passwords.verify_blocking(password, &stored), Ok(true));
            let wrong = format!("{password}x");
            assert_eq!(passwords.verify_blocking(&wrong, &stored), Ok(false));
        }
    }

    #[test]
    fn weaker_or_older_hashes_need_rehash() {
        let defaults = Passwords::new(PasswordConfig::default()).unwrap();
        let weak = fast().hash_blocking("pw").unwrap();
        assert!(defaults.needs_rehash(&weak));
        for config in [
            PasswordConfig::default().memory_kib(512),
            PasswordConfig::default().memory_kib(256).iterations(2),
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .parallelism(2),
        ] {
            assert!(Passwords::new(config).unwrap().needs_rehash(&weak));
        }
        let argon2i = weak.replacen("$argon2id$", "$argon2i$", 1);
        let argon2d = weak.replacen("$argon2id$", "$argon2d$", 1);
        let v16 = weak.replacen("$v=19$", "$v=16$", 1);
        for old in [argon2i, argon2d, v16] {
            assert!(fast().needs_rehash(&old), "{old}");
        }
        assert!(fast().needs_rehash("not a hash"));
        assert!(fast().needs_rehash(""));
    }

    #[test]
    fn argon2i_and_argon2d_hashes_verify() {
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let params = Params::new(256, 1, 1, None).unwrap();
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            let stored = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"legacy", &salt)
                .unwrap()
                .to_string();
            assert_eq!(fast().verify_blocking("legacy", &stored), Ok(true));
            assert_eq!(fast().verify_blocking("legacyx", &stored), Ok(false));
        }
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier() {
        let passwords = fast();
        let stored = passwords.hash_blocking("pooled memory").unwrap();
        let parsed = PasswordHash::new(&stored).unwrap();
        // The crate's own verifier accepts the hash assembled here…
        assert!(Argon2::default()
            .verify_password(b"pooled memory", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"pooled", &parsed)
            .is_err());
        // …and writes the very same string for the same salt.
        let salt = parsed.salt.unwrap();
        let theirs = passwords
            .argon2()
            .hash_password(b"pooled memory", salt)
            .unwrap();
        assert_eq!(theirs.to_string(), stored);
    }

    #[test]
    fn hashes_with_other_costs_and_lengths_verify_with_pooled_memory() {
        let passwords = fast(); // m = 256 KiB in its pool
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        // Less memory than the pool's buffers, more (a buffer of its own), two lanes,
        // and outputs of 16 and 64 bytes (argon2-cffi and passlib allow any length).
        for (m, t, p, len) in [
            (64, 1, 1, 32),
            (1024, 1, 1, 32),
            (512, 2, 2, 16),
            (256, 1, 1, 64),
        ] {
            let params = Params::new(m, t, p, Some(len)).unwrap();
            let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"costly", &salt)
                .unwrap()
                .to_string();
            assert_eq!(
                passwords.verify_blocking("costly", &stored),
                Ok(true),
                "{stored}"
            );
            assert_eq!(
                passwords.verify_blocking("costlz", &stored),
                Ok(false),
                "{stored}"
            );
        }
        // A hash whose output was cut short, or lengthened, no longer verifies.
        let stored = passwords.hash_blocking("costly").unwrap();
        let (head, output) = stored.rsplit_once('$').unwrap();
        let shorter = format!("{head}${}", &output[..output.len() - 4]);
        assert_ne!(passwords.verify_blocking("costly", &shorter), Ok(true));
        let longer = format!("{head}${output}AAAA");
        assert_ne!(passwords.verify_blocking("costly", &longer), Ok(true));
    }

    #[test]
    fn working_memory_stays_bounded_whatever_the_threads() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .max_concurrent(2),
        )
        .unwrap();
        let stored = passwords.hash_blocking("bounded").unwrap();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..4 {
                        assert_eq!(passwords.verify_blocking("bounded", &stored), Ok(true));
                    }
                });
            }
        });
        let memory = &passwords.inner.memory;
        let idle = memory.idle.lock().unwrap();
        assert!(
            !idle.is_empty() && idle.len() <= 2,
            "{} buffers kept",
            idle.len()
        );
        assert!(idle.iter().all(|buffer| buffer.len() == memory.blocks));
    }

    #[test]
    fn salts_differ() {
        let passwords = fast();
        let a = passwords.hash_blocking("same").unwrap();
        let b = passwords.hash_blocking("same").unwrap();
        assert_ne!(a, b);
        let salt = |hash: &str| hash.split('$').nth(4).unwrap().to_owned();
        assert_ne!(salt(&a), salt(&b));
    }

    #[test]
    fn invalid_configurations_are_refused() {
        for config in [
            PasswordConfig::default().iterations(0),
            PasswordConfig::default().parallelism(0),
            PasswordConfig::default().memory_kib(1),
            PasswordConfig::default().memory_kib(MAX_ARGON2_MEMORY_KIB + 1),
            PasswordConfig::default().iterations(101),
            PasswordConfig::default().iterations(MAX_ARGON2_ITERATIONS + 1),
            // Each within its own limit, too much work together.
            PasswordConfig::default()
                .memory_kib(MAX_ARGON2_MEMORY_KIB)
                .iterations(3),
            PasswordConfig::default().parallelism(17),
            PasswordConfig::default().max_concurrent(0),
        ] {
            assert!(
                matches!(Passwords::new(config), Err(PasswordError::InvalidConfig(_))),
                "{config:?}"
            );
        }
        assert!(PasswordConfig::default().max_concurrent >= 1);
    }

    #[test]
    fn errors_and_debug_never_show_the_password() {
        let passwords = fast();
        let stored = passwords.hash_blocking("sup3r-s3cret").unwrap();
        let debug = format!("{passwords:?}");
        assert!(!debug.contains("sup3r"));
        let error = passwords
            .verify_blocking("sup3r-s3cret", "md5$x$sup3r-s3cret")
            .unwrap_err();
        assert!(!error.to_string().contains("sup3r"));
        assert_eq!(passwords.verify_blocking("sup3r-s3cret", &stored), Ok(true));
    }

    #[test]
    fn nfkc_makes_fullwidth_letters_ascii() {
        assert_eq!(normalize("ｐａｓｓｗｏｒｄ１２３"), "password123");
        // So the common-password list catches it too.
        assert_eq!(
            PasswordPolicy::default().check("bob", "ｐａｓｓｗｏｒｄ１２３"),
            Err(PolicyViolation::Common)
        );
        // And a hash of the fullwidth form verifies with the ASCII form.
        let passwords = fast();
        let stored = passwords.hash_blocking("ｆｕｌｌｗｉｄｔｈ").unwrap();
        assert_eq!(passwords.verify_blocking("fullwidth", &stored), Ok(true));
    }

    fn derivations() -> usize {
        DERIVATIONS_ON_THIS_THREAD.with(std::cell::Cell::get)
    }

    #[test]
    fn hashes_demanding_more_than_the_limits_are_never_computed() {
        let passwords = fast();
        let argon2 = passwords.hash_blocking("pw").unwrap();
        let tail = argon2.splitn(5, '$').nth(4).unwrap();
        let argon2_with = |params: &str| format!("$argon2id$v=19${params}${tail}");
        let scrypt_hex = "0".repeat(128);
        let pbkdf2_hex = "0".repeat(64);
        let bcrypt_rest = "xeF9wOsXN/wmwKSw24i5eet6MOWLNCA31NOeuZy.LnAtUMauloyyS";
        let too_costly = [
            // 256 MiB, 9 passes, and 128 MiB × 3 passes (each limit kept, the work not).
            argon2_with("m=262144,t=1,p=1"),
            argon2_with("m=19456,t=9,p=1"),
            argon2_with("m=131072,t=3,p=1"),
            argon2_with("m=1048576,t=2,p=1"),
            format!("scrypt:262144:8:1$salt${scrypt_hex}"),
            format!("scrypt:131072:8:2$salt${scrypt_hex}"),
            format!("scrypt:32768:8:5$salt${scrypt_hex}"),
            format!("pbkdf2:sha256:2000001$salt${pbkdf2_hex}"),
            format!("pbkdf2:sha512:10000000$salt${scrypt_hex}"),
            format!("$2b$15${bcrypt_rest}"),
            format!("$2b$16${bcrypt_rest}"),
        ];
        for stored in &too_costly {
            let before = derivations();
            assert_eq!(
                passwords.verify_blocking("pw", stored),
                Err(PasswordError::Malformed),
                "{stored}"
            );
            assert_eq!(derivations(), before, "{stored} was computed");
            assert!(passwords.needs_rehash(stored));
        }
        // Up to the limits, hashes parse (and would be computed).
        for within in [
            argon2_with("m=131072,t=2,p=4"),
            argon2_with("m=38912,t=8,p=1"),
            format!("scrypt:131072:8:1$salt${scrypt_hex}"),
            format!("pbkdf2:sha256:2000000$salt${pbkdf2_hex}"),
            format!("$2b$14${bcrypt_rest}"),
        ] {
            assert!(Stored::parse(&within).is_ok(), "{within}");
        }
    }

    #[test]
    fn a_password_nfkc_changes_costs_what_any_other_costs() {
        // A werkzeug hash of a decomposed accent, as a Flask app stored the raw input.
        let raw = "pa\u{308}sswo\u{308}rd";
        let mut derived = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(raw.as_bytes(), b"saltsalt", 1000, &mut derived);
        let hex: String = derived.iter().map(|b| format!("{b:02x}")).collect();
        let legacy = format!("pbkdf2:sha256:1000$saltsalt${hex}");
        let passwords = fast();
        let argon2 = passwords.hash_blocking("plain ascii").unwrap();
        let cost = |password: &str, stored: &str| {
            let before = derivations();
            let result = passwords.verify_blocking(password, stored);
            (result, derivations() - before)
        };
        // NFKC changes the first two (decomposed accent, fullwidth letters), not the
        // others; right or wrong, each costs two derivations of the legacy hash.
        assert_eq!(cost(raw, &legacy), (Ok(true), 2));
        assert_eq!(cost("ｆｕｌｌｗｉｄｔｈ", &legacy), (Ok(false), 2));
        assert_eq!(cost("plain ascii", &legacy), (Ok(false), 2));
        assert_eq!(cost("p\u{e4}ssw\u{f6}rd", &legacy), (Ok(false), 2));
        // Argon2 hashes are checked normalised only: one derivation, whatever typed.
        assert_eq!(cost("plain ascii", &argon2), (Ok(true), 1));
        assert_eq!(cost("ｐｌａｉｎ ａｓｃｉｉ", &argon2), (Ok(true), 1));
        assert_eq!(cost("pa\u{308}ss", &argon2), (Ok(false), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_saturated_hasher_answers_busy_within_its_bound() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .max_concurrent(1)
                .permit_timeout(std::time::Duration::from_millis(50)),
        )
        .unwrap();
        let stored = passwords.hash("pw".to_owned()).await.unwrap();
        // Every slot taken, as by a flood of logins that keeps them busy.
        let held = Arc::clone(&passwords.inner.permits)
            .acquire_owned()
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(
            passwords
                .verify("pw".to_owned(), Some(stored.clone()))
                .await,
            Err(PasswordError::Busy)
        );
        assert_eq!(
            passwords.hash("pw".to_owned()).await,
            Err(PasswordError::Busy)
        );
        // The paused clock moved by the bounds and nothing else: two waits of 50 ms.
        assert_eq!(started.elapsed(), std::time::Duration::from_millis(100));
        drop(held);
        assert_eq!(
            passwords.verify("pw".to_owned(), Some(stored)).await,
            Ok(true)
        );
    }

    #[test]
    fn werkzeug_methods_without_parameters_follow_werkzeug() {
        let sha256 = format!("pbkdf2$salt${}", "0".repeat(64));
        let Ok(Stored::Pbkdf2 {
            sha512, iterations, ..
        }) = Stored::parse(&sha256)
        else {
            panic!("{sha256} refused");
        };
        assert!(!sha512);
        assert_eq!(iterations, 1_000_000);
        let sha512 = format!("pbkdf2:sha512$salt${}", "0".repeat(128));
        assert!(matches!(
            Stored::parse(&sha512),
            Ok(Stored::Pbkdf2 {
                sha512: true,
                iterations: 1_000_000,
                ..
            })
        ));
        let scrypt = format!("scrypt$salt${}", "0".repeat(128));
        let Ok(Stored::Scrypt { params, .. }) = Stored::parse(&scrypt) else {
            panic!("{scrypt} refused");
        };
        assert_eq!((params.log_n(), params.r(), params.p()), (15, 8, 1));
        // Digest lengths follow the method.
        assert!(Stored::parse(&format!("pbkdf2:sha512$salt${}", "0".repeat(64))).is_err());
        assert!(Stored::parse(&format!("pbkdf2:sha256$salt${}", "0".repeat(128))).is_err());
    }

    #[test]
    fn legacy_hashes_of_raw_input_verify() {
        // A werkzeug hash of the decomposed form, as an old Flask app stored it.
        let raw = "pa\u{308}sswo\u{308}rd";
        let mut derived = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(raw.as_bytes(), b"saltsalt", 1000, &mut derived);
        let hex: String = derived.iter().map(|b| format!("{b:02x}")).collect();
        let stored = format!("pbkdf2:sha256:1000$saltsalt${hex}");
        let passwords = fast();
        assert_eq!(passwords.verify_blocking(raw, &stored), Ok(true));
        assert_eq!(
            passwords.verify_blocking("p\u{e4}ssw\u{f6}rd", &stored),
            Ok(false)
        );
    }

    #[test]
    fn policy_refuses_each_violation() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check("bob", "short"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(
            policy.check("bob", &"x".repeat(129)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        // 128 characters are fine, counted as characters, not bytes (a repeated
        // pattern is weak, so only the length is checked here).
        let lenient = policy.clone().min_score(0);
        assert!(lenient.check("bob", &"密码🦀é".repeat(32)).is_ok());
        assert_eq!(
            lenient.check("bob", &"密码🦀é".repeat(33)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        assert_eq!(
            policy.check("bob", "password123"),
            Err(PolicyViolation::Common)
        );
        // U+FDFA is one character of three bytes that NFKC turns into eighteen: the
        // input is bounded by its bytes before it is normalised.
        assert_eq!(
            policy.check("bob", &"\u{FDFA}".repeat(200_000)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        // Three jamo (nine bytes) compose to one Hangul syllable: 57 syllables typed as
        // jamo are 513 bytes, over 4 × 128, refused before NFKC would shrink them to 57.
        let jamo = "\u{1100}\u{1161}\u{11A8}".repeat(57);
        assert_eq!(normalize(&jamo).chars().count(), 57);
        assert_eq!(
            lenient.check("bob", &jamo),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        assert_eq!(
            policy.check("bob", "PassWord123"),
            Err(PolicyViolation::Common)
        );
        // Length is checked first: "alice" is too short before it is the username.
        assert_eq!(
            policy.check("Alice", "alice"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(
            policy.clone().min_len(5).check("Alice", "alice"),
            Err(PolicyViolation::SameAsUsername)
        );
        assert_eq!(
            policy.check("Alice.Liddell", "ALICE.LIDDELL"),
            Err(PolicyViolation::SameAsUsername)
        );
        // In Django's list, so refused as common before zxcvbn sees it.
        assert_eq!(
            policy.check("bob", "qwertyuiop12"),
            Err(PolicyViolation::Common)
        );
        let weak = policy.check("bob", "abcdefgh12345");
        let Err(PolicyViolation::TooWeak { suggestion }) = &weak else {
            panic!("{weak:?}");
        };
        assert!(suggestion.is_some());
        assert!(weak
            .unwrap_err()
            .to_string()
            .starts_with("This password is too easy to guess. "));
        // zxcvbn is told the username: a password built on it scores low.
        assert!(matches!(
            policy.check("zebediah.quarrington", "zebediah.quarrington1"),
            Err(PolicyViolation::TooWeak { .. })
        ));
    }

    #[test]
    fn policy_accepts_a_strong_passphrase_and_returns_it_normalised() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check("bob", "violet tugboat marmalade ninety"),
            Ok("violet tugboat marmalade ninety".to_owned())
        );
        assert_eq!(
            policy.check("bob", "ｖｉｏｌｅｔ ｔｕｇｂｏａｔ ｍａｒｍａｌａｄｅ"),
            Ok("violet tugboat marmalade".to_owned())
        );
        // A long password is judged on its first 64 characters, quickly.
        let long = "violet tugboat marmalade ninety ".repeat(4);
        assert!(policy.check("bob", long.trim_end()).is_ok());
    }

    #[test]
    fn messages_are_written_for_the_user() {
        assert_eq!(
            PolicyViolation::TooShort { min: 8 }.to_string(),
            "Use at least 8 characters."
        );
        assert_eq!(
            PolicyViolation::TooLong { max: 128 }.to_string(),
            "Use at most 128 characters."
        );
        assert_eq!(
            PolicyViolation::SameAsUsername.to_string(),
            "The password must not be your username."
        );
        assert_eq!(
            PolicyViolation::Common.to_string(),
            "This password is one of the most common ones; choose another."
        );
        assert_eq!(
            PolicyViolation::TooWeak { suggestion: None }.to_string(),
            "This password is too easy to guess."
        );
        assert_eq!(
            PolicyViolation::TooWeak {
                suggestion: Some("Add another word or two.".to_owned())
            }
            .to_string(),
            "This password is too easy to guess. Add another word or two."
        );
    }

    #[test]
    fn the_common_list_is_loaded() {
        let common = common_passwords();
        assert!(common.len() > 19_000);
        assert!(common.contains("123456"));
        assert!(common.iter().all(|p| *p == p.to_lowercase()));
    }

    #[tokio::test]
    async fn async_verify_without_a_user_is_false() {
        let passwords = fast();
        assert_eq!(
            passwords.verify("anything".to_owned(), None).await,
            Ok(false)
        );
        assert_eq!(
            passwords.verify(DUMMY_PASSWORD.to_owned(), None).await,
            Ok(false)
        );
        // The dummy hash has the current parameters and is made once.
        let dummy = passwords.inner.dummy.get().unwrap().clone();
        assert!(!passwords.needs_rehash(&dummy));
        passwords.verify("again".to_owned(), None).await.unwrap();
        assert_eq!(passwords.inner.dummy.get().unwrap(), &dummy);
    }

    #[tokio::test]
    async fn async_hash_and_verify_round_trip() {
        let passwords = fast();
        let stored = passwords.hash("pässwörd".to_owned()).await.unwrap();
        assert_eq!(
            passwords
                .verify("pässwörd".to_owned(), Some(stored.clone()))
                .await,
            Ok(true)
        );
        assert_eq!(
            passwords.verify("wrong".to_owned(), Some(stored)).await,
            Ok(false)
        );
        assert_eq!(
            passwords
                .verify("x".to_owned(), Some("junk".to_owned()))
                .await,
            Err(PasswordError::Malformed)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_concurrency_cap_queues_work_and_frees_its_slots() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .max_concurrent(1),
        )
        .unwrap();
        let (a, b, c) = tokio::join!(
            passwords.hash("first".to_owned()),
            passwords.hash("second".to_owned()),
            passwords.verify("third".to_owned(), None),
        );
        assert_eq!(passwords.verify_blocking("first", &a.unwrap()), Ok(true));
        assert_eq!(passwords.verify_blocking("second", &b.unwrap()), Ok(true));
        assert_eq!(c, Ok(false));
        assert_eq!(passwords.inner.permits.available_permits(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_call_keeps_its_slot_until_the_work_ends() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(8 * 1024)
                .iterations(4)
                .max_concurrent(1),
        )
        .unwrap();
        let task = tokio::spawn({
            let passwords = passwords.clone();
            async move { passwords.hash("slow".to_owned()).await }
        });
        // Wait until the hash holds the only slot, then abandon it.
        while passwords.inner.permits.available_permits() == 1 && !task.is_finished() {
            tokio::task::yield_now().await;
        }
        task.abort();
        // The next call still gets its turn and completes.
        let stored = passwords.hash("next".to_owned()).await.unwrap();
        assert_eq!(passwords.verify_blocking("next", &stored), Ok(true));
        // The abandoned computation releases its slot when it ends.
        for _ in 0..1000 {
            if passwords.inner.permits.available_permits() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(passwords.inner.permits.available_permits(), 1);
    }
}
