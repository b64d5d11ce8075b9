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

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::client_ip::TrustedProxies;
use crate::hosts::AllowedHosts;
use crate::keys::{Keyring, SecretKey};

/// Where the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    /// A developer's machine: plain HTTP allowed, an ephemeral key generated.
    #[default]
    Development,
    /// Serving real users: every check of the audit must pass.
    Production,
}

impl Environment {
    /// `"development"` or `"production"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

/// How the rate limiter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitMode {
    /// The limits of the configuration.
    #[default]
    Normal,
    /// Every limit multiplied by one million: the limiter still decides every request
    /// but never refuses one. For load benchmarks only; refused in production.
    Bench,
}

/// PEM files for built-in TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// The application's configuration, read from the environment.
///
/// Secrets are held as [`SecretKey`]s and `Debug` never prints them, nor the
/// passwords inside `DATABASE_URL` and `REDIS_URL`.
#[derive(Clone)]
#[non_exhaustive]
pub struct Settings {
    /// `PORTCULLIS_ENV`: `development` (default) or `production`.
    pub environment: Environment,
    /// `PORTCULLIS_ADDR`: where the app listens (default `127.0.0.1:8000`).
    pub addr: SocketAddr,
    /// `PORTCULLIS_HTTP_ADDR`: with built-in TLS, a plain-HTTP port that only redirects.
    pub http_redirect_addr: Option<SocketAddr>,
    /// `PORTCULLIS_DATA_DIR`: the SQLite database and uploads (default `./data`).
    pub data_dir: PathBuf,
    /// `PORTCULLIS_UPLOAD_DIR`: where uploaded files are kept (default
    /// `<data dir>/uploads`); never a folder the app serves.
    pub upload_dir: PathBuf,
    /// `PORTCULLIS_TRUSTED_PROXIES`: proxies whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// `PORTCULLIS_TRUST_FORWARDED_HOST`: whether the trusted proxies' forwarded host
    /// replaces `Host` (default `false`: only when the proxy overwrites it itself).
    pub trust_forwarded_host: bool,
    /// `PORTCULLIS_ALLOWED_HOSTS`: the host names the app answers to, comma-separated
    /// (`example.com`, `.example.com` for subdomains too); any other `Host` gets 400.
    /// Development adds the loopback names; production requires the list.
    pub allowed_hosts: AllowedHosts,
    /// `PORTCULLIS_TLS_CERT` and `PORTCULLIS_TLS_KEY`.
    pub tls: Option<TlsFiles>,
    /// `PORTCULLIS_COOKIE_SECURE`: default `true` in production, `false` in development.
    pub cookie_secure: bool,
    /// `PORTCULLIS_CORS_ORIGINS`: origins allowed to call the API from a browser.
    pub cors_origins: Vec<String>,
    /// `PORTCULLIS_CORS_CREDENTIALS`: whether those calls may carry credentials.
    pub cors_credentials: bool,
    /// `PORTCULLIS_RATE_LIMITS`: `normal` (default) or `bench`.
    pub rate_limits: RateLimitMode,
    /// `PORTCULLIS_INSTANCES`: how many instances share the load (default 1).
    pub instances: u32,
    /// `DATABASE_URL`: a PostgreSQL URL; unset means SQLite under the data folder.
    pub database_url: Option<String>,
    /// `REDIS_URL`: shared sessions, limits and revocations; unset means in memory.
    pub redis_url: Option<String>,
    /// `PORTCULLIS_REDIS_PREFIX`: the prefix of every Redis key (default `portcullis`),
    /// so that several apps, or test runs, can share one Redis.
    pub redis_prefix: String,
    /// `PORTCULLIS_LOG`: a `tracing` filter (default `info`).
    pub log_filter: String,
    // What PORTCULLIS_COOKIE_SECURE said, if anything: the audit judges what
    // production would do, where an unset value means `true`.
    cookie_secure_setting: Option<bool>,
    secret_key: Option<SecretKey>,
    fallback_keys: Vec<Option<SecretKey>>,
    // Built on first use, so that a generated development key is the same for every
    // component of the process.
    keyring: OnceLock<Keyring>,
}

/// Variables that could not be read; each line names the variable and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("environment", &self.environment)
            .field("addr", &self.addr)
            .field("http_redirect_addr", &self.http_redirect_addr)
            .field("data_dir", &self.data_dir)
            .field("upload_dir", &self.upload_dir)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("trust_forwarded_host", &self.trust_forwarded_host)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("tls", &self.tls)
            .field("cookie_secure", &self.cookie_secure)
            .field("cors_origins", &self.cors_origins)
            .field("cors_credentials", &self.cors_credentials)
            .field("rate_limits", &self.rate_limits)
            .field("instances", &self.instances)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url_password),
            )
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(redact_url_password),
            )
            .field("redis_prefix", &self.redis_prefix)
            .field("log_filter", &self.log_filter)
            .field("secret_key", &self.secret_key)
            .field("fallback_keys", &self.fallback_keys)
            .finish_non_exhaustive()
    }
}

