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
//!
//! | file | what it holds |
//! |---|---|
//! | `redact.rs` | which fields are credentials, and the field formatter that blanks and escapes |
//! | `line.rs` | the layout of a line: time, level, spans, target, fields |
//! | `writer.rs` | [`init`], [`LogGuard`] and the writer thread behind the subscriber |
//! | `queue.rs` | the bounded two-lane queue between the threads that log and the writer |
//! | `time.rs` | the timestamp at the start of each line, formatted once a second |

mod line;
mod queue;
mod redact;
mod time;
mod writer;

pub use redact::is_sensitive_field;
// The CSP report tests capture log lines formatted as `init` formats them.
#[cfg(test)]
pub(crate) use redact::redacting_fields;
pub use writer::{init, LogGuard};
