//! The scanner that finds the first part of a multipart body as it arrives, looking at
//! each byte a fixed number of times however the body is cut into frames.

use memchr::memmem::Finder;

use super::multipart::is_field;

#[cfg(test)]
thread_local! {
    /// Bytes examined by every scanner on this thread: what a test serving HTTP on a
    /// current-thread runtime reads after a request.
    pub(super) static EXAMINED_ON_THIS_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// What the scanner is looking for next.
#[derive(Debug)]
enum Phase {
    /// The first `--boundary`.
    Delimiter,
    /// The blank line that ends the first part's headers.
    Headers,
    /// `\r\n--boundary` after the field's value, which starts at `start`.
    Value { start: usize },
    /// Decided: the field's value, or `None` when the first part is something else
    /// or the body ended first.
    Done(Option<String>),
}

/// Finds the value of `field` when it is the first part of a multipart body, reading
/// the body as it arrives, in frames of any size, in time linear in the bytes read.
#[derive(Debug)]
pub(crate) struct FirstPartScanner {
    field: &'static str,
    delimiter: Finder<'static>,
    value_end: Finder<'static>,
    headers_end: Finder<'static>,
    /// Everything read so far, handed back to the caller afterwards.
    buffer: Vec<u8>,
    /// Bytes past this are never searched.
    limit: usize,
    phase: Phase,
    /// Where what the current phase looks for may start.
    from: usize,
    /// How far the last search of this phase that found nothing reached.
    searched_to: usize,
    /// Bytes looked at by the searches, to prove the cost linear.
    examined: usize,
}

impl FirstPartScanner {
    /// A scanner for `field` in a body with this `boundary` (from
    /// [`form_data_boundary`]), searching at most the first `limit` bytes.
    pub(crate) fn new(boundary: &str, field: &'static str, limit: usize) -> Self {
        let delimiter = format!("--{boundary}");
        Self {
            field,
            value_end: Finder::new(format!("\r\n{delimiter}").as_bytes()).into_owned(),
            delimiter: Finder::new(delimiter.as_bytes()).into_owned(),
            headers_end: Finder::new(b"\r\n\r\n").into_owned(),
            buffer: Vec::new(),
            limit,
            phase: Phase::Delimiter,
            from: 0,
            searched_to: 0,
            examined: 0,
        }
    }

    /// Adds the next bytes of the body. `true` once the answer is known.
    pub(crate) fn push(&mut self, data: &[u8]) -> bool {
        self.buffer.extend_from_slice(data);
        self.advance(false);
        self.is_decided()
    }

    /// Whether the answer is known.
    pub(crate) fn is_decided(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
    }

    /// Whether as much as may be searched has been read.
    pub(crate) fn is_full(&self) -> bool {
        self.buffer.len() >= self.limit
    }

    /// The body ended, or the limit was reached: decides with what was read.
    pub(crate) fn finish(&mut self) {
        self.advance(true);
        if !self.is_decided() {
            self.phase = Phase::Done(None);
        }
    }

    /// The field's value, once decided (after [`Self::finish`] at the latest).
    pub(crate) fn value(&self) -> Option<&str> {
        match &self.phase {
            Phase::Done(value) => value.as_deref(),
            _ => None,
        }
    }

    /// The bytes read, to hand on.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// How many bytes the searches have looked at so far.
    #[cfg(test)]
    pub(crate) fn bytes_examined(&self) -> usize {
        self.examined
    }

    fn count_examined(&mut self, bytes: usize) {
        self.examined += bytes;
        #[cfg(test)]
        EXAMINED_ON_THIS_THREAD.with(|total| total.set(total.get() + bytes));
    }

    /// Runs the searches the bytes read allow. `at_end`: no more bytes will come, so
    /// search what is there even if it is short.
    fn advance(&mut self, at_end: bool) {
        loop {
            let finder = match self.phase {
                Phase::Delimiter => &self.delimiter,
                Phase::Headers => &self.headers_end,
                Phase::Value { .. } => &self.value_end,
                Phase::Done(_) => return,
            };
            let needle = finder.needle().len();
            let end = self.buffer.len().min(self.limit);
            // Fewer new bytes than the needle: searching now would spend more on the
            // overlap than on what is new; wait for more (one-byte frames).
            if end <= self.searched_to || (!at_end && end - self.searched_to < needle) {
                return;
            }
            let start = self.from.max(self.searched_to.saturating_sub(needle - 1));
            let Some(found) = finder.find(&self.buffer[start..end]) else {
                self.count_examined(end - start);
                self.searched_to = end;
                return;
            };
            self.count_examined(found + needle);
            let at = start + found;
            let after = at + needle;
            self.phase = match self.phase {
                Phase::Delimiter => Phase::Headers,
                Phase::Headers => {
                    if is_field(&self.buffer[self.from..at], self.field) {
                        Phase::Value { start: after }
                    } else {
                        Phase::Done(None)
                    }
                }
                Phase::Value { start } => {
                    Phase::Done(String::from_utf8(self.buffer[start..at].to_vec()).ok())
                }
                Phase::Done(_) => unreachable!("returned above"),
            };
            self.from = after;
            self.searched_to = after;
        }
    }
}
