use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::header::{self, HeaderName};
use axum::http::{HeaderMap, HeaderValue, Request, Response};
use tower::{Layer, Service};

use super::route::RouteMatcher;
use crate::client_ip::ClientInfo;
use crate::csp::{CompiledCsp, CspNonce, NonceSlot};

/// The content types whose responses get the page policy, with its nonce: pages, and
/// what else can run script of its own (an SVG opened as a document, a script loaded
/// as a worker, whose policy is that of its own response). Everything else (JSON,
/// text, images, files, empty redirects) gets the strict policy, with no nonce.
const PAGE_TYPES: &[&[u8]] = &[
    b"text/html",
    b"application/xhtml+xml",
    b"image/svg+xml",
    b"text/javascript",
    b"application/javascript",
];

/// The media type of `content_type` without its parameters, as sent (compare it
/// ignoring ASCII case): no allocation, since every response asks.
fn essence(content_type: Option<&HeaderValue>) -> &[u8] {
    let bytes = content_type.map_or(&[][..], HeaderValue::as_bytes);
    let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
    bytes[..end].trim_ascii()
}

/// A policy and what it costs nothing to build once.
#[derive(Debug)]
pub(super) struct CspHeaders {
    /// The policy of pages, rendered per response with its nonce.
    pub(super) page: CompiledCsp,
    /// [`CompiledCsp::render_strict`] as header values: over plain HTTP, over HTTPS.
    pub(super) strict: [HeaderValue; 2],
}

/// Everything a response gets, encoded once.
#[derive(Debug)]
pub(super) struct HeaderSet {
    pub(super) fixed: Vec<(HeaderName, HeaderValue)>,
    pub(super) csp: Option<CspHeaders>,
    pub(super) csp_header: HeaderName,
    pub(super) hsts: Option<HeaderValue>,
}

impl HeaderSet {
    /// Sets the headers on a response. `nonce` is called only for a page, whose
    /// policy names it.
    pub(super) fn apply(
        &self,
        headers: &mut HeaderMap,
        nonce: impl FnOnce() -> CspNonce,
        https: bool,
    ) {
        // Room for all of them at once, rather than the map growing twice on the way.
        headers.reserve(self.fixed.len() + 2);
        for (name, value) in &self.fixed {
            // A value the handler set wins (a route's own framing rule, say).
            if let header::Entry::Vacant(slot) = headers.entry(name) {
                slot.insert(value.clone());
            }
        }
        let essence = essence(headers.get(header::CONTENT_TYPE));
        let html = essence.eq_ignore_ascii_case(b"text/html");
        if let Some(csp) = &self.csp {
            let page = html || PAGE_TYPES.iter().any(|t| essence.eq_ignore_ascii_case(t));
            if let header::Entry::Vacant(slot) = headers.entry(&self.csp_header) {
                if page {
                    // The nonce is base64url and the policy was validated: ASCII.
                    if let Ok(value) = HeaderValue::try_from(csp.page.render(&nonce(), https)) {
                        slot.insert(value);
                    }
                } else {
                    slot.insert(csp.strict[usize::from(https)].clone());
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
        if html && self.csp.is_some() {
            if let header::Entry::Vacant(slot) = headers.entry(header::CACHE_CONTROL) {
                slot.insert(HeaderValue::from_static("no-store"));
            }
        }
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) default: Arc<HeaderSet>,
    pub(super) routes: Vec<(RouteMatcher, Arc<HeaderSet>)>,
}

impl Shared {
    pub(super) fn for_path(&self, path: &str) -> &Arc<HeaderSet> {
        self.routes
            .iter()
            .find(|(matcher, _)| matcher.matches(path))
            .map(|(_, set)| set)
            .unwrap_or(&self.default)
    }
}

/// Sets the secure headers on every response and gives every request a [`CspNonce`],
/// made when first asked for.
#[derive(Clone)]
pub struct SecureHeadersLayer {
    pub(super) shared: Arc<Shared>,
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
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = SecureHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let nonce = NonceSlot::default();
        req.extensions_mut().insert(nonce.clone());
        let https = match req.extensions().get::<ClientInfo>() {
            Some(client) => client.is_https(),
            None => req.uri().scheme_str() == Some("https"),
        };
        let set = self.shared.for_path(req.uri().path()).clone();
        SecureHeadersFuture {
            inner: self.inner.call(req),
            set,
            nonce,
            https,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`SecureHeaders`]: the inner service's response, with the headers
    /// set. (Not boxed: every response passes through it.)
    pub struct SecureHeadersFuture<F> {
        #[pin]
        inner: F,
        set: Arc<HeaderSet>,
        nonce: NonceSlot,
        https: bool,
    }
}

impl<F> fmt::Debug for SecureHeadersFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureHeadersFuture")
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for SecureHeadersFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        let nonce = this.nonce;
        this.set
            .apply(response.headers_mut(), || nonce.get(), *this.https);
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::super::SecureHeadersConfig;
    use super::*;
    use crate::csp::ContentSecurityPolicy;

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
        layer.shared.default.apply(&mut headers, || nonce, false);
        assert!(!headers.contains_key(header::SERVER));
        assert!(!headers.contains_key("x-powered-by"));
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));

        let mut headers = HeaderMap::new();
        layer.shared.default.apply(&mut headers, || nonce, true);
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
            .apply(&mut headers, CspNonce::generate, false);
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
