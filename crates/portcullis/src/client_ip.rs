//! Who is asking, and over what: client IP, scheme and host from trusted proxies only.
//!
//! Behind a load balancer the socket peer is the proxy, and the client's address,
//! scheme and host arrive in `X-Forwarded-For`/`-Proto`/`-Host` (or RFC 7239
//! `Forwarded`). Anyone can send those headers, so Portcullis reads them only when
//! the socket peer is a configured trusted proxy, and then takes the **rightmost hop
//! that is not itself a trusted proxy**: the leftmost entries are whatever the client
//! chose to write. (tower_governor and many tutorials take the leftmost, which lets any
//! client pick its own rate-limit key.)
//!
//! Every component — HTTPS redirect, HSTS, rate limits, the CSRF origin check, logs —
//! reads the one [`ClientInfo`] this layer computes. No crate does this correctly, so
//! Portcullis writes it itself.
//!
//! The socket's peer address comes from axum's `ConnectInfo<SocketAddr>`, which
//! [`crate::serve`] puts on every request. An app served without it (plain
//! `axum::serve(listener, app)`) would see every client as one unknown address and
//! share one rate-limit bucket among them all, so each such request is refused with
//! [`MissingPeerAddress`] (`500`, logged once with the fix). In tests that call the
//! app directly, add `axum::extract::connect_info::MockConnectInfo(addr)` as a layer.
//!
//! ```
//! use portcullis::client_ip::{ClientInfoConfig, TrustedProxies};
//!
//! let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.7".parse().unwrap();
//! assert!(proxies.contains("10.1.2.3".parse().unwrap()));
//! assert!(!proxies.contains("203.0.113.9".parse().unwrap()));
//! let layer = ClientInfoConfig::default().trusted_proxies(proxies).layer();
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request};
use ipnet::IpNet;
use tower::{Layer, Service};

use crate::error::Error;

/// The scheme the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// The client as the application should see it.
///
/// ```
/// use portcullis::client_ip::{ClientInfo, Scheme};
///
/// async fn handler(client: ClientInfo) -> String {
///     format!("{} over {}", client.ip, client.scheme.as_str())
/// }
/// # let _ = axum::Router::<()>::new().route("/", axum::routing::get(handler));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address: the socket peer, or the rightmost untrusted forwarded hop.
    pub ip: IpAddr,
    /// The scheme the client used to reach the first trusted hop.
    pub scheme: Scheme,
    /// The host the client asked for, when it is a syntactically valid host.
    pub host: Option<String>,
}

impl ClientInfo {
    /// Whether the client reached us over HTTPS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// The origin the client sees (`https://host:port`), when the host is known.
    pub fn origin(&self) -> Option<String> {
        self.host
            .as_ref()
            .map(|host| format!("{}://{host}", self.scheme.as_str()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientInfo>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!("ClientInfo requested but the client-info layer is not installed");
                Error::internal()
            })
    }
}

/// The part of an address that identifies a client: the whole IPv4 address (an
/// IPv4-mapped IPv6 one included), the /64 of an IPv6 one, with the host bits zeroed
/// (a single host is routinely given a whole /64). Every per-client limit keys by
/// this, so that one machine cannot get a fresh bucket per address it picks.
///
/// ```
/// use portcullis::client_ip::client_block;
///
/// let a = client_block("2001:db8:1:2::7".parse().unwrap());
/// let b = client_block("2001:db8:1:2:ffff::1".parse().unwrap());
/// assert_eq!(a, b);
/// assert_eq!(client_block("::ffff:192.0.2.7".parse().unwrap()).to_string(), "192.0.2.7");
/// ```
pub fn client_block(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => std::net::IpAddr::V4(v4),
        std::net::IpAddr::V6(v6) => std::net::IpAddr::V6(std::net::Ipv6Addr::from_bits(
            v6.to_bits() & !u128::from(u64::MAX),
        )),
    }
}

/// A list of proxy networks whose forwarding headers are believed.
///
/// Parsed from a comma-separated list of CIDRs or bare addresses. Empty by default:
/// no forwarding header is believed until the operator names the proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A trusted-proxy entry that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR network")]
pub struct InvalidProxy(pub String);

impl FromStr for TrustedProxies {
    type Err = InvalidProxy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidProxy(item.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    /// Trusts exactly these networks.
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self(networks.into_iter().collect())
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }
}

/// Which forwarding headers the trusted proxies write.
///
/// Only one family is read: a client must not be able to add `Forwarded` behind a
/// proxy that only maintains `X-Forwarded-For`, or the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeaders {
    /// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` (nginx, HAProxy, AWS).
    #[default]
    XForwarded,
    /// RFC 7239 `Forwarded: for=…;proto=…;host=…`.
    Forwarded,
}

