//! Checks of the checklist the Observatory does not make. They are reported apart and
//! never change the Observatory-compatible score.

use super::fetch::Exchange;
use super::html::Page;
use super::tls::Offer;

mod page;
mod site;

use page::{
    cookie_caching, cookie_prefixes, csrf_fields, error_page, mixed_content, permissions_policy,
    trace, version_leak,
};
use site::{certificate, hsts_over_http, security_txt, tls_versions};

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

pub(super) fn check(
    name: &'static str,
    verdict: Verdict,
    why: impl Into<String>,
    fix: &'static str,
) -> Check {
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
