use super::*;
use crate::config::{redact_url_password, ConfigError, Environment};

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

const STRONG: &str = "m3W6l0sXq8V2c1tYz9RkU7eJb4NfA5hG0pLiQwEoDdI";

fn failing(vars: &[(&str, &str)]) -> Vec<&'static str> {
    settings(vars)
        .unwrap()
        .audit()
        .failures()
        .map(|c| c.name)
        .collect()
}

#[test]
fn a_sound_production_configuration_passes() {
    let vars = [
        ("PORTCULLIS_ENV", "production"),
        ("PORTCULLIS_SECRET_KEY", STRONG),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
    ];
    assert_eq!(failing(&vars), Vec::<&str>::new());
    let s = settings(&vars).unwrap();
    assert!(s.cookie_secure);
    assert!(!format!("{s:?}").contains(STRONG));
}

#[test]
fn each_production_problem_is_named() {
    let base = [
        ("PORTCULLIS_ENV", "production"),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    assert_eq!(failing(&with(&[])), ["secret-key"]);
    assert_eq!(
        failing(&with(&[("PORTCULLIS_SECRET_KEY", "changeme")])),
        ["secret-key"]
    );
    let strong = ("PORTCULLIS_SECRET_KEY", STRONG);
    assert_eq!(
        failing(&with(&[
            strong,
            ("PORTCULLIS_SECRET_KEY_FALLBACKS", "secret")
        ])),
        ["secret-key-fallbacks"]
    );
    assert_eq!(
        failing(&with(&[strong, ("PORTCULLIS_COOKIE_SECURE", "false")])),
        ["secure-cookies"]
    );
    assert_eq!(
        failing(&with(&[
            strong,
            ("PORTCULLIS_CORS_ORIGINS", "*"),
            ("PORTCULLIS_CORS_CREDENTIALS", "true")
        ])),
        ["cors"]
    );
    assert_eq!(
        failing(&with(&[strong, ("PORTCULLIS_RATE_LIMITS", "bench")])),
        ["rate-limits"]
    );
    assert_eq!(
        failing(&with(&[
            strong,
            ("PORTCULLIS_INSTANCES", "3"),
            ("DATABASE_URL", "postgres://db/app")
        ])),
        ["shared-state"]
    );
    assert_eq!(
        failing(&[
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_SECRET_KEY", STRONG),
            ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
        ]),
        ["https"]
    );
    assert_eq!(
        failing(&[
            ("PORTCULLIS_ENV", "production"),
            ("PORTCULLIS_SECRET_KEY", STRONG),
            ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        ]),
        ["allowed-hosts"]
    );
}

#[test]
fn trusting_the_whole_internet_is_no_proxy_and_no_https() {
    let base = [
        ("PORTCULLIS_ENV", "production"),
        ("PORTCULLIS_SECRET_KEY", STRONG),
        ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
    ];
    for everyone in ["0.0.0.0/0", "::/0", "10.0.0.0/8, 0.0.0.0/1", "2000::/3"] {
        let mut vars = base.to_vec();
        vars.push(("PORTCULLIS_TRUSTED_PROXIES", everyone));
        assert_eq!(failing(&vars), ["trusted-proxies", "https"], "{everyone}");
    }
    // A CDN's published ranges are public but narrow: fine.
    let mut vars = base.to_vec();
    vars.push((
        "PORTCULLIS_TRUSTED_PROXIES",
        "173.245.48.0/20, 2400:cb00::/32",
    ));
    assert_eq!(failing(&vars), Vec::<&str>::new());
}

#[test]
fn a_passphrase_is_not_a_secret_key() {
    let base = [
        ("PORTCULLIS_ENV", "production"),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
    ];
    for phrase in [
        "correct horse battery staple is great",
        "correcthorsebatterystapleisgreatandevenlongerstill",
        "CORRECTHORSEBATTERYSTAPLEISGREATANDEVENLONGER",
    ] {
        let mut vars = base.to_vec();
        vars.push(("PORTCULLIS_SECRET_KEY", phrase));
        assert_eq!(failing(&vars), ["secret-key"], "{phrase}");
        let s = settings(&vars).unwrap();
        assert!(s.audit().to_string().contains("passphrase"), "{phrase}");
    }
    // The three forms random keys come in all pass.
    for key in [
        crate::keys::SecretKey::generate()
            .to_base64url()
            .to_string(),
        "q0t3Ql1w8PkmVb2D6rWzfqVbE5cVnqG7+kq2h0lQm3E=".to_owned(),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
    ] {
        let mut vars = base.to_vec();
        vars.push(("PORTCULLIS_SECRET_KEY", &key));
        assert_eq!(failing(&vars), Vec::<&str>::new(), "{key}");
    }
}

#[test]
fn several_instances_without_one_shared_key_are_refused_in_every_mode() {
    for env in ["development", "production"] {
        let err = settings(&[("PORTCULLIS_ENV", env), ("PORTCULLIS_INSTANCES", "2")]).unwrap_err();
        assert!(err.to_string().contains("PORTCULLIS_INSTANCES=2"), "{err}");
    }
    assert!(settings(&[
        ("PORTCULLIS_INSTANCES", "2"),
        ("PORTCULLIS_SECRET_KEY", STRONG)
    ])
    .is_ok());
}

#[test]
fn development_refuses_to_face_a_network_unless_told() {
    for addr in ["0.0.0.0:8000", "[::]:8000", "192.0.2.10:80"] {
        let err = settings(&[("PORTCULLIS_ADDR", addr)]).unwrap_err();
        assert!(err.to_string().contains("not a loopback address"), "{err}");
        assert!(settings(&[
            ("PORTCULLIS_ADDR", addr),
            ("PORTCULLIS_DEV_ALLOW_REMOTE", "true")
        ])
        .is_ok());
    }
    assert!(settings(&[("PORTCULLIS_ADDR", "[::1]:8000")]).is_ok());
    assert!(settings(&[
        ("PORTCULLIS_ENV", "production"),
        ("PORTCULLIS_ADDR", "0.0.0.0:8000")
    ])
    .is_ok());
}

#[test]
fn credentialed_cors_to_plain_http_origins_fails_except_on_loopback() {
    let base = [
        ("PORTCULLIS_ENV", "production"),
        ("PORTCULLIS_SECRET_KEY", STRONG),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
        ("PORTCULLIS_CORS_CREDENTIALS", "true"),
    ];
    let with = |origins: &'static str| {
        let mut v = base.to_vec();
        v.push(("PORTCULLIS_CORS_ORIGINS", origins));
        v
    };
    assert_eq!(
        failing(&with("https://app.example, http://app.example")),
        ["cors"]
    );
    assert_eq!(failing(&with("HTTP://app.example")), ["cors"]);
    assert!(failing(&with(
        "https://app.example, http://localhost:3000, http://127.0.0.1:5173"
    ))
    .is_empty());
}

