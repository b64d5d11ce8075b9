//! Outgoing mail for account flows: password-reset links, email confirmation.
//!
//! A [`Mailer`] sends plain-text [`Email`]s either through an SMTP server, over TLS
//! unless the server is on loopback, or, in development, into an outbox folder of
//! `.eml` files that a developer opens to follow the link. [`Settings::mailer`]
//! chooses from `PORTCULLIS_SMTP_URL` and `PORTCULLIS_MAIL_FROM`.
//!
//! What it refuses:
//! - plain SMTP beyond loopback, and opportunistic STARTTLS (which anyone on the path
//!   can strip): `smtp://mail.example.com` is a [`MailConfigError::PlainTextRemote`];
//! - a recipient that is not exactly one address, which is where header injection
//!   (`victim@example.com\r\nBcc: attacker@example.net`) is stopped
//!   ([`MailError::InvalidRecipient`]), and a subject with a line break.
//!
//! The body holds secret links, so it is never logged: a send logs the recipient's
//! domain and the outcome only, and no error carries the body or the SMTP password.
//!
//! ```
//! use portcullis::mail::{Email, Mailer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let outbox = tempfile::tempdir()?;
//! let mailer = Mailer::outbox(outbox.path().join("outbox"), "Example <no-reply@example.com>")?;
//! mailer
//!     .send(&Email::new(
//!         "ada@example.com",
//!         "Reset your password",
//!         "Open https://example.com/reset/TOKEN within an hour.",
//!     ))
//!     .await?;
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`Mailer`] and [`Email`] |
//! | `smtp.rs` | the SMTP URL, its TLS rules and the transport built from it |
//! | `error.rs` | [`MailConfigError`], [`MailError`] |
//!
//! [`Settings::mailer`]: crate::config::Settings::mailer

mod error;
mod smtp;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use error::{MailConfigError, MailError};
pub(crate) use smtp::{Security, SmtpUrl};

/// One plain-text message to one recipient.
///
/// ```
/// use portcullis::mail::Email;
///
/// let email = Email::new("ada@example.com", "Confirm your address", "https://example.com/confirm/TOKEN");
/// assert_eq!(email.to, "ada@example.com");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient: one bare address, checked when sent.
    pub to: String,
    /// The subject: one line.
    pub subject: String,
    /// The plain-text body. Never logged nor shown by `Debug`: it holds secret links.
    pub text: String,
}

impl Email {
    /// A message of `text` to `to`.
    ///
    /// ```
    /// use portcullis::mail::Email;
    ///
    /// let email = Email::new("ada@example.com", "Hello", "Body");
    /// assert!(!format!("{email:?}").contains("Body"));
    /// ```
    pub fn new(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            text: text.into(),
        }
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &format_args!("[{} bytes]", self.text.len()))
            .finish()
    }
}

#[derive(Clone)]
enum Transport {
    Smtp {
        builder: AsyncSmtpTransportBuilder,
        // Built at the first send, inside the runtime its pool task needs; shared by
        // the clones, and so is the pool.
        transport: Arc<OnceLock<AsyncSmtpTransport<Tokio1Executor>>>,
        // What `Debug` shows: never the credentials.
        host: String,
        port: u16,
        security: Security,
    },
    Outbox {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

/// Sends [`Email`]s: through SMTP, or into a development outbox folder.
///
/// Cheap to clone: SMTP connections are pooled and shared by the clones. `Debug` shows
/// the server and sender, never the password.
///
/// ```no_run
/// use portcullis::mail::{Email, Mailer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mailer = Mailer::smtp(
///     "smtps://app:PASSWORD@smtp.example.com",
///     "Example <no-reply@example.com>",
/// )?;
/// mailer
///     .send(&Email::new("ada@example.com", "Reset your password", "https://example.com/reset/TOKEN"))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Mailer");
        debug.field("from", &self.from.to_string());
        match &self.transport {
            Transport::Smtp {
                host,
                port,
                security,
                ..
            } => debug
                .field("smtp", &format_args!("{host}:{port}"))
                .field("security", security),
            Transport::Outbox { dir, .. } => debug.field("outbox", dir),
        };
        debug.finish()
    }
}

fn sender(from: &str) -> Result<Mailbox, MailConfigError> {
    Mailbox::from_str(from).map_err(|_| MailConfigError::InvalidFrom(from.to_owned()))
}

