//! The HTTP Observatory's tests, results and scoring, so that a score here means what
//! the same score means there.
//!
//! Source of every number and identifier: mdn/mdn-http-observatory (algorithm version
//! 4): `src/grader/charts.js` (`SCORE_TABLE`, `GRADE_CHART`,
//! `MINIMUM_SCORE_FOR_EXTRA_CREDIT`), `src/scanner/index.js` (the score),
//! `src/analyzer/tests/*.js` (each test's results and which of them pass). Two of its
//! tests, Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy, are not in its
//! score table: they are reported with a modifier of 0, as its grader gives them.
//! Where the Observatory consults the HSTS preload list, no host is taken as preloaded:
//! the audit runs offline.

use serde_json::{json, Value};

use super::csp::{self, CspOutcome};
use super::fetch::{Chain, Exchange};
use super::html::Page;

mod content;
mod transport;

use content::{
    cross_origin_resource_policy, opener_or_embedder, referrer_policy, subresource_integrity,
    x_content_type_options, x_frame_options,
};
use transport::{cookies, cors, redirection, strict_transport_security};

/// The Observatory gives bonuses only to a site whose penalties leave it at least this.
const MINIMUM_SCORE_FOR_EXTRA_CREDIT: i32 = 90;

/// `SCORE_TABLE` of `charts.js`: the modifier of each result; 0 for the rest.
pub(crate) fn score_modifier(result: &str) -> i32 {
    match result {
        "csp-implemented-with-no-unsafe-default-src-none" => 10,
        "csp-implemented-with-no-unsafe" => 5,
        "csp-implemented-with-insecure-scheme-in-passive-content-only" => -10,
        "csp-implemented-with-unsafe-eval" => -10,
        "csp-implemented-with-unsafe-inline" => -20,
        "csp-implemented-with-insecure-scheme" => -20,
        "csp-header-invalid" | "csp-not-implemented" => -25,
        "csp-not-implemented-but-reporting-enabled" => -25,
        "cookies-secure-with-httponly-sessions-and-samesite" => 5,
        "cookies-without-secure-flag-but-protected-by-hsts" => -5,
        "cookies-session-without-secure-flag-but-protected-by-hsts" => -10,
        "cookies-without-secure-flag" => -20,
        "cookies-samesite-flag-invalid" => -20,
        "cookies-anticsrf-without-samesite-flag" => -20,
        "cookies-session-without-httponly-flag" => -30,
        "cookies-session-without-secure-flag" => -40,
        "cross-origin-resource-sharing-implemented-with-universal-access" => -50,
        "redirection-off-host-from-http" => -5,
        "redirection-not-to-https-on-initial-redirection" => -10,
        "redirection-not-to-https" | "redirection-missing" => -20,
        "redirection-invalid-cert" => -20,
        "referrer-policy-private" => 5,
        "referrer-policy-unsafe" | "referrer-policy-header-invalid" => -5,
        "hsts-preloaded" => 5,
        "hsts-implemented-max-age-less-than-six-months" => -10,
        "hsts-not-implemented" | "hsts-header-invalid" => -20,
        "hsts-not-implemented-no-https" | "hsts-invalid-cert" => -20,
        "sri-implemented-and-all-scripts-loaded-securely" => 5,
        "sri-implemented-and-external-scripts-loaded-securely" => 5,
        "sri-not-implemented-but-external-scripts-loaded-securely" => -5,
        "sri-implemented-but-external-scripts-not-loaded-securely" => -20,
        "sri-not-implemented-and-external-scripts-not-loaded-securely" => -50,
        "html-not-parseable" => -20,
        "x-content-type-options-not-implemented" => -5,
        "x-content-type-options-header-invalid" => -5,
        "x-frame-options-implemented-via-csp" => 5,
        "x-frame-options-not-implemented" | "x-frame-options-header-invalid" => -20,
        "corp-header-invalid" => -5,
        "corp-implemented-with-same-origin" | "corp-implemented-with-same-site" => 10,
        _ => 0,
    }
}

/// `GRADE_CHART`: the score rounded down to a multiple of 5, capped at 100.
pub(crate) fn grade(score: i32) -> &'static str {
    match score.clamp(0, 100) / 5 * 5 {
        100 => "A+",
        90 | 95 => "A",
        85 => "A-",
        80 => "B+",
        70 | 75 => "B",
        65 => "B-",
        60 => "C+",
        50 | 55 => "C",
        45 => "C-",
        40 => "D+",
        30 | 35 => "D",
        25 => "D-",
        _ => "F",
    }
}

/// Grades from best to worst, for `--fail-under`.
pub(crate) const GRADES: [&str; 13] = [
    "A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F",
];

/// One test's outcome, as the Observatory's API names its fields.
#[derive(Debug, Clone)]
pub(crate) struct TestOutcome {
    pub(crate) name: &'static str,
    pub(crate) result: &'static str,
    pub(crate) pass: bool,
    pub(crate) score_modifier: i32,
    pub(crate) data: Value,
}

pub(super) fn outcome(
    name: &'static str,
    result: &'static str,
    pass: bool,
    data: Value,
) -> TestOutcome {
    TestOutcome {
        name,
        result,
        pass,
        score_modifier: score_modifier(result),
        data,
    }
}

/// Keeps the worse of `result` and `new` by their rank in `order` (best first).
pub(super) fn keep_worse(result: &mut Option<&'static str>, new: &'static str, order: &[&str]) {
    let rank = |r: &str| order.iter().position(|g| *g == r);
    if result.is_none_or(|old| rank(new) > rank(old)) {
        *result = Some(new);
    }
}

