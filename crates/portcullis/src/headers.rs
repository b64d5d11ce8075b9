//! The secure response headers, on every response.
//!
//! [`SecureHeadersLayer`] puts these on pages, JSON, redirects, 404s, 413s, errors and
//! caught panics alike (install it outside the error and panic layers, as
//! [`crate::stack`] does):
//!
//! | header | default |
//! |---|---|
//! | `Content-Security-Policy` | the nonce policy of [`crate::csp`], fresh nonce per response |
//! | `X-Frame-Options` | `DENY` |
//! | `X-Content-Type-Options` | `nosniff` |
//! | `Referrer-Policy` | `strict-origin-when-cross-origin` |
//! | `Permissions-Policy` | camera, microphone, geolocation, payment, usb, browsing-topics … denied |
//! | `Cross-Origin-Opener-Policy` | `same-origin` |
//! | `Cross-Origin-Resource-Policy` | `same-origin` |
//! | `X-XSS-Protection` | `0` (the old filter caused leaks; CSP replaces it) |
//! | `X-Permitted-Cross-Domain-Policies` | `none` |
//! | `Origin-Agent-Cluster` | `?1` |
//! | `Strict-Transport-Security` | `max-age=63072000; includeSubDomains`, HTTPS responses only |
//!
//! and removes `Server` and `X-Powered-By`. Every value is validated when the layer is
//! built; all of them but the nonce are encoded once, so a response costs one nonce,
//! one string for the CSP and a handful of header-map inserts.
//!
//! A header the handler already set is kept: a handler that serves a download with
//! `Content-Security-Policy: sandbox` means it.
//!
//! ```
//! use portcullis::headers::{RouteHeaders, SecureHeadersConfig};
//!
//! let layer = SecureHeadersConfig::default()
//!     // Let one page be framed by one partner, and nobody else.
//!     .route("/embed", RouteHeaders::default().allow_framing_by("https://partner.example"))
//!     .layer()
//!     .unwrap();
//! let app: axum::Router = axum::Router::new().layer(layer);
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, Request, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use crate::client_ip::ClientInfo;
use crate::csp::{CompiledCsp, ContentSecurityPolicy, CspError, CspNonce, Directive, Source};
use crate::origin::{Origin, OriginError};

/// `X-Frame-Options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FrameOptions {
    /// `DENY`: no page may frame this one.
    #[default]
    Deny,
    /// `SAMEORIGIN`: only pages of this origin.
    SameOrigin,
    /// No header; CSP `frame-ancestors` alone decides (needed to allow a named origin,
    /// which `X-Frame-Options` cannot express).
    Omit,
}

/// `Strict-Transport-Security`, sent on HTTPS responses only.
///
/// ```
/// use portcullis::headers::Hsts;
///
/// assert_eq!(Hsts::default().value(), "max-age=63072000; includeSubDomains");
/// assert_eq!(Hsts::default().preload().value(), "max-age=63072000; includeSubDomains; preload");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hsts {
    max_age_secs: u64,
    include_subdomains: bool,
    preload: bool,
}

impl Default for Hsts {
    fn default() -> Self {
        Self {
            max_age_secs: 63_072_000,
            include_subdomains: true,
            preload: false,
        }
    }
}

impl Hsts {
    /// A policy with this `max-age`, subdomains included.
    pub fn max_age(secs: u64) -> Self {
        Self {
            max_age_secs: secs,
            ..Self::default()
        }
    }

    /// Leaves subdomains out (only when some subdomain cannot serve HTTPS).
    pub fn without_subdomains(mut self) -> Self {
        self.include_subdomains = false;
        self
    }

    /// Adds `preload` (submit the domain to the browsers' preload list first).
    pub fn preload(mut self) -> Self {
        self.preload = true;
        self
    }

    /// The header value.
    pub fn value(&self) -> String {
        let mut out = format!("max-age={}", self.max_age_secs);
        if self.include_subdomains {
            out.push_str("; includeSubDomains");
        }
        if self.preload {
            out.push_str("; preload");
        }
        out
    }
}

/// The default `Permissions-Policy`: powerful features off for this page and every frame.
pub const DEFAULT_PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), browsing-topics=(), \
camera=(), display-capture=(), geolocation=(), gyroscope=(), interest-cohort=(), \
magnetometer=(), microphone=(), midi=(), payment=(), publickey-credentials-get=(), \
screen-wake-lock=(), serial=(), usb=(), xr-spatial-tracking=()";

