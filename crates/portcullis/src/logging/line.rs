//! The layout of a line: the time, the level, the spans with their fields, the
//! target, then the event's fields.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, FormatEvent, FormatFields, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::time::UtcMicros;

/// Writes each line as tracing-subscriber's default format (`Full`) writes it without
/// colours, character for character, but by hand: `Full` passes every piece (the
/// level, each span's name, each brace and colon) through a style that paints
/// nothing, each a formatting call of its own, and at one line per request that was
/// a tenth of the stack's work on a route that does nothing (`bench/instructions.sh`).
/// Coloured lines for a terminal, and records of the `log` crate (whose target is
/// among their fields), still go through `Full`.
#[derive(Debug)]
pub(crate) struct PlainLines {
    full: Format<Full, UtcMicros>,
}

impl PlainLines {
    pub(crate) fn new() -> Self {
        Self {
            full: tracing_subscriber::fmt::format().with_timer(UtcMicros),
        }
    }
}

/// The level as `Full` writes it: right-aligned in five characters, then a space.
fn level_text(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE ",
        Level::DEBUG => "DEBUG ",
        Level::INFO => " INFO ",
        Level::WARN => " WARN ",
        Level::ERROR => "ERROR ",
    }
}

impl<S, N> FormatEvent<S, N> for PlainLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if writer.has_ansi_escapes() || meta.target() == "log" {
            return self.full.format_event(ctx, writer, event);
        }
        if UtcMicros.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(level_text(*meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::redact::redacting_fields;
    use crate::test_support::CapturedLog;

    /// The same events through `Full` and through [`PlainLines`]: the same text,
    /// but for the microseconds of the time.
    #[test]
    fn lines_are_those_of_the_default_format() {
        let capture = |plain: bool| {
            let captured = CapturedLog::default();
            let writer = captured.clone();
            let builder = tracing_subscriber::fmt()
                .fmt_fields(redacting_fields())
                .with_timer(UtcMicros)
                .with_ansi(false)
                .with_max_level(Level::TRACE)
                .with_writer(move || writer.clone());
            let events = || {
                let outer = tracing::info_span!("request", id = "abc", path = %"/x");
                let _outer = outer.enter();
                let empty = tracing::warn_span!("empty");
                let _empty = empty.enter();
                tracing::error!(target: "portcullis::access", status = 500u16, "response");
                tracing::trace!(n = -3i64, ok = true, "a \"quoted\"\nmessage");
                tracing::debug!(password = "hunter2", "redacted");
            };
            if plain {
                tracing::subscriber::with_default(
                    builder.event_format(PlainLines::new()).finish(),
                    events,
                );
            } else {
                tracing::subscriber::with_default(builder.finish(), events);
            }
            let out = captured.text();
            // The time differs between the runs; what follows it must not.
            out.lines()
                .map(|line| line.split_once(' ').unwrap().1.to_owned())
                .collect::<Vec<_>>()
        };
        let full = capture(false);
        assert_eq!(full.len(), 3, "{full:?}");
        assert_eq!(capture(true), full);
        assert!(full[0].starts_with(
            "ERROR request{id=\"abc\" path=/x}:empty: portcullis::access: response status=500"
        ));
        assert!(
            full[1].ends_with(": a \"quoted\"\\nmessage n=-3 ok=true"),
            "{}",
            full[1]
        );
        assert!(
            full[2].ends_with(": redacted password=[redacted]"),
            "{}",
            full[2]
        );
    }
}
