//! The audit's HTTP client: one HTTP/1.1 exchange per connection, redirects followed by
//! hand, bodies read within a bound, every certificate checked and the outcome kept.
//!
//! A general client (reqwest) hides what an audit must see: each hop of a redirect
//! chain, repeated header lines, whether a certificate was trusted when the audit was
//! told to go on regardless. Hyper's connection API on the workspace's rustls shows all
//! of it in a few lines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

/// Who is asking, so that operators reading their logs know.
pub(crate) const USER_AGENT: &str = concat!(
    "portcullis-audit/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/portcullis-rs/portcullis)"
);
/// A page larger than this is read this far: enough for its head and forms.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// Redirects followed, as the Observatory does.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// No TCP connection (refused, unreachable, name unknown).
    Connect(String),
    /// The TLS handshake failed for another reason than trust.
    Tls(String),
    /// The certificate is not trusted, and `--insecure` was not given.
    Untrusted(String),
    /// No complete answer within the time limit.
    Timeout,
    /// The server answered something that is not HTTP/1.1.
    Protocol(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Self::Untrusted(e) => write!(f, "certificate not trusted: {e}"),
            Self::Timeout => write!(f, "no answer within the time limit"),
            Self::Protocol(e) => write!(f, "not an HTTP answer: {e}"),
        }
    }
}

/// What one TLS connection showed.
#[derive(Debug, Clone)]
pub(crate) struct TlsSeen {
    /// `TLSv1.3` or `TLSv1.2`.
    pub(crate) version: String,
    /// `None` when the chain verified; the reason otherwise (`--insecure` went on).
    pub(crate) untrusted: Option<String>,
    /// The server's own certificate.
    pub(crate) leaf: Option<CertificateDer<'static>>,
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) url: Url,
    pub(crate) status: u16,
    /// Every header line, names in lower case, in the order received.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) tls: Option<TlsSeen>,
}

