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

mod download;
mod filename;
mod metadata;
mod pdf;
mod policy;
mod sniff;
mod storage;

pub use download::download_headers;
pub use filename::{display_name, secure_filename};
pub use metadata::strip_metadata;
pub use policy::{UploadError, UploadPolicy};
pub use sniff::FileKind;
pub use storage::{is_valid_id, random_id, LocalStorage, Staged, UploadStorage};
