//! Content Security Policy: a typed builder, per-request nonces and a report collector.
//!
//! The default policy allows only scripts that carry this request's nonce (and what
//! they load, through `'strict-dynamic'`), so an injected `<script>` does not run even
//! when an escaping mistake lets it into a page:
//!
//! ```text
//! default-src 'self'; script-src 'nonce-…' 'strict-dynamic'; style-src 'self' 'nonce-…';
//! object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self';
//! img-src 'self' data:
//! ```
//!
//! plus `upgrade-insecure-requests` on HTTPS responses. The policy is compiled once into
//! static segments; each response only splices in its fresh nonce.
//!
//! Per-request nonces wired into templates are something no crate does, so Portcullis
//! writes them itself (the random bytes come from the OS through `getrandom`).
//!
//! ```
//! use portcullis::csp::{ContentSecurityPolicy, Directive, Source};
//!
//! let policy = ContentSecurityPolicy::default()
//!     .directive(Directive::ImgSrc, [Source::SelfOrigin, Source::host("https://img.example.com")]);
//! let compiled = policy.compile().unwrap();
//! let header = compiled.render(&portcullis::csp::CspNonce::generate(), false);
//! assert!(header.contains("img-src 'self' https://img.example.com"));
//! assert!(!header.contains("unsafe-inline"));
//! ```

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::client_ip::ClientInfo;
use crate::error::Error;

const NONCE_BYTES: usize = 16;
const NONCE_LEN: usize = 22; // base64url of 16 bytes, no padding

/// A fresh 128-bit nonce for this request's `script-src` and `style-src`.
///
/// The security-headers layer puts one into every request's extensions; handlers take
/// it as an extractor and templates read it with `csp_nonce()`.
///
/// ```
/// use portcullis::csp::CspNonce;
///
/// let a = CspNonce::generate();
/// let b = CspNonce::generate();
/// assert_ne!(a.as_str(), b.as_str());
/// assert_eq!(a.as_str().len(), 22);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CspNonce([u8; NONCE_LEN]);

impl CspNonce {
    /// A new nonce: 128 bits from the thread's CSPRNG (`rand::rng()`, ChaCha12
    /// seeded and regularly reseeded from the operating system). A nonce only has to
    /// be unpredictable to whoever injects markup, which a CSPRNG is; it is made for
    /// every response, where a system call each would cost more than the rest of the
    /// header layer. Keys, session ids and CSRF secrets still come from the operating
    /// system directly.
    pub fn generate() -> Self {
        use rand::RngCore as _;
        let mut raw = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut raw);
        let mut out = [0u8; NONCE_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .expect("22 bytes hold the base64 of 16");
        debug_assert_eq!(written, NONCE_LEN);
        Self(out)
    }

    /// The nonce as it goes into `nonce="…"` attributes.
    pub fn as_str(&self) -> &str {
        // Only base64url characters were written.
        std::str::from_utf8(&self.0).expect("base64 is ASCII")
    }
}

impl fmt::Debug for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CspNonce").field(&self.as_str()).finish()
    }
}

impl fmt::Display for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CspNonce {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<CspNonce>().copied().ok_or_else(|| {
            tracing::error!("CspNonce requested but the security-headers layer is not installed");
            Error::internal()
        })
    }
}

/// A CSP fetch or navigation directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// `default-src`
    DefaultSrc,
    /// `script-src`
    ScriptSrc,
    /// `style-src`
    StyleSrc,
    /// `img-src`
    ImgSrc,
    /// `connect-src`
    ConnectSrc,
    /// `font-src`
    FontSrc,
    /// `object-src`
    ObjectSrc,
    /// `media-src`
    MediaSrc,
    /// `frame-src`
    FrameSrc,
    /// `worker-src`
    WorkerSrc,
    /// `manifest-src`
    ManifestSrc,
    /// `base-uri`
    BaseUri,
    /// `form-action`
    FormAction,
    /// `frame-ancestors`: who may frame this page.
    FrameAncestors,
}