#[test]
fn debug_never_prints_connection_passwords() {
    let s = settings(&[
        (
            "DATABASE_URL",
            "postgres://app:pg-hunter2@db.internal:5432/app?sslmode=require",
        ),
        ("REDIS_URL", "rediss://default:redis-hunter2@cache:6380/0"),
        ("PORTCULLIS_SECRET_KEY", STRONG),
    ])
    .unwrap();
    let printed = format!("{s:?}");
    for secret in ["pg-hunter2", "redis-hunter2", STRONG] {
        assert!(!printed.contains(secret), "{printed}");
    }
    assert!(
        printed.contains("postgres://app:[redacted]@db.internal:5432/app"),
        "{printed}"
    );
    assert_eq!(
        redact_url_password("redis://TOKEN@cache"),
        "redis://[redacted]@cache"
    );
    assert_eq!(redact_url_password("not a url with p@ss"), "[redacted]");
    assert_eq!(
        redact_url_password("postgres://db/app?user=app&password=pg-hunter2"),
        "postgres://db/app"
    );
    assert_eq!(
        redact_url_password("postgres://u:p@ss@host/db"),
        "postgres://u:[redacted]@host/db"
    );
}

#[test]
fn clear_text_redis_and_postgres_warn_without_failing() {
    let base = [
        ("PORTCULLIS_ENV", "production"),
        ("PORTCULLIS_SECRET_KEY", STRONG),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
        // Mail delivered over TLS, so that the only warnings are the stores'.
        ("PORTCULLIS_SMTP_URL", "smtps://app:pw@smtp.example.com"),
    ];
    let warned = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        let report = settings(&v).unwrap().audit();
        assert!(report.passed(), "{report}");
        report.warnings().map(|c| c.name).collect::<Vec<_>>()
    };
    assert_eq!(
        warned(&[
            ("REDIS_URL", "redis://cache:6379"),
            ("DATABASE_URL", "postgres://app@db/app")
        ]),
        ["redis-transport", "database-transport"]
    );
    assert!(warned(&[
        ("REDIS_URL", "rediss://cache:6380"),
        ("DATABASE_URL", "postgres://app@db/app?sslmode=verify-full")
    ])
    .is_empty());
    assert!(warned(&[("REDIS_URL", "redis://:pw@cache:6379")]).is_empty());
    assert!(
        warned(&[("DATABASE_URL", "postgres://app@db/app?sslmode=prefer")])
            .contains(&"database-transport")
    );
    let table = settings(&[("REDIS_URL", "redis://cache")])
        .unwrap()
        .audit()
        .to_string();
    assert!(table.contains("warn"), "{table}");
}

