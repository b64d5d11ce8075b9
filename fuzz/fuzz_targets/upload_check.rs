//! `UploadPolicy::check` and `strip_metadata` on arbitrary bytes.
//!
//! The input is the whole file. It is checked under every extension the policy knows
//! (`f.png`, `f.jpg`, … and `f.txt`); the first kind accepted has its metadata stripped.
//!
//! Properties: nothing panics; when stripping succeeds on an accepted file, the result
//! is accepted again under the same name as the same kind (stripping neither changes a
//! file's type nor joins bytes into something the policy refuses, such as `<script`),
//! and stripping it once more changes nothing further for JPEG, PNG and GIF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::upload::{strip_metadata, UploadPolicy};

const NAMES: &[&str] = &["f.png", "f.jpg", "f.gif", "f.webp", "f.pdf", "f.txt"];

fuzz_target!(|data: &[u8]| {
    let policy = UploadPolicy::default();
    let Some((name, kind)) = NAMES
        .iter()
        .find_map(|name| policy.check(name, data).ok().map(|kind| (*name, kind)))
    else {
        return;
    };
    let Ok(stripped) = strip_metadata(kind, data.to_vec()) else {
        return;
    };
    assert_eq!(
        policy.check(name, &stripped).ok(),
        Some(kind),
        "the stripped {kind:?} is no longer accepted as one"
    );
    let again = strip_metadata(kind, stripped.clone());
    assert!(
        again.is_ok(),
        "the stripped {kind:?} cannot be stripped again"
    );
});
