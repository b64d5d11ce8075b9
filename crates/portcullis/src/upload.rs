//! File uploads: names, types decided by the bytes, limits, metadata, storage, serving.
//!
//! What the Flask guides ask users to assemble by hand (allowed extensions,
//! `secure_filename`, a non-public folder) and what they leave out:
//!
//! - [`secure_filename`] is werkzeug's, to the character (POSIX); [`display_name`] adds
//!   what werkzeug leaves to the caller: a length cap that keeps the extension, Windows
//!   device names made harmless on every platform, and an error for names that come
//!   out empty. The secured name is display metadata only: stored files get random
//!   128-bit names ([`LocalStorage`]).
//! - [`UploadPolicy::check`] decides the type by the bytes (magic numbers, `infer`)
//!   **and** the extension, which must agree; text formats that `infer` cannot see
//!   (SVG, HTML, XML, JavaScript) are caught by a text sniff, and polyglots (a valid
//!   image header followed by markup or script) are refused. PDFs with active content
//!   (script, automatic actions, launching programs, form submission, embedded files)
//!   are refused however their names are escaped, in compressed object streams too;
//!   those are inflated within a bound, and a PDF that cannot be inspected within it
//!   is refused ([`UploadError::PdfUninspectable`]).
//! - [`strip_metadata`] removes EXIF (GPS included), XMP, text chunks and comments
//!   from JPEG, PNG, GIF and WebP, and whatever follows the image (the appended
//!   pictures of a multi-picture JPEG, a Motion Photo's video), so a photo does not
//!   publish where it was taken.
//! - [`download_headers`] serves a file as an attachment that no browser renders:
//!   verified `Content-Type`, `Content-Disposition: attachment` with an RFC 6266
//!   `filename*`, `nosniff`, and `Content-Security-Policy: sandbox; default-src 'none'`.
//!
//! An upload policy, a text sniff, polyglot detection, a bounded PDF inspection and
//! JPEG and GIF rewriting to the end of the image are things no crate does, so
//! Portcullis writes them itself; magic numbers come from `infer`, PNG and WebP
//! containers from `img-parts`, inflation from `miniz_oxide`.
//!
//! ```
//! use portcullis::upload::{secure_filename, FileKind, UploadPolicy};
//!
//! assert_eq!(secure_filename("../../etc/passwd"), "etc_passwd");
//! let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
//! assert_eq!(UploadPolicy::default().check("cat.png", png).unwrap(), FileKind::Png);
//! assert!(UploadPolicy::default().check("cat.png", b"<html><script>x</script>").is_err());
//! ```

use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use img_parts::ImageEXIF;
use unicode_normalization::UnicodeNormalization;

use crate::keys::fill_random;

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

    fn from_infer(mime: &str) -> Option<Self> {
        Self::from_mime(mime)
    }
}

/// Why an upload was refused; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// No usable name remains after securing it.
    #[error("The file name has no usable characters; rename the file and try again.")]
    EmptyName,
    /// The file is empty.
    #[error("The file is empty.")]
    Empty,
    /// The extension is not one of the allowed ones.
    #[error("Files ending in .{0} are not accepted. Allowed: PNG, JPEG, GIF, WebP and PDF.")]
    ExtensionNotAllowed(String),
    /// The bytes are not of an allowed type (or of no known type).
    #[error("This file's content is not an accepted type. Allowed: PNG, JPEG, GIF, WebP and PDF.")]
    ContentNotAllowed,
    /// Markup or script, which `infer` cannot see: SVG, HTML, XML, JavaScript.
    #[error("Text formats such as SVG, HTML, XML and scripts are not accepted.")]
    TextFormat,
    /// The extension says one type and the bytes another.
    #[error("The file's content ({content}) does not match its extension (.{extension}).")]
    Mismatch {
        /// What the bytes are.
        content: &'static str,
        /// What the name says.
        extension: String,
    },
    /// A valid header followed by markup or script.
    #[error("The file contains markup or script and is refused.")]
    Polyglot,
    /// Larger than the per-file limit.
    #[error("The file is larger than {limit_mib} MiB.")]
    TooLarge {
        /// The limit in MiB.
        limit_mib: u64,
    },
    /// More files than one request may carry.
    #[error("Send at most {0} file(s) at once.")]
    TooManyFiles(usize),
    /// The user's quota would be exceeded.
    #[error(
        "This upload would exceed your storage quota of {quota_mib} MiB; delete some files first."
    )]
    QuotaExceeded {
        /// The quota in MiB.
        quota_mib: u64,
    },
    /// The image container could not be parsed for metadata removal.
    #[error("The image is damaged and cannot be stored.")]
    Damaged,
    /// A PDF that can act when opened: script, actions, launching programs, sending
    /// form data, embedded files.
    #[error("PDFs with active content (/{0}) are not accepted.")]
    PdfActiveContent(String),
    /// A PDF whose compressed parts could not be inspected within the limits: too
    /// large once inflated, too many, or in an encoding that is not read here.
    #[error(
        "This PDF's compressed content could not be inspected (too large, too many parts, or an unsupported encoding); it is refused."
    )]
    PdfUninspectable,
}

impl UploadError {
    /// The HTTP status: 413 for sizes and quotas, 415 for types, 400 otherwise.
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::TooLarge { .. } | Self::QuotaExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ExtensionNotAllowed(_)
            | Self::ContentNotAllowed
            | Self::TextFormat
            | Self::Mismatch { .. }
            | Self::Polyglot
            | Self::PdfActiveContent(_)
            | Self::PdfUninspectable => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<UploadError> for crate::error::Error {
    fn from(error: UploadError) -> Self {
        let code = match error.status().as_u16() {
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            _ => "bad_request",
        };
        Self::new(error.status(), code, error.to_string())
    }
}

/// werkzeug's `secure_filename`, exactly as it behaves on POSIX: NFKD, drop what is
/// not ASCII, `/` becomes a space, whitespace runs become `_`, everything outside
/// `[A-Za-z0-9_.-]` goes, and `.`/`_` are stripped from both ends. The result may be
/// empty; [`display_name`] turns that into an error.
///
/// ```
/// use portcullis::upload::secure_filename;
///
/// assert_eq!(secure_filename("My cool movie.mov"), "My_cool_movie.mov");
/// assert_eq!(secure_filename("i contain cool ümläuts.txt"), "i_contain_cool_umlauts.txt");
/// assert_eq!(secure_filename(".."), "");
/// ```
pub fn secure_filename(name: &str) -> String {
    let ascii: String = name
        .nfkd()
        .filter(char::is_ascii)
        .map(|c| if c == '/' { ' ' } else { c })
        .collect();
    // Python's `str.split()` on ASCII: space, \t \n \v \f \r and \x1c–\x1f.
    let is_space = |c: char| {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
        )
    };
    let joined = ascii
        .split(is_space)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    joined
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect::<String>()
        .trim_matches(|c| c == '.' || c == '_')
        .to_owned()
}

const WINDOWS_DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// The name to show for an upload: [`secure_filename`], then Windows device names
/// (`CON`, `NUL.txt`, `COM1`…) prefixed with `_` on every platform (the file may be
/// downloaded on Windows), then cut to `max_chars` keeping the extension.
///
/// ```
/// use portcullis::upload::{display_name, UploadError};
///
/// assert_eq!(display_name("CON.txt", 100).unwrap(), "_CON.txt");
/// assert_eq!(display_name(&format!("{}.png", "a".repeat(300)), 20).unwrap().len(), 20);
/// assert_eq!(display_name("...", 100), Err(UploadError::EmptyName));
/// ```
pub fn display_name(name: &str, max_chars: usize) -> Result<String, UploadError> {
    let mut name = secure_filename(name);
    if name.is_empty() {
        return Err(UploadError::EmptyName);
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    if WINDOWS_DEVICES.contains(&stem.as_str()) {
        name.insert(0, '_');
    }
    if name.len() > max_chars {
        // Only ASCII remains, so byte and char counts agree.
        let extension = name
            .rfind('.')
            .map(|i| name[i..].to_owned())
            .filter(|ext| ext.len() < max_chars / 2)
            .unwrap_or_default();
        let keep = max_chars - extension.len();
        name = format!("{}{extension}", &name[..keep]);
    }
    Ok(name)
}

/// Markers of markup and script. In a real image or PDF they do not occur by chance;
/// in a polyglot they are the payload.
const ACTIVE_MARKERS: &[&[u8]] = &[
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

/// PDF names that make a document act when opened or used: run script (`JavaScript`,
/// `JS`, `Rendition`), trigger actions on events (`AA`), start programs (`Launch`),
/// send or load data (`SubmitForm`, `ImportData`), open other files (`GoToR`, which
/// can reach a network share, `GoToE`, `EmbeddedFile(s)`, `RichMedia`) or hold XFA
/// forms (which hold script).
///
/// `OpenAction` itself is not here: most generators (LaTeX's hyperref among them) use
/// it to open at a page (`/S /GoTo`), and an opening action that does harm is one of
/// the types above. What passes: an opening action that follows a link (`/S /URI`),
/// which viewers ask about first.
const PDF_ACTIVE_NAMES: &[&str] = &[
    "JavaScript",
    "JS",
    "Rendition",
    "AA",
    "Launch",
    "SubmitForm",
    "ImportData",
    "EmbeddedFile",
    "EmbeddedFiles",
    "GoToE",
    "GoToR",
    "RichMedia",
    "XFA",
];

/// The most bytes all of one PDF's object streams may inflate to, in total.
const PDF_INFLATE_BUDGET: usize = 32 * 1024 * 1024;

/// The most object streams one PDF may have inflated.
const PDF_MAX_OBJECT_STREAMS: usize = 1024;

/// Inside stream data (compressed bytes, images, fonts) short names occur by chance,
/// so there only names at least this long are looked for.
const PDF_MIN_NAME_IN_STREAM_DATA: usize = 6;

/// PDF white space and delimiters: where a name ends.
fn pdf_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b'\0'
            | b'\t'
            | b'\n'
            | b'\x0c'
            | b'\r'
            | b' '
            | b'('
            | b')'
            | b'<'
            | b'>'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'/'
            | b'%'
    )
}