#[test]
fn unparseable_values_are_errors_in_any_environment() {
    let err = settings(&[
        ("PORTCULLIS_ENV", "staging"),
        ("PORTCULLIS_ADDR", "localhost"),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("PORTCULLIS_TLS_CERT", "/x.pem"),
        ("PORTCULLIS_INSTANCES", "0"),
        ("PORTCULLIS_COOKIE_SECURE", "maybe"),
    ])
    .unwrap_err();
    assert_eq!(err.problems.len(), 6, "{err}");
}

#[test]
fn development_defaults_are_convenient_and_generate_a_key() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.environment, Environment::Development);
    assert!(!s.cookie_secure);
    assert_eq!(s.addr.to_string(), "127.0.0.1:8000");
    assert!(!s.has_secret_key());
    assert_eq!(s.keyring().current().len(), 32);
    // Generated once: every component of the process signs with the same key.
    let signed = s.keyring().signer(crate::keys::Purpose::CSRF).sign(b"x");
    assert!(s
        .keyring()
        .signer(crate::keys::Purpose::CSRF)
        .verify(&signed)
        .is_ok());
}

#[test]
fn key_file_is_read_and_must_not_be_combined_with_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, format!("{STRONG}\n")).unwrap();
    let path = path.to_str().unwrap();
    let s = settings(&[("PORTCULLIS_SECRET_KEY_FILE", path)]).unwrap();
    assert!(s.has_secret_key());
    assert!(settings(&[
        ("PORTCULLIS_SECRET_KEY_FILE", path),
        ("PORTCULLIS_SECRET_KEY", STRONG)
    ])
    .is_err());
    assert!(settings(&[("PORTCULLIS_SECRET_KEY_FILE", "/nonexistent/key")]).is_err());
}

#[test]
fn fallback_keys_verify_old_values_until_they_are_removed() {
    use crate::keys::Purpose;
    let old = crate::keys::SecretKey::generate().to_base64url();
    let new = crate::keys::SecretKey::generate().to_base64url();
    let signed = settings(&[("PORTCULLIS_SECRET_KEY", &old)])
        .unwrap()
        .keyring()
        .signer(Purpose::SESSION)
        .sign(b"session 7");
    let rotated = settings(&[
        ("PORTCULLIS_SECRET_KEY", &new),
        ("PORTCULLIS_SECRET_KEY_FALLBACKS", &old),
    ])
    .unwrap();
    assert_eq!(
        rotated
            .keyring()
            .signer(Purpose::SESSION)
            .verify(&signed)
            .unwrap(),
        b"session 7"
    );
    let retired = settings(&[("PORTCULLIS_SECRET_KEY", &new)]).unwrap();
    assert!(retired
        .keyring()
        .signer(Purpose::SESSION)
        .verify(&signed)
        .is_err());
}

