//! The time at the start of each line.

use std::cell::Cell;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// `YYYY-MM-DDTHH:MM:SS`: the part of a timestamp that changes once a second.
const SECOND_LEN: usize = 19;
/// The whole timestamp: the second, `.`, six digits of microseconds and `Z`.
const STAMP_LEN: usize = SECOND_LEN + 8;

/// UTC with microseconds (`2026-12-02T02:31:15.123456Z`), exactly as
/// tracing-subscriber's default timer writes it, with the date and the time of day
/// formatted once a second on each thread rather than field by field for every line:
/// at one line per request, that formatting cost a good part of the access log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UtcMicros;

thread_local! {
    /// The last second this thread formatted, and its text.
    static LAST_SECOND: Cell<Option<(u64, [u8; SECOND_LEN])>> = const { Cell::new(None) };
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS`, for the years that take four
/// digits (the default timer writes others differently).
fn second_text(secs: u64) -> Option<[u8; SECOND_LEN]> {
    let at = chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)?;
    if !(0..=9999).contains(&chrono::Datelike::year(&at)) {
        return None;
    }
    let mut text = [0u8; SECOND_LEN];
    let mut out = Cursor(&mut text, 0);
    write!(out, "{}", at.format("%Y-%m-%dT%H:%M:%S")).ok()?;
    (out.1 == SECOND_LEN).then_some(text)
}

/// A `fmt::Write` into a fixed buffer, refusing what does not fit.
struct Cursor<'a>(&'a mut [u8], usize);

impl std::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.1 + s.len();
        let slot = self.0.get_mut(self.1..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.1 = end;
        Ok(())
    }
}

/// The timestamp of `secs` and `micros` since the epoch, when its year takes four
/// digits.
fn stamp(secs: u64, micros: u32) -> Option<[u8; STAMP_LEN]> {
    let second = LAST_SECOND.with(|last| match last.get() {
        Some((cached, text)) if cached == secs => Some(text),
        _ => {
            let text = second_text(secs)?;
            last.set(Some((secs, text)));
            Some(text)
        }
    })?;
    let mut out = [0u8; STAMP_LEN];
    out[..SECOND_LEN].copy_from_slice(&second);
    out[SECOND_LEN] = b'.';
    let mut rest = micros;
    for digit in out[SECOND_LEN + 1..STAMP_LEN - 1].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out[STAMP_LEN - 1] = b'Z';
    Some(out)
}

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| stamp(d.as_secs(), d.subsec_micros()));
        match since_epoch {
            // Digits, dashes, colons, `T`, `.` and `Z`: ASCII.
            Some(text) => w.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?),
            // A clock before 1970 or past 9999: the default timer knows how.
            None => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(secs: u64, micros: u32) -> String {
        String::from_utf8(stamp(secs, micros).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn known_instants() {
        assert_eq!(text(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(text(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(text(1_700_000_000, 123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(text(1_709_251_199, 999_999), "2024-02-29T23:59:59.999999Z");
        assert_eq!(text(4_102_444_799, 10), "2099-12-31T23:59:59.000010Z");
        // The cached second is replaced, not reused, when the second changes.
        assert_eq!(text(1_700_000_001, 0), "2023-11-14T22:13:21.000000Z");
        assert_eq!(text(1_700_000_000, 0), "2023-11-14T22:13:20.000000Z");
        assert!(stamp(253_402_300_800, 0).is_none(), "year 10000");
    }

    fn format(timer: impl FormatTime) -> String {
        let mut out = String::new();
        timer.format_time(&mut Writer::new(&mut out)).unwrap();
        out
    }

    #[test]
    fn same_text_as_the_default_timer() {
        // The default timer reads the clock itself: compare within one second.
        for _ in 0..100 {
            let before = format(tracing_subscriber::fmt::time::SystemTime);
            let ours = format(UtcMicros);
            let after = format(tracing_subscriber::fmt::time::SystemTime);
            assert_eq!(ours.len(), before.len(), "{ours} / {before}");
            if before[..SECOND_LEN] == after[..SECOND_LEN] {
                assert_eq!(ours[..SECOND_LEN], before[..SECOND_LEN]);
                assert!(before.as_str() <= ours.as_str() && ours.as_str() <= after.as_str());
                return;
            }
        }
        panic!("the clock never stayed within one second");
    }
}