impl Mailer {
    /// Sends through the SMTP server of `url`, from `from` (`no-reply@example.com` or
    /// `Name <no-reply@example.com>`), trusting the Mozilla root certificates.
    ///
    /// - `smtps://user:password@host[:port]`: TLS from the start (port 465);
    /// - `smtp://user:password@host[:port]?tls=required`: STARTTLS, and no mail if the
    ///   server does not offer it (port 587);
    /// - `smtp://host[:port]`: plain SMTP, to a loopback relay only (127.0.0.0/8, `::1`,
    ///   `localhost`; port 25).
    ///
    /// User and password are percent-decoded. Nothing connects until the first send,
    /// which must run on a Tokio runtime: the connection pool's task starts there and
    /// lives as long as that runtime.
    ///
    /// ```
    /// use portcullis::mail::{MailConfigError, Mailer};
    ///
    /// assert!(Mailer::smtp("smtp://127.0.0.1:2525", "no-reply@localhost").is_ok());
    /// assert!(matches!(
    ///     Mailer::smtp("smtp://app:pw@mail.example.com", "no-reply@example.com"),
    ///     Err(MailConfigError::PlainTextRemote { .. })
    /// ));
    /// let mailer = Mailer::smtp("smtps://app:hunter2@mail.example.com", "no-reply@example.com").unwrap();
    /// assert!(!format!("{mailer:?}").contains("hunter2"));
    /// ```
    pub fn smtp(url: &str, from: &str) -> Result<Self, MailConfigError> {
        Self::build_smtp(url, from, None)
    }

    /// As [`Mailer::smtp`], also trusting the PEM root certificates in `roots_pem` (a
    /// private CA, or a test's self-signed one). The Mozilla roots stay trusted; the
    /// certificate must still name the URL's host.
    ///
    /// ```no_run
    /// use portcullis::mail::Mailer;
    ///
    /// let ca = std::fs::read("/etc/ssl/private-ca.pem").unwrap();
    /// let mailer = Mailer::smtp_trusting(
    ///     "smtp://app:PASSWORD@mail.internal?tls=required",
    ///     "no-reply@example.com",
    ///     &ca,
    /// )
    /// .unwrap();
    /// ```
    pub fn smtp_trusting(url: &str, from: &str, roots_pem: &[u8]) -> Result<Self, MailConfigError> {
        Self::build_smtp(url, from, Some(roots_pem))
    }

    fn build_smtp(url: &str, from: &str, roots: Option<&[u8]>) -> Result<Self, MailConfigError> {
        let from = sender(from)?;
        let url = SmtpUrl::parse(url)?;
        let (host, port, security) = (url.host.clone(), url.port, url.security);
        let builder = url.transport(roots)?;
        Ok(Self {
            from,
            transport: Transport::Smtp {
                builder,
                transport: Arc::default(),
                host,
                port,
                security,
            },
        })
    }

    /// Writes each message as a `<id>.eml` file in `dir` instead of sending it: for
    /// development, where following a reset link means opening the newest file. The
    /// folder is created if missing, readable by its owner only on Unix (the files
    /// hold live links).
    ///
    /// ```
    /// use portcullis::mail::Mailer;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let mailer = Mailer::outbox(dir.path().join("outbox"), "no-reply@localhost").unwrap();
    /// assert_eq!(mailer.outbox_dir(), Some(dir.path().join("outbox").as_path()));
    /// ```
    pub fn outbox(dir: impl Into<PathBuf>, from: &str) -> Result<Self, MailConfigError> {
        let from = sender(from)?;
        let dir = dir.into();
        if !dir.is_dir() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(&dir).map_err(MailConfigError::Outbox)?;
        }
        Ok(Self {
            from,
            transport: Transport::Outbox {
                transport: AsyncFileTransport::new(&dir),
                dir,
            },
        })
    }

    /// The outbox folder, when this mailer writes files instead of sending.
    ///
    /// ```
    /// use portcullis::mail::Mailer;
    ///
    /// let mailer = Mailer::smtp("smtp://localhost:2525", "no-reply@localhost").unwrap();
    /// assert_eq!(mailer.outbox_dir(), None);
    /// ```
    pub fn outbox_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Outbox { dir, .. } => Some(dir),
            Transport::Smtp { .. } => None,
        }
    }

    /// Sends `email`. The recipient must be one bare address and the subject one line;
    /// the body goes as UTF-8 plain text, encoded so that long lines (links) arrive
    /// intact. Logs the recipient's domain and the outcome, never the body.
    ///
    /// ```
    /// use portcullis::mail::{Email, MailError, Mailer};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let mailer = Mailer::outbox(dir.path(), "no-reply@localhost").unwrap();
    /// let injected = Email::new("ada@example.com\r\nBcc: eve@example.net", "Reset", "link");
    /// assert!(matches!(mailer.send(&injected).await, Err(MailError::InvalidRecipient)));
    /// # });
    /// ```
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let to = Address::from_str(&email.to).map_err(|_| MailError::InvalidRecipient)?;
        if email.subject.chars().any(char::is_control) {
            return Err(MailError::InvalidSubject);
        }
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.clone()))
            .subject(email.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(body(&email.text))
            .map_err(|e| MailError::Build(Box::new(e)))?;
        let (via, outcome) = match &self.transport {
            Transport::Smtp {
                builder, transport, ..
            } => (
                "smtp",
                transport
                    .get_or_init(|| builder.clone().build())
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|e| {
                        if e.is_permanent() {
                            MailError::Rejected(Box::new(e))
                        } else if is_tls_failure(&e) {
                            MailError::Tls(Box::new(e))
                        } else {
                            MailError::Unavailable(Box::new(e))
                        }
                    }),
            ),
            Transport::Outbox { transport, .. } => (
                "outbox",
                transport
                    .send(message)
                    .await
                    .map(drop)
                    .map_err(|e| MailError::Outbox(Box::new(e))),
            ),
        };
        match &outcome {
            Ok(()) => tracing::info!(recipient_domain = to.domain(), via, "mail sent"),
            Err(error) => {
                tracing::warn!(recipient_domain = to.domain(), via, %error, "mail not sent")
            }
        }
        outcome
    }
}

