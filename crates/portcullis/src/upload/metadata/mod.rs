//! Metadata removal: EXIF, XMP, comments and text chunks, and whatever follows the
//! image.

mod gif;
mod jpeg;

use bytes::Bytes;
use img_parts::ImageEXIF;

use super::{FileKind, UploadError};

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
        FileKind::Jpeg => jpeg::strip_jpeg(&bytes),
        FileKind::Gif => gif::strip_gif(&bytes),
        FileKind::Png | FileKind::Webp => strip_with_img_parts(kind, Bytes::from(bytes)),
        FileKind::Pdf => Ok(bytes),
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

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg::tests::encode_jpeg;

    /// Asserts that each of `files`, read as `kind`, is refused as damaged.
    pub(super) fn assert_damaged(kind: FileKind, files: &[&[u8]]) {
        for damaged in files {
            assert_eq!(
                strip_metadata(kind, damaged.to_vec()),
                Err(UploadError::Damaged),
                "{damaged:?}"
            );
        }
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
