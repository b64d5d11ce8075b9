//! Cross-site request forgery: two independent lines of defence.
//!
//! 1. **Fetch metadata and `Origin`.** An unsafe request (`POST`, `PUT`, `PATCH`,
//!    `DELETE` …) whose `Sec-Fetch-Site` says `cross-site` or `same-site`, or whose
//!    `Origin` is neither the app's own origin (from [`ClientInfo`]) nor a configured
//!    trusted origin, is refused before anything else runs. Browsers send these
//!    headers and pages cannot forge them.
//! 2. **A token bound to the session.** The session keeps a random secret; every page
//!    render gets a fresh token: the secret masked with new random bytes (so the token
//!    differs on every response and compression side channels such as BREACH learn
//!    nothing, as in Django) plus an issue time, signed with the keyring's `csrf`
//!    subkey (fallback keys verify, so rotation does not break open forms). Unsafe
//!    requests must return it in the form field `csrf_token` or the `X-CSRF-Token`
//!    header.
//!
//! A urlencoded form is read up to its limit and searched pair by pair. A multipart
//! form must carry the token as its first part (a part with a `filename` never counts,
//! whatever its name); at most 16 KiB are read to find it, in time linear in the bytes
//! however the client cuts the body into chunks, and the handler then reads the same
//! bytes. A multipart boundary RFC 2046 does not allow (over 70 characters, say) is a
//! 400, and so is a body that breaks while it is read.
//!
//! Requests that carry no cookie and authenticate with `Authorization: Bearer` are not
//! subject to the token check: a browser never attaches such a header on its own, so
//! they cannot be forged cross-site. Exemptions are explicit and greppable:
//! [`CsrfConfig::exempt`].
//!
//! A refusal is a 403 whose code names the reason (`csrf_missing`, `csrf_invalid`,
//! `csrf_expired`, `csrf_origin`), and a `portcullis::security` warning in the log.
//!
//! Session-bound, masked tokens are something no crate does, so Portcullis writes them
//! itself; the primitives (HMAC, constant-time comparison) come from RustCrypto.
//!
//! ```
//! use std::sync::Arc;
//! use portcullis::csrf::CsrfConfig;
//! use portcullis::keys::{Keyring, SecretKey};
//!
//! let keyring = Keyring::new(SecretKey::generate(), vec![]);
//! let layer = CsrfConfig::default()
//!     .trusted_origin("https://admin.example.com")
//!     .exempt("/csp-report") // browsers post reports without a token
//!     .layer(&keyring)
//!     .unwrap();
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use subtle::ConstantTimeEq;
use tower::{Layer, Service};

use crate::client_ip::ClientInfo;
use crate::error::Error;
use crate::form::{urlencoded_field, BoundaryError, FirstPartScanner};
use crate::keys::{fill_random, Keyring, Purpose, Signer};
use crate::session::Session;
use crate::stack::{body_error_response, buffer_body};

/// The form field that carries the token.
pub const FORM_FIELD: &str = "csrf_token";
/// The header that carries the token.
pub const HEADER: &str = "x-csrf-token";

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// No token in the form or the header.
    #[error("The form is missing its security token. Reload the page and try again.")]
    Missing,
    /// A token that is forged, altered, or from another session.
    #[error("The form's security token is not valid. Reload the page and try again.")]
    Invalid,
    /// A token older than its lifetime, or from a session that has ended.
    #[error("The form has expired. Reload the page and try again.")]
    Expired,
    /// Sent from another site.
    #[error("This request came from another site and was refused.")]
    OriginMismatch,
}

impl CsrfRejection {
    /// The stable code in the error body and the log.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "csrf_missing",
            Self::Invalid => "csrf_invalid",
            Self::Expired => "csrf_expired",
            Self::OriginMismatch => "csrf_origin",
        }
    }
}

