//! Reading one field of a form body, for a layer that must look inside a body it then
//! hands on untouched (the CSRF layer looking for `csrf_token`): urlencoded forms
//! pair by pair, and just enough of `multipart/form-data` (RFC 7578 on RFC 2046) to
//! find a field that comes first.
//!
//! Written here rather than taken from multer (axum's parser): multer consumes the
//! body it parses, while the layer must give the handler the very bytes it read and
//! decide after a bounded prefix. What this reads is deliberately little: the first
//! delimiter, the first part's headers and, if that part is the field, its value.
//!
//! The body arrives in frames of any size, down to one byte each (hyper makes a frame
//! of every chunk of a chunked body). [`FirstPartScanner`] therefore never looks at a
//! byte more than a small, fixed number of times: each search covers only the bytes
//! that arrived since the previous one, plus an overlap one byte shorter than what it
//! looks for, and a search waits until at least that many new bytes have arrived, so
//! the overlap never costs more than the new bytes themselves.

use memchr::memmem::Finder;

/// The first value of `name` in a urlencoded form. Pairs are decoded one at a time
/// and the search stops at the first match: nothing is kept of the other pairs, and
/// the pairs after it are not decoded at all.
pub(crate) fn urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The longest boundary RFC 2046 allows (§5.1.1: 1 to 70 characters).
pub(crate) const MAX_BOUNDARY_LEN: usize = 70;

/// Why a multipart content type cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BoundaryError {
    /// `multipart/form-data` with no `boundary` parameter, or an empty one.
    #[error("The multipart body has no boundary in its Content-Type.")]
    Missing,
    /// A boundary over 70 characters.
    #[error("The multipart boundary is longer than 70 characters (RFC 2046).")]
    TooLong,
    /// A boundary with characters RFC 2046 does not allow, or parameters that do not
    /// parse.
    #[error("The multipart Content-Type is malformed.")]
    Malformed,
}

/// RFC 2046 `bchars`: the characters a boundary may hold (a space, but not last).
fn is_bchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c)
}

/// RFC 9110 `tchar`: the characters of a token (parameter names, unquoted values).
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// The parameters after a media or disposition type: `*( OWS ";" OWS name "=" value )`
/// where a value is a token or a quoted string (RFC 9110 §5.6.4, with `\` quoting the
/// next character). `None` when they do not parse: a `;` or `"` inside a quoted string
/// must never split or end a parameter early, or two readers would disagree on them.
pub(crate) fn parameters(mut rest: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let skip_ws = |s: &mut &[u8]| {
        while let [b' ' | b'\t', tail @ ..] = *s {
            *s = tail;
        }
    };
    loop {
        skip_ws(&mut rest);
        match rest {
            [] => return Some(out),
            [b';', tail @ ..] => rest = tail,
            _ => return None,
        }
        skip_ws(&mut rest);
        if rest.is_empty() {
            // A trailing `;` is common and harmless.
            return Some(out);
        }
        let name_len = rest.iter().take_while(|c| is_tchar(**c)).count();
        if name_len == 0 {
            return None;
        }
        let name = String::from_utf8_lossy(&rest[..name_len]).to_ascii_lowercase();
        rest = &rest[name_len..];
        skip_ws(&mut rest);
        let [b'=', tail @ ..] = rest else {
            return None;
        };
        rest = tail;
        skip_ws(&mut rest);
        let mut value = Vec::new();
        if let [b'"', tail @ ..] = rest {
            rest = tail;
            loop {
                match rest {
                    [] => return None,
                    [b'"', tail @ ..] => {
                        rest = tail;
                        break;
                    }
                    [b'\\', c, tail @ ..] => {
                        value.push(*c);
                        rest = tail;
                    }
                    [b'\r' | b'\n', ..] => return None,
                    [c, tail @ ..] => {
                        value.push(*c);
                        rest = tail;
                    }
                }
            }
        } else {
            let len = rest.iter().take_while(|c| is_tchar(**c)).count();
            if len == 0 {
                return None;
            }
            value.extend_from_slice(&rest[..len]);
            rest = &rest[len..];
        }
        out.push((name, value));
    }
}

