//! HTTPS: the redirect from plain HTTP, built-in TLS, development certificates.
//!
//! [`HttpsRedirectLayer`] answers every plain-HTTP request with `308 Permanent Redirect`
//! to the same path and query over HTTPS (308, unlike 301, keeps a `POST` a `POST`, so
//! a form never silently turns into a `GET`). Whether a request came over HTTPS is read
//! from [`ClientInfo`], so behind a trusted proxy `X-Forwarded-Proto` counts and from
//! anybody else it does not. The layer is off in development, where the demo serves
//! plain HTTP on loopback.
//!
//! With the `tls` feature, [`load_tls`] reads a certificate and key for
//! [`crate::serve::serve_tls`], which terminates TLS itself with rustls;
//! [`serve_redirect`] runs the plain port that only redirects (both with the serving
//! limits of [`crate::serve`]); [`write_dev_cert`] writes a self-signed `localhost`
//! certificate for trying it out.
//!
//! ```
//! use portcullis::https::HttpsRedirectConfig;
//!
//! let layer = HttpsRedirectConfig::default()
//!     .https_port(8443)
//!     .exempt("/healthz")
//!     .layer();
//! let app: axum::Router = axum::Router::new().layer(layer);
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use futures_util::future::{self, Either, Ready};
use tower::{Layer, Service};

use crate::client_ip::ClientInfo;
use crate::error::{Error, MissingLayer};

/// Settings of [`HttpsRedirectLayer`].
///
/// ```
/// use portcullis::https::HttpsRedirectConfig;
///
/// let config = HttpsRedirectConfig::default();
/// assert_eq!(config.redirect_target("example.com:80", "/a?b=1").unwrap(), "https://example.com/a?b=1");
/// let config = config.https_port(8443);
/// assert_eq!(config.redirect_target("localhost:8080", "/").unwrap(), "https://localhost:8443/");
/// ```
#[derive(Debug, Clone, Default)]
pub struct HttpsRedirectConfig {
    https_port: Option<u16>,
    exempt: Vec<String>,
    plain_http_on_loopback: LoopbackHttp,
}

/// Whether plain HTTP is served to a loopback client that asked for a loopback name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum LoopbackHttp {
    #[default]
    Redirected,
    Served,
}

impl HttpsRedirectConfig {
    /// The port HTTPS listens on when it is not 443 (built-in TLS on a high port).
    pub fn https_port(mut self, port: u16) -> Self {
        self.https_port = Some(port);
        self
    }

    /// A path served over plain HTTP too (a load balancer's health check).
    pub fn exempt(mut self, path: impl Into<String>) -> Self {
        self.exempt.push(path.into());
        self
    }

    /// Serves plain HTTP, unredirected, to a client on this machine that asked for a
    /// loopback name (`localhost`, `127.0.0.1`, `[::1]`): such a request never crosses
    /// a network, so HTTPS protects nothing there, and a developer's
    /// `http://localhost:3000` just works. Both must hold; a `Host: localhost` from
    /// elsewhere is still redirected (and refused by the allowed hosts outside
    /// development). [`crate::stack::SecureStack`]'s default does this.
    ///
    /// ```
    /// use portcullis::https::HttpsRedirectConfig;
    ///
    /// let layer = HttpsRedirectConfig::default().plain_http_on_loopback().layer();
    /// ```
    pub fn plain_http_on_loopback(mut self) -> Self {
        self.plain_http_on_loopback = LoopbackHttp::Served;
        self
    }

    /// The layer.
    pub fn layer(self) -> HttpsRedirectLayer {
        HttpsRedirectLayer {
            config: Arc::new(self),
        }
    }

    /// Where a plain-HTTP request for `host` and `path_and_query` is sent.
    pub fn redirect_target(&self, host: &str, path_and_query: &str) -> Option<String> {
        let authority: axum::http::uri::Authority = host.parse().ok()?;
        // Host names are case-insensitive; the redirect names the canonical form.
        let name = authority.host().to_ascii_lowercase();
        let target_host = match self.https_port {
            Some(443) | None => name,
            Some(port) => format!("{name}:{port}"),
        };
        let path = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            "/"
        };
        // `//evil.example` as a path would be read as a host by some clients.
        let path = if path.starts_with("//") {
            format!("/{}", path.trim_start_matches('/'))
        } else {
            path.to_owned()
        };
        Some(format!("https://{target_host}{path}"))
    }
}

/// Redirects plain-HTTP requests to HTTPS with `308`.
#[derive(Debug, Clone)]
pub struct HttpsRedirectLayer {
    config: Arc<HttpsRedirectConfig>,
}