impl Directive {
    /// The directive's name in the header.
    pub fn name(self) -> &'static str {
        match self {
            Self::DefaultSrc => "default-src",
            Self::ScriptSrc => "script-src",
            Self::StyleSrc => "style-src",
            Self::ImgSrc => "img-src",
            Self::ConnectSrc => "connect-src",
            Self::FontSrc => "font-src",
            Self::ObjectSrc => "object-src",
            Self::MediaSrc => "media-src",
            Self::FrameSrc => "frame-src",
            Self::WorkerSrc => "worker-src",
            Self::ManifestSrc => "manifest-src",
            Self::BaseUri => "base-uri",
            Self::FormAction => "form-action",
            Self::FrameAncestors => "frame-ancestors",
        }
    }
}

/// A source expression. Hosts and schemes are validated when the policy compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// `'self'`
    SelfOrigin,
    /// `'none'`
    None,
    /// `'nonce-…'` with this request's nonce.
    Nonce,
    /// `'strict-dynamic'`
    StrictDynamic,
    /// `'unsafe-inline'`: accepted for styles only; refused for scripts.
    UnsafeInline,
    /// `'report-sample'`
    ReportSample,
    /// A host source such as `https://cdn.example.com` or `*.example.com`.
    Host(String),
    /// A scheme source such as `data:` or `https:`.
    Scheme(String),
    /// `'sha256-…'` (the base64 hash of an inline script or style).
    Sha256(String),
}

impl Source {
    /// A host source.
    pub fn host(host: impl Into<String>) -> Self {
        Self::Host(host.into())
    }

    /// A scheme source; `data` and `data:` are both accepted.
    pub fn scheme(scheme: impl Into<String>) -> Self {
        Self::Scheme(scheme.into())
    }
}

/// Why a policy cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CspError {
    /// `'unsafe-inline'` in `script-src` (or in `default-src` without a `script-src`).
    #[error("'unsafe-inline' is refused for scripts: use the request nonce instead")]
    UnsafeInlineScript,
    /// A host or scheme that would break out of its directive.
    #[error("invalid CSP source {0:?}")]
    InvalidSource(String),
    /// The same directive given twice.
    #[error("CSP directive {0} is given twice")]
    DuplicateDirective(&'static str),
    /// A report path that is not an absolute path or URL.
    #[error("invalid CSP report endpoint {0:?}")]
    InvalidReportEndpoint(String),
}

/// A Content Security Policy, built up from typed directives.
///
/// `Default` is the strict nonce-based policy above. Setting a directive replaces it.
///
/// ```
/// use portcullis::csp::{ContentSecurityPolicy, CspError, Directive, Source};
///
/// let bad = ContentSecurityPolicy::default()
///     .directive(Directive::ScriptSrc, [Source::SelfOrigin, Source::UnsafeInline]);
/// assert_eq!(bad.compile().unwrap_err(), CspError::UnsafeInlineScript);
/// ```
#[derive(Debug, Clone)]
pub struct ContentSecurityPolicy {
    directives: Vec<(Directive, Vec<Source>)>,
    report_endpoint: Option<String>,
}

/// Where the built-in collector listens, unless configured otherwise.
pub const DEFAULT_REPORT_PATH: &str = "/csp-report";
/// The `Reporting-Endpoints` group name used for `report-to`.
pub const REPORT_GROUP: &str = "csp-endpoint";

impl Default for ContentSecurityPolicy {
    fn default() -> Self {
        use Directive::*;
        use Source::*;
        Self {
            directives: vec![
                (DefaultSrc, vec![SelfOrigin]),
                (ScriptSrc, vec![Nonce, StrictDynamic]),
                (StyleSrc, vec![SelfOrigin, Nonce]),
                (ObjectSrc, vec![None]),
                (BaseUri, vec![None]),
                (FrameAncestors, vec![None]),
                (FormAction, vec![SelfOrigin]),
                (ImgSrc, vec![SelfOrigin, Scheme("data:".into())]),
            ],
            report_endpoint: Option::None,
        }
    }
}

impl ContentSecurityPolicy {
    /// An empty policy, for building one from scratch.
    pub fn empty() -> Self {
        Self {
            directives: Vec::new(),
            report_endpoint: None,
        }
    }