/// The boundary of a `multipart/form-data` content type: `Ok(None)` for any other
/// type, an error for a multipart type whose boundary is missing, too long or not
/// made of RFC 2046 characters.
pub(crate) fn form_data_boundary(content_type: &[u8]) -> Result<Option<String>, BoundaryError> {
    let split = content_type
        .iter()
        .position(|c| *c == b';')
        .unwrap_or(content_type.len());
    let (media_type, rest) = content_type.split_at(split);
    if !media_type
        .trim_ascii()
        .eq_ignore_ascii_case(b"multipart/form-data")
    {
        return Ok(None);
    }
    let params = parameters(rest).ok_or(BoundaryError::Malformed)?;
    let mut boundaries = params.into_iter().filter(|(name, _)| name == "boundary");
    let boundary = boundaries.next().ok_or(BoundaryError::Missing)?.1;
    if boundaries.next().is_some() {
        // Two boundaries: which one a parser takes is anyone's guess.
        return Err(BoundaryError::Malformed);
    }
    if boundary.is_empty() {
        return Err(BoundaryError::Missing);
    }
    if boundary.len() > MAX_BOUNDARY_LEN {
        return Err(BoundaryError::TooLong);
    }
    if !boundary.iter().all(|c| is_bchar(*c)) || boundary.ends_with(b" ") {
        return Err(BoundaryError::Malformed);
    }
    // All ASCII: checked just above.
    Ok(Some(String::from_utf8_lossy(&boundary).into_owned()))
}

