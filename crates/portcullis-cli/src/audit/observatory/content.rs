//! The tests of what the page says about itself: Referrer-Policy, Subresource
//! Integrity, X-Content-Type-Options, X-Frame-Options, CORP, COOP and COEP
//! (mdn/mdn-http-observatory `src/analyzer/tests/*.js`).

use serde_json::{json, Value};

use super::{keep_worse, outcome, CspOutcome, Exchange, Observed, TestOutcome};

pub(super) fn referrer_policy(observed: &Observed) -> TestOutcome {
    const NAME: &str = "referrer-policy";
    const GOOD: [&str; 4] = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ];
    const BAD: [&str; 4] = [
        "origin",
        "origin-when-cross-origin",
        "unsafe-url",
        "no-referrer-when-downgrade",
    ];
    let mut values: Vec<String> = observed
        .auto
        .all("referrer-policy")
        .iter()
        .map(|v| (*v).to_owned())
        .collect();
    // The <meta> comes last, so that it wins, as in browsers.
    values.extend(observed.page.as_ref().and_then(|p| p.meta_referrer.clone()));
    if values.is_empty() {
        return outcome(NAME, "referrer-policy-not-implemented", true, Value::Null);
    }
    let data = values.join(", ");
    let policy = data
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .rfind(|v| GOOD.contains(&v.as_str()) || BAD.contains(&v.as_str()))
        .unwrap_or_default();
    let result = if GOOD.contains(&policy.as_str()) {
        "referrer-policy-private"
    } else if BAD.contains(&policy.as_str()) {
        "referrer-policy-unsafe"
    } else {
        "referrer-policy-header-invalid"
    };
    outcome(
        NAME,
        result,
        result == "referrer-policy-private",
        json!(data),
    )
}

/// The registrable domain, roughly: the last two labels (no public-suffix list
/// offline), or the whole host for addresses and single labels.
pub(super) fn site_of(host: &str) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return host.to_owned();
    }
    let labels: Vec<&str> = host.trim_end_matches('.').rsplitn(3, '.').collect();
    match labels.as_slice() {
        [tld, name, ..] => format!("{name}.{tld}"),
        _ => host.to_owned(),
    }
}

pub(super) fn subresource_integrity(observed: &Observed, https: bool) -> TestOutcome {
    const NAME: &str = "subresource-integrity";
    const GOODNESS: [&str; 6] = [
        "sri-implemented-and-all-scripts-loaded-securely",
        "sri-implemented-and-external-scripts-loaded-securely",
        "sri-implemented-but-external-scripts-not-loaded-securely",
        "sri-not-implemented-but-external-scripts-loaded-securely",
        "sri-not-implemented-and-external-scripts-not-loaded-securely",
        "sri-not-implemented-response-not-html",
    ];
    let media = observed.auto.media_type();
    let Some(page) = observed
        .page
        .as_ref()
        .filter(|_| media == "text/html" || media == "application/xhtml+xml")
    else {
        return outcome(
            NAME,
            "sri-not-implemented-response-not-html",
            true,
            Value::Null,
        );
    };
    let own_site = site_of(observed.auto.url.host_str().unwrap_or_default());
    let mut result: Option<&'static str> = None;
    let mut foreign = false;
    let mut data = serde_json::Map::new();
    for script in &page.scripts {
        let Some(src) = &script.src else { continue };
        let relative_protocol = src.starts_with("//") && !src.starts_with("///");
        let full = src.starts_with("http://") || src.starts_with("https://");
        let relative_origin = !relative_protocol && !full;
        let same_site = relative_protocol
            || relative_origin
            || url::Url::parse(src)
                .ok()
                .and_then(|u| u.host_str().map(site_of))
                .is_some_and(|s| s == own_site);
        let secure_origin = relative_origin || (same_site && !relative_protocol);
        let secure_scheme = src.starts_with("https://") || (relative_origin && https);
        let integrity = script.integrity.is_some();
        if !secure_origin {
            foreign = true;
            data.insert(src.clone(), json!({ "integrity": script.integrity }));
            match (integrity, secure_scheme) {
                (true, false) => keep_worse(
                    &mut result,
                    "sri-implemented-but-external-scripts-not-loaded-securely",
                    &GOODNESS,
                ),
                (false, true) => keep_worse(
                    &mut result,
                    "sri-not-implemented-but-external-scripts-loaded-securely",
                    &GOODNESS,
                ),
                (false, false) => keep_worse(
                    &mut result,
                    "sri-not-implemented-and-external-scripts-not-loaded-securely",
                    &GOODNESS,
                ),
                (true, true) => {}
            }
        } else if integrity && secure_scheme && result.is_none() {
            result = Some("sri-implemented-and-all-scripts-loaded-securely");
        }
    }
    let result = if page.scripts.is_empty() {
        "sri-not-implemented-but-no-scripts-loaded"
    } else {
        result.unwrap_or(if foreign {
            "sri-implemented-and-external-scripts-loaded-securely"
        } else {
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
        })
    };
    let pass = matches!(
        result,
        "sri-implemented-and-all-scripts-loaded-securely"
            | "sri-implemented-and-external-scripts-loaded-securely"
            | "sri-not-implemented-response-not-html"
            | "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
            | "sri-not-implemented-but-no-scripts-loaded"
    );
    outcome(NAME, result, pass, Value::Object(data))
}

