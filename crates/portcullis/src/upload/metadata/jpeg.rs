//! JPEG, segment by segment to the end of the primary image.

use super::UploadError;

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
pub(super) fn strip_jpeg(bytes: &[u8]) -> Result<Vec<u8>, UploadError> {
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

#[cfg(test)]
pub(super) mod tests {
    use crate::upload::metadata::tests::assert_damaged;
    use crate::upload::{strip_metadata, FileKind};

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
    pub(in crate::upload::metadata) fn encode_jpeg(
        seed: u8,
        progressive: bool,
        exif: bool,
    ) -> Vec<u8> {
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
        assert_damaged(
            FileKind::Jpeg,
            &[
                b"\xFF\xD8",
                b"\xFF\xD8\xFF\xE1\x00",
                b"\xFF\xD8junk",
                b"GIF89a",
            ],
        );
    }
}
