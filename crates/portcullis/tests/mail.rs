//! Mail through a real SMTP server on loopback, Python's aiosmtpd, in plain SMTP,
//! STARTTLS and implicit TLS with a test CA; and the development outbox.
//!
//! The server is started from the Python named by `PORTCULLIS_SMTP_PYTHON` (a virtual
//! environment with aiosmtpd, which `.ci/run` makes). Without it the SMTP tests skip,
//! unless `PORTCULLIS_REQUIRE_SMTP` is set, and then they fail.
#![cfg(feature = "mail")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::mail::{Email, MailConfigError, MailError, Mailer};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::Value;

/// A 200-character link: longer than the 76 characters quoted-printable allows per
/// line, so that it arrives intact only if the encoding is undone correctly.
fn long_link() -> String {
    let prefix = "https://app.example.com/account/reset?token=";
    let token: String = (0..200 - prefix.len())
        .map(|i| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789-_"[i % 38]))
        .collect();
    let link = format!("{prefix}{token}");
    assert_eq!(link.len(), 200);
    link
}

/// The body of a reset message: non-ASCII text, so that it cannot go as 7-bit, and
/// the long link on a line of its own.
fn reset_body(link: &str) -> String {
    format!("Bonjour Zoë,\n\nTo choose a new password, open:\n{link}\n\nThe link expires in one hour.\n")
}

fn python() -> Option<PathBuf> {
    match std::env::var_os("PORTCULLIS_SMTP_PYTHON") {
        Some(python) => Some(python.into()),
        None => {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_SMTP").is_none(),
                "PORTCULLIS_REQUIRE_SMTP is set but PORTCULLIS_SMTP_PYTHON is not"
            );
            eprintln!("SKIPPED: PORTCULLIS_SMTP_PYTHON is not set; the SMTP tests did not run");
            None
        }
    }
}