pub(super) fn x_content_type_options(auto: &Exchange) -> TestOutcome {
    let (result, data) = match auto.first("x-content-type-options") {
        Some(v) if v.trim().eq_ignore_ascii_case("nosniff") => {
            ("x-content-type-options-nosniff", json!(v))
        }
        Some(v) => ("x-content-type-options-header-invalid", json!(v)),
        None => ("x-content-type-options-not-implemented", Value::Null),
    };
    outcome(
        "x-content-type-options",
        result,
        result == "x-content-type-options-nosniff",
        data,
    )
}

pub(super) fn x_frame_options(auto: &Exchange, csp: &CspOutcome) -> TestOutcome {
    let header = auto.first("x-frame-options");
    let value = header
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let mut result = match header {
        None => "x-frame-options-not-implemented",
        Some(_) if value == "deny" || value == "sameorigin" => "x-frame-options-sameorigin-or-deny",
        Some(_) if value.starts_with("allow-from") => "x-frame-options-allow-from-origin",
        Some(_) => "x-frame-options-header-invalid",
    };
    if csp
        .policy
        .as_ref()
        .is_some_and(|p| p.contains_key("frame-ancestors"))
    {
        result = "x-frame-options-implemented-via-csp";
    }
    let pass = !matches!(
        result,
        "x-frame-options-not-implemented" | "x-frame-options-header-invalid"
    );
    outcome("x-frame-options", result, pass, json!(header))
}

pub(super) fn cross_origin_resource_policy(auto: &Exchange) -> TestOutcome {
    let header = auto.first("cross-origin-resource-policy");
    let result = match header.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => "corp-not-implemented",
        Some("same-site") => "corp-implemented-with-same-site",
        Some("same-origin") => "corp-implemented-with-same-origin",
        Some("cross-origin") => "corp-implemented-with-cross-origin",
        Some(_) => "corp-header-invalid",
    };
    outcome(
        "cross-origin-resource-policy",
        result,
        result != "corp-header-invalid",
        json!(header),
    )
}

/// COOP and COEP share a shape: one structured-field token from a known list.
pub(super) fn opener_or_embedder(
    auto: &Exchange,
    header: &'static str,
    [not_implemented, invalid]: [&'static str; 2],
    known: &[(&str, &'static str)],
) -> TestOutcome {
    let values = auto.all(header);
    let result = match values.as_slice() {
        [] => not_implemented,
        [value] => {
            let token = value.split(';').next().unwrap_or("").trim();
            known
                .iter()
                .find(|(k, _)| *k == token)
                .map_or(invalid, |(_, result)| *result)
        }
        _ => invalid,
    };
    outcome(header, result, result != invalid, json!(values.first()))
}
