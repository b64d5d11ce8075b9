//! Structured logs that never hold a secret.
//!
//! [`init`] installs a `tracing` subscriber whose field formatter replaces the value of
//! any field named like a credential (`password`, `token`, `secret`, `cookie`,
//! `authorization`, `key` …) with `[redacted]`, whoever logs it: Portcullis, the
//! application or a dependency. Request spans (see [`crate::stack`]) carry the request
//! id, the method and the path, never the query string, the headers or the body, so
//! `Authorization`, `Cookie` and `Set-Cookie` values never reach a log line.
//!
//! ```
//! use portcullis::logging::is_sensitive_field;
//!
//! assert!(is_sensitive_field("password"));
//! assert!(is_sensitive_field("refresh_token"));
//! assert!(is_sensitive_field("Authorization"));
//! assert!(!is_sensitive_field("username"));
//! ```



use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::debug_fn;
use tracing_subscriber::EnvFilter;

const SENSITIVE: &[&str] = &[
    "password",
    "passwd",
    "token",
    "secret",
    "cookie",
    "authorization",
    "api_key",
    "apikey",
    "private_key",
    "session",
    "csrf",
];

/// Whether a field of this name must never be logged in clear.
pub fn is_sensitive_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| name.contains(s)) || name == "key"
}

/// Installs the redacting subscriber with `filter` (an `EnvFilter` directive such as
/// `info` or `portcullis=debug,info`). Does nothing when a subscriber is already set,
/// so tests and embedding applications may call it freely.
///
/// ```
/// portcullis::logging::init("info");
/// tracing::info!(password = "hunter2", "this line shows password=[redacted]");
/// ```
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fields = debug_fn(|writer, field, value| {
        let name = field.name();
        if is_sensitive_field(name) {
            write!(writer, "{name}=[redacted]")
        } else if name == "message" {
            write!(writer, "{value:?}")
        } else {
            write!(writer, "{name}={value:?}")
        }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(fields)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_fields_are_sensitive_and_ordinary_ones_are_not() {
        for name in [
            "password",
            "new_password",
            "access_token",
            "SECRET_KEY",
            "set_cookie",
            "authorization",
            "key",
            "session_id",
            "csrf_token",
        ] {
            assert!(is_sensitive_field(name), "{name}");
        }
        for name in ["username", "path", "status", "request_id", "latency_ms"] {
            assert!(!is_sensitive_field(name), "{name}");
        }
    }
}