impl Exchange {
    /// Every value of header `name` (lower case).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name` (lower case).
    pub(crate) fn first(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// Whether the certificate of this exchange was trusted (true over plain HTTP).
    pub(crate) fn verified(&self) -> bool {
        self.tls.as_ref().is_none_or(|tls| tls.untrusted.is_none())
    }

    /// The media type without parameters, lower case.
    pub(crate) fn media_type(&self) -> String {
        self.first("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

/// A request and the redirects it led to, first to last.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub(crate) hops: Vec<Exchange>,
    /// Why the chain stopped before its end (a redirect target that did not answer).
    pub(crate) broken: Option<FetchError>,
}

impl Chain {
    /// The last answer.
    pub(crate) fn last(&self) -> &Exchange {
        self.hops.last().expect("a chain has at least one hop")
    }

    /// Whether every certificate on the way was trusted.
    pub(crate) fn verified(&self) -> bool {
        self.hops.iter().all(Exchange::verified)
            && !matches!(self.broken, Some(FetchError::Untrusted(_)))
    }
}

/// Where a connection's verifier writes why a certificate was not trusted.
pub(crate) type VerificationOutcome = Arc<Mutex<Option<String>>>;

fn recorded(outcome: &VerificationOutcome) -> Option<String> {
    outcome
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// How the audit trusts certificates.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    roots: Arc<RootCertStore>,
    insecure: bool,
    timeout: Duration,
}

impl Client {
    /// A client trusting the Mozilla roots and `extra` (the `--ca` certificates).
    pub(crate) fn new(
        extra: Vec<CertificateDer<'static>>,
        insecure: bool,
        timeout: Duration,
    ) -> Result<Self, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra {
            roots
                .add(cert)
                .map_err(|e| format!("--ca: not a usable certificate: {e}"))?;
        }
        Ok(Self {
            roots: Arc::new(roots),
            insecure,
            timeout,
        })
    }

    /// A rustls configuration for one connection that records whether the chain
    /// verified; with `insecure` it goes on when it did not.
    pub(crate) fn tls_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        insecure: bool,
    ) -> Result<(Arc<rustls::ClientConfig>, VerificationOutcome), String> {
        let inner = WebPkiServerVerifier::builder(self.roots.clone())
            .build()
            .map_err(|e| e.to_string())?;
        let outcome = Arc::new(Mutex::new(None));
        let verifier = Arc::new(super::tls::RecordingVerifier {
            inner,
            insecure,
            outcome: outcome.clone(),
        });
        let config = rustls::ClientConfig::builder_with_protocol_versions(versions)
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok((Arc::new(config), outcome))
    }

    /// Connects to `url`'s host and port, over TLS for `https`.
    pub(crate) async fn connect(&self, url: &Url) -> Result<Connection, FetchError> {
        let host = url
            .host_str()
            .ok_or_else(|| FetchError::Connect("no host".into()))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect((bare, port)))
            .await
            .map_err(|_| FetchError::Timeout)?
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        if url.scheme() != "https" {
            return Ok(Connection::Plain(tcp));
        }
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|e| FetchError::Connect(format!("{host}: {e}")))?;
        let (config, outcome) = self
            .tls_config(rustls::DEFAULT_VERSIONS, self.insecure)
            .map_err(FetchError::Tls)?;
        let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
        let stream = match tokio::time::timeout(self.timeout, handshake).await {
            Err(_) => return Err(FetchError::Timeout),
            Ok(Err(error)) => {
                return Err(match recorded(&outcome) {
                    Some(reason) => FetchError::Untrusted(reason),
                    None => FetchError::Tls(error.to_string()),
                });
            }
            Ok(Ok(stream)) => stream,
        };
        let (_, session) = stream.get_ref();
        let seen = TlsSeen {
            version: session
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .replace("TLSv1_", "TLSv1."),
            untrusted: recorded(&outcome),
            leaf: session
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|c| c.clone().into_owned()),
        };
        Ok(Connection::Tls(Box::new(stream), seen))
    }

    /// One request on a fresh connection; the body is read up to a bound.
    pub(crate) async fn request(
        &self,
        method: http::Method,
        url: &Url,
        extra_headers: &[(&str, &str)],
    ) -> Result<Exchange, FetchError> {
        let connection = self.connect(url).await?;
        let exchange = async {
            match connection {
                Connection::Plain(tcp) => exchange(tcp, method, url, extra_headers, None).await,
                Connection::Tls(stream, seen) => {
                    exchange(*stream, method, url, extra_headers, Some(seen)).await
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    /// A GET and the redirects it leads to (at most [`MAX_REDIRECTS`]).
    pub(crate) async fn follow(&self, url: &Url) -> Result<Chain, FetchError> {
        let mut hops: Vec<Exchange> = Vec::new();
        let mut broken = None;
        let mut next = url.clone();
        loop {
            let exchange = match self.request(http::Method::GET, &next, &[]).await {
                Ok(exchange) => exchange,
                Err(error) if hops.is_empty() => return Err(error),
                // A chain that fails after its first hop ends where it failed.
                Err(error) => {
                    broken = Some(error);
                    break;
                }
            };
            let location = match exchange.status {
                301 | 302 | 303 | 307 | 308 => exchange
                    .first("location")
                    .and_then(|l| exchange.url.join(l).ok()),
                _ => None,
            };
            hops.push(exchange);
            match location {
                Some(target) if hops.len() <= MAX_REDIRECTS => next = target,
                _ => break,
            }
        }
        Ok(Chain { hops, broken })
    }
}

/// An open connection, plain or TLS.
pub(crate) enum Connection {
    Plain(tokio::net::TcpStream),
    Tls(
        Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        TlsSeen,
    ),
}

async fn exchange<S>(
    io: S,
    method: http::Method,
    url: &Url,
    extra_headers: &[(&str, &str)],
    tls: Option<TlsSeen>,
) -> Result<Exchange, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| FetchError::Protocol(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host)
        .header(http::header::USER_AGENT, USER_AGENT)
        .header(
            http::header::ACCEPT,
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        );
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| FetchError::Protocol(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| FetchError::Protocol(e.to_string()))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            // A body cut short still shows the page as far as it went.
            Some(Err(_)) | None => break,
        }
    }
    bytes.truncate(MAX_BODY);
    driver.abort();
    Ok(Exchange {
        url: url.clone(),
        status,
        headers,
        body: Bytes::from(bytes),
        tls,
    })
}
