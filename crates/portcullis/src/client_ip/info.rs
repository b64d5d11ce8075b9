//! What the application sees of the client, and the extractor that hands it over.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::net::IpAddr;

use crate::error::MissingLayer;

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
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientInfo>()
            .cloned()
            .ok_or(MissingLayer::new("ClientInfo", "the client-info layer"))
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

/// An address as text, as `IpAddr` displays it (`192.0.2.7`, `2001:db8::1`), with
/// IPv4 addresses written by hand: std's `Display` passes each octet through a
/// `Formatter`, about 2,000 instructions, and every request writes its client's
/// address (its log span, its rate-limit key).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddressText(pub(crate) std::net::IpAddr);

impl AddressText {
    /// The dotted-decimal text of `ip` into `buffer`; the part written.
    pub(crate) fn ipv4(ip: std::net::Ipv4Addr, buffer: &mut [u8; 15]) -> &str {
        let mut len = 0;
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                buffer[len] = b'.';
                len += 1;
            }
            if octet >= 100 {
                buffer[len] = b'0' + octet / 100;
                len += 1;
            }
            if octet >= 10 {
                buffer[len] = b'0' + octet / 10 % 10;
                len += 1;
            }
            buffer[len] = b'0' + octet % 10;
            len += 1;
        }
        // Digits and dots only: always UTF-8.
        std::str::from_utf8(&buffer[..len]).unwrap_or_default()
    }
}

impl std::fmt::Display for AddressText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            std::net::IpAddr::V4(v4) => f.write_str(Self::ipv4(v4, &mut [0; 15])),
            std::net::IpAddr::V6(v6) => std::fmt::Display::fmt(&v6, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AddressText;
    use std::net::{IpAddr, Ipv4Addr};

    /// Every octet value in every position, and IPv6, as `IpAddr` displays them.
    #[test]
    fn addresses_read_as_std_writes_them() {
        for octet in 0..=255u8 {
            for position in 0..4 {
                let mut octets = [192, 0, 2, 7];
                octets[position] = octet;
                let ip = IpAddr::V4(Ipv4Addr::from(octets));
                assert_eq!(AddressText(ip).to_string(), ip.to_string());
            }
        }
        for ip in [
            "255.255.255.255",
            "0.0.0.0",
            "2001:db8::1",
            "::ffff:192.0.2.7",
            "::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(AddressText(ip).to_string(), ip.to_string());
        }
    }
}
