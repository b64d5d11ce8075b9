//! Reading PDF syntax without parsing it: names with their `#xx` escapes decoded,
//! stream filters, a stream's own dictionary, and object syntax inside stream data.

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
pub(super) const PDF_ACTIVE_NAMES: &[&str] = &[
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
pub(super) fn pdf_active_name(bytes: &[u8], min_len: usize) -> Option<&'static str> {
    pdf_names(bytes).find_map(|(_, (name, len))| {
        let name = &name[..len];
        PDF_ACTIVE_NAMES
            .iter()
            .find(|active| active.len() >= min_len && name.eq_ignore_ascii_case(active.as_bytes()))
            .copied()
    })
}

/// Whether the (decoded) names in `bytes` include `wanted`, any case.
pub(super) fn pdf_has_name(bytes: &[u8], wanted: &str) -> bool {
    pdf_names(bytes).any(|(_, (name, len))| name[..len].eq_ignore_ascii_case(wanted.as_bytes()))
}

/// The filters a stream dictionary names: `Ok(vec![])` for none, `Err(())` when the
/// `/Filter` value is not a name or an array of names (an indirect reference, say).
pub(super) fn pdf_filters(dict: &[u8]) -> Result<Vec<Vec<u8>>, ()> {
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

/// The dictionary of the stream whose `stream` keyword ends `syntax`: the bytes after
/// the last `N G obj` header. `None` when there is no such header, or when they hold
/// a string, a comment or a hex string, any of which could hold a fake header.
pub(super) fn pdf_stream_dictionary(syntax: &[u8]) -> Option<&[u8]> {
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
pub(super) fn pdf_holds_objects(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"endobj").is_some()
        || memchr::memmem::find_iter(data, b" obj").any(|at| {
            data.get(at + 4)
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b'<')
        })
}
