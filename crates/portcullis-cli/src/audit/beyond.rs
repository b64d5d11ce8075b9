//! Checks of the checklist the Observatory does not make. They are reported apart and
//! never change the Observatory-compatible score.

use super::fetch::Exchange;
use super::html::Page;
use super::tls::Offer;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Warn,
    Fail,
    /// The check does not apply to this site (a TLS check on plain HTTP).
    NotApplicable,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::NotApplicable => "n/a",
        }
    }
}

/// One check beyond the Observatory's.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) verdict: Verdict,
    pub(crate) why: String,
    pub(crate) fix: &'static str,
}

/// What these checks look at.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) auto: Exchange,
    pub(crate) page: Option<Page>,
    /// The first answer over plain HTTP, if plain HTTP answered.
    pub(crate) plain: Option<Exchange>,
    pub(crate) trace: Option<Exchange>,
    pub(crate) not_found: Option<Exchange>,
    pub(crate) security_txt: Option<Exchange>,
    /// Empty when the site is not served over HTTPS.
    pub(crate) tls_versions: Vec<(&'static str, Offer)>,
    /// The certificate's subject and expiry (Unix seconds).
    pub(crate) certificate: Option<(String, i64)>,
    /// Why the certificate was not trusted (`--insecure` went on).
    pub(crate) untrusted: Option<String>,
    pub(crate) set_cookies: Vec<String>,
    /// Unix seconds.
    pub(crate) now: i64,
}

fn check(name: &'static str, verdict: Verdict, why: impl Into<String>, fix: &'static str) -> Check {
    Check {
        name,
        verdict,
        why: why.into(),
        fix,
    }
}

/// Every check, in the order the report lists them.
pub(crate) fn run(seen: &Seen) -> Vec<Check> {
    vec![
        version_leak(&seen.auto),
        trace(seen.trace.as_ref()),
        csrf_fields(seen.page.as_ref()),
        cookie_caching(&seen.auto),
        cookie_prefixes(&seen.set_cookies),
        mixed_content(&seen.auto, seen.page.as_ref()),
        permissions_policy(&seen.auto),
        security_txt(seen.security_txt.as_ref(), seen.now),
        error_page(seen.not_found.as_ref()),
        hsts_over_http(seen.plain.as_ref()),
        tls_versions(&seen.tls_versions),
        certificate(seen),
    ]
}

fn has_version(value: &str) -> bool {
    value
        .split(|c: char| c.is_whitespace() || c == '/' || c == '(' || c == ',')
        .any(|word| word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('.'))
}

fn version_leak(auto: &Exchange) -> Check {
    const FIX: &str = "Flask: serve through gunicorn behind a proxy with `server_tokens off` (Werkzeug's dev server names itself); Portcullis removes `Server` already";
    let names = [
        "server",
        "x-powered-by",
        "x-aspnet-version",
        "x-aspnetmvc-version",
        "x-generator",
    ];
    let found: Vec<String> = names
        .iter()
        .flat_map(|n| auto.all(n).into_iter().map(move |v| format!("{n}: {v}")))
        .collect();
    let versions: Vec<&String> = found.iter().filter(|f| has_version(f)).collect();
    if let Some(first) = versions.first() {
        check(
            "server-version-leak",
            Verdict::Fail,
            format!("names its software and version ({first})"),
            FIX,
        )
    } else if let Some(first) = found.iter().find(|f| !f.starts_with("server:")) {
        check(
            "server-version-leak",
            Verdict::Warn,
            format!("names its framework ({first})"),
            FIX,
        )
    } else {
        check(
            "server-version-leak",
            Verdict::Pass,
            "no software version in Server or X-Powered-By",
            FIX,
        )
    }
}

fn trace(answer: Option<&Exchange>) -> Check {
    const FIX: &str = "Flask: refuse TRACE at the proxy (nginx answers 405 by default); Portcullis routes answer 405 to TRACE";
    match answer {
        Some(a)
            if (200..300).contains(&a.status)
                && (a.media_type() == "message/http"
                    || String::from_utf8_lossy(&a.body).starts_with("TRACE ")) =>
        {
            check(
                "trace-method",
                Verdict::Fail,
                format!(
                    "TRACE is answered {} and echoes the request (cross-site tracing)",
                    a.status
                ),
                FIX,
            )
        }
        Some(a) => check(
            "trace-method",
            Verdict::Pass,
            format!("TRACE is refused ({})", a.status),
            FIX,
        ),
        None => check("trace-method", Verdict::Pass, "TRACE gets no answer", FIX),
    }
}

