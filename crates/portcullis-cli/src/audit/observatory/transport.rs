//! The tests of how the site is reached: cookies, CORS, redirection, HSTS
//! (mdn/mdn-http-observatory `src/analyzer/tests/{cookies,cors,redirection,strict-transport-security}.js`).

use serde_json::{json, Value};

use super::{keep_worse, outcome, Observed, TestOutcome};

/// HSTS max-age counted as six months (the Observatory's "white lie": 180 days).
const SIX_MONTHS: u64 = 15_552_000;

pub(super) fn cookies(observed: &Observed, hsts: bool) -> TestOutcome {
    // Worst last, as the Observatory orders them.
    const GOODNESS: [&str; 7] = [
        "cookies-without-secure-flag-but-protected-by-hsts",
        "cookies-without-secure-flag",
        "cookies-session-without-secure-flag-but-protected-by-hsts",
        "cookies-samesite-flag-invalid",
        "cookies-anticsrf-without-samesite-flag",
        "cookies-session-without-httponly-flag",
        "cookies-session-without-secure-flag",
    ];
    let mut result: Option<&'static str> = None;
    for raw in observed.auto.all("set-cookie") {
        let invalid = raw.split(';').skip(1).any(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            key.trim().eq_ignore_ascii_case("samesite")
                && !["lax", "strict", "none"].contains(&value.trim().to_ascii_lowercase().as_str())
        });
        if invalid {
            keep_worse(&mut result, "cookies-samesite-flag-invalid", &GOODNESS);
        }
    }
    // The jar: the last cookie of each name wins.
    let mut jar: Vec<cookie::Cookie<'static>> = Vec::new();
    for raw in &observed.set_cookies {
        if let Ok(parsed) = cookie::Cookie::parse(raw.clone()) {
            jar.retain(|c| c.name() != parsed.name());
            jar.push(parsed);
        }
    }
    jar.retain(|c| !c.name().is_empty() && c.name() != "heroku-session-affinity");
    if jar.is_empty() {
        return outcome("cookies", "cookies-not-found", true, Value::Null);
    }
    let mut missing_same_site = false;
    let mut data = serde_json::Map::new();
    for c in &jar {
        let name = c.name().to_ascii_lowercase();
        let session = name.contains("login") || name.contains("sess");
        let anticsrf = name.contains("csrf");
        let secure = c.secure().unwrap_or(false);
        let http_only = c.http_only().unwrap_or(false);
        if !secure && c.same_site() == Some(cookie::SameSite::None) {
            keep_worse(&mut result, "cookies-samesite-flag-invalid", &GOODNESS);
        }
        match (secure, hsts) {
            (false, true) => keep_worse(
                &mut result,
                "cookies-without-secure-flag-but-protected-by-hsts",
                &GOODNESS,
            ),
            (false, false) => keep_worse(&mut result, "cookies-without-secure-flag", &GOODNESS),
            _ => {}
        }
        if anticsrf && c.same_site().is_none() {
            keep_worse(
                &mut result,
                "cookies-anticsrf-without-samesite-flag",
                &GOODNESS,
            );
        }
        match (session && !secure, hsts) {
            (true, true) => keep_worse(
                &mut result,
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                &GOODNESS,
            ),
            (true, false) => keep_worse(
                &mut result,
                "cookies-session-without-secure-flag",
                &GOODNESS,
            ),
            _ => {}
        }
        if session && !http_only {
            keep_worse(
                &mut result,
                "cookies-session-without-httponly-flag",
                &GOODNESS,
            );
        }
        missing_same_site |= c.same_site().is_none();
        data.insert(
            c.name().to_owned(),
            json!({
                "secure": secure,
                "httponly": http_only,
                "samesite": c.same_site().map(|s| s.to_string()),
                "path": c.path(),
                "domain": c.domain(),
            }),
        );
    }
    let result = result.unwrap_or(if missing_same_site {
        "cookies-secure-with-httponly-sessions"
    } else {
        "cookies-secure-with-httponly-sessions-and-samesite"
    });
    let pass = matches!(
        result,
        "cookies-secure-with-httponly-sessions-and-samesite"
            | "cookies-secure-with-httponly-sessions"
    );
    outcome("cookies", result, pass, Value::Object(data))
}

