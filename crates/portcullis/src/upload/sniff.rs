//! The type of an upload, decided by its bytes: magic numbers through `infer`, and a
//! text sniff for the markup and script formats `infer` cannot see.

/// The types an upload may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// GIF image.
    Gif,
    /// WebP image.
    Webp,
    /// PDF document.
    Pdf,
}

impl FileKind {
    /// The `Content-Type` it is served with.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Pdf => "application/pdf",
        }
    }

    /// The extensions a file of this kind may have (lower case).
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::Png => &["png"],
            Self::Jpeg => &["jpg", "jpeg"],
            Self::Gif => &["gif"],
            Self::Webp => &["webp"],
            Self::Pdf => &["pdf"],
        }
    }

    /// The kind stored under `mime`, for files read back from storage.
    pub fn from_mime(mime: &str) -> Option<Self> {
        [Self::Png, Self::Jpeg, Self::Gif, Self::Webp, Self::Pdf]
            .into_iter()
            .find(|k| k.mime() == mime)
    }
}

/// Markers of markup and script. In a real image or PDF they do not occur by chance;
/// in a polyglot they are the payload.
pub(super) const ACTIVE_MARKERS: &[&[u8]] = &[
    b"<script",
    b"<html",
    b"<svg",
    b"<iframe",
    b"<body",
    b"<!doctype",
    b"<?php",
    b"<?xml",
    b"javascript:",
    b"onerror=",
    b"onload=",
    b"<object",
    b"<embed",
];

/// Whether the lower-cased `haystack` contains any of the (lower-case) `needles`: one
/// pass of SIMD search per needle, fast enough for a 5 MiB file on every upload.
pub(super) fn contains_any(lowercase_haystack: &[u8], needles: &[&[u8]]) -> bool {
    needles
        .iter()
        .any(|needle| memchr::memmem::find(lowercase_haystack, needle).is_some())
}

/// Whether `bytes` start like a text format (SVG, HTML, XML, JavaScript, JSON).
pub(super) fn looks_like_text_format(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let trimmed: &[u8] = {
        let start = head
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(head.len());
        &head[start..]
    };
    trimmed.starts_with(b"<")
        || trimmed.starts_with(b"{")
        || contains_any(&head.to_ascii_lowercase(), ACTIVE_MARKERS)
        || [
            &b"function"[..],
            b"var ",
            b"let ",
            b"const ",
            b"import ",
            b"alert(",
        ]
        .iter()
        .any(|m| trimmed.len() >= m.len() && trimmed[..m.len()].eq_ignore_ascii_case(m))
}