/// Field names frameworks give their CSRF tokens.
fn looks_like_csrf_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "csrf",
        "xsrf",
        "token",
        "authenticity",
        "nonce",
        "__requestverification",
    ]
    .iter()
    .any(|marker| name.contains(marker))
}

fn csrf_fields(page: Option<&Page>) -> Check {
    const FIX: &str = "Flask-WTF: CSRFProtect(app) and {{ csrf_token() }} in every form; Portcullis: the CSRF layer (CsrfConfig) and {{ csrf_field() }}";
    let Some(page) = page else {
        return check(
            "csrf-form-tokens",
            Verdict::NotApplicable,
            "the page is not HTML",
            FIX,
        );
    };
    let posts: Vec<_> = page.forms.iter().filter(|f| f.method == "post").collect();
    let bare: Vec<_> = posts
        .iter()
        .filter(|f| !f.field_names.iter().any(|n| looks_like_csrf_field(n)))
        .collect();
    match (posts.len(), bare.first()) {
        (0, _) => check(
            "csrf-form-tokens",
            Verdict::Pass,
            "no POST form on the page",
            FIX,
        ),
        (_, Some(form)) => check(
            "csrf-form-tokens",
            Verdict::Fail,
            format!(
                "{} of {} POST forms carry no CSRF-looking field (action {})",
                bare.len(),
                posts.len(),
                form.action.as_deref().unwrap_or("(this page)")
            ),
            FIX,
        ),
        (1, None) => check(
            "csrf-form-tokens",
            Verdict::Pass,
            "the POST form carries a CSRF-looking field",
            FIX,
        ),
        (n, None) => check(
            "csrf-form-tokens",
            Verdict::Pass,
            format!("all {n} POST forms carry a CSRF-looking field"),
            FIX,
        ),
    }
}

fn cookie_caching(auto: &Exchange) -> Check {
    const FIX: &str = "Flask: set `Cache-Control: no-store` on responses that set cookies; Portcullis: the session layer does";
    if auto.all("set-cookie").is_empty() {
        return check(
            "cookie-caching",
            Verdict::NotApplicable,
            "the page sets no cookie",
            FIX,
        );
    }
    let cache = auto.all("cache-control").join(", ").to_ascii_lowercase();
    if cache.contains("no-store") || cache.contains("private") {
        check(
            "cookie-caching",
            Verdict::Pass,
            format!("sets cookies with Cache-Control: {cache}"),
            FIX,
        )
    } else {
        check(
            "cookie-caching",
            Verdict::Fail,
            "sets cookies on a response a shared cache may store and serve to others",
            FIX,
        )
    }
}

fn cookie_prefixes(set_cookies: &[String]) -> Check {
    const FIX: &str = "Flask: SESSION_COOKIE_NAME = \"__Host-session\" with Secure, Path=/ and no Domain; Portcullis: done over HTTPS";
    let parsed: Vec<cookie::Cookie<'_>> = set_cookies
        .iter()
        .filter_map(|c| cookie::Cookie::parse(c.as_str()).ok())
        .collect();
    if parsed.is_empty() {
        return check(
            "cookie-prefixes",
            Verdict::NotApplicable,
            "no cookie set",
            FIX,
        );
    }
    for c in &parsed {
        let secure = c.secure().unwrap_or(false);
        let broken = (c.name().starts_with("__Host-")
            && (!secure || c.domain().is_some() || c.path() != Some("/")))
            || (c.name().starts_with("__Secure-") && !secure);
        if broken {
            return check(
                "cookie-prefixes",
                Verdict::Fail,
                format!("{} breaks its prefix's rules; browsers drop it", c.name()),
                FIX,
            );
        }
    }
    let session = parsed.iter().find(|c| {
        let name = c.name().to_ascii_lowercase();
        (name.contains("sess") || name.contains("login")) && !c.name().starts_with("__Host-")
    });
    match session {
        Some(c) => check(
            "cookie-prefixes",
            Verdict::Warn,
            format!(
                "session cookie {} has no __Host- prefix: a subdomain can overwrite it",
                c.name()
            ),
            FIX,
        ),
        None => check(
            "cookie-prefixes",
            Verdict::Pass,
            "session cookies are __Host- prefixed, or there are none",
            FIX,
        ),
    }
}