    /// Sets `directive` to `sources`, replacing what it had.
    pub fn directive(
        mut self,
        directive: Directive,
        sources: impl IntoIterator<Item = Source>,
    ) -> Self {
        let sources: Vec<Source> = sources.into_iter().collect();
        match self.directives.iter_mut().find(|(d, _)| *d == directive) {
            Some(slot) => slot.1 = sources,
            None => self.directives.push((directive, sources)),
        }
        self
    }

    /// Removes `directive`.
    pub fn without(mut self, directive: Directive) -> Self {
        self.directives.retain(|(d, _)| *d != directive);
        self
    }

    /// Sends violation reports to `path` with both `report-uri` and `report-to`
    /// (browsers support one or the other). Mount [`report_collector`] there.
    pub fn report_to(mut self, path: impl Into<String>) -> Self {
        self.report_endpoint = Some(path.into());
        self
    }

    /// The sources of `directive`, if set.
    pub fn get(&self, directive: Directive) -> Option<&[Source]> {
        self.directives
            .iter()
            .find(|(d, _)| *d == directive)
            .map(|(_, s)| s.as_slice())
    }

    /// The report endpoint, if reports are on.
    pub fn report_endpoint(&self) -> Option<&str> {
        self.report_endpoint.as_deref()
    }

    /// Validates the policy and compiles it into static segments.
    pub fn compile(&self) -> Result<CompiledCsp, CspError> {
        let mut seen = Vec::new();
        for (directive, _) in &self.directives {
            if seen.contains(directive) {
                return Err(CspError::DuplicateDirective(directive.name()));
            }
            seen.push(*directive);
        }
        let script_sources = self
            .get(Directive::ScriptSrc)
            .or_else(|| self.get(Directive::DefaultSrc))
            .unwrap_or(&[]);
        if script_sources.contains(&Source::UnsafeInline) {
            return Err(CspError::UnsafeInlineScript);
        }

        let mut segments = Vec::new();
        let mut text = String::new();
        for (i, (directive, sources)) in self.directives.iter().enumerate() {
            if i > 0 {
                text.push_str("; ");
            }
            text.push_str(directive.name());
            if sources.is_empty() {
                text.push_str(" 'none'");
            }
            for source in sources {
                text.push(' ');
                match source {
                    Source::SelfOrigin => text.push_str("'self'"),
                    Source::None => text.push_str("'none'"),
                    Source::StrictDynamic => text.push_str("'strict-dynamic'"),
                    Source::UnsafeInline => text.push_str("'unsafe-inline'"),
                    Source::ReportSample => text.push_str("'report-sample'"),
                    Source::Nonce => {
                        text.push_str("'nonce-");
                        segments.push(std::mem::take(&mut text));
                        text.push('\'');
                    }
                    Source::Host(host) => {
                        validate_host_source(host)?;
                        text.push_str(host);
                    }
                    Source::Scheme(scheme) => {
                        let scheme = scheme.trim_end_matches(':');
                        let valid = !scheme.is_empty()
                            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                            && scheme
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
                        if !valid {
                            return Err(CspError::InvalidSource(scheme.to_owned()));
                        }
                        text.push_str(scheme);
                        text.push(':');
                    }
                    Source::Sha256(hash) => {
                        let valid = !hash.is_empty()
                            && hash
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "+/=-_".contains(c));
                        if !valid {
                            return Err(CspError::InvalidSource(hash.clone()));
                        }
                        text.push_str("'sha256-");
                        text.push_str(hash);
                        text.push('\'');
                    }
                }
            }
        }
        if let Some(endpoint) = &self.report_endpoint {
            let valid = (endpoint.starts_with('/') || endpoint.starts_with("https://"))
                && !endpoint
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || ";,\"'".contains(c));
            if !valid {
                return Err(CspError::InvalidReportEndpoint(endpoint.clone()));
            }
            text.push_str("; report-uri ");
            text.push_str(endpoint);
            text.push_str("; report-to ");
            text.push_str(REPORT_GROUP);
        }
        segments.push(text);
        let fixed_len = segments.iter().map(String::len).sum();
        Ok(CompiledCsp {
            segments: segments.into(),
            fixed_len,
            report_endpoint: self.report_endpoint.clone(),
        })
    }
}

