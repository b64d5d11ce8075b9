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
            ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
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

/// Runs the command with `stdin` written to its standard input.
fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;

    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The first vector of the library's fixture file whose hash starts with `prefix`.
fn vector(prefix: &str) -> (String, String) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../portcullis/tests/fixtures/password_vectors.json"
    );
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = vectors
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["hash"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} vector"));
    (
        v["password"].as_str().unwrap().to_owned(),
        v["hash"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn hash_password_output_verifies_and_a_wrong_password_does_not() {
    let output = run_with_stdin(&["hash-password"], "pässwörd with spaces \n");
    assert!(output.status.success(), "{output:?}");
    let hash = stdout(&output).trim().to_owned();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!stdout(&output).contains("pässwörd"));

    // The trailing space is part of the password; the line ending is not.
    let right = run_with_stdin(&["verify-password", &hash], "pässwörd with spaces \r\n");
    assert_eq!(right.status.code(), Some(0), "{right:?}");
    assert_eq!(stdout(&right).trim(), "match");

    let wrong = run_with_stdin(&["verify-password", &hash], "pässwörd with spaces\n");
    assert_eq!(wrong.status.code(), Some(1), "{wrong:?}");
    assert_eq!(stdout(&wrong).trim(), "no match");
}

#[test]
fn hash_password_salts_each_hash_and_refuses_an_empty_password() {
    let a = run_with_stdin(&["hash-password"], "same\n");
    let b = run_with_stdin(&["hash-password"], "same");
    assert!(a.status.success() && b.status.success());
    assert_ne!(stdout(&a), stdout(&b));
    for empty in ["", "\n", "\r\n"] {
        let output = run_with_stdin(&["hash-password"], empty);
        assert_eq!(output.status.code(), Some(2), "{empty:?}");
        assert!(stdout(&output).is_empty());
        assert!(!output.stderr.is_empty());
    }
}

#[test]
fn verify_password_accepts_werkzeug_and_bcrypt_hashes() {
    for prefix in [
        "scrypt:16384:8:1$",
        "pbkdf2:sha256:1000$",
        "$2b$04$",
        "$2y$10$",
    ] {
        let (password, hash) = vector(prefix);
        let right = run_with_stdin(&["verify-password", &hash], &format!("{password}\n"));
        assert_eq!(right.status.code(), Some(0), "{hash}: {right:?}");
        assert_eq!(stdout(&right).trim(), "match");
        let wrong = run_with_stdin(&["verify-password", &hash], &format!("{password}x\n"));
        assert_eq!(wrong.status.code(), Some(1), "{hash}: {wrong:?}");
    }
}

#[test]
fn verify_password_exits_2_on_a_malformed_hash() {
    for hash in [
        "",
        "not a hash",
        "md5$salt$0123",
        "scrypt:3:8:1$salt$00",
        "$argon2id$garbage",
        "$2b$31$0123456789012345678901234567890123456789012345678901",
    ] {
        let output = run_with_stdin(&["verify-password", hash], "password\n");
        assert_eq!(output.status.code(), Some(2), "{hash:?}: {output:?}");
        assert!(stdout(&output).is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("malformed"), "{stderr}");
    }
}