/// Each name in `bytes` as `(start, decoded)`: `#xx` escapes decoded, so that
/// `/J#61vaScript` is `JavaScript`. Names longer than 32 bytes are reported empty:
/// no name this module looks for is that long.
fn pdf_names(bytes: &[u8]) -> impl Iterator<Item = (usize, ([u8; 32], usize))> + '_ {
    memchr::memchr_iter(b'/', bytes).map(move |start| {
        let mut name = [0u8; 32];
        let mut len = 0;
        let mut i = start + 1;
        while i < bytes.len() && !pdf_delimiter(bytes[i]) {
            let mut byte = bytes[i];
            i += 1;
            if byte == b'#' {
                let hex = |b: u8| (b as char).to_digit(16);
                if let (Some(hi), Some(lo)) = (
                    bytes.get(i).copied().and_then(hex),
                    bytes.get(i + 1).copied().and_then(hex),
                ) {
                    byte = (hi * 16 + lo) as u8;
                    i += 2;
                }
            }
            if len < name.len() {
                name[len] = byte;
            }
            len += 1;
        }
        (start, (name, if len > name.len() { 0 } else { len }))
    })
}

/// The first active name in `bytes` at least `min_len` long, any case.
fn pdf_active_name(bytes: &[u8], min_len: usize) -> Option<&'static str> {
    pdf_names(bytes).find_map(|(_, (name, len))| {
        let name = &name[..len];
        PDF_ACTIVE_NAMES
            .iter()
            .find(|active| active.len() >= min_len && name.eq_ignore_ascii_case(active.as_bytes()))
            .copied()
    })
}

/// Whether the (decoded) names in `bytes` include `wanted`, any case.
fn pdf_has_name(bytes: &[u8], wanted: &str) -> bool {
    pdf_names(bytes).any(|(_, (name, len))| name[..len].eq_ignore_ascii_case(wanted.as_bytes()))
}

/// The filters a stream dictionary names: `Ok(vec![])` for none, `Err(())` when the
/// `/Filter` value is not a name or an array of names (an indirect reference, say).
fn pdf_filters(dict: &[u8]) -> Result<Vec<Vec<u8>>, ()> {
    // The last one: the stream's own dictionary ends right before `stream`.
    let Some((start, _)) = pdf_names(dict)
        .filter(|(_, (name, len))| name[..*len].eq_ignore_ascii_case(b"Filter"))
        .last()
    else {
        return Ok(Vec::new());
    };
    let rest = &dict[start + 1..];
    let value_at = rest
        .iter()
        .position(|b| pdf_delimiter(*b))
        .unwrap_or(rest.len());
    let rest = &rest[value_at..];
    let rest = &rest[rest
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0)
        .unwrap_or(rest.len())..];
    let value = match rest.first() {
        Some(b'/') => {
            let end = rest[1..]
                .iter()
                .position(|b| pdf_delimiter(*b))
                .map_or(rest.len(), |i| i + 1);
            &rest[..end]
        }
        Some(b'[') => {
            let end = memchr::memchr(b']', rest).ok_or(())?;
            &rest[1..end]
        }
        _ => return Err(()),
    };
    let filters: Vec<Vec<u8>> = pdf_names(value)
        .map(|(_, (name, len))| name[..len].to_vec())
        .collect();
    // Anything but names in the value (a reference, say) is not read here.
    let names_only = value
        .split(|b| b.is_ascii_whitespace() || *b == 0)
        .filter(|token| !token.is_empty())
        .all(|token| token.starts_with(b"/"));
    if filters.is_empty() || !names_only {
        return Err(());
    }
    Ok(filters)
}

/// What inspecting a PDF cost, for tests and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PdfInspection {
    /// Object streams inflated.
    object_streams: usize,
    /// Bytes they inflated to, in all.
    inflated_bytes: usize,
}

/// Refuses a PDF that can act when opened (see [`PDF_ACTIVE_NAMES`]).
///
/// Written here because no crate inspects a hostile PDF within a memory bound. Names
/// are read with their `#xx` escapes decoded, ended by any delimiter (so `/JS` before
/// a newline is seen). Object streams (PDF 1.5 compressed objects, where whole
/// dictionaries hide inside Flate data) are inflated within [`PDF_INFLATE_BUDGET`]
/// bytes in all and [`PDF_MAX_OBJECT_STREAMS`] streams, and read the same way; one
/// that cannot be inflated within those bounds, or uses any encoding but Flate, makes
/// the whole file refused. Other streams (page content, images, fonts) cannot define
/// objects; their bytes are searched for the longer names only, since short ones
/// occur by chance in compressed data, unless they hold object syntax (a `stream`
/// keyword faked inside a string), which is read like any other syntax.
///
/// What remains: names are read wherever they stand, strings included, so a PDF
/// that merely mentions `/JS` in its text is refused too; and streams other than
/// object streams are not inflated, since they cannot define the dictionaries that
/// make a document act.
fn inspect_pdf(bytes: &[u8]) -> Result<PdfInspection, UploadError> {
    let mut cost = PdfInspection::default();
    let mut outside_from = 0;
    let mut search_from = 0;
    let active = |name: &str| UploadError::PdfActiveContent(name.to_owned());
    while let Some(found) = memchr::memmem::find(&bytes[search_from..], b"stream") {
        let keyword = search_from + found;
        search_from = keyword + 6;
        // `endstream`, or `stream` inside a longer word, is not a stream start.
        if keyword > 0 && bytes[keyword - 1].is_ascii_alphanumeric() {
            continue;
        }
        let data_start = match bytes.get(keyword + 6..keyword + 8) {
            Some(b"\r\n") => keyword + 8,
            Some([b'\n', _]) | Some([b'\r', _]) => keyword + 7,
            None if bytes.get(keyword + 6) == Some(&b'\n') => keyword + 7,
            _ => continue,
        };
        let data_end = memchr::memmem::find(&bytes[data_start..], b"endstream")
            .map_or(bytes.len(), |i| data_start + i);
        // Everything between the previous stream and this one is object syntax.
        let syntax = &bytes[outside_from..keyword];
        if let Some(name) = pdf_active_name(syntax, 0) {
            return Err(active(name));
        }
        // The stream's own dictionary, from its `N G obj` header; when a string or a
        // comment there could hold a fake header (hiding the names before it), the
        // whole stretch since the previous stream is read instead: a name of another
        // object in it can only make a stream look like an object stream, which is
        // inspected more, not less.
        let dict = pdf_stream_dictionary(syntax).unwrap_or(syntax);
        let data = &bytes[data_start..data_end];
        // `/Type /ObjStm`, or what viewers actually read from one: `/N` and `/First`.
        let object_stream = pdf_has_name(dict, "ObjStm")
            || (pdf_has_name(dict, "First") && pdf_has_name(dict, "N"));
        if object_stream {
            let filters = pdf_filters(dict).map_err(|()| UploadError::PdfUninspectable)?;
            let plain;
            let content: &[u8] = match filters.as_slice() {
                [] => data,
                [flate] if flate.eq_ignore_ascii_case(b"FlateDecode") || flate == b"Fl" => {
                    if pdf_has_name(dict, "DecodeParms") || pdf_has_name(dict, "DP") {
                        return Err(UploadError::PdfUninspectable);
                    }
                    cost.object_streams += 1;
                    if cost.object_streams > PDF_MAX_OBJECT_STREAMS {
                        return Err(UploadError::PdfUninspectable);
                    }
                    let budget = PDF_INFLATE_BUDGET - cost.inflated_bytes;
                    plain = inflate_within(data, budget)?;
                    cost.inflated_bytes += plain.len();
                    &plain
                }
                _ => return Err(UploadError::PdfUninspectable),
            };
            if let Some(name) = pdf_active_name(content, 0) {
                return Err(active(name));
            }
        } else {
            // A `stream` keyword inside a string starts no stream for a viewer, and
            // the objects after it are syntax: data holding object headers or ends
            // is read as syntax, with every name looked for.
            let min_len = if pdf_holds_objects(data) {
                0
            } else {
                PDF_MIN_NAME_IN_STREAM_DATA
            };
            if let Some(name) = pdf_active_name(data, min_len) {
                return Err(active(name));
            }
        }
        outside_from = data_end;
        search_from = data_end.max(search_from);
    }
    if let Some(name) = pdf_active_name(&bytes[outside_from..], 0) {
        return Err(active(name));
    }
    Ok(cost)
}

