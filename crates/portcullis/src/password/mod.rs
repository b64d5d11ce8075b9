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

// One file per part: what new hashes are made with (`config`), what a stored hash may
// ask for (`limits`), hashing and verifying (`hasher`), the bounded number of them at
// once on blocking threads (`slots`), Argon2's pooled working memory (`memory`), a
// stored hash of any kind (`stored`) and the hashes Flask applications wrote
// (`legacy`), the policy for new passwords (`policy`), and the errors (`error`).
mod config;
mod error;
mod hasher;
mod legacy;
mod limits;
mod memory;
mod policy;
mod slots;
mod stored;

pub use config::{PasswordConfig, DEFAULT_PERMIT_TIMEOUT};
pub use error::PasswordError;
pub use hasher::Passwords;
pub use limits::{
    MAX_ARGON2_ITERATIONS, MAX_ARGON2_MEMORY_KIB, MAX_ARGON2_PARALLELISM, MAX_ARGON2_WORK,
    MAX_BCRYPT_COST, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_N, MAX_SCRYPT_WORK,
};
pub use policy::{normalize, PasswordPolicy, PolicyViolation};
