//! Outgoing mail: SMTP when `PORTCULLIS_SMTP_URL` is set, otherwise an `.eml` file per
//! message under `<data dir>/outbox/`, so that the app needs nothing else to run.

use portcullis::error::Error;
use portcullis::mail::Email;

use crate::AppState;

/// Sends a plain-text message; a failure is logged (without the body, which holds a
/// secret link) and answered 503.
pub(crate) async fn send(
    state: &AppState,
    to: &str,
    subject: &str,
    text: &str,
) -> Result<(), Error> {
    state
        .mailer
        .send(&Email::new(to, subject, text))
        .await
        .map_err(|error| {
            tracing::error!(%error, "a message could not be sent");
            Error::service_unavailable(5)
        })
}
