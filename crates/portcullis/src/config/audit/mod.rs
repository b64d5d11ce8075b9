//! The production audit: what `portcullis check` prints and what production refuses.
//!
//! Each check is one row of the [`Report`], in a stable order: the keys first, then
//! what crosses the network, then the stores the instances share, then outgoing mail.
//!
//! | file | what it checks |
//! |---|---|
//! | `keys.rs` | the secret key and its fallbacks |
//! | `network.rs` | Secure cookies, trusted proxies, allowed hosts, HTTPS, CORS |
//! | `stores.rs` | rate-limit mode, shared state and database, Redis and PostgreSQL transports |
//! | `mail.rs` | the SMTP transport (feature `mail`) |
//! | `report.rs` | [`Check`], [`Report`] and its table, [`AuditFailed`] |
//! | `tests.rs` | every check against the environment that trips it |

mod keys;
#[cfg(feature = "mail")]
mod mail;
mod network;
mod report;
mod stores;
#[cfg(test)]
mod tests;

pub use report::{AuditFailed, Check, Report, Status};

use super::settings::Settings;

impl Settings {
    /// Checks the configuration against what production requires.
    ///
    /// The audit does not depend on `PORTCULLIS_ENV`: it says what production would
    /// refuse, so that `portcullis check` can be run before switching over.
    pub fn audit(&self) -> Report {
        let mut checks = Vec::new();
        self.audit_keys(&mut checks);
        self.audit_network(&mut checks);
        self.audit_stores(&mut checks);
        #[cfg(feature = "mail")]
        self.audit_mail(&mut checks);
        Report { checks }
    }

    /// In production, refuses to go on when the audit fails: the error lists every
    /// failing check, one line each, for the app to print before it exits (the
    /// library never ends the process itself). Passes in development.
    ///
    /// ```
    /// use portcullis::config::Settings;
    ///
    /// let settings = Settings::from_lookup(|name| {
    ///     (name == "PORTCULLIS_ENV").then(|| "production".to_owned())
    /// })
    /// .unwrap();
    /// let refused = settings.enforce().unwrap_err();
    /// assert!(refused.to_string().contains("refusing to start in production: secret-key"));
    /// ```
    pub fn enforce(&self) -> Result<(), AuditFailed> {
        if !self.is_production() {
            return Ok(());
        }
        let report = self.audit();
        if report.passed() {
            Ok(())
        } else {
            Err(AuditFailed::new(report))
        }
    }
}
