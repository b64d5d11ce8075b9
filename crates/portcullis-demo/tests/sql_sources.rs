//! No SQL is ever built from strings: every query in the sources is a literal with
//! `?` placeholders, bound through sqlx. This test reads every Rust source of the
//! workspace and fails on SQL assembled with `format!`, `concat!` or `push_str`.

use std::path::{Path, PathBuf};

/// SQL as this code base writes it: keywords in capitals.
const SQL_WORDS: &[&str] = &[
    "SELECT ",
    "INSERT INTO",
    "UPDATE ",
    "DELETE FROM",
    "DROP TABLE",
    " WHERE ",
    "VALUES (",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text of every string-building call in `source`: from the macro or method name
/// to its closing parenthesis (string literals are skipped while matching).
fn builders(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in [
        "format!(",
        "concat!(",
        "push_str(",
        "format_args!(",
        "write!(",
    ] {
        let mut rest = source;
        while let Some(at) = rest.find(marker) {
            let call = &rest[at..];
            let mut depth = 0usize;
            let mut in_string = false;
            let mut escaped = false;
            let mut end = call.len();
            for (i, c) in call.char_indices() {
                match (in_string, escaped, c) {
                    (true, true, _) => escaped = false,
                    (true, false, '\\') => escaped = true,
                    (true, false, '"') => in_string = false,
                    (false, _, '"') => in_string = true,
                    (false, _, '(') => depth += 1,
                    (false, _, ')') => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            found.push(call[..end].to_owned());
            rest = &rest[at + marker.len()..];
        }
    }
    found
}

#[test]
fn no_sql_is_built_with_string_formatting() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    sources(&root.join("crates"), &mut files);
    assert!(files.len() > 10, "the sources were not found");
    let this_file = Path::new(file!()).file_name().unwrap();
    let mut offences = Vec::new();
    for file in files.iter().filter(|f| f.file_name() != Some(this_file)) {
        let source = std::fs::read_to_string(file).unwrap();
        for call in builders(&source) {
            if SQL_WORDS.iter().any(|w| call.contains(w)) {
                offences.push(format!(
                    "{}: {}",
                    file.display(),
                    call.lines().next().unwrap()
                ));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "SQL built from strings:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_scan_finds_string_built_sql() {
    let bad = "let q = format!(\"SELECT * FROM users WHERE name = '{}'\", name);\n";
    let calls = builders(bad);
    assert_eq!(calls.len(), 1);
    assert!(calls[0].ends_with("name)"), "{calls:?}");
    assert!(SQL_WORDS.iter().any(|w| calls[0].contains(w)));
    let concatenated =
        "let mut q = String::new();\nq.push_str(\"DELETE FROM comments WHERE id = \");\n";
    assert!(builders(concatenated)
        .iter()
        .any(|c| c.contains("DELETE FROM")));
}
