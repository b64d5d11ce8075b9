//! Just enough of the multipart headers to find a field: the boundary a
//! `Content-Type` names, the parameters of a header, and whether a part's
//! `Content-Disposition` names the field and no file.

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
pub(super) fn is_field(header_block: &[u8], field: &str) -> bool {
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