/// The dictionary of the stream whose `stream` keyword ends `syntax`: the bytes after
/// the last `N G obj` header. `None` when there is no such header, or when they hold
/// a string, a comment or a hex string, any of which could hold a fake header.
fn pdf_stream_dictionary(syntax: &[u8]) -> Option<&[u8]> {
    let at = memchr::memmem::rfind(syntax, b"obj")?;
    let dict = &syntax[at + 3..];
    // Before it: white space, generation digits, white space, object digits.
    let mut before = syntax[..at].iter().rev().peekable();
    for _ in 0..2 {
        let mut spaces = 0;
        while before.next_if(|b| b.is_ascii_whitespace()).is_some() {
            spaces += 1;
        }
        let mut digits = 0;
        while before.next_if(|b| b.is_ascii_digit()).is_some() {
            digits += 1;
        }
        if spaces == 0 || digits == 0 {
            return None;
        }
    }
    // A `%` earlier on the header's line makes the header a comment.
    let line_start = memchr::memrchr2(b'\n', b'\r', &syntax[..at]).map_or(0, |i| i + 1);
    let in_comment = memchr::memchr(b'%', &syntax[line_start..at]).is_some();
    let lone_angle = |i: usize| {
        let angle = dict[i];
        matches!(angle, b'<' | b'>')
            && dict.get(i + 1) != Some(&angle)
            && (i == 0 || dict[i - 1] != angle)
    };
    let suspicious = in_comment
        || dict.iter().any(|b| matches!(b, b'(' | b')' | b'%'))
        || (0..dict.len()).any(lone_angle);
    (!suspicious).then_some(dict)
}

/// Whether stream data holds `endobj` or an `N G obj` header (` obj` before white
/// space or `<<`): object syntax, which real stream data holds only by chance.
fn pdf_holds_objects(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"endobj").is_some()
        || memchr::memmem::find_iter(data, b" obj").any(|at| {
            data.get(at + 4)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b'<')
        })
}

/// Inflates zlib (or, as viewers tolerate, raw deflate) `data` into at most `limit`
/// bytes; more, or damaged data, cannot be inspected.
fn inflate_within(data: &[u8], limit: usize) -> Result<Vec<u8>, UploadError> {
    use miniz_oxide::inflate::TINFLStatus;
    use miniz_oxide::inflate::{decompress_to_vec_with_limit, decompress_to_vec_zlib_with_limit};
    match decompress_to_vec_zlib_with_limit(data, limit) {
        Ok(plain) => Ok(plain),
        Err(e) if e.status == TINFLStatus::HasMoreOutput => Err(UploadError::PdfUninspectable),
        Err(_) => {
            decompress_to_vec_with_limit(data, limit).map_err(|_| UploadError::PdfUninspectable)
        }
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Whether the lower-cased `haystack` contains any of the (lower-case) `needles`: one
/// pass of SIMD search per needle, fast enough for a 5 MiB file on every upload.
fn contains_any(lowercase_haystack: &[u8], needles: &[&[u8]]) -> bool {
    needles
        .iter()
        .any(|needle| memchr::memmem::find(lowercase_haystack, needle).is_some())
}

/// Whether `bytes` start like a text format (SVG, HTML, XML, JavaScript, JSON).
fn looks_like_text_format(bytes: &[u8]) -> bool {
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
        || ACTIVE_MARKERS.iter().any(|m| contains_ignore_case(head, m))
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

/// What uploads may be. `Default`: PNG, JPEG, GIF, WebP and PDF; 5 MiB a file; one file
/// a request; 50 MiB a user; names up to 100 characters.
///
/// ```
/// use portcullis::upload::{FileKind, UploadPolicy};
///
/// let images_only = UploadPolicy::default()
///     .allow([FileKind::Png, FileKind::Jpeg])
///     .max_file_bytes(2 * 1024 * 1024);
/// assert!(images_only.check("doc.pdf", b"%PDF-1.7\n").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    allowed: Vec<FileKind>,
    max_file_bytes: u64,
    max_files: usize,
    quota_bytes: u64,
    max_name_chars: usize,
}

impl Default for UploadPolicy {
    fn default() -> Self {
        Self {
            allowed: vec![
                FileKind::Png,
                FileKind::Jpeg,
                FileKind::Gif,
                FileKind::Webp,
                FileKind::Pdf,
            ],
            max_file_bytes: 5 * 1024 * 1024,
            max_files: 1,
            quota_bytes: 50 * 1024 * 1024,
            max_name_chars: 100,
        }
    }
}

impl UploadPolicy {
    /// Exactly these kinds.
    pub fn allow(mut self, kinds: impl IntoIterator<Item = FileKind>) -> Self {
        self.allowed = kinds.into_iter().collect();
        self
    }

    /// The largest file, enforced while it streams in.
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// How many files one request may carry.
    pub fn max_files(mut self, count: usize) -> Self {
        self.max_files = count;
        self
    }

    /// How much each user may store in all.
    pub fn quota_bytes(mut self, bytes: u64) -> Self {
        self.quota_bytes = bytes;
        self
    }

    /// The per-file limit.
    pub fn file_limit(&self) -> u64 {
        self.max_file_bytes
    }

    /// The per-request file count limit.
    pub fn file_count_limit(&self) -> usize {
        self.max_files
    }

    /// The per-user quota in bytes.
    pub fn quota(&self) -> u64 {
        self.quota_bytes
    }

    /// The per-user quota in MiB, for messages.
    pub fn quota_mib(&self) -> u64 {
        self.quota_bytes / (1024 * 1024)
    }

    /// The longest display name.
    pub fn name_limit(&self) -> usize {
        self.max_name_chars
    }

    /// The error for a file over the size limit.
    pub fn too_large(&self) -> UploadError {
        UploadError::TooLarge {
            limit_mib: self.max_file_bytes.div_ceil(1024 * 1024),
        }
    }

    /// Refuses the upload when `used + incoming` passes the quota.
    pub fn check_quota(&self, used: u64, incoming: u64) -> Result<(), UploadError> {
        if used.saturating_add(incoming) > self.quota_bytes {
            Err(UploadError::QuotaExceeded {
                quota_mib: self.quota_mib(),
            })
        } else {
            Ok(())
        }
    }

    /// Decides what `bytes` (the whole file) named `name` is, or why it is refused.
    pub fn check(&self, name: &str, bytes: &[u8]) -> Result<FileKind, UploadError> {
        if bytes.is_empty() {
            return Err(UploadError::Empty);
        }
        if bytes.len() as u64 > self.max_file_bytes {
            return Err(self.too_large());
        }
        let secured = secure_filename(name);
        let extension = secured
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .unwrap_or_default();
        let kind = infer::get(bytes).and_then(|t| FileKind::from_infer(t.mime_type()));
        let Some(kind) = kind else {
            if looks_like_text_format(bytes) {
                return Err(UploadError::TextFormat);
            }
            if !self.extension_allowed(&extension) {
                return Err(UploadError::ExtensionNotAllowed(extension));
            }
            return Err(UploadError::ContentNotAllowed);
        };
        if !self.allowed.contains(&kind) {
            return Err(UploadError::ContentNotAllowed);
        }
        if !kind.extensions().contains(&extension.as_str()) {
            if !self.extension_allowed(&extension) {
                return Err(UploadError::ExtensionNotAllowed(extension));
            }
            return Err(UploadError::Mismatch {
                content: kind.mime(),
                extension,
            });
        }
        let lowercase = bytes.to_ascii_lowercase();
        if contains_any(&lowercase, ACTIVE_MARKERS) {
            return Err(UploadError::Polyglot);
        }
        if kind == FileKind::Pdf {
            inspect_pdf(bytes)?;
        }
        Ok(kind)
    }

    fn extension_allowed(&self, extension: &str) -> bool {
        self.allowed
            .iter()
            .any(|k| k.extensions().contains(&extension))
    }
}

/// Removes metadata from JPEG, PNG, GIF and WebP: EXIF (GPS included), XMP,
/// comments, text chunks, timestamps, and whatever follows the image. Colour profiles
/// stay. PDF passes through unchanged.
///
/// A JPEG ends at the end of its primary image: images appended after it (the
/// MPF pictures of multi-picture files, each with EXIF of its own) and Motion Photo
/// videos are cut off, and APPn and comment segments between progressive scans are
/// dropped. A GIF keeps its images, their graphic controls and the `NETSCAPE2.0`
/// looping block (rebuilt, so nothing rides along in it); comments, plain-text and
/// every other application extension (XMP) go, as does anything after its trailer.
///
/// ```
/// use portcullis::upload::{strip_metadata, FileKind};
///
/// let pdf = b"%PDF-1.7\n".to_vec();
/// assert_eq!(strip_metadata(FileKind::Pdf, pdf.clone()).unwrap(), pdf);
/// let gif = b"GIF89a\x01\0\x01\0\0\0\0\x21\xfe\x04home\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;".to_vec();
/// assert!(!strip_metadata(FileKind::Gif, gif).unwrap().windows(4).any(|w| w == b"home"));
/// ```
pub fn strip_metadata(kind: FileKind, bytes: Vec<u8>) -> Result<Vec<u8>, UploadError> {
    match kind {
        FileKind::Jpeg => strip_jpeg(&bytes),
        FileKind::Gif => strip_gif(&bytes),
        FileKind::Png | FileKind::Webp => strip_with_img_parts(kind, Bytes::from(bytes)),
        FileKind::Pdf => Ok(bytes),
    }
}

/// Rewrites a JPEG segment by segment, keeping only what decoding needs.
///
/// Written here because img-parts (like the other container crates) parses the
/// segments before the first scan only and keeps everything after it verbatim: the
/// scans, but also whatever sits between progressive scans and after the end of the
/// image. This walks the whole file: before the first scan it keeps every segment
/// but APPn and comments (except JFIF without its thumbnail, the ICC profile and
/// Adobe's colour transform, which decoding uses); from the first scan on, it keeps
/// tables, restarts and scans and drops every APPn and comment; at the end of the
/// image (EOI) it stops.
fn strip_jpeg(bytes: &[u8]) -> Result<Vec<u8>, UploadError> {
    const EOI: [u8; 2] = [0xFF, 0xD9];
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(UploadError::Damaged);
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut pos = 2;
    let mut scanned = false;
    while pos < bytes.len() {
        if bytes[pos] != 0xFF {
            return Err(UploadError::Damaged);
        }
        // Fill bytes (any number of 0xFF) may precede a marker.
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *bytes.get(pos).ok_or(UploadError::Damaged)?;
        pos += 1;
        match marker {
            0xD9 => {
                out.extend_from_slice(&EOI);
                return Ok(out);
            }
            0x00 | 0xD8 => return Err(UploadError::Damaged),
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, marker]);
                continue;
            }
            _ => {}
        }
        let length = bytes
            .get(pos..pos + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or(UploadError::Damaged)?;
        if length < 2 || pos + length > bytes.len() {
            return Err(UploadError::Damaged);
        }
        let contents = &bytes[pos + 2..pos + length];
        let segment = &bytes[pos - 2..pos + length];
        pos += length;
        let app = (0xE0..=0xEF).contains(&marker);
        if marker == 0xFE || (app && scanned) {
            continue;
        }
        if app {
            match marker {
                // JFIF: density and version only; a thumbnail would show the picture
                // as it was before any crop.
                0xE0 if contents.starts_with(b"JFIF\0") && contents.len() >= 14 => {
                    out.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
                    out.extend_from_slice(&contents[..12]);
                    out.extend_from_slice(&[0, 0]);
                }
                0xE2 if contents.starts_with(b"ICC_PROFILE\0") => out.extend_from_slice(segment),
                0xEE if contents.starts_with(b"Adobe") => out.extend_from_slice(segment),
                _ => {}
            }
            continue;
        }
        out.extend_from_slice(segment);
        if marker == 0xDA {
            scanned = true;
            // Entropy-coded data runs to the next marker that is not a stuffed zero
            // or a restart.
            let start = pos;
            loop {
                let Some(i) = memchr::memchr(0xFF, &bytes[pos..]) else {
                    pos = bytes.len();
                    break;
                };
                let at = pos + i;
                match bytes.get(at + 1) {
                    Some(0x00 | 0xD0..=0xD7) => pos = at + 2,
                    None => {
                        pos = bytes.len();
                        break;
                    }
                    Some(_) => {
                        pos = at;
                        break;
                    }
                }
            }
            out.extend_from_slice(&bytes[start..pos]);
        }
    }
    // A file cut short after its image data: end it as decoders would.
    if !scanned {
        return Err(UploadError::Damaged);
    }
    out.extend_from_slice(&EOI);
    Ok(out)
}