/// The longest line RFC 5322 allows, without its CRLF.
const MAX_LINE: usize = 998;

/// The body, as 7-bit text when it is ASCII and no line exceeds RFC 5322's limit, so
/// that a long link stays on one line in the outbox file and in any mail reader;
/// otherwise quoted-printable, which readers decode.
fn body(text: &str) -> Body {
    // CRLF, LF and a lone CR each end a line, and each goes out as CRLF: a bare CR or
    // LF is what SMTP smuggling hides an end of data in.
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let seven_bit = unified.bytes().all(|b| b.is_ascii() && b != 0)
        && unified.split('\n').all(|line| line.len() <= MAX_LINE);
    if seven_bit {
        // Checked above: ASCII, no NUL, lines within the limit, only CRLF breaks.
        Body::dangerous_pre_encoded(
            unified.replace('\n', "\r\n").into_bytes(),
            ContentTransferEncoding::SevenBit,
        )
    } else {
        // Quoted-printable can carry any text; should lettre ever refuse, base64 can too.
        Body::new_with_encoding(unified, ContentTransferEncoding::QuotedPrintable)
            .unwrap_or_else(Body::new)
    }
}

/// Whether sending failed in TLS: lettre reports certificate errors from the
/// handshake as connection errors holding the rustls error inside an `io::Error`.
fn is_tls_failure(error: &lettre::transport::smtp::Error) -> bool {
    if error.is_tls() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<rustls::Error>() {
            return true;
        }
        // `io::Error::source` skips the error it wraps: look inside.
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_with_long_lines_stays_seven_bit_and_unwrapped() {
        let link = format!("https://example.com/reset/{}", "t".repeat(300));
        let body = body(&format!("Open:\n{link}\r\nThanks"));
        assert_eq!(body.encoding(), ContentTransferEncoding::SevenBit);
        let raw = String::from_utf8(body.into_vec()).unwrap();
        assert_eq!(raw, format!("Open:\r\n{link}\r\nThanks"));
    }

    #[test]
    fn what_seven_bit_cannot_carry_is_encoded() {
        for text in [
            "Bonjour Zoë".to_owned(),
            "a\0b".to_owned(),
            "x".repeat(MAX_LINE + 1),
        ] {
            let body = body(&text);
            assert!(
                matches!(
                    body.encoding(),
                    ContentTransferEncoding::QuotedPrintable | ContentTransferEncoding::Base64
                ),
                "{text:?}: {:?}",
                body.encoding()
            );
        }
        // No bare CR or LF reaches the wire, whatever the encoding.
        for text in ["a\rb\nc\r\n.\r", "Zoë\r.\n.\r\n", "a\n.\nb"] {
            let raw = body(text).into_vec();
            for (i, byte) in raw.iter().enumerate() {
                match byte {
                    b'\r' => assert_eq!(raw.get(i + 1), Some(&b'\n'), "{text:?}: {raw:?}"),
                    b'\n' => assert_eq!(raw[i - 1], b'\r', "{text:?}: {raw:?}"),
                    _ => {}
                }
            }
        }
        assert_eq!(
            body(&"x".repeat(MAX_LINE)).encoding(),
            ContentTransferEncoding::SevenBit
        );
    }
}