/// The parts of a URL that decide what may be shown of it: the scheme, the user-info
/// (if any), and the host and path. The query and fragment are dropped: they can carry
/// credentials too (`?password=…`). `None` when there is no `scheme://`.
pub(crate) fn url_parts(url: &str) -> Option<(&str, Option<&str>, &str)> {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://")?;
    // The user-info ends at the last `@` before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    Some(match rest[..authority_end].rfind('@') {
        Some(at) => (scheme, Some(&rest[..at]), &rest[at + 1..]),
        None => (scheme, None, rest),
    })
}

/// `url` with the password of its user-info replaced by `[redacted]` and without its
/// query: `postgres://app:hunter2@db/app` becomes `postgres://app:[redacted]@db/app`.
/// A URL that does not parse is redacted whole, since it may still hold a secret.
///
/// ```
/// use portcullis::config::redact_url_password;
///
/// assert_eq!(
///     redact_url_password("redis://:s3cret@cache:6379/0"),
///     "redis://:[redacted]@cache:6379/0"
/// );
/// assert_eq!(redact_url_password("postgres://db/app?password=x"), "postgres://db/app");
/// ```
pub fn redact_url_password(url: &str) -> String {
    match url_parts(url) {
        None => "[redacted]".to_owned(),
        Some((scheme, None, rest)) => format!("{scheme}://{rest}"),
        // A bare user-info can be a token (`redis://TOKEN@host`).
        Some((scheme, Some(userinfo), rest)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:[redacted]@{rest}"),
            None => format!("{scheme}://[redacted]@{rest}"),
        },
    }
}

/// Whether `url` carries a password (or a token as user-info).
fn url_has_password(url: &str) -> bool {
    url_parts(url).is_some_and(|(_, userinfo, _)| match userinfo {
        Some(userinfo) => match userinfo.split_once(':') {
            Some((_, password)) => !password.is_empty(),
            None => !userinfo.is_empty(),
        },
        None => false,
    })
}

/// The host of an `http(s)://` origin, when it is a loopback name.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    AllowedHosts::loopback().allows(host)
}