/// Rewrites a GIF block by block: images and graphic controls stay, the looping
/// block is rebuilt, every other extension goes, and the file ends at its trailer.
///
/// Written here because the GIF crates decode and re-encode pixels; this keeps the
/// image data byte for byte.
fn strip_gif(bytes: &[u8]) -> Result<Vec<u8>, UploadError> {
    let damaged = || UploadError::Damaged;
    if bytes.len() < 13 || !(bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
        return Err(damaged());
    }
    let colour_table = |flags: u8| {
        if flags & 0x80 != 0 {
            3usize << ((flags & 0x07) + 1)
        } else {
            0
        }
    };
    // Sub-blocks: a length byte, that many bytes, until a zero length.
    let skip_sub_blocks = |mut pos: usize| -> Result<usize, UploadError> {
        loop {
            let size = usize::from(*bytes.get(pos).ok_or_else(damaged)?);
            pos += 1 + size;
            if size == 0 {
                return Ok(pos);
            }
            if pos > bytes.len() {
                return Err(damaged());
            }
        }
    };
    let mut pos = 13 + colour_table(bytes[10]);
    if pos > bytes.len() {
        return Err(damaged());
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..pos]);
    loop {
        match bytes.get(pos) {
            None | Some(0x3B) => {
                out.push(0x3B);
                return Ok(out);
            }
            Some(0x21) => {
                let label = *bytes.get(pos + 1).ok_or_else(damaged)?;
                let end = skip_sub_blocks(pos + 2)?;
                let block = &bytes[pos..end];
                match label {
                    0xF9 => out.extend_from_slice(block),
                    0xFF if block.len() >= 19
                        && block[2] == 11
                        && (&block[3..14] == b"NETSCAPE2.0" || &block[3..14] == b"ANIMEXTS1.0")
                        && block[14] == 3
                        && block[15] == 1 =>
                    {
                        out.extend_from_slice(&[0x21, 0xFF, 11]);
                        out.extend_from_slice(b"NETSCAPE2.0");
                        out.extend_from_slice(&[3, 1, block[16], block[17], 0]);
                    }
                    _ => {}
                }
                pos = end;
            }
            Some(0x2C) => {
                let flags = *bytes.get(pos + 9).ok_or_else(damaged)?;
                // Descriptor, local colour table, LZW code size, then the data.
                let data = pos + 10 + colour_table(flags) + 1;
                if data > bytes.len() {
                    return Err(damaged());
                }
                let end = skip_sub_blocks(data)?;
                out.extend_from_slice(&bytes[pos..end]);
                pos = end;
            }
            Some(_) => return Err(damaged()),
        }
    }
}

/// PNG and WebP through img-parts, which reads every chunk of those containers.
fn strip_with_img_parts(kind: FileKind, bytes: Bytes) -> Result<Vec<u8>, UploadError> {
    match kind {
        FileKind::Png => {
            let mut png =
                img_parts::png::Png::from_bytes(bytes).map_err(|_| UploadError::Damaged)?;
            for kind in [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt", *b"tIME"] {
                png.remove_chunks_by_type(kind);
            }
            Ok(png.encoder().bytes().to_vec())
        }
        FileKind::Webp => {
            let mut webp =
                img_parts::webp::WebP::from_bytes(bytes).map_err(|_| UploadError::Damaged)?;
            webp.set_exif(None);
            webp.remove_chunks_by_id(*b"XMP ");
            Ok(webp.encoder().bytes().to_vec())
        }
        _ => Ok(bytes.to_vec()),
    }
}

/// A random 128-bit id (hex): for stored file names and public file ids, so neither
/// can be guessed or enumerated.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` has the shape [`random_id`] makes; anything else is not looked up.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where uploaded bytes live. A trait, so that an object store can slot in.
pub trait UploadStorage: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `bytes` under a new random name without making it visible yet; returns a
    /// handle to [`commit`](UploadStorage::commit) or [`discard`](UploadStorage::discard).
    fn stage(&self, bytes: &[u8]) -> std::io::Result<Staged>;
    /// Makes a staged file visible under its name.
    fn commit(&self, staged: &Staged) -> std::io::Result<()>;
    /// Removes a staged or committed file.
    fn discard(&self, name: &str) -> std::io::Result<()>;
    /// Reads a committed file.
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>>;
}