/// Why a header configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadersError {
    /// The CSP does not compile.
    #[error(transparent)]
    Csp(#[from] CspError),
    /// A value that is not a valid header value (control characters, non-ASCII…).
    #[error("invalid value for {header}: {value:?}")]
    InvalidValue {
        /// The header.
        header: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A framing origin that is not `http[s]://host[:port]` as browsers send it.
    #[error("framing: {0}")]
    InvalidOrigin(#[from] OriginError),
    /// A route pattern that is not an absolute path.
    #[error("invalid route pattern {0:?}: expected /path or /prefix/*")]
    InvalidRoute(String),
}

/// Settings of [`SecureHeadersLayer`]. `Default` is the secure choice for every header.
///
/// ```
/// use portcullis::csp::{ContentSecurityPolicy, Directive, Source};
/// use portcullis::headers::{FrameOptions, Hsts, SecureHeadersConfig};
///
/// let layer = SecureHeadersConfig::default()
///     .csp(ContentSecurityPolicy::default().directive(Directive::ConnectSrc, [Source::SelfOrigin]))
///     .hsts(Hsts::max_age(31_536_000))
///     .frame_options(FrameOptions::SameOrigin)
///     .layer()
///     .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SecureHeadersConfig {
    csp: Option<ContentSecurityPolicy>,
    csp_report_only: bool,
    frame_options: FrameOptions,
    hsts: Option<Hsts>,
    referrer_policy: String,
    permissions_policy: String,
    cross_origin_opener_policy: String,
    cross_origin_resource_policy: String,
    extra: Vec<(HeaderName, String)>,
    routes: Vec<(String, RouteHeaders)>,
}

impl Default for SecureHeadersConfig {
    fn default() -> Self {
        Self {
            csp: Some(ContentSecurityPolicy::default()),
            csp_report_only: false,
            frame_options: FrameOptions::Deny,
            hsts: Some(Hsts::default()),
            referrer_policy: "strict-origin-when-cross-origin".into(),
            permissions_policy: DEFAULT_PERMISSIONS_POLICY.into(),
            cross_origin_opener_policy: "same-origin".into(),
            cross_origin_resource_policy: "same-origin".into(),
            extra: Vec::new(),
            routes: Vec::new(),
        }
    }
}

impl SecureHeadersConfig {
    /// Replaces the Content Security Policy.
    pub fn csp(mut self, policy: ContentSecurityPolicy) -> Self {
        self.csp = Some(policy);
        self
    }

    /// Sends the policy as `Content-Security-Policy-Report-Only`: violations are
    /// reported, nothing is blocked. For trying a policy out before enforcing it.
    pub fn csp_report_only(mut self) -> Self {
        self.csp_report_only = true;
        self
    }

    /// Sends no CSP at all. Rarely right: prefer adjusting the policy.
    pub fn without_csp(mut self) -> Self {
        self.csp = None;
        self
    }

    /// `X-Frame-Options`.
    pub fn frame_options(mut self, options: FrameOptions) -> Self {
        self.frame_options = options;
        self
    }

    /// `Strict-Transport-Security` for HTTPS responses.
    pub fn hsts(mut self, hsts: Hsts) -> Self {
        self.hsts = Some(hsts);
        self
    }

    /// Sends no HSTS (for a host that must stay reachable over plain HTTP).
    pub fn without_hsts(mut self) -> Self {
        self.hsts = None;
        self
    }

    /// `Referrer-Policy`.
    pub fn referrer_policy(mut self, value: impl Into<String>) -> Self {
        self.referrer_policy = value.into();
        self
    }

    /// `Permissions-Policy`.
    pub fn permissions_policy(mut self, value: impl Into<String>) -> Self {
        self.permissions_policy = value.into();
        self
    }

    /// `Cross-Origin-Opener-Policy`.
    pub fn cross_origin_opener_policy(mut self, value: impl Into<String>) -> Self {
        self.cross_origin_opener_policy = value.into();
        self
    }

    /// `Cross-Origin-Resource-Policy`.
    pub fn cross_origin_resource_policy(mut self, value: impl Into<String>) -> Self {
        self.cross_origin_resource_policy = value.into();
        self
    }

    /// One more header, set on every response that lacks it.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// Different headers for the requests whose path is `pattern` (`/embed`), or
    /// starts with its prefix (`/widgets/*`). The first matching pattern wins.
    pub fn route(mut self, pattern: impl Into<String>, headers: RouteHeaders) -> Self {
        self.routes.push((pattern.into(), headers));
        self
    }

    /// The policy in effect, for inspection.
    pub fn csp_policy(&self) -> Option<&ContentSecurityPolicy> {
        self.csp.as_ref()
    }

    /// Validates every value and builds the layer.
    pub fn layer(self) -> Result<SecureHeadersLayer, HeadersError> {
        let default = Arc::new(self.compile(&RouteHeaders::default())?);
        let mut routes = Vec::with_capacity(self.routes.len());
        for (pattern, route) in &self.routes {
            let matcher = RouteMatcher::parse(pattern)?;
            routes.push((matcher, Arc::new(self.compile(route)?)));
        }
        Ok(SecureHeadersLayer {
            shared: Arc::new(Shared { default, routes }),
        })
    }

    fn compile(&self, route: &RouteHeaders) -> Result<HeaderSet, HeadersError> {
        let mut csp = self.csp.clone();
        let mut frame_options = self.frame_options;
        if !route.framing_origins.is_empty() {
            let mut sources = Vec::new();
            for origin in &route.framing_origins {
                let origin = Origin::parse_web(origin)?;
                sources.push(Source::host(origin.to_string()));
            }
            csp = Some(
                csp.unwrap_or_else(ContentSecurityPolicy::empty)
                    .directive(Directive::FrameAncestors, sources),
            );
            frame_options = FrameOptions::Omit;
        }
        if let Some(policy) = &route.csp {
            csp = Some(policy.clone());
        }

        let mut fixed = Vec::new();
        let mut push = |name: HeaderName, header: &'static str, value: &str| {
            let value = HeaderValue::from_str(value).map_err(|_| HeadersError::InvalidValue {
                header,
                value: value.to_owned(),
            })?;
            fixed.push((name, value));
            Ok::<(), HeadersError>(())
        };
        match frame_options {
            FrameOptions::Deny => push(header::X_FRAME_OPTIONS, "X-Frame-Options", "DENY")?,
            FrameOptions::SameOrigin => {
                push(header::X_FRAME_OPTIONS, "X-Frame-Options", "SAMEORIGIN")?
            }
            FrameOptions::Omit => {}
        }
        push(
            header::X_CONTENT_TYPE_OPTIONS,
            "X-Content-Type-Options",
            "nosniff",
        )?;
        push(
            header::REFERRER_POLICY,
            "Referrer-Policy",
            &self.referrer_policy,
        )?;
        push(
            HeaderName::from_static("permissions-policy"),
            "Permissions-Policy",
            &self.permissions_policy,
        )?;
        push(
            HeaderName::from_static("cross-origin-opener-policy"),
            "Cross-Origin-Opener-Policy",
            &self.cross_origin_opener_policy,
        )?;
        push(
            HeaderName::from_static("cross-origin-resource-policy"),
            "Cross-Origin-Resource-Policy",
            &self.cross_origin_resource_policy,
        )?;
        push(header::X_XSS_PROTECTION, "X-XSS-Protection", "0")?;
        push(
            HeaderName::from_static("x-permitted-cross-domain-policies"),
            "X-Permitted-Cross-Domain-Policies",
            "none",
        )?;
        push(
            HeaderName::from_static("origin-agent-cluster"),
            "Origin-Agent-Cluster",
            "?1",
        )?;
        for (name, value) in &self.extra {
            push(name.clone(), "custom header", value)?;
        }

        let csp = match csp {
            Some(policy) => {
                let compiled = policy.compile()?;
                if let Some(endpoint) = compiled.report_endpoint() {
                    push(
                        HeaderName::from_static("reporting-endpoints"),
                        "Reporting-Endpoints",
                        &format!("{}=\"{endpoint}\"", crate::csp::REPORT_GROUP),
                    )?;
                }
                Some(compiled)
            }
            None => None,
        };
        let hsts = self
            .hsts
            .map(|hsts| HeaderValue::from_str(&hsts.value()))
            .transpose()
            .map_err(|_| HeadersError::InvalidValue {
                header: "Strict-Transport-Security",
                value: String::new(),
            })?;
        Ok(HeaderSet {
            fixed,
            csp,
            csp_header: if self.csp_report_only {
                header::CONTENT_SECURITY_POLICY_REPORT_ONLY
            } else {
                header::CONTENT_SECURITY_POLICY
            },
            hsts,
        })
    }
}