/// A trusted network so wide that anyone on much of the internet could forge the
/// client address and scheme through it.
fn is_too_broad(net: &ipnet::IpNet) -> bool {
    match net {
        ipnet::IpNet::V4(v4) => v4.prefix_len() < 8,
        ipnet::IpNet::V6(v6) => v6.prefix_len() < 16,
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{name}={value:?} is not a boolean (use true or false)"
        )),
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, for tests and embedding. Empty values count
    /// as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut problems = Vec::new();
        let mut report = |problem: String| problems.push(problem);

        let environment = match get("PORTCULLIS_ENV").as_deref().map(str::trim) {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                report(format!(
                    "PORTCULLIS_ENV={other:?} is not an environment (use development or production)"
                ));
                Environment::Production
            }
        };
        let production = environment == Environment::Production;

        let mut addr_var = |name: &str, default: Option<SocketAddr>| match get(name) {
            None => default,
            Some(v) => match v.trim().parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    report(format!(
                        "{name}={v:?} is not an address such as 127.0.0.1:8000"
                    ));
                    default
                }
            },
        };
        let addr = addr_var(
            "PORTCULLIS_ADDR",
            Some(SocketAddr::from(([127, 0, 0, 1], 8000))),
        )
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000)));
        let http_redirect_addr = addr_var("PORTCULLIS_HTTP_ADDR", None);

        let data_dir = get("PORTCULLIS_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("./data"));

        let upload_dir = get("PORTCULLIS_UPLOAD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("uploads"));

        let trusted_proxies = match get("PORTCULLIS_TRUSTED_PROXIES") {
            None => TrustedProxies::default(),
            Some(v) => v.parse().unwrap_or_else(|e| {
                report(format!("PORTCULLIS_TRUSTED_PROXIES: {e}"));
                TrustedProxies::default()
            }),
        };

        let trust_forwarded_host = match get("PORTCULLIS_TRUST_FORWARDED_HOST") {
            None => false,
            Some(v) => parse_bool("PORTCULLIS_TRUST_FORWARDED_HOST", &v).unwrap_or_else(|e| {
                report(e);
                false
            }),
        };
        let allowed_hosts = match get("PORTCULLIS_ALLOWED_HOSTS") {
            None => AllowedHosts::none(),
            Some(v) => v.parse().unwrap_or_else(|e| {
                report(format!("PORTCULLIS_ALLOWED_HOSTS: {e}"));
                AllowedHosts::none()
            }),
        };
        let dev_allow_remote = match get("PORTCULLIS_DEV_ALLOW_REMOTE") {
            None => false,
            Some(v) => parse_bool("PORTCULLIS_DEV_ALLOW_REMOTE", &v).unwrap_or_else(|e| {
                report(e);
                false
            }),
        };
        if !production && !dev_allow_remote {
            for (name, listen) in [
                ("PORTCULLIS_ADDR", Some(addr)),
                ("PORTCULLIS_HTTP_ADDR", http_redirect_addr),
            ] {
                if let Some(listen) = listen.filter(|a| !a.ip().is_loopback()) {
                    report(format!(
                        "{name}={listen} is not a loopback address, and development mode (a generated key, \
                         plain HTTP, cookies without Secure) must not face a network: set PORTCULLIS_ENV=production, \
                         or PORTCULLIS_DEV_ALLOW_REMOTE=true to accept the risk"
                    ));
                }
            }
        }

        let tls = match (get("PORTCULLIS_TLS_CERT"), get("PORTCULLIS_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (None, None) => None,
            _ => {
                report(
                    "PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY must be set together".to_owned(),
                );
                None
            }
        };

        let cookie_secure_setting = get("PORTCULLIS_COOKIE_SECURE").map(|v| {
            parse_bool("PORTCULLIS_COOKIE_SECURE", &v).unwrap_or_else(|e| {
                report(e);
                true
            })
        });
        let cookie_secure = cookie_secure_setting.unwrap_or(production);
        let cors_origins: Vec<String> = get("PORTCULLIS_CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let cors_credentials = match get("PORTCULLIS_CORS_CREDENTIALS") {
            None => false,
            Some(v) => parse_bool("PORTCULLIS_CORS_CREDENTIALS", &v).unwrap_or_else(|e| {
                report(e);
                false
            }),
        };
        let rate_limits = match get("PORTCULLIS_RATE_LIMITS").as_deref().map(str::trim) {
            None | Some("normal") => RateLimitMode::Normal,
            Some("bench") => RateLimitMode::Bench,
            Some(other) => {
                report(format!(
                    "PORTCULLIS_RATE_LIMITS={other:?} is not a mode (use normal or bench)"
                ));
                RateLimitMode::Normal
            }
        };
        let instances = match get("PORTCULLIS_INSTANCES") {
            None => 1,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    report(format!(
                        "PORTCULLIS_INSTANCES={v:?} is not a positive whole number"
                    ));
                    1
                }
            },
        };

        let secret_key = match (
            get("PORTCULLIS_SECRET_KEY"),
            get("PORTCULLIS_SECRET_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                report(
                    "set PORTCULLIS_SECRET_KEY or PORTCULLIS_SECRET_KEY_FILE, not both".to_owned(),
                );
                None
            }
            (Some(text), None) => Some(SecretKey::parse(&text)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => Some(SecretKey::parse(&text)),
                Ok(_) => {
                    report(format!("PORTCULLIS_SECRET_KEY_FILE {path:?} is empty"));
                    None
                }
                Err(e) => {
                    report(format!(
                        "PORTCULLIS_SECRET_KEY_FILE {path:?} cannot be read: {e}"
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        // An empty entry (`a,,b`) is kept as `None` so that the audit can name it.
        let fallback_keys = get("PORTCULLIS_SECRET_KEY_FALLBACKS")
            .map(|v| {
                v.split(',')
                    .map(|k| (!k.trim().is_empty()).then(|| SecretKey::parse(k)))
                    .collect()
            })
            .unwrap_or_default();

        if instances > 1 && secret_key.is_none() {
            report(format!(
                "PORTCULLIS_INSTANCES={instances} but no PORTCULLIS_SECRET_KEY: each instance would generate a key \
                 of its own and refuse the others' sessions, CSRF tokens and JWTs; give every instance the same \
                 key from `portcullis keygen`"
            ));
        }

        let database_url = get("DATABASE_URL");
        let redis_url = get("REDIS_URL");
        let redis_prefix =
            get("PORTCULLIS_REDIS_PREFIX").unwrap_or_else(|| "portcullis".to_owned());
        if !redis_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            report(format!(
                "PORTCULLIS_REDIS_PREFIX={redis_prefix:?} may only hold letters, digits and - _ . :"
            ));
        }
        let log_filter = get("PORTCULLIS_LOG").unwrap_or_else(|| "info".to_owned());

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Self {
            environment,
            addr,
            http_redirect_addr,
            data_dir,
            upload_dir,
            trusted_proxies,
            trust_forwarded_host,
            allowed_hosts,
            tls,
            cookie_secure,
            cors_origins,
            cors_credentials,
            rate_limits,
            instances,
            database_url,
            redis_url,
            redis_prefix,
            log_filter,
            cookie_secure_setting,
            secret_key,
            fallback_keys,
            keyring: OnceLock::new(),
        })
    }

    /// The hosts the app answers to: `PORTCULLIS_ALLOWED_HOSTS`, plus the loopback
    /// names in development.
    ///
    /// ```
    /// use portcullis::config::Settings;
    ///
    /// let settings = Settings::from_lookup(|_| None).unwrap();
    /// assert!(settings.served_hosts().allows("localhost:8000"));
    /// ```
    pub fn served_hosts(&self) -> AllowedHosts {
        if self.is_production() {
            self.allowed_hosts.clone()
        } else {
            AllowedHosts::loopback().merge(&self.allowed_hosts)
        }
    }

    /// Whether this is a production deployment.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// Whether the configured key is present (development generates one otherwise).
    pub fn has_secret_key(&self) -> bool {
        self.secret_key.is_some()
    }

    /// The keyring. Without a configured key (development only: production refuses to
    /// start) a random key is generated once for this process, and a warning says
    /// loudly that sessions and tokens will not survive a restart.
    pub fn keyring(&self) -> Keyring {
        self.keyring
            .get_or_init(|| {
                let current = match &self.secret_key {
                    Some(key) => key.clone(),
                    None => {
                        tracing::warn!(
                            "PORTCULLIS_SECRET_KEY is not set: using a random key for this process only. \
                             Every session, CSRF token and JWT becomes invalid when it restarts. \
                             Run `portcullis keygen` and set PORTCULLIS_SECRET_KEY."
                        );
                        SecretKey::generate()
                    }
                };
                Keyring::new(current, self.fallback_keys.iter().flatten().cloned().collect())
            })
            .clone()
    }

    /// Checks the configuration against what production requires.
    ///
    /// The audit does not depend on `PORTCULLIS_ENV`: it says what production would
    /// refuse, so that `portcullis check` can be run before switching over.
    pub fn audit(&self) -> Report {
        let mut checks = Vec::new();

        checks.push(match &self.secret_key {
            None => Check::fail(
                "secret-key",
                "no secret key is configured",
                "run `portcullis keygen` and set PORTCULLIS_SECRET_KEY (or PORTCULLIS_SECRET_KEY_FILE)",
            ),
            Some(key) => match key.weakness() {
                Some(weakness) => Check::fail(
                    "secret-key",
                    format!("the secret key {weakness}"),
                    "replace it with the output of `portcullis keygen`",
                ),
                None => Check::pass("secret-key", "a strong key is configured"),
            },
        });

        let weak_fallbacks: Vec<String> = self
            .fallback_keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| match key {
                None => Some(format!("fallback {} is empty", i + 1)),
                Some(key) => key.weakness().map(|w| format!("fallback {} {w}", i + 1)),
            })
            .collect();
        checks.push(if weak_fallbacks.is_empty() {
            Check::pass(
                "secret-key-fallbacks",
                format!("{} fallback key(s), all strong", self.fallback_keys.len()),
            )
        } else {
            Check::fail(
                "secret-key-fallbacks",
                weak_fallbacks.join("; "),
                "remove weak or empty entries from PORTCULLIS_SECRET_KEY_FALLBACKS",
            )
        });

        checks.push(if self.cookie_secure_setting.unwrap_or(true) {
            Check::pass("secure-cookies", "cookies are sent with Secure")
        } else {
            Check::fail(
                "secure-cookies",
                "cookies would be sent without Secure, so over plain HTTP too",
                "unset PORTCULLIS_COOKIE_SECURE (it defaults to true in production) or set it to true",
            )
        });

        let broad: Vec<String> = self
            .trusted_proxies
            .networks()
            .iter()
            .filter(|net| is_too_broad(net))
            .map(ToString::to_string)
            .collect();
        checks.push(if broad.is_empty() {
            Check::pass(
                "trusted-proxies",
                format!("{} trusted proxy network(s)", self.trusted_proxies.networks().len()),
            )
        } else {
            Check::fail(
                "trusted-proxies",
                format!(
                    "{} trusts a large part of the internet: any client there can forge its address, scheme and host",
                    broad.join(", ")
                ),
                "list only the addresses of your own proxies in PORTCULLIS_TRUSTED_PROXIES",
            )
        });
        let proxy_terminates_tls = !self.trusted_proxies.is_empty() && broad.is_empty();

        checks.push(if self.allowed_hosts.is_empty() {
            Check::fail(
                "allowed-hosts",
                "no allowed host is configured: production answers none",
                "set PORTCULLIS_ALLOWED_HOSTS to the site's host names (example.com, .example.com)",
            )
        } else if self.allowed_hosts.allows_any() {
            Check::fail(
                "allowed-hosts",
                "every host is allowed: redirects and the CSRF origin follow the client's Host",
                "list the site's host names in PORTCULLIS_ALLOWED_HOSTS",
            )
        } else {
            Check::pass("allowed-hosts", format!("{:?}", self.allowed_hosts))
        });

        checks.push(match (&self.tls, proxy_terminates_tls) {
            (Some(tls), _) => match (tls.cert.is_file(), tls.key.is_file()) {
                (true, true) => Check::pass("https", "built-in TLS is configured"),
                _ => Check::fail(
                    "https",
                    format!(
                        "TLS files not found: {} / {}",
                        tls.cert.display(),
                        tls.key.display()
                    ),
                    "point PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY at readable PEM files",
                ),
            },
            (None, true) => Check::pass(
                "https",
                "TLS terminates at a trusted proxy (PORTCULLIS_TRUSTED_PROXIES)",
            ),
            (None, false) => Check::fail(
                "https",
                "neither built-in TLS nor a trusted proxy (of a sound network) is configured",
                "set PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY, or PORTCULLIS_TRUSTED_PROXIES to the proxy that terminates TLS",
            ),
        });

        let wildcard = self.cors_origins.iter().any(|o| o == "*");
        let plain_http: Vec<&str> = self
            .cors_origins
            .iter()
            .map(String::as_str)
            .filter(|o| o.to_ascii_lowercase().starts_with("http://") && !is_loopback_origin(o))
            .collect();
        checks.push(if wildcard && self.cors_credentials {
            Check::fail(
                "cors",
                "CORS would allow any origin (*) with credentials",
                "list the allowed origins in PORTCULLIS_CORS_ORIGINS",
            )
        } else if self.cors_credentials && !plain_http.is_empty() {
            Check::fail(
                "cors",
                format!(
                    "credentials are allowed to plain-HTTP origins ({}): anyone on their network can inject a script that calls the API as the user",
                    plain_http.join(", ")
                ),
                "use https:// origins in PORTCULLIS_CORS_ORIGINS",
            )
        } else {
            Check::pass("cors", "no wildcard or plain-HTTP origin with credentials")
        });

        checks.push(match self.rate_limits {
            RateLimitMode::Bench => Check::fail(
                "rate-limits",
                "rate limits are in benchmark mode (every limit x 1,000,000)",
                "unset PORTCULLIS_RATE_LIMITS",
            ),
            RateLimitMode::Normal => Check::pass("rate-limits", "normal limits"),
        });

        checks.push(if self.instances > 1 && self.redis_url.is_none() {
            Check::fail(
                "shared-state",
                format!(
                    "{} instances but sessions, rate limits and revocations are kept in memory",
                    self.instances
                ),
                "set REDIS_URL so that every instance shares them",
            )
        } else {
            Check::pass(
                "shared-state",
                if self.redis_url.is_some() {
                    "sessions, limits and revocations in Redis"
                } else {
                    "one instance; in-memory state"
                },
            )
        });

        let postgres = self
            .database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
        checks.push(if self.instances > 1 && !postgres {
            Check::fail(
                "shared-database",
                format!(
                    "{} instances but each would use its own SQLite file",
                    self.instances
                ),
                "set DATABASE_URL to a PostgreSQL database",
            )
        } else {
            Check::pass(
                "shared-database",
                if postgres {
                    "PostgreSQL"
                } else {
                    "one instance; SQLite"
                },
            )
        });

        if let Some(url) = &self.redis_url {
            let tls = url.to_ascii_lowercase().starts_with("rediss://");
            checks.push(if tls || url_has_password(url) {
                Check::pass(
                    "redis-transport",
                    if tls { "Redis over TLS" } else { "Redis with a password" },
                )
            } else {
                Check::warn(
                    "redis-transport",
                    "Redis has neither TLS nor a password: anyone who reaches it can read and forge sessions",
                    "use rediss:// or set a password (redis://:PASSWORD@host), and keep Redis off public networks",
                )
            });
        }
        if postgres {
            let url = self.database_url.as_deref().unwrap_or("");
            let sslmode = url
                .split_once('?')
                .map(|(_, query)| {
                    query
                        .split('&')
                        .find_map(|pair| pair.strip_prefix("sslmode="))
                })
                .unwrap_or(None);
            checks.push(match sslmode {
                Some("require" | "verify-ca" | "verify-full") => {
                    Check::pass("database-transport", "PostgreSQL over TLS")
                }
                _ => Check::warn(
                    "database-transport",
                    "DATABASE_URL sets no sslmode that requires TLS: passwords and data may cross the network in clear",
                    "add ?sslmode=verify-full (or require) to DATABASE_URL",
                ),
            });
        }

        Report { checks }
    }

    /// In production, refuses to go on when the audit fails: prints one line per
    /// problem to standard error and exits with status 2. Does nothing in development.
    pub fn enforce(&self) {
        if !self.is_production() {
            return;
        }
        let report = self.audit();
        if report.passed() {
            return;
        }
        for check in report.failures() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "portcullis: refusing to start in production: {}: {} (fix: {})",
                    check.name, check.detail, check.fix
                );
            }
        }
        std::process::exit(2);
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fit for production.
    Pass,
    /// Production refuses this.
    Fail,
    /// Allowed, but worth a look: production starts anyway.
    Warn,
}

