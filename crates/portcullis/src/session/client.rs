//! [`SessionClient`]: the coarse description of the device a session began on, so
//! that a user listing their sessions can tell "Firefox at home" from "Chrome
//! somewhere else" without the store keeping anything that identifies them.

use std::net::IpAddr;

use axum::extract::ConnectInfo;
use axum::http::{header, Extensions, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::client_ip::ClientInfo;

/// Where and in what a session began (or last signed in): a browser family and the
/// client's network, never the full User-Agent nor the full address, so that the
/// session table says no more about a user than a "your sessions" page shows them.
///
/// Both are empty when unknown: a record saved before this was kept, or a request
/// without a peer address.
///
/// ```
/// use portcullis::session::SessionClient;
///
/// # fn show(client: &SessionClient) -> String {
/// // "Firefox, 203.0.113.0/24"
/// format!("{}, {}", client.browser, client.network)
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionClient {
    /// The browser's family: `Chrome`, `Edge`, `Firefox`, `Safari`, `Opera`, `curl` or
    /// `Other`.
    pub browser: String,
    /// The client's network: its IPv4 address truncated to the /24
    /// (`203.0.113.0/24`), its IPv6 address to the /48 (`2001:db8:1::/48`).
    pub network: String,
}

/// How much of the User-Agent is read: every family's token sits well within it, and
/// a header of any length costs the same.
const USER_AGENT_PREFIX: usize = 512;

impl SessionClient {
    /// The description of the client that sent a request with `headers` and
    /// `extensions`: the address from the client-info layer when it ran (behind
    /// trusted proxies that is the real client), else the socket's peer.
    #[cfg(test)]
    pub(super) fn of_request(headers: &HeaderMap, extensions: &Extensions) -> Self {
        ClientSource::of_request(headers, extensions).describe()
    }
}

/// What a [`SessionClient`] is made from, kept for each request and described only
/// when a record is begun or signed in: most requests save no session, and describing
/// one costs two strings, the network's formatting and a scan of the User-Agent.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientSource {
    ip: Option<IpAddr>,
    // A clone of the header's value: a reference count, not a copy.
    user_agent: Option<HeaderValue>,
}

impl ClientSource {
    /// The client that sent a request with `headers` and `extensions`: the address
    /// from the client-info layer when it ran, else the socket's peer.
    pub(super) fn of_request(headers: &HeaderMap, extensions: &Extensions) -> Self {
        let ip = extensions
            .get::<ClientInfo>()
            .map(|client| client.ip)
            .or_else(|| {
                extensions
                    .get::<ConnectInfo<std::net::SocketAddr>>()
                    .map(|ConnectInfo(peer)| peer.ip())
            });
        Self {
            ip,
            user_agent: headers.get(header::USER_AGENT).cloned(),
        }
    }

    /// The coarse description a record keeps.
    pub(super) fn describe(&self) -> SessionClient {
        let user_agent = self
            .user_agent
            .as_ref()
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        SessionClient {
            browser: browser_family(user_agent).to_owned(),
            network: self.ip.map(network).unwrap_or_default(),
        }
    }
}

/// The network `ip` belongs to: /24 for IPv4 (an IPv4-mapped IPv6 address counts as
/// IPv4), /48 for IPv6, the host bits zeroed.
fn network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => ipnet::Ipv4Net::new(v4, 24)
            .map(|net| net.trunc().to_string())
            .unwrap_or_default(),
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, 48)
            .map(|net| net.trunc().to_string())
            .unwrap_or_default(),
    }
}

