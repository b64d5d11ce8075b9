//! `portcullis audit URL`: grades a running site from outside, as MDN's HTTP
//! Observatory grades it, and checks the rest of the checklist besides.
//!
//! What it sends, and nothing else: GET of the page over HTTPS and over plain HTTP
//! (following at most ten redirects each), GET `/robots.txt` (cookies set there count,
//! as in the Observatory), an `OPTIONS` with a foreign `Origin` (the CORS probe), a
//! `TRACE` (a safe method by definition: it must change nothing), GET of a page that
//! does not exist, GET `/.well-known/security.txt`, and one TLS handshake per protocol
//! version. Every request carries the `portcullis-audit` User-Agent; every connection
//! is bounded by `--timeout`.
//!
//! | file | what it holds |
//! |---|---|
//! | `fetch.rs` | the HTTP client: one exchange per connection, redirects by hand, certificate outcomes kept |
//! | `tls.rs` | protocol-version probes and certificate dates |
//! | `html.rs` | scripts, forms, `<meta>` policies and resource URLs, read with html5ever |
//! | `csp.rs` | Content-Security-Policy parsing and the Observatory's CSP test |
//! | `observatory/` | its score table and grades (`mod.rs`), the transport tests (`transport.rs`: cookies, CORS, redirection, HSTS) and the page tests (`content.rs`) |
//! | `advice.rs` | why and how to fix, per result |
//! | `beyond/` | the checks the Observatory does not make: of the page (`page.rs`) and of the site around it (`site.rs`) |
//! | `report.rs` | the table and the JSON |

mod advice;
mod beyond;
mod csp;
mod fetch;
mod html;
mod observatory;
mod report;
mod tls;

use std::time::Duration;

use rustls::pki_types::CertificateDer;
use url::Url;

pub(crate) use observatory::GRADES;
pub(crate) use report::{render_json, render_table};

use fetch::{Client, FetchError};

/// The foreign origin the CORS probe claims to come from.
const PROBE_ORIGIN: &str = "https://portcullis-audit.invalid";

/// What to audit, and how.
#[derive(Debug, Clone)]
pub(crate) struct AuditOptions {
    pub(crate) url: Url,
    /// The plain-HTTP port to probe for the redirect; by default the URL's own port
    /// when it names one, else 80.
    pub(crate) http_port: Option<u16>,
    /// Certificates to trust besides the Mozilla roots (`--ca`).
    pub(crate) ca: Vec<CertificateDer<'static>>,
    /// Go on when a certificate is not trusted, and grade it as such.
    pub(crate) insecure: bool,
    /// For each connection: connect, handshake, answer.
    pub(crate) timeout: Duration,
}

/// Why an audit could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuditError {
    /// Not an `http://` or `https://` URL with a host.
    BadUrl(String),
    /// `--ca` could not be used.
    BadCa(String),
    /// The site did not answer.
    Unreachable(String),
    /// The certificate is not trusted and `--insecure` was not given.
    Untrusted(String),
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadUrl(e) => write!(f, "{e}"),
            Self::BadCa(e) => write!(f, "{e}"),
            Self::Unreachable(e) => write!(f, "the site does not answer: {e}"),
            Self::Untrusted(e) => write!(
                f,
                "the certificate is not trusted ({e}); trust a development certificate with \
                 --ca FILE, or grade it as untrusted with --insecure"
            ),
        }
    }
}

/// An audit's findings.
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    pub(crate) url: Url,
    /// The page graded (after redirects) and its status.
    pub(crate) graded: Url,
    pub(crate) status: u16,
    /// `TLSv1.3`, `TLSv1.2` or `plain HTTP`.
    pub(crate) protocol: String,
    pub(crate) score: i32,
    pub(crate) grade: &'static str,
    pub(crate) tests: Vec<observatory::TestOutcome>,
    pub(crate) beyond: Vec<beyond::Check>,
    /// What the reader should know about how the site was seen.
    pub(crate) notes: Vec<String>,
}

/// Parses the URL given on the command line.
pub(crate) fn parse_url(text: &str) -> Result<Url, AuditError> {
    let url = Url::parse(text).map_err(|e| AuditError::BadUrl(format!("{text}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(AuditError::BadUrl(format!(
            "{text}: expected http://host[:port]/path or https://…"
        )));
    }
    Ok(url)
}

/// Reads PEM certificates for `--ca`.
pub(crate) fn read_ca(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, AuditError> {
    use rustls::pki_types::pem::PemObject as _;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(AuditError::BadCa(
            "--ca: no PEM certificate in the file".into(),
        )),
        Err(e) => Err(AuditError::BadCa(format!("--ca: {e}"))),
    }
}

fn with_scheme(url: &Url, scheme: &str, port: Option<u16>) -> Url {
    let mut out = url.clone();
    // Changing between http and https always succeeds for a URL with a host.
    let _ = out.set_scheme(scheme);
    let _ = out.set_port(port);
    out
}

