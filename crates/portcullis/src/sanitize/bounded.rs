//! Writers that stop at a size, so a small input cannot expand into megabytes.

use std::{fmt, io};

/// A `String` that refuses to grow past `limit` bytes (for pulldown-cmark).
pub(super) struct BoundedText {
    text: String,
    limit: usize,
}

impl BoundedText {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            text: String::new(),
            limit,
        }
    }

    pub(super) fn into_string(self) -> String {
        self.text
    }
}

impl fmt::Write for BoundedText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.text.len() + s.len() > self.limit {
            return Err(fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// A byte buffer that refuses to grow past `limit` bytes (for html5ever's serializer).
pub(super) struct BoundedBytes {
    bytes: Vec<u8>,
    limit: usize,
}

impl BoundedBytes {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
        }
    }

    pub(super) fn into_string(self) -> String {
        // html5ever serialises `str`s, so the bytes are UTF-8; a lossy conversion
        // keeps this total without a panic path.
        String::from_utf8(self.bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl io::Write for BoundedBytes {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(io::Error::other("sanitised output over its limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
