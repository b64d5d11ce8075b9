//! Which fields are credentials, and the field formatter that blanks them and escapes
//! whatever could break a log line.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

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

/// The letters a word of [`SENSITIVE`] starts with.
const FIRST_LETTERS: &[u8] = b"acpst";

/// Whether a field of this name must never be logged in clear.
pub fn is_sensitive_field(name: &str) -> bool {
    // Without lowercasing a copy, and comparing the words only where one could start:
    // this runs for every field of every log line.
    let name = name.as_bytes();
    let found = (0..name.len()).any(|at| {
        let first = name[at].to_ascii_lowercase();
        FIRST_LETTERS.contains(&first)
            && SENSITIVE.iter().any(|word| {
                word.as_bytes()[0] == first
                    && name
                        .get(at..at + word.len())
                        .is_some_and(|window| window.eq_ignore_ascii_case(word.as_bytes()))
            })
    });
    found || name.eq_ignore_ascii_case(b"key")
}

/// Slots of the per-thread memory of [`is_sensitive_field`]'s verdicts, in pairs.
const VERDICT_SLOTS: usize = 128;

thread_local! {
    /// Verdicts on field names, by the address and length of the name. A field's name
    /// is a `&'static str` fixed by its call site, so an address names one text for
    /// the life of the process; the same few names (`id`, `method`, `path`,
    /// `client_ip`, `message`, …) come back on every line.
    static VERDICTS: [std::cell::Cell<(usize, usize, bool)>; VERDICT_SLOTS] =
        const { [const { std::cell::Cell::new((0, 0, false)) }; VERDICT_SLOTS] };
}

/// [`is_sensitive_field`] for the name of a call site's field, remembered: the check
/// runs for every field of every line, the memory costs a comparison or two.
///
/// A name may sit in either slot of its pair, the one found last in the first: two
/// names of one line that fall in the same pair both stay remembered (with one slot
/// per name, two such names pushed each other out on every line).
fn is_sensitive_name(name: &'static str) -> bool {
    let address = name.as_ptr() as usize;
    let first = verdict_pair(name);
    VERDICTS.with(|verdicts| {
        let is_name = |slot: usize| {
            let (known, length, verdict) = verdicts[slot].get();
            (known == address && length == name.len()).then_some(verdict)
        };
        if let Some(verdict) = is_name(first) {
            return verdict;
        }
        if let Some(verdict) = is_name(first + 1) {
            verdicts[first].swap(&verdicts[first + 1]);
            return verdict;
        }
        let verdict = is_sensitive_field(name);
        verdicts[first + 1].set(verdicts[first].get());
        verdicts[first].set((address, name.len(), verdict));
        verdict
    })
}

/// The first slot of the pair where `name`'s verdict is kept.
fn verdict_pair(name: &'static str) -> usize {
    let address = name.as_ptr() as usize;
    let mixed = ((address ^ name.len()) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The top bits of the product, which every bit of the address reaches.
    ((mixed >> 32) as usize % (VERDICT_SLOTS / 2)) * 2
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
        // Printable ASCII, what nearly every value is, needs no look at characters.
        if text.bytes().all(|b| matches!(b, b' '..=b'~')) {
            return self.0.write_str(text);
        }
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
///
/// Fields are separated by a space and written `name=value` (the message alone,
/// first), as tracing-subscriber's own formatter writes them. Its building blocks
/// (a formatting closure in a delimiting wrapper) cost a formatting call for each
/// name, value and separator, and turn numbers into `Debug` values; this visitor
/// writes names, separators and numbers straight to the line.
pub(crate) fn redacting_fields() -> RedactingFields {
    RedactingFields
}

/// See [`redacting_fields`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RedactingFields;

impl<'a> MakeVisitor<Writer<'a>> for RedactingFields {
    type Visitor = RedactingVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        RedactingVisitor {
            writer: target,
            first: true,
            result: Ok(()),
        }
    }
}

/// One line's (or one span's) fields being written.
pub(crate) struct RedactingVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: std::fmt::Result,
}

impl std::fmt::Debug for RedactingVisitor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactingVisitor").finish_non_exhaustive()
    }
}

/// What follows a field's name.
enum FieldValue<'v> {
    Debug(&'v dyn std::fmt::Debug),
    Unsigned(u64),
    Signed(i64),
    Bool(bool),
}

