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
    // Without lowercasing a copy: this runs for every field of every log line.
    let name = name.as_bytes();
    let contains = |needle: &str| {
        name.windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
    };
    SENSITIVE.iter().any(|s| contains(s)) || name.eq_ignore_ascii_case(b"key")
}

/// Keeps the log writer thread running. Hold it for as long as the program logs and
/// drop it before exiting (it is dropped at the end of `main`, but not by
/// `std::process::exit`): dropping it writes out every line still queued.
///
/// ```
/// let logs = portcullis::logging::init("info");
/// tracing::info!("written by the log thread");
/// drop(logs); // flushed
/// ```
#[must_use = "the log lines still queued are lost when the guard is not held"]
pub struct LogGuard {
    _writer: tracing_appender::non_blocking::WorkerGuard,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard").finish_non_exhaustive()
    }
}

/// Installs the redacting subscriber with `filter` (an `EnvFilter` directive such as
/// `info` or `portcullis=debug,info`). Does nothing when a subscriber is already set,
/// so tests and embedding applications may call it freely.
///
/// Lines are formatted where they are logged and written to standard error by a
/// thread of their own, so a request never waits for the terminal or the pipe
/// behind it: at one line per request, a write per request on the serving threads
/// costs more than the whole security stack. The queue does not drop lines (security
/// events must not vanish under load): when 128,000 lines are waiting, logging waits.
///
/// ```
/// let logs = portcullis::logging::init("info");
/// tracing::info!(password = "hunter2", "this line shows password=[redacted]");
/// # drop(logs);
/// ```
pub fn init(filter: &str) -> LogGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("portcullis-log")
        // Buffered: the writer thread flushes whenever its queue is empty, so a line
        // still appears at once when the server is quiet, and under load many lines
        // go out in one system call instead of one each.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(redacting_fields())
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer)
        .try_init();
    LogGuard { _writer: guard }
}

/// The field formatter that blanks credentials.
fn redacting_fields(
) -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    debug_fn(|writer, field, value| {
        let name = field.name();
        if is_sensitive_field(name) {
            write!(writer, "{name}=[redacted]")
        } else if name == "message" {
            write!(writer, "{value:?}")
        } else {
            write!(writer, "{name}={value:?}")
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut captured = self
                .0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            captured.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn credentials_never_reach_the_log_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(redacting_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("login", session_id = "s3ss10n-v4lue");
            let _guard = span.enter();
            tracing::info!(
                username = "alice",
                password = "hunter2-password",
                access_token = "eyJhbGciOiJIUzI1NiJ9.e30.sig",
                authorization = "Bearer abc.def.ghi",
                "login attempt"
            );
        });
        let line = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(line.contains("username=\"alice\""), "{line}");
        assert!(line.contains("login attempt"), "{line}");
        for secret in ["hunter2", "eyJhbGci", "Bearer abc", "s3ss10n"] {
            assert!(!line.contains(secret), "{secret} leaked: {line}");
        }
        assert!(line.contains("password=[redacted]"), "{line}");
    }

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
