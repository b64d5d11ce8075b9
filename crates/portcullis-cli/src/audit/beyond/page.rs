//! Checks of what the page and its answers show: software versions, TRACE, forms,
//! cookies, mixed content, Permissions-Policy, error pages.

use super::{check, Check, Exchange, Page, Verdict};

pub(super) fn has_version(value: &str) -> bool {
    value
        .split(|c: char| c.is_whitespace() || c == '/' || c == '(' || c == ',')
        .any(|word| word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('.'))
}

pub(super) fn version_leak(auto: &Exchange) -> Check {
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

pub(super) fn trace(answer: Option<&Exchange>) -> Check {
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
pub(super) fn looks_like_csrf_field(name: &str) -> bool {
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

pub(super) fn csrf_fields(page: Option<&Page>) -> Check {
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

pub(super) fn cookie_caching(auto: &Exchange) -> Check {
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

pub(super) fn cookie_prefixes(set_cookies: &[String]) -> Check {
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

pub(super) fn mixed_content(auto: &Exchange, page: Option<&Page>) -> Check {
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

pub(super) fn permissions_policy(auto: &Exchange) -> Check {
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

pub(super) fn error_page(answer: Option<&Exchange>) -> Check {
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
