//! The `portcullis` command, run as a user runs it.

use std::process::{Command, Output};

use base64::Engine as _;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn keygen_prints_a_fresh_strong_256_bit_key() {
    let a = run(&["keygen"], &[]);
    let b = run(&["keygen"], &[]);
    assert!(a.status.success());
    let key_a = stdout(&a).trim().to_owned();
    let key_b = stdout(&b).trim().to_owned();
    assert_ne!(key_a, key_b);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&key_a)
        .unwrap();
    assert_eq!(bytes.len(), 32);
    assert!(portcullis::keys::SecretKey::parse(&key_a)
        .weakness()
        .is_none());
}

#[test]
fn check_fails_an_insecure_environment_with_a_table() {
    let output = run(&["check"], &[("PORTCULLIS_RATE_LIMITS", "bench")]);
    assert_eq!(output.status.code(), Some(1));
    let table = stdout(&output);
    assert!(table.contains("check"), "{table}");
    for row in ["secret-key ", "https ", "rate-limits "] {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row: {table}"));
        assert!(line.contains("FAIL"), "{line}");
    }
    let cors = table.lines().find(|l| l.starts_with("cors ")).unwrap();
    assert!(cors.contains(" ok "), "{cors}");
    assert!(table.contains("fix: run `portcullis keygen`"), "{table}");
}

#[test]
fn check_passes_a_sound_production_environment() {
    let key = stdout(&run(&["keygen"], &[])).trim().to_owned();
    let output = run(
        &["check"],
        &[
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_SECRET_KEY", &key),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        ],
    );
    let table = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{table}");
    assert!(!table.contains("FAIL"), "{table}");
    assert!(!table.contains(&key), "the key was printed");
}

#[test]
fn check_reports_unreadable_variables() {
    let output = run(&["check"], &[("PORTCULLIS_ADDR", "everywhere")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("PORTCULLIS_ADDR"));
}

#[test]
fn dev_cert_writes_a_certificate_and_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tls");
    let output = run(&["dev-cert", "--out", out.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{output:?}");
    let cert = std::fs::read_to_string(out.join("cert.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    let key_path = out.join("key.pem");
    assert!(std::fs::read_to_string(&key_path)
        .unwrap()
        .contains("PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
    }
}