impl IntoResponse for CsrfRejection {
    fn into_response(self) -> axum::response::Response {
        Error::new(StatusCode::FORBIDDEN, self.code(), self.to_string()).into_response()
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfConfigError {
    /// A trusted origin that is not `scheme://host[:port]`.
    #[error("invalid trusted origin {0:?}: expected scheme://host[:port]")]
    InvalidOrigin(String),
    /// An exemption that is not an absolute path.
    #[error("invalid CSRF exemption {0:?}: expected an absolute path")]
    InvalidExemption(String),
}

/// Settings of [`CsrfLayer`]. `Default`: no trusted origins besides the app's own, no
/// exemptions, tokens valid for 12 hours, form bodies read up to 1 MiB.
#[derive(Debug, Clone)]
pub struct CsrfConfig {
    trusted_origins: Vec<String>,
    api_origins: Vec<String>,
    exempt: Vec<String>,
    max_age: Duration,
    max_form_bytes: usize,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        Self {
            trusted_origins: Vec::new(),
            api_origins: Vec::new(),
            exempt: Vec::new(),
            max_age: Duration::from_secs(12 * 3600),
            max_form_bytes: 1024 * 1024,
        }
    }
}

impl CsrfConfig {
    /// Another origin (`https://host[:port]`) allowed to send unsafe requests.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted_origins.push(origin.into());
        self
    }

    /// An origin that CORS allows to call the API with a Bearer token (`*` for any,
    /// when CORS allows any). Its requests that carry `Authorization: Bearer` and no
    /// cookie pass the origin line: a browser never attaches that header by itself, so
    /// such a request cannot be forged. Its requests with cookies are still refused
    /// unless it is also a [`CsrfConfig::trusted_origin`]. Give it the same list as
    /// [`crate::cors::CorsConfig`], or an allowed page cannot call the API at all.
    ///
    /// ```
    /// use portcullis::csrf::CsrfConfig;
    /// use portcullis::keys::{Keyring, SecretKey};
    ///
    /// let keyring = Keyring::new(SecretKey::generate(), vec![]);
    /// let layer = CsrfConfig::default()
    ///     .api_origin("https://app.example.com")
    ///     .layer(&keyring)
    ///     .unwrap();
    /// ```
    pub fn api_origin(mut self, origin: impl Into<String>) -> Self {
        self.api_origins.push(origin.into());
        self
    }

    /// A path that is not checked at all. Keep these few and visible.
    pub fn exempt(mut self, path: impl Into<String>) -> Self {
        self.exempt.push(path.into());
        self
    }

    /// How long a token stays valid.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Validates the settings and builds the layer. Install it inside the session
    /// layer (the session must be loaded first).
    pub fn layer(self, keyring: &Keyring) -> Result<CsrfLayer, CsrfConfigError> {
        let api = self.api_origins.iter().filter(|o| *o != "*");
        for origin in self.trusted_origins.iter().chain(api) {
            let valid = origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https")
                    && !rest.is_empty()
                    && !rest.contains(['/', '?', '#', '@', '*', ' '])
                    && rest.parse::<axum::http::uri::Authority>().is_ok()
            });
            if !valid {
                return Err(CsrfConfigError::InvalidOrigin(origin.clone()));
            }
        }
        if let Some(bad) = self.exempt.iter().find(|p| !p.starts_with('/')) {
            return Err(CsrfConfigError::InvalidExemption(bad.clone()));
        }
        Ok(CsrfLayer {
            shared: Arc::new(Shared {
                minter: CsrfMinter {
                    signer: keyring.signer(Purpose::CSRF),
                },
                config: self,
            }),
        })
    }
}

/// Mints and checks tokens for one keyring. The layer puts one into every request's
/// extensions, where [`CsrfToken`] and the templates find it.
#[derive(Debug, Clone)]
pub struct CsrfMinter {
    signer: Signer,
}

const SECRET_LEN: usize = 32;
const PAYLOAD_LEN: usize = 8 + 2 * SECRET_LEN;

impl CsrfMinter {
    /// A fresh token for `session` (creating its secret, and so the session, if needed).
    pub fn mint(&self, session: &Session) -> String {
        let secret = session.csrf_secret();
        let mut mask = [0u8; SECRET_LEN];
        fill_random(&mut mask);
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.extend_from_slice(&chrono::Utc::now().timestamp().to_be_bytes());
        payload.extend_from_slice(&mask);
        payload.extend(secret.iter().zip(mask).map(|(s, m)| s ^ m));
        self.signer.sign(&payload)
    }

