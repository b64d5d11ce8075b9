//! `Settings`: every `PORTCULLIS_*` variable, parsed.

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
/// passwords inside `DATABASE_URL`, `REDIS_URL` and `PORTCULLIS_SMTP_URL`.
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
    /// `PORTCULLIS_SMTP_URL`: the SMTP server for account mail (`smtps://user:password@host`
    /// or `smtp://user:password@host?tls=required`; plain `smtp://` on loopback only).
    /// Unset means the development outbox folder `<data dir>/outbox`.
    pub smtp_url: Option<String>,
    /// `PORTCULLIS_MAIL_FROM`: the sender of account mail (default `no-reply@localhost`),
    /// an address or `Name <address>`.
    pub mail_from: String,
    // What PORTCULLIS_COOKIE_SECURE said, if anything: the audit judges what
    // production would do, where an unset value means `true`.
    pub(super) cookie_secure_setting: Option<bool>,
    pub(super) secret_key: Option<SecretKey>,
    pub(super) fallback_keys: Vec<Option<SecretKey>>,
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
            .field(
                "smtp_url",
                &self.smtp_url.as_deref().map(redact_url_password),
            )
            .field("mail_from", &self.mail_from)
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
pub(super) fn url_has_password(url: &str) -> bool {
    url_parts(url).is_some_and(|(_, userinfo, _)| match userinfo {
        Some(userinfo) => match userinfo.split_once(':') {
            Some((_, password)) => !password.is_empty(),
            None => !userinfo.is_empty(),
        },
        None => false,
    })
}

/// The host of an `http(s)://` origin, when it is a loopback name.
pub(super) fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    AllowedHosts::loopback().allows(host)
}

/// A trusted network so wide that anyone on much of the internet could forge the
/// client address and scheme through it.
pub(super) fn is_too_broad(net: &ipnet::IpNet) -> bool {
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
        let smtp_url = get("PORTCULLIS_SMTP_URL");
        let mail_from = get("PORTCULLIS_MAIL_FROM")
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "no-reply@localhost".to_owned());
        #[cfg(feature = "mail")]
        {
            if let Some(url) = &smtp_url {
                // A URL that sends in clear parses: the audit names it, and production
                // refuses it there.
                match crate::mail::SmtpUrl::parse(url) {
                    Ok(_) | Err(crate::mail::MailConfigError::PlainTextRemote { .. }) => {}
                    Err(e) => report(format!("PORTCULLIS_SMTP_URL: {e}")),
                }
            }
            if mail_from.parse::<lettre::message::Mailbox>().is_err() {
                report(format!(
                    "PORTCULLIS_MAIL_FROM={mail_from:?} is not an email address or `Name <address>`"
                ));
            }
        }

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
            smtp_url,
            mail_from,
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

    /// The mailer for account mail: SMTP when `PORTCULLIS_SMTP_URL` is set, otherwise
    /// the outbox folder `<data dir>/outbox`, where each message is an `.eml` file.
    /// Errors when the URL sends in clear beyond loopback (which the audit also
    /// names), or when the outbox folder cannot be created.
    ///
    /// ```
    /// use portcullis::config::Settings;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let data = dir.path().to_str().unwrap().to_owned();
    /// let settings = Settings::from_lookup(|name| {
    ///     (name == "PORTCULLIS_DATA_DIR").then(|| data.clone())
    /// })
    /// .unwrap();
    /// let mailer = settings.mailer().unwrap();
    /// assert_eq!(mailer.outbox_dir(), Some(dir.path().join("outbox").as_path()));
    /// ```
    #[cfg(feature = "mail")]
    pub fn mailer(&self) -> Result<crate::mail::Mailer, crate::mail::MailConfigError> {
        match &self.smtp_url {
            Some(url) => crate::mail::Mailer::smtp(url, &self.mail_from),
            None => crate::mail::Mailer::outbox(self.data_dir.join("outbox"), &self.mail_from),
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
}
