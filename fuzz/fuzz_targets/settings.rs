//! The environment settings parser, `Settings::from_lookup`, on arbitrary variables.
//!
//! The input is lines `NAME=VALUE`; a name may be written without its `PORTCULLIS_`
//! prefix. `PORTCULLIS_SECRET_KEY_FILE` is never passed on: it names a file to read,
//! and the fuzzer would read the machine's files (or `/dev/zero`).
//!
//! Properties: nothing panics; settings that parse give a keyring and an allowed-host
//! list; their `Debug` output never shows the secret key.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use portcullis::config::Settings;

const NAMES: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "PORTCULLIS_ADDR",
    "PORTCULLIS_ALLOWED_HOSTS",
    "PORTCULLIS_COOKIE_SECURE",
    "PORTCULLIS_CORS_CREDENTIALS",
    "PORTCULLIS_CORS_ORIGINS",
    "PORTCULLIS_DATA_DIR",
    "PORTCULLIS_DEV_ALLOW_REMOTE",
    "PORTCULLIS_ENV",
    "PORTCULLIS_HTTP_ADDR",
    "PORTCULLIS_INSTANCES",
    "PORTCULLIS_LOG",
    "PORTCULLIS_RATE_LIMITS",
    "PORTCULLIS_REDIS_PREFIX",
    "PORTCULLIS_SECRET_KEY",
    "PORTCULLIS_SECRET_KEY_FALLBACKS",
    "PORTCULLIS_TLS_CERT",
    "PORTCULLIS_TLS_KEY",
    "PORTCULLIS_TRUSTED_PROXIES",
    "PORTCULLIS_TRUST_FORWARDED_HOST",
    "PORTCULLIS_UPLOAD_DIR",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut vars = HashMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let full = NAMES
            .iter()
            .find(|n| **n == name || n.strip_prefix("PORTCULLIS_") == Some(name));
        if let Some(full) = full {
            vars.insert(*full, value.to_owned());
        }
    }
    let Ok(settings) = Settings::from_lookup(|name| vars.get(name).cloned()) else {
        return;
    };
    let _ = settings.keyring();
    let _ = settings.served_hosts();
    let _ = settings.is_production();
    if let Some(key) = vars.get("PORTCULLIS_SECRET_KEY") {
        let key = key.trim();
        // Only a key no other variable repeats: those may be shown.
        let elsewhere = vars
            .iter()
            .any(|(name, value)| *name != "PORTCULLIS_SECRET_KEY" && value.contains(key));
        if key.len() >= 16 && !elsewhere {
            let shown = format!("{settings:?}");
            assert!(!shown.contains(key), "Debug shows the secret key: {shown}");
        }
    }
});