    /// Checks `token` against `session`.
    pub fn check(
        &self,
        session: &Session,
        token: &str,
        max_age: Duration,
    ) -> Result<(), CsrfRejection> {
        let payload = match self.signer.verify(token) {
            Ok(payload) => payload,
            // Signed by a key that has since left the ring: an old form, not a forgery.
            Err(crate::keys::SignatureError::UnknownKey) => return Err(CsrfRejection::Expired),
            Err(_) => return Err(CsrfRejection::Invalid),
        };
        if payload.len() != PAYLOAD_LEN {
            return Err(CsrfRejection::Invalid);
        }
        let (issued, rest) = payload.split_at(8);
        let issued = i64::from_be_bytes(issued.try_into().map_err(|_| CsrfRejection::Invalid)?);
        let age = chrono::Utc::now().timestamp().saturating_sub(issued);
        if age > i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX) || age < -300 {
            return Err(CsrfRejection::Expired);
        }
        // The session ended (logout, expiry): its tokens ended with it.
        let secret = session
            .existing_csrf_secret()
            .ok_or(CsrfRejection::Expired)?;
        let (mask, masked) = rest.split_at(SECRET_LEN);
        let unmasked: Vec<u8> = masked.iter().zip(mask).map(|(a, b)| a ^ b).collect();
        if bool::from(unmasked.ct_eq(&secret)) {
            Ok(())
        } else {
            Err(CsrfRejection::Invalid)
        }
    }
}

/// A fresh token for this request's session, for handlers that render forms
/// themselves (templates use `csrf_token()` / `csrf_field()` instead).
///
/// ```
/// use portcullis::csrf::CsrfToken;
///
/// async fn form(token: CsrfToken) -> String {
///     format!("<input type=hidden name=csrf_token value=\"{}\">", token.as_str())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CsrfToken(String);

impl CsrfToken {
    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let minter = parts.extensions.get::<CsrfMinter>();
        let session = parts.extensions.get::<Session>();
        match (minter, session) {
            (Some(minter), Some(session)) => Ok(Self(minter.mint(session))),
            _ => {
                tracing::error!("CsrfToken needs the session and CSRF layers");
                Err(Error::internal())
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    minter: CsrfMinter,
    config: CsrfConfig,
}

/// Refuses forged unsafe requests. See the module docs.
#[derive(Debug, Clone)]
pub struct CsrfLayer {
    shared: Arc<Shared>,
}

impl<S> Layer<S> for CsrfLayer {
    type Service = Csrf<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Csrf {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`CsrfLayer`].
#[derive(Clone)]
pub struct Csrf<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for Csrf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csrf").finish_non_exhaustive()
    }
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The first line: fetch metadata, then `Origin`.
fn check_origin(
    headers: &HeaderMap,
    client: Option<&ClientInfo>,
    config: &CsrfConfig,
) -> Result<(), CsrfRejection> {
    let own = client.and_then(ClientInfo::origin);
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let bearer_only = bearer_without_cookies(headers);
    let origin_allowed = |origin: &str| {
        own.as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(origin))
            || config
                .trusted_origins
                .iter()
                .any(|t| t.eq_ignore_ascii_case(origin))
            || (bearer_only
                && config
                    .api_origins
                    .iter()
                    .any(|t| t == "*" || t.eq_ignore_ascii_case(origin)))
    };
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        // A user typing an address or following a bookmark, or our own pages.
        Some("same-origin") | Some("none") => {}
        // Another site, or a sibling subdomain: only a trusted origin may.
        Some(_) if !origin.is_some_and(origin_allowed) => {
            return Err(CsrfRejection::OriginMismatch);
        }
        _ => {}
    }
    match origin {
        // Older browsers send no fetch metadata but do send `Origin` on POST.
        Some(origin) if !origin_allowed(origin) => Err(CsrfRejection::OriginMismatch),
        _ => Ok(()),
    }
}

fn bearer_without_cookies(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::COOKIE)
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
}

