//! `Sanitizer::clean` and `Sanitizer::markdown` on arbitrary text.
//!
//! The first byte picks HTML or Markdown; the rest is the text.
//!
//! Properties: nothing panics; sanitising the output again changes nothing; in the
//! output's tags (read lowercased, attribute by attribute, quotes respected) no
//! attribute name starts with `on` and no `href` or `src` holds `javascript:` (with
//! whitespace and control characters removed, as browsers ignore them in schemes).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::sanitize::Sanitizer;

fn sanitizer() -> &'static Sanitizer {
    static SANITIZER: OnceLock<Sanitizer> = OnceLock::new();
    SANITIZER.get_or_init(Sanitizer::default)
}

/// Each tag's attributes `(name, value)` in `html`, lowercased.
fn attributes(html: &str) -> Vec<(String, String)> {
    let lower = html.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        i += 1;
        // The tag name.
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'>' | b'/')
        {
            i += 1;
        }
        loop {
            while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] == b'>' {
                break;
            }
            let start = i;
            while i < bytes.len()
                && !bytes[i].is_ascii_whitespace()
                && !matches!(bytes[i], b'=' | b'>' | b'/')
            {
                i += 1;
            }
            let name = lower[start..i].to_owned();
            let mut value = String::new();
            if i < bytes.len() && bytes[i] == b'=' {
                i += 1;
                if i < bytes.len() && matches!(bytes[i], b'"' | b'\'') {
                    let quote = bytes[i];
                    i += 1;
                    let v = i;
                    while i < bytes.len() && bytes[i] != quote {
                        i += 1;
                    }
                    value = lower[v..i.min(bytes.len())].to_owned();
                    i += 1;
                } else {
                    let v = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = lower[v..i].to_owned();
                }
            }
            if name.is_empty() {
                i += 1;
            } else {
                out.push((name, value));
            }
        }
    }
    out
}

fn check(output: &str) {
    for (name, value) in attributes(output) {
        assert!(
            !name.starts_with("on"),
            "event handler {name:?} in {output:?}"
        );
        if matches!(
            name.as_str(),
            "href" | "src" | "action" | "formaction" | "xlink:href"
        ) {
            let squeezed: String = value
                .chars()
                .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
                .collect();
            assert!(
                !squeezed.contains("javascript:"),
                "{name}={value:?} in {output:?}"
            );
        }
    }
    let again = sanitizer()
        .clean(output)
        .expect("the output is within bounds");
    assert_eq!(again.as_str(), output, "sanitising the output changed it");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let sanitizer = sanitizer();
    let result = if mode % 2 == 0 {
        sanitizer.clean(&text)
    } else {
        sanitizer.markdown(&text)
    };
    if let Ok(html) = result {
        check(html.as_str());
    }
});