/// The score: 100, every penalty, and the bonuses only when the penalties leave at
/// least [`MINIMUM_SCORE_FOR_EXTRA_CREDIT`]; never below 0.
pub(crate) fn score(tests: &[TestOutcome]) -> i32 {
    let with_bonus: i32 = 100 + tests.iter().map(|t| t.score_modifier).sum::<i32>();
    let penalties_only: i32 = 100 + tests.iter().map(|t| t.score_modifier.min(0)).sum::<i32>();
    let score = if penalties_only >= MINIMUM_SCORE_FOR_EXTRA_CREDIT {
        with_bonus
    } else {
        penalties_only
    };
    score.max(0)
}

/// Everything the tests look at.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    /// The page graded: over HTTPS when the site answers there.
    pub(crate) auto: Exchange,
    /// The last answer of the HTTPS chain, if HTTPS answered.
    pub(crate) https: Option<Exchange>,
    /// Whether every certificate of the HTTPS chain was trusted.
    pub(crate) https_verified: bool,
    /// The plain-HTTP chain; `None` when plain HTTP does not answer.
    pub(crate) http: Option<Chain>,
    /// The answer to the CORS probe, and the foreign origin it sent.
    pub(crate) cors: Option<Exchange>,
    pub(crate) cors_origin: String,
    /// Every `Set-Cookie` line of the graded page's chain and of `/robots.txt`.
    pub(crate) set_cookies: Vec<String>,
    /// The graded page, when it is HTML.
    pub(crate) page: Option<Page>,
}

/// Runs every test, in the Observatory's order.
pub(crate) fn run(observed: &Observed) -> Vec<TestOutcome> {
    let https = observed.auto.url.scheme() == "https";
    let csp = content_security_policy(observed, https);
    let hsts = strict_transport_security(observed);
    vec![
        csp_outcome(&csp),
        cookies(observed, hsts.pass),
        cors(observed),
        redirection(observed),
        referrer_policy(observed),
        hsts,
        subresource_integrity(observed, https),
        x_content_type_options(&observed.auto),
        x_frame_options(&observed.auto, &csp),
        cross_origin_resource_policy(&observed.auto),
        opener_or_embedder(
            &observed.auto,
            "cross-origin-opener-policy",
            ["coop-not-implemented", "coop-header-invalid"],
            &[
                ("same-origin", "coop-implemented-with-same-origin"),
                (
                    "same-origin-allow-popups",
                    "coop-implemented-with-same-origin-allow-popups",
                ),
                (
                    "noopener-allow-popups",
                    "coop-implemented-with-noopener-allow-popups",
                ),
                ("unsafe-none", "coop-implemented-with-unsafe-none"),
            ],
        ),
        opener_or_embedder(
            &observed.auto,
            "cross-origin-embedder-policy",
            ["coep-not-implemented", "coep-header-invalid"],
            &[
                ("require-corp", "coep-implemented-with-require-corp"),
                ("credentialless", "coep-implemented-with-credentialless"),
                ("unsafe-none", "coep-implemented-with-unsafe-none"),
            ],
        ),
    ]
}

fn content_security_policy(observed: &Observed, https: bool) -> CspOutcome {
    let header: Vec<String> = observed
        .auto
        .all("content-security-policy")
        .iter()
        // A comma separates policies within one header line.
        .flat_map(|v| v.split(','))
        .map(str::to_owned)
        .collect();
    let meta = observed
        .page
        .as_ref()
        .map(|p| p.meta_csp.clone())
        .unwrap_or_default();
    let report_only = observed
        .auto
        .first("content-security-policy-report-only")
        .is_some();
    csp::judge(&header, &meta, report_only, https)
}

fn csp_outcome(csp: &CspOutcome) -> TestOutcome {
    let data = match &csp.policy {
        Some(policy) => json!({ "policy": csp.flags, "data": policy }),
        None => Value::Null,
    };
    outcome("content-security-policy", csp.result, csp.pass, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(modifiers: &[i32]) -> Vec<TestOutcome> {
        modifiers
            .iter()
            .map(|m| TestOutcome {
                name: "t",
                result: "r",
                pass: true,
                score_modifier: *m,
                data: Value::Null,
            })
            .collect()
    }

    #[test]
    fn bonuses_count_only_when_penalties_leave_an_a() {
        assert_eq!(score(&with(&[10, 5, 5, 10, -5])), 125);
        assert_eq!(score(&with(&[10, 5, 5, 10, -5, -10])), 85);
        assert_eq!(score(&with(&[10, -10])), 100);
        assert_eq!(score(&with(&[10, 10, -20])), 80);
        assert_eq!(score(&with(&[-50, -50, -40])), 0);
    }

    #[test]
    fn grades_follow_the_observatory_chart() {
        let cases = [
            (140, "A+"),
            (100, "A+"),
            (99, "A"),
            (90, "A"),
            (89, "A-"),
            (80, "B+"),
            (79, "B"),
            (65, "B-"),
            (60, "C+"),
            (50, "C"),
            (45, "C-"),
            (40, "D+"),
            (30, "D"),
            (25, "D-"),
            (24, "F"),
            (0, "F"),
        ];
        for (score, expected) in cases {
            assert_eq!(grade(score), expected, "{score}");
        }
    }

    #[test]
    fn the_registrable_domain_is_approximated_by_two_labels() {
        use super::content::site_of;
        assert_eq!(site_of("www.example.com"), "example.com");
        assert_eq!(site_of("cdn.example.com"), "example.com");
        assert_eq!(site_of("localhost"), "localhost");
        assert_eq!(site_of("127.0.0.1"), "127.0.0.1");
    }
}
