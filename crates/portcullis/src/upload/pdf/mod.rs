//! PDF inspection: active content refused, compressed object streams inflated within
//! a bound.

mod syntax;

use syntax::{
    pdf_active_name, pdf_filters, pdf_has_name, pdf_holds_objects, pdf_stream_dictionary,
};

use super::UploadError;

/// The most bytes all of one PDF's object streams may inflate to, in total.
const PDF_INFLATE_BUDGET: usize = 32 * 1024 * 1024;

/// The most object streams one PDF may have inflated.
const PDF_MAX_OBJECT_STREAMS: usize = 1024;

/// Inside stream data (compressed bytes, images, fonts) short names occur by chance,
/// so there only names at least this long are looked for.
const PDF_MIN_NAME_IN_STREAM_DATA: usize = 6;

/// What inspecting a PDF cost, for tests and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct PdfInspection {
    /// Object streams inflated.
    object_streams: usize,
    /// Bytes they inflated to, in all.
    inflated_bytes: usize,
}

/// Refuses a PDF that can act when opened (see [`PDF_ACTIVE_NAMES`](syntax::PDF_ACTIVE_NAMES)).
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
pub(super) fn inspect_pdf(bytes: &[u8]) -> Result<PdfInspection, UploadError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::{FileKind, UploadPolicy};

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
}