/// Settings of the client-info layer.
///
/// ```
/// use portcullis::client_ip::{ClientInfoConfig, ForwardedHeaders, Scheme};
///
/// let config = ClientInfoConfig::default()
///     .trusted_proxies("127.0.0.1".parse().unwrap())
///     .forwarded_headers(ForwardedHeaders::Forwarded)
///     .connection_scheme(Scheme::Http);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientInfoConfig {
    trusted: TrustedProxies,
    headers: ForwardedHeaders,
    connection_scheme: Option<Scheme>,
    forwarded_host: ForwardedHost,
}

/// Whether a trusted proxy's `X-Forwarded-Host` / `Forwarded: host=` replaces `Host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ForwardedHost {
    // Most proxies pass `Host` through unchanged and forward whatever `X-Forwarded-Host`
    // the client wrote, so believing it by default would let any client pick the host
    // the redirect and the CSRF origin check use.
    #[default]
    Ignored,
    Trusted,
}

impl ClientInfoConfig {
    /// The proxies whose forwarding headers are believed.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted = proxies;
        self
    }

    /// Which header family the proxies write.
    pub fn forwarded_headers(mut self, headers: ForwardedHeaders) -> Self {
        self.headers = headers;
        self
    }

    /// The scheme of the listening socket itself (HTTPS when Portcullis terminates TLS).
    /// Defaults to the request URI's scheme, else HTTP.
    pub fn connection_scheme(mut self, scheme: Scheme) -> Self {
        self.connection_scheme = Some(scheme);
        self
    }

    /// Believes the host a trusted proxy forwards (`X-Forwarded-Host`, or `host=` of
    /// `Forwarded`) instead of `Host`. Off by default: switch it on only when the proxy
    /// overwrites that header itself, for a proxy that rewrites `Host` to an internal
    /// name; otherwise a client's own `X-Forwarded-Host` would pass straight through.
    /// The [`crate::hosts`] allow-list applies to the host either way.
    ///
    /// ```
    /// use portcullis::client_ip::ClientInfoConfig;
    ///
    /// let config = ClientInfoConfig::default()
    ///     .trusted_proxies("10.0.0.0/8".parse().unwrap())
    ///     .trust_forwarded_host();
    /// ```
    pub fn trust_forwarded_host(mut self) -> Self {
        self.forwarded_host = ForwardedHost::Trusted;
        self
    }

    /// The layer.
    pub fn layer(self) -> ClientInfoLayer {
        ClientInfoLayer {
            config: Arc::new(self),
            missing_peer_logged: Arc::default(),
        }
    }

    /// Computes the client info for a request from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, uri: &axum::http::Uri, headers: &HeaderMap) -> ClientInfo {
        let peer = peer.to_canonical();
        let direct_scheme = self.connection_scheme.unwrap_or_else(|| {
            if uri.scheme_str() == Some("https") {
                Scheme::Https
            } else {
                Scheme::Http
            }
        });
        let direct_host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
            .filter(|h| is_valid_host(h));

        if !self.trusted.contains(peer) {
            return ClientInfo {
                ip: peer,
                scheme: direct_scheme,
                host: direct_host,
            };
        }

        let forwarded = match self.headers {
            ForwardedHeaders::XForwarded => read_x_forwarded(headers),
            ForwardedHeaders::Forwarded => read_forwarded(headers),
        };
        // Walk from the proxy towards the client; stop at the first untrusted hop.
        let mut ip = peer;
        for hop in forwarded.hops.iter().rev() {
            match hop {
                Some(hop_ip) => {
                    ip = hop_ip.to_canonical();
                    if !self.trusted.contains(ip) {
                        break;
                    }
                }
                // An unparseable entry left of trusted hops was written by the client:
                // the last trusted hop is as far as we can see.
                None => break,
            }
        }
        ClientInfo {
            ip,
            scheme: forwarded.proto.unwrap_or(direct_scheme),
            host: match self.forwarded_host {
                ForwardedHost::Trusted => {
                    forwarded.host.filter(|h| is_valid_host(h)).or(direct_host)
                }
                ForwardedHost::Ignored => direct_host,
            },
        }
    }
}

