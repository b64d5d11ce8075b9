//! GIF, block by block to its trailer.

use super::UploadError;

/// Rewrites a GIF block by block: images and graphic controls stay, the looping
/// block is rebuilt, every other extension goes, and the file ends at its trailer.
///
/// Written here because the GIF crates decode and re-encode pixels; this keeps the
/// image data byte for byte.
pub(super) fn strip_gif(bytes: &[u8]) -> Result<Vec<u8>, UploadError> {
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

#[cfg(test)]
mod tests {
    use crate::upload::metadata::tests::assert_damaged;
    use crate::upload::{strip_metadata, FileKind};

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
        assert_damaged(
            FileKind::Gif,
            &[
                b"GIF89a",
                b"GIF89a\x01\0\x01\0\x80\0\0",
                b"GIF89a\x01\0\x01\0\0\0\0\x21\xfe\x09ab",
            ],
        );
    }
}
