//! Content-Security-Policy, parsed directive by directive and judged as the HTTP
//! Observatory judges it (mdn/mdn-http-observatory, `src/analyzer/cspParser.js` and
//! `src/analyzer/tests/csp.js`, algorithm version 4): the same source sets, the same
//! order of findings, the same result identifiers.

use std::collections::{BTreeMap, BTreeSet};

/// Sources that allow (nearly) anything.
const DANGEROUSLY_BROAD: [&str; 8] = [
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
];
/// Sources that allow inline code.
const UNSAFE_INLINE: [&str; 2] = ["'unsafe-inline'", "data:"];
/// Directives whose content cannot run code.
const PASSIVE_DIRECTIVES: [&str; 2] = ["img-src", "media-src"];
/// How nonces and hashes start.
const NONCES_HASHES: [&str; 4] = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];
/// Directives a `<meta>` policy may not set.
const DISALLOWED_IN_META: [&str; 3] = ["frame-ancestors", "report-uri", "sandbox"];
/// Directives the Observatory lets appear twice (it notes it, and takes away the bonus).
const ALLOWED_DUPLICATES: [&str; 2] = ["report-uri", "report-to"];
/// The shortest policy worth parsing (`img-src` less one character).
const SHORTEST_POLICY: usize = 6;

/// A parsed policy: directive (lower case) → sources (lower case).
pub(crate) type Policy = BTreeMap<String, BTreeSet<String>>;

/// Why a policy cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid(pub(crate) String);

/// Parses one or more policies (every header line, every comma-separated policy in
/// it, every `<meta>`) into the directives they enforce together.
///
/// The first policy counts as written. A later policy narrows a directive it repeats
/// to the sources both list (the Observatory matches path prefixes too; an exact match
/// is what browsers enforce for the common case), and adds directives the first lacks.
pub(crate) fn parse(policies: &[String]) -> Result<(Policy, BTreeSet<String>), Invalid> {
    let mut combined = Policy::new();
    let mut duplicates = BTreeSet::new();
    for (index, raw) in policies.iter().enumerate() {
        let text: String = raw.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        let text = text.trim();
        if text.len() < SHORTEST_POLICY {
            return Err(Invalid(format!("policy too short: {text:?}")));
        }
        let mut seen = BTreeSet::new();
        for entry in text.split(';') {
            let mut words = entry.split_whitespace();
            let Some(directive) = words.next() else {
                continue;
            };
            let directive = directive.to_ascii_lowercase();
            if !seen.insert(directive.clone()) {
                if ALLOWED_DUPLICATES.contains(&directive.as_str()) {
                    duplicates.insert(directive);
                    continue;
                }
                return Err(Invalid(format!("{directive} is given twice")));
            }
            let mut sources: BTreeSet<String> = words.map(str::to_lowercase).collect();
            if sources.is_empty() && directive.ends_with("-src") {
                sources.insert("'none'".into());
            }
            let sources = drop_covered(sources);
            match combined.get_mut(&directive) {
                Some(existing) if index > 0 => {
                    existing.retain(|s| sources.contains(s));
                    if existing.is_empty() {
                        existing.insert("'none'".into());
                    }
                }
                _ => {
                    combined.insert(directive, sources);
                }
            }
        }
    }
    Ok((combined, duplicates))
}

/// As the Observatory does within one policy: a source that starts with another
/// source of the same list adds nothing to it (`https://a.example/x` after
/// `https://a.example`).
fn drop_covered(sources: BTreeSet<String>) -> BTreeSet<String> {
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut previous: Option<String> = None;
    for source in sources {
        if let Some(prev) = &previous {
            if source.starts_with(prev.as_str()) {
                continue;
            }
        }
        previous = Some(source.clone());
        kept.insert(source);
    }
    kept
}

/// The `content-security-policy` test's outcome.
#[derive(Debug, Clone)]
pub(crate) struct CspOutcome {
    pub(crate) result: &'static str,
    pub(crate) pass: bool,
    /// The directives enforced, when a policy was found and parsed.
    pub(crate) policy: Option<Policy>,
    /// What the analysis found, by the Observatory's flag names.
    pub(crate) flags: BTreeMap<&'static str, bool>,
}