/// The browser family a User-Agent names. A handful of substring tests on its first
/// [`USER_AGENT_PREFIX`] bytes rather than a User-Agent parsing crate: only the
/// family is kept, so the crates' regular-expression databases (hundreds of patterns,
/// updated monthly, a parse cost that grows with the header) would buy precision that
/// is thrown away. Order matters: Edge and Opera also say `Chrome/`, and Chrome also
/// says `Safari/`.
fn browser_family(user_agent: &[u8]) -> &'static str {
    let ua = &user_agent[..user_agent.len().min(USER_AGENT_PREFIX)];
    let has = |token: &[u8]| ua.windows(token.len()).any(|window| window == token);
    if ua.starts_with(b"curl/") {
        "curl"
    } else if has(b"Edg/") || has(b"EdgA/") || has(b"EdgiOS/") || has(b"Edge/") {
        "Edge"
    } else if has(b"OPR/") || has(b"Opera") {
        "Opera"
    } else if has(b"Firefox/") || has(b"FxiOS/") {
        "Firefox"
    } else if has(b"Chrome/") || has(b"CriOS/") || has(b"Chromium/") {
        "Chrome"
    } else if has(b"Safari/") && has(b"Version/") {
        "Safari"
    } else {
        "Other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) Version/18.1 Safari/605.1.15";
    const CHROME_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1";
    const OPERA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0";

    #[test]
    fn browsers_are_told_apart_by_family() {
        for (ua, family) in [
            (CHROME, "Chrome"),
            (EDGE, "Edge"),
            (FIREFOX, "Firefox"),
            (SAFARI, "Safari"),
            (CHROME_IOS, "Chrome"),
            (OPERA, "Opera"),
            ("curl/8.5.0", "curl"),
            ("python-requests/2.32", "Other"),
            ("", "Other"),
        ] {
            assert_eq!(browser_family(ua.as_bytes()), family, "{ua}");
        }
    }

    #[test]
    fn a_token_past_the_bound_is_not_read() {
        let padded = format!("{}Firefox/133.0", "x".repeat(USER_AGENT_PREFIX));
        assert_eq!(browser_family(padded.as_bytes()), "Other");
        let huge = format!("{FIREFOX}{}", "y".repeat(1 << 20));
        assert_eq!(browser_family(huge.as_bytes()), "Firefox");
    }

    #[test]
    fn networks_keep_only_the_network_part() {
        let net = |ip: &str| network(ip.parse().unwrap());
        assert_eq!(net("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(net("::ffff:203.0.113.77"), "203.0.113.0/24");
        assert_eq!(net("2001:db8:1:2:3:4:5:6"), "2001:db8:1::/48");
        assert_eq!(net("127.0.0.1"), "127.0.0.0/24");
    }

    fn request_parts(ua: Option<&str>) -> (HeaderMap, Extensions) {
        let mut headers = HeaderMap::new();
        if let Some(ua) = ua {
            headers.insert(header::USER_AGENT, ua.parse().unwrap());
        }
        (headers, Extensions::new())
    }

    #[test]
    fn the_client_info_address_wins_over_the_peer_and_neither_is_kept_whole() {
        let (headers, mut extensions) = request_parts(Some(FIREFOX));
        extensions.insert(ConnectInfo(std::net::SocketAddr::from((
            [10, 0, 0, 9],
            4321,
        ))));
        let peer_only = SessionClient::of_request(&headers, &extensions);
        assert_eq!(peer_only.network, "10.0.0.0/24");
        extensions.insert(ClientInfo {
            ip: "198.51.100.23".parse().unwrap(),
            scheme: crate::client_ip::Scheme::Https,
            host: None,
        });
        let client = SessionClient::of_request(&headers, &extensions);
        assert_eq!(client.browser, "Firefox");
        assert_eq!(client.network, "198.51.100.0/24");
        let json = serde_json::to_string(&client).unwrap();
        assert!(!json.contains("198.51.100.23"), "{json}");
        assert!(!json.contains("Gecko") && !json.contains("133.0"), "{json}");
    }

    #[test]
    fn an_unknown_client_is_empty_not_invented() {
        let (headers, extensions) = request_parts(None);
        let client = SessionClient::of_request(&headers, &extensions);
        assert_eq!(client.browser, "Other");
        assert_eq!(client.network, "");
    }
}
