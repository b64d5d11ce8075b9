//! Configuration from the environment, and the production audit.
//!
//! [`Settings::from_env`] reads every `PORTCULLIS_*` variable (and `DATABASE_URL`,
//! `REDIS_URL`); a value that does not parse is an error in any environment.
//! [`Settings::audit`] then checks the deployment the way Django's `check --deploy`
//! does. In production a failing check stops the process before it serves anything,
//! one line per problem, exit status 2 ([`Settings::enforce`]); `portcullis check`
//! prints the same audit as a table.
//!
//! ```
//! use portcullis::config::{Environment, Settings};
//!
//! let vars = [("PORTCULLIS_ENV", "production")];
//! let settings = Settings::from_lookup(|name| {
//!     vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
//! })
//! .unwrap();
//! assert_eq!(settings.environment, Environment::Production);
//! let report = settings.audit();
//! // No key, no TLS, no proxy: not fit for production.
//! assert!(!report.passed());
//! assert!(report.failures().any(|check| check.name == "secret-key"));
//! ```

//!
//! | file | what it holds |
//! |---|---|
//! | `settings.rs` | [`Settings`] and the parsing of each variable |
//! | `audit/` | [`Settings::audit`], [`Settings::enforce`], the [`Report`] |
//! | `presets.rs` | the secure stack, CORS and rate limits a [`Settings`] describes |

mod audit;
mod presets;
mod settings;

pub use audit::{AuditFailed, Check, Report, Status};
#[cfg(feature = "redis")]
pub(crate) use settings::url_parts;
pub use settings::{
    redact_url_password, ConfigError, Environment, RateLimitMode, Settings, TlsFiles,
};
