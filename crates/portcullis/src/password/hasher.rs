//! Hashing with Argon2id, verifying any stored hash, and deciding when to rehash.

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{self, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::limits::argon2_limit_exceeded;
use super::memory::WorkingMemory;
use super::stored::Stored;
use super::{normalize, PasswordConfig, PasswordError};

// 16 bytes, as the Argon2 and PHC specifications recommend.
const SALT_LEN: usize = 16;

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
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) config: PasswordConfig,
    params: Params,
    // An Arc so a permit can move into the blocking task and be released there, when
    // the computation ends, even if the caller stopped waiting for it.
    pub(super) permits: Arc<Semaphore>,
    // A hash of DUMMY_PASSWORD with the current parameters, made on first need.
    pub(super) dummy: OnceLock<String>,
    pub(super) memory: WorkingMemory,
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
    /// hash (see [`MAX_ARGON2_MEMORY_KIB`](super::MAX_ARGON2_MEMORY_KIB) and the other limits), are an error, as is a
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
        if let Some(why) =
            argon2_limit_exceeded(config.memory_kib, config.iterations, config.parallelism)
        {
            return invalid(why);
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
                memory: WorkingMemory::new(params.block_count(), config.max_concurrent),
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
        let output = self.inner.memory.derive(
            &argon2,
            password.as_bytes(),
            &salt,
            Params::DEFAULT_OUTPUT_LEN,
        );
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
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    // Small parameters keep the tests fast; one test uses the defaults.
    pub(crate) fn fast() -> Passwords {
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
    fn salts_differ() {
        let passwords = fast();
        let a = passwords.hash_blocking("same").unwrap();
        let b = passwords.hash_blocking("same").unwrap();
        assert_ne!(a, b);
        let salt = |hash: &str| hash.split('$').nth(4).unwrap().to_owned();
        assert_ne!(salt(&a), salt(&b));
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
}
