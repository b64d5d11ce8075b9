use super::config::HeadersError;
use crate::csp::ContentSecurityPolicy;

/// Header changes for some routes, registered with
/// [`SecureHeadersConfig::route`](super::SecureHeadersConfig::route).
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
    pub(super) framing_origins: Vec<String>,
    pub(super) csp: Option<ContentSecurityPolicy>,
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
pub(super) enum RouteMatcher {
    Exact(String),
    Prefix(String),
}

impl RouteMatcher {
    pub(super) fn parse(pattern: &str) -> Result<Self, HeadersError> {
        if !pattern.starts_with('/') {
            return Err(HeadersError::InvalidRoute(pattern.to_owned()));
        }
        Ok(match pattern.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(pattern.to_owned()),
        })
    }

    pub(super) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => p == path,
            Self::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderMap};

    use super::super::SecureHeadersConfig;
    use super::*;
    use crate::csp::CspNonce;

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
            .apply(&mut headers, || nonce, false);
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
            .apply(&mut headers, || nonce, false);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
