//! The layer: the origin line on every unsafe request, then the token, found in the
//! `X-CSRF-Token` header, a urlencoded form or the first part of a multipart form.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, Response};
use axum::response::IntoResponse;
use futures_util::future::{BoxFuture, Either};
use tower::{Layer, Service};

use super::form::{urlencoded_field, BoundaryError, FirstPartScanner};
use crate::body::{body_error_response, buffer_body};
use crate::client_ip::ClientInfo;
use crate::error::{Error, MissingLayer};
use crate::origin::Origin;
use crate::session::Session;

use super::{CsrfMinter, CsrfRejection, FORM_FIELD, HEADER};

/// The origins allowed besides the app's own, parsed when the layer was built.
#[derive(Debug, Clone)]
pub(super) struct Origins {
    pub(super) trusted: Vec<Origin>,
    pub(super) api: Vec<Origin>,
    pub(super) any_api_origin: bool,
}

#[derive(Debug, Clone)]
struct Shared {
    minter: CsrfMinter,
    origins: Origins,
    exempt: Vec<String>,
    max_age: Duration,
    max_form_bytes: usize,
}

/// Refuses forged unsafe requests. See the module docs; built by
/// [`super::CsrfConfig::layer`].
#[derive(Debug, Clone)]
pub struct CsrfLayer {
    shared: Arc<Shared>,
}

impl CsrfLayer {
    pub(super) fn new(
        minter: CsrfMinter,
        origins: Origins,
        exempt: Vec<String>,
        max_age: Duration,
        max_form_bytes: usize,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                minter,
                origins,
                exempt,
                max_age,
                max_form_bytes,
            }),
        }
    }

    /// Inside a stack whose body-limit layer bounds every body, form bodies are read
    /// up to that limit, not a second one of the layer's own that would have to agree.
    pub(crate) fn within_body_limit(self) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        shared.max_form_bytes = usize::MAX;
        Self {
            shared: Arc::new(shared),
        }
    }
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
    client: &ClientInfo,
    origins: &Origins,
) -> Result<(), CsrfRejection> {
    let own = client.origin();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let bearer_only = bearer_without_cookies(headers);
    let origin_allowed = |origin: &str| {
        own.as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(origin))
            || origins.trusted.iter().any(|t| t.matches(origin))
            || (bearer_only
                && (origins.any_api_origin || origins.api.iter().any(|t| t.matches(origin))))
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

/// No cookie, no session to ride, and not a body an HTML form could send: see the
/// module docs. A cookie-less form post still needs its token, so that another site
/// cannot sign a visitor in to the attacker's account (login CSRF) through a browser
/// that sends no `Origin`.
fn needs_no_token(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::COOKIE) {
        return false;
    }
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        // No body type: nothing a form sends (forms always say what they send).
        return true;
    };
    let essence = content_type
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // The types a cross-site `<form>` can send without a preflight.
    !matches!(
        essence.as_str(),
        "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
    ) && !essence.is_empty()
}

impl<S> Service<Request<Body>> for Csrf<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        req.extensions_mut().insert(self.shared.minter.clone());
        // Nothing to check: the service polled ready answers at once, with no clone
        // of it and no boxed future.
        if !is_unsafe(req.method()) || self.shared.exempt.iter().any(|p| p == req.uri().path()) {
            return Either::Left(self.inner.call(req));
        }
        let shared = self.shared.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            // Without the app's own origin every same-origin browser request would
            // look foreign while a client that sends no `Origin` passed: refuse to guess.
            let Some(client) = req.extensions().get::<ClientInfo>() else {
                return Ok(
                    MissingLayer::new("the CSRF layer", "the client-info layer").into_response()
                );
            };
            if let Err(rejection) = check_origin(req.headers(), client, &shared.origins) {
                return Ok(rejection.into_response());
            }
            if needs_no_token(req.headers()) {
                return inner.call(req).await;
            }
            let Some(session) = req.extensions().get::<Session>().cloned() else {
                return Ok(MissingLayer::new("the CSRF layer", "the session layer").into_response());
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
                    (req, bytes) = match buffer_body(req, shared.max_form_bytes).await {
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
                return Ok(CsrfRejection::Missing.into_response());
            };
            if let Err(rejection) = shared.minter.check(&session, &token, shared.max_age) {
                return Ok(rejection.into_response());
            }
            inner.call(req).await
        }))
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
        Some(value) => super::form::form_data_boundary(value.as_bytes()),
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

    fn origins(trusted: &[&str], api: &[&str]) -> Origins {
        let parse = |list: &[&str]| list.iter().map(|o| Origin::parse(o).unwrap()).collect();
        Origins {
            trusted: parse(trusted),
            api: parse(api),
            any_api_origin: false,
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
        let c = client();
        let config = origins(&["https://admin.example"], &[]);
        let ok = |h: &[(&'static str, &'static str)]| check_origin(&headers(h), &c, &config);
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
        let c = client();
        let config = origins(&[], &["https://spa.example"]);
        let check = |h: &[(&'static str, &'static str)]| check_origin(&headers(h), &c, &config);
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
        let any = Origins {
            any_api_origin: true,
            ..origins(&[], &[])
        };
        assert_eq!(check_origin(&headers(&from_spa), &c, &any), Ok(()));
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
    fn only_cookieless_requests_no_form_could_send_skip_the_token() {
        assert!(needs_no_token(&headers(&[(
            "content-type",
            "application/json"
        )])));
        assert!(needs_no_token(&headers(&[])));
        for form in [
            "application/x-www-form-urlencoded",
            "Multipart/Form-Data; boundary=x",
            "text/plain;charset=utf-8",
            "",
        ] {
            let mut map = HeaderMap::new();
            map.insert("content-type", HeaderValue::from_str(form).unwrap());
            assert!(!needs_no_token(&map), "{form:?}");
        }
        assert!(!needs_no_token(&headers(&[
            ("cookie", "session=x"),
            ("content-type", "application/json")
        ])));
    }
}
