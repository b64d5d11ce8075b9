//! The bounded queue between the threads that log and the one that writes: two lanes,
//! so that security events never wait behind ordinary lines.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

/// The target whose events keep a queue of their own.
pub(super) const SECURITY_TARGET: &str = "portcullis::security";

/// How much may wait for the log writer before lines are dropped. `Default`: 96,000
/// ordinary lines or 48 MiB, and a separate 32,000 lines or 16 MiB for security
/// events.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueLimits {
    pub(super) ordinary_lines: usize,
    pub(super) ordinary_bytes: usize,
    pub(super) security_lines: usize,
    pub(super) security_bytes: usize,
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
pub(super) struct Queue {
    lanes: Mutex<Lanes>,
    ready: Condvar,
}

impl Queue {
    /// An empty queue whose lanes hold at most `limits`.
    pub(super) fn new(limits: QueueLimits) -> Self {
        let queue = Self::default();
        {
            let mut lanes = queue.lock();
            lanes.ordinary.max_lines = limits.ordinary_lines;
            lanes.ordinary.max_bytes = limits.ordinary_bytes;
            lanes.security.max_lines = limits.security_lines;
            lanes.security.max_bytes = limits.security_bytes;
        }
        queue
    }

    /// Tells the writer to write out what is left and stop.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        // Whether it sleeps or not: the flag only spares `push` needless wake-ups.
        self.ready.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lanes> {
        // A panic while the lock was held leaves nothing half-done: lines are whole.
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn push(&self, security: bool, line: &[u8]) {
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
pub(super) struct Batch {
    ordinary: VecDeque<(u64, Vec<u8>)>,
    security: VecDeque<(u64, Vec<u8>)>,
    dropped: u64,
    dropped_security: u64,
}

impl Queue {
    /// Waits for lines (or drops to report) and takes them all; `None` once the
    /// guard is dropped and nothing is left.
    pub(super) fn next_batch(&self) -> Option<Batch> {
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
    pub(super) fn write_to(self, output: &mut impl std::io::Write) {
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
