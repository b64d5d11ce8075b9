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

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

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
/// `std::process::exit`): dropping it writes out every line still queued (waiting at
/// most a second for a stalled output).
///
/// ```
/// let logs = portcullis::logging::init("info");
/// tracing::info!("written by the log thread");
/// drop(logs); // flushed
/// ```
#[must_use = "the log lines still queued are lost when the guard is not held"]
pub struct LogGuard {
    queue: Arc<Queue>,
    done: Option<mpsc::Receiver<()>>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard").finish_non_exhaustive()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        // Whether it sleeps or not: the flag only spares `push` needless wake-ups.
        self.queue.ready.notify_one();
        if let Some(done) = self.done.take() {
            // Bounded, as tracing-appender's guard: a stalled pipe must not hang exit.
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// Installs the redacting subscriber with `filter` (an `EnvFilter` directive such as
/// `info` or `portcullis=debug,info`). Does nothing when a subscriber is already set,
/// so tests and embedding applications may call it freely.
///
/// Lines are formatted where they are logged and written to standard error by a
/// thread of their own, so a request never waits for the terminal or the pipe
/// behind it: at one line per request, a write per request on the serving threads
/// costs more than the whole security stack.
///
/// Logging never blocks either: when the writer falls behind (a stalled pipe, a
/// flood of lines) and its queue is full, new lines are dropped, counted, and the
/// count written out as a `portcullis::security` warning as soon as the writer
/// catches up. Security events (target `portcullis::security`) have a queue of their
/// own, so a flood of ordinary lines never crowds them out.
///
/// ```
/// let logs = portcullis::logging::init("info");
/// tracing::info!(password = "hunter2", "this line shows password=[redacted]");
/// # drop(logs);
/// ```
pub fn init(filter: &str) -> LogGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = non_blocking(
        // Buffered: the writer thread flushes after each batch of queued lines, so a
        // line still appears at once when the server is quiet, and under load many
        // lines go out in one system call instead of one each.
        std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr()),
        QueueLimits::default(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(redacting_fields())
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer)
        .try_init();
    guard
}

/// Whether `c` could end a log line, forge one or disguise one: every control
/// character (C0, DEL, C1: newlines, carriage returns, terminal escapes), the Unicode
/// line and paragraph separators, and the bidirectional overrides and isolates that
/// make a terminal show text in another order than it is written.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Passes text through, with [`must_escape`] characters written as `\n`, `\r`,
/// `\t` or `\u{…}`: a field value prints on its line, whatever it holds.
struct Escaping<W>(W);

impl<W: std::fmt::Write> std::fmt::Write for Escaping<W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let mut clean_from = 0;
        for (at, c) in text.char_indices() {
            if !must_escape(c) {
                continue;
            }
            self.0.write_str(&text[clean_from..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            clean_from = at + c.len_utf8();
        }
        self.0.write_str(&text[clean_from..])
    }
}

/// The field formatter that blanks credentials and escapes what could break a line.
///
/// Every value goes through [`Escaping`], whether it was logged with `?` (`Debug`,
/// which escapes newlines in strings but not in every type) or `%` (`Display`,
/// which escapes nothing), and so does the message: values come from clients (a
/// path, a CSP report, a username), and a newline or a terminal escape in one must
/// not write a line of its own.
pub(crate) fn redacting_fields(
) -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    debug_fn(|writer, field, value| {
        let name = field.name();
        let mut writer = Escaping(writer);
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

/// The target whose events keep a queue of their own.
const SECURITY_TARGET: &str = "portcullis::security";

/// How much may wait for the log writer before lines are dropped. `Default`: 96,000
/// ordinary lines or 48 MiB, and a separate 32,000 lines or 16 MiB for security
/// events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    ordinary_lines: usize,
    ordinary_bytes: usize,
    security_lines: usize,
    security_bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            ordinary_lines: 96_000,
            ordinary_bytes: 48 * 1024 * 1024,
            security_lines: 32_000,
            security_bytes: 16 * 1024 * 1024,
        }
    }
}

/// One queue of lines with its own bounds.
#[derive(Debug, Default)]
struct Lane {
    lines: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
    dropped: u64,
}

impl Lane {
    fn push(&mut self, seq: u64, line: &[u8]) {
        if self.lines.len() >= self.max_lines || self.bytes + line.len() > self.max_bytes {
            self.dropped += 1;
        } else {
            self.bytes += line.len();
            self.lines.push_back((seq, line.to_vec()));
        }
    }

    fn take(&mut self) -> VecDeque<(u64, Vec<u8>)> {
        self.bytes = 0;
        std::mem::take(&mut self.lines)
    }
}