/// Whether a part's header block (the lines after the delimiter, up to the blank
/// line) makes it the form field `field`: exactly one `Content-Disposition`, of type
/// `form-data`, with exactly one `name` equal to `field`, and no `filename` or
/// `filename*` (a file input is never the field, whatever it is called).
fn is_field(header_block: &[u8], field: &str) -> bool {
    let mut lines = header_block
        .split(|c| *c == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    // The rest of the delimiter line: nothing but transport padding.
    if !lines
        .next()
        .is_some_and(|line| line.iter().all(|c| matches!(c, b' ' | b'\t')))
    {
        return false;
    }
    let mut dispositions = Vec::new();
    for line in lines {
        if line.first().is_some_and(|c| matches!(c, b' ' | b'\t')) {
            // An obsolete folded line: refused rather than guessed at.
            return false;
        }
        let Some(colon) = line.iter().position(|c| *c == b':') else {
            return false;
        };
        if line[..colon].eq_ignore_ascii_case(b"content-disposition") {
            dispositions.push(&line[colon + 1..]);
        }
    }
    let [disposition] = dispositions[..] else {
        return false;
    };
    let split = disposition
        .iter()
        .position(|c| *c == b';')
        .unwrap_or(disposition.len());
    let (kind, rest) = disposition.split_at(split);
    if !kind.trim_ascii().eq_ignore_ascii_case(b"form-data") {
        return false;
    }
    let Some(params) = parameters(rest) else {
        return false;
    };
    let names: Vec<&[u8]> = params
        .iter()
        .filter(|(name, _)| name == "name")
        .map(|(_, value)| value.as_slice())
        .collect();
    let is_file = params
        .iter()
        .any(|(name, _)| name == "filename" || name == "filename*");
    names == [field.as_bytes()] && !is_file
}

#[cfg(test)]
thread_local! {
    /// Bytes examined by every scanner on this thread: what a test serving HTTP on a
    /// current-thread runtime reads after a request.
    static EXAMINED_ON_THIS_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// What the scanner is looking for next.
#[derive(Debug)]
enum Phase {
    /// The first `--boundary`.
    Delimiter,
    /// The blank line that ends the first part's headers.
    Headers,
    /// `\r\n--boundary` after the field's value, which starts at `start`.
    Value { start: usize },
    /// Decided: the field's value, or `None` when the first part is something else
    /// or the body ended first.
    Done(Option<String>),
}

/// Finds the value of `field` when it is the first part of a multipart body, reading
/// the body as it arrives, in frames of any size, in time linear in the bytes read.
#[derive(Debug)]
pub(crate) struct FirstPartScanner {
    field: &'static str,
    delimiter: Finder<'static>,
    value_end: Finder<'static>,
    headers_end: Finder<'static>,
    /// Everything read so far, handed back to the caller afterwards.
    buffer: Vec<u8>,
    /// Bytes past this are never searched.
    limit: usize,
    phase: Phase,
    /// Where what the current phase looks for may start.
    from: usize,
    /// How far the last search of this phase that found nothing reached.
    searched_to: usize,
    /// Bytes looked at by the searches, to prove the cost linear.
    examined: usize,
}

impl FirstPartScanner {
    /// A scanner for `field` in a body with this `boundary` (from
    /// [`form_data_boundary`]), searching at most the first `limit` bytes.
    pub(crate) fn new(boundary: &str, field: &'static str, limit: usize) -> Self {
        let delimiter = format!("--{boundary}");
        Self {
            field,
            value_end: Finder::new(format!("\r\n{delimiter}").as_bytes()).into_owned(),
            delimiter: Finder::new(delimiter.as_bytes()).into_owned(),
            headers_end: Finder::new(b"\r\n\r\n").into_owned(),
            buffer: Vec::new(),
            limit,
            phase: Phase::Delimiter,
            from: 0,
            searched_to: 0,
            examined: 0,
        }
    }

    /// Adds the next bytes of the body. `true` once the answer is known.
    pub(crate) fn push(&mut self, data: &[u8]) -> bool {
        self.buffer.extend_from_slice(data);
        self.advance(false);
        self.is_decided()
    }

    /// Whether the answer is known.
    pub(crate) fn is_decided(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
    }

    /// Whether as much as may be searched has been read.
    pub(crate) fn is_full(&self) -> bool {
        self.buffer.len() >= self.limit
    }

    /// The body ended, or the limit was reached: decides with what was read.
    pub(crate) fn finish(&mut self) {
        self.advance(true);
        if !self.is_decided() {
            self.phase = Phase::Done(None);
        }
    }

    /// The field's value, once decided (after [`Self::finish`] at the latest).
    pub(crate) fn value(&self) -> Option<&str> {
        match &self.phase {
            Phase::Done(value) => value.as_deref(),
            _ => None,
        }
    }

    /// The bytes read, to hand on.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// How many bytes the searches have looked at so far.
    #[cfg(test)]
    pub(crate) fn bytes_examined(&self) -> usize {
        self.examined
    }

    fn count_examined(&mut self, bytes: usize) {
        self.examined += bytes;
        #[cfg(test)]
        EXAMINED_ON_THIS_THREAD.with(|total| total.set(total.get() + bytes));
    }

    /// Runs the searches the bytes read allow. `at_end`: no more bytes will come, so
    /// search what is there even if it is short.
    fn advance(&mut self, at_end: bool) {
        loop {
            let finder = match self.phase {
                Phase::Delimiter => &self.delimiter,
                Phase::Headers => &self.headers_end,
                Phase::Value { .. } => &self.value_end,
                Phase::Done(_) => return,
            };
            let needle = finder.needle().len();
            let end = self.buffer.len().min(self.limit);
            // Fewer new bytes than the needle: searching now would spend more on the
            // overlap than on what is new; wait for more (one-byte frames).
            if end <= self.searched_to || (!at_end && end - self.searched_to < needle) {
                return;
            }
            let start = self.from.max(self.searched_to.saturating_sub(needle - 1));
            let Some(found) = finder.find(&self.buffer[start..end]) else {
                self.count_examined(end - start);
                self.searched_to = end;
                return;
            };
            self.count_examined(found + needle);
            let at = start + found;
            let after = at + needle;
            self.phase = match self.phase {
                Phase::Delimiter => Phase::Headers,
                Phase::Headers => {
                    if is_field(&self.buffer[self.from..at], self.field) {
                        Phase::Value { start: after }
                    } else {
                        Phase::Done(None)
                    }
                }
                Phase::Value { start } => {
                    Phase::Done(String::from_utf8(self.buffer[start..at].to_vec()).ok())
                }
                Phase::Done(_) => unreachable!("returned above"),
            };
            self.from = after;
            self.searched_to = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELD: &str = "csrf_token";

    fn scan(body: &[u8], frame: usize) -> (Option<String>, usize) {
        let mut scanner = FirstPartScanner::new("BOUNDARY", FIELD, 16 * 1024);
        for chunk in body.chunks(frame) {
            if scanner.push(chunk) || scanner.is_full() {
                break;
            }
        }
        scanner.finish();
        (scanner.value().map(str::to_owned), scanner.bytes_examined())
    }

    fn part(disposition: &str, value: &str) -> Vec<u8> {
        format!(
            "--BOUNDARY\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n--BOUNDARY\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nPNG\r\n\
             --BOUNDARY--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_token_is_found_in_the_first_part_whatever_the_frames() {
        let body = part("form-data; name=\"csrf_token\"", "tok.en");
        for frame in [1, 2, 3, 7, 13, body.len()] {
            assert_eq!(scan(&body, frame).0.as_deref(), Some("tok.en"), "{frame}");
        }
        // Case of the header name, a token instead of a quoted string, spaces.
        for disposition in [
            "form-data;name=csrf_token",
            "FORM-DATA ; name = \"csrf_token\" ;",
            "form-data; name=\"csrf\\_token\"",
        ] {
            let body = part(disposition, "v");
            assert_eq!(scan(&body, 5).0.as_deref(), Some("v"), "{disposition}");
        }
    }

    #[test]
    fn a_file_or_another_field_is_not_the_token() {
        for disposition in [
            "form-data; filename=\"csrf_token\"",
            "form-data; name=\"x\"; filename=\"csrf_token\"",
            "form-data; name=\"csrf_token\"; filename=\"a.txt\"",
            "form-data; name=\"csrf_token\"; filename*=UTF-8''a.txt",
            "form-data; name=\"x\"; junk=\"; name=csrf_token\"",
            "form-data; name=\"csrf_token\"; name=\"x\"",
            "form-data; name=\"csrf_token",
            "form-data; name=\"csrf_token\"x",
            "attachment; name=\"csrf_token\"",
            "form-data; name=\"csrf_tokens\"",
            "form-data; xname=\"csrf_token\"",
        ] {
            let body = part(disposition, "v");
            assert_eq!(scan(&body, 3).0, None, "{disposition}");
        }
        // Two dispositions, or a folded one.
        let two = b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\
                    Content-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--BOUNDARY--";
        assert_eq!(scan(two, 4).0, None);
    }

    #[test]
    fn one_byte_frames_are_scanned_in_linear_time() {
        // The worst case: a value that never ends, read up to the limit one byte at a
        // time; and a body with no delimiter at all.
        let mut never_ends =
            b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n".to_vec();
        never_ends.resize(16_384, b'a');
        let no_delimiter = vec![b'-'; 16_384];
        for body in [never_ends, no_delimiter] {
            let (value, one_frame) = scan(&body, body.len());
            assert_eq!(value, None);
            let (_, one_byte) = scan(&body, 1);
            assert!(
                one_byte <= 3 * body.len(),
                "{one_byte} bytes examined for {} one-byte frames",
                body.len()
            );
            assert!(one_frame <= body.len() + 64, "{one_frame}");
        }
        // The longest boundary RFC 2046 allows does not change the bound.
        let boundary = "b".repeat(MAX_BOUNDARY_LEN);
        let mut scanner = FirstPartScanner::new(&boundary, FIELD, 16 * 1024);
        let mut bytes = 0;
        while !scanner.is_full() {
            scanner.push(b"-");
            bytes += 1;
        }
        scanner.finish();
        assert_eq!(bytes, 16 * 1024);
        assert!(
            scanner.bytes_examined() <= 3 * bytes,
            "{}",
            scanner.bytes_examined()
        );
    }

    #[test]
    fn the_first_urlencoded_token_is_taken_decoded() {
        let field = |body: &str| urlencoded_field(body.as_bytes(), FIELD);
        assert_eq!(field("a=1&csrf_token=x.y&csrf_token=z"), Some("x.y".into()));
        assert_eq!(field("csrf%5Ftoken=a%2Bb+c"), Some("a+b c".into()));
        assert_eq!(field("csrf_token"), Some(String::new()));
        assert_eq!(field("xcsrf_token=1&csrf_tokens=2"), None);
        // Undecodable bytes elsewhere do not hide the field.
        assert_eq!(field("a=%FF%FE&csrf_token=t"), Some("t".into()));
    }

    #[test]
    fn boundaries_follow_rfc_2046() {
        let ok = |ct: &str| form_data_boundary(ct.as_bytes());
        assert_eq!(
            ok("multipart/form-data; boundary=abc"),
            Ok(Some("abc".into()))
        );
        assert_eq!(
            ok("Multipart/Form-Data;boundary=\"a b:c\""),
            Ok(Some("a b:c".into()))
        );
        assert_eq!(ok("application/json"), Ok(None));
        assert_eq!(
            ok(&format!("multipart/form-data; boundary={}", "x".repeat(70))),
            Ok(Some("x".repeat(70)))
        );
        assert_eq!(
            ok(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            Err(BoundaryError::TooLong)
        );
        assert_eq!(ok("multipart/form-data"), Err(BoundaryError::Missing));
        assert_eq!(
            ok("multipart/form-data; boundary=\"\""),
            Err(BoundaryError::Missing)
        );
        for bad in [
            "multipart/form-data; boundary=a; boundary=b",
            "multipart/form-data; boundary=\"a;b\"",
            "multipart/form-data; boundary=\"abc",
            "multipart/form-data; boundary=\"ab \"",
            "multipart/form-data; x=\"a; boundary=evil\"",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        // A quoted `;` in another parameter does not hide or fake the boundary.
        assert_eq!(
            ok("multipart/form-data; x=\"a; boundary=evil\"; boundary=real"),
            Ok(Some("real".into()))
        );
    }

    /// A minimal HTTP/1.1 exchange on a fresh connection: the raw response.
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        // The server closes the connection after answering (`connection: close`), or
        // after a broken body.
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    }

    /// A body as one-byte chunks of the chunked transfer coding.
    fn one_byte_chunks(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() * 6 + 5);
        for byte in body {
            out.extend_from_slice(b"1\r\n");
            out.push(*byte);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    #[tokio::test]
    async fn one_byte_chunks_over_http_are_scanned_in_linear_time() {
        use crate::csrf::{CsrfConfig, CsrfToken};
        use crate::keys::{Keyring, SecretKey};
        use crate::session::{MemorySessionStore, SessionConfig};
        use axum::routing::{get, post};

        let keyring = Keyring::new(SecretKey::generate(), vec![]);
        let app = axum::Router::new()
            .route(
                "/form",
                get(|token: CsrfToken| async move { token.as_str().to_owned() }),
            )
            // Echoes the body: the handler must see exactly the bytes sent.
            .route(
                "/upload",
                post(|body: axum::body::Bytes| async move { body }),
            )
            .layer(CsrfConfig::default().layer(&keyring).unwrap())
            .layer(
                SessionConfig::default()
                    .insecure_cookie_over_plain_http()
                    .layer(&keyring, std::sync::Arc::new(MemorySessionStore::default())),
            )
            .layer(crate::client_ip::ClientInfoConfig::default().layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Same thread as the test (a current-thread runtime): the scan's count is ours.
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap()
        });

        let page = exchange(
            addr,
            b"GET /form HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        let cookie = page
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: "))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned();
        let token = page.rsplit("\r\n\r\n").next().unwrap().to_owned();
        let post = |boundary: &str, chunked: &[u8]| {
            let mut request = format!(
                "POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncookie: {cookie}\r\n\
                 content-type: multipart/form-data; boundary={boundary}\r\n\
                 transfer-encoding: chunked\r\n\r\n"
            )
            .into_bytes();
            request.extend_from_slice(chunked);
            request
        };

        // A real form, 16 KiB, one byte per chunk: accepted, and the handler reads
        // every byte.
        let mut form = format!(
            "--B\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
             --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n"
        )
        .into_bytes();
        form.resize(16_384 - 9, b'x');
        form.extend_from_slice(b"\r\n--B--\r\n");
        let response = exchange(addr, &post("B", &one_byte_chunks(&form))).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{}", &response[..200]);
        assert!(response.ends_with(std::str::from_utf8(&form).unwrap()));

        // The attack: a token value that never ends, 16,384 one-byte chunks.
        let mut never_ends =
            b"--B\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n".to_vec();
        never_ends.resize(16_384, b'a');
        let before = EXAMINED_ON_THIS_THREAD.with(std::cell::Cell::get);
        let response = exchange(addr, &post("B", &one_byte_chunks(&never_ends))).await;
        let examined = EXAMINED_ON_THIS_THREAD.with(std::cell::Cell::get) - before;
        assert!(response.starts_with("HTTP/1.1 403"), "{response}");
        assert!(response.contains("csrf_missing"), "{response}");
        assert!(
            (never_ends.len()..=3 * never_ends.len()).contains(&examined),
            "{examined} bytes examined for a {} byte body",
            never_ends.len()
        );

        // A boundary longer than RFC 2046 allows: a clear 400, nothing read.
        let long = "b".repeat(MAX_BOUNDARY_LEN + 1);
        let response = exchange(addr, &post(&long, &one_byte_chunks(b"x"))).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        assert!(response.contains("70 characters"), "{response}");

        // A chunked coding that breaks before the token is decided: 400, not a
        // truncated body handed on nor a misleading "token missing".
        let mut broken = one_byte_chunks(b"--B\r\nContent-Disposition: form-data; name=");
        broken.truncate(broken.len() - 5);
        broken.extend_from_slice(b"zz\r\nnot a chunk\r\n\r\n");
        let response = exchange(addr, &post("B", &broken)).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        assert!(response.contains("could not be read"), "{response}");
    }
}
