use std::sync::Arc;

use axum::http::header::{self, HeaderName};
use axum::http::HeaderValue;

use super::layer::{CspHeaders, HeaderSet, SecureHeadersLayer, Shared};
use super::route::{RouteHeaders, RouteMatcher};
use crate::csp::{ContentSecurityPolicy, CspError, Directive, Source};
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

    pub(super) fn compile(&self, route: &RouteHeaders) -> Result<HeaderSet, HeadersError> {
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
                let strict = |https| {
                    let value = compiled.render_strict(https);
                    HeaderValue::from_str(&value).map_err(|_| HeadersError::InvalidValue {
                        header: "Content-Security-Policy",
                        value,
                    })
                };
                Some(CspHeaders {
                    strict: [strict(false)?, strict(true)?],
                    page: compiled,
                })
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
}