/// Header changes for some routes, registered with [`SecureHeadersConfig::route`].
///
/// ```
/// use portcullis::csp::ContentSecurityPolicy;
/// use portcullis::headers::RouteHeaders;
///
/// let embeddable = RouteHeaders::default().allow_framing_by("https://partner.example");
/// let docs = RouteHeaders::default().csp(ContentSecurityPolicy::default());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RouteHeaders {
    framing_origins: Vec<String>,
    csp: Option<ContentSecurityPolicy>,
}

impl RouteHeaders {
    /// Lets pages of `origin` (`https://host[:port]`) frame these routes: CSP
    /// `frame-ancestors` names it, and `X-Frame-Options` is left out because it cannot.
    pub fn allow_framing_by(mut self, origin: impl Into<String>) -> Self {
        self.framing_origins.push(origin.into());
        self
    }

    /// A whole different policy for these routes.
    pub fn csp(mut self, policy: ContentSecurityPolicy) -> Self {
        self.csp = Some(policy);
        self
    }
}

#[derive(Debug)]
enum RouteMatcher {
    Exact(String),
    Prefix(String),
}

impl RouteMatcher {
    fn parse(pattern: &str) -> Result<Self, HeadersError> {
        if !pattern.starts_with('/') {
            return Err(HeadersError::InvalidRoute(pattern.to_owned()));
        }
        Ok(match pattern.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(pattern.to_owned()),
        })
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => p == path,
            Self::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

/// Everything a response gets, encoded once.
#[derive(Debug)]
struct HeaderSet {
    fixed: Vec<(HeaderName, HeaderValue)>,
    csp: Option<CompiledCsp>,
    csp_header: HeaderName,
    hsts: Option<HeaderValue>,
}

impl HeaderSet {
    fn apply(&self, headers: &mut HeaderMap, nonce: &CspNonce, https: bool) {
        // Room for all of them at once, rather than the map growing twice on the way.
        headers.reserve(self.fixed.len() + 2);
        for (name, value) in &self.fixed {
            // A value the handler set wins (a route's own framing rule, say).
            if let header::Entry::Vacant(slot) = headers.entry(name) {
                slot.insert(value.clone());
            }
        }
        if let Some(csp) = &self.csp {
            if let header::Entry::Vacant(slot) = headers.entry(&self.csp_header) {
                // The nonce is base64url and the policy was validated, so this is ASCII.
                if let Ok(value) = HeaderValue::try_from(csp.render(nonce, https)) {
                    slot.insert(value);
                }
            }
        }
        match (&self.hsts, https) {
            (Some(hsts), true) => {
                headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            // HSTS over plain HTTP is ignored by browsers and only confuses audits.
            _ => {
                headers.remove(header::STRICT_TRANSPORT_SECURITY);
            }
        }
        headers.remove(header::SERVER);
        headers.remove("x-powered-by");
        // A page carries this response's CSP nonce (and often a CSRF token): stored by a
        // cache and served again, the nonce would no longer be a secret. A route that
        // sets its own `Cache-Control` keeps it.
        let html = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
        if html && self.csp.is_some() {
            if let header::Entry::Vacant(slot) = headers.entry(header::CACHE_CONTROL) {
                slot.insert(HeaderValue::from_static("no-store"));
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    default: Arc<HeaderSet>,
    routes: Vec<(RouteMatcher, Arc<HeaderSet>)>,
}

impl Shared {
    fn for_path(&self, path: &str) -> &Arc<HeaderSet> {
        self.routes
            .iter()
            .find(|(matcher, _)| matcher.matches(path))
            .map(|(_, set)| set)
            .unwrap_or(&self.default)
    }
}

/// Sets the secure headers on every response and gives every request a [`CspNonce`].
#[derive(Clone)]
pub struct SecureHeadersLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for SecureHeadersLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureHeadersLayer")
            .field("routes", &self.shared.routes.len())
            .finish()
    }
}

impl<S> Layer<S> for SecureHeadersLayer {
    type Service = SecureHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecureHeaders {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`SecureHeadersLayer`].
#[derive(Clone)]
pub struct SecureHeaders<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for SecureHeaders<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureHeaders").finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for SecureHeaders<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let nonce = CspNonce::generate();
        req.extensions_mut().insert(nonce);
        let https = match req.extensions().get::<ClientInfo>() {
            Some(client) => client.is_https(),
            None => req.uri().scheme_str() == Some("https"),
        };
        let set = self.shared.for_path(req.uri().path()).clone();
        let future = self.inner.call(req);
        Box::pin(async move {
            let mut response = future.await?;
            set.apply(response.headers_mut(), &nonce, https);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_are_refused_when_the_layer_is_built() {
        let err = SecureHeadersConfig::default()
            .referrer_policy("no-referrer\r\nSet-Cookie: a=b")
            .layer()
            .unwrap_err();
        assert!(matches!(err, HeadersError::InvalidValue { .. }));
        for origin in [
            "partner.example",
            "https://",
            "https://a.example/path",
            "javascript://x",
            "https://*.example",
            "https://a.example; script-src *",
        ] {
            let err = SecureHeadersConfig::default()
                .route("/embed", RouteHeaders::default().allow_framing_by(origin))
                .layer()
                .unwrap_err();
            assert!(
                matches!(err, HeadersError::InvalidOrigin(_)),
                "{origin}: {err}"
            );
        }
        assert!(matches!(
            SecureHeadersConfig::default()
                .route("embed", RouteHeaders::default())
                .layer(),
            Err(HeadersError::InvalidRoute(_))
        ));
    }

    #[test]
    fn framing_override_names_the_origin_and_drops_x_frame_options() {
        let config = SecureHeadersConfig::default().route(
            "/embed",
            RouteHeaders::default().allow_framing_by("http://127.0.0.1:9999"),
        );
        let layer = config.layer().unwrap();
        let nonce = CspNonce::generate();

        let mut headers = HeaderMap::new();
        layer
            .shared
            .for_path("/embed")
            .apply(&mut headers, &nonce, false);
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors http://127.0.0.1:9999"),
            "{csp}"
        );
        assert!(!headers.contains_key(header::X_FRAME_OPTIONS));

        let mut headers = HeaderMap::new();
        layer
            .shared
            .for_path("/embedded")
            .apply(&mut headers, &nonce, false);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn hsts_only_over_https_and_server_headers_removed() {
        let layer = SecureHeadersConfig::default().layer().unwrap();
        let nonce = CspNonce::generate();
        let mut headers = HeaderMap::new();
        headers.insert(header::SERVER, HeaderValue::from_static("hyper/1.0"));
        headers.insert("x-powered-by", HeaderValue::from_static("PHP/5.2"));
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=1"),
        );
        layer.shared.default.apply(&mut headers, &nonce, false);
        assert!(!headers.contains_key(header::SERVER));
        assert!(!headers.contains_key("x-powered-by"));
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));

        let mut headers = HeaderMap::new();
        layer.shared.default.apply(&mut headers, &nonce, true);
        assert_eq!(
            headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=63072000; includeSubDomains"
        );
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.ends_with("; upgrade-insecure-requests"));
    }

    #[test]
    fn report_only_mode_uses_the_report_only_header() {
        let layer = SecureHeadersConfig::default()
            .csp(ContentSecurityPolicy::default().report_to("/csp-report"))
            .csp_report_only()
            .layer()
            .unwrap();
        let mut headers = HeaderMap::new();
        layer
            .shared
            .default
            .apply(&mut headers, &CspNonce::generate(), false);
        assert!(!headers.contains_key(header::CONTENT_SECURITY_POLICY));
        let csp = headers[header::CONTENT_SECURITY_POLICY_REPORT_ONLY]
            .to_str()
            .unwrap();
        assert!(csp.contains("report-uri /csp-report"));
        assert_eq!(
            headers["reporting-endpoints"],
            "csp-endpoint=\"/csp-report\""
        );
    }
}