/// How the test server protects its connections.
enum ServerTls<'a> {
    None,
    /// STARTTLS offered and required before MAIL FROM.
    StartTls(&'a TestCert),
    /// TLS from the first byte (SMTPS).
    Implicit(&'a TestCert),
}

/// An aiosmtpd process delivering into a maildir. Dropping it kills that process, and
/// only that one.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    python: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpServer {
    fn start(python: &Path, tls: ServerTls<'_>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let port = free_port();
        let mut command = Command::new(python);
        command
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match tls {
            ServerTls::None => {}
            ServerTls::StartTls(cert) => {
                let (cert, key) = cert.write(dir.path());
                command.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
            }
            ServerTls::Implicit(cert) => {
                let (cert, key) = cert.write(dir.path());
                command
                    .arg("--smtpscert")
                    .arg(cert)
                    .arg("--smtpskey")
                    .arg(key);
            }
        }
        command.arg(&maildir);
        let child = command.spawn().expect("start aiosmtpd");
        let mut server = Self {
            child,
            port,
            maildir,
            python: python.to_owned(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("aiosmtpd exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Every delivered message, decoded by Python's own `email` package: envelope
    /// recipients, `To`, `Subject` and the body text after transfer decoding.
    fn received(&self) -> Vec<Value> {
        const READ: &str = r#"
import email, email.policy, json, pathlib, sys
out = []
for path in sorted(pathlib.Path(sys.argv[1], "new").glob("*")):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    out.append({
        "rcpt": message["X-RcptTo"],
        "to": message["To"],
        "from": message["From"],
        "subject": message["Subject"],
        "content_type": message.get_content_type(),
        "body": message.get_content(),
    })
print(json.dumps(out))
"#;
        if !self.maildir.join("new").is_dir() {
            return Vec::new();
        }
        let output = Command::new(&self.python)
            .args(["-c", READ])
            .arg(&self.maildir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap()
    }
}

/// A test CA and a server certificate it signed.
struct TestCert {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl TestCert {
    fn new(names: &[&str]) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "portcullis mail test CA");
        let ca = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        Self {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

fn assert_delivered(server: &SmtpServer, to: &str, subject: &str, link: &str) {
    let received = server.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let message = &received[0];
    assert_eq!(message["rcpt"], to);
    assert_eq!(message["to"], to);
    assert_eq!(message["from"], "Example <no-reply@example.com>");
    assert_eq!(message["subject"], subject);
    assert_eq!(message["content_type"], "text/plain");
    let body = message["body"].as_str().unwrap().replace("\r\n", "\n");
    assert!(body.contains(&format!("\n{link}\n")), "{body}");
    assert!(body.starts_with("Bonjour Zoë,"), "{body}");
}

#[tokio::test]
async fn plain_smtp_on_loopback_delivers_the_link_intact() {
    let Some(python) = python() else { return };
    let server = SmtpServer::start(&python, ServerTls::None);
    let mailer = Mailer::smtp(
        &format!("smtp://127.0.0.1:{}", server.port),
        "Example <no-reply@example.com>",
    )
    .unwrap();
    let link = long_link();
    mailer
        .send(&Email::new(
            "zoe@example.org",
            "Réinitialisez votre mot de passe",
            reset_body(&link),
        ))
        .await
        .unwrap();
    assert_delivered(
        &server,
        "zoe@example.org",
        "Réinitialisez votre mot de passe",
        &link,
    );
}

#[tokio::test]
async fn starttls_required_with_a_trusted_ca_delivers() {
    let Some(python) = python() else { return };
    let cert = TestCert::new(&["localhost", "127.0.0.1"]);
    let server = SmtpServer::start(&python, ServerTls::StartTls(&cert));
    let mailer = Mailer::smtp_trusting(
        &format!("smtp://127.0.0.1:{}?tls=required", server.port),
        "Example <no-reply@example.com>",
        cert.ca_pem.as_bytes(),
    )
    .unwrap();
    let link = long_link();
    mailer
        .send(&Email::new(
            "ada@example.com",
            "Confirm your address",
            reset_body(&link),
        ))
        .await
        .unwrap();
    assert_delivered(&server, "ada@example.com", "Confirm your address", &link);
}

#[tokio::test]
async fn implicit_tls_with_a_trusted_ca_delivers() {
    let Some(python) = python() else { return };
    let cert = TestCert::new(&["localhost", "127.0.0.1"]);
    let server = SmtpServer::start(&python, ServerTls::Implicit(&cert));
    let mailer = Mailer::smtp_trusting(
        &format!("smtps://localhost:{}", server.port),
        "Example <no-reply@example.com>",
        cert.ca_pem.as_bytes(),
    )
    .unwrap();
    let link = long_link();
    mailer
        .send(&Email::new("ada@example.com", "Reset", reset_body(&link)))
        .await
        .unwrap();
    assert_delivered(&server, "ada@example.com", "Reset", &link);
}

#[tokio::test]
async fn tls_required_refuses_a_server_without_starttls() {
    let Some(python) = python() else { return };
    // A server that offers no STARTTLS, as one behind a stripping attacker looks.
    let server = SmtpServer::start(&python, ServerTls::None);
    let cert = TestCert::new(&["127.0.0.1"]);
    let mailer = Mailer::smtp_trusting(
        &format!("smtp://app:secret@127.0.0.1:{}?tls=required", server.port),
        "no-reply@example.com",
        cert.ca_pem.as_bytes(),
    )
    .unwrap();
    let refused = mailer
        .send(&Email::new("ada@example.com", "Reset", long_link()))
        .await
        .unwrap_err();
    // Nothing, the password included, was sent in clear.
    assert!(matches!(refused, MailError::Unavailable(_)), "{refused:?}");
    assert!(refused.to_string().contains("STARTTLS"), "{refused}");
    assert!(!refused.to_string().contains("secret"), "{refused}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn untrusted_or_misnamed_certificates_are_refused() {
    let Some(python) = python() else { return };
    let cert = TestCert::new(&["127.0.0.1"]);
    let server = SmtpServer::start(&python, ServerTls::StartTls(&cert));
    let url = format!("smtp://127.0.0.1:{}?tls=required", server.port);
    // The test CA is not among the Mozilla roots.
    let untrusted = Mailer::smtp(&url, "no-reply@example.com").unwrap();
    let refused = untrusted
        .send(&Email::new("ada@example.com", "Reset", long_link()))
        .await
        .unwrap_err();
    assert!(matches!(refused, MailError::Tls(_)), "{refused:?}");
    // Another CA's certificate, trusted for nothing here.
    let other = TestCert::new(&["127.0.0.1"]);
    let wrong_ca =
        Mailer::smtp_trusting(&url, "no-reply@example.com", other.ca_pem.as_bytes()).unwrap();
    assert!(wrong_ca
        .send(&Email::new("ada@example.com", "Reset", long_link()))
        .await
        .is_err());
    assert!(server.received().is_empty());

    // A trusted CA, but a certificate for another name.
    let misnamed = TestCert::new(&["mail.example.com"]);
    let server = SmtpServer::start(&python, ServerTls::Implicit(&misnamed));
    let mailer = Mailer::smtp_trusting(
        &format!("smtps://127.0.0.1:{}", server.port),
        "no-reply@example.com",
        misnamed.ca_pem.as_bytes(),
    )
    .unwrap();
    let refused = mailer
        .send(&Email::new("ada@example.com", "Reset", long_link()))
        .await
        .unwrap_err();
    assert!(matches!(refused, MailError::Tls(_)), "{refused:?}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn header_injection_through_the_recipient_or_subject_sends_nothing() {
    let Some(python) = python() else { return };
    let server = SmtpServer::start(&python, ServerTls::None);
    let mailer = Mailer::smtp(
        &format!("smtp://127.0.0.1:{}", server.port),
        "no-reply@example.com",
    )
    .unwrap();
    for to in [
        "ada@example.com\r\nBcc: eve@example.net",
        "ada@example.com\nBcc: eve@example.net",
        "ada@example.com, eve@example.net",
        "Ada <ada@example.com>",
        "ada@example.com>\r\nRCPT TO:<eve@example.net",
        "",
    ] {
        let refused = mailer
            .send(&Email::new(to, "Reset", long_link()))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, MailError::InvalidRecipient),
            "{to:?}: {refused:?}"
        );
    }
    for subject in ["Reset\r\nBcc: eve@example.net", "Reset\nX: y", "Reset\0"] {
        let refused = mailer
            .send(&Email::new("ada@example.com", subject, long_link()))
            .await
            .unwrap_err();
        assert!(matches!(refused, MailError::InvalidSubject), "{subject:?}");
    }
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn outbox_writes_one_private_eml_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("data").join("outbox");
    let mailer = Mailer::outbox(&outbox, "Example <no-reply@example.com>").unwrap();
    let links: Vec<String> = (0..3)
        .map(|i| format!("https://app.example.com/confirm/{i}-{}", "x".repeat(150)))
        .collect();
    for link in &links {
        mailer
            .send(&Email::new(
                "ada@example.com",
                "Confirm your address",
                format!("Open:\n{link}\n"),
            ))
            .await
            .unwrap();
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    let mut contents: Vec<String> = files
        .iter()
        .map(|f| {
            assert_eq!(f.extension().unwrap(), "eml");
            std::fs::read_to_string(f).unwrap()
        })
        .collect();
    for link in &links {
        let holding: Vec<_> = contents
            .iter()
            .filter(|c| c.contains(link.as_str()))
            .collect();
        assert_eq!(holding.len(), 1, "{link}");
    }
    contents.sort();
    assert!(contents.iter().all(|c| c.contains("To: ada@example.com")));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&outbox).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "outbox folder mode {mode:o}");
    }
    let injected = mailer
        .send(&Email::new(
            "ada@example.com\r\nBcc: eve@example.net",
            "Confirm",
            "x",
        ))
        .await
        .unwrap_err();
    assert!(matches!(injected, MailError::InvalidRecipient));
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 3);
}

#[test]
fn clear_text_smtp_beyond_loopback_is_refused() {
    for url in [
        "smtp://mail.example.com",
        "smtp://app:pw@mail.example.com:587",
        "smtp://192.0.2.1",
        "smtp://mail.example.com?tls=opportunistic",
    ] {
        assert!(
            matches!(
                Mailer::smtp(url, "no-reply@example.com"),
                Err(MailConfigError::PlainTextRemote { .. } | MailConfigError::TlsSetting(_))
            ),
            "{url}"
        );
    }
    assert!(matches!(
        Mailer::smtp("smtps://mail.example.com", "not an address"),
        Err(MailConfigError::InvalidFrom(_))
    ));
}
