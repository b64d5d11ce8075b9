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
//!
//! | file | what it holds |
//! |---|---|
//! | `multipart.rs` | the boundary of a `Content-Type`, header parameters, whether a part is the field |
//! | `scanner.rs` | [`FirstPartScanner`]: the first part of a multipart body, frame by frame |
//! | `tests.rs` | both readers, down to one-byte frames over HTTP |

mod multipart;
mod scanner;
#[cfg(test)]
mod tests;

pub(crate) use multipart::{form_data_boundary, BoundaryError};
pub(crate) use scanner::FirstPartScanner;

/// The first value of `name` in a urlencoded form. Pairs are decoded one at a time
/// and the search stops at the first match: nothing is kept of the other pairs, and
/// the pairs after it are not decoded at all.
pub(crate) fn urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}
