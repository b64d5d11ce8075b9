//! What uploads may be, and why one was refused.

use super::pdf::inspect_pdf;
use super::sniff::{contains_any, looks_like_text_format, ACTIVE_MARKERS};
use super::{secure_filename, FileKind};

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
        let kind = infer::get(bytes).and_then(|t| FileKind::from_mime(t.mime_type()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