/// Judges the policies a page enforces. `header` are the header values, `meta` the
/// `<meta http-equiv>` ones, `report_only` whether a report-only header was sent,
/// `https` whether the page was served over HTTPS.
pub(crate) fn judge(
    header: &[String],
    meta: &[String],
    report_only: bool,
    https: bool,
) -> CspOutcome {
    let outcome = |result: &'static str| CspOutcome {
        result,
        pass: false,
        policy: None,
        flags: BTreeMap::new(),
    };
    let all: Vec<String> = header.iter().chain(meta).cloned().collect();
    let (mut csp, duplicates) = match parse(&all) {
        Ok(parsed) => parsed,
        Err(_) => return outcome("csp-header-invalid"),
    };
    let header_only = parse(header).map(|(p, _)| p).unwrap_or_default();
    let mut meta_only = parse(meta).map(|(p, _)| p).unwrap_or_default();
    for directive in DISALLOWED_IN_META {
        meta_only.remove(directive);
    }
    if header_only.len() + meta_only.len() == 0 {
        return outcome(if report_only {
            "csp-not-implemented-but-reporting-enabled"
        } else {
            "csp-not-implemented"
        });
    }

    // An unset directive, with no default-src to fall back on, allows anything.
    let pick = |csp: &Policy, names: &[&str]| {
        names
            .iter()
            .find_map(|n| csp.get(*n).cloned())
            .unwrap_or_else(|| BTreeSet::from(["*".to_owned()]))
    };
    let base_uri = pick(&csp, &["base-uri"]);
    // frame-ancestors counts from headers only: browsers ignore it in <meta>.
    let frame_ancestors = pick(&header_only, &["frame-ancestors"]);
    let form_action = pick(&csp, &["form-action"]);
    let object_src = pick(&csp, &["object-src", "default-src"]);
    let mut script_src = pick(&csp, &["script-src", "default-src"]);
    let mut style_src = pick(&csp, &["style-src", "default-src"]);

    let has_nonce_or_hash = |sources: &BTreeSet<String>| {
        sources
            .iter()
            .any(|s| NONCES_HASHES.iter().any(|p| s.starts_with(p)))
    };
    // 'unsafe-inline' is ignored by browsers that honour a nonce or hash.
    for sources in [&mut script_src, &mut style_src] {
        if has_nonce_or_hash(sources) {
            sources.remove("'unsafe-inline'");
        }
    }
    let mut result: Option<&'static str> = None;
    let mut flags = BTreeMap::new();
    // With 'strict-dynamic' and a nonce or hash, host and scheme sources, 'self' and
    // 'unsafe-inline' are ignored; without a nonce or hash nothing would run.
    if script_src.contains("'strict-dynamic'") {
        if has_nonce_or_hash(&script_src) {
            script_src.retain(|s| {
                !(DANGEROUSLY_BROAD.iter().any(|b| s.starts_with(b))
                    || s == "'self'"
                    || s == "'unsafe-inline'")
            });
            flags.insert("strictDynamic", true);
        } else {
            result.get_or_insert("csp-header-invalid");
        }
    }
    // The changes above apply to the directive they came from, as in the Observatory,
    // where both names hold the same set.
    let script_from = if csp.contains_key("script-src") {
        "script-src"
    } else {
        "default-src"
    };
    if let Some(sources) = csp.get_mut(script_from) {
        *sources = script_src.clone();
    }

    let active: Vec<&String> = csp
        .iter()
        .filter(|(d, _)| !PASSIVE_DIRECTIVES.contains(&d.as_str()) && d.as_str() != "script-src")
        .flat_map(|(_, s)| s)
        .chain(script_src.iter())
        .collect();
    let passive: Vec<String> = PASSIVE_DIRECTIVES
        .iter()
        .flat_map(|d| {
            csp.get(*d)
                .or_else(|| csp.get("default-src"))
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let broad = |s: &String| DANGEROUSLY_BROAD.contains(&s.as_str());
    let broad_or_inline = |s: &String| broad(s) || UNSAFE_INLINE.contains(&s.as_str());
    let insecure = |s: &&String| s.starts_with("http:") || s.starts_with("ftp:");

    let unsafe_inline = script_src.iter().any(broad_or_inline) || object_src.iter().any(broad);
    if unsafe_inline {
        result.get_or_insert("csp-implemented-with-unsafe-inline");
    }
    let insecure_active = https && active.iter().any(insecure);
    if insecure_active {
        result.get_or_insert("csp-implemented-with-insecure-scheme");
    }
    let unsafe_eval = script_src.contains("'unsafe-eval'") || style_src.contains("'unsafe-eval'");
    if unsafe_eval {
        result.get_or_insert("csp-implemented-with-unsafe-eval");
    }
    let insecure_passive = https && passive.iter().any(|s| insecure(&s));
    if insecure_passive {
        result.get_or_insert("csp-implemented-with-insecure-scheme-in-passive-content-only");
    }
    let unsafe_style = style_src.iter().any(broad_or_inline);
    if unsafe_style {
        result.get_or_insert("csp-implemented-with-unsafe-inline-in-style-src-only");
    }
    let default_none = csp
        .get("default-src")
        .is_some_and(|d| d.len() == 1 && d.contains("'none'"));
    result.get_or_insert(if default_none {
        "csp-implemented-with-no-unsafe-default-src-none"
    } else {
        "csp-implemented-with-no-unsafe"
    });
    flags.insert("unsafeInline", unsafe_inline);
    flags.insert("insecureSchemeActive", insecure_active);
    flags.insert("unsafeEval", unsafe_eval);
    flags.insert("insecureSchemePassive", insecure_passive);
    flags.insert("unsafeInlineStyle", unsafe_style);
    flags.insert("defaultNone", default_none);
    flags.insert("antiClickjacking", !frame_ancestors.iter().any(broad));
    flags.insert("insecureBaseUri", base_uri.iter().any(broad_or_inline));
    flags.insert("insecureFormAction", form_action.iter().any(broad));
    flags.insert("unsafeObjects", object_src.iter().any(broad));
    flags.entry("strictDynamic").or_insert(false);

    let mut result = result.unwrap_or("csp-implemented-with-no-unsafe");
    let pass = matches!(
        result,
        "csp-implemented-with-no-unsafe"
            | "csp-implemented-with-no-unsafe-default-src-none"
            | "csp-implemented-with-unsafe-inline-in-style-src-only"
            | "csp-implemented-with-insecure-scheme-in-passive-content-only"
    );
    if pass && !duplicates.is_empty() {
        result = "csp-implemented-but-duplicate-directives";
    }
    // frame-ancestors as enforced (from headers), for the X-Frame-Options test.
    let mut policy = csp;
    match header_only.get("frame-ancestors") {
        Some(sources) => policy.insert("frame-ancestors".into(), sources.clone()),
        None => policy.remove("frame-ancestors"),
    };
    CspOutcome {
        result,
        pass,
        policy: Some(policy),
        flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str, https: bool) -> CspOutcome {
        judge(&[header.to_owned()], &[], false, https)
    }

    #[test]
    fn results_match_the_observatory_for_typical_policies() {
        let cases = [
            (
                "default-src 'none'; script-src 'self'; form-action 'self'",
                "csp-implemented-with-no-unsafe-default-src-none",
            ),
            (
                "default-src 'self'; object-src 'none'",
                "csp-implemented-with-no-unsafe",
            ),
            (
                "default-src 'self'; script-src 'self' 'unsafe-inline'",
                "csp-implemented-with-unsafe-inline",
            ),
            (
                "default-src 'self'; script-src 'self' data:",
                "csp-implemented-with-unsafe-inline",
            ),
            ("script-src 'self'", "csp-implemented-with-unsafe-inline"), // object-src unrestricted
            ("default-src https:", "csp-implemented-with-unsafe-inline"),
            (
                "default-src 'self'; script-src 'self' 'unsafe-eval'",
                "csp-implemented-with-unsafe-eval",
            ),
            (
                "default-src 'self'; script-src 'self' http://cdn.example",
                "csp-implemented-with-insecure-scheme",
            ),
            (
                "default-src 'self'; img-src http://img.example",
                "csp-implemented-with-insecure-scheme-in-passive-content-only",
            ),
            (
                "default-src 'self'; style-src 'self' 'unsafe-inline'",
                "csp-implemented-with-unsafe-inline-in-style-src-only",
            ),
            (
                "default-src 'self'; script-src 'strict-dynamic'",
                "csp-header-invalid",
            ),
            (
                "default-src 'self'; default-src 'none'",
                "csp-header-invalid",
            ),
            ("abc", "csp-header-invalid"),
            (
                "default-src 'none'; report-uri /a; report-uri /b",
                "csp-implemented-but-duplicate-directives",
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(one(header, true).result, expected, "{header}");
        }
    }

    #[test]
    fn nonces_neutralise_unsafe_inline_and_strict_dynamic_drops_hosts() {
        let nonce = one(
            "default-src 'none'; script-src 'nonce-abc' 'unsafe-inline' 'strict-dynamic' https: 'self'; object-src 'none'",
            true,
        );
        assert_eq!(
            nonce.result,
            "csp-implemented-with-no-unsafe-default-src-none"
        );
        assert!(nonce.flags["strictDynamic"]);
        assert!(nonce.pass);
    }

    #[test]
    fn plain_http_sources_matter_only_on_https_pages() {
        let header = "default-src 'self'; script-src 'self' http://cdn.example";
        assert_eq!(one(header, false).result, "csp-implemented-with-no-unsafe");
    }

    #[test]
    fn report_only_alone_is_not_a_policy() {
        let outcome = judge(&[], &[], true, true);
        assert_eq!(outcome.result, "csp-not-implemented-but-reporting-enabled");
        assert!(!outcome.pass);
        assert_eq!(judge(&[], &[], false, true).result, "csp-not-implemented");
    }

    #[test]
    fn frame_ancestors_in_meta_is_ignored_as_browsers_ignore_it() {
        let outcome = judge(
            &[],
            &["default-src 'none'; frame-ancestors 'none'".into()],
            false,
            true,
        );
        assert_eq!(
            outcome.result,
            "csp-implemented-with-no-unsafe-default-src-none"
        );
        assert!(!outcome.policy.unwrap().contains_key("frame-ancestors"));
    }

    #[test]
    fn a_second_policy_narrows_the_first() {
        let (policy, _) = parse(&[
            "script-src 'self' https://a.example".into(),
            "script-src https://a.example".into(),
        ])
        .unwrap();
        assert_eq!(
            policy["script-src"],
            BTreeSet::from(["https://a.example".to_owned()])
        );
    }
}