/// Audits `options.url`.
pub(crate) async fn run(options: &AuditOptions) -> Result<Audit, AuditError> {
    let client = Client::new(options.ca.clone(), options.insecure, options.timeout)
        .map_err(AuditError::BadCa)?;
    let url = &options.url;
    let mut notes = Vec::new();
    let (https_url, http_url) = if url.scheme() == "https" {
        let port = options.http_port.or(url.port());
        (
            Some(url.clone()),
            with_scheme(url, "http", port.filter(|p| *p != 80)),
        )
    } else {
        // A plain URL with a port of its own says nothing of where HTTPS would be.
        let https = url
            .port()
            .is_none()
            .then(|| with_scheme(url, "https", None));
        let http = match options.http_port {
            Some(port) => with_scheme(url, "http", Some(port)),
            None => url.clone(),
        };
        (https, http)
    };

    let https_chain = match &https_url {
        Some(target) => match client.follow(target).await {
            Ok(chain) => Some(chain),
            Err(FetchError::Untrusted(reason)) => return Err(AuditError::Untrusted(reason)),
            Err(error) if url.scheme() == "https" => {
                return Err(AuditError::Unreachable(error.to_string()))
            }
            Err(_) => None,
        },
        None => None,
    };
    let http_chain = client.follow(&http_url).await.ok();
    if url.scheme() == "https" {
        notes.push(match &http_chain {
            None => format!(
                "plain HTTP probed at {http_url}: no answer (--http-port names the redirect port)"
            ),
            Some(chain) => format!(
                "plain HTTP probed at {http_url}: {} answer(s), ending at {}",
                chain.hops.len(),
                chain.last().url
            ),
        });
    }
    let auto_chain = match (&https_chain, &http_chain) {
        (Some(chain), _) => chain.clone(),
        (None, Some(chain)) if url.scheme() == "http" => chain.clone(),
        (None, _) => {
            return Err(AuditError::Unreachable(format!("no answer from {url}")));
        }
    };
    let auto = auto_chain.last().clone();
    if !(200..400).contains(&auto.status) && ![401, 403].contains(&auto.status) {
        notes.push(format!(
            "{} answered {}: the Observatory refuses to grade such a page",
            auto.url, auto.status
        ));
    }
    if let Some(tls) = auto.tls.as_ref().and_then(|t| t.untrusted.as_ref()) {
        notes.push(format!(
            "--insecure: the certificate is not trusted ({tls}); graded as untrusted"
        ));
    }
    let media = auto.media_type();
    let page =
        (media == "text/html" || media == "application/xhtml+xml").then(|| html::parse(&auto.body));

    let base = auto.url.clone();
    let join = |path: &str| base.join(path).unwrap_or_else(|_| base.clone());
    let mut nonce = [0u8; 8];
    let _ = getrandom::fill(&mut nonce);
    let missing: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let (robots_url, missing_url, security_txt_url) = (
        join("/robots.txt"),
        join(&format!("/portcullis-audit-{missing}")),
        join("/.well-known/security.txt"),
    );
    let (robots, cors, trace, not_found, security_txt) = tokio::join!(
        client.request(http::Method::GET, &robots_url, &[]),
        client.request(
            http::Method::OPTIONS,
            &base,
            &[
                ("origin", PROBE_ORIGIN),
                ("access-control-request-method", "GET")
            ],
        ),
        client.request(http::Method::TRACE, &base, &[]),
        client.request(http::Method::GET, &missing_url, &[]),
        client.request(http::Method::GET, &security_txt_url, &[]),
    );

    let mut set_cookies: Vec<String> = auto_chain
        .hops
        .iter()
        .flat_map(|h| h.all("set-cookie").into_iter().map(str::to_owned))
        .collect();
    if let Ok(robots) = &robots {
        set_cookies.extend(robots.all("set-cookie").into_iter().map(str::to_owned));
    }

    let observed = observatory::Observed {
        auto: auto.clone(),
        https: https_chain.as_ref().map(|c| c.last().clone()),
        https_verified: https_chain.as_ref().is_some_and(fetch::Chain::verified),
        http: http_chain.clone(),
        cors: cors.ok(),
        cors_origin: PROBE_ORIGIN.into(),
        set_cookies: set_cookies.clone(),
        page: page.clone(),
    };
    let tests = observatory::run(&observed);
    let score = observatory::score(&tests);

    let (tls_versions, certificate, untrusted) = match &auto.tls {
        Some(seen) => {
            let host = auto.url.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = auto.url.port_or_known_default().unwrap_or(443);
            (
                tls::probe_versions(&client, host, port, options.timeout).await,
                seen.leaf.as_ref().and_then(tls::certificate_dates),
                seen.untrusted.clone(),
            )
        }
        None => (Vec::new(), None, None),
    };
    let seen = beyond::Seen {
        auto: auto.clone(),
        page,
        plain: http_chain.as_ref().and_then(|c| c.hops.first().cloned()),
        trace: trace.ok(),
        not_found: not_found.ok(),
        security_txt: security_txt.ok(),
        tls_versions,
        certificate,
        untrusted,
        set_cookies,
        now: chrono::Utc::now().timestamp(),
    };
    Ok(Audit {
        url: url.clone(),
        graded: auto.url.clone(),
        status: auto.status,
        protocol: auto
            .tls
            .as_ref()
            .map_or_else(|| "plain HTTP".to_owned(), |t| t.version.clone()),
        score,
        grade: observatory::grade(score),
        tests,
        beyond: beyond::run(&seen),
        notes,
    })
}