struct Forwarding {
    hops: Vec<Option<IpAddr>>,
    proto: Option<Scheme>,
    host: Option<String>,
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

fn parse_scheme(value: &str) -> Option<Scheme> {
    match value.trim().trim_matches('"').to_ascii_lowercase().as_str() {
        "https" => Some(Scheme::Https),
        "http" => Some(Scheme::Http),
        _ => None,
    }
}

fn read_x_forwarded(headers: &HeaderMap) -> Forwarding {
    Forwarding {
        hops: header_values(headers, "x-forwarded-for")
            .map(parse_node)
            .collect(),
        // The nearest proxy's value is the rightmost.
        proto: header_values(headers, "x-forwarded-proto")
            .last()
            .and_then(parse_scheme),
        host: header_values(headers, "x-forwarded-host")
            .last()
            .map(str::to_owned),
    }
}

fn read_forwarded(headers: &HeaderMap) -> Forwarding {
    let mut hops = Vec::new();
    let mut proto = None;
    let mut host = None;
    for element in header_values(headers, "forwarded") {
        let mut element_proto = None;
        let mut element_host = None;
        for pair in element.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "for" => hops.push(parse_node(value)),
                "proto" => element_proto = parse_scheme(value),
                "host" => element_host = Some(value.to_owned()),
                _ => {}
            }
        }
        // The rightmost element is the nearest proxy's.
        proto = element_proto;
        host = element_host;
    }
    Forwarding { hops, proto, host }
}

/// Parses a forwarded node: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80`, `2001:db8::1`.
/// `unknown` and obfuscated identifiers are not addresses.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = node.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse::<IpAddr>().ok())
}

/// A host as a client may legitimately send it: a DNS name or an IP, optional port.
fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && !host.starts_with(['.', '-', ':'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        && axum::http::uri::Authority::from_str(host).is_ok()
}

/// Computes [`ClientInfo`] for each request and puts it in the request's extensions.
#[derive(Clone)]
pub struct ClientInfoLayer {
    config: Arc<ClientInfoConfig>,
    /// Whether a request without a peer address has been logged (once is enough).
    missing_peer_logged: Arc<AtomicBool>,
}

impl fmt::Debug for ClientInfoLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInfoLayer")
            .field("config", &self.config)
            .finish()
    }
}

impl<S> Layer<S> for ClientInfoLayer {
    type Service = ClientInfoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientInfoService {
            inner,
            config: self.config.clone(),
            missing_peer_logged: self.missing_peer_logged.clone(),
        }
    }
}

/// The service of [`ClientInfoLayer`].
#[derive(Clone)]
pub struct ClientInfoService<S> {
    inner: S,
    config: Arc<ClientInfoConfig>,
    missing_peer_logged: Arc<AtomicBool>,
}

impl<S> fmt::Debug for ClientInfoService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInfoService").finish_non_exhaustive()
    }
}

/// A request reached the client-info layer without the socket's peer address: the
/// app was served without `ConnectInfo<SocketAddr>` (plain `axum::serve(listener,
/// app)`, or a test calling the service directly).
///
/// Guessing an address would put every client behind one (`0.0.0.0`): the rate
/// limiter would then keep one bucket for the whole world, so ten failed logins a
/// minute would lock everybody out. Every such request is refused with `500` and
/// code `client_address_unknown`, and the first one is logged with the fix: serve with
/// [`crate::serve::serve`], or `app.into_make_service_with_connect_info::<SocketAddr>()`;
/// in tests, add axum's `MockConnectInfo` layer.
///
/// ```
/// use axum::response::IntoResponse;
/// use portcullis::client_ip::MissingPeerAddress;
///
/// let response = MissingPeerAddress.into_response();
/// assert_eq!(response.status(), 500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the client's address is unknown: no ConnectInfo<SocketAddr> on the request; serve the \
     app with portcullis::serve::serve (or into_make_service_with_connect_info::<SocketAddr>())"
)]
pub struct MissingPeerAddress;

impl axum::response::IntoResponse for MissingPeerAddress {
    fn into_response(self) -> axum::response::Response {
        Error::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "client_address_unknown",
            "The server cannot tell clients apart, so it refuses every request until its \
             operator fixes how it is served.",
        )
        .into_response()
    }
}

