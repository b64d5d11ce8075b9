//! Upload names: werkzeug's `secure_filename`, and the name shown for a file.

use unicode_normalization::UnicodeNormalization;

use super::UploadError;

/// werkzeug's `secure_filename`, exactly as it behaves on POSIX: NFKD, drop what is
/// not ASCII, `/` becomes a space, whitespace runs become `_`, everything outside
/// `[A-Za-z0-9_.-]` goes, and `.`/`_` are stripped from both ends. The result may be
/// empty; [`display_name`] turns that into an error.
///
/// ```
/// use portcullis::upload::secure_filename;
///
/// assert_eq!(secure_filename("My cool movie.mov"), "My_cool_movie.mov");
/// assert_eq!(secure_filename("i contain cool ümläuts.txt"), "i_contain_cool_umlauts.txt");
/// assert_eq!(secure_filename(".."), "");
/// ```
pub fn secure_filename(name: &str) -> String {
    let ascii: String = name
        .nfkd()
        .filter(char::is_ascii)
        .map(|c| if c == '/' { ' ' } else { c })
        .collect();
    // Python's `str.split()` on ASCII: space, \t \n \v \f \r and \x1c–\x1f.
    let is_space = |c: char| {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
        )
    };
    let joined = ascii
        .split(is_space)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    joined
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect::<String>()
        .trim_matches(|c| c == '.' || c == '_')
        .to_owned()
}

const WINDOWS_DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// The name to show for an upload: [`secure_filename`], then Windows device names
/// (`CON`, `NUL.txt`, `COM1`…) prefixed with `_` on every platform (the file may be
/// downloaded on Windows), then cut to `max_chars` keeping the extension.
///
/// ```
/// use portcullis::upload::{display_name, UploadError};
///
/// assert_eq!(display_name("CON.txt", 100).unwrap(), "_CON.txt");
/// assert_eq!(display_name(&format!("{}.png", "a".repeat(300)), 20).unwrap().len(), 20);
/// assert_eq!(display_name("...", 100), Err(UploadError::EmptyName));
/// ```
pub fn display_name(name: &str, max_chars: usize) -> Result<String, UploadError> {
    let mut name = secure_filename(name);
    // Each round either returns or makes the name shorter. The device-name guard is
    // checked on the name as it will be shown, after any cut, and a cut is tidied as
    // `secure_filename` tidies (no trailing `.` or `_`), so that showing a shown name
    // again changes nothing.
    loop {
        if name.is_empty() {
            return Err(UploadError::EmptyName);
        }
        let guard = usize::from(is_windows_device(&name));
        if name.len() + guard <= max_chars {
            if guard == 1 {
                name.insert(0, '_');
            }
            return Ok(name);
        }
        name = secure_filename(&cut(&name, max_chars.saturating_sub(guard)));
    }
}

fn is_windows_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    WINDOWS_DEVICES.contains(&stem.as_str())
}

/// The first `max_chars` of `name`, keeping an extension shorter than half of it.
fn cut(name: &str, max_chars: usize) -> String {
    // Only ASCII remains after `secure_filename`, so byte and char counts agree.
    let extension = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|ext| ext.len() < max_chars / 2)
        .unwrap_or_default();
    let keep = max_chars.saturating_sub(extension.len()).min(name.len());
    format!("{}{extension}", &name[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn werkzeug_vectors_match() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/secure_filename.json"
        ))
        .expect("../shared/vectors/secure_filename.json beside the repository");
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = vectors["cases"].as_array().unwrap();
        assert!(cases.len() >= 20);
        for case in cases {
            let input = case["input"].as_str().unwrap();
            assert_eq!(
                secure_filename(input),
                case["output"].as_str().unwrap(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn display_names_are_capped_safe_and_never_empty() {
        for (input, expected) in [
            ("NUL", "_NUL"),
            ("com1.txt", "_com1.txt"),
            ("LPT9.pdf", "_LPT9.pdf"),
            ("CONSOLE.txt", "CONSOLE.txt"),
            ("../../etc/passwd", "etc_passwd"),
            ("..\\..\\windows\\win.ini", "windowswin.ini"),
            ("/etc/shadow", "etc_shadow"),
            ("a\u{202E}gnp.exe", "agnp.exe"),
        ] {
            assert_eq!(
                display_name(input, 100).as_deref(),
                Ok(expected),
                "{input:?}"
            );
        }
        for empty in ["", "...", "..", "/", "\u{0}", "日本", "\u{202E}"] {
            assert_eq!(
                display_name(empty, 100),
                Err(UploadError::EmptyName),
                "{empty:?}"
            );
        }
        // Found by fuzzing: a cut that ends in `.` or `_`, or makes a device name.
        for (input, max_chars, expected) in [
            (
                format!("{}.{}", "a".repeat(99), "b".repeat(60)),
                100,
                "a".repeat(99),
            ),
            ("@UXILAtR.IYxt".to_owned(), 8, "UXILAtR".to_owned()),
            ("L c nap t".to_owned(), 8, "L_c_nap".to_owned()),
            ("CONSOLE".to_owned(), 3, "CO".to_owned()),
            ("COM1X.a".to_owned(), 6, "_COM1".to_owned()),
        ] {
            let shown = display_name(&input, max_chars).unwrap();
            assert_eq!(shown, expected, "{input:?} at {max_chars}");
            assert_eq!(
                display_name(&shown, max_chars).unwrap(),
                shown,
                "idempotent"
            );
        }
        assert_eq!(
            display_name("\0NUL\0\0\n_.", 1),
            Err(UploadError::EmptyName),
            "no room for a guarded device name"
        );
        let long = format!("{}.jpeg", "x".repeat(300));
        let capped = display_name(&long, 100).unwrap();
        assert_eq!(capped.len(), 100);
        assert!(capped.ends_with(".jpeg"));
    }
}