/// One row of the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short stable name (`secret-key`, `https` …).
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it; empty when it passed.
    pub fix: String,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: String::new(),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            ..Self::fail(name, detail, fix)
        }
    }
}

/// Every check of an audit.
#[derive(Debug, Clone)]
pub struct Report {
    /// The rows, in a stable order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed (warnings do not stop production).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// The checks that passed with a warning.
    pub fn warnings(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Warn)
    }

    /// The failing checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }
}

impl fmt::Display for Report {
    /// A plain-text table: check, status, what was found, how to fix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(f, "{:<width$}  {:<6}  detail / fix", "check", "status")?;
        for check in &self.checks {
            let status = match check.status {
                Status::Pass => "ok",
                Status::Fail => "FAIL",
                Status::Warn => "warn",
            };
            writeln!(f, "{:<width$}  {:<6}  {}", check.name, status, check.detail)?;
            if !check.fix.is_empty() {
                writeln!(f, "{:<width$}  {:<6}  fix: {}", "", "", check.fix)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    const STRONG: &str = "m3W6l0sXq8V2c1tYz9RkU7eJb4NfA5hG0pLiQwEoDdI";

    fn failing(vars: &[(&str, &str)]) -> Vec<&'static str> {
        settings(vars)
            .unwrap()
            .audit()
            .failures()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_sound_production_configuration_passes() {
        let vars = [
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_SECRET_KEY", STRONG),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
        ];
        assert_eq!(failing(&vars), Vec::<&str>::new());
        let s = settings(&vars).unwrap();
        assert!(s.cookie_secure);
        assert!(!format!("{s:?}").contains(STRONG));
    }

    #[test]
    fn each_production_problem_is_named() {
        let base = [
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            v
        };
        assert_eq!(failing(&with(&[])), ["secret-key"]);
        assert_eq!(
            failing(&with(&[("PORTCULLIS_SECRET_KEY", "changeme")])),
            ["secret-key"]
        );
        let strong = ("PORTCULLIS_SECRET_KEY", STRONG);
        assert_eq!(
            failing(&with(&[
                strong,
                ("PORTCULLIS_SECRET_KEY_FALLBACKS", "secret")
            ])),
            ["secret-key-fallbacks"]
        );
        assert_eq!(
            failing(&with(&[strong, ("PORTCULLIS_COOKIE_SECURE", "false")])),
            ["secure-cookies"]
        );
        assert_eq!(
            failing(&with(&[
                strong,
                ("PORTCULLIS_CORS_ORIGINS", "*"),
                ("PORTCULLIS_CORS_CREDENTIALS", "true")
            ])),
            ["cors"]
        );
        assert_eq!(
            failing(&with(&[strong, ("PORTCULLIS_RATE_LIMITS", "bench")])),
            ["rate-limits"]
        );
        assert_eq!(
            failing(&with(&[
                strong,
                ("PORTCULLIS_INSTANCES", "3"),
                ("DATABASE_URL", "postgres://db/app")
            ])),
            ["shared-state"]
        );
        assert_eq!(
            failing(&[
                ("PORTCULLIS_ENV", "production"),
                ("PORTCULLIS_SECRET_KEY", STRONG),
                ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
            ]),
            ["https"]
        );
        assert_eq!(
            failing(&[
                ("PORTCULLIS_ENV", "production"),
                ("PORTCULLIS_SECRET_KEY", STRONG),
                ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
            ]),
            ["allowed-hosts"]
        );
    }

    #[test]
    fn trusting_the_whole_internet_is_no_proxy_and_no_https() {
        let base = [
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_SECRET_KEY", STRONG),
            ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
        ];
        for everyone in ["0.0.0.0/0", "::/0", "10.0.0.0/8, 0.0.0.0/1", "2000::/3"] {
            let mut vars = base.to_vec();
            vars.push(("PORTCULLIS_TRUSTED_PROXIES", everyone));
            assert_eq!(failing(&vars), ["trusted-proxies", "https"], "{everyone}");
        }
        // A CDN's published ranges are public but narrow: fine.
        let mut vars = base.to_vec();
        vars.push((
            "PORTCULLIS_TRUSTED_PROXIES",
            "173.245.48.0/20, 2400:cb00::/32",
        ));
        assert_eq!(failing(&vars), Vec::<&str>::new());
    }

    #[test]
    fn a_passphrase_is_not_a_secret_key() {
        let base = [
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
        ];
        for phrase in [
            "correct horse battery staple is great",
            "correcthorsebatterystapleisgreatandevenlongerstill",
            "CORRECTHORSEBATTERYSTAPLEISGREATANDEVENLONGER",
        ] {
            let mut vars = base.to_vec();
            vars.push(("PORTCULLIS_SECRET_KEY", phrase));
            assert_eq!(failing(&vars), ["secret-key"], "{phrase}");
            let s = settings(&vars).unwrap();
            assert!(s.audit().to_string().contains("passphrase"), "{phrase}");
        }
        // The three forms random keys come in all pass.
        for key in [
            crate::keys::SecretKey::generate()
                .to_base64url()
                .to_string(),
            "q0t3Ql1w8PkmVb2D6rWzfqVbE5cVnqG7+kq2h0lQm3E=".to_owned(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
        ] {
            let mut vars = base.to_vec();
            vars.push(("PORTCULLIS_SECRET_KEY", &key));
            assert_eq!(failing(&vars), Vec::<&str>::new(), "{key}");
        }
    }

    #[test]
    fn several_instances_without_one_shared_key_are_refused_in_every_mode() {
        for env in ["development", "production"] {
            let err =
                settings(&[("PORTCULLIS_ENV", env), ("PORTCULLIS_INSTANCES", "2")]).unwrap_err();
            assert!(err.to_string().contains("PORTCULLIS_INSTANCES=2"), "{err}");
        }
        assert!(settings(&[
            ("PORTCULLIS_INSTANCES", "2"),
            ("PORTCULLIS_SECRET_KEY", STRONG)
        ])
        .is_ok());
    }

    #[test]
    fn development_refuses_to_face_a_network_unless_told() {
        for addr in ["0.0.0.0:8000", "[::]:8000", "192.0.2.10:80"] {
            let err = settings(&[("PORTCULLIS_ADDR", addr)]).unwrap_err();
            assert!(err.to_string().contains("not a loopback address"), "{err}");
            assert!(settings(&[
                ("PORTCULLIS_ADDR", addr),
                ("PORTCULLIS_DEV_ALLOW_REMOTE", "true")
            ])
            .is_ok());
        }
        assert!(settings(&[("PORTCULLIS_ADDR", "[::1]:8000")]).is_ok());
        assert!(settings(&[
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_ADDR", "0.0.0.0:8000")
        ])
        .is_ok());
    }

    #[test]
    fn credentialed_cors_to_plain_http_origins_fails_except_on_loopback() {
        let base = [
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_SECRET_KEY", STRONG),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
            ("PORTCULLIS_CORS_CREDENTIALS", "true"),
        ];
        let with = |origins: &'static str| {
            let mut v = base.to_vec();
            v.push(("PORTCULLIS_CORS_ORIGINS", origins));
            v
        };
        assert_eq!(
            failing(&with("https://app.example, http://app.example")),
            ["cors"]
        );
        assert_eq!(failing(&with("HTTP://app.example")), ["cors"]);
        assert!(failing(&with(
            "https://app.example, http://localhost:3000, http://127.0.0.1:5173"
        ))
        .is_empty());
    }

    #[test]
    fn debug_never_prints_connection_passwords() {
        let s = settings(&[
            (
                "DATABASE_URL",
                "postgres://app:pg-hunter2@db.internal:5432/app?sslmode=require",
            ),
            ("REDIS_URL", "rediss://default:redis-hunter2@cache:6380/0"),
            ("PORTCULLIS_SECRET_KEY", STRONG),
        ])
        .unwrap();
        let printed = format!("{s:?}");
        for secret in ["pg-hunter2", "redis-hunter2", STRONG] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(
            printed.contains("postgres://app:[redacted]@db.internal:5432/app"),
            "{printed}"
        );
        assert_eq!(
            redact_url_password("redis://TOKEN@cache"),
            "redis://[redacted]@cache"
        );
        assert_eq!(redact_url_password("not a url with p@ss"), "[redacted]");
        assert_eq!(
            redact_url_password("postgres://db/app?user=app&password=pg-hunter2"),
            "postgres://db/app"
        );
        assert_eq!(
            redact_url_password("postgres://u:p@ss@host/db"),
            "postgres://u:[redacted]@host/db"
        );
    }

    #[test]
    fn clear_text_redis_and_postgres_warn_without_failing() {
        let base = [
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_SECRET_KEY", STRONG),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
        ];
        let warned = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            let report = settings(&v).unwrap().audit();
            assert!(report.passed(), "{report}");
            report.warnings().map(|c| c.name).collect::<Vec<_>>()
        };
        assert_eq!(
            warned(&[
                ("REDIS_URL", "redis://cache:6379"),
                ("DATABASE_URL", "postgres://app@db/app")
            ]),
            ["redis-transport", "database-transport"]
        );
        assert!(warned(&[
            ("REDIS_URL", "rediss://cache:6380"),
            ("DATABASE_URL", "postgres://app@db/app?sslmode=verify-full")
        ])
        .is_empty());
        assert!(warned(&[("REDIS_URL", "redis://:pw@cache:6379")]).is_empty());
        assert!(
            warned(&[("DATABASE_URL", "postgres://app@db/app?sslmode=prefer")])
                .contains(&"database-transport")
        );
        let table = settings(&[("REDIS_URL", "redis://cache")])
            .unwrap()
            .audit()
            .to_string();
        assert!(table.contains("warn"), "{table}");
    }

    #[test]
    fn unparseable_values_are_errors_in_any_environment() {
        let err = settings(&[
            ("PORTCULLIS_ENV", "staging"),
            ("PORTCULLIS_ADDR", "localhost"),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("PORTCULLIS_TLS_CERT", "/x.pem"),
            ("PORTCULLIS_INSTANCES", "0"),
            ("PORTCULLIS_COOKIE_SECURE", "maybe"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 6, "{err}");
    }

    #[test]
    fn development_defaults_are_convenient_and_generate_a_key() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.environment, Environment::Development);
        assert!(!s.cookie_secure);
        assert_eq!(s.addr.to_string(), "127.0.0.1:8000");
        assert!(!s.has_secret_key());
        assert_eq!(s.keyring().current().len(), 32);
        // Generated once: every component of the process signs with the same key.
        let signed = s.keyring().signer(crate::keys::Purpose::CSRF).sign(b"x");
        assert!(s
            .keyring()
            .signer(crate::keys::Purpose::CSRF)
            .verify(&signed)
            .is_ok());
    }

    #[test]
    fn key_file_is_read_and_must_not_be_combined_with_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{STRONG}\n")).unwrap();
        let path = path.to_str().unwrap();
        let s = settings(&[("PORTCULLIS_SECRET_KEY_FILE", path)]).unwrap();
        assert!(s.has_secret_key());
        assert!(settings(&[
            ("PORTCULLIS_SECRET_KEY_FILE", path),
            ("PORTCULLIS_SECRET_KEY", STRONG)
        ])
        .is_err());
        assert!(settings(&[("PORTCULLIS_SECRET_KEY_FILE", "/nonexistent/key")]).is_err());
    }