#[derive(Debug, Default)]
struct Lanes {
    ordinary: Lane,
    security: Lane,
    next_seq: u64,
    closed: bool,
    /// The writer thread sleeps on the condition variable: the next line wakes it.
    /// (Waking it for every line would cost a system call per line.)
    writer_waiting: bool,
}

/// The queue between the threads that log and the one that writes.
///
/// Written here rather than taken from tracing-appender: its `NonBlocking` is one
/// queue that either blocks the logging thread when full (a Tokio worker stalled
/// behind a pipe) or drops lines silently but for a counter nobody reads, and it
/// cannot tell a security event from any other line. This one never blocks, keeps
/// security events in a lane of their own, and writes how many lines it dropped.
#[derive(Debug, Default)]
struct Queue {
    lanes: Mutex<Lanes>,
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lanes> {
        // A panic while the lock was held leaves nothing half-done: lines are whole.
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, security: bool, line: &[u8]) {
        let mut lanes = self.lock();
        let seq = lanes.next_seq;
        lanes.next_seq += 1;
        let lane = if security {
            &mut lanes.security
        } else {
            &mut lanes.ordinary
        };
        lane.push(seq, line);
        let wake = std::mem::take(&mut lanes.writer_waiting);
        drop(lanes);
        if wake {
            self.ready.notify_one();
        }
    }
}

/// What the writer thread takes from the queue at once.
struct Batch {
    ordinary: VecDeque<(u64, Vec<u8>)>,
    security: VecDeque<(u64, Vec<u8>)>,
    dropped: u64,
    dropped_security: u64,
}

