//! Cross-origin resource sharing, denied unless origins are named.
//!
//! [`CorsConfig`] builds tower-http's [`CorsLayer`] after checking what Flask-CORS and
//! most tutorials leave to chance:
//!
//! - **Deny by default.** Without origins the layer sends no CORS header at all, so
//!   browsers keep the same-origin policy.
//! - **Exact origins.** Each is `scheme://host[:port]`: no path, no trailing slash, no
//!   pattern, no default port (browsers never send one), and never `null` (the origin
//!   of sandboxed frames and local files, which anyone can produce). A request's
//!   `Origin` is compared byte for byte; the configured ones are lowercased first, as
//!   browsers serialise them.
//! - **No `*` with credentials.** `*` is accepted only as the only entry and only
//!   without credentials; together they are [`CorsConfigError::WildcardWithCredentials`]
//!   when the layer is built (browsers refuse the pair, and reflecting any origin
//!   instead would hand every site the user's session). With credentials on, the one
//!   matching origin is echoed and `Access-Control-Allow-Credentials: true` goes with
//!   it, to that origin only.
//! - **`Vary: Origin` always**, so that a shared cache never serves one origin's
//!   answer to another.
//!
//! Defaults: methods `GET, POST, PUT, PATCH, DELETE`; request headers `authorization`,
//! `content-type`, `x-csrf-token`; preflights cached for 10 minutes. In
//! [`crate::stack::SecureStack`] the layer sits outside the rate limiter, sessions and
//! CSRF, so preflights are answered before any of them, and inside the secure headers,
//! so preflight responses carry those too.
//!
//! ```
//! use portcullis::cors::CorsConfig;
//!
//! let layer = CorsConfig::default()
//!     .origin("https://app.example.com")
//!     .allow_credentials(true)
//!     .layer()
//!     .unwrap();
//! let app: axum::Router = axum::Router::new().layer(layer);
//!
//! assert!(CorsConfig::default().origin("*").allow_credentials(true).layer().is_err());
//! ```

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{
    AllowCredentials, AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders,
};

use crate::origin::{Origin, OriginError};

/// A configuration that cannot work or would be unsafe.
///
/// ```
/// use portcullis::cors::{CorsConfig, CorsConfigError};
///
/// let err = CorsConfig::default().origin("https://a.example/").layer().unwrap_err();
/// assert!(matches!(err, CorsConfigError::InvalidOrigin { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorsConfigError {
    /// An origin that is not `scheme://host[:port]` as browsers send it.
    #[error("CORS: {0}")]
    InvalidOrigin(#[from] OriginError),
    /// `*` together with credentials.
    #[error("CORS cannot allow any origin (*) with credentials: list the allowed origins")]
    WildcardWithCredentials,
    /// `*` among other origins.
    #[error("the CORS origin * must be the only entry")]
    WildcardNotAlone,
}

/// Settings of the CORS layer. `Default`: no origins (CORS denied), no credentials,
/// methods `GET, POST, PUT, PATCH, DELETE`, request headers `authorization`,
/// `content-type` and `x-csrf-token`, preflights cached for 10 minutes.
///
/// ```
/// use std::time::Duration;
/// use axum::http::{HeaderName, Method};
/// use portcullis::cors::CorsConfig;
///
/// let layer = CorsConfig::default()
///     .origins(["https://app.example.com", "http://localhost:5173"])
///     .methods([Method::GET, Method::POST])
///     .allow_headers([HeaderName::from_static("content-type")])
///     .expose_headers([HeaderName::from_static("ratelimit-remaining")])
///     .max_age(Duration::from_secs(300))
///     .layer()
///     .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct CorsConfig {
    origins: Vec<String>,
    credentials: bool,
    methods: Vec<Method>,
    allow_headers: Vec<HeaderName>,
    expose_headers: Vec<HeaderName>,
    max_age: Duration,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            credentials: false,
            methods: vec![
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ],
            allow_headers: vec![
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                // The CSRF token header (`csrf::HEADER`), which may be compiled out.
                HeaderName::from_static("x-csrf-token"),
            ],
            expose_headers: Vec::new(),
            max_age: Duration::from_secs(600),
        }
    }
}