pub(super) fn cors(observed: &Observed) -> TestOutcome {
    const NAME: &str = "cross-origin-resource-sharing";
    let Some(answer) = &observed.cors else {
        return outcome(
            NAME,
            "cross-origin-resource-sharing-not-implemented",
            true,
            Value::Null,
        );
    };
    let Some(acao) = answer.first("access-control-allow-origin") else {
        return outcome(
            NAME,
            "cross-origin-resource-sharing-not-implemented",
            true,
            Value::Null,
        );
    };
    let data = acao.trim().to_ascii_lowercase();
    let credentials = answer
        .first("access-control-allow-credentials")
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("true"));
    let result = if data == "*" {
        "cross-origin-resource-sharing-implemented-with-public-access"
    } else if acao == observed.cors_origin && credentials {
        "cross-origin-resource-sharing-implemented-with-universal-access"
    } else {
        "cross-origin-resource-sharing-implemented-with-restricted-access"
    };
    let pass = result != "cross-origin-resource-sharing-implemented-with-universal-access";
    outcome(NAME, result, pass, json!(data))
}

pub(super) fn redirection(observed: &Observed) -> TestOutcome {
    const NAME: &str = "redirection";
    let Some(chain) = &observed.http else {
        return outcome(NAME, "redirection-not-needed-no-http", true, Value::Null);
    };
    let route: Vec<&url::Url> = chain.hops.iter().map(|h| &h.url).collect();
    let data = json!({
        "route": route.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "status_code": chain.hops.first().map(|h| h.status),
    });
    let result = if !chain.verified() {
        "redirection-invalid-cert"
    } else if route.len() == 1 {
        "redirection-missing"
    } else if route[route.len() - 1].scheme() != "https" {
        "redirection-not-to-https"
    } else if route[1].scheme() == "http" {
        "redirection-not-to-https-on-initial-redirection"
    } else if route[0].host_str() != route[1].host_str() {
        "redirection-off-host-from-http"
    } else {
        "redirection-to-https"
    };
    outcome(NAME, result, result == "redirection-to-https", data)
}

pub(super) fn strict_transport_security(observed: &Observed) -> TestOutcome {
    const NAME: &str = "strict-transport-security";
    let Some(https) = &observed.https else {
        return outcome(NAME, "hsts-not-implemented-no-https", false, Value::Null);
    };
    if !observed.https_verified {
        return outcome(NAME, "hsts-invalid-cert", false, Value::Null);
    }
    let values = https.all("strict-transport-security");
    let Some(first) = values.first() else {
        return outcome(NAME, "hsts-not-implemented", false, Value::Null);
    };
    let header: String = first.chars().take(1024).collect();
    let mut max_age = None;
    let (mut subdomains, mut preload) = (false, false);
    for parameter in header.split(';').map(|p| p.trim().to_ascii_lowercase()) {
        if let Some(value) = parameter.strip_prefix("max-age=") {
            max_age = value.trim().parse::<u64>().ok();
        } else if parameter == "includesubdomains" {
            subdomains = true;
        } else if parameter == "preload" {
            preload = true;
        }
    }
    // Sent twice (a comma once joined) is as invalid as no max-age.
    let result = match max_age {
        _ if values.len() > 1 || header.contains(',') => "hsts-header-invalid",
        None => "hsts-header-invalid",
        Some(age) if age < SIX_MONTHS => "hsts-implemented-max-age-less-than-six-months",
        Some(_) => "hsts-implemented-max-age-at-least-six-months",
    };
    let data = json!({
        "data": header, "max_age": max_age, "include_subdomains": subdomains,
        "preload": preload, "preloaded": false,
    });
    outcome(
        NAME,
        result,
        result == "hsts-implemented-max-age-at-least-six-months",
        data,
    )
}