fn reject(rejection: CsrfRejection, client: Option<&ClientInfo>, path: &str) -> Response<Body> {
    tracing::warn!(
        target: "portcullis::security",
        event = "csrf_rejected",
        reason = rejection.code(),
        client_ip = %client.map(|c| c.ip.to_string()).unwrap_or_default(),
        path,
        "refused a request that may be forged"
    );
    rejection.into_response()
}

impl<S> Service<Request<Body>> for Csrf<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        req.extensions_mut().insert(shared.minter.clone());
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let path = req.uri().path().to_owned();
            if !is_unsafe(req.method()) || shared.config.exempt.contains(&path) {
                return inner.call(req).await;
            }
            let client = req.extensions().get::<ClientInfo>().cloned();
            if let Err(rejection) = check_origin(req.headers(), client.as_ref(), &shared.config) {
                return Ok(reject(rejection, client.as_ref(), &path));
            }
            if bearer_without_cookies(req.headers()) {
                return inner.call(req).await;
            }
            let Some(session) = req.extensions().get::<Session>().cloned() else {
                tracing::error!("the CSRF layer needs the session layer outside it");
                return Ok(Error::internal().into_response());
            };
            let header_token = req
                .headers()
                .get(HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let token = match header_token {
                Some(token) => Some(token),
                None if is_form(req.headers()) => {
                    let bytes;
                    (req, bytes) = match buffer_body(req, shared.config.max_form_bytes).await {
                        Ok(buffered) => buffered,
                        Err(refused) => return Ok(refused),
                    };
                    urlencoded_field(&bytes, FORM_FIELD)
                }
                None => match form_data_boundary(req.headers()) {
                    Ok(Some(boundary)) => {
                        let (parts, body) = req.into_parts();
                        let (token, body) = match token_from_multipart(body, &boundary).await {
                            Ok(found) => found,
                            Err(refused) => return Ok(refused),
                        };
                        req = Request::from_parts(parts, body);
                        token
                    }
                    Ok(None) => None,
                    Err(malformed) => {
                        return Ok(Error::bad_request(malformed.to_string()).into_response())
                    }
                },
            };
            let Some(token) = token.filter(|t| !t.is_empty()) else {
                return Ok(reject(CsrfRejection::Missing, client.as_ref(), &path));
            };
            if let Err(rejection) = shared.minter.check(&session, &token, shared.config.max_age) {
                return Ok(reject(rejection, client.as_ref(), &path));
            }
            inner.call(req).await
        })
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The boundary of a `multipart/form-data` body: `Ok(None)` for another type, an
/// error (answered 400) for a multipart type whose boundary RFC 2046 does not allow.
fn form_data_boundary(headers: &HeaderMap) -> Result<Option<String>, BoundaryError> {
    match headers.get(header::CONTENT_TYPE) {
        Some(value) => crate::form::form_data_boundary(value.as_bytes()),
        None => Ok(None),
    }
}

/// The most of a multipart body read to find the token: the token field must come
/// first (the form's hidden field placed before the file input), so a few KiB suffice.
const MULTIPART_PREFIX_LIMIT: usize = 16 * 1024;

/// Reads just enough of a multipart body to find its token, then hands back a body
/// that yields exactly the original bytes: the prefix read, then the rest unread.
/// Uploads are never buffered here. The scan costs time linear in the bytes read,
/// however the body is cut into frames. A body that fails while the prefix is read
/// is answered here (413 past the body limit, 400 otherwise): the handler never
/// receives a body cut short.
async fn token_from_multipart(
    mut body: Body,
    boundary: &str,
) -> Result<(Option<String>, Body), Response<Body>> {
    use http_body_util::BodyExt as _;
    let mut scanner = FirstPartScanner::new(boundary, FORM_FIELD, MULTIPART_PREFIX_LIMIT);
    while !scanner.is_decided() && !scanner.is_full() {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    scanner.push(&data);
                }
            }
            Some(Err(error)) => return Err(body_error_response(error)),
            None => break,
        }
    }
    scanner.finish();
    let token = scanner.value().map(str::to_owned);
    let head = futures_util::stream::once(futures_util::future::ready(Ok::<_, axum::Error>(
        axum::body::Bytes::from(scanner.into_buffer()),
    )));
    let rest = body.into_data_stream();
    let body = Body::from_stream(futures_util::StreamExt::chain(head, rest));
    Ok((token, body))
}

