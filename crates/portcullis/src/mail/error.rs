//! Why a mailer could not be built, and why a message was not sent.
//!
//! No error carries the message body (it holds secret links) nor the SMTP password.

use std::error::Error as StdError;

type Source = Box<dyn StdError + Send + Sync>;

/// A [`Mailer`](super::Mailer) that cannot be built from what it was given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailConfigError {
    /// The SMTP URL does not parse. The URL itself is not repeated: it may hold a password.
    #[error("the SMTP URL does not parse (expected smtps://user:password@host or smtp://user:password@host?tls=required)")]
    InvalidUrl,
    /// A scheme other than `smtp` or `smtps`.
    #[error("the SMTP URL's scheme {0:?} is not smtp or smtps")]
    Scheme(String),
    /// A `tls=` setting other than `required` (on `smtp://`); opportunistic STARTTLS is
    /// refused because whoever sits on the path can strip it.
    #[error("the SMTP URL's tls={0:?} is not supported: use smtp://…?tls=required (STARTTLS) or smtps://")]
    TlsSetting(String),
    /// Plain SMTP to a host that is not loopback: reset links and the SMTP password
    /// would cross the network in clear.
    #[error("plain SMTP to {host} would send reset links and the SMTP password in clear: use smtps:// or smtp://…?tls=required (plain SMTP is only allowed on loopback)")]
    PlainTextRemote {
        /// The host named by the URL.
        host: String,
    },
    /// The sender is not an email address (`PORTCULLIS_MAIL_FROM`).
    #[error("the sender {0:?} is not an email address or `Name <address>` mailbox")]
    InvalidFrom(String),
    /// An extra root certificate that does not parse as PEM, or holds no certificate.
    #[error("the extra trusted root certificates are not PEM certificates")]
    RootCertificate(#[source] Option<Source>),
    /// The TLS client could not be configured.
    #[error("TLS configuration: {0}")]
    Tls(#[source] Source),
    /// The outbox folder could not be created.
    #[error("the outbox folder cannot be created: {0}")]
    Outbox(#[source] std::io::Error),
}

/// A message that was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The recipient is not one email address: this is where a header injection
    /// (`a@b.c\r\nBcc: x@y.z`) or a list of recipients is refused.
    #[error("the recipient is not an email address")]
    InvalidRecipient,
    /// The subject holds a line break or another control character.
    #[error(
        "the subject holds a control character (a line break would start a header of its own)"
    )]
    InvalidSubject,
    /// The message could not be assembled.
    #[error("the message could not be built: {0}")]
    Build(#[source] Source),
    /// The TLS handshake failed: an untrusted or mismatched certificate, or no TLS.
    #[error("TLS with the SMTP server failed: {0}")]
    Tls(#[source] Source),
    /// The server refused the message for good (a 5xx reply): sending again will not help.
    #[error("the SMTP server refused the message: {0}")]
    Rejected(#[source] Source),
    /// The server could not be reached, timed out, refused for now (a 4xx reply), or
    /// does not offer what the configuration requires (STARTTLS): worth retrying
    /// later or fixing the configuration.
    #[error("the SMTP server is unavailable: {0}")]
    Unavailable(#[source] Source),
    /// The outbox file could not be written.
    #[error("the message could not be written to the outbox: {0}")]
    Outbox(#[source] Source),
}