fn validate_host_source(host: &str) -> Result<(), CspError> {
    let valid = !host.is_empty()
        && host.len() <= 255
        && !host.starts_with('\'')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:/*[]%~".contains(c));
    if valid {
        Ok(())
    } else {
        Err(CspError::InvalidSource(host.to_owned()))
    }
}

/// A validated policy, split at the nonce positions so that rendering one is a single
/// allocation.
#[derive(Debug, Clone)]
pub struct CompiledCsp {
    segments: Arc<[String]>,
    fixed_len: usize,
    report_endpoint: Option<String>,
}

impl CompiledCsp {
    /// The header value for one response. `https` adds `upgrade-insecure-requests`.
    pub fn render(&self, nonce: &CspNonce, https: bool) -> String {
        const UPGRADE: &str = "; upgrade-insecure-requests";
        let mut out =
            String::with_capacity(self.fixed_len + self.segments.len() * NONCE_LEN + UPGRADE.len());
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push_str(nonce.as_str());
            }
            out.push_str(segment);
        }
        if https {
            out.push_str(UPGRADE);
        }
        out
    }

    /// The report endpoint, if reports are on.
    pub fn report_endpoint(&self) -> Option<&str> {
        self.report_endpoint.as_deref()
    }
}

/// Settings of the violation-report collector.
///
/// ```
/// use portcullis::csp::ReportCollectorConfig;
///
/// let config = ReportCollectorConfig::default();
/// assert_eq!(config.max_body_bytes, 16 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ReportCollectorConfig {
    /// Where the collector listens.
    pub path: String,
    /// The largest report body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Reports accepted per client IP per minute; more get 429.
    pub per_client_per_minute: u32,
}

impl Default for ReportCollectorConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_REPORT_PATH.to_owned(),
            max_body_bytes: 16 * 1024,
            per_client_per_minute: 60,
        }
    }
}

struct CollectorState {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    max_body_bytes: usize,
}

/// The most violations of one request logged one by one; the rest are counted.
const MAX_REPORTS_LOGGED: usize = 3;

// Bounds the limiter's memory: past this many tracked clients, idle ones are dropped.
const COLLECTOR_MAX_TRACKED: usize = 10_000;

/// A router with the violation-report collector at `config.path`.
///
/// It accepts `application/csp-report` (`report-uri`) and `application/reports+json`
/// (`report-to`), caps the body, limits each client's rate (an IPv6 client by its
/// /64, as the rate limiter counts it) and logs the first three violations of each
/// request as structured `tracing` events (target `portcullis::csp`) and the number of
/// the others in one more, answering 204.
///
/// ```
/// use portcullis::csp::{report_collector, ReportCollectorConfig};
///
/// let app: axum::Router = axum::Router::new().merge(report_collector(ReportCollectorConfig::default()));
/// ```
pub fn report_collector<S: Clone + Send + Sync + 'static>(
    config: ReportCollectorConfig,
) -> Router<S> {
    let per_minute = NonZeroU32::new(config.per_client_per_minute.max(1)).expect("at least 1");
    let state = Arc::new(CollectorState {
        limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        max_body_bytes: config.max_body_bytes,
    });
    Router::new()
        .route(&config.path, post(collect))
        .with_state(state)
}

async fn collect(
    State(state): State<Arc<CollectorState>>,
    client: ClientInfo,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if state.limiter.len() > COLLECTOR_MAX_TRACKED {
        state.limiter.retain_recent();
    }
    // Keyed like the rate limiter: one IPv6 host owns a /64, and must not get a
    // bucket per address in it.
    if state
        .limiter
        .check_key(&crate::client_ip::client_block(client.ip))
        .is_err()
    {
        return Error::too_many_requests(60).into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !matches!(
        content_type.as_str(),
        "application/csp-report" | "application/reports+json" | "application/json"
    ) {
        return Error::unsupported_media_type(
            "CSP reports must be application/csp-report or application/reports+json",
        )
        .into_response();
    }
    let bytes: Bytes = match crate::body::read_body(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return Error::bad_request("the report is not valid JSON").into_response(),
    };
    let reports: Vec<&serde_json::Value> = match &value {
        // report-to: an array of reports, each with a `body`.
        serde_json::Value::Array(items) => items
            .iter()
            .filter(|r| r.get("type").and_then(|t| t.as_str()) == Some("csp-violation"))
            .filter_map(|r| r.get("body"))
            .collect(),
        // report-uri: one object under `csp-report`.
        serde_json::Value::Object(_) => value.get("csp-report").into_iter().collect(),
        _ => Vec::new(),
    };
    if reports.is_empty() {
        return Error::bad_request("no CSP violation in the report").into_response();
    }
    // One request, a few lines: a 16 KiB array of tiny reports would otherwise write
    // hundreds, enough to bury other events or fill the log queue.
    let not_logged = reports.len().saturating_sub(MAX_REPORTS_LOGGED);
    for report in reports.into_iter().take(MAX_REPORTS_LOGGED) {
        let field = |names: &[&str]| -> String {
            names
                .iter()
                .find_map(|n| report.get(*n))
                .map(|v| match v {
                    serde_json::Value::String(s) => s.chars().take(512).collect(),
                    other => other.to_string().chars().take(512).collect(),
                })
                .unwrap_or_default()
        };
        // `?`: quoted, so a value cannot pass for another field; the log formatter
        // escapes control characters in every value whatever the sigil.
        tracing::warn!(
            target: "portcullis::csp",
            client_ip = %client.ip,
            document_uri = ?field(&["document-uri", "documentURL"]),
            directive = ?field(&["effective-directive", "effectiveDirective", "violated-directive"]),
            blocked_uri = ?field(&["blocked-uri", "blockedURL"]),
            source_file = ?field(&["source-file", "sourceFile"]),
            line = ?field(&["line-number", "lineNumber"]),
            disposition = ?field(&["disposition"]),
            "CSP violation"
        );
    }
    if not_logged > 0 {
        tracing::warn!(
            target: "portcullis::csp",
            client_ip = %client.ip,
            not_logged,
            "more CSP violations in the same report were not logged"
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_matches_the_documented_one() {
        let compiled = ContentSecurityPolicy::default().compile().unwrap();
        let nonce = CspNonce::generate();
        let n = nonce.as_str();
        assert_eq!(
            compiled.render(&nonce, false),
            format!(
                "default-src 'self'; script-src 'nonce-{n}' 'strict-dynamic'; \
                 style-src 'self' 'nonce-{n}'; object-src 'none'; base-uri 'none'; \
                 frame-ancestors 'none'; form-action 'self'; img-src 'self' data:"
            )
        );
        assert!(compiled
            .render(&nonce, true)
            .ends_with("; upgrade-insecure-requests"));
    }

    #[test]
    fn unsafe_inline_scripts_are_refused_even_through_default_src() {
        let policy = ContentSecurityPolicy::empty().directive(
            Directive::DefaultSrc,
            [Source::SelfOrigin, Source::UnsafeInline],
        );
        assert_eq!(policy.compile().unwrap_err(), CspError::UnsafeInlineScript);
        // Styles may opt in.
        let styles = ContentSecurityPolicy::default().directive(
            Directive::StyleSrc,
            [Source::SelfOrigin, Source::UnsafeInline],
        );
        assert!(styles.compile().is_ok());
    }

    #[test]
    fn sources_that_inject_directives_are_refused() {
        for evil in [
            "https://a.example; script-src *",
            "https://a.example 'unsafe-inline'",
            "'unsafe-eval'",
            "a.example,b",
            "",
        ] {
            let policy =
                ContentSecurityPolicy::default().directive(Directive::ImgSrc, [Source::host(evil)]);
            assert!(policy.compile().is_err(), "{evil:?} compiled");
        }
        let scheme = ContentSecurityPolicy::default()
            .directive(Directive::ImgSrc, [Source::scheme("data; script-src *")]);
        assert!(scheme.compile().is_err());
        let report = ContentSecurityPolicy::default().report_to("/r; script-src *");
        assert!(report.compile().is_err());
    }

    #[test]
    fn report_endpoint_adds_both_report_directives() {
        let compiled = ContentSecurityPolicy::default()
            .report_to(DEFAULT_REPORT_PATH)
            .compile()
            .unwrap();
        let header = compiled.render(&CspNonce::generate(), false);
        assert!(header.ends_with("; report-uri /csp-report; report-to csp-endpoint"));
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The collector behind the client-info layer, as the stack serves it.
    fn collector(per_minute: u32) -> Router {
        report_collector(ReportCollectorConfig {
            per_client_per_minute: per_minute,
            ..ReportCollectorConfig::default()
        })
        .layer(crate::client_ip::ClientInfoConfig::default().layer())
    }

    /// Serves `app` on loopback and posts `body` as a CSP report over a raw socket,
    /// with the log lines written meanwhile: the server runs on this thread (a
    /// current-thread runtime), where the capturing subscriber is the default.
    async fn post_report(app: Router, body: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(crate::logging::redacting_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST /csp-report HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
             content-type: application/csp-report\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (response, logs)
    }

    #[tokio::test]
    async fn a_report_cannot_forge_log_lines() {
        let report = serde_json::json!({"csp-report": {
            "document-uri": "https://app.example/\n2026-12-01T00:00:00.000000Z  WARN \
                             portcullis::security: event=\"login\" user=admin\r\u{1b}[2K",
            "violated-directive": "script-src\u{1b}[31m",
            "blocked-uri": "inline\u{2028}forged\u{202e}",
        }})
        .to_string();
        let (response, logs) = post_report(collector(60), &report).await;
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
        assert_eq!(logs.lines().count(), 1, "{logs}");
        assert!(logs.contains("CSP violation"), "{logs}");
        assert!(logs.contains("\\n2026-12-01T00:00:00.000000Z"), "{logs}");
        assert!(logs.contains("\\u{1b}[31m"), "{logs}");
        let line = logs.trim_end_matches('\n');
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{202e}')),
            "{logs:?}"
        );
    }

    #[tokio::test]
    async fn a_16_kib_report_array_writes_a_few_lines() {
        let one = r#"{"type":"csp-violation","body":{"blockedURL":"x"}}"#;
        let count = 16 * 1024 / (one.len() + 1) - 1;
        let body = format!("[{}]", vec![one; count].join(","));
        assert!(body.len() <= 16 * 1024 && count > 300);
        let (response, logs) = post_report(collector(60), &body).await;
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
        assert_eq!(logs.lines().count(), MAX_REPORTS_LOGGED + 1, "{logs}");
        assert!(
            logs.contains(&format!("not_logged={}", count - MAX_REPORTS_LOGGED)),
            "{logs}"
        );
    }

    #[tokio::test]
    async fn ipv6_addresses_in_one_64_share_the_collectors_bucket() {
        use tower::ServiceExt as _;
        let app = collector(1);
        let report = r#"{"csp-report":{"blocked-uri":"inline"}}"#;
        let from = |ip: &str| {
            let peer = std::net::SocketAddr::new(ip.parse().unwrap(), 4000);
            let mut request = axum::http::Request::post(DEFAULT_REPORT_PATH)
                .header(header::CONTENT_TYPE, "application/csp-report")
                .body(axum::body::Body::from(report))
                .unwrap();
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(request)
        };
        let status = |r: Result<Response, std::convert::Infallible>| r.unwrap().status();
        assert_eq!(
            status(from("2001:db8:1:2::1").await),
            StatusCode::NO_CONTENT
        );
        // Another address of the same host's /64: the same, spent, bucket.
        assert_eq!(
            status(from("2001:db8:1:2:ffff:ffff:ffff:fffe").await),
            StatusCode::TOO_MANY_REQUESTS
        );
        // The next /64 is someone else.
        assert_eq!(
            status(from("2001:db8:1:3::1").await),
            StatusCode::NO_CONTENT
        );
    }
}