    #[test]
    fn fallback_keys_verify_old_values_until_they_are_removed() {
        use crate::keys::Purpose;
        let old = crate::keys::SecretKey::generate().to_base64url();
        let new = crate::keys::SecretKey::generate().to_base64url();
        let signed = settings(&[("PORTCULLIS_SECRET_KEY", &old)])
            .unwrap()
            .keyring()
            .signer(Purpose::SESSION)
            .sign(b"session 7");
        let rotated = settings(&[
            ("PORTCULLIS_SECRET_KEY", &new),
            ("PORTCULLIS_SECRET_KEY_FALLBACKS", &old),
        ])
        .unwrap();
        assert_eq!(
            rotated
                .keyring()
                .signer(Purpose::SESSION)
                .verify(&signed)
                .unwrap(),
            b"session 7"
        );
        let retired = settings(&[("PORTCULLIS_SECRET_KEY", &new)]).unwrap();
        assert!(retired
            .keyring()
            .signer(Purpose::SESSION)
            .verify(&signed)
            .is_err());
    }

    #[test]
    fn report_table_names_every_check() {
        let table = settings(&[]).unwrap().audit().to_string();
        for name in [
            "secret-key",
            "secret-key-fallbacks",
            "secure-cookies",
            "https",
            "cors",
            "rate-limits",
            "shared-state",
            "shared-database",
        ] {
            assert!(table.contains(name), "{table}");
        }
        assert!(table.contains("fix: run `portcullis keygen`"));
    }
}
