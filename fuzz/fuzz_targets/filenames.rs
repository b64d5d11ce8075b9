//! `upload::secure_filename` and `upload::display_name` on arbitrary names.
//!
//! The first byte is `display_name`'s `max_chars` (1 to 256), the rest the name.
//!
//! Properties of both: only `[A-Za-z0-9_.-]`, so never a path separator; idempotent;
//! `.` and `_` never at either end of `secure_filename`. Of `display_name` (the name a
//! file is downloaded under): never empty, at most `max_chars`, and never a Windows
//! device name (`CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9`, any case,
//! with or without an extension). `secure_filename` is werkzeug's POSIX behaviour and
//! keeps device names on purpose; `display_name` is where they are dealt with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::upload::{display_name, secure_filename};

fn safe_alphabet(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_device_name(name: &str) -> bool {
    // Windows ignores everything from the first dot, and trailing spaces and dots.
    let stem = name
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end_matches([' ', '.']);
    let upper = stem.to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (upper.len() == 4
            && (upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.as_bytes()[3].is_ascii_digit())
}

fuzz_target!(|data: &[u8]| {
    let Some((&max, rest)) = data.split_first() else {
        return;
    };
    let Ok(name) = std::str::from_utf8(rest) else {
        return;
    };
    let max_chars = usize::from(max) + 1;

    let secured = secure_filename(name);
    assert!(safe_alphabet(&secured), "{name:?} -> {secured:?}");
    assert!(!secured.contains(['/', '\\']), "{name:?} -> {secured:?}");
    assert!(
        !secured.starts_with(['.', '_']) && !secured.ends_with(['.', '_']),
        "{name:?} -> {secured:?}"
    );
    assert_eq!(
        secure_filename(&secured),
        secured,
        "not idempotent on {name:?}"
    );

    if let Ok(shown) = display_name(name, max_chars) {
        assert!(!shown.is_empty(), "{name:?} (max {max_chars}) -> empty");
        assert!(
            shown.len() <= max_chars,
            "{name:?} (max {max_chars}) -> {shown:?}"
        );
        assert!(safe_alphabet(&shown), "{name:?} -> {shown:?}");
        assert!(
            !is_device_name(&shown),
            "{name:?} (max {max_chars}) -> device name {shown:?}"
        );
        assert_eq!(
            display_name(&shown, max_chars).as_deref(),
            Ok(shown.as_str()),
            "display_name not idempotent on {name:?} (max {max_chars})"
        );
    }
});
