//! The production audit: what `portcullis check` prints and what production refuses.

use std::fmt;

use super::settings::{is_loopback_origin, is_too_broad, url_has_password, Settings};
use super::RateLimitMode;

impl Settings {
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

    /// In production, refuses to go on when the audit fails: the error lists every
    /// failing check, one line each, for the app to print before it exits (the
    /// library never ends the process itself). Passes in development.
    ///
    /// ```
    /// use portcullis::config::Settings;
    ///
    /// let settings = Settings::from_lookup(|name| {
    ///     (name == "PORTCULLIS_ENV").then(|| "production".to_owned())
    /// })
    /// .unwrap();
    /// let refused = settings.enforce().unwrap_err();
    /// assert!(refused.to_string().contains("refusing to start in production: secret-key"));
    /// ```
    pub fn enforce(&self) -> Result<(), AuditFailed> {
        if !self.is_production() {
            return Ok(());
        }
        let report = self.audit();
        if report.passed() {
            Ok(())
        } else {
            Err(AuditFailed { report })
        }
    }
}

/// Production refused to start: the audit failed. `Display` gives one line per
/// failing check, with its fix.
#[derive(Debug, Clone)]
pub struct AuditFailed {
    report: Report,
}

impl AuditFailed {
    /// The whole audit.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

impl fmt::Display for AuditFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for check in self.report.failures() {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(
                f,
                "portcullis: refusing to start in production: {}: {} (fix: {})",
                check.name, check.detail, check.fix
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for AuditFailed {}

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
    use crate::config::{redact_url_password, ConfigError, Environment};

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