/// The token as a hidden form field, for templates.
pub fn hidden_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{FORM_FIELD}\" value=\"{}\">",
        crate::error::escape_html(token)
    )
}

// Tokens are base64url with dots; nothing here needs escaping, but keep the invariant
// checked where tokens are made.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_ip::Scheme;
    use axum::http::HeaderValue;

    fn client() -> ClientInfo {
        ClientInfo {
            ip: "127.0.0.1".parse().unwrap(),
            scheme: Scheme::Https,
            host: Some("app.example".into()),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn fetch_metadata_and_origin_decide_the_first_line() {
        let c = Some(client());
        let config = CsrfConfig::default().trusted_origin("https://admin.example");
        let ok =
            |h: &[(&'static str, &'static str)]| check_origin(&headers(h), c.as_ref(), &config);
        assert_eq!(ok(&[("sec-fetch-site", "same-origin")]), Ok(()));
        assert_eq!(ok(&[]), Ok(()));
        assert_eq!(ok(&[("origin", "https://app.example")]), Ok(()));
        assert_eq!(
            ok(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://admin.example")
            ]),
            Ok(())
        );
        for bad in [
            &[("sec-fetch-site", "cross-site")][..],
            &[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://evil.app.example"),
            ],
            &[("origin", "https://evil.example")],
            &[("origin", "null")],
            &[("origin", "http://app.example")],
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://evil.example"),
            ],
        ] {
            assert_eq!(ok(bad), Err(CsrfRejection::OriginMismatch), "{bad:?}");
        }
    }

    #[test]
    fn cors_allowed_origins_pass_with_a_bearer_token_and_no_cookie_only() {
        let c = Some(client());
        let config = CsrfConfig::default().api_origin("https://spa.example");
        let check =
            |h: &[(&'static str, &'static str)]| check_origin(&headers(h), c.as_ref(), &config);
        let from_spa = [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://spa.example"),
            ("authorization", "Bearer abc"),
        ];
        assert_eq!(check(&from_spa), Ok(()));
        // With the user's cookie the same origin is refused: it could be riding them.
        let mut with_cookie = from_spa.to_vec();
        with_cookie.push(("cookie", "session=x"));
        assert_eq!(check(&with_cookie), Err(CsrfRejection::OriginMismatch));
        // Without a Bearer token nothing says the request is not a forged form post.
        assert_eq!(check(&from_spa[..2]), Err(CsrfRejection::OriginMismatch));
        // Another origin with a Bearer token: refused.
        assert_eq!(
            check(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example"),
                ("authorization", "Bearer abc"),
            ]),
            Err(CsrfRejection::OriginMismatch)
        );
        let any = CsrfConfig::default().api_origin("*");
        assert_eq!(check_origin(&headers(&from_spa), c.as_ref(), &any), Ok(()));
    }

    #[test]
    fn bearer_requests_without_cookies_skip_the_token() {
        assert!(bearer_without_cookies(&headers(&[(
            "authorization",
            "Bearer abc"
        )])));
        assert!(!bearer_without_cookies(&headers(&[
            ("authorization", "Bearer abc"),
            ("cookie", "session=x")
        ])));
        assert!(!bearer_without_cookies(&headers(&[(
            "authorization",
            "Basic abc"
        )])));
    }

    #[test]
    fn invalid_configuration_is_refused() {
        let keyring = Keyring::new(crate::keys::SecretKey::generate(), vec![]);
        assert!(CsrfConfig::default()
            .trusted_origin("evil.example")
            .layer(&keyring)
            .is_err());
        assert!(CsrfConfig::default()
            .trusted_origin("https://*.example")
            .layer(&keyring)
            .is_err());
        assert!(CsrfConfig::default()
            .exempt("login")
            .layer(&keyring)
            .is_err());
    }
}