fn mixed_content(auto: &Exchange, page: Option<&Page>) -> Check {
    const FIX: &str = "load every resource over https:// (Flask-Talisman: content_security_policy with upgrade-insecure-requests); Portcullis adds upgrade-insecure-requests over HTTPS";
    let Some(page) = page.filter(|_| auto.url.scheme() == "https") else {
        return check(
            "mixed-content",
            Verdict::NotApplicable,
            "not an HTML page served over HTTPS",
            FIX,
        );
    };
    let plain: Vec<_> = page
        .references
        .iter()
        .filter(|r| r.url.len() >= 7 && r.url[..7].eq_ignore_ascii_case("http://"))
        .collect();
    if let Some(active) = plain.iter().find(|r| r.active) {
        check(
            "mixed-content",
            Verdict::Fail,
            format!(
                "<{}> loads or sends to {} over plain HTTP",
                active.element, active.url
            ),
            FIX,
        )
    } else if let Some(passive) = plain.first() {
        check(
            "mixed-content",
            Verdict::Warn,
            format!(
                "<{}> loads {} over plain HTTP",
                passive.element, passive.url
            ),
            FIX,
        )
    } else {
        check(
            "mixed-content",
            Verdict::Pass,
            "every resource is loaded over HTTPS",
            FIX,
        )
    }
}

fn permissions_policy(auto: &Exchange) -> Check {
    const FIX: &str = "Flask-Talisman: permissions_policy={...}; Portcullis: on by default (SecureHeadersConfig::permissions_policy)";
    match auto.first("permissions-policy") {
        Some(v) => check(
            "permissions-policy",
            Verdict::Pass,
            format!("sent ({} features restricted)", v.split(',').count()),
            FIX,
        ),
        None => check(
            "permissions-policy",
            Verdict::Warn,
            "not sent: every frame may ask for camera, microphone, geolocation…",
            FIX,
        ),
    }
}

fn security_txt(answer: Option<&Exchange>, now: i64) -> Check {
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

/// Markers of a stack trace, and of a framework's stock page.
const TRACE_MARKERS: [&str; 10] = [
    "Traceback (most recent call last)",
    "Werkzeug Debugger",
    "stack backtrace:",
    "panicked at",
    "Exception in thread",
    "at java.",
    "Stack trace:",
    "Server Error in '/' Application",
    "Whoops! There was an error",
    "You're seeing this error because you have <code>DEBUG = True</code>",
];
const BANNER_MARKERS: [&str; 8] = [
    "The requested URL was not found on the server",
    "Cannot GET /",
    "Apache/2",
    "nginx/1",
    "Microsoft-IIS",
    "Powered by",
    "Django",
    "Laravel",
];

fn error_page(answer: Option<&Exchange>) -> Check {
    const FIX: &str = "Flask: DEBUG off in production and @app.errorhandler(404) with a page of your own; Portcullis: uniform error pages (ErrorPagesConfig)";
    let Some(answer) = answer else {
        return check(
            "error-page-leak",
            Verdict::NotApplicable,
            "no answer for a missing page",
            FIX,
        );
    };
    let body = String::from_utf8_lossy(&answer.body);
    if let Some(marker) = TRACE_MARKERS.iter().find(|m| body.contains(*m)) {
        check(
            "error-page-leak",
            Verdict::Fail,
            format!(
                "the {} page shows a stack trace (\"{marker}\")",
                answer.status
            ),
            FIX,
        )
    } else if let Some(marker) = BANNER_MARKERS.iter().find(|m| body.contains(*m)) {
        check(
            "error-page-leak",
            Verdict::Warn,
            format!(
                "the {} page is a framework's stock page (\"{marker}\")",
                answer.status
            ),
            FIX,
        )
    } else {
        check(
            "error-page-leak",
            Verdict::Pass,
            format!(
                "the {} page names no framework and shows no trace",
                answer.status
            ),
            FIX,
        )
    }
}

fn hsts_over_http(plain: Option<&Exchange>) -> Check {
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

fn tls_versions(versions: &[(&'static str, Offer)]) -> Check {
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

fn certificate(seen: &Seen) -> Check {
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