impl RedactingVisitor<'_> {
    fn write(&mut self, field: &Field, value: FieldValue<'_>) {
        if self.result.is_ok() {
            self.result = self.try_write(field, value);
        }
    }

    fn try_write(&mut self, field: &Field, value: FieldValue<'_>) -> std::fmt::Result {
        let name = field.name();
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        let mut writer = Escaping(&mut self.writer);
        if is_sensitive_name(name) {
            writer.write_str(name)?;
            return writer.0.write_str("=[redacted]");
        }
        if name != "message" {
            writer.write_str(name)?;
            writer.0.write_char('=')?;
        }
        match value {
            FieldValue::Debug(value) => write!(writer, "{value:?}"),
            // Digits and words: nothing to escape.
            FieldValue::Unsigned(value) => write!(writer.0, "{value}"),
            FieldValue::Signed(value) => write!(writer.0, "{value}"),
            FieldValue::Bool(value) => writer.0.write_str(if value { "true" } else { "false" }),
        }
    }
}

impl Visit for RedactingVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.write(field, FieldValue::Debug(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, FieldValue::Unsigned(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, FieldValue::Signed(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, FieldValue::Bool(value));
    }
}

impl VisitOutput<std::fmt::Result> for RedactingVisitor<'_> {
    fn finish(self) -> std::fmt::Result {
        self.result
    }
}

impl VisitFmt for RedactingVisitor<'_> {
    fn writer(&mut self) -> &mut dyn std::fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::CapturedLog;

    #[test]
    fn credentials_never_reach_the_log_line() {
        let captured = CapturedLog::default();
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
        let line = captured.text();
        assert!(line.contains("username=\"alice\""), "{line}");
        assert!(line.contains("login attempt"), "{line}");
        for secret in ["hunter2", "eyJhbGci", "Bearer abc", "s3ss10n"] {
            assert!(!line.contains(secret), "{secret} leaked: {line}");
        }
        assert!(line.contains("password=[redacted]"), "{line}");
    }

    #[test]
    fn every_word_starts_with_one_of_the_first_letters() {
        for word in SENSITIVE {
            assert!(FIRST_LETTERS.contains(&word.as_bytes()[0]), "{word}");
        }
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
            "X_Api_Key",
            "userPassword",
        ] {
            assert!(is_sensitive_field(name), "{name}");
        }
        for name in [
            "username",
            "path",
            "status",
            "request_id",
            "latency_ms",
            "client_ip",
            "message",
            "tok",
        ] {
            assert!(!is_sensitive_field(name), "{name}");
        }
    }

    /// The remembered verdicts are keyed by a name's address: a name that is the start
    /// of another (same address, another length) and more names than slots must each
    /// keep their own verdict.
    #[test]
    fn remembered_verdicts_never_mix_names() {
        const KEYBOARD: &str = "keyboard";
        let key: &'static str = &KEYBOARD[..3];
        for _ in 0..3 {
            assert!(is_sensitive_name(key));
            assert!(!is_sensitive_name(KEYBOARD));
        }
        let names: Vec<&'static str> = (0..300)
            .map(|i| {
                let name = if i % 2 == 0 {
                    format!("field_{i}")
                } else {
                    format!("secret_{i}")
                };
                &*Box::leak(name.into_boxed_str())
            })
            .collect();
        for _ in 0..2 {
            for (i, name) in names.iter().enumerate() {
                assert_eq!(is_sensitive_name(name), i % 2 == 1, "{name}");
            }
        }
    }

    /// Two names that fall in one pair, used in turn as on every line, both stay
    /// remembered: neither pushes the other out.
    #[test]
    fn two_names_of_one_pair_both_stay_remembered() {
        let mut seen = std::collections::HashMap::new();
        let (a, b) = (0..10_000)
            .find_map(|i| {
                let name: &'static str = Box::leak(format!("pair_{i}").into_boxed_str());
                seen.insert(verdict_pair(name), name)
                    .map(|earlier| (earlier, name))
            })
            .expect("two of 10,000 names share one of 64 pairs");
        let pair = verdict_pair(a);
        for _ in 0..3 {
            assert!(!is_sensitive_name(a));
            assert!(!is_sensitive_name(b));
        }
        let remembered: Vec<usize> =
            VERDICTS.with(|verdicts| [pair, pair + 1].map(|slot| verdicts[slot].get().0).to_vec());
        for name in [a, b] {
            assert!(remembered.contains(&(name.as_ptr() as usize)), "{name}");
        }
    }

    #[test]
    fn control_characters_are_escaped_whatever_the_sigil() {
        let captured = CapturedLog::default();
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
        let out = captured.text();
        assert_eq!(out.matches('\n').count(), 1, "{out}");
        assert!(out.ends_with('\n'));
        let body = &out[..out.len() - 1];
        assert!(!body.chars().any(must_escape), "{out:?}");
        // Escaped, not removed: the value is still there to read.
        assert_eq!(body.matches("\\n2026-12-01").count(), 3, "{out}");
        assert!(body.contains("\\u{1b}[31mred"), "{out}");
        assert!(body.contains("\\u{2028}y\\u{202e}z"), "{out}");
    }
}
