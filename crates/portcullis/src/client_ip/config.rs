//! The client-info settings, and the walk from the socket peer to the client.

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::forwarded::{is_valid_host, read_forwarded, read_x_forwarded};
use super::{ClientInfo, ClientInfoLayer, ForwardedHeaders, Scheme, TrustedProxies};

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
        ClientInfoLayer::new(self)
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
}