impl<S> Layer<S> for HttpsRedirectLayer {
    type Service = HttpsRedirect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpsRedirect {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`HttpsRedirectLayer`].
#[derive(Clone)]
pub struct HttpsRedirect<S> {
    inner: S,
    config: Arc<HttpsRedirectConfig>,
}

impl<S> fmt::Debug for HttpsRedirect<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsRedirect")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for HttpsRedirect<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(client) = req.extensions().get::<ClientInfo>() else {
            let missing = MissingLayer::new("HttpsRedirectLayer", "the client-info layer");
            return Either::Right(future::ready(Ok(missing.into_response())));
        };
        let path = req.uri().path();
        let local = self.config.plain_http_on_loopback == LoopbackHttp::Served
            && client.ip.is_loopback()
            && client.host.as_deref().is_some_and(is_loopback_name);
        if client.is_https() || local || self.config.exempt.iter().any(|p| p == path) {
            return Either::Left(self.inner.call(req));
        }
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let target = client
            .host
            .as_deref()
            .and_then(|host| self.config.redirect_target(host, path_and_query))
            .and_then(|target| HeaderValue::try_from(target).ok());
        let response = match target {
            Some(location) => {
                let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
                response.headers_mut().insert(header::LOCATION, location);
                response
            }
            None => Error::bad_request("A valid Host header is required.").into_response(),
        };
        Either::Right(future::ready(Ok(response)))
    }
}

/// `localhost`, `127.0.0.1` (any of 127/8) or `[::1]`, with or without a port.
pub(crate) fn is_loopback_name(host: &str) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let name = authority.host();
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why TLS could not be set up.
#[cfg(feature = "tls")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate or key file could not be read or parsed.
    #[error("cannot load the TLS certificate or key: {0}")]
    Load(#[source] std::io::Error),
    /// The certificate could not be generated.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Loads a PEM certificate chain and private key for [`crate::serve::serve_tls`], with
/// HTTP/2 and HTTP/1.1 offered by ALPN.
#[cfg(feature = "tls")]
pub async fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let invalid = |error: rustls_pki_types::pem::Error| {
        TlsError::Load(std::io::Error::new(std::io::ErrorKind::InvalidData, error))
    };
    // The workspace's one crypto provider, made the process default so that rustls
    // never has to guess between providers other crates might enable.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let chain = tokio::fs::read(cert).await.map_err(TlsError::Load)?;
    let chain = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let key = tokio::fs::read(key).await.map_err(TlsError::Load)?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(invalid)?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| {
            TlsError::Load(std::io::Error::new(std::io::ErrorKind::InvalidData, error))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the plain-HTTP port that only redirects to `https_port`, through
/// [`crate::serve::serve`] with the limits of `config`; a request for a host outside
/// `allowed_hosts` gets 400 rather than a redirect to wherever it names.
pub async fn serve_redirect(
    listener: tokio::net::TcpListener,
    https_port: u16,
    allowed_hosts: crate::hosts::AllowedHosts,
    config: crate::serve::ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), crate::serve::ServeError> {
    let app = axum::Router::new()
        .fallback(|| async { Error::not_found() })
        .layer(
            HttpsRedirectConfig::default()
                .https_port(https_port)
                .layer(),
        )
        // Redirects only ever name a host the app serves.
        .layer(allowed_hosts.layer())
        .layer(
            crate::headers::SecureHeadersConfig::default()
                .layer()
                .map_err(std::io::Error::other)?,
        )
        .layer(crate::client_ip::ClientInfoConfig::default().layer());
    crate::serve::serve(listener, app, config, shutdown).await
}

/// Writes a self-signed certificate for `localhost`, `127.0.0.1` and `::1` to
/// `dir/cert.pem` and its key to `dir/key.pem` (readable by the owner only), and
/// returns both paths. For development only: browsers warn about it, as they should.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let (cert, key) = portcullis::https::write_dev_cert(dir.path()).unwrap();
/// assert!(std::fs::read_to_string(cert).unwrap().contains("BEGIN CERTIFICATE"));
/// assert!(std::fs::read_to_string(key).unwrap().contains("PRIVATE KEY"));
/// ```
#[cfg(feature = "tls")]
pub fn write_dev_cert(
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), TlsError> {
    let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let write = |path: std::path::PathBuf, text: String, private: bool| {
        let result = (|| {
            std::fs::create_dir_all(dir)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            if private {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            #[cfg(not(unix))]
            let _ = private;
            std::io::Write::write_all(&mut options.open(&path)?, text.as_bytes())
        })();
        result
            .map(|()| path.clone())
            .map_err(|source| TlsError::Write { path, source })
    };
    let cert = write(dir.join("cert.pem"), certified.cert.pem(), false)?;
    let key = write(
        dir.join("key.pem"),
        certified.signing_key.serialize_pem(),
        true,
    )?;
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_path_and_query_and_never_leaves_the_host() {
        let config = HttpsRedirectConfig::default();
        assert_eq!(
            config.redirect_target("example.com", "/a/b?c=d&e").unwrap(),
            "https://example.com/a/b?c=d&e"
        );
        // A path that looks like a scheme-relative URL stays a path on our host.
        assert_eq!(
            config
                .redirect_target("example.com", "//evil.example/x")
                .unwrap(),
            "https://example.com/evil.example/x"
        );
        assert_eq!(
            config.redirect_target("[::1]:8080", "/").unwrap(),
            "https://[::1]/"
        );
        assert!(config.redirect_target("bad host", "/").is_none());
    }

    #[test]
    fn only_loopback_names_count_as_local() {
        for local in [
            "localhost",
            "LOCALHOST:3000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:8080",
        ] {
            assert!(is_loopback_name(local), "{local}");
        }
        for remote in [
            "localhost.evil.example",
            "example.com",
            "10.0.0.1",
            "[::2]",
            "bad host",
            "",
        ] {
            assert!(!is_loopback_name(remote), "{remote}");
        }
    }
}