impl CorsConfig {
    /// Allows one more origin, `scheme://host[:port]`, or `*` alone.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Allows these origins too.
    pub fn origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.origins.extend(origins.into_iter().map(Into::into));
        self
    }

    /// Whether cross-origin requests may carry cookies and `Authorization`.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// The methods cross-origin requests may use (replaces the default list).
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// The request headers cross-origin requests may send (replaces the default list).
    pub fn allow_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.allow_headers = headers.into_iter().collect();
        self
    }

    /// The response headers cross-origin scripts may read beyond the safelisted ones
    /// (none by default).
    pub fn expose_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.expose_headers = headers.into_iter().collect();
        self
    }

    /// How long browsers may cache a preflight's answer.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Validates the settings and builds the layer.
    pub fn layer(self) -> Result<CorsLayer, CorsConfigError> {
        if self.origins.is_empty() {
            // Deny: no header at all, whatever else is configured.
            return Ok(CorsLayer::new());
        }
        let wildcard = self.origins.iter().any(|o| o == "*");
        if wildcard && self.origins.len() > 1 {
            return Err(CorsConfigError::WildcardNotAlone);
        }
        if wildcard && self.credentials {
            return Err(CorsConfigError::WildcardWithCredentials);
        }
        let layer = CorsLayer::new()
            .allow_methods(AllowMethods::list(self.methods))
            .allow_headers(AllowHeaders::list(self.allow_headers))
            .expose_headers(ExposeHeaders::list(self.expose_headers))
            .max_age(self.max_age)
            .vary([header::ORIGIN]);
        if wildcard {
            return Ok(layer.allow_origin(AllowOrigin::any()));
        }
        let mut origins = Vec::with_capacity(self.origins.len());
        for origin in &self.origins {
            let origin = Origin::parse(origin)?;
            // `Origin::parse` refuses what is not a valid header value.
            let Ok(value) = HeaderValue::from_str(origin.as_str()) else {
                continue;
            };
            if !origins.contains(&value) {
                origins.push(value);
            }
        }
        let layer = layer.allow_origin(AllowOrigin::list(origins.clone()));
        Ok(if self.credentials {
            // Only alongside an allowed origin: on other responses the header would
            // say nothing true.
            layer.allow_credentials(AllowCredentials::predicate(move |origin, _| {
                origins.contains(origin)
            }))
        } else {
            layer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    use axum::routing::get;
    use axum::Router;

    #[test]
    fn origins_must_be_exact() {
        // The full list of refused forms is `origin`'s; the layer must use it.
        for bad in ["https://a.example/", "https://a.example:443", "null"] {
            let result = CorsConfig::default().origin(bad).layer();
            assert!(
                matches!(result, Err(CorsConfigError::InvalidOrigin { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(CorsConfig::default()
            .origin("https://App.Example:8443")
            .layer()
            .is_ok());
    }

    #[test]
    fn wildcard_only_alone_and_without_credentials() {
        assert_eq!(
            CorsConfig::default()
                .origin("*")
                .allow_credentials(true)
                .layer()
                .unwrap_err(),
            CorsConfigError::WildcardWithCredentials
        );
        assert_eq!(
            CorsConfig::default()
                .origins(["*", "https://a.example"])
                .layer()
                .unwrap_err(),
            CorsConfigError::WildcardNotAlone
        );
        assert!(CorsConfig::default().origin("*").layer().is_ok());
    }

    #[test]
    fn settings_are_read() {
        let settings = crate::config::Settings::from_lookup(|name| match name {
            "PORTCULLIS_CORS_ORIGINS" => Some("*".to_owned()),
            "PORTCULLIS_CORS_CREDENTIALS" => Some("true".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            settings.cors_config().layer().unwrap_err(),
            CorsConfigError::WildcardWithCredentials
        );
    }

    async fn serve(layer: CorsLayer) -> SocketAddr {
        let app = Router::new()
            .route(
                "/api/data",
                get(|| async { "data" }).post(|| async { "posted" }),
            )
            .layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        addr
    }

    fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    }

    async fn preflight(addr: SocketAddr, origin: &str) -> reqwest::Response {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("http://{addr}/api/data"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn allowed_origins_pass_preflight_and_others_get_nothing() {
        let addr = serve(
            CorsConfig::default()
                .origin("https://app.example")
                .layer()
                .unwrap(),
        )
        .await;
        let ok = preflight(addr, "https://app.example").await;
        assert_eq!(ok.status(), 200);
        assert_eq!(
            header(&ok, "access-control-allow-origin"),
            Some("https://app.example")
        );
        let methods = header(&ok, "access-control-allow-methods").unwrap();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            assert!(methods.contains(method), "{methods}");
        }
        let headers = header(&ok, "access-control-allow-headers").unwrap();
        for name in ["authorization", "content-type", "x-csrf-token"] {
            assert!(headers.contains(name), "{headers}");
        }
        assert_eq!(header(&ok, "access-control-max-age"), Some("600"));
        assert!(header(&ok, "vary").unwrap().contains("origin"));
        assert_eq!(header(&ok, "access-control-allow-credentials"), None);

        for other in [
            "https://evil.example",
            "https://app.example.evil.example",
            "http://app.example",
            "null",
        ] {
            let refused = preflight(addr, other).await;
            assert_eq!(header(&refused, "access-control-allow-origin"), None);
            assert!(header(&refused, "vary").unwrap().contains("origin"));
            let simple = reqwest::Client::new()
                .get(format!("http://{addr}/api/data"))
                .header("origin", other)
                .send()
                .await
                .unwrap();
            assert_eq!(header(&simple, "access-control-allow-origin"), None);
            assert!(header(&simple, "vary").unwrap().contains("origin"));
        }
    }

    #[tokio::test]
    async fn credentials_echo_the_exact_origin() {
        let addr = serve(
            CorsConfig::default()
                .origins(["https://app.example", "https://admin.example"])
                .allow_credentials(true)
                .layer()
                .unwrap(),
        )
        .await;
        for origin in ["https://app.example", "https://admin.example"] {
            let ok = preflight(addr, origin).await;
            assert_eq!(header(&ok, "access-control-allow-origin"), Some(origin));
            assert_eq!(
                header(&ok, "access-control-allow-credentials"),
                Some("true")
            );
            let simple = reqwest::Client::new()
                .post(format!("http://{addr}/api/data"))
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            assert_eq!(header(&simple, "access-control-allow-origin"), Some(origin));
            assert_eq!(
                header(&simple, "access-control-allow-credentials"),
                Some("true")
            );
            assert_eq!(simple.text().await.unwrap(), "posted");
        }
        let refused = preflight(addr, "https://evil.example").await;
        assert_eq!(header(&refused, "access-control-allow-origin"), None);
        assert_eq!(header(&refused, "access-control-allow-credentials"), None);
    }

    #[tokio::test]
    async fn no_origins_means_no_cors_headers() {
        let addr = serve(
            CorsConfig::default()
                .allow_credentials(true)
                .layer()
                .unwrap(),
        )
        .await;
        let response = preflight(addr, "https://app.example").await;
        for name in [
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-max-age",
        ] {
            assert_eq!(header(&response, name), None, "{name}");
        }
    }

    #[tokio::test]
    async fn wildcard_without_credentials_allows_any_origin() {
        let addr = serve(CorsConfig::default().origin("*").layer().unwrap()).await;
        let response = preflight(addr, "https://anyone.example").await;
        assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&response, "access-control-allow-credentials"), None);
        assert!(header(&response, "vary").unwrap().contains("origin"));
    }
}
