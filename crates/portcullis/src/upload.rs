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
//!   image header followed by markup or script) are refused.
//! - [`strip_metadata`] removes EXIF (GPS included), XMP, text chunks and comments
//!   from JPEG, PNG and WebP, so a photo does not publish where it was taken.
//! - [`download_headers`] serves a file as an attachment that no browser renders:
//!   verified `Content-Type`, `Content-Disposition: attachment` with an RFC 6266
//!   `filename*`, `nosniff`, and `Content-Security-Policy: sandbox; default-src 'none'`.
//!
//! An upload policy, a text sniff and polyglot detection are things no crate does, so
//! Portcullis writes them itself; magic numbers come from `infer`, image containers
//! from `img-parts`.
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
            | Self::Polyglot => StatusCode::UNSUPPORTED_MEDIA_TYPE,
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

/// PDF features that run code in a viewer.
const PDF_ACTIVE: &[&[u8]] = &[
    b"/javascript",
    b"/js ",
    b"/js(",
    b"/js<",
    b"/launch",
    b"/openaction",
];

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
        if kind == FileKind::Pdf && contains_any(&lowercase, PDF_ACTIVE) {
            return Err(UploadError::Polyglot);
        }
        Ok(kind)
    }

    fn extension_allowed(&self, extension: &str) -> bool {
        self.allowed
            .iter()
            .any(|k| k.extensions().contains(&extension))
    }
}

/// Removes metadata from JPEG, PNG and WebP: EXIF (GPS included), XMP, comments, text
/// chunks, timestamps. Colour profiles stay. GIF and PDF pass through unchanged.
///
/// ```
/// use portcullis::upload::{strip_metadata, FileKind};
///
/// let pdf = b"%PDF-1.7\n".to_vec();
/// assert_eq!(strip_metadata(FileKind::Pdf, pdf.clone()).unwrap(), pdf);
/// ```
pub fn strip_metadata(kind: FileKind, bytes: Vec<u8>) -> Result<Vec<u8>, UploadError> {
    let bytes = Bytes::from(bytes);
    match kind {
        FileKind::Jpeg => {
            let mut jpeg =
                img_parts::jpeg::Jpeg::from_bytes(bytes).map_err(|_| UploadError::Damaged)?;
            jpeg.segments_mut().retain(|segment| {
                let marker = segment.marker();
                let icc = marker == 0xE2 && segment.contents().starts_with(b"ICC_PROFILE\0");
                // APP0 (JFIF) and APP14 (Adobe) carry decoding parameters, not data
                // about the person; every other APPn and every comment goes.
                let app = (0xE1..=0xEF).contains(&marker) && marker != 0xEE;
                (icc || !app) && marker != 0xFE
            });
            Ok(jpeg.encoder().bytes().to_vec())
        }
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
/// written to `folder/.staging/` and renamed into place, so an aborted upload never
/// leaves a partial file under a real name.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    folder: PathBuf,
}

impl LocalStorage {
    /// Storage in `folder` (created if needed).
    pub fn new(folder: impl Into<PathBuf>) -> std::io::Result<Self> {
        let folder = folder.into();
        std::fs::create_dir_all(folder.join(".staging"))?;
        // Leftovers of a crash are never referenced by a row: drop them.
        for entry in std::fs::read_dir(folder.join(".staging"))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(Self { folder })
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
        let temp = self.folder.join(".staging").join(&name);
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
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
        let staged = self.folder.join(".staging").join(name);
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
    let fallback: String = secure_filename(display_name);
    let fallback = if fallback.is_empty() {
        "download".to_owned()
    } else {
        fallback
    };
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
        assert_eq!(policy.check("a.pdf", &pdf_js), Err(UploadError::Polyglot));
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
            Err(UploadError::Polyglot)
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
}
