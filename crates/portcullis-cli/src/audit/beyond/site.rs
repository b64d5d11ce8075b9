//! Checks of the site around the page: security.txt, HSTS over plain HTTP, TLS
//! versions and the certificate.

use super::{check, Check, Exchange, Offer, Seen, Verdict};

pub(super) fn security_txt(answer: Option<&Exchange>, now: i64) -> Check {
    const FIX: &str = "serve /.well-known/security.txt (RFC 9116) with Contact: and an Expires: within a year; in Flask a static route, in Portcullis a route of the app";
    let Some(answer) = answer.filter(|a| a.status == 200 && a.media_type() == "text/plain") else {
        return check(
            "security-txt",
            Verdict::Warn,
            "no /.well-known/security.txt: researchers have no published contact",
            FIX,
        );
    };
    let text = String::from_utf8_lossy(&answer.body);
    let field = |wanted: &str| {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.trim().to_owned())
    };
    let expires = field("expires").and_then(|e| chrono::DateTime::parse_from_rfc3339(&e).ok());
    match (field("contact"), expires) {
        (None, _) => check(
            "security-txt",
            Verdict::Fail,
            "security.txt has no Contact field",
            FIX,
        ),
        (_, None) => check(
            "security-txt",
            Verdict::Fail,
            "security.txt has no valid Expires field (RFC 3339 date)",
            FIX,
        ),
        (_, Some(e)) if e.timestamp() <= now => check(
            "security-txt",
            Verdict::Fail,
            format!("security.txt expired on {}", e.date_naive()),
            FIX,
        ),
        (Some(contact), Some(e)) => check(
            "security-txt",
            Verdict::Pass,
            format!("Contact {contact}, expires {}", e.date_naive()),
            FIX,
        ),
    }
}

pub(super) fn hsts_over_http(plain: Option<&Exchange>) -> Check {
    const FIX: &str = "send Strict-Transport-Security on HTTPS answers only (Flask-Talisman does); Portcullis does";
    match plain {
        None => check("hsts-over-http", Verdict::NotApplicable, "plain HTTP does not answer", FIX),
        Some(p) if p.first("strict-transport-security").is_some() => check(
            "hsts-over-http",
            Verdict::Warn,
            "Strict-Transport-Security is sent over plain HTTP, where browsers ignore it (RFC 6797 §8.1)",
            FIX,
        ),
        Some(_) => check("hsts-over-http", Verdict::Pass, "no Strict-Transport-Security over plain HTTP", FIX),
    }
}

pub(super) fn tls_versions(versions: &[(&'static str, Offer)]) -> Check {
    const FIX: &str = "allow TLS 1.2 and 1.3 only at the proxy (nginx: ssl_protocols TLSv1.2 TLSv1.3); Portcullis's built-in TLS (rustls) speaks nothing older";
    if versions.is_empty() {
        return check(
            "tls-versions",
            Verdict::NotApplicable,
            "not served over HTTPS",
            FIX,
        );
    }
    let accepted: Vec<&str> = versions
        .iter()
        .filter(|(_, o)| *o == Offer::Accepted)
        .map(|(n, _)| *n)
        .collect();
    let list = if accepted.is_empty() {
        "none".to_owned()
    } else {
        accepted.join(", ")
    };
    if accepted.iter().any(|v| *v == "TLS 1.0" || *v == "TLS 1.1") {
        check(
            "tls-versions",
            Verdict::Fail,
            format!("accepts {list}: TLS 1.0 and 1.1 are deprecated (RFC 8996)"),
            FIX,
        )
    } else if !accepted.contains(&"TLS 1.3") {
        check(
            "tls-versions",
            Verdict::Warn,
            format!("accepts {list}; no TLS 1.3"),
            FIX,
        )
    } else {
        check(
            "tls-versions",
            Verdict::Pass,
            format!("accepts {list}"),
            FIX,
        )
    }
}

pub(super) fn certificate(seen: &Seen) -> Check {
    const FIX: &str = "a certificate from a public CA (Let's Encrypt), renewed automatically; `portcullis audit --ca` trusts a development one";
    if seen.auto.url.scheme() != "https" && seen.tls_versions.is_empty() {
        return check(
            "certificate",
            Verdict::NotApplicable,
            "not served over HTTPS",
            FIX,
        );
    }
    if let Some(reason) = &seen.untrusted {
        return check(
            "certificate",
            Verdict::Fail,
            format!("not trusted: {reason}"),
            FIX,
        );
    }
    let Some((subject, not_after)) = &seen.certificate else {
        return check(
            "certificate",
            Verdict::Warn,
            "the certificate could not be read",
            FIX,
        );
    };
    let days = (not_after - seen.now).div_euclid(86_400);
    let date = chrono::DateTime::from_timestamp(*not_after, 0)
        .map(|d| d.date_naive().to_string())
        .unwrap_or_default();
    let verdict = match days {
        d if d < 14 => Verdict::Fail,
        d if d < 30 => Verdict::Warn,
        _ => Verdict::Pass,
    };
    let why = if days < 0 {
        format!("{subject} expired on {date}")
    } else {
        format!("trusted; {subject} expires {date} (in {days} days)")
    };
    check("certificate", verdict, why, FIX)
}