#[test]
fn report_table_names_every_check() {
    let table = settings(&[]).unwrap().audit().to_string();
    for name in [
        "secret-key",
        "secret-key-fallbacks",
        "secure-cookies",
        "https",
        "cors",
        "rate-limits",
        "shared-state",
        "shared-database",
    ] {
        assert!(table.contains(name), "{table}");
    }
    assert!(table.contains("fix: run `portcullis keygen`"));
    #[cfg(feature = "mail")]
    assert!(table.contains("mail "), "{table}");
}

#[cfg(feature = "mail")]
mod mail {
    use super::*;

    const SOUND: [(&str, &str); 4] = [
        ("PORTCULLIS_ENV", "production"),
        ("PORTCULLIS_SECRET_KEY", STRONG),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("PORTCULLIS_ALLOWED_HOSTS", "example.com"),
    ];

    fn mail_check(smtp_url: Option<&str>) -> (Check, bool) {
        let mut vars = SOUND.to_vec();
        if let Some(url) = smtp_url {
            vars.push(("PORTCULLIS_SMTP_URL", url));
        }
        let report = settings(&vars).unwrap().audit();
        let check = report
            .checks
            .iter()
            .find(|c| c.name == "mail")
            .cloned()
            .unwrap();
        (check, report.passed())
    }

    #[test]
    fn clear_text_smtp_beyond_loopback_is_refused_in_production() {
        for url in [
            "smtp://app:hunter2@mail.example.com",
            "smtp://app:hunter2@mail.example.com:587",
            "smtp://10.1.2.3",
            "smtp://localhost.example.com",
        ] {
            let (check, passed) = mail_check(Some(url));
            assert_eq!(check.status, Status::Fail, "{url}: {check:?}");
            assert!(!passed, "{url}");
            assert!(!check.detail.contains("hunter2"), "{check:?}");
        }
        let vars = [
            SOUND.as_slice(),
            &[("PORTCULLIS_SMTP_URL", "smtp://app:hunter2@mail.example.com")],
        ]
        .concat();
        let s = settings(&vars).unwrap();
        let refused = s.enforce().unwrap_err().to_string();
        assert!(
            refused.contains("refusing to start in production: mail"),
            "{refused}"
        );
        assert!(!refused.contains("hunter2"), "{refused}");
        assert!(s.mailer().is_err());
        // Opportunistic STARTTLS can be stripped on the path: not a valid setting.
        assert!(settings(
            &[
                SOUND.as_slice(),
                &[(
                    "PORTCULLIS_SMTP_URL",
                    "smtp://mail.example.com?tls=opportunistic"
                )]
            ]
            .concat()
        )
        .is_err());
    }

    #[test]
    fn tls_and_loopback_relays_pass() {
        for url in [
            "smtps://app:pw@mail.example.com",
            "smtp://app:pw@mail.example.com?tls=required",
            "smtp://127.0.0.1:25",
            "smtp://[::1]:2525",
            "smtp://localhost",
        ] {
            let (check, passed) = mail_check(Some(url));
            assert_eq!(check.status, Status::Pass, "{url}: {check:?}");
            assert!(passed, "{url}");
        }
    }

    #[test]
    fn production_without_smtp_warns_but_starts() {
        let (check, passed) = mail_check(None);
        assert_eq!(check.status, Status::Warn, "{check:?}");
        assert!(check.detail.contains("outbox"), "{check:?}");
        assert!(passed);
        assert!(settings(&SOUND).unwrap().enforce().is_ok());
    }

    #[test]
    fn smtp_password_is_redacted_and_sender_checked() {
        let s = settings(&[
            (
                "PORTCULLIS_SMTP_URL",
                "smtps://app:hunter2@mail.example.com",
            ),
            ("PORTCULLIS_MAIL_FROM", "Example <no-reply@example.com>"),
        ])
        .unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("smtps://app:[redacted]@mail.example.com"),
            "{printed}"
        );
        assert!(s.mailer().unwrap().outbox_dir().is_none());
        assert!(!format!("{:?}", s.mailer().unwrap()).contains("hunter2"));
        let err = settings(&[(
            "PORTCULLIS_MAIL_FROM",
            "no-reply@example.com\r\nBcc: eve@example.net",
        )])
        .unwrap_err();
        assert!(err.to_string().contains("PORTCULLIS_MAIL_FROM"), "{err}");
        assert_eq!(settings(&[]).unwrap().mail_from, "no-reply@localhost");
    }
}
