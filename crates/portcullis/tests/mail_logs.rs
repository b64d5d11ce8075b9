//! What mail leaves in the logs: the recipient's domain and the outcome, never the
//! body (it holds a secret link) or the SMTP password. A binary of its own: tracing
//! caches which log lines are enabled per call site, process-wide, so a capturing
//! subscriber shares the process with no other test.

#[path = "support/log_capture.rs"]
mod log_capture;

use log_capture::CapturedLog;
use portcullis::mail::{Email, MailError, Mailer};

fn long_link() -> String {
    let prefix = "https://app.example.com/account/reset?token=";
    let token: String = (0..200 - prefix.len())
        .map(|i| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789-_"[i % 38]))
        .collect();
    format!("{prefix}{token}")
}

fn reset_body(link: &str) -> String {
    format!("Bonjour Zoë,\n\nTo choose a new password, open:\n{link}\n\nThe link expires in one hour.\n")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// A current-thread runtime: every send runs on this thread, under this subscriber.
#[tokio::test(flavor = "current_thread")]
async fn logs_name_the_recipient_domain_and_outcome_never_the_body() {
    let (captured, _guard) = CapturedLog::install();
    let link = long_link();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Mailer::outbox(dir.path(), "no-reply@example.com").unwrap();
    outbox
        .send(&Email::new(
            "ada.lovelace@example.org",
            "Reset",
            reset_body(&link),
        ))
        .await
        .unwrap();
    // Nothing listens on this port: the failure is logged too.
    let unreachable = Mailer::smtp(
        &format!("smtp://app:hunter2@127.0.0.1:{}", free_port()),
        "no-reply@example.com",
    )
    .unwrap();
    let failed = unreachable
        .send(&Email::new(
            "grace.hopper@example.net",
            "Reset",
            reset_body(&link),
        ))
        .await
        .unwrap_err();
    assert!(matches!(failed, MailError::Unavailable(_)), "{failed:?}");
    let log = captured.text();
    assert!(
        log.contains("mail sent") && log.contains("example.org"),
        "{log}"
    );
    assert!(
        log.contains("mail not sent") && log.contains("example.net"),
        "{log}"
    );
    for secret in [
        link.as_str(),
        "token=",
        "Bonjour",
        "ada.lovelace",
        "grace.hopper",
        "hunter2",
    ] {
        assert!(!log.contains(secret), "{secret:?} in {log}");
    }
}
