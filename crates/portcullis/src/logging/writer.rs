//! Installing the subscriber, and the thread that writes its lines out.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::line::PlainLines;
use super::queue::{Queue, QueueLimits, SECURITY_TARGET};
use super::redact::redacting_fields;

/// How long the writer rests after writing a batch out, so that the lines logged
/// meanwhile go out together.
const BATCH_INTERVAL: Duration = Duration::from_millis(2);

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
        self.queue.close();
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
        .event_format(PlainLines::new())
        .try_init();
    guard
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
    let queue = Arc::new(Queue::new(limits));
    let (done_tx, done) = mpsc::channel();
    let worker = queue.clone();
    let spawned = std::thread::Builder::new()
        .name("portcullis-log".into())
        .spawn(move || {
            while let Some(batch) = worker.next_batch() {
                batch.write_to(&mut output);
                // Under load, lines arrive faster than they are written out: waking
                // for each few of them cost a context switch per request (20,000 a
                // second at 46,000 requests a second), which preempted the serving
                // threads on a small machine. Resting a moment after each batch lets
                // the next one gather: at most `BATCH_INTERVAL` of delay, at most a
                // few hundred wake-ups a second. A lone line still goes out at once,
                // since the rest comes after writing.
                std::thread::sleep(BATCH_INTERVAL);
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
    use crate::test_support::CapturedLog;
    use std::sync::{Arc, Condvar, Mutex};

    #[test]
    fn lines_of_both_lanes_come_out_in_the_order_they_were_logged() {
        let captured = CapturedLog::default();
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
        let out = captured.text();
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