impl<S, B> Service<Request<B>> for ClientInfoService<S>
where
    S: Service<Request<B>, Response = axum::response::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        S::Future,
        futures_util::future::Ready<Result<S::Response, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        use futures_util::future::{ready, Either};
        // `MockConnectInfo` is how tests give an app called directly its peer.
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer)
            .or_else(|| {
                req.extensions()
                    .get::<MockConnectInfo<SocketAddr>>()
                    .map(|MockConnectInfo(peer)| *peer)
            });
        let Some(peer) = peer else {
            if !self.missing_peer_logged.swap(true, Ordering::Relaxed) {
                tracing::error!(target: "portcullis::security", "{MissingPeerAddress}");
            }
            let response = axum::response::IntoResponse::into_response(MissingPeerAddress);
            return Either::Right(ready(Ok(response)));
        };
        let info = self.config.resolve(peer.ip(), req.uri(), req.headers());
        // Logs name the client this layer resolved, not the proxy in front of it.
        tracing::Span::current().record("client_ip", tracing::field::display(info.ip));
        req.extensions_mut().insert(info);
        Either::Left(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Uri};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn config(trusted: &str) -> ClientInfoConfig {
        ClientInfoConfig::default().trusted_proxies(trusted.parse().unwrap())
    }

    fn uri() -> Uri {
        Uri::from_static("/")
    }

    #[test]
    fn spoofed_headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[
            ("host", "app.example"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ]);
        let info = config("").resolve("203.0.113.5".parse().unwrap(), &uri(), &h);
        assert_eq!(info.ip, "203.0.113.5".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, Scheme::Http);
        assert_eq!(info.host.as_deref(), Some("app.example"));
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        // The client wrote "6.6.6.6" itself; the proxy appended the real peer 198.51.100.7.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let info = config("10.0.0.0/8").resolve("10.0.0.2".parse().unwrap(), &uri(), &h);
        assert_eq!(info.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, Scheme::Https);
    }

    #[test]
    fn chains_of_trusted_proxies_are_walked() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7, 10.0.0.9"),
        ]);
        let info = config("10.0.0.0/8").resolve("10.0.0.2".parse().unwrap(), &uri(), &h);
        assert_eq!(info.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn garbage_left_of_the_proxy_falls_back_to_the_last_trusted_hop() {
        let h = headers(&[("x-forwarded-for", "<script>, 10.0.0.9")]);
        let info = config("10.0.0.0/8").resolve("10.0.0.2".parse().unwrap(), &uri(), &h);
        assert_eq!(info.ip, "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn forwarded_header_is_read_only_when_configured() {
        let h = headers(&[
            ("forwarded", "for=6.6.6.6;proto=https"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        let xff = config("127.0.0.1").resolve("127.0.0.1".parse().unwrap(), &uri(), &h);
        assert_eq!(xff.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(xff.scheme, Scheme::Http);

        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::17]:4711\";proto=https;host=app.example",
        )]);
        let rfc = config("127.0.0.1")
            .forwarded_headers(ForwardedHeaders::Forwarded)
            .trust_forwarded_host()
            .resolve("127.0.0.1".parse().unwrap(), &uri(), &h);
        assert_eq!(rfc.ip, "2001:db8::17".parse::<IpAddr>().unwrap());
        assert_eq!(rfc.scheme, Scheme::Https);
        assert_eq!(rfc.host.as_deref(), Some("app.example"));
    }

    #[test]
    fn a_forwarded_host_is_ignored_unless_switched_on() {
        // The proxy is trusted, but it passes the client's X-Forwarded-Host through:
        // believing it would send the HTTPS redirect to the attacker's host.
        let h = headers(&[
            ("host", "app.example"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "host=evil.example"),
        ]);
        let info = config("10.0.0.0/8").resolve("10.0.0.2".parse().unwrap(), &uri(), &h);
        assert_eq!(info.host.as_deref(), Some("app.example"));
        let rfc = config("10.0.0.0/8")
            .forwarded_headers(ForwardedHeaders::Forwarded)
            .resolve("10.0.0.2".parse().unwrap(), &uri(), &h);
        assert_eq!(rfc.host.as_deref(), Some("app.example"));
        let opted_in = config("10.0.0.0/8").trust_forwarded_host().resolve(
            "10.0.0.2".parse().unwrap(),
            &uri(),
            &h,
        );
        assert_eq!(opted_in.host.as_deref(), Some("evil.example"));
    }

    #[test]
    fn invalid_hosts_are_dropped() {
        for host in ["evil.example/path", "a b", "x\"y", "-bad", ""] {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(host) {
                h.insert("host", v);
            }
            let info = config("").resolve("127.0.0.1".parse().unwrap(), &uri(), &h);
            assert_eq!(info.host, None, "{host:?} accepted");
        }
    }

    #[test]
    fn mapped_ipv6_addresses_match_ipv4_proxies() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let info = config("127.0.0.1").resolve("::ffff:127.0.0.1".parse().unwrap(), &uri(), &h);
        assert_eq!(info.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn invalid_proxy_lists_are_errors() {
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("localhost".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }
}