/// A file written but not yet visible.
#[derive(Debug)]
pub struct Staged {
    /// The final storage name (random, 128 bits).
    pub name: String,
    temp: PathBuf,
}

/// Files in a local folder, which must not be one the app serves. Each file is
/// written to a staging folder of this instance's own (`folder/.staging/<random id>/`)
/// and renamed into place, so an aborted upload never leaves a partial file under a
/// real name.
///
/// Several instances (processes behind one load balancer, or one restarted while the
/// old one drains) may share `folder`: each stages in its own folder, so none ever
/// removes another's file in flight. At start, staging folders untouched for
/// [`LocalStorage::STALE_STAGING`] (left by instances that crashed) are removed.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    folder: PathBuf,
    staging: PathBuf,
}

impl LocalStorage {
    /// How long a staging folder (or a file staged by an older version directly in
    /// `.staging`) must have been untouched before a starting instance removes it.
    /// Staging a file touches its folder, and an upload is staged and committed within
    /// one request, so only the leftovers of a crash are this old.
    pub const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

    /// Storage in `folder` (created if needed).
    pub fn new(folder: impl Into<PathBuf>) -> std::io::Result<Self> {
        let folder = folder.into();
        let shared = folder.join(".staging");
        std::fs::create_dir_all(&shared)?;
        // Leftovers of a crash are never referenced by a row: drop them once stale.
        let now = std::time::SystemTime::now();
        for entry in std::fs::read_dir(&shared)?.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= Self::STALE_STAGING);
            if stale {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
            }
        }
        let staging = shared.join(random_id());
        std::fs::create_dir_all(&staging)?;
        Ok(Self { folder, staging })
    }

    /// This instance's staging folder.
    pub fn staging_folder(&self) -> &Path {
        &self.staging
    }

    fn path_of(&self, name: &str) -> std::io::Result<PathBuf> {
        // Names are ours (random hex), but never let one walk out of the folder.
        if !is_valid_id(name) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a storage name",
            ));
        }
        Ok(self.folder.join(name))
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }
}

impl UploadStorage for LocalStorage {
    fn stage(&self, bytes: &[u8]) -> std::io::Result<Staged> {
        use std::io::Write;
        let name = random_id();
        let temp = self.staging.join(&name);
        let result = (|| {
            let open = || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&temp)
            };
            let mut file = match open() {
                // Idle for a day, this instance's folder may have been taken for a
                // crashed one's by another starting instance: make it again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&self.staging)?;
                    open()?
                }
                other => other?,
            };
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(error) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
        Ok(Staged { name, temp })
    }

    fn commit(&self, staged: &Staged) -> std::io::Result<()> {
        std::fs::rename(&staged.temp, self.path_of(&staged.name)?)
    }

    fn discard(&self, name: &str) -> std::io::Result<()> {
        let staged = self.staging.join(name);
        if is_valid_id(name) && staged.exists() {
            std::fs::remove_file(staged)?;
        }
        match std::fs::remove_file(self.path_of(name)?) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path_of(name)?)
    }
}

