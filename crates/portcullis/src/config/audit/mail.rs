//! The audit of outgoing mail: reset links and confirmation links must not cross the
//! network in clear, and production should deliver them somewhere.

use super::Check;
use crate::config::settings::Settings;
use crate::mail::{MailConfigError, Security, SmtpUrl};

impl Settings {
    /// How account mail leaves the process.
    pub(super) fn audit_mail(&self, checks: &mut Vec<Check>) {
        let Some(url) = &self.smtp_url else {
            checks.push(Check::warn(
                "mail",
                format!(
                    "no PORTCULLIS_SMTP_URL: account mail (password resets, confirmations) is written to {} and nobody receives it",
                    self.data_dir.join("outbox").display()
                ),
                "set PORTCULLIS_SMTP_URL=smtps://USER:PASSWORD@smtp.example.com if the app sends mail",
            ));
            return;
        };
        checks.push(match SmtpUrl::parse(url) {
            Ok(parsed) => Check::pass(
                "mail",
                match parsed.security {
                    Security::ImplicitTls => format!("SMTP over TLS to {}", parsed.host),
                    Security::StartTls => format!("SMTP with STARTTLS required to {}", parsed.host),
                    Security::Plain => format!("SMTP to a loopback relay ({})", parsed.host),
                },
            ),
            Err(MailConfigError::PlainTextRemote { host }) => Check::fail(
                "mail",
                format!(
                    "PORTCULLIS_SMTP_URL sends to {host} without TLS: reset links and the SMTP password would cross the network in clear"
                ),
                "use smtps://USER:PASSWORD@host, or smtp://USER:PASSWORD@host?tls=required for STARTTLS",
            ),
            Err(error) => Check::fail(
                "mail",
                format!("PORTCULLIS_SMTP_URL: {error}"),
                "use smtps://USER:PASSWORD@host, or smtp://USER:PASSWORD@host?tls=required for STARTTLS",
            ),
        });
    }
}
