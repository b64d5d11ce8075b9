//! The audit of the state the instances keep: rate-limit mode, shared sessions and
//! database, and how Redis and PostgreSQL are reached.

use super::Check;
use crate::config::settings::{url_has_password, Settings};
use crate::config::RateLimitMode;

impl Settings {
    /// Rate limits, shared state and the stores' transports.
    pub(super) fn audit_stores(&self, checks: &mut Vec<Check>) {
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
    }
}