impl Queue {
    /// Waits for lines (or drops to report) and takes them all; `None` once the
    /// guard is dropped and nothing is left.
    fn next_batch(&self) -> Option<Batch> {
        let mut lanes = self.lock();
        loop {
            let idle = lanes.ordinary.lines.is_empty()
                && lanes.security.lines.is_empty()
                && lanes.ordinary.dropped == 0
                && lanes.security.dropped == 0;
            if !idle {
                break;
            }
            if lanes.closed {
                return None;
            }
            lanes.writer_waiting = true;
            lanes = self
                .ready
                .wait(lanes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Some(Batch {
            ordinary: lanes.ordinary.take(),
            security: lanes.security.take(),
            dropped: std::mem::take(&mut lanes.ordinary.dropped),
            dropped_security: std::mem::take(&mut lanes.security.dropped),
        })
    }
}

impl Batch {
    /// Writes both lanes in the order the lines were logged, then how many were
    /// dropped, then flushes. Write errors are ignored: there is nowhere to log them.
    fn write_to(self, output: &mut impl std::io::Write) {
        let mut ordinary = self.ordinary.into_iter().peekable();
        let mut security = self.security.into_iter().peekable();
        loop {
            let next = match (ordinary.peek(), security.peek()) {
                (Some((a, _)), Some((b, _))) if a < b => ordinary.next(),
                (Some(_), None) => ordinary.next(),
                _ => security.next(),
            };
            let Some((_, line)) = next else { break };
            let _ = output.write_all(&line);
        }
        let dropped = self.dropped + self.dropped_security;
        if dropped > 0 {
            let _ = writeln!(
                output,
                "{}  WARN {SECURITY_TARGET}: log lines dropped: the log writer fell behind \
                 event=\"log_lines_dropped\" dropped={dropped} dropped_security={}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
                self.dropped_security,
            );
        }
        let _ = output.flush();
    }
}

/// The `MakeWriter` of the queue: each event's line goes to its lane.
#[derive(Debug, Clone)]
pub(crate) struct QueueWriter {
    queue: Arc<Queue>,
}

/// One event's writer.
#[derive(Debug)]
pub(crate) struct QueueLine<'a> {
    queue: &'a Queue,
    security: bool,
}

impl std::io::Write for QueueLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes each event as one call: one call, one queued line.
        self.queue.push(self.security, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QueueWriter {
    type Writer = QueueLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        QueueLine {
            queue: &self.queue,
            security: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        let target = meta.target();
        let security = target
            .strip_prefix(SECURITY_TARGET)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        QueueLine {
            queue: &self.queue,
            security,
        }
    }
}

/// A writer thread draining a bounded queue into `output`: the `MakeWriter` to log
/// with, and the guard that flushes on drop.
pub(crate) fn non_blocking<W: std::io::Write + Send + 'static>(
    mut output: W,
    limits: QueueLimits,
) -> (QueueWriter, LogGuard) {
    let queue = Arc::new(Queue::default());
    {
        let mut lanes = queue.lock();
        lanes.ordinary.max_lines = limits.ordinary_lines;
        lanes.ordinary.max_bytes = limits.ordinary_bytes;
        lanes.security.max_lines = limits.security_lines;
        lanes.security.max_bytes = limits.security_bytes;
    }
    let (done_tx, done) = mpsc::channel();
    let worker = queue.clone();
    let spawned = std::thread::Builder::new()
        .name("portcullis-log".into())
        .spawn(move || {
            while let Some(batch) = worker.next_batch() {
                batch.write_to(&mut output);
            }
            let _ = done_tx.send(());
        });
    let done = match spawned {
        Ok(_) => Some(done),
        Err(error) => {
            // No thread, no logs: say so once, where someone may see it.
            eprintln!("portcullis: could not start the log writer thread: {error}");
            None
        }
    };
    (
        QueueWriter {
            queue: queue.clone(),
        },
        LogGuard { queue, done },
    )
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

    #[test]
    fn control_characters_are_escaped_whatever_the_sigil() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(redacting_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let forged = "https://a.example/\n2026-12-01T00:00:00.000000Z  WARN \
                      portcullis::security: forged\r\u{1b}[2K\u{1b}[31mred\u{85}x\u{2028}y\u{202e}z";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(display = %forged, debug = ?forged, "message {forged}");
        });
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.matches('\n').count(), 1, "{out}");
        assert!(out.ends_with('\n'));
        let body = &out[..out.len() - 1];
        assert!(!body.chars().any(must_escape), "{out:?}");
        // Escaped, not removed: the value is still there to read.
        assert_eq!(body.matches("\\n2026-12-01").count(), 3, "{out}");
        assert!(body.contains("\\u{1b}[31mred"), "{out}");
        assert!(body.contains("\\u{2028}y\\u{202e}z"), "{out}");
    }

    #[test]
    fn lines_of_both_lanes_come_out_in_the_order_they_were_logged() {
        let captured = Captured::default();
        let (writer, guard) = non_blocking(captured.clone(), QueueLimits::default());
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(redacting_fields())
            .with_ansi(false)
            .with_writer(writer)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..1000 {
                if i % 7 == 0 {
                    tracing::warn!(target: "portcullis::security", "line {i}");
                } else {
                    tracing::info!("line {i}");
                }
            }
        });
        drop(guard);
        let out = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let numbers: Vec<usize> = out
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(numbers, (0..1000).collect::<Vec<_>>());
        assert!(!out.contains("log_lines_dropped"));
    }

    /// An output that blocks until the test opens it, saying when a write began.
    struct Stalled {
        started: mpsc::Sender<()>,
        gate: Arc<(Mutex<bool>, Condvar)>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl std::io::Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.started.send(());
            let (open, opened) = &*self.gate;
            let mut open = open.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            while !*open {
                open = opened
                    .wait(open)
                    .map_err(|_| std::io::Error::other("poisoned"))?;
            }
            self.out
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_ordinary_lines_never_blocks_and_keeps_security_events() {
        let (started_tx, started) = mpsc::channel();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Arc::new(Mutex::new(Vec::new()));
        let limits = QueueLimits {
            ordinary_lines: 10,
            security_lines: 10,
            ..QueueLimits::default()
        };
        let (writer, guard) = non_blocking(
            Stalled {
                started: started_tx,
                gate: gate.clone(),
                out: out.clone(),
            },
            limits,
        );
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .fmt_fields(redacting_fields())
                .with_ansi(false)
                .with_writer(writer)
                .finish(),
        );
        // The writer takes the first line and stalls in its output.
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("ordinary 0"));
        started
            .recv_timeout(Duration::from_secs(60))
            .expect("the writer thread took the first line");

        // A flood while the output is stalled: every call returns.
        let (returned_tx, returned) = mpsc::channel();
        let flood = dispatch.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&flood, || {
                for i in 1..=50 {
                    tracing::info!("ordinary {i}");
                    if i % 10 == 0 {
                        tracing::warn!(target: "portcullis::security", "security {i}");
                    }
                }
            });
            let _ = returned_tx.send(());
        });
        returned
            .recv_timeout(Duration::from_secs(60))
            .expect("logging returned while the output was stalled");

        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        drop(guard);
        let text = loop {
            let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
            if text.contains("log_lines_dropped") {
                break text;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The first line and the ten queued ones; the forty others dropped, counted.
        let ordinary = text.matches(" ordinary ").count();
        assert_eq!(ordinary, 11, "{text}");
        assert!(text.contains("ordinary 10\n") && !text.contains("ordinary 11\n"));
        assert!(text.contains("dropped=40 dropped_security=0"), "{text}");
        for i in [10, 20, 30, 40, 50] {
            assert!(
                text.contains(&format!("security {i}\n")),
                "{i} lost: {text}"
            );
        }
    }
}