/// The headers a download is served with: the verified type, an attachment with an
/// RFC 6266 `filename*` (and an ASCII fallback), `nosniff`, a sandboxing CSP, and no
/// caching by shared caches.
///
/// ```
/// use portcullis::upload::{download_headers, FileKind};
///
/// let headers = download_headers(FileKind::Png, "holiday photo.png");
/// assert_eq!(headers["content-type"], "image/png");
/// assert!(headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
/// assert_eq!(headers["content-security-policy"], "sandbox; default-src 'none'");
/// ```
pub fn download_headers(kind: FileKind, display_name: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind.mime()));
    // The ASCII fallback gets the same guard as the display name: securing
    // `_CON.txt` again would strip the `_` that keeps Windows from opening a device.
    let fallback =
        self::display_name(display_name, usize::MAX).unwrap_or_else(|_| "download".to_owned());
    let encoded =
        percent_encoding::utf8_percent_encode(display_name, percent_encoding::NON_ALPHANUMERIC);
    let disposition = format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}");
    if let Ok(value) = HeaderValue::try_from(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    } else {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn werkzeug_vectors_match() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/secure_filename.json"
        ))
        .expect("../shared/vectors/secure_filename.json beside the repository");
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 20);
        for case in cases {
            let input = case["input"].as_str().unwrap();
            assert_eq!(
                secure_filename(input),
                case["output"].as_str().unwrap(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn display_names_are_capped_safe_and_never_empty() {
        for (input, expected) in [
            ("NUL", "_NUL"),
            ("com1.txt", "_com1.txt"),
            ("LPT9.pdf", "_LPT9.pdf"),
            ("CONSOLE.txt", "CONSOLE.txt"),
            ("../../etc/passwd", "etc_passwd"),
            ("..\\..\\windows\\win.ini", "windowswin.ini"),
            ("/etc/shadow", "etc_shadow"),
            ("a\u{202E}gnp.exe", "agnp.exe"),
        ] {
            assert_eq!(
                display_name(input, 100).as_deref(),
                Ok(expected),
                "{input:?}"
            );
        }
        for empty in ["", "...", "..", "/", "\u{0}", "日本", "\u{202E}"] {
            assert_eq!(
                display_name(empty, 100),
                Err(UploadError::EmptyName),
                "{empty:?}"
            );
        }
        let long = format!("{}.jpeg", "x".repeat(300));
        let capped = display_name(&long, 100).unwrap();
        assert_eq!(capped.len(), 100);
        assert!(capped.ends_with(".jpeg"));
    }

    #[test]
    fn types_are_decided_by_bytes_and_name_together() {
        let policy = UploadPolicy::default();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
        let gif = b"GIF89a\x01\0\x01\0\0\0\0;";
        let pdf = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
        assert_eq!(policy.check("a.png", png), Ok(FileKind::Png));
        assert_eq!(policy.check("a.gif", gif), Ok(FileKind::Gif));
        assert_eq!(policy.check("a.pdf", pdf), Ok(FileKind::Pdf));
        assert!(matches!(
            policy.check("a.jpg", png),
            Err(UploadError::Mismatch { .. })
        ));
        assert!(matches!(
            policy.check("shell.php", b"<?php system($_GET['c']); ?>"),
            Err(UploadError::TextFormat)
        ));
        assert_eq!(
            policy.check(
                "page.png",
                b"<!DOCTYPE html><html><script>alert(1)</script>"
            ),
            Err(UploadError::TextFormat)
        );
        assert_eq!(
            policy.check(
                "x.svg",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>"
            ),
            Err(UploadError::TextFormat)
        );
        assert_eq!(
            policy.check("x.png", b"\xef\xbb\xbf  <?xml version=\"1.0\"?><svg/>"),
            Err(UploadError::TextFormat)
        );
        assert_eq!(
            policy.check("app.exe", b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0"),
            Err(UploadError::ExtensionNotAllowed("exe".into()))
        );
        assert_eq!(
            policy.check("app.png", b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0"),
            Err(UploadError::ContentNotAllowed)
        );
        assert_eq!(
            policy.check("doc.pdf", b"PK\x03\x04\x14\0\0\0\x08\0"),
            Err(UploadError::ContentNotAllowed)
        );
        let mut polyglot = gif.to_vec();
        polyglot.extend_from_slice(b"<script>alert(document.cookie)</script>");
        assert_eq!(
            policy.check("cat.gif", &polyglot),
            Err(UploadError::Polyglot)
        );
        let mut pdf_js = pdf.to_vec();
        pdf_js.extend_from_slice(b"<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>");
        assert_eq!(
            policy.check("a.pdf", &pdf_js),
            Err(UploadError::PdfActiveContent("JavaScript".into()))
        );
        // Any case, anywhere in the file, and only a PDF's features in a PDF.
        let mut deep = gif.to_vec();
        deep.resize(64 * 1024, b'x');
        deep.extend_from_slice(b"<SvG OnLoad=alert(1)>");
        assert_eq!(policy.check("cat.gif", &deep), Err(UploadError::Polyglot));
        let mut gif_js = gif.to_vec();
        gif_js.extend_from_slice(b"/JavaScript");
        assert_eq!(policy.check("cat.gif", &gif_js), Ok(FileKind::Gif));
        let mut pdf_launch = pdf.to_vec();
        pdf_launch.extend_from_slice(b"<< /S /LAUNCH /F (calc.exe) >>");
        assert_eq!(
            policy.check("a.pdf", &pdf_launch),
            Err(UploadError::PdfActiveContent("Launch".into()))
        );
        assert_eq!(policy.check("a.png", b""), Err(UploadError::Empty));
        assert_eq!(
            policy.check("notes.txt", b"just some notes"),
            Err(UploadError::ExtensionNotAllowed("txt".into()))
        );
    }

    #[test]
    fn sizes_and_quotas() {
        let policy = UploadPolicy::default().max_file_bytes(10);
        assert_eq!(
            policy.check("a.png", &[0u8; 11]),
            Err(UploadError::TooLarge { limit_mib: 1 })
        );
        let policy = UploadPolicy::default();
        assert!(policy.check_quota(49 * 1024 * 1024, 1024 * 1024).is_ok());
        assert!(policy
            .check_quota(49 * 1024 * 1024, 1024 * 1024 + 1)
            .is_err());
    }

    #[test]
    fn storage_names_cannot_walk_out_of_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().join("uploads")).unwrap();
        for name in ["../../etc/passwd", "/etc/passwd", "..", "", "ABCDEF"] {
            assert!(storage.read(name).is_err(), "{name}");
            assert!(storage.discard(name).is_err() || name.is_empty(), "{name}");
        }
        let staged = storage.stage(b"data").unwrap();
        assert!(
            storage.read(&staged.name).is_err(),
            "staged files are not visible"
        );
        storage.commit(&staged).unwrap();
        assert_eq!(storage.read(&staged.name).unwrap(), b"data");
        storage.discard(&staged.name).unwrap();
        assert!(storage.read(&staged.name).is_err());
    }

    #[test]
    fn download_names_are_encoded_not_injected() {
        let headers = download_headers(FileKind::Pdf, "report\"; filename=evil.html\r\nX: y.pdf");
        let value = headers["content-disposition"].to_str().unwrap();
        assert!(value.starts_with("attachment; filename=\""), "{value}");
        assert!(!value.contains("filename=evil.html"), "{value}");
        assert!(!value.contains('\r') && !value.contains('\n'));
        let headers = download_headers(FileKind::Png, "фото.png");
        let value = headers["content-disposition"].to_str().unwrap();
        assert!(
            value.contains("filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE%2Epng"),
            "{value}"
        );
    }

    /// A TIFF block with a GPS position (latitude 48° N, longitude 2° E), as cameras
    /// write it after `Exif\0\0`.
    fn exif_with_gps() -> Vec<u8> {
        let mut tiff = b"Exif\0\0II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&[1, 0]); // IFD0: one entry
        tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0]); // GPSInfo → 26
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff.extend_from_slice(&[2, 0]); // GPS IFD: two entries
        tiff.extend_from_slice(&[1, 0, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
        tiff.extend_from_slice(&[3, 0, 2, 0, 2, 0, 0, 0, b'E', 0, 0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff
    }

    /// A 32×24 gradient, so that JPEG scans carry real data.
    fn pixels(seed: u8) -> Vec<u8> {
        (0..32 * 24)
            .flat_map(|i: usize| {
                let (x, y) = ((i % 32) as u8, (i / 32) as u8);
                [x * 8, y * 10, seed.wrapping_add(x ^ y)]
            })
            .collect()
    }

    /// A JPEG from a real encoder, with EXIF (GPS) in APP1 when `exif` is set.
    fn encode_jpeg(seed: u8, progressive: bool, exif: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
        encoder.set_progressive(progressive);
        if exif {
            encoder.add_app_segment(1, &exif_with_gps()).unwrap();
        }
        encoder
            .encode(&pixels(seed), 32, 24, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    fn decode_jpeg(bytes: &[u8]) -> Vec<u8> {
        zune_jpeg::JpegDecoder::new(bytes).decode().unwrap()
    }

    /// EXIF fields that kamadak-exif finds in any JPEG starting anywhere in `bytes`
    /// (the primary image, or one appended after it).
    fn exif_fields_anywhere(bytes: &[u8]) -> usize {
        memchr::memmem::find_iter(bytes, b"\xFF\xD8\xFF")
            .filter_map(|start| {
                exif::Reader::new()
                    .read_from_container(&mut std::io::Cursor::new(&bytes[start..]))
                    .ok()
            })
            .map(|exif| exif.fields().count())
            .sum()
    }

    fn app_segment(marker: u8, contents: &[u8]) -> Vec<u8> {
        let mut segment = vec![0xFF, marker];
        segment.extend_from_slice(&u16::try_from(contents.len() + 2).unwrap().to_be_bytes());
        segment.extend_from_slice(contents);
        segment
    }

    #[test]
    fn jpeg_images_and_videos_appended_after_the_photo_are_cut_off() {
        let primary = encode_jpeg(1, false, true);
        assert_eq!(exif_fields_anywhere(&primary), 2, "the photo carries GPS");
        let clean_pixels = decode_jpeg(&encode_jpeg(1, false, false));
        // Multi-picture (MPF): an APP2 index in the first image, then a second JPEG
        // with EXIF of its own after the first one's end.
        let mut mpf = primary[..2].to_vec();
        mpf.extend(app_segment(0xE2, b"MPF\0II*\0\x08\0\0\0\0\0\0\0\0\0"));
        mpf.extend_from_slice(&primary[2..]);
        let appended = encode_jpeg(200, false, true);
        mpf.extend_from_slice(&appended);
        // Motion Photo: an MP4 after the end of the image.
        let mut motion = primary.clone();
        let mut video = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
        video.extend_from_slice(b"\0\0\0\x20mdatGPS 48.8584 N 2.2945 E video...");
        motion.extend_from_slice(&video);
        for (what, file, tail) in [
            ("MPF", &mpf, &appended[..]),
            ("motion", &motion, &video[..]),
        ] {
            assert!(
                exif_fields_anywhere(file) > exif_fields_anywhere(&primary) || what == "motion"
            );
            let stripped = strip_metadata(FileKind::Jpeg, file.clone()).unwrap();
            assert_eq!(exif_fields_anywhere(&stripped), 0, "{what}");
            assert!(memchr::memmem::find(&stripped, b"Exif").is_none(), "{what}");
            assert!(
                memchr::memmem::find(&stripped, b"MPF\0").is_none(),
                "{what}"
            );
            assert!(
                stripped.len() < primary.len(),
                "{what}: nothing after the image"
            );
            assert!(stripped.ends_with(&[0xFF, 0xD9]), "{what}");
            // No trace of what followed: not even the last 24 bytes of its data.
            assert!(
                memchr::memmem::find(&stripped, &tail[tail.len() - 24..]).is_none(),
                "{what}"
            );
            assert_eq!(infer::get(&stripped).unwrap().mime_type(), "image/jpeg");
            assert_eq!(decode_jpeg(&stripped), clean_pixels, "{what}: same picture");
        }
    }

    #[test]
    fn jpeg_segments_between_progressive_scans_are_dropped() {
        let clean = encode_jpeg(7, true, false);
        let clean_pixels = decode_jpeg(&clean);
        // SOS markers cannot occur inside entropy-coded data (0xFF is stuffed).
        let scans: Vec<usize> = memchr::memmem::find_iter(&clean, b"\xFF\xDA").collect();
        assert!(scans.len() >= 3, "a progressive JPEG has several scans");
        let mut hostile = clean[..scans[1]].to_vec();
        hostile.extend(app_segment(0xE1, &exif_with_gps()));
        hostile.extend(app_segment(0xFE, b"taken at 48.8584 N 2.2945 E"));
        hostile.extend(app_segment(
            0xE2,
            b"ICC_PROFILE\0\x01\x01not a profile here",
        ));
        hostile.extend_from_slice(&clean[scans[1]..scans[2]]);
        hostile.extend(app_segment(0xED, b"Photoshop 3.0\08BIM caption"));
        hostile.extend_from_slice(&clean[scans[2]..]);
        assert_eq!(decode_jpeg(&hostile), clean_pixels, "decoders skip them");
        let stripped = strip_metadata(FileKind::Jpeg, hostile).unwrap();
        assert_eq!(stripped, clean, "exactly the encoder's file again");
        assert_eq!(exif_fields_anywhere(&stripped), 0);
        assert_eq!(decode_jpeg(&stripped), clean_pixels);
    }

    #[test]
    fn jpeg_header_metadata_goes_and_decoding_segments_stay() {
        let photo = encode_jpeg(3, false, true);
        let mut with_more = photo[..2].to_vec();
        with_more.extend(app_segment(0xE2, b"ICC_PROFILE\0\x01\x01profile bytes"));
        with_more.extend(app_segment(0xEE, b"Adobe\0\x64\0\0\0\0\x01"));
        with_more.extend(app_segment(
            0xE1,
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta GPS/>",
        ));
        with_more.extend(app_segment(0xFE, b"a comment"));
        with_more.extend_from_slice(&photo[2..]);
        let stripped = strip_metadata(FileKind::Jpeg, with_more).unwrap();
        assert_eq!(exif_fields_anywhere(&stripped), 0);
        assert!(memchr::memmem::find(&stripped, b"ICC_PROFILE\0").is_some());
        assert!(memchr::memmem::find(&stripped, b"Adobe").is_some());
        assert!(memchr::memmem::find(&stripped, b"xmpmeta").is_none());
        assert!(memchr::memmem::find(&stripped, b"a comment").is_none());
        for damaged in [
            &b"\xFF\xD8"[..],
            b"\xFF\xD8\xFF\xE1\x00",
            b"\xFF\xD8junk",
            b"GIF89a",
        ] {
            assert_eq!(
                strip_metadata(FileKind::Jpeg, damaged.to_vec()),
                Err(UploadError::Damaged),
                "{damaged:?}"
            );
        }
    }

    /// A two-frame looping GIF from a real encoder, with a comment and an XMP
    /// application extension between the frames and bytes after the trailer.
    fn hostile_gif() -> (Vec<u8>, Vec<u8>) {
        let palette = [0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255];
        let frames = [[0u8, 1, 2, 3, 3, 2, 1, 0], [3, 3, 2, 2, 1, 1, 0, 0]];
        let encode = |hostile: bool| {
            let mut out = Vec::new();
            {
                let mut encoder = gif::Encoder::new(&mut out, 4, 2, &palette).unwrap();
                encoder.set_repeat(gif::Repeat::Infinite).unwrap();
                for (n, pixels) in frames.iter().enumerate() {
                    if hostile {
                        encoder
                            .write_raw_extension(
                                gif::Extension::Comment.into(),
                                &[b"taken at 48.8584 N 2.2945 E"],
                            )
                            .unwrap();
                    }
                    let mut frame = gif::Frame::from_indexed_pixels(4, 2, pixels.to_vec(), None);
                    frame.delay = 10;
                    encoder.write_frame(&frame).unwrap();
                    if hostile && n == 0 {
                        encoder
                            .write_raw_extension(
                                gif::Extension::Application.into(),
                                &[b"XMP DataXMP", b"<x:xmpmeta><exif:GPSLatitude>48,51N"],
                            )
                            .unwrap();
                    }
                }
            }
            out
        };
        let mut hostile = encode(true);
        hostile.extend_from_slice(b"PK\x03\x04 appended archive");
        (hostile, encode(false))
    }

    fn decode_gif(bytes: &[u8]) -> (gif::Repeat, Vec<(u16, Vec<u8>)>) {
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::Indexed);
        let mut decoder = options.read_info(bytes).unwrap();
        let mut frames = Vec::new();
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            frames.push((frame.delay, frame.buffer.to_vec()));
        }
        (decoder.repeat(), frames)
    }

    #[test]
    fn gif_comments_xmp_and_trailing_bytes_are_removed() {
        let (hostile, clean) = hostile_gif();
        let stripped = strip_metadata(FileKind::Gif, hostile.clone()).unwrap();
        for secret in [&b"48.8584"[..], b"XMP", b"xmpmeta", b"PK\x03\x04"] {
            assert!(memchr::memmem::find(&hostile, secret).is_some());
            assert!(
                memchr::memmem::find(&stripped, secret).is_none(),
                "{secret:?}"
            );
        }
        assert_eq!(stripped, clean, "exactly the encoder's file without them");
        let (repeat, frames) = decode_gif(&stripped);
        assert_eq!(repeat, gif::Repeat::Infinite, "looping is kept");
        assert_eq!(frames, decode_gif(&hostile).1, "same frames");
        assert_eq!(frames.len(), 2);
        assert_eq!(infer::get(&stripped).unwrap().mime_type(), "image/gif");
        // A looping block with data smuggled after its count is rebuilt bare.
        let mut smuggled = clean.clone();
        let at = memchr::memmem::find(&smuggled, b"NETSCAPE2.0").unwrap() + 11;
        smuggled.splice(at + 4..at + 4, *b"\x05GPS48");
        assert!(
            memchr::memmem::find(&strip_metadata(FileKind::Gif, smuggled).unwrap(), b"GPS48")
                .is_none()
        );
        for damaged in [
            &b"GIF89a"[..],
            b"GIF89a\x01\0\x01\0\x80\0\0",
            b"GIF89a\x01\0\x01\0\0\0\0\x21\xfe\x09ab",
        ] {
            assert_eq!(
                strip_metadata(FileKind::Gif, damaged.to_vec()),
                Err(UploadError::Damaged),
                "{damaged:?}"
            );
        }
    }

    /// A PDF with `body` as its objects.
    fn pdf_with(body: &[u8]) -> Vec<u8> {
        let mut doc =
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
                .to_vec();
        doc.extend_from_slice(body);
        doc.extend_from_slice(b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
        doc
    }

    /// An object stream (`/Type /ObjStm`) holding `objects`, Flate-compressed.
    fn object_stream(number: u32, dict_extra: &str, objects: &[u8]) -> Vec<u8> {
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(objects, 6);
        let mut out = format!(
            "{number} 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Length {} {dict_extra} >>\nstream\n",
            compressed.len()
        )
        .into_bytes();
        out.extend_from_slice(&compressed);
        out.extend_from_slice(b"\nendstream\nendobj\n");
        out
    }

    #[test]
    fn pdf_active_content_is_refused_however_it_is_written() {
        let policy = UploadPolicy::default();
        let flate = "/Filter /FlateDecode";
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "escaped name",
                pdf_with(b"3 0 obj\n<< /Names << /J#61vaScript 4 0 R >> >>\nendobj"),
                "JavaScript",
            ),
            (
                "JS before a newline",
                pdf_with(b"3 0 obj\n<< /S /Foo /JS\n(app.alert(1)) >>\nendobj"),
                "JS",
            ),
            (
                "JS before a name",
                pdf_with(b"3 0 obj\n<</JS/x>>\nendobj"),
                "JS",
            ),
            (
                "additional actions",
                pdf_with(b"3 0 obj\n<< /Type /Page /AA << /O 5 0 R >> >>\nendobj"),
                "AA",
            ),
            (
                "launch",
                pdf_with(b"3 0 obj\n<< /S /Launch /F (cmd.exe) >>\nendobj"),
                "Launch",
            ),
            (
                "submit form",
                pdf_with(b"3 0 obj\n<< /S /SubmitForm /F (https://evil.example/) >>\nendobj"),
                "SubmitForm",
            ),
            (
                "embedded file",
                pdf_with(
                    b"3 0 obj\n<< /Type /EmbeddedFile /Length 0 >>\nstream\n\nendstream\nendobj",
                ),
                "EmbeddedFile",
            ),
            (
                "escaped embedded file",
                pdf_with(b"3 0 obj\n<< /Type /Embedded#46ile >>\nendobj"),
                "EmbeddedFile",
            ),
            (
                "script in an object stream",
                pdf_with(&object_stream(
                    3,
                    flate,
                    b"4 0 << /S /JavaScript /JS (app.alert(1)) >>",
                )),
                "JavaScript",
            ),
            (
                "escaped names on the object stream",
                pdf_with(&object_stream(
                    3,
                    "/Filter /Fl#61teDecode",
                    b"4 0 << /OpenAction << /S /GoToR /F (//attacker/share/x.pdf) >> >>",
                )),
                "GoToR",
            ),
            (
                "object stream whose header is faked in a string",
                pdf_with(&object_stream(
                    3,
                    "/Filter /FlateDecode /Q (4 0 obj <<)",
                    b"4 0 << /JS (x) >>",
                )),
                "JS",
            ),
            (
                "object stream with a long dictionary",
                pdf_with(&object_stream(
                    3,
                    &format!("/Filter /FlateDecode /Q ({})", "x".repeat(8192)),
                    b"4 0 << /Launch 5 0 R >>",
                )),
                "Launch",
            ),
            (
                "stream keyword inside a string",
                pdf_with(b"3 0 obj\n(a stream\n)\nendobj\n4 0 obj\n<< /AA << /O 6 0 R >> >>\nendobj\n5 0 obj\n<< /Length 0 >>\nstream\n\nendstream\nendobj"),
                "AA",
            ),
            (
                "stream keyword inside a string, no endobj",
                pdf_with(b"3 0 obj\n(a stream\n)\n4 0 obj\n<< /AA << /O 6 0 R >> >>\n5 0 obj\n<< /Length 0 >>\nstream\n\nendstream"),
                "AA",
            ),
            (
                "object stream whose header is faked in a comment",
                pdf_with(&object_stream(
                    3,
                    "/Filter /LZWDecode\n% 4 0 obj\n",
                    b"4 0 << /JS (x) >>",
                )),
                "uninspectable",
            ),
            (
                "object stream whose header is faked in a hex string",
                pdf_with(&object_stream(
                    3,
                    "/Filter /LZWDecode /Q <4 0 obj>",
                    b"4 0 << /JS (x) >>",
                )),
                "uninspectable",
            ),
            (
                "object stream with no type",
                pdf_with(
                    &object_stream(3, flate, b"4 0 <</AA<</O 6 0 R>>>>")
                        .replace_first(b"/Type /ObjStm ", b""),
                ),
                "AA",
            ),
        ];
        for (what, doc, name) in cases {
            assert_eq!(
                infer::get(&doc).unwrap().mime_type(),
                "application/pdf",
                "{what}"
            );
            let expected = if name == "uninspectable" {
                UploadError::PdfUninspectable
            } else {
                UploadError::PdfActiveContent(name.into())
            };
            assert_eq!(policy.check("doc.pdf", &doc), Err(expected), "{what}");
            assert_eq!(UploadError::PdfActiveContent(name.into()).status(), 415);
        }
    }

    trait ReplaceFirst {
        fn replace_first(self, from: &[u8], to: &[u8]) -> Vec<u8>;
    }

    impl ReplaceFirst for Vec<u8> {
        fn replace_first(mut self, from: &[u8], to: &[u8]) -> Vec<u8> {
            let at = memchr::memmem::find(&self, from).unwrap();
            self.splice(at..at + from.len(), to.iter().copied());
            self
        }
    }

    #[test]
    fn pdfs_that_cannot_be_inspected_within_the_bound_are_refused() {
        let policy = UploadPolicy::default();
        // A decompression bomb: 64 MiB of object stream in about 64 KiB.
        let bomb = pdf_with(&object_stream(
            3,
            "/Filter /FlateDecode",
            &vec![b' '; 64 << 20],
        ));
        assert!(bomb.len() < 256 * 1024);
        assert_eq!(
            policy.check("bomb.pdf", &bomb),
            Err(UploadError::PdfUninspectable)
        );
        assert_eq!(UploadError::PdfUninspectable.status(), 415);
        // Many object streams, each small.
        let mut many = Vec::new();
        for n in 0..=PDF_MAX_OBJECT_STREAMS as u32 {
            many.extend(object_stream(
                n + 10,
                "/Filter /FlateDecode",
                b"4 0 << /A 1 >>",
            ));
        }
        assert_eq!(
            policy.check("many.pdf", &pdf_with(&many)),
            Err(UploadError::PdfUninspectable)
        );
        // Encodings not read here, filters given by reference, predictors, damage.
        for extra in [
            "/Filter /LZWDecode",
            "/Filter [/ASCII85Decode /FlateDecode]",
            "/Filter 9 0 R",
            "/Filter [/FlateDecode 9 0 R]",
            "/Filter /FlateDecode /DecodeParms << /Predictor 12 >>",
        ] {
            let doc = pdf_with(&object_stream(3, extra, b"4 0 << /A 1 >>"));
            assert_eq!(
                policy.check("x.pdf", &doc),
                Err(UploadError::PdfUninspectable),
                "{extra}"
            );
        }
        let damaged = pdf_with(b"3 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode >>\nstream\nnot zlib\nendstream\nendobj");
        assert_eq!(
            policy.check("x.pdf", &damaged),
            Err(UploadError::PdfUninspectable)
        );
    }

    #[test]
    fn ordinary_pdfs_pass_and_inspection_cost_is_counted() {
        let policy = UploadPolicy::default();
        // Object streams with ordinary objects, a compressed page and binary image
        // data whose bytes include short names by chance ("/JS ", "/AA>").
        let mut body = object_stream(
            3,
            "/Filter /FlateDecode",
            b"4 0 << /Type /Page /Parent 2 0 R /JSFont 5 0 R >>",
        );
        body.extend(object_stream(
            6,
            "/Filter [/FlateDecode]",
            b"7 0 << /Type /Font /Subtype /Type1 >>",
        ));
        let content = miniz_oxide::deflate::compress_to_vec_zlib(b"BT /F1 12 Tf (Hello) Tj ET", 6);
        body.extend(
            format!(
                "8 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
                content.len()
            )
            .into_bytes(),
        );
        body.extend(content);
        body.extend_from_slice(b"\nendstream\nendobj\n9 0 obj\n<< /Subtype /Image /Filter /DCTDecode >>\nstream\n\xff\xd8/JS \x01/AA>\x02/js(\xff\xd9\nendstream\nendobj\n");
        let doc = pdf_with(&body);
        assert_eq!(policy.check("ok.pdf", &doc), Ok(FileKind::Pdf));
        let cost = inspect_pdf(&doc).unwrap();
        assert_eq!(cost.object_streams, 2);
        assert!(cost.inflated_bytes < 200);
        // Opening at a page is what most generators do; it passes.
        let opens_at_page = pdf_with(&object_stream(
            3,
            "/Filter /FlateDecode",
            b"4 0 << /Type /Catalog /OpenAction << /S /GoTo /D [5 0 R /Fit] >> >>",
        ));
        assert_eq!(policy.check("book.pdf", &opens_at_page), Ok(FileKind::Pdf));
        // Outlines (`/First`) and appearances (`/N`) before an image stream do not
        // make it an object stream.
        let classic = pdf_with(b"3 0 obj\n<< /Type /Outlines /First 4 0 R /Count 1 >>\nendobj\n5 0 obj\n<< /Type /Annot /AP << /N 6 0 R >> >>\nendobj\n7 0 obj\n<< /Subtype /Image /Filter /DCTDecode /DecodeParms << /ColorTransform 0 >> /Length 4 >>\nstream\n\xff\xd8\xff\xd9\nendstream\nendobj\n8 0 obj\n<< /N 3 /Filter /FlateDecode /DecodeParms << /Predictor 15 >> /Length 2 >>\nstream\nxx\nendstream\nendobj");
        assert_eq!(policy.check("classic.pdf", &classic), Ok(FileKind::Pdf));
        // Stream data is still searched for the long names.
        let hidden = pdf_with(
            b"3 0 obj\n<< /Subtype /Image >>\nstream\n\x01\x02/JavaScript \x03\nendstream\nendobj",
        );
        assert_eq!(
            policy.check("x.pdf", &hidden),
            Err(UploadError::PdfActiveContent("JavaScript".into()))
        );
    }

    #[test]
    fn download_fallback_name_keeps_the_device_name_guard() {
        for (shown, fallback) in [
            ("_CON.txt", "_CON.txt"),
            ("_nul.png", "_nul.png"),
            ("_LPT1", "_LPT1"),
            ("日本.pdf", "pdf"),
        ] {
            let headers = download_headers(FileKind::Pdf, shown);
            let value = headers["content-disposition"].to_str().unwrap();
            assert!(
                value.starts_with(&format!("attachment; filename=\"{fallback}\";")),
                "{value}"
            );
        }
        let headers = download_headers(FileKind::Pdf, "日本");
        let value = headers["content-disposition"].to_str().unwrap();
        assert!(
            value.starts_with("attachment; filename=\"download\";"),
            "{value}"
        );
    }

    #[test]
    fn a_starting_storage_keeps_another_instances_staged_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalStorage::new(dir.path()).unwrap();
        let staged = first.stage(b"in flight").unwrap();
        // Another instance starts on the same folder while the upload is in flight.
        let second = LocalStorage::new(dir.path()).unwrap();
        assert_ne!(first.staging_folder(), second.staging_folder());
        first.commit(&staged).unwrap();
        assert_eq!(second.read(&staged.name).unwrap(), b"in flight");
        let theirs = second.stage(b"second").unwrap();
        second.commit(&theirs).unwrap();
        assert_eq!(first.read(&theirs.name).unwrap(), b"second");

        // A crashed instance's folder, untouched for two days, is removed at start;
        // so is a file an older version left directly in `.staging`.
        let stale = dir.path().join(".staging").join(random_id());
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join(random_id()), b"partial").unwrap();
        let legacy = dir.path().join(".staging").join(random_id());
        std::fs::write(&legacy, b"partial").unwrap();
        let two_days_ago = std::time::SystemTime::now() - 2 * LocalStorage::STALE_STAGING;
        for path in [&stale, &legacy] {
            std::fs::File::open(path)
                .unwrap()
                .set_modified(two_days_ago)
                .unwrap();
        }
        let in_flight = first.stage(b"again").unwrap();
        let third = LocalStorage::new(dir.path()).unwrap();
        assert!(
            !stale.exists() && !legacy.exists(),
            "stale leftovers are removed"
        );
        assert!(first.staging_folder().exists() && second.staging_folder().exists());
        first.commit(&in_flight).unwrap();
        assert_eq!(third.read(&in_flight.name).unwrap(), b"again");

        // An instance whose folder was taken for a stale one makes it again.
        std::fs::remove_dir_all(second.staging_folder()).unwrap();
        let after = second.stage(b"after").unwrap();
        second.commit(&after).unwrap();
        assert_eq!(first.read(&after.name).unwrap(), b"after");
    }

    #[test]
    fn png_and_webp_end_at_their_last_chunk() {
        use base64::Engine as _;
        let decode = |b64: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        };
        let png = decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==");
        let webp = decode("UklGRjgAAABXRUJQVlA4ICwAAADQAQCdASoCAAIAAUAmJaACdLoB+AADsAD+8MQL/xZyMR2eb/52DYl2vWAAAA==");
        let appended = encode_jpeg(9, false, true);
        for (kind, image) in [(FileKind::Png, png), (FileKind::Webp, webp)] {
            let mut hostile = image.clone();
            hostile.extend_from_slice(&appended);
            assert_eq!(strip_metadata(kind, hostile).unwrap(), image, "{kind:?}");
        }
    }
}
